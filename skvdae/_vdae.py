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
  decoder to reproduce it with Gaussian noise of variance ``c``.
"""

import numpy as np
import torch

from .graph import NeighborIndex
from .nn import (
    MLP,
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
    optimizer = torch.optim.Adam(joint.parameters(), lr=learning_rate)
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


def local_emission(neighbourhoods, residuals, differences, Z_query, decoded, generator):
    """One step's sample and landing point, from the residuals near ``z'``.

    Over the ``k`` nearest training codes ``z_j`` of each query's component,
    with ``r_j = x_j - g(z_j)`` the reconstruction residuals, ``r_bar`` their
    mean, ``d_j = r_j - r_p(j)`` the difference to the residual of ``z_j``'s
    nearest other code (:func:`residual_differences`) and ``eta_j`` iid
    standard normal::

        x = g(z') + r_bar + (2 k)^(-1/2) sum_j d_j eta_j

    a draw from the Gaussian with the local mean of the residuals and the
    covariance ``(1 / 2k) sum_j d_j d_j^T`` (exactly, at ``O(k m)`` cost and
    without a factorisation). That covariance is the difference-based
    estimate of the residuals' noise (Rice, 1984): for noise independent from
    point to point ``E[d d^T] = 2 Cov``, while the part of the residuals that
    varies smoothly with the code (the decoder's own error on noise-free
    data) cancels between neighbours instead of being emitted as noise. The
    spread goes only along the directions in which the data deviate from the
    decoder, and it follows the data if they are rotated. The landing point
    is the nearest of these codes, the training point where the step lands
    (the rule the decoder was trained with).

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

    Returns
    -------
    emitted : ndarray of shape (n_query, n_features)
    landing : ndarray of shape (n_query,)
        Index of the training point nearest to each ``z'``.
    """
    emitted = np.empty_like(decoded)
    landing = np.empty(Z_query.shape[0], dtype=np.intp)
    for rows, neighbors in neighbourhoods.groups(Z_query):
        eta = torch.randn(
            neighbors.shape, generator=generator, dtype=torch.float64
        ).numpy()
        deviation = np.einsum("nkm,nk->nm", differences[neighbors], eta)
        emitted[rows] = (
            decoded[rows]
            + residuals[neighbors].mean(axis=1)
            + deviation / np.sqrt(2.0 * neighbors.shape[1])
        )
        landing[rows] = neighbors[:, 0]
    return emitted, landing


def residual_differences(neighbourhoods, residuals):
    """``d_i = r_i - r_p(i)``, with ``p(i)`` the nearest other training code.

    See :func:`local_emission`; within a component, and zero for a code
    alone in its component.
    """
    return residuals - residuals[neighbourhoods.partners()]


def walk(
    embed, covariance, decoder, X, n_steps, generator, keep_path=True, emission=None
):
    """Algorithm 2: ``X_{t+1} = g(psi(X_t) + L(psi(X_t)) eps_t)``, float64 numpy.

    ``embed`` maps a float64 numpy array to its codes; the networks are float64
    CPU modules; ``generator`` is a CPU ``torch.Generator``. With ``emission``
    (a function ``(z', g(z'), generator) -> (samples, landing codes)``, see
    :func:`local_emission`), each step emits the sample it returns, while the
    walk itself goes on from the code of the training point where the step
    lands: neither the emission noise nor the decoder's error nor the
    encoder's extrapolation off the data feeds back into the next step, so
    none of them can accumulate along the walk.
    Returns the path of shape ``(n_steps + 1, n, m)``, or only the last points
    when ``keep_path`` is false.
    """
    path = [X] if keep_path else None
    emitted = X
    with torch.no_grad():
        codes = torch.as_tensor(embed(X), dtype=torch.float64)
        for _ in range(n_steps):
            factor = covariance(codes)
            noise = torch.randn(
                (*codes.shape, 1), generator=generator, dtype=torch.float64
            )
            moved = codes + (factor @ noise).squeeze(-1)
            emitted = decoder(moved).numpy()
            if emission is None:
                next_codes = embed(emitted)
            else:
                emitted, next_codes = emission(moved.numpy(), emitted, generator)
            codes = torch.as_tensor(next_codes, dtype=torch.float64)
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
