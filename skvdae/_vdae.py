"""The variational diffusion autoencoder: local covariances, training loop, walks.

Given a frozen diffusion map ``psi`` and the codes ``Z = psi(X)`` of the training
data:

- the target covariance of one random-walk step at ``z_i`` is the second moment
  of the latent displacements to its ``k`` nearest codes,
  ``Sigma*_i = (1/k) sum_j (z_j - z_i)(z_j - z_i)^T + ridge I``
  (:func:`local_second_moments`, computed in chunks of rows, never n x n);
- a network gives a Cholesky factor ``L(z)``; the KL divergence between
  ``N(z, L L^T)`` and ``N(z, alpha Sigma*)`` is exact (:func:`gaussian_kl`);
- each step draws ``z' = z + L eps`` for a minibatch, lands on the batch point
  whose code is nearest to ``z'`` (a batch x batch distance matrix) and asks the
  decoder to reproduce it with Gaussian noise of variance ``c``;
- a sampling walk lands on a training code drawn from the posterior of the
  mixture of the codes' step Gaussians (:class:`StepMixture`), so that its
  stationary distribution is the data's, and emits its sample around that
  code (:func:`emission_roots`, :func:`local_emission`).
"""

import numpy as np
import torch

from .graph import NeighborIndex
from .nn import (
    MLP,
    Adam,
    CholeskyNetwork,
    Decoder,
    StepSchedule,
    build_network,
    fit_minibatches,
    make_generator,
    seeded_torch,
)

#: The VDAE's learning rate drops tenfold for the last 20% of the steps: the
#: decoder's precision.
SCHEDULE = StepSchedule(at=0.8, divisor=10.0)

#: ``covariance_scale='auto'``: one step's root-mean-square length as a
#: fraction of the root-mean-square radius of the codes of its component.
STEP_FRACTION = 1.0
_RIDGE_RELATIVE = 1e-2
_RIDGE_FLOOR = 1e-10
_CHUNK = 4096
#: Expected size of the random subset of candidate codes of one landing draw
#: (:class:`StepMixture`): all the codes of smaller components.
LANDING_SUBSET = 64
#: Walkers that share one random subset: few enough that a sample of many
#: walkers is not clumped on the same codes.
LANDING_WALKERS = 64
#: The walk keeps its tables of every training code (``L``, ``L^-1``, ``C^-1``;
#: the emission's factors) when each has at most this many entries (64 MB);
#: else it computes them for the codes each step needs.
_FACTOR_CACHE = 1 << 23


class LatentNeighbourhoods:
    """Nearest training codes of a query, within its connected component.

    Separate clusters of the data have separate codes (the diffusion map's
    indicator coordinates); a neighbourhood that reached into another cluster
    would make the walk's target covariance jump between them. A query takes
    the component of its nearest training code; its ``k`` neighbours are then
    the nearest codes of that component (all of them when it has fewer).

    Parameters
    ----------
    Z : ndarray of shape (n_train, D)
        Training codes.
    labels : ndarray of shape (n_train,)
        Component of each code, ``0 .. n_components - 1``.
    n_neighbors : int
        ``k``.
    """

    def __init__(self, Z, labels, n_neighbors):
        self.Z = Z
        self.labels = np.asarray(labels, dtype=np.intp)
        self.n_neighbors = int(n_neighbors)
        self._nearest = NeighborIndex().fit(Z)
        self._members = [
            np.flatnonzero(self.labels == c) for c in range(self.labels.max() + 1)
        ]
        self._indices = [NeighborIndex().fit(Z[rows]) for rows in self._members]

    def partners(self):
        """Index of each training code's nearest other code in its component.

        Exact copies of a code pair cyclically within their group (each with
        the next copy), so that no single copy is everyone's partner; a code
        alone in its component is its own partner.
        """
        partner = np.arange(self.Z.shape[0])
        for component, rows in enumerate(self._members):
            if rows.size < 2:
                continue
            nearest = self._indices[component].kneighbors(
                n_neighbors=1, return_distance=False
            )[:, 0]
            partner[rows] = rows[nearest]
            # Exact copies pair cyclically: each with the next, the last with
            # the first.
            group = np.unique(self.Z[rows], axis=0, return_inverse=True)[1]
            order = np.argsort(group.reshape(-1), kind="stable")
            sizes = np.bincount(group.reshape(-1))
            size = np.repeat(sizes, sizes)
            start = np.repeat(np.cumsum(sizes) - sizes, sizes)
            following = start + (np.arange(rows.size) - start + 1) % size
            copies = size > 1
            partner[rows[order[copies]]] = rows[order[following[copies]]]
        return partner

    @property
    def n_components(self):
        """Number of connected components."""
        return len(self._members)

    def members(self, component):
        """Training rows of one component."""
        return self._members[component]

    def others(self, rows, n_neighbors):
        """The nearest other training codes of training ``rows`` of one
        component, ``(len(rows), min(n_neighbors, size - 1))``, nearest first.
        """
        if rows.size == 0:
            return np.empty((0, 0), dtype=np.intp)
        component = self.labels[rows[0]]
        members = self._members[component]
        n_others = min(n_neighbors, members.size - 1)
        if n_others == 0:
            return np.empty((rows.size, 0), dtype=np.intp)
        _, nearest = self._indices[component].row_kneighbors(
            np.searchsorted(members, rows), n_others
        )
        return members[nearest]

    def labels_of(self, Z_query):
        """The component of the nearest training code of each query."""
        nearest = self._nearest.kneighbors(
            Z_query, n_neighbors=1, return_distance=False
        )[:, 0]
        return self.labels[nearest]

    def groups(self, Z_query, labels=None):
        """Yield ``(query_rows, neighbours)``, one pair per component and chunk.

        ``neighbours`` holds indices into the training codes, shape
        ``(len(query_rows), k_c)`` with ``k_c = min(k, component size)``.
        ``labels`` (the queries' components) is looked up when not given.
        """
        if labels is None:
            labels = self.labels_of(Z_query)
        for component, rows in enumerate(self._members):
            queries = np.flatnonzero(labels == component)
            k = min(self.n_neighbors, rows.size)
            for start in range(0, queries.size, _CHUNK):
                chunk = queries[start : start + _CHUNK]
                local = self._indices[component].kneighbors(
                    Z_query[chunk], n_neighbors=k, return_distance=False
                )
                yield chunk, rows[local]


