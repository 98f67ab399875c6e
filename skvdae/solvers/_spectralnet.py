"""SpectralNet orthonormalised against the degree: training loop and eigen-rotation.

The network ``f: R^m -> R^(D+1)`` minimises the Dirichlet energy of the kernel
graph subject to ``Y^T D Y = I`` (not the usual ``Y^T Y = I``, whose minimisers are
eigenvectors of ``D - W`` rather than of the Markov matrix). Each step samples a
batch of edges ``(i, j)`` with probability ``W_ij / sum(W)``; both endpoints are
then distributed as the stationary distribution ``pi``, so on the batch

    G = E_pi[y y^T]  (estimates Y^T D Y / vol)
    M = E_W[(y_i - y_j)(y_i - y_j)^T]  (estimates 2 Y^T (D - W) Y / vol)

and the loss ``tr(G^-1 M) / 2``, computed through a Cholesky factor of ``G`` (the
orthonormalisation layer), is the sum of the generalised Rayleigh quotients of
the outputs. No n x n matrix is formed: the graph is a list of edges.

After training, one Rayleigh-Ritz step over the network's last hidden layer on
the full training graph gives the eigenvectors, the eigenvalues and the final
linear head (:func:`~skvdae.solvers.diffusion_coordinates`).
"""

import numpy as np
import torch

from ..nn import (
    MLP,
    Adam,
    DiffusionNetwork,
    build_network,
    fit_minibatches,
    inference_copy,
    make_generator,
    predict_numpy,
    resolve_device,
    seed_from,
    seeded_torch,
)
from ._base import (
    EmbeddingMap,
    Solver,
    SolverResult,
    check_eigenvalues,
    choose_n_components,
    leading_coordinates,
)
from ._rayleigh_ritz import diffusion_coordinates

_MAX_CHOLESKY_TRIES = 6
# Candidates drawn per rejection round at most (3 float64 uniforms each).
_MAX_DRAWS = 2**20
# Entries of a row per segment of the edge sampler's envelope.
_SEGMENT = 32
# Forward steps from the guide table's segment before a binary search.
_GUIDE_STEPS = 2


