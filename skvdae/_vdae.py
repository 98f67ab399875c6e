"""The variational diffusion autoencoder: local covariances, training loop, walks.

Given a frozen diffusion map ``psi`` and the codes ``Z = psi(X)`` of the training
data (DESIGN.md section 3):

- the target covariance of one random-walk step at ``z_i`` is the second moment
  of the latent displacements to its ``k`` nearest codes,
  ``Sigma*_i = (1/k) sum_j (z_j - z_i)(z_j - z_i)^T + ridge I``
  (:func:`local_second_moments`, computed in chunks of rows, never n x n);
- a network gives a Cholesky factor ``L(z)``; the KL divergence between
  ``N(z, L L^T)`` and ``N(z, alpha Sigma*)`` is exact (:func:`gaussian_kl`);
- each step draws ``z' = z + L eps`` for a minibatch, lands on the batch point
  whose code is nearest to ``z'`` (a batch x batch distance matrix) and asks the
  decoder to reproduce it with Gaussian noise of variance ``c``.
"""

import numpy as np
import torch

from ._nn import CholeskyNetwork, Decoder
from ._torch_utils import make_generator, seeded_torch
from ._training import DivergenceGuard

_ANNEAL_AT = 0.8
_RIDGE_RELATIVE = 1e-2
_RIDGE_FLOOR = 1e-10
_CHUNK = 4096


def local_second_moments(latent_index, Z_train, Z_query, n_neighbors, ridge):
    """``Sigma*`` at each query code, from its nearest training codes.

    Parameters
    ----------
    latent_index : sklearn.neighbors.NearestNeighbors
        Fitted on ``Z_train``.
    Z_train : ndarray of shape (n_train, D)
    Z_query : ndarray of shape (n_query, D)
    n_neighbors : int
        ``k``; a training point queried against itself counts itself (with a zero
        displacement), so training and new points are treated alike.
    ridge : float

    Returns
    -------
    sigma : ndarray of shape (n_query, D, D)
    """
    n_latent = Z_train.shape[1]
    sigma = np.empty((Z_query.shape[0], n_latent, n_latent))
    for start in range(0, Z_query.shape[0], _CHUNK):
        query = Z_query[start : start + _CHUNK]
        neighbors = latent_index.kneighbors(
            query, n_neighbors=n_neighbors, return_distance=False
        )
        displacements = Z_train[neighbors] - query[:, None, :]
        sigma[start : start + _CHUNK] = (
            np.einsum("nki,nkj->nij", displacements, displacements) / n_neighbors
        )
    sigma += ridge * np.eye(n_latent)
    return sigma


def auto_noise_variance(X, Z, latent_index, n_neighbors, chunk=4096):
    """The ``noise_variance='auto'`` rule for the decoder's likelihood.

    The mean squared data-space distance between each training point and its
    ``n_neighbors`` nearest neighbours in the latent space, the typical size of
    one walk step in the data; the total data variance when that is zero.
    """
    n_samples = X.shape[0]
    neighbours = latent_index.kneighbors(Z, n_neighbors, return_distance=False)
    spread = 0.0
    for start in range(0, n_samples, chunk):
        rows = neighbours[start : start + chunk]
        spread += np.square(X[rows] - X[start : start + chunk, None, :]).sum()
    noise_variance = spread / (n_samples * n_neighbors)
    if noise_variance > 0.0:
        return float(noise_variance)
    return float(max(X.var(axis=0).sum(), 1e-12))


def default_ridge(raw_sigma_trace_mean, latent_variance_total, n_latent):
    """Ridge added to ``Sigma*``: a small fraction of its mean per-axis variance.

    ``1e-2 * mean(tr Sigma*) / D``, floored at ``1e-10 * tr(Cov Z) / D`` for codes
    that are constant on each of several components (disconnected clusters).
    """
    ridge = _RIDGE_RELATIVE * raw_sigma_trace_mean / n_latent
    floor = _RIDGE_FLOOR * latent_variance_total / n_latent
    return float(max(ridge, floor, np.finfo(np.float64).tiny))


def target_factors(sigma, covariance_scale):
    """``(inverse Cholesky factor, log det)`` of ``covariance_scale * sigma``."""
    scaled = covariance_scale * sigma
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