def local_second_moments(neighbourhoods, Z_query, ridge, labels=None):
    """``Sigma*`` at each query code, from its nearest training codes.

    ``Sigma*(z) = (1/k) sum_j (z_j - z)(z_j - z)^T + ridge I`` over the ``k``
    nearest training codes of ``z``'s component; a training point queried
    against itself counts itself (with a zero displacement), so training and
    new points are treated alike.

    Parameters
    ----------
    neighbourhoods : LatentNeighbourhoods
    Z_query : ndarray of shape (n_query, D)
    ridge : float
    labels : ndarray of shape (n_query,) or None
        The queries' components, when known (the training codes').

    Returns
    -------
    sigma : ndarray of shape (n_query, D, D)
    """
    n_latent = Z_query.shape[1]
    sigma = np.empty((Z_query.shape[0], n_latent, n_latent))
    for rows, neighbors in neighbourhoods.groups(Z_query, labels):
        displacements = neighbourhoods.Z[neighbors] - Z_query[rows, None, :]
        sigma[rows] = (
            np.einsum("nki,nkj->nij", displacements, displacements) / neighbors.shape[1]
        )
    sigma += ridge * np.eye(n_latent)
    return sigma


def auto_noise_variance(X, neighbourhoods):
    """The ``noise_variance='auto'`` rule for the decoder's likelihood.

    A variance per coordinate: the mean squared data-space distance between
    each training point and its nearest neighbours in the latent space (the
    typical size of one walk step in the data), divided by the number of
    features; the mean variance of the features when that is zero.
    """
    spread = 0.0
    count = 0
    Z = neighbourhoods.Z
    for rows, neighbors in neighbourhoods.groups(Z, neighbourhoods.labels):
        spread += np.square(X[neighbors] - X[rows, None, :]).sum()
        count += neighbors.size
    noise_variance = spread / max(count, 1) / X.shape[1]
    if noise_variance > 0.0:
        return float(noise_variance)
    return float(max(X.var(axis=0).mean(), 1e-12))


def auto_covariance_scale(sigma_trace, Z, labels):
    """The ``covariance_scale='auto'`` rule: steps that mix in about ten.

    For each connected component ``c``, ``alpha_c = STEP_FRACTION^2 *
    tr Cov(Z_c) / mean_{i in c} tr Sigma*_i``: the root-mean-square length of
    one step is ``STEP_FRACTION`` times the root-mean-square distance of the
    component's codes from their mean, so that ten steps carry a walker across
    its component, whatever the component's size. ``alpha_c = 1`` when the
    component's codes are constant, and for every component when there are
    no more coordinates than the ``n_components - 1`` that separate the
    components: the codes then hold no geometry inside a component (what
    varies there is the solver's error), and the walk has nowhere to go.

    Returns
    -------
    scales : ndarray of shape (n_components,)
    """
    n_components = int(labels.max()) + 1
    scales = np.ones(n_components)
    if n_components > 1 and Z.shape[1] <= n_components - 1:
        return scales
    floor = 1e-12 * max(Z.var(axis=0).sum(), 1e-300)
    for component in range(n_components):
        rows = labels == component
        spread = Z[rows].var(axis=0).sum()
        trace = float(np.mean(sigma_trace[rows]))
        if trace > 0.0 and spread > floor:
            scales[component] = STEP_FRACTION**2 * spread / trace
    return scales


def default_ridge(raw_sigma_trace_mean, latent_variance_total, n_latent):
    """Ridge added to ``Sigma*``: a small fraction of its mean per-axis variance.

    ``1e-2 * mean(tr Sigma*) / D``, floored at ``1e-10 * tr(Cov Z) / D`` for codes
    that are constant on each of several components (disconnected clusters).
    """
    ridge = _RIDGE_RELATIVE * raw_sigma_trace_mean / n_latent
    floor = _RIDGE_FLOOR * latent_variance_total / n_latent
    return float(max(ridge, floor, np.finfo(np.float64).tiny))


def target_factors(sigma, covariance_scale):
    """``(inverse Cholesky factor, log det)`` of ``covariance_scale * sigma``.

    ``covariance_scale`` is a number or one value per row of ``sigma``.
    """
    scaled = np.asarray(covariance_scale, dtype=np.float64)[..., None, None] * sigma
    factor = np.linalg.cholesky(scaled)
    identity = np.broadcast_to(np.eye(sigma.shape[-1]), sigma.shape)
    inverse = np.linalg.solve(factor, identity)
    log_det = 2.0 * np.log(np.diagonal(factor, axis1=-2, axis2=-1)).sum(axis=-1)
    return inverse, log_det