class EdgeSampler:
    """Draws edges ``(i, j)`` of the affinity graph with probability ``W_ij / sum W``.

    By rejection, on the graph's own CSR arrays (no per-edge copy, so that a
    graph of 10^8 entries costs little more). Each row's entries are cut into
    segments of up to ``_SEGMENT`` consecutive entries, ``n_s`` of them with
    largest weight ``m_s``. A segment is drawn with probability proportional
    to ``n_s m_s`` (an envelope of its mass), an entry of it uniformly, kept
    with probability ``W_ij / m_s``: a pair is then drawn with probability
    proportional to ``n_s m_s (1 / n_s) (W_ij / m_s) = W_ij``, exactly the
    wanted law; rounds repeat until the batch is full. The samples come in
    locality order, so a segment's columns are nearby points whose weights
    differ less than a whole row's: on the noisy loop at 10^5 samples (669
    entries a row) the envelope's acceptance is 0.30, against 0.087 with one
    segment per row. Each round draws enough candidates for the missing
    edges at the acceptance rate ``sum W / sum n_s m_s`` (with a margin), so
    a full batch takes one or two rounds however far the envelope is from
    the weights.

    ``affinity`` may hold only the rows ``row_start ..`` of a process's shard
    (all columns): the rows drawn are then numbered from ``row_start``, and
    ``mass`` (the shard's total weight) weighs its batch against the others.
    """

    def __init__(self, affinity, device, row_start=0):
        affinity = affinity.tocsr()
        self.row_start = row_start
        self.mass = float(np.sum(affinity.data, dtype=np.float64))
        indptr = affinity.indptr.astype(np.int64)
        lengths = np.diff(indptr)
        pieces = -(-lengths // _SEGMENT)
        rows = np.repeat(np.arange(lengths.size), pieces)
        rank = np.arange(rows.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        starts = indptr[rows] + _SEGMENT * rank
        sizes = np.minimum(_SEGMENT, indptr[rows + 1] - starts)
        peaks = np.maximum.reduceat(affinity.data, starts)
        cumulative = np.cumsum(sizes * peaks.astype(np.float64))
        self.acceptance = self.mass / cumulative[-1]
        # The law in float64 keeps segments of weight ~1e-6 of the total reachable.
        cdf = cumulative / cumulative[-1]
        # A guide table (Chen and Asau, 1974): guide[j] counts the segments
        # whose cdf c has floor(c M) < j. A draw u with floor(u M) = j lies in
        # a segment from guide[j] on, a step or two further for M = the number
        # of segments: three gathers instead of a binary search over the cdf
        # (0.93 ms -> 0.21 ms for a round's 8590 draws among 2.1e6 segments,
        # benchmarks/bench_edge_sampler.py), and the same segments, since
        # floor(x M) is monotone in x as rounded.
        keys = np.floor(cdf * cdf.size)
        guide = np.searchsorted(keys, np.arange(cdf.size, dtype=np.float64))
        self.index_dtype = torch.int32 if cdf.size < 2**31 else torch.int64
        self.guide = torch.as_tensor(guide, device=device).to(self.index_dtype)
        self.cdf = torch.as_tensor(cdf, device=device)
        self.rows = torch.as_tensor(rows, device=device)
        self.starts = torch.as_tensor(starts, device=device)
        self.sizes = torch.as_tensor(sizes, device=device)
        self.peaks = torch.as_tensor(peaks, device=device)
        self.columns = torch.as_tensor(affinity.indices, device=device)
        self.weights = torch.as_tensor(affinity.data, device=device)
        self.device = device

    def segments(self, uniform):
        """The segments of the draws ``uniform`` in [0, 1): the first whose cdf
        reaches each, as ``torch.searchsorted(cdf, uniform)``."""
        n_segments = self.cdf.numel()
        bins = (uniform * n_segments).long().clamp_(max=n_segments - 1)
        segment = self.guide[bins]
        for _ in range(_GUIDE_STEPS):
            segment += self.cdf[segment] < uniform
        # Bins crowded with light segments: a binary search for what is left.
        left = torch.nonzero(self.cdf[segment] < uniform).squeeze(1)
        if left.numel():
            segment[left] = torch.searchsorted(
                self.cdf, uniform[left], out_int32=self.index_dtype == torch.int32
            )
        return segment

    def sample(self, batch_size, generator):
        rows, columns, found = [], [], 0
        while found < batch_size:
            missing = batch_size - found
            draws = min(int(1.25 * missing / self.acceptance) + 16, _MAX_DRAWS)
            draws = max(draws, missing + 16)
            uniform = torch.rand(
                (3, draws), generator=generator, device=self.device, dtype=torch.float64
            )
            segment = self.segments(uniform[0])
            size = self.sizes[segment]
            offset = torch.minimum((uniform[1] * size).long(), size - 1)
            entry = self.starts[segment] + offset
            keep = uniform[2] * self.peaks[segment] < self.weights[entry]
            rows.append(self.rows[segment[keep]])
            columns.append(self.columns[entry[keep]].long())
            found += int(keep.sum())
        rows = torch.cat(rows)[:batch_size] + self.row_start
        return rows, torch.cat(columns)[:batch_size]


def cholesky_with_jitter(gram):
    """Lower Cholesky factor of ``gram``, adding growing jitter on failure.

    Returns ``None`` when the matrix stays indefinite (a degenerate batch).
    """
    identity = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    scale = torch.clamp(torch.diagonal(gram).mean().detach(), min=1e-30)
    jitter = 0.0
    for attempt in range(_MAX_CHOLESKY_TRIES):
        factor, info = torch.linalg.cholesky_ex(gram + jitter * scale * identity)
        if int(info) == 0 and bool(torch.isfinite(factor).all()):
            return factor
        jitter = 10.0 ** (attempt - 8)
    return None


def rayleigh_loss(y_first, y_second, communicator=None, weight=1.0):
    """``tr(G^-1 M) / 2`` for one batch of edge endpoints, or ``None``.

    With a ``communicator``, each process's batch estimates ``G`` and ``M``
    on its shard of the edges, weighted by ``weight`` (the shard's share of
    the total edge weight); the weighted estimates are summed over the
    processes with gradients, so that every process computes the same loss,
    that of the union of the batches.
    """
    if communicator is not None:
        return _shared_rayleigh_loss(y_first, y_second, communicator, weight)
    batch_size = y_first.shape[0]
    gram = (y_first.T @ y_first + y_second.T @ y_second) / (2 * batch_size)
    factor = cholesky_with_jitter(gram)
    if factor is None:
        return None
    whitened = torch.linalg.solve_triangular(
        factor, (y_first - y_second).T, upper=False
    )
    return 0.5 * (whitened**2).sum() / batch_size


def _shared_rayleigh_loss(y_first, y_second, communicator, weight):
    batch_size = y_first.shape[0]
    gram = (y_first.T @ y_first + y_second.T @ y_second) / (2 * batch_size)
    difference = y_first - y_second
    energy = difference.T @ difference / batch_size
    both = communicator.sum_with_gradient(weight * torch.stack([gram, energy]))
    factor = cholesky_with_jitter(both[0])
    if factor is None:
        return None
    half = torch.linalg.solve_triangular(factor, both[1], upper=False)
    whitened = torch.linalg.solve_triangular(factor, half.T, upper=False)
    return 0.5 * torch.trace(whitened)


def train_spectralnet(
    X,
    graph,
    *,
    n_outputs,
    hidden_layer_sizes,
    activation,
    network=None,
    network_params=None,
    batch_size,
    max_iter,
    learning_rate,
    device,
    seed,
    tol=None,
    n_iter_no_change=10,
    progress=None,
):
    """Train the network; returns ``(network, TrainingResult)``.

    ``network`` is the trained float32 module on ``device``. The training loop
    is :func:`skvdae.nn.fit_minibatches`: a step whose loss is not finite (or
    whose batch is degenerate) restores the last snapshot at half the learning
    rate, and after a few such restarts the fit fails loudly.

    On a graph sharded over processes (``graph.communicator``), every process
    draws ``ceil(batch_size / world_size)`` edges of its own rows, the loss is
    that of all the processes' edges (:func:`rayleigh_loss`) and the gradients
    are averaged, so the processes keep identical networks.
    """
    mean, scale = input_standardization(X)
    n_features = hidden_layer_sizes[-1]
    with seeded_torch(seed):
        features = build_network(
            network,
            network_params,
            X.shape[1],
            n_features,
            default=lambda: MLP(X.shape[1], None, hidden_layer_sizes, activation),
            name="network",
            params_name="network_params",
        )
        network = DiffusionNetwork(
            mean, np.float64(scale), features, n_features, n_outputs
        )
    network = network.to(device)
    # Standardised in float64 first: data at 1e-50 or 1e50 trains as well.
    standardized = ((X - mean) / scale).astype(np.float32)
    inputs = torch.tensor(standardized, device=device)
    communicator = graph.communicator
    # Decided together: a process that raised alone would leave the others
    # waiting in a collective.
    if (
        communicator is not None
        and communicator.allreduce(np.int64(graph.affinity.nnz), op="min") == 0
    ):
        raise ValueError(
            f"Some of the {communicator.world_size} processes have no sample of "
            f"the graph's {graph.degrees.size}: use fewer processes than samples."
        )
    sampler = EdgeSampler(graph.affinity, device, graph.row_start)
    weight, after_backward = 1.0, None
    if communicator is not None:
        communicator.broadcast_parameters([network])
        batch_size = -(-batch_size // communicator.world_size)
        weight = sampler.mass / float(communicator.allreduce(sampler.mass))
        seed = communicator.seed(seed)

        def after_backward():
            communicator.average_gradients([network])

    generator = make_generator(seed, device)
    optimizer = Adam(network.parameters(), lr=learning_rate)

    def step(iteration):
        first, second = sampler.sample(batch_size, generator)
        outputs = network.forward_standardized(inputs[torch.cat([first, second])])
        return rayleigh_loss(
            outputs[:batch_size], outputs[batch_size:], communicator, weight
        )

    result = fit_minibatches(
        step,
        max_iter=max_iter,
        optimizers=[optimizer],
        modules=[network],
        tol=tol,
        n_iter_no_change=n_iter_no_change,
        name="SpectralNet",
        advice="try a smaller learning_rate or a larger batch_size.",
        progress=progress,
        after_backward=after_backward,
    )
    return network, result


def input_standardization(X):
    """``(mean, scale)`` that bring the inputs to order one, robustly.

    The median, and one scale for every feature (the network sees the data's
    geometry undistorted): the largest interquartile range over the features,
    in units of a Gaussian's standard deviation. A small group of points far
    from the rest (a separate cluster of a few samples) then neither moves the
    centre nor squeezes the rest of the data into a spot the network cannot
    resolve. The standard deviation where the quartiles coincide.
    """
    low, mean, high = np.quantile(X, [0.25, 0.5, 0.75], axis=0)
    scale = float((high - low).max()) / 1.349
    if not scale > 0.0:
        scale = float(X.std(axis=0).max())
    return mean, max(scale, np.finfo(np.float64).tiny)


def hidden_features(network, X, graph=None):
    """Last hidden layer on ``X`` and the float64 CPU copy it was computed with.

    On a graph sharded over processes, each computes its own rows and the
    rows are gathered.
    """
    copy = inference_copy(network)
    if graph is None or graph.communicator is None:
        return predict_numpy(copy, X, method="embed_features"), copy
    rows = slice(graph.row_start, graph.row_start + graph.affinity.shape[0])
    own = predict_numpy(copy, X[rows], method="embed_features")
    return graph.communicator.allgather(own), copy


class NetworkMap(EmbeddingMap):
    """The trained network, whose output is ``Psi_t`` itself.

    Parameters
    ----------
    network : torch.nn.Module
        Float64, CPU, eval mode.
    """

    state_names = ("network_",)

    def __init__(self, network):
        self.network = network

    def transform(self, X):
        return predict_numpy(self.network, X)

    def get_state(self):
        return {"network_": self.network}

    @classmethod
    def from_state(
        cls, state, *, n_features, eigenvalues, diffusion_time, bandwidth, make_index
    ):
        network = state.get("network_")
        if network is None:
            raise ValueError("the model file lacks the embedder's network")
        return cls(network)


class SpectralNetSolver(Solver):
    """A network trained so that its outputs are the leading eigenvectors.

    Parameters
    ----------
    hidden_layer_sizes, activation, network, network_params, batch_size,
    max_iter, learning_rate, device, tol, n_iter_no_change
        As the parameters of :class:`~skvdae.DiffusionMapEmbedder`.
    """

    name = "spectralnet"
    map_class = NetworkMap

    def __init__(
        self,
        hidden_layer_sizes=(64, 64),
        activation="tanh",
        network=None,
        network_params=None,
        batch_size=2048,
        max_iter=500,
        learning_rate=3e-3,
        device="cpu",
        tol=None,
        n_iter_no_change=10,
    ):
        self.hidden_layer_sizes = [int(size) for size in hidden_layer_sizes]
        self.activation = activation
        self.network = network
        self.network_params = network_params
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.device = device
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change

    @classmethod
    def from_params(cls, params):
        names = (
            "hidden_layer_sizes",
            "activation",
            "network",
            "network_params",
            "batch_size",
            "max_iter",
            "learning_rate",
            "device",
            "tol",
            "n_iter_no_change",
        )
        return cls(**{name: params[name] for name in names})

    @property
    def n_steps(self):
        return self.max_iter

    def solve(
        self,
        X,
        nn_index,
        graph,
        *,
        n_components,
        diffusion_time,
        random_state,
        report,
        fold_neighbors=10,
    ):
        if n_components == "auto":
            psi, eigenvalues, _ = leading_coordinates(graph, "auto", random_state)
            n_components = choose_n_components(
                "auto", psi, eigenvalues, graph, X, diffusion_time, fold_neighbors
            )
        network, result = train_spectralnet(
            X,
            graph,
            n_outputs=n_components + 1,
            hidden_layer_sizes=self.hidden_layer_sizes,
            activation=self.activation,
            network=self.network,
            network_params=self.network_params,
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            device=resolve_device(self.device),
            seed=seed_from(random_state),
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            progress=report("SpectralNet", self.max_iter),
        )
        features, network = hidden_features(network, X, graph)
        try:
            coef, offset, eigenvalues, _ = diffusion_coordinates(
                features, graph, n_components
            )
        except np.linalg.LinAlgError as error:
            raise ValueError(
                "SpectralNet's features collapsed: "
                f"{error}. Increase max_iter or hidden_layer_sizes, or use "
                "solver='exact'."
            ) from error
        eigenvalues = check_eigenvalues(eigenvalues, graph, diffusion_time)
        scaling = eigenvalues**diffusion_time
        network.set_head(coef * scaling, offset * scaling)
        return SolverResult(
            map=NetworkMap(network),
            eigenvalues=eigenvalues,
            n_iter=result.n_iter,
            loss_curve=result.losses,
        )
