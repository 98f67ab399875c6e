"""Post-processing shared by both solvers: from a space of candidate functions on
the training graph to sorted, normalised, sign-fixed diffusion coordinates.

Both the exact solver (candidates: the top eigenvectors of the kernel) and
SpectralNet (candidates: the network's last hidden layer) end with one
Rayleigh-Ritz step on the pencil ``(D - W, D)`` restricted to the candidates, with
the constant direction projected out. This is where the constant eigenvector is
dropped, degenerate eigenspaces (one eigenvalue 1 per connected component) are
resolved deterministically, and the normalisation ``sum_i pi_i psi_k(x_i)^2 = 1``
is applied.
"""

import numpy as np
import torch
from scipy import linalg
from sklearn.neighbors import NearestNeighbors

from ..graph import MIN_CLUSTER_SIZE, row_blocks, row_sums, row_view
from ..nn import sparse_matmul

# Rows, and graph entries, per block of the pencil's sums.
_ROW_BLOCK = 16384
_ENTRY_BLOCK = 2**22


def diffusion_pencil(features, graph):
    """Project the pencil ``(D - W, D)`` onto the columns of ``features``.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Candidate functions evaluated on the training samples.
    graph : DiffusionGraph
        On a graph sharded over processes, each sums over its own rows and
        the sums are added up across them: every process gets the whole
        pencil.

    Returns
    -------
    gram : ndarray of shape (n_features, n_features)
        ``H^T D H``.
    energy : ndarray of shape (n_features, n_features)
        ``H^T (D - W) H``, the Dirichlet energy of the graph.
    degree_moment : ndarray of shape (n_features,)
        ``H^T d``, needed to project out the constant.
    """
    n_features = features.shape[1]
    # In torch, products and sums alike: numpy's BLAS threads, left spinning
    # after each of its calls, would halve the speed of torch's sparse ones.
    features = torch.as_tensor(np.ascontiguousarray(features, dtype=np.float64))
    degrees = torch.as_tensor(graph.degrees)
    gram = torch.zeros((n_features, n_features), dtype=torch.float64)
    energy = torch.zeros((n_features, n_features), dtype=torch.float64)
    moment = torch.zeros(n_features, dtype=torch.float64)
    affinity = graph.affinity
    # The Laplacian is applied as r_i f_i - sum_j W_ij f_j with r the row
    # sums of W accumulated in float64: the two terms then cancel to
    # round-off where f is constant, and the energy keeps about 14 digits
    # even where 1 - lambda is 1e-7.
    offset = graph.row_start
    for start, stop in row_blocks(affinity.indptr, _ROW_BLOCK, _ENTRY_BLOCK):
        block = features[offset + start : offset + stop]
        weighted = block * degrees[offset + start : offset + stop, None]
        gram += block.T @ weighted
        moment += weighted.sum(dim=0)
        rows = row_view(affinity, start, stop)
        sums = torch.as_tensor(row_sums(rows))
        laplacian = block * sums[:, None] - sparse_matmul(rows, features)
        energy += block.T @ laplacian
    gram, energy, moment = gram.numpy(), energy.numpy(), moment.numpy()
    if graph.communicator is not None:
        gram, energy, moment = (
            graph.communicator.allreduce(part) for part in (gram, energy, moment)
        )
    return gram, (energy + energy.T) * 0.5, moment


def rayleigh_ritz_without_constant(
    gram, energy, degree_moment, volume, n_components, rank_tol=1e-10
):
    """Diffusion eigenfunctions in the span of the candidates, constant removed.

    Centring the candidates against the stationary distribution removes the
    constant and leaves the energy unchanged, since ``(D - W) 1 = 0``; the centred
    Gram matrix is ``G - m m^T / vol``. The remaining pencil is whitened (dropping
    numerically null directions) and solved exactly.

    Returns
    -------
    coef : ndarray of shape (n_features, n_components)
    offset : ndarray of shape (n_components,)
        ``psi = features @ coef + offset`` with ``sum_i pi_i psi^2 = 1`` and
        ``sum_i pi_i psi = 0``.
    eigenvalues : ndarray of shape (n_components,)
        ``lambda_k = 1 - mu_k``, in decreasing order.
    """
    centred_gram = gram - np.outer(degree_moment, degree_moment) / volume
    scales, basis = linalg.eigh((centred_gram + centred_gram.T) * 0.5)
    keep = scales > rank_tol * max(scales.max(), np.finfo(float).tiny)
    if keep.sum() < n_components:
        raise np.linalg.LinAlgError(
            f"the candidate functions span {int(keep.sum())} non-constant "
            f"directions, fewer than n_components={n_components}"
        )
    whitener = basis[:, keep] / np.sqrt(scales[keep])
    reduced = whitener.T @ energy @ whitener
    mu, rotation = linalg.eigh((reduced + reduced.T) * 0.5)
    coef = whitener @ rotation[:, :n_components] * np.sqrt(volume)
    offset = -(degree_moment @ coef) / volume
    return coef, offset, 1.0 - mu[:n_components]