def gaussian_kl(factor, target_inverse_factor, target_log_det):
    """``KL(N(0, L L^T) || N(0, S))`` per row, with ``S^-1 = M^T M``.

    ``1/2 [tr(S^-1 C) - D + log det S - log det C]``; ``tr(S^-1 C) = |M L|_F^2``.
    """
    n_latent = factor.shape[-1]
    trace = (target_inverse_factor @ factor).square().sum(dim=(-2, -1))
    log_det = 2.0 * torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(dim=-1)
    return 0.5 * (trace - n_latent + target_log_det - log_det)


def data_standardization(X):
    """``(mean, scale)`` per feature of the data, in float64."""
    return X.mean(axis=0), np.maximum(X.std(axis=0), np.finfo(np.float64).tiny)


def build_networks(
    Z,
    X,
    step_scale,
    *,
    decoder_hidden_layer_sizes,
    covariance_hidden_layer_sizes,
    activation,
    seed,
    decoder=None,
    decoder_params=None,
    covariance_network=None,
    covariance_params=None,
):
    """Initialise the decoder and the covariance network (float32, CPU).

    ``decoder`` and ``covariance_network`` are the sampler's parameters:
    ``None`` for an :class:`~skvdae.nn.MLP` of the given hidden layers, or a
    factory called as ``factory(n_inputs, n_outputs, **params)``.
    """
    tiny = np.finfo(np.float32).tiny
    latent_mean = Z.mean(axis=0)
    latent_scale = np.maximum(Z.std(axis=0), tiny)
    as32 = np.float32
    data_mean, data_scale = data_standardization(X)
    n_latent, n_features = Z.shape[1], X.shape[1]
    n_factor = n_latent * (n_latent + 1) // 2
    with seeded_torch(seed):
        decoder_body = build_network(
            decoder,
            decoder_params,
            n_latent,
            n_features,
            default=lambda: MLP(
                n_latent, n_features, decoder_hidden_layer_sizes, activation
            ),
            name="decoder",
            params_name="decoder_params",
        )
        covariance_body = build_network(
            covariance_network,
            covariance_params,
            n_latent,
            n_factor,
            default=lambda: MLP(
                n_latent, n_factor, covariance_hidden_layer_sizes, activation
            ),
            name="covariance_network",
            params_name="covariance_params",
        )
        # The data's statistics stay float64: training works in standardised
        # units (Decoder.forward_standardized), whatever the data's scale.
        decoder = Decoder(
            latent_mean.astype(as32),
            latent_scale.astype(as32),
            data_mean,
            data_scale,
            decoder_body,
        )
        covariance = CholeskyNetwork(
            latent_mean.astype(as32),
            latent_scale.astype(as32),
            step_scale.astype(as32),
            covariance_body,
        )
    return decoder, covariance


class _Joint(torch.nn.Module):
    """Both networks under one module, for a single optimiser and snapshots."""

    def __init__(self, decoder, covariance):
        super().__init__()
        self.decoder = decoder
        self.covariance = covariance


