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
from scipy import linalg
from sklearn.neighbors import NearestNeighbors


def diffusion_pencil(features, graph):
    """Project the pencil ``(D - W, D)`` onto the columns of ``features``.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Candidate functions evaluated on the training samples.
    graph : DiffusionGraph

    Returns
    -------
    gram : ndarray of shape (n_features, n_features)
        ``H^T D H``.
    energy : ndarray of shape (n_features, n_features)
        ``H^T (D - W) H``, the Dirichlet energy of the graph.
    degree_moment : ndarray of shape (n_features,)
        ``H^T d``, needed to project out the constant.
    """
    weighted = features * graph.degrees[:, None]
    gram = features.T @ weighted
    energy = gram - features.T @ (graph.affinity @ features)
    return gram, (energy + energy.T) * 0.5, weighted.sum(axis=0)


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
        intercept = np.linalg.solve(gram, rhs[..., None])[:, 0, 0]
        error = psi[:, k] - intercept
        residuals[k] = np.sqrt(np.sum(error**2) / max(np.sum(psi[:, k] ** 2), 1e-300))
    return residuals


#: A coordinate whose harmonic residual exceeds this is a new direction.
HARMONIC_THRESHOLD = 0.05

#: ``n_components='auto'`` keeps at most this many coordinates beyond the
#: ``n_connected_components - 1`` that separate the components.
MAX_GEOMETRIC_COMPONENTS = 10


def auto_n_components(psi, eigenvalues, n_connected_components):
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
    clusters does not fit), only the ``n_connected_components - 1``
    separating coordinates are kept. A circle gives 2, a sphere 3, 25
    separate blobs 24.

    Parameters
    ----------
    psi : ndarray of shape (n_samples, n_candidates)
        Leading diffusion coordinates, by decreasing eigenvalue.
    eigenvalues : ndarray of shape (n_candidates,)
    n_connected_components : int

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
    if n_fixed > 0 and limit - n_fixed > 1 and new.size == limit - n_fixed:
        # No harmonic within the cap: the geometry of the clusters needs more
        # coordinates than the cap allows (25 blobs need 50). Rather than
        # resolve a few clusters and not the others, keep the coordinates that
        # separate them; the decoder's local variance gives their spread.
        return n_fixed
    if new.size:
        last = max(last, int(new.max()) + 1)
    gap = 1.0 - eigenvalues
    anchor = max(gap[last - 1], 1e-300)
    while last < limit and gap[last] <= 1.25 * anchor:
        last += 1
    return max(1, min(last, limit))