def sign_fixing_signs(coordinates):
    """Signs that make the largest-magnitude entry of each column positive."""
    rows = np.argmax(np.abs(coordinates), axis=0)
    signs = np.sign(coordinates[rows, np.arange(coordinates.shape[1])])
    signs[signs == 0] = 1.0
    return signs


def diffusion_coordinates(features, graph, n_components):
    """Rayleigh-Ritz, constant removal and sign fixing in one call.

    Returns
    -------
    coef, offset : ndarrays
        The affine map from candidates to eigenfunctions ``psi`` (unscaled by
        eigenvalues), signs included.
    eigenvalues : ndarray of shape (n_components,)
    train_psi : ndarray of shape (n_samples, n_components)
    """
    gram, energy, moment = diffusion_pencil(features, graph)
    coef, offset, eigenvalues = rayleigh_ritz_without_constant(
        gram, energy, moment, graph.degrees.sum(), n_components
    )
    train_psi = features @ coef + offset
    signs = sign_fixing_signs(train_psi)
    return coef * signs, offset * signs, eigenvalues, train_psi * signs


def harmonic_residuals(psi, n_fixed, n_neighbors=24, max_samples=3000, seed=0):
    """How far each coordinate is from a function of the coordinates before it.

    For ``k >= n_fixed``, ``psi[:, k]`` is predicted at every sample by a local
    linear regression on ``psi[:, :k]`` over its ``n_neighbors`` nearest
    samples in that space (itself left out, Gaussian weights at the median
    neighbour distance), as in Dsilva et al., "Parsimonious representation of
    nonlinear dynamical systems through manifold learning" (2018). The
    residual, relative to the coordinate's norm, is near 0 for a harmonic of
    the earlier coordinates (``cos 2 theta`` after ``cos theta, sin theta``)
    and near 1 for a new direction of the geometry (the second circle of a
    torus).

    Parameters
    ----------
    psi : ndarray of shape (n_samples, n_coordinates)
        Diffusion eigenfunctions, by decreasing eigenvalue.
    n_fixed : int
        Leading coordinates taken as given (not tested); at least 1.
    n_neighbors : int, default=24
    max_samples : int, default=3000
        Samples used (a seeded subsample of larger sets).
    seed : int, default=0

    Returns
    -------
    residuals : ndarray of shape (n_coordinates,)
        ``nan`` for the first ``n_fixed`` coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.solvers import harmonic_residuals
    >>> theta = np.linspace(0, 2 * np.pi, 500, endpoint=False)
    >>> psi = np.c_[np.cos(theta), np.sin(theta), np.cos(2 * theta)]
    >>> r = harmonic_residuals(psi, n_fixed=1)
    >>> bool(r[1] > 0.5 and r[2] < 0.05)
    True
    """
    n_samples, n_coordinates = psi.shape
    if n_samples > max_samples:
        rows = np.random.RandomState(seed).choice(n_samples, max_samples, False)
        psi = psi[rows]
        n_samples = max_samples
    n_neighbors = min(n_neighbors, n_samples - 1)
    residuals = np.full(n_coordinates, np.nan)
    for k in range(max(n_fixed, 1), n_coordinates):
        inputs = psi[:, :k]
        distances, neighbors = (
            NearestNeighbors(n_neighbors=n_neighbors).fit(inputs).kneighbors()
        )
        # Codes constant on clusters give zero distances: take the median of
        # the others, so that clusters are not down-weighted to nothing.
        positive = distances[distances > 0]
        width = np.median(positive) if positive.size else 1.0
        weights = np.exp(-0.5 * np.minimum((distances / width) ** 2, 700.0))
        # Local design [1, z_j - z_i] per sample, weighted least squares.
        offsets = inputs[neighbors] - inputs[:, None, :]
        design = np.concatenate([np.ones((*neighbors.shape, 1)), offsets], axis=2)
        design *= weights[..., None]
        target = psi[neighbors, k] * weights
        gram = np.einsum("nki,nkj->nij", design, design)
        gram += 1e-8 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(k + 1)
        rhs = np.einsum("nki,nk->ni", design, target)
        try:
            intercept = np.linalg.solve(gram, rhs[..., None])[:, 0, 0]
        except np.linalg.LinAlgError:
            # More regressors than neighbours with weight (codes constant on
            # small clusters): the minimum-norm least-squares fit instead.
            with np.errstate(invalid="ignore", over="ignore"):
                fit = np.linalg.pinv(gram, hermitian=True) @ rhs[..., None]
            intercept = np.nan_to_num(fit[:, 0, 0], nan=0.0, posinf=0.0, neginf=0.0)
        error = psi[:, k] - intercept
        residuals[k] = np.sqrt(np.sum(error**2) / max(np.sum(psi[:, k] ** 2), 1e-300))
    return residuals