def build_networks(
    Z,
    X,
    step_scale,
    *,
    decoder_hidden_layer_sizes,
    covariance_hidden_layer_sizes,
    activation,
    seed,
):
    """Initialise the decoder and the covariance network (float32, CPU)."""
    tiny = np.finfo(np.float32).tiny
    latent_mean = Z.mean(axis=0)
    latent_scale = np.maximum(Z.std(axis=0), tiny)
    data_mean = X.mean(axis=0)
    data_scale = np.maximum(X.std(axis=0), tiny)
    as32 = np.float32
    with seeded_torch(seed):
        decoder = Decoder(
            latent_mean.astype(as32),
            latent_scale.astype(as32),
            data_mean.astype(as32),
            data_scale.astype(as32),
            decoder_hidden_layer_sizes,
            activation,
        )
        covariance = CholeskyNetwork(
            latent_mean.astype(as32),
            latent_scale.astype(as32),
            step_scale.astype(as32),
            covariance_hidden_layer_sizes,
            activation,
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
    verbose=0,
):
    """Minimise ``mean_i [KL_i + |g(z'_i) - x'_i|^2 / (2c)]`` on minibatches.

    Returns ``(decoder, covariance, loss_history)`` trained in float32 on
    ``device``. Adam runs at ``learning_rate`` for the first 80% of the steps
    and at a tenth of it for the rest. Only ``batch x batch`` latent distances
    are formed. A step whose
    loss is not finite restores the last snapshot with a halved learning rate;
    after a few restarts a ``FloatingPointError`` is raised (``DivergenceGuard``).
    """
    n_samples = Z.shape[0]
    batch_size = min(batch_size, n_samples)
    joint = _Joint(decoder, covariance).to(device)
    codes = torch.tensor(Z, dtype=torch.float32, device=device)
    data = torch.tensor(X, dtype=torch.float32, device=device)
    inverse = torch.tensor(target_inverse, dtype=torch.float32, device=device)
    log_det = torch.tensor(target_log_det, dtype=torch.float32, device=device)
    generator = make_generator(seed, device)
    optimizer = torch.optim.Adam(joint.parameters(), lr=learning_rate)
    scale = 1.0 / (2.0 * noise_variance)

    history = []
    guard = DivergenceGuard(
        joint,
        optimizer,
        learning_rate,
        "VDAE",
        "try a smaller learning_rate or a larger noise_variance.",
    )
    anneal_step = int(_ANNEAL_AT * max_iter) + 1
    for step in range(1, max_iter + 1):
        if step == anneal_step:
            # Final stretch at a tenth of the rate: the decoder's precision.
            for group in optimizer.param_groups:
                group["lr"] /= 10.0
        rows = torch.randint(
            n_samples, (batch_size,), generator=generator, device=device
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
        reconstruction = (joint.decoder(moved) - x[landing]).square().sum(dim=1)
        loss = (kl + scale * reconstruction).mean()
        if not torch.isfinite(loss):
            guard.recover(rate_factor=0.1 if step >= anneal_step else 1.0)
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
        guard.step_done(step)
        if verbose and (step % max(1, max_iter // 10) == 0 or step == max_iter):
            print(f"[VDAESampler] step {step}/{max_iter}  loss {history[-1]:.4e}")
    return joint.decoder, joint.covariance, np.asarray(history)


def walk(embed, covariance, decoder, X, n_steps, generator, keep_path=True):
    """Algorithm 2: ``X_{t+1} = g(psi(X_t) + L(psi(X_t)) eps_t)``, float64 numpy.

    ``embed`` maps a float64 numpy array to its codes; the networks are float64
    CPU modules; ``generator`` is a CPU ``torch.Generator``. Returns the path of
    shape ``(n_steps + 1, n, m)``, or only the last points when ``keep_path`` is
    false.
    """
    path = [X] if keep_path else None
    current = X
    with torch.no_grad():
        for _ in range(n_steps):
            codes = torch.as_tensor(embed(current), dtype=torch.float64)
            factor = covariance(codes)
            noise = torch.randn(
                (*codes.shape, 1), generator=generator, dtype=torch.float64
            )
            moved = codes + (factor @ noise).squeeze(-1)
            current = decoder(moved).numpy()
            if keep_path:
                path.append(current)
    if keep_path:
        return np.stack(path)
    return current


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
