"""Kernel graph of the diffusion map: neighbours, bandwidth, alpha-normalisation.

Everything here is numpy/scipy/scikit-learn; no torch. The graph is truncated by
radius (``|x - y|^2 <= KERNEL_CUTOFF * bandwidth``), never by a fixed number of
neighbours: a kNN truncation cuts the kernel at a small radius in dense regions and
a large one in sparse regions, which breaks the density-free (alpha = 1) limit.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import (
    connected_components,
    minimum_spanning_tree,
)
from scipy.spatial import cKDTree
from sklearn.neighbors import NearestNeighbors

# Kernel values below exp(-KERNEL_CUTOFF) ~ 6e-6 of the peak are dropped.
KERNEL_CUTOFF = 12.0

# An edge of the neighbours' minimum spanning forest longer than this many
# times the k-th neighbour distance of its nearer end is a gap between separate
# parts of the data (see auto_bandwidth).
GAP_RATIO = 3.0

# Connected groups of fewer samples are outliers: left out of the diffusion map.
MIN_CLUSTER_SIZE = 5

# All but this share of the samples keep their k-th neighbour at a kernel weight
# of at least exp(-1); the rest are the tails of the sparsest parts.
_SPARSE_QUANTILE = 0.99

# Edges inside a group keep a kernel weight of at least exp(-_CONNECT_WEIGHT).
_CONNECT_WEIGHT = 6.0

# A kernel whose mean weight over nearly all pairs exceeds this is "flat".
_FLAT_WEIGHT = 0.9

# Above this many features a KD-tree loses to scikit-learn's tree/brute search.
_KDTREE_MAX_FEATURES = 12


@dataclass
class DiffusionGraph:
    """The alpha-normalised kernel graph of a training set, outliers left out.

    Attributes
    ----------
    affinity : scipy.sparse.csr_matrix of shape (n_inliers, n_inliers)
        Symmetric ``W^(alpha)``, self-loops included.
    degrees : ndarray of shape (n_inliers,)
        Row sums of ``affinity``; the stationary distribution is
        ``degrees / degrees.sum()``.
    log_kernel_density : ndarray of shape (n_inliers,)
        ``log q_i``, the log row sums of the un-normalised kernel.
    bandwidth : float
        The kernel scale ``eps`` in ``exp(-|x - y|^2 / eps)``.
    radius : float
        The truncation radius ``sqrt(KERNEL_CUTOFF * eps)``.
    n_connected_components : int
        Connected components of the graph of the inliers.
    component_labels : ndarray of shape (n_inliers,)
        The component of each inlier, ``0 .. n_connected_components - 1``,
        numbered by their first sample.
    inliers : ndarray of shape (n_inliers,)
        Rows of the training set in the graph: those outside a connected
        component of fewer than ``MIN_CLUSTER_SIZE`` samples.
    """

    affinity: sparse.csr_matrix
    degrees: np.ndarray
    log_kernel_density: np.ndarray
    bandwidth: float
    radius: float
    n_connected_components: int
    component_labels: np.ndarray
    inliers: np.ndarray


def locality_order(X):
    """A permutation that puts nearby samples next to each other (KD-tree leaves).

    Sparse products with the kernel graph gather rows of dense matrices through
    its column indices; with the samples in this order those gathers hit nearby
    memory, which makes them several times faster on large data.
    """
    return cKDTree(X).indices


def fit_neighbor_index(X):
    """Exact Euclidean neighbour index on ``X`` (a KD/ball tree for low dimension)."""
    return NearestNeighbors(algorithm="auto").fit(X)


def auto_bandwidth(nn_index, n_neighbors):
    """The ``'auto'`` bandwidth rule: the scale of the dense parts, gaps kept open.

    Let ``r_i`` be the distance from ``x_i`` to its ``k = n_neighbors``-th
    nearest neighbour, and consider the minimum spanning forest of the
    k-nearest-neighbour graph. A forest edge ``(i, j)`` longer than
    ``GAP_RATIO * min(r_i, r_j)`` is a *gap*: it is much longer than the
    neighbour distances on at least one of its sides. Cutting the gaps splits the
    data into groups; groups of fewer than ``MIN_CLUSTER_SIZE`` samples are
    outliers. Then::

        eps = max(quantile_99%_i r_i^2, max_e L_e^2 / 6)

    the quantile over the samples of the other groups, the maximum over the
    forest edges inside them. The first term gives the k-th neighbour of all
    but the sparsest 1% of the samples a kernel weight of at least ``exp(-1)``:
    the density estimates that ``alpha = 1`` divides by stay reliable in the
    sparse parts of a manifold. The second keeps both ends of every non-gap
    edge at a weight of at least ``exp(-6)``, so that sparse stretches stay
    connected. No term sees an outlier or a gap, so one far point cannot
    flatten the kernel of the rest, and clusters whose gaps are much longer
    than their neighbour distances stay separate components.

    Parameters
    ----------
    nn_index : NearestNeighbors
        Index fitted on the training data.
    n_neighbors : int
        Neighbour rank that sets the scale.

    Returns
    -------
    bandwidth : float
        Zero when more than half of the samples have ``n_neighbors`` exact
        duplicates; the caller reports that.

    Examples
    --------
    One far point does not change the scale of a circle:

    >>> import numpy as np
    >>> from sklearn.neighbors import NearestNeighbors
    >>> from skvdae._graph import auto_bandwidth
    >>> theta = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    >>> circle = np.c_[np.cos(theta), np.sin(theta)]
    >>> alone = auto_bandwidth(NearestNeighbors().fit(circle), 10)
    >>> index = NearestNeighbors().fit(np.r_[circle, [[100.0, 100.0]]])
    >>> bool(np.isclose(auto_bandwidth(index, 10), alone))
    True
    """
    distances, indices = nn_index.kneighbors(n_neighbors=n_neighbors)
    scale = distances[:, -1]
    first, second, lengths = _spanning_forest_edges(distances, indices)
    gap = lengths > GAP_RATIO * np.minimum(scale[first], scale[second])
    n_samples = len(scale)
    kept = sparse.coo_matrix(
        (np.ones(int((~gap).sum())), (first[~gap], second[~gap])),
        shape=(n_samples, n_samples),
    )
    _, labels = connected_components(kept, directed=False)
    in_group = np.bincount(labels)[labels] >= min(MIN_CLUSTER_SIZE, n_samples)
    eps = float(np.quantile(scale[in_group] ** 2, _SPARSE_QUANTILE))
    inner = ~gap & in_group[first]
    if inner.any():
        eps = max(eps, float(lengths[inner].max()) ** 2 / _CONNECT_WEIGHT)
    return eps


def _spanning_forest_edges(distances, indices):
    """Edges ``(first, second, length)`` of the minimum spanning forest of kNN."""
    n_samples, n_neighbors = indices.shape
    # Explicit zeros count as missing edges in scipy's graph routines; duplicates
    # are joined by a positive edge far shorter than any real distance instead.
    tiny = np.finfo(np.float64).tiny
    knn = sparse.csr_matrix(
        (
            np.maximum(distances.ravel(), tiny),
            indices.ravel(),
            np.arange(0, n_samples * n_neighbors + 1, n_neighbors),
        ),
        shape=(n_samples, n_samples),
    )
    forest = minimum_spanning_tree(knn).tocoo()
    return forest.row, forest.col, forest.data


def kernel_matrix(X, bandwidth, radius, nn_index):
    """Truncated Gaussian kernel ``exp(-|x_i - x_j|^2 / eps)`` with self-loops.

    Pairs within ``radius`` come from scipy's KD-tree in low dimension (several
    times faster than a radius query per sample) and from the fitted scikit-learn
    index otherwise.
    """
    n_samples = X.shape[0]
    if X.shape[1] <= _KDTREE_MAX_FEATURES:
        pairs = cKDTree(X).query_pairs(radius, output_type="ndarray")
        index_dtype = np.int32 if n_samples < 2**31 else np.int64
        first = pairs[:, 0].astype(index_dtype)
        second = pairs[:, 1].astype(index_dtype)
        del pairs
        squared = np.zeros(first.size)
        for column in np.ascontiguousarray(X.T):
            squared += (column[first] - column[second]) ** 2
        upper = sparse.csr_matrix(
            (np.exp(-squared / bandwidth), (first, second)),
            shape=(n_samples, n_samples),
        )
        kernel = (upper + upper.T + sparse.identity(n_samples, format="csr")).tocsr()
    else:
        graph = nn_index.radius_neighbors_graph(radius=radius, mode="distance")
        graph.data = np.exp(-(graph.data**2) / bandwidth)
        kernel = graph + sparse.identity(n_samples, format="csr")
        # The tree query is symmetric only up to round-off on the boundary.
        kernel = ((kernel + kernel.T) * 0.5).tocsr()
    return kernel


def density_normalize(kernel, alpha):
    """``W^(alpha)_ij = K_ij / (q_i^alpha q_j^alpha)`` with ``q`` the kernel row sums.

    Returns
    -------
    affinity : csr_matrix
    log_kernel_density : ndarray of shape (n_samples,)
        ``log q``.
    """
    q = np.asarray(kernel.sum(axis=1)).ravel()
    scale = q ** (-alpha)
    affinity = kernel.copy()
    rows = np.repeat(np.arange(kernel.shape[0]), np.diff(kernel.indptr))
    affinity.data *= scale[rows] * scale[kernel.indices]
    return affinity, np.log(q)


def build_diffusion_graph(X, nn_index, n_neighbors, bandwidth, alpha):
    """Bandwidth, truncated kernel, outliers and alpha-normalisation in one call.

    Connected components of the kernel graph with fewer than
    ``MIN_CLUSTER_SIZE`` samples are outliers; the graph keeps the other
    samples (their kernel rows are unchanged, since no edge leaves a
    component). When every component is that small (a bandwidth far below the
    neighbour distances), all samples are kept and a warning is issued.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training data, float64.
    nn_index : NearestNeighbors
        Index fitted on ``X``.
    n_neighbors : int
        Neighbour rank used by the ``'auto'`` bandwidth rule.
    bandwidth : 'auto' or float
        Kernel scale ``eps``.
    alpha : float
        Density normalisation exponent in ``[0, 1]``.

    Returns
    -------
    DiffusionGraph
    """
    if bandwidth == "auto":
        eps = auto_bandwidth(nn_index, n_neighbors)
        if eps <= 0.0:
            raise ValueError(
                "bandwidth='auto' is zero: more than half of the samples have "
                f"{n_neighbors} or more exact duplicates. Remove duplicated rows or "
                "pass a positive float bandwidth."
            )
    else:
        eps = float(bandwidth)
    radius = float(np.sqrt(KERNEL_CUTOFF * eps))
    kernel = kernel_matrix(X, eps, radius, nn_index)
    _, labels = connected_components(kernel, directed=False)
    sizes = np.bincount(labels)
    n_samples = X.shape[0]
    if sizes.max() < min(MIN_CLUSTER_SIZE, n_samples):
        warnings.warn(
            f"The kernel graph of bandwidth {eps:.3g} splits the {n_samples} "
            f"samples into {sizes.size} components of at most {sizes.max()} "
            "samples: the bandwidth is far below the neighbour distances, and the "
            "diffusion coordinates say little. Use bandwidth='auto' or a larger "
            "bandwidth.",
            UserWarning,
            stacklevel=3,
        )
        inliers = np.arange(n_samples)
    else:
        inliers = np.flatnonzero(sizes[labels] >= MIN_CLUSTER_SIZE)
        if inliers.size < n_samples:
            kernel = kernel[inliers][:, inliers].tocsr()
            labels = labels[inliers]
    _warn_if_flat(kernel, eps)
    affinity, log_q = density_normalize(kernel, alpha)
    degrees = np.asarray(affinity.sum(axis=1)).ravel()
    # Renumber the components by their first sample, a deterministic order.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    component_labels = np.argsort(np.argsort(first))[inverse]
    return DiffusionGraph(
        affinity=affinity,
        degrees=degrees,
        log_kernel_density=log_q,
        bandwidth=eps,
        radius=radius,
        n_connected_components=int(first.size),
        component_labels=component_labels.astype(np.intp),
        inliers=inliers,
    )


def _warn_if_flat(kernel, eps):
    """Warn when nearly every pair is joined at a weight close to the peak."""
    n_samples = kernel.shape[0]
    if n_samples < 3 or kernel.nnz < 0.5 * n_samples**2:
        return
    off_diagonal = (kernel.sum() - n_samples) / max(kernel.nnz - n_samples, 1)
    if off_diagonal > _FLAT_WEIGHT:
        warnings.warn(
            f"The kernel of bandwidth {eps:.3g} is nearly flat (mean weight "
            f"{off_diagonal:.2f} over {kernel.nnz / n_samples:.0f} neighbours per "
            "sample): every sample is close to every other, and the diffusion "
            "coordinates carry little geometry. Use bandwidth='auto' or a smaller "
            "bandwidth.",
            UserWarning,
            stacklevel=3,
        )


def transition_rows(nn_index, X, bandwidth, radius, log_weights):
    """Rows ``p(x, .)`` of the Markov kernel for arbitrary points ``X``.

    ``p(x, x_j) = k(x, x_j) w_j / sum_l k(x, x_l) w_l`` with ``log w = log_weights``
    (``-alpha log q`` for the alpha-normalised kernel; the factor ``q(x)^-alpha``
    of the new point cancels). Computed as a softmax of log-weights so that no row
    underflows. A point with no training sample within ``radius`` takes the limit
    of the kernel far from the data: its row concentrates on its nearest
    training sample(s).

    For a training point, with its own self-loop included, the row equals the row
    of ``P = D^-1 W^(alpha)``, which makes the Nystrom extension consistent.

    Returns
    -------
    csr_matrix of shape (n_queries, n_train)
    """
    distances, indices = nn_index.radius_neighbors(X, radius=radius)
    empty = np.flatnonzero([len(row) == 0 for row in indices])
    if empty.size:
        near_d, near_i = nn_index.kneighbors(X[empty], n_neighbors=1)
        for position, row in enumerate(empty):
            distances[row] = near_d[position]
            indices[row] = near_i[position]
    lengths = np.fromiter((len(row) for row in indices), dtype=np.intp, count=len(X))
    cols = np.concatenate(indices).astype(np.intp, copy=False)
    dist = np.concatenate(distances)
    logits = -(dist**2) / bandwidth + log_weights[cols]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    row_ids = np.repeat(np.arange(len(X)), lengths)
    values = np.exp(logits - np.maximum.reduceat(logits, indptr[:-1])[row_ids])
    values /= np.add.reduceat(values, indptr[:-1])[row_ids]
    n_train = nn_index.n_samples_fit_
    return sparse.csr_matrix((values, cols, indptr), shape=(len(X), n_train))