#: A coordinate whose harmonic residual exceeds this is a new direction.
HARMONIC_THRESHOLD = 0.05

#: At most this many samples are queried by the fold test (a seeded subsample
#: of larger sets; the count is then scaled to the whole set).
_FOLD_MAX_QUERIES = 20000


def folded_samples(codes, X, radius, n_neighbors=10, max_queries=None, seed=0):
    """How many samples the coordinates fold onto a distant part of the data.

    A sample is *folded* when one of its ``n_neighbors`` nearest samples in
    ``codes`` lies farther than ``radius`` from it in ``X``: with ``radius``
    the kernel's truncation radius, the kernel graph does not join the two
    samples, yet the coordinates put them next to each other. A locally
    injective embedding folds no sample. Samples that share a code (the
    points of one cluster when the coordinates only separate clusters) are
    latent neighbours of each other but, as long as the kernel joins them,
    not folds.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, D)
    X : ndarray of shape (n_samples, n_features)
        The data, in the same order.
    radius : float
    n_neighbors : int, default=10
    max_queries : int or None, default=None
        Samples tested (a seeded subsample of larger sets, the count scaled
        by ``n_samples / max_queries``); ``None`` means ``_FOLD_MAX_QUERIES``.
    seed : int, default=0

    Returns
    -------
    count : float
        The number of folded samples (estimated when subsampled).

    Examples
    --------
    A circle read through ``cos`` alone folds its two halves onto each other:

    >>> import numpy as np
    >>> from skvdae.solvers import folded_samples
    >>> theta = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    >>> X = np.c_[np.cos(theta), np.sin(theta)]
    >>> folded_samples(X[:, :1], X, radius=0.2) > 300
    True
    >>> folded_samples(X, X, radius=0.2)
    0.0
    """
    n_samples = codes.shape[0]
    n_neighbors = min(n_neighbors, n_samples - 1)
    if n_neighbors < 1:
        return 0.0
    max_queries = _FOLD_MAX_QUERIES if max_queries is None else max_queries
    queries = np.arange(n_samples)
    if n_samples > max_queries:
        queries = np.sort(
            np.random.RandomState(seed).choice(n_samples, max_queries, False)
        )
    index = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(codes)
    _, neighbors = index.kneighbors(codes[queries])
    # The query itself (or a duplicate of it) is at distance 0 in X: harmless.
    # Chunks keep the gathered neighbours to about 2^22 values.
    chunk = max(1, 2**22 // ((n_neighbors + 1) * X.shape[1]))
    folded = 0
    for start in range(0, queries.size, chunk):
        rows = queries[start : start + chunk]
        offsets = X[neighbors[start : start + chunk]] - X[rows, None, :]
        squared = np.einsum("qkm,qkm->qk", offsets, offsets)
        folded += int(np.count_nonzero((squared > radius**2).any(axis=1)))
    return float(folded * n_samples / queries.size)


#: ``n_components='auto'`` keeps at most this many coordinates beyond the
#: ``n_connected_components - 1`` that separate the components. Measured on
#: MNIST 5k, whose leading coordinates are all new directions: a 5-NN
#: classifier on held-out codes scores 0.89 with 10 of them, 0.93 with 20.
MAX_GEOMETRIC_COMPONENTS = 20


def auto_n_components(
    psi,
    eigenvalues,
    n_connected_components,
    *,
    X=None,
    radius=None,
    diffusion_time=1.0,
    n_neighbors=10,
    component_labels=None,
):
    """The ``n_components='auto'`` rule, from the leading diffusion coordinates.

    ``D = (n_connected_components - 1) + D_geom``: one coordinate per extra
    component (their eigenvalue is 1), then the shortest prefix of the
    remaining spectrum that holds every coordinate that is not a harmonic of
    the ones before it (:func:`harmonic_residuals` above
    ``HARMONIC_THRESHOLD``), completed by the eigenvalues within 25% of the
    last one's gap ``1 - lambda`` (the rest of its near-degenerate multiplet),
    and capped at ``MAX_GEOMETRIC_COMPONENTS`` (and at the coordinates whose
    eigenvalue is above 1e-6 of the leading one). With several components, when
    no coordinate within the cap is a harmonic (the geometry of all the
    clusters does not fit), or when some component is one on which no
    coordinate within the cap varies (with ``component_labels``), only the
    ``n_connected_components - 1`` separating coordinates are kept. A circle
    gives 2, a sphere 3, 25 separate blobs 24.

    Then, when the data ``X`` and the kernel's largest truncation ``radius``
    are given, the fold test: while the diffusion map on the ``D`` coordinates
    (``lambda^t psi``) folds at least ``MIN_CLUSTER_SIZE`` of the tested
    samples (all of them up to 20,000; see :func:`folded_samples`: a latent
    neighbour that the kernel graph does not join), the next coordinate is
    added, its multiplet completed, within the same cap. A harmonic test is
    global (an RMS over all samples); this one is local and catches a
    coordinate that is a function of the earlier ones almost everywhere but
    separates two parts of the data that they put together (on the bunny,
    under 1% of the samples). Fewer folded samples than the smallest group
    the graph keeps are left as noise.

    Parameters
    ----------
    psi : ndarray of shape (n_samples, n_candidates)
        Leading diffusion coordinates, by decreasing eigenvalue.
    eigenvalues : ndarray of shape (n_candidates,)
    n_connected_components : int
    X : ndarray of shape (n_samples, n_features) or None, default=None
        The data in the rows of ``psi``; ``None`` skips the fold test.
    radius : float or None, default=None
        Latent neighbours farther apart in the data are folded: the kernel's
        largest truncation radius ``sqrt(KERNEL_CUTOFF * bandwidth)``.
    diffusion_time : float, default=1.0
        ``t`` of the coordinates the fold test looks at.
    n_neighbors : int, default=10
        Latent neighbours per sample in the fold test.
    component_labels : ndarray of shape (n_samples,) or None, default=None
        The connected component of each row of ``psi``.

    Returns
    -------
    n_components : int
    """
    # Eigenvalues below 1e-6 of the leading one are numerically zero (or
    # negative): such coordinates carry nothing and cannot be chosen.
    n_candidates = max(1, int(np.sum(eigenvalues > 1e-6 * eigenvalues[0])))
    n_fixed = min(max(n_connected_components - 1, 0), n_candidates)
    limit = min(n_fixed + MAX_GEOMETRIC_COMPONENTS, n_candidates)
    if n_fixed == 0:
        last = 1  # the first non-trivial coordinate is always kept
        residuals = harmonic_residuals(psi[:, :limit], n_fixed=1)
    else:
        last = n_fixed
        residuals = harmonic_residuals(psi[:, :limit], n_fixed=n_fixed)
    new = np.flatnonzero(residuals > HARMONIC_THRESHOLD)
    uncovered = n_fixed > 0 and not _covers_every_component(
        psi[:, n_fixed:limit], component_labels
    )
    if (
        n_fixed > 0
        and limit - n_fixed > 1
        and (new.size == limit - n_fixed or uncovered)
    ):
        # No harmonic within the cap, or a component on which no coordinate
        # within the cap varies: the geometry of the clusters needs more
        # coordinates than the cap allows (25 blobs need 50). Rather than
        # resolve a few clusters and not the others, keep the coordinates that
        # separate them; the decoder's local variance gives their spread.
        return n_fixed
    if new.size:
        last = max(last, int(new.max()) + 1)
    gap = 1.0 - eigenvalues
    last = _complete_multiplet(gap, last, limit)
    if X is not None and radius is not None:
        scaled = psi[:, :limit] * np.abs(eigenvalues[:limit]) ** diffusion_time
        # At least MIN_CLUSTER_SIZE of the tested samples, scaled like the count.
        threshold = MIN_CLUSTER_SIZE * max(1.0, X.shape[0] / _FOLD_MAX_QUERIES)
        while (
            last < limit
            and folded_samples(scaled[:, :last], X, radius, n_neighbors) >= threshold
        ):
            last = _complete_multiplet(gap, last + 1, limit)
    return max(1, min(last, limit))


def _covers_every_component(candidates, component_labels):
    """Whether some candidate varies on every component (True without labels)."""
    if component_labels is None or candidates.shape[1] == 0:
        return True
    scale = candidates.std(axis=0)
    for component in np.unique(component_labels):
        spread = candidates[component_labels == component].std(axis=0)
        if not np.any(spread > 1e-6 * scale):
            return False
    return True


def _complete_multiplet(gap, last, limit):
    """Extend ``last`` over the gaps within 25% of ``gap[last - 1]``."""
    anchor = max(gap[last - 1], 1e-300)
    while last < limit and gap[last] <= 1.25 * anchor:
        last += 1
    return last
