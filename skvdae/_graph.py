"""Kernel graph of the diffusion map: neighbours, bandwidth, alpha-normalisation.

Everything here is numpy/scipy/scikit-learn; no torch. The graph is truncated by
radius (``|x - y|^2 <= KERNEL_CUTOFF * bandwidth``), never by a fixed number of
neighbours: a kNN truncation cuts the kernel at a small radius in dense regions and
a large one in sparse regions, which breaks the density-free (alpha = 1) limit.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import (
    breadth_first_order,
    connected_components,
    minimum_spanning_tree,
)
from scipy.spatial import cKDTree
from sklearn.neighbors import NearestNeighbors

# Kernel values below exp(-KERNEL_CUTOFF) ~ 6e-6 of the peak are dropped.
KERNEL_CUTOFF = 12.0

# Gaps between parts of the data smaller than this fraction of the samples only
# need to stay within the truncation radius (see auto_bandwidth).
_MIN_GROUP_FRACTION = 0.01

# Above this many features a KD-tree loses to scikit-learn's tree/brute search.
_KDTREE_MAX_FEATURES = 12


@dataclass
class DiffusionGraph:
    """The alpha-normalised kernel graph of a training set.

    Attributes
    ----------
    affinity : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        Symmetric ``W^(alpha)``, self-loops included.
    degrees : ndarray of shape (n_samples,)
        Row sums of ``affinity``; the stationary distribution is
        ``degrees / degrees.sum()``.
    log_kernel_density : ndarray of shape (n_samples,)
        ``log q_i``, the log row sums of the un-normalised kernel.
    bandwidth : float
        The kernel scale ``eps`` in ``exp(-|x - y|^2 / eps)``.
    radius : float
        The truncation radius ``sqrt(KERNEL_CUTOFF * eps)``.
    n_connected_components : int
        Connected components of the truncated kernel graph.
    """

    affinity: sparse.csr_matrix
    degrees: np.ndarray
    log_kernel_density: np.ndarray
    bandwidth: float
    radius: float
    n_connected_components: int

    @property
    def stationary_distribution(self):
        return self.degrees / self.degrees.sum()


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
    """The ``'auto'`` bandwidth rule.

    Let ``d_k(x_i)`` be the distance from ``x_i`` to its ``k = n_neighbors``-th
    nearest neighbour, and consider the minimum spanning forest of the
    k-nearest-neighbour graph. Then::

        eps = max(median_i d_k(x_i)^2, 2 L_group^2, L_any^2 / KERNEL_CUTOFF)

    where ``L_group`` is the longest forest edge with at least
    ``max(k, n_samples / 100)`` samples on each side and ``L_any`` the longest
    edge overall. Dense regions set the
    scale (the median term); a gap between two groups of ``k`` or more samples
    keeps a kernel weight of at least ``exp(-1/2)``, so sparse stretches of a
    manifold stay well connected and their density estimates are not starved;
    small groups of outliers (under 1% of the data, such as the tail of a noise
    distribution) are only kept inside the truncation radius, so they cannot
    inflate the bandwidth of everything else.
    Components that are separate in the k-nearest-neighbour graph stay separate.

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
    """
    distances, indices = nn_index.kneighbors(n_neighbors=n_neighbors)
    median_scale = float(np.median(distances[:, -1] ** 2))
    lengths, smaller_side = _spanning_forest_edges(distances, indices)
    if lengths.size == 0:
        return median_scale
    min_group = max(n_neighbors, int(np.ceil(_MIN_GROUP_FRACTION * len(distances))))
    group_gaps = lengths[smaller_side >= min_group]
    longest_group_gap = float(group_gaps.max()) if group_gaps.size else 0.0
    return max(
        median_scale,
        2.0 * longest_group_gap**2,
        float(lengths.max()) ** 2 / KERNEL_CUTOFF,
    )


def _spanning_forest_edges(distances, indices):
    """Edges of the minimum spanning forest of a kNN graph.

    Returns
    -------
    lengths : ndarray of shape (n_edges,)
    smaller_side : ndarray of shape (n_edges,)
        Number of samples on the smaller side of each edge, within its tree.
    """
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
    forest = minimum_spanning_tree(knn)
    forest = (forest + forest.T).tocsr()
    _, labels = connected_components(forest, directed=False)
    tree_sizes = np.bincount(labels)
    subtree = np.ones(n_samples, dtype=np.intp)
    parents = np.full(n_samples, -1, dtype=np.intp)
    for root in _first_member_of_each(labels):
        order, predecessors = breadth_first_order(
            forest, root, directed=False, return_predecessors=True
        )
        parents[order[1:]] = predecessors[order[1:]]
        for node in order[:0:-1].tolist():
            subtree[parents[node]] += subtree[node]
    children = np.flatnonzero(parents >= 0)
    lengths = np.asarray(forest[children, parents[children]]).ravel()
    smaller_side = np.minimum(
        subtree[children], tree_sizes[labels[children]] - subtree[children]
    )
    return lengths, smaller_side


def _first_member_of_each(labels):
    _, first = np.unique(labels, return_index=True)
    return first


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
    """Bandwidth, truncated kernel and alpha-normalisation in one call.

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
    affinity, log_q = density_normalize(kernel, alpha)
    degrees = np.asarray(affinity.sum(axis=1)).ravel()
    n_components, _ = connected_components(affinity, directed=False)
    return DiffusionGraph(
        affinity=affinity,
        degrees=degrees,
        log_kernel_density=log_q,
        bandwidth=eps,
        radius=radius,
        n_connected_components=int(n_components),
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
