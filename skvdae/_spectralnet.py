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
linear head (``_spectral.diffusion_coordinates``).
"""

import numpy as np
import torch

from ._nn import DiffusionNetwork
from ._torch_utils import inference_copy, make_generator, seeded_torch
from ._training import DivergenceGuard

_MAX_CHOLESKY_TRIES = 6


class EdgeSampler:
    """Draws edges of the affinity graph with probability proportional to weight."""

    def __init__(self, affinity, device):
        coo = affinity.tocoo()
        cumulative = np.cumsum(coo.data, dtype=np.float64)
        self.rows = torch.as_tensor(coo.row.astype(np.int64), device=device)
        self.cols = torch.as_tensor(coo.col.astype(np.int64), device=device)
        # Sampling in float64 keeps edges of weight ~1e-6 of the total reachable.
        self.cdf = torch.as_tensor(cumulative / cumulative[-1], device=device)

    def sample(self, batch_size, generator):
        uniform = torch.rand(
            batch_size, generator=generator, device=self.cdf.device, dtype=torch.float64
        )
        edges = torch.searchsorted(self.cdf, uniform).clamp_(max=self.cdf.numel() - 1)
        return self.rows[edges], self.cols[edges]


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


def rayleigh_loss(y_first, y_second):
    """``tr(G^-1 M) / 2`` for one batch of edge endpoints, or ``None``."""
    batch_size = y_first.shape[0]
    gram = (y_first.T @ y_first + y_second.T @ y_second) / (2 * batch_size)
    factor = cholesky_with_jitter(gram)
    if factor is None:
        return None
    whitened = torch.linalg.solve_triangular(
        factor, (y_first - y_second).T, upper=False
    )
    return 0.5 * (whitened**2).sum() / batch_size


def train_spectralnet(
    X,
    graph,
    *,
    n_outputs,
    hidden_layer_sizes,
    activation,
    batch_size,
    max_iter,
    learning_rate,
    device,
    seed,
    verbose=0,
):
    """Train the network; returns ``(network, n_steps_taken, loss_history)``.

    ``network`` is the trained float32 module on ``device``. A step whose
    loss is not finite restores the last snapshot and halves the learning rate;
    after a few such restarts the fit fails loudly (``DivergenceGuard``).
    """
    mean = X.mean(axis=0)
    scale = max(float(X.std(axis=0).max()), np.finfo(np.float32).tiny)
    with seeded_torch(seed):
        network = DiffusionNetwork(
            mean.astype(np.float32),
            np.float32(scale),
            hidden_layer_sizes,
            n_outputs,
            activation,
        )
    network = network.to(device)
    inputs = torch.tensor(np.asarray(X, dtype=np.float32), device=device)
    sampler = EdgeSampler(graph.affinity, device)
    generator = make_generator(seed, device)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)

    history = []
    guard = DivergenceGuard(
        network,
        optimizer,
        learning_rate,
        "SpectralNet",
        "try a smaller learning_rate or a larger batch_size.",
    )
    for step in range(1, max_iter + 1):
        first, second = sampler.sample(batch_size, generator)
        outputs = network(inputs[torch.cat([first, second])])
        loss = rayleigh_loss(outputs[:batch_size], outputs[batch_size:])
        if loss is None or not torch.isfinite(loss):
            guard.recover()
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
        guard.step_done(step)
        if verbose and (step % max(1, max_iter // 10) == 0 or step == max_iter):
            print(f"[SpectralNet] step {step}/{max_iter}  loss {history[-1]:.4e}")
    return network, len(history), np.asarray(history)


def hidden_features(network, X, batch_size=65536):
    """Last hidden layer on ``X``, float64 numpy, computed on a float64 CPU copy."""
    features_only = inference_copy(network)
    outputs = []
    with torch.no_grad():
        for start in range(0, X.shape[0], batch_size):
            batch = torch.tensor(X[start : start + batch_size], dtype=torch.float64)
            outputs.append(features_only.embed_features(batch).numpy())
    return np.concatenate(outputs, axis=0), features_only