def train_vdae(
    Z,
    X,
    target_inverse,
    target_log_det,
    decoder,
    covariance,
    *,
    noise_variance,
    batch_size,
    max_iter,
    learning_rate,
    device,
    seed,
    tol=None,
    n_iter_no_change=10,
    progress=None,
    communicator=None,
):
    """Minimise ``mean_i [KL_i + |g(z'_i) - x'_i|^2 / (2c)]`` on minibatches.

    Returns ``(decoder, covariance, TrainingResult)``, the networks trained in
    float32 on ``device``. Adam runs at ``learning_rate`` for the first 80% of
    the steps and at a tenth of it for the rest (:data:`SCHEDULE`). Only
    ``batch x batch`` latent distances are formed. The loop is
    :func:`skvdae.nn.fit_minibatches`, with its divergence policy.

    With a ``communicator`` (a data-parallel fit) each process draws
    ``ceil(batch_size / world_size)`` samples of its shard of the rows, and
    searches the landing points within its own batch; the loss is the mean
    over the processes and the gradients are averaged, so the processes keep
    identical networks.
    """
    n_samples = Z.shape[0]
    first, last = 0, n_samples
    after_backward = None
    if communicator is not None:
        if n_samples < communicator.world_size:
            raise ValueError(
                f"{n_samples} training samples cannot be shared by "
                f"{communicator.world_size} processes: use fewer processes."
            )
        first, last = communicator.shard(n_samples)
        batch_size = -(-batch_size // communicator.world_size)
        seed = communicator.seed(seed)
    batch_size = min(batch_size, last - first)
    joint = _Joint(decoder, covariance).to(device)
    codes = torch.tensor(Z, dtype=torch.float32, device=device)
    # |g(z') - x|^2 / (2c) = sum_d scale_d^2 (g_std - x_std)_d^2 / (2c), with
    # the standardisation and the weights computed in float64.
    mean, scale = data_standardization(X)
    data = torch.tensor((X - mean) / scale, dtype=torch.float32, device=device)
    weights = torch.tensor(
        scale**2 / (2.0 * noise_variance), dtype=torch.float32, device=device
    )
    inverse = torch.tensor(target_inverse, dtype=torch.float32, device=device)
    log_det = torch.tensor(target_log_det, dtype=torch.float32, device=device)
    generator = make_generator(seed, device)
    optimizer = Adam(joint.parameters(), lr=learning_rate)
    if communicator is not None:
        communicator.broadcast_parameters([joint])

        def after_backward():
            communicator.average_gradients([joint])

    def step(iteration):
        rows = first + torch.randint(
            last - first, (batch_size,), generator=generator, device=device
        )
        z, x = codes[rows], data[rows]
        noise = torch.randn(
            (*z.shape, 1), generator=generator, device=device, dtype=z.dtype
        )
        factor = joint.covariance(z)
        moved = z + (factor @ noise).squeeze(-1)
        with torch.no_grad():
            landing = torch.cdist(moved, z).argmin(dim=1)
        kl = gaussian_kl(factor, inverse[rows], log_det[rows])
        error = joint.decoder.forward_standardized(moved) - x[landing]
        reconstruction = (weights * error.square()).sum(dim=1)
        loss = (kl + reconstruction).mean()
        if communicator is not None:
            loss = communicator.sum_with_gradient(loss) / communicator.world_size
        return loss

    result = fit_minibatches(
        step,
        max_iter=max_iter,
        optimizers=[optimizer],
        modules=[joint],
        schedule=SCHEDULE,
        tol=tol,
        n_iter_no_change=n_iter_no_change,
        name="VDAE",
        advice="try a smaller learning_rate or a larger noise_variance.",
        progress=progress,
        after_backward=after_backward,
    )
    return joint.decoder, joint.covariance, result


class StepMixture:
    """Where a sampling step lands: a Gibbs draw among training codes.

    A walk step from the training code ``z_i`` draws ``z' ~ N(z_i, C_i)``, with
    ``C_j = L(z_j) L(z_j)^T`` the covariance network's step at ``z_j``, and
    lands on a training code of the walker's connected component. Both draws
    are conditionals of one joint law, ``p(i, z') = N(z'; z_i, C_i) / n_c``,
    so the walk is a Gibbs sampler: its stationary distribution over the
    landing codes is uniform over the component's training points, the data's
    own distribution, whatever the length of the steps. (Landing on the
    nearest code instead hits each code in proportion to the volume of its
    Voronoi cell, which over-samples the sparse parts of the data once the
    steps are longer than the spacing of the codes.)

    The landing code is drawn from ``p(j | z')`` given an auxiliary candidate
    set ``S``, so that a step costs ``O(k + m)`` codes rather than ``n_c``:
    ``S`` holds the ``k`` nearest codes of ``z'`` (``K(z')``, ``k`` that of
    ``Sigma*``), a random subset
    ``R`` of the component (each code with probability ``rho = min(1, m /
    n_c)``, ``m =`` :data:`LANDING_SUBSET`, one subset per
    :data:`LANDING_WALKERS` walkers)
    and the walker's current code. Given ``S`` and ``z'``, the landing code
    is drawn with probability proportional to ``N(z'; z_j, C_j)``, times
    ``1 / rho`` for a code outside ``K(z')``: that is ``p(j | S, z')`` under
    the joint law extended by ``S``, each candidate outside ``K(z')`` standing
    for the ``1 / rho`` codes it was drawn among, so the step is still an
    exact Gibbs step and the stationary law is unchanged. With ``n_c <= m``
    it is the full posterior over the component.

    Parameters
    ----------
    neighbourhoods : LatentNeighbourhoods
        The training codes, their components and nearest-code search.
    covariance : torch.nn.Module
        The float64 covariance network, ``z -> L(z)``.
    """

    def __init__(self, neighbourhoods, covariance):
        self.neighbourhoods = neighbourhoods
        self.covariance = covariance
        Z = neighbourhoods.Z
        self._centre = Z.mean(axis=0)
        self._cache = None
        if 3 * Z.shape[0] * Z.shape[1] ** 2 <= _FACTOR_CACHE:
            self._cache = self._compute(np.arange(Z.shape[0]))

    def _compute(self, index):
        """``(L^-1, log det C, C^-1 flattened, C^-1 z, z^T C^-1 z + log det C,
        L)`` at the training codes ``index``, ``z`` centred."""
        codes = torch.as_tensor(self.neighbourhoods.Z[index], dtype=torch.float64)
        with torch.no_grad():
            factor = self.covariance(codes)
        identity = torch.eye(codes.shape[-1], dtype=torch.float64).expand_as(factor)
        inverse = torch.linalg.solve_triangular(factor, identity, upper=False)
        log_det = 2.0 * torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)
        precision = inverse.transpose(-2, -1) @ inverse
        centred = codes - torch.as_tensor(self._centre)
        linear = (precision @ centred[..., None])[..., 0]
        constant = (centred * linear).sum(-1) + log_det
        return inverse, log_det, precision.flatten(1), linear, constant, factor

    def factors(self, index):
        """``L`` at the training codes ``index``."""
        return self._parameters(index, (5,))[0]

    def _parameters(self, index, fields):
        """The :meth:`_compute` values numbered ``fields`` at ``index``."""
        index = np.asarray(index)
        if self._cache is not None:
            flat = torch.as_tensor(index.reshape(-1))
            values = [self._cache[field][flat] for field in fields]
        else:
            computed = self._compute(index.reshape(-1))
            values = [computed[field] for field in fields]
        return [value.reshape(*index.shape, *value.shape[1:]) for value in values]

    def _log_density(self, Z_query, index):
        """``log N(z'; z_j, C_j)`` up to a constant, ``index`` of shape (q, c)."""
        inverse, log_det = self._parameters(index, (0, 1))
        offsets = torch.as_tensor(Z_query[:, None, :] - self.neighbourhoods.Z[index])
        whitened = (inverse @ offsets[..., None])[..., 0]
        return -0.5 * (whitened.square().sum(-1) + log_det)

    def _random_subsets(self, members, rho, n_parts, generator):
        """``n_parts`` independent subsets of ``members``, each member kept with
        probability ``rho``: sorted codes, padded with ``n_train``.

        Drawn by geometric gaps between kept members, ``O(rho n_c)`` each.
        """
        n_members = members.size
        if rho >= 1.0:
            return np.broadcast_to(members, (n_parts, n_members))
        expected = rho * n_members
        width = int(expected + 6.0 * np.sqrt(expected) + 16)
        log_miss = np.log1p(-rho)
        positions = np.full((n_parts, 1), -1, dtype=np.int64)
        chunks = []
        while positions[:, -1].min() < n_members:
            uniform = 1.0 - torch.rand((n_parts, width), generator=generator).numpy()
            gaps = np.floor(np.log(uniform) / log_miss).astype(np.int64) + 1
            positions = positions[:, -1:] + np.cumsum(gaps, axis=1)
            chunks.append(positions)
        positions = np.concatenate(chunks, axis=1)
        kept = positions < n_members
        positions = positions[:, : max(int(kept.sum(axis=1).max()), 1)]
        kept = positions < n_members
        codes = members[np.minimum(positions, n_members - 1)]
        return np.where(kept, codes, self.neighbourhoods.Z.shape[0])

    def _subset_log_weights(self, queries, parts, subsets):
        """``log N(z'; z_j, C_j)`` of each walker against its part's subset, as a
        batched matrix product on centred codes; ``-inf`` on the padding."""
        n_parts, width = subsets.shape
        n_train = self.neighbourhoods.Z.shape[0]
        padding = subsets >= n_train
        precision, linear, constant = self._parameters(
            np.where(padding, 0, subsets), (2, 3, 4)
        )
        walkers = parts.size // n_parts
        centred = torch.as_tensor(queries - self._centre).reshape(n_parts, walkers, -1)
        outer = (centred[..., :, None] * centred[..., None, :]).flatten(2)
        quadratic = outer @ precision.transpose(1, 2)
        quadratic -= 2.0 * centred @ linear.transpose(1, 2)
        quadratic += constant[:, None, :]
        log_weights = (-0.5 * quadratic).reshape(n_parts * walkers, width)
        return log_weights.masked_fill(torch.as_tensor(padding)[parts], -torch.inf)

    def _draw_chunk(self, queries, current, near, members, rho, generator):
        """Landing codes of a chunk of walkers of one component, one random
        subset ``R`` per :data:`LANDING_WALKERS` walkers."""
        n_query = queries.shape[0]
        walkers = min(LANDING_WALKERS, n_query)
        n_parts = -(-n_query // walkers)
        subsets = self._random_subsets(members, rho, n_parts, generator)
        # Pad the walkers to whole parts; the padding rows are dropped below.
        padded = n_parts * walkers - n_query
        parts = np.arange(n_parts * walkers) // walkers
        queries = np.concatenate([queries, np.repeat(queries[-1:], padded, axis=0)])
        outside = -np.log(rho)
        subset_weights = (
            self._subset_log_weights(queries, parts, subsets)[:n_query] + outside
        )
        mine = torch.as_tensor(np.ascontiguousarray(subsets[parts[:n_query]]))
        # A code of K(z') enters once, with weight 1; the walker's current
        # code, unless in K(z') or R, is one more candidate outside K(z').
        near_t = torch.as_tensor(near)
        where = torch.searchsorted(mine, near_t).clamp_(max=mine.shape[1] - 1)
        in_subset = mine.gather(1, where) == near_t
        rows = torch.arange(n_query)[:, None].expand_as(where)
        subset_weights[rows[in_subset], where[in_subset]] = -torch.inf
        current_t = torch.as_tensor(current)[:, None]
        where = torch.searchsorted(mine, current_t).clamp_(max=mine.shape[1] - 1)
        extra = (current >= 0) & ~(mine.gather(1, where) == current_t)[:, 0].numpy()
        extra &= ~(near == current[:, None]).any(axis=1)
        current_weights = torch.full((n_query, 1), -torch.inf, dtype=torch.float64)
        if extra.any():
            current_weights[extra, 0] = (
                self._log_density(queries[:n_query][extra], current[extra, None])[:, 0]
                + outside
            )
        log_weights = torch.cat(
            [
                self._log_density(queries[:n_query], near),
                subset_weights,
                current_weights,
            ],
            dim=1,
        )
        uniform = torch.rand(n_query, generator=generator, dtype=torch.float64)
        chosen = _draw_categorical(log_weights, uniform).numpy()
        candidates = torch.cat([near_t, mine, current_t], dim=1).numpy()
        return candidates[np.arange(n_query), chosen]

    def draw(self, Z_query, current, labels, generator):
        """Draw the landing code of each step ``z'``.

        Parameters
        ----------
        Z_query : ndarray of shape (n_query, D)
            The steps' latent points ``z'``.
        current : ndarray of shape (n_query,)
            Each walker's current training code, or -1 for a walker that is
            not on one (its first step from a new point).
        labels : ndarray of shape (n_query,)
            The walkers' components.
        generator : torch.Generator

        Returns
        -------
        index : ndarray of shape (n_query,)
            Rows of the training codes.
        """
        neighbourhoods = self.neighbourhoods
        n_latent = neighbourhoods.Z.shape[1]
        current = np.asarray(current, dtype=np.int64)
        landing = np.empty(Z_query.shape[0], dtype=np.intp)
        for rows, near in neighbourhoods.groups(Z_query, labels):
            members = neighbourhoods.members(labels[rows[0]])
            rho = min(1.0, LANDING_SUBSET / members.size)
            # Walkers per pass: the subsets' parameters and the weights stay
            # within _FACTOR_CACHE entries.
            width = min(members.size, int(2 * LANDING_SUBSET + 16))
            per_part = LANDING_WALKERS * width * (n_latent**2 + 1)
            step = LANDING_WALKERS * max(1, _FACTOR_CACHE // per_part)
            for first in range(0, rows.size, step):
                part = slice(first, first + step)
                landing[rows[part]] = self._draw_chunk(
                    Z_query[rows[part]],
                    current[rows[part]],
                    near[part],
                    members,
                    rho,
                    generator,
                )
        return landing


def _draw_categorical(log_weights, uniform):
    """One index per row with probability ``softmax(log_weights)``.

    ``uniform`` in ``[0, 1)``; inverts the cumulative weights at ``(1 - u)``
    times their total, so an index of zero weight is never drawn.
    """
    shifted = log_weights - log_weights.max(dim=1, keepdim=True).values
    cumulative = torch.exp(shifted).cumsum(dim=1)
    target = (1.0 - uniform)[:, None] * cumulative[:, -1:]
    index = torch.searchsorted(cumulative, target)[:, 0]
    return index.clamp_(max=log_weights.shape[1] - 1)


def emission_roots(sigma, factor):
    """Cholesky factors of the covariance around a landing code where a sample
    is decoded: ``E_j = min(1, tr C_j / tr Sigma*_j) Sigma*_j``.

    ``Sigma*_j`` is the second moment of the landing code's ``k`` nearest codes
    (at ``alpha = 1``), shrunk to the length of one walk step ``C_j = L L^T``
    where steps are shorter than the neighbourhood. The sample is decoded on
    the surface that the training codes cover rather than at the step's own
    point ``z'``, which long steps (``covariance_scale`` well above 1, as
    ``'auto'`` chooses to mix in about ten steps) carry off that surface,
    where the decoder extrapolates: on the torus of the generative benchmark
    0.5% of the samples decoded at ``z'`` fell into the central hole and
    closed one of its loops.

    Parameters
    ----------
    sigma : ndarray of shape (n, D, D)
        ``Sigma*`` at each landing code.
    factor : ndarray of shape (n, D, D)
        ``L`` at each landing code.

    Returns
    -------
    ndarray of shape (n, D, D)
    """
    step = np.einsum("nij,nij->n", factor, factor)
    shrink = np.minimum(1.0, step / np.trace(sigma, axis1=1, axis2=2))
    return np.linalg.cholesky(sigma * shrink[:, None, None])


def emission_codes(Z, roots, generator):
    """``z_j + E_j^{1/2} eta``, ``eta`` standard normal (:func:`emission_roots`)."""
    eta = torch.randn(Z.shape, generator=generator, dtype=torch.float64).numpy()
    return Z + np.einsum("nij,nj->ni", roots, eta)


def local_emission(
    neighbourhoods,
    residuals,
    differences,
    Z_query,
    decoded,
    generator,
    labels=None,
    n_mean=None,
):
    """One step's sample and landing point, from the residuals near ``z'``.

    Over the ``k`` nearest training codes ``z_j`` of each query's component,
    with ``r_j = x_j - g(z_j)`` the reconstruction residuals, ``r_bar`` the
    mean of the residuals of the ``m`` nearest of them (``m = n_mean``,
    :func:`residual_mean_size`), ``d_j = r_j - r_p(j)`` the difference to the
    residual of ``z_j``'s nearest other code (:func:`residual_differences`)
    and ``eta_j`` iid standard normal::

        x = g(z') + r_bar + (1 - 1/m)^(1/2) (2 k)^(-1/2) sum_j d_j eta_j

    a draw from the Gaussian with the local mean of the residuals and the
    covariance ``(1 - 1/m) (1 / 2k) sum_j d_j d_j^T`` (exactly, at ``O(k m)``
    cost and without a factorisation). ``(1 / 2k) sum_j d_j d_j^T`` is the
    difference-based estimate of the residuals' noise (Rice, 1984): for noise
    independent from point to point ``E[d d^T] = 2 Cov``, while the part of
    the residuals that varies smoothly with the code (the decoder's own error
    on noise-free data) cancels between neighbours instead of being emitted
    as noise. ``r_bar`` carries ``1/m`` of that noise already (the training
    points' own), hence the factor ``1 - 1/m``: with ``m = 1`` a sample is
    its nearest training point's residual on the decoded point, the noise
    included. The spread goes only along the directions in which the data
    deviate from the decoder, and it follows the data if they are rotated.
    The landing point is the nearest of these codes.

    Parameters
    ----------
    neighbourhoods : LatentNeighbourhoods
    residuals : ndarray of shape (n_train, n_features)
    differences : ndarray of shape (n_train, n_features)
    Z_query : ndarray of shape (n_query, D)
        The step's latent points ``z'``.
    decoded : ndarray of shape (n_query, n_features)
        ``g(z')``.
    generator : torch.Generator
    labels : ndarray of shape (n_query,) or None
        The queries' components, when known; else those of their nearest
        training codes.
    n_mean : int or None, default=None
        ``m``; None (or more than a component's ``k``) takes all ``k``.

    Returns
    -------
    emitted : ndarray of shape (n_query, n_features)
    landing : ndarray of shape (n_query,)
        Index of the training point nearest to each ``z'``.
    """
    emitted = np.empty_like(decoded)
    landing = np.empty(Z_query.shape[0], dtype=np.intp)
    # Queries per block: the gathered residuals (block x k x features) stay
    # within _FACTOR_CACHE entries, whatever the number of features.
    per_query = neighbourhoods.n_neighbors * residuals.shape[1]
    block = max(1, _FACTOR_CACHE // per_query)
    for rows, neighbors in neighbourhoods.groups(Z_query, labels):
        k = neighbors.shape[1]
        m = k if n_mean is None else min(int(n_mean), k)
        eta = torch.randn(
            neighbors.shape, generator=generator, dtype=torch.float64
        ).numpy()
        scale = np.sqrt((1.0 - 1.0 / m) / (2.0 * k))
        for start in range(0, rows.size, block):
            part = slice(start, start + block)
            sample = decoded[rows[part]] + residuals[neighbors[part, :m]].mean(axis=1)
            if m > 1:
                sample += scale * np.einsum(
                    "nkm,nk->nm", differences[neighbors[part]], eta[part]
                )
            emitted[rows[part]] = sample
        landing[rows] = neighbors[:, 0]
    return emitted, landing


def residual_mean_size(neighbourhoods, residuals, max_rows=2000):
    """``m`` of :func:`local_emission`: 1 or ``k``, by leave-one-out error.

    A sample takes either the residual of its nearest training code (``m =
    1``: detail that varies with the code, which the decoder misses) or the
    mean residual of its ``k`` nearest codes and fresh noise of their
    difference-based covariance (``m = k``: residuals that are noise). The
    choice follows from predicting each training residual ``r_j``, left out,
    by the mean residual of its ``m`` nearest other codes, ``m = 1 .. k``:
    for noise independent from point to point the error ``sigma^2 (1 + 1/m)``
    falls all the way to ``m = k``, while residuals that vary with the code
    have their smallest error at a few neighbours and a larger one, the bias
    of blending, at ``k``. ``m = k`` where the error at ``k`` is within one
    standard error (of the paired difference) of the smallest, else ``m =
    1``.

    The residuals of noisy data (a decoder that fits the manifold) are noise
    and get ``m = k``. Those of noise-free data (rendered images) are the
    decoder's error, which varies with the code: averaging ``k`` of them, or
    even the two on either side, blends ``k`` (or two) training points into
    one off the manifold. On a video of a rotating object at 100 x 80 pixels
    the samples were 4.2 from the nearest true frame with ``m = 2`` and 2.0
    with ``m = 1``, against 1.7 for the training frames themselves. Hence
    only two values, not the ``m`` of the smallest error, which optimises a
    prediction (two-sided blends) rather than the samples.

    Parameters
    ----------
    neighbourhoods : LatentNeighbourhoods
    residuals : ndarray of shape (n_train, n_features)
    max_rows : int, default=2000
        At most this many training rows (evenly spaced) are predicted.

    Returns
    -------
    int
        1 or ``k``; ``k`` when no component has two codes.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae._vdae import LatentNeighbourhoods, residual_mean_size
    >>> t = np.linspace(0.0, 1.0, 200)[:, None]
    >>> codes = LatentNeighbourhoods(t, np.zeros(200, int), n_neighbors=10)
    >>> residual_mean_size(codes, np.sin(60.0 * t))  # varies with the code
    1
    >>> noise = np.random.RandomState(0).normal(size=(200, 1))
    >>> residual_mean_size(codes, noise)  # noise: the local mean
    10
    """
    n_train = residuals.shape[0]
    k = neighbourhoods.n_neighbors
    chosen = np.unique(np.linspace(0, n_train - 1, min(max_rows, n_train)).astype(int))
    errors = []
    # Rows per block: a block's sums of residuals stay within _FACTOR_CACHE.
    block = max(1, _FACTOR_CACHE // (4 * residuals.shape[1]))
    for component in range(neighbourhoods.n_components):
        rows = chosen[neighbourhoods.labels[chosen] == component]
        others = neighbourhoods.others(rows, k)
        if others.shape[1] == 0:
            continue
        for start in range(0, rows.size, block):
            part = slice(start, start + block)
            # Column m - 1: the error of the mean of the m nearest others (of
            # all of them in a component with fewer).
            error = np.empty((len(rows[part]), k))
            left_out = residuals[rows[part]]
            total = np.zeros_like(left_out)
            for rank in range(k):
                if rank < others.shape[1]:
                    total += residuals[others[part, rank]]
                    last = np.sum((left_out - total / (rank + 1)) ** 2, axis=1)
                error[:, rank] = last
            errors.append(error)
    if not errors:
        return k
    errors = np.concatenate(errors)
    excess = errors[:, -1] - errors[:, np.argmin(errors.mean(axis=0))]
    return k if excess.mean() <= excess.std() / np.sqrt(excess.size) else 1


def residual_differences(neighbourhoods, residuals):
    """``d_i = r_i - r_p(i)``, with ``p(i)`` the nearest other training code.

    See :func:`local_emission`; within a component, and zero for a code
    alone in its component.
    """
    return residuals - residuals[neighbourhoods.partners()]


class LocalStep:
    """A sampling step with ``decoder_variance='local'``: land, then emit.

    The step ``z'`` lands on a training code drawn by :class:`StepMixture`;
    the sample is decoded around that code (:func:`emission_roots`) and given
    the local moments of the residuals (:func:`local_emission`); the walk
    goes on from the landing code.

    Parameters
    ----------
    mixture : StepMixture
        The landing draw; its training codes, neighbourhoods and covariance
        network are the walk's.
    residuals, differences : ndarray of shape (n_train, n_features)
        See :func:`local_emission`.
    decoder : torch.nn.Module
        The float64 decoder.
    ridge : float
        The ridge of ``Sigma*``.
    n_mean : int or None, default=None
        The residuals averaged into a sample (see :func:`local_emission`).
    """

    def __init__(self, mixture, residuals, differences, decoder, ridge, n_mean=None):
        self.mixture = mixture
        self.neighbourhoods = mixture.neighbourhoods
        self.residuals = residuals
        self.differences = differences
        self.decoder = decoder
        self.ridge = ridge
        self.n_mean = n_mean
        n_train, n_latent = self.neighbourhoods.Z.shape
        self._roots = None
        if n_train * n_latent**2 <= _FACTOR_CACHE:
            self._roots = self._compute_roots(np.arange(n_train))

    def _compute_roots(self, index):
        codes = self.neighbourhoods.Z[index]
        labels = self.neighbourhoods.labels[index]
        sigma = local_second_moments(self.neighbourhoods, codes, self.ridge, labels)
        return emission_roots(sigma, self.mixture.factors(index).numpy())

    def start(self, codes):
        """The walkers' state at their first codes: no training code, and the
        component of their nearest code."""
        return np.full(codes.shape[0], -1), self.neighbourhoods.labels_of(codes)

    def factors(self, codes, state):
        """``L`` at the walkers' codes: from the landing codes' table once the
        walkers stand on training codes."""
        index = state[0]
        if np.all(index >= 0):
            return self.mixture.factors(index)
        return self.mixture.covariance(torch.as_tensor(codes))

    def __call__(self, moved, state, generator):
        """``(samples, landing codes, state)`` of one step."""
        index = self.mixture.draw(moved, *state, generator)
        codes = self.neighbourhoods.Z[index]
        labels = self.neighbourhoods.labels[index]
        roots = (
            self._compute_roots(index) if self._roots is None else self._roots[index]
        )
        points = emission_codes(codes, roots, generator)
        with torch.no_grad():
            decoded = self.decoder(torch.as_tensor(points)).numpy()
        emitted, _ = local_emission(
            self.neighbourhoods,
            self.residuals,
            self.differences,
            points,
            decoded,
            generator,
            labels,
            self.n_mean,
        )
        return emitted, codes, (index, labels)


def walk(embed, covariance, decoder, X, n_steps, generator, keep_path=True, step=None):
    """Algorithm 2: ``X_{t+1} = g(psi(X_t) + L(psi(X_t)) eps_t)``, float64 numpy.

    ``embed`` maps a float64 numpy array to its codes; the networks are float64
    CPU modules; ``generator`` is a CPU ``torch.Generator``. With ``step`` (a
    :class:`LocalStep`), each move ``z'`` lands on a training code and the
    step emits the sample that ``step`` returns, while the walk itself goes
    on from the landing code: neither the emission noise nor the decoder's
    error nor the encoder's extrapolation off the data feeds back into the
    next step, so none of them can accumulate along the walk.
    Returns the path of shape ``(n_steps + 1, n, m)``, or only the last points
    when ``keep_path`` is false.
    """
    path = [X] if keep_path else None
    emitted = X
    with torch.no_grad():
        codes = embed(X)
        state = None if step is None else step.start(codes)
        for _ in range(n_steps):
            codes = torch.as_tensor(codes, dtype=torch.float64)
            noise = torch.randn(
                (*codes.shape, 1), generator=generator, dtype=torch.float64
            )
            factor = covariance(codes) if step is None else step.factors(codes, state)
            moved = codes + (factor @ noise).squeeze(-1)
            if step is None:
                emitted = decoder(moved).numpy()
                codes = embed(emitted)
            else:
                emitted, codes, state = step(moved.numpy(), state, generator)
            if keep_path:
                path.append(emitted)
    if keep_path:
        return np.stack(path)
    return emitted


def local_elbo(codes, X, target_inverse, target_log_det, covariance, decoder, c):
    """Per-sample lower bound of ``log p(x' = x | x)``: the walk returning home.

    ``-KL - E|g(z + L eps) - x|^2 / (2c) - m/2 log(2 pi c)``, the expectation by
    the ``2D`` symmetric sigma points ``eps = +-sqrt(D) e_d`` (exact when ``g``
    is quadratic). Deterministic, each row independent of the others.
    """
    n_samples, n_latent = codes.shape
    with torch.no_grad():
        z = torch.as_tensor(codes, dtype=torch.float64)
        x = torch.as_tensor(X, dtype=torch.float64)
        factor = covariance(z)
        kl = gaussian_kl(
            factor,
            torch.as_tensor(target_inverse, dtype=torch.float64),
            torch.as_tensor(target_log_det, dtype=torch.float64),
        )
        # columns of sqrt(D) L, both signs: (n, 2D, D)
        offsets = np.sqrt(n_latent) * factor.transpose(-2, -1)
        points = torch.cat([z[:, None, :] + offsets, z[:, None, :] - offsets], dim=1)
        decoded = decoder(points.reshape(-1, n_latent)).reshape(
            n_samples, 2 * n_latent, -1
        )
        error = (decoded - x[:, None, :]).square().sum(dim=-1).mean(dim=1)
    n_features = X.shape[1]
    return (
        -kl.numpy()
        - error.numpy() / (2.0 * c)
        - 0.5 * n_features * np.log(2.0 * np.pi * c)
    )
