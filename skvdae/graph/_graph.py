"""Kernel graph of the diffusion map: outliers, components, alpha-normalisation.

Everything here is numpy/scipy/scikit-learn; no torch. The graph is truncated by
radius (``|x - y|^2 <= cutoff * bandwidth``), never by a fixed number of
neighbours: a kNN truncation cuts the kernel at a small radius in dense regions and
a large one in sparse regions, which breaks the density-free (alpha = 1) limit.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ._bandwidth import (
    ISOLATION_WARNING,
    MIN_CLUSTER_SIZE,
    auto_bandwidth,
    auto_cutoff,
    bounded_bandwidth,
    isolated_share,
)
from ._kernel import GaussianKernel
from ._rows import GrowingRows, narrowed_in_place

# Entries per block of the in-place scaling: temporaries that stay in cache
# (blocks of 65536 rows were 10x slower on a complete 5000-sample graph).
_SCALE_ENTRIES = 2**16

# Graphs of more entries store their weights in float32.
_FLOAT64_MAX_ENTRIES = 2**25

# Entries moved or renumbered per step when outliers are dropped in place.
_COMPACT_ENTRIES = 2**22

# Entries per block of rows when the components' joins are searched.
_COMPONENT_ENTRIES = 2**20

# A kernel whose mean weight over nearly all pairs exceeds this is "flat".
_FLAT_WEIGHT = 0.9

#: A sample that keeps at least this share of its kernel mass on itself (its
#: own weight, 1, against its row sum) is nearly isolated: the walk barely
#: leaves it. Reported by the edge bound's warning and by the exact solver.
STAYING_SHARE = 0.99

#: A warning says when candidate lists drop more than this share of the
#: kernel mass (the mean over samples of the share missing from each row).
DROPPED_MASS_WARNING = 0.05

# Samples whose exact kernel row sums measure the dropped mass.
_MASS_CHECK_ROWS = 500


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
    kernel : GaussianKernel
        The kernel, its scale ``eps`` and truncation radius.
    n_connected_components : int
        Connected components of the graph of the inliers.
    component_labels : ndarray of shape (n_inliers,)
        The component of each inlier, ``0 .. n_connected_components - 1``,
        numbered by their first sample.
    inliers : ndarray of shape (n_inliers,)
        Rows of the training set in the graph: those outside a connected
        component of fewer than ``MIN_CLUSTER_SIZE`` samples.
    flat : bool
        Whether nearly every pair is joined at a weight close to the peak (a
        bandwidth far above the neighbour distances).
    bandwidth_bound : bool
        Whether the bound on the edges per sample lowered the ``'auto'``
        bandwidth.
    dropped_mass : float
        The mean share of a sample's kernel mass (within the truncation
        radius) missing from its row of the graph: 0 with radius queries,
        measured on up to 500 samples against exact row sums when the pairs
        come from candidate lists (see :func:`dropped_kernel_mass`).
    row_start : int
        In a data-parallel fit, ``affinity`` holds only this process's rows,
        ``row_start .. row_start + affinity.shape[0] - 1`` of the inliers
        (all columns); 0 in one process. ``degrees``,
        ``log_kernel_density`` and ``component_labels`` are always whole.
    communicator : Communicator or None
        The process group whose processes hold the other rows; ``None`` in
        one process.
    """

    affinity: sparse.csr_matrix
    degrees: np.ndarray
    log_kernel_density: np.ndarray
    kernel: GaussianKernel
    n_connected_components: int
    component_labels: np.ndarray
    inliers: np.ndarray
    flat: bool = False
    bandwidth_bound: bool = False
    dropped_mass: float = 0.0
    row_start: int = 0
    communicator: object = None

    @property
    def n_entries(self):
        """Entries of the whole affinity matrix (summed over processes)."""
        if self.communicator is None:
            return int(self.affinity.nnz)
        return int(self.communicator.allreduce(np.int64(self.affinity.nnz)))

    @property
    def bandwidth(self):
        return self.kernel.bandwidth

    @property
    def radius(self):
        return self.kernel.radius


def locality_order(X):
    """A permutation that puts nearby samples next to each other (KD-tree leaves).

    Sparse products with the kernel graph gather rows of dense matrices through
    its column indices; with the samples in this order those gathers hit nearby
    memory, which makes them several times faster on large data.
    """
    return cKDTree(X).indices


def kernel_matrix(nn_index, kernel, block_rows=4096, rows=None):
    """Truncated kernel matrix of the indexed training set, self-loops included.

    From the KD-tree (low dimension), built block of rows by block of rows
    straight into CSR arrays that grow in place: no list of pairs, no
    intermediate copy of the whole matrix. The other searches build the
    matrix of squared distances whole (:meth:`NeighborIndex.radius_matrix`);
    the kernel is then written into its arrays. Indices are 32-bit below
    2**31 entries; values are float64 up to ``_FLOAT64_MAX_ENTRIES`` entries
    and float32 beyond (a relative error of 6e-8 in each weight, for half the
    memory).

    Parameters
    ----------
    nn_index : NeighborIndex
        Index fitted on the training data; gives the pairs within the
        kernel's radius.
    kernel : GaussianKernel
    block_rows : int, default=4096
        Rows per block; the result does not depend on it.
    rows : tuple (start, stop) or None, default=None
        Only these rows (all columns): a process's shard.

    Returns
    -------
    csr_matrix of shape (stop - start, n_samples)
        Symmetric (for all rows): a pair is kept by a criterion symmetric in
        its two ends.
    """
    n_samples = nn_index.n_samples_fit_
    pairs = nn_index.radius_matrix(kernel.radius, rows=rows)
    if pairs is not None:
        # Built whole by the search: its arrays take the kernel in place,
        # rounded once to float32 as below.
        kernel.value(pairs.data, out=pairs.data)
        if pairs.nnz > _FLOAT64_MAX_ENTRIES:
            pairs.data = narrowed_in_place(pairs.data)
        return pairs
    first, last = (0, n_samples) if rows is None else rows
    matrix = GrowingRows(
        last - first, n_samples, first, float32_beyond=_FLOAT64_MAX_ENTRIES
    )
    for start, stop, lengths, columns, squared in nn_index.radius_rows(
        kernel.radius, block_rows, rows=rows
    ):
        # The kernel in float64, then stored (rounded once where float32).
        matrix.append(start, stop, lengths, columns, kernel.value(squared, out=squared))
    return matrix.tocsr()


def row_sums(matrix):
    """Row sums of a CSR matrix, accumulated in float64 whatever its dtype.

    (scipy's ``sum(axis=1, dtype=np.float64)`` accumulates float32 values in
    float32, a relative error of about 1e-7: as large as ``1 - lambda`` on
    large graphs.)

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from skvdae.graph import row_sums
    >>> row_sums(sparse.csr_matrix(np.array([[1.0, 2.0], [0.0, 0.0]]))).tolist()
    [3.0, 0.0]
    """
    sums = np.zeros(matrix.shape[0])
    # Converted to float64 a block at a time: no float64 copy of all the
    # values, and no reduceat(dtype=float64) on float32, which casts each
    # row separately (50 times slower).
    for start, stop in row_blocks(matrix.indptr, matrix.shape[0], _SCALE_ENTRIES):
        low, high = matrix.indptr[start], matrix.indptr[stop]
        lengths = np.diff(matrix.indptr[start : stop + 1])
        nonempty = np.flatnonzero(lengths)
        if nonempty.size:
            values = matrix.data[low:high].astype(np.float64, copy=False)
            offsets = matrix.indptr[start:stop][nonempty] - low
            sums[start + nonempty] = np.add.reduceat(values, offsets)
    return sums


def density_normalize(kernel, alpha, copy=True, communicator=None, row_start=0):
    """``W^(alpha)_ij = K_ij / (q_i^alpha q_j^alpha)`` with ``q`` the kernel row sums.

    With ``copy=False`` the kernel's values are overwritten (no second matrix
    in memory). With a ``communicator``, ``kernel`` holds the rows
    ``row_start ..`` of this process and the row sums of all rows are
    gathered from the processes.

    Returns
    -------
    affinity : csr_matrix
    log_kernel_density : ndarray of shape (n_samples,)
        ``log q``.
    """
    q = row_sums(kernel)
    if communicator is not None:
        q = communicator.allgather(q)
    affinity = kernel.copy() if copy else kernel
    return scale_symmetric(affinity, q ** (-alpha), row_start), np.log(q)


def row_blocks(indptr, max_rows, max_entries):
    """Consecutive ``(start, stop)`` rows of a CSR matrix, bounded in both.

    A block holds at most ``max_rows`` rows and, unless one row alone has
    more, at most ``max_entries`` entries: dense rows make short blocks.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph import row_blocks
    >>> indptr = np.array([0, 1, 5, 6, 7])  # rows of 1, 4, 1 and 1 entries
    >>> list(row_blocks(indptr, max_rows=3, max_entries=2))
    [(0, 1), (1, 2), (2, 4)]
    """
    n_rows = indptr.size - 1
    start = 0
    while start < n_rows:
        limit = min(start + max_rows, n_rows)
        # The target in indptr's own dtype: a Python int would make searchsorted
        # cast all of indptr first (0.5 ms a block on 10^6 rows).
        target = min(int(indptr[start]) + max_entries, int(indptr[-1]))
        target = indptr.dtype.type(target)
        stop = int(np.searchsorted(indptr, target, side="right"))
        stop = max(start + 1, min(stop - 1, limit))
        yield start, stop
        start = stop


def row_view(matrix, start, stop):
    """The rows ``start`` to ``stop`` (excluded) of a CSR matrix, sharing its arrays.

    (Slicing, and the constructor on slices of the arrays, copy them.)

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from skvdae.graph import row_view
    >>> M = sparse.csr_matrix(np.arange(6.0).reshape(3, 2))
    >>> view = row_view(M, 1, 3)
    >>> view.toarray().tolist(), bool(np.shares_memory(view.data, M.data))
    ([[2.0, 3.0], [4.0, 5.0]], True)
    """
    low, high = matrix.indptr[start], matrix.indptr[stop]
    view = sparse.csr_matrix((stop - start, matrix.shape[1]), dtype=matrix.dtype)
    view.indptr = (matrix.indptr[start : stop + 1] - low).astype(
        matrix.indices.dtype, copy=False
    )
    view.indices = matrix.indices[low:high]
    view.data = matrix.data[low:high]
    return view


def scale_symmetric(matrix, scale, row_start=0):
    """``M_ij <- s_i M_ij s_j`` in place, block of rows by block of rows.

    ``matrix`` holds the rows ``row_start ..`` of the whole matrix; ``scale``
    has one value per row of the whole matrix. Returns ``matrix``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from skvdae.graph import scale_symmetric
    >>> M = sparse.csr_matrix(np.ones((2, 2)))
    >>> scale_symmetric(M, np.array([1.0, 2.0])).toarray().tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    """
    for low, high, rows in _entry_blocks(matrix, row_start):
        matrix.data[low:high] *= scale[rows] * scale[matrix.indices[low:high]]
    return matrix


def diagonal_positions(matrix):
    """Where each row of a canonical CSR matrix stores its diagonal, or None.

    None when a row stores no diagonal entry (canonical rows store at most
    one). Found a block of rows at a time: no row index of every entry.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from skvdae.graph import diagonal_positions
    >>> M = sparse.csr_matrix(np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> diagonal_positions(M).tolist()
    [0, 3]
    >>> diagonal_positions(sparse.csr_matrix(np.array([[0.0, 2.0], [3.0, 4.0]])))
    """
    found = [
        low + np.flatnonzero(matrix.indices[low:high] == rows)
        for low, high, rows in _entry_blocks(matrix)
    ]
    positions = np.concatenate(found) if found else np.zeros(0, dtype=np.intp)
    return positions if positions.size == matrix.shape[0] else None


def _entry_blocks(matrix, row_start=0):
    """``(low, high, rows)``: the entries ``low .. high - 1`` of a CSR matrix
    and the row of each (plus ``row_start``), a block of rows at a time."""
    indptr = matrix.indptr
    for start, stop in row_blocks(indptr, matrix.shape[0], _SCALE_ENTRIES):
        rows = np.repeat(
            np.arange(start, stop) + row_start, np.diff(indptr[start : stop + 1])
        )
        yield indptr[start], indptr[stop], rows


def build_diffusion_graph(
    nn_index, n_neighbors, bandwidth, alpha, max_edges=None, communicator=None
):
    """Bandwidth, truncated kernel, outliers and alpha-normalisation in one call.

    The kernel is truncated at the cutoff of :func:`auto_cutoff`: the
    smallest radius that keeps all but 0.1% of the samples' kernel mass.

    Connected components of the kernel graph with fewer than
    ``MIN_CLUSTER_SIZE`` samples are outliers; the graph keeps the other
    samples (their kernel rows are unchanged, since no edge leaves a
    component). When every component is that small (a bandwidth far below the
    neighbour distances), all samples are kept and a warning is issued.

    Parameters
    ----------
    nn_index : NeighborIndex
        Index fitted on the training data (float64).
    n_neighbors : int
        Neighbour rank used by the ``'auto'`` bandwidth rule.
    bandwidth : 'auto' or float
        Kernel scale ``eps``.
    alpha : float
        Density normalisation exponent in ``[0, 1]``.
    max_edges : int or None, default=None
        With ``bandwidth='auto'``, a bound on the mean kernel neighbours per
        sample (see :func:`bounded_bandwidth`).
    communicator : Communicator or None, default=None
        In a data-parallel fit, each process builds the kernel rows of its
        shard (:meth:`~skvdae.distributed.Communicator.shard`) against all
        samples; the neighbours of the bandwidth rule, the row sums, the
        degrees and the components are combined by collectives, and no
        process holds the whole graph. The result equals the single-process
        graph's rows (to the bit with the KD-tree path of low-dimensional
        data).

    Returns
    -------
    DiffusionGraph
    """
    n_samples = nn_index.n_samples_fit_
    rows = None if communicator is None else communicator.shard(n_samples)
    if bandwidth == "auto":
        eps = auto_bandwidth(nn_index, n_neighbors, communicator)
        if eps <= 0.0:
            raise ValueError(
                "bandwidth='auto' is zero: more than half of the samples have "
                f"{n_neighbors} or more exact duplicates. Remove duplicated rows or "
                "pass a positive float bandwidth."
            )
    else:
        eps = float(bandwidth)
    cutoff = auto_cutoff(nn_index, eps)
    bound = False
    if bandwidth == "auto" and max_edges is not None:
        unbounded = eps, cutoff
        eps, bound = bounded_bandwidth(nn_index, eps, cutoff, max_edges)
        if bound:
            # The lowered bandwidth's own cutoff, and the bound counted with it.
            cutoff = auto_cutoff(nn_index, eps)
            eps = bounded_bandwidth(nn_index, eps, cutoff, max_edges)[0]
            isolated = isolated_share(nn_index, *unbounded)
    kernel_function = GaussianKernel(eps, cutoff)
    kernel = kernel_matrix(nn_index, kernel_function, rows=rows)
    dropped = 0.0
    if not nn_index.radius_search_:
        dropped = dropped_kernel_mass(nn_index.data_, kernel, kernel_function)
        if dropped > DROPPED_MASS_WARNING:
            warnings.warn(
                f"The neighbour candidates miss {dropped:.1%} of the kernel mass "
                f"on average ({nn_index.n_truncated_} samples have more than "
                f"{nn_index.max_candidates} neighbours within the kernel's radius, "
                "or the approximate search missed some): the density "
                "normalisation (alpha) is biased. Use a smaller bandwidth, a "
                "larger max_edges_per_sample or exact neighbours.",
                UserWarning,
                stacklevel=3,
            )
    labels = _component_labels(kernel, rows, communicator)
    sizes = np.bincount(labels)
    if bound:
        lost = float(np.mean(sizes[labels] < MIN_CLUSTER_SIZE))
        _warn_if_isolating(
            unbounded[0], eps, isolated, lost, max_edges, kernel, communicator
        )
    row_start = 0 if rows is None else rows[0]
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
            first, last = (0, n_samples) if rows is None else rows
            kernel = _inlier_submatrix(kernel, inliers, first, last)
            labels = labels[inliers]
            row_start = int(np.searchsorted(inliers, first))
    flat = _warn_if_flat(kernel, eps, communicator)
    affinity, log_q = density_normalize(
        kernel, alpha, copy=False, communicator=communicator, row_start=row_start
    )
    del kernel
    degrees = row_sums(affinity)
    if communicator is not None:
        degrees = communicator.allgather(degrees)
    # Renumber the components by their first sample, a deterministic order.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    component_labels = np.argsort(np.argsort(first))[inverse]
    return DiffusionGraph(
        affinity=affinity,
        degrees=degrees,
        log_kernel_density=log_q,
        kernel=kernel_function,
        n_connected_components=int(first.size),
        component_labels=component_labels.astype(np.intp),
        inliers=inliers,
        flat=flat,
        bandwidth_bound=bound,
        dropped_mass=dropped,
        row_start=row_start,
        communicator=communicator,
    )


def pattern_components(matrix, sketch_entries=8):
    """Labels of the connected components of a square sparse matrix's pattern.

    The partition of scipy's ``connected_components(matrix,
    directed=False)``, without its float64 copy of the values (the size of
    the whole graph again): first the components of a sketch, up to
    ``sketch_entries`` stored entries of each row spread along it; every
    sketch component lies within one component of the matrix. Then any
    stored entry between two sketch components joins them, found in blocks
    of rows; the components of those joins are the matrix's.

    Parameters
    ----------
    matrix : csr_matrix of shape (n, n)
        Only its pattern counts (explicit zeros are edges).
    sketch_entries : int, default=8
        Entries per row in the sketch; the result does not depend on it.

    Returns
    -------
    labels : ndarray of shape (n,)
        The same label for samples of the same component, ``0 ..
        n_components - 1`` in no particular order.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from skvdae.graph import pattern_components
    >>> chain = sparse.diags([1.0, 1.0], [0, 1], shape=(5, 5), format="csr")
    >>> labels = pattern_components(chain, sketch_entries=1)
    >>> len(set(labels.tolist()))
    1
    """
    n_rows = matrix.shape[0]
    indptr = matrix.indptr.astype(np.int64)
    lengths = np.diff(indptr)
    taken = np.minimum(lengths, sketch_entries)
    rows = np.repeat(np.arange(n_rows), taken)
    rank = np.arange(rows.size) - np.repeat(np.cumsum(taken) - taken, taken)
    positions = indptr[rows] + rank * lengths[rows] // taken[rows]
    del rows, rank
    sketch_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(taken, out=sketch_indptr[1:])
    sketch = sparse.csr_matrix(
        (np.ones(positions.size), matrix.indices[positions], sketch_indptr),
        shape=(n_rows, n_rows),
    )
    del positions
    _, labels = connected_components(sketch, directed=False)
    n_labels = int(labels.max()) + 1 if n_rows else 0
    joins = []
    for start, stop in row_blocks(indptr, n_rows, _COMPONENT_ENTRIES):
        low, high = indptr[start], indptr[stop]
        ends = labels[matrix.indices[low:high]]
        starts = np.repeat(labels[start:stop], lengths[start:stop])
        across = starts != ends
        if across.any():
            joins.append(
                np.unique(starts[across].astype(np.int64) * n_labels + ends[across])
            )
    if not joins:
        return labels
    joins = np.concatenate(joins)
    quotient = sparse.csr_matrix(
        (np.ones(joins.size), (joins // n_labels, joins % n_labels)),
        shape=(n_labels, n_labels),
    )
    return connected_components(quotient, directed=False)[1][labels]


def _component_labels(kernel, rows, communicator):
    """Connected-component labels of every sample (not yet renumbered).

    In one process, from the kernel's pattern (:func:`pattern_components`). In a
    data-parallel fit each process finds the components of the edges in its
    rows and links every sample to the smallest sample of its local
    component; the union of those links over the processes (at most one per
    sample and process) has exactly the components of the whole graph.
    """
    if communicator is None:
        return pattern_components(kernel)
    n_samples = kernel.shape[1]
    first, last = rows
    indptr = np.concatenate(
        [
            np.zeros(first, dtype=kernel.indptr.dtype),
            kernel.indptr,
            np.full(n_samples - last, kernel.indptr[-1], dtype=kernel.indptr.dtype),
        ]
    )
    own_edges = sparse.csr_matrix(
        (kernel.data, kernel.indices, indptr), shape=(n_samples, n_samples)
    )
    local = pattern_components(own_edges)
    smallest = np.full(local.max() + 1, n_samples, dtype=np.int64)
    np.minimum.at(smallest, local, np.arange(n_samples))
    representative = smallest[local]
    linked = np.flatnonzero(representative != np.arange(n_samples))
    links = communicator.allgather(np.c_[linked, representative[linked]])
    union = sparse.coo_matrix(
        (np.ones(len(links)), (links[:, 0], links[:, 1])),
        shape=(n_samples, n_samples),
    )
    return connected_components(union, directed=False)[1]


def dropped_kernel_mass(X, kernel_csr, kernel, n_rows=_MASS_CHECK_ROWS):
    """Mean share of the kernel row sums that a truncated kernel matrix lacks.

    For up to ``n_rows`` evenly spaced samples, the row sum of ``kernel_csr``
    is compared with the exact sum of the kernel over every training point
    within its radius (by brute force, in blocks).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    kernel_csr : csr_matrix of shape (n_samples, n_samples)
        The kernel matrix, self-loops included, whose entries are a subset of
        the pairs within the radius.
    kernel : GaussianKernel
    n_rows : int, default=500

    Returns
    -------
    float
        ``mean_i (1 - sum_j K_ij / sum_{j : |x_i - x_j| <= r} k(x_i, x_j))``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from skvdae.graph import GaussianKernel, dropped_kernel_mass
    >>> X = np.array([[0.0], [1.0]])
    >>> kernel = GaussianKernel(1.0)
    >>> float(dropped_kernel_mass(X, sparse.eye(2, format="csr"), kernel))
    ... # doctest: +ELLIPSIS
    0.26894...
    """
    n_samples = X.shape[0]
    rows = np.unique(np.linspace(0, n_samples - 1, min(n_rows, n_samples)).astype(int))
    kept = row_sums(kernel_csr[rows])
    norms = np.einsum("ij,ij->i", X, X)
    exact = np.empty(rows.size)
    for start in range(0, rows.size, 64):
        block = rows[start : start + 64]
        squared = norms[block, None] + norms[None, :] - 2.0 * (X[block] @ X.T)
        np.maximum(squared, 0.0, out=squared)
        squared[np.arange(block.size), block] = 0.0
        values = kernel.value(squared)
        values[squared > kernel.radius**2] = 0.0
        exact[start : start + block.size] = values.sum(axis=1)
    return float(np.mean(np.clip(1.0 - kept / exact, 0.0, 1.0)))


def _inlier_submatrix(kernel, inliers, first=0, last=None):
    """The rows and columns of ``inliers``, compacted in ``kernel``'s own arrays.

    Outliers are components of their own: no inlier row has an outlier
    column, so dropping the outlier rows and renumbering the columns is
    enough. Both happen in place, a bounded block at a time (a copy of the
    rows would double the graph's memory). ``kernel`` holds the rows
    ``first .. last - 1`` (a shard) of all columns; it is consumed.
    """
    last = kernel.shape[0] + first if last is None else last
    own = np.zeros(last - first, dtype=bool)
    own[inliers[(inliers >= first) & (inliers < last)] - first] = True
    indptr, indices, data = kernel.indptr, kernel.indices, kernel.data
    lengths = np.diff(indptr)
    # Runs of consecutive kept rows, each moved left over the dropped rows.
    edges = np.flatnonzero(np.diff(np.r_[False, own, False]))
    filled = 0
    for run_start, run_stop in zip(edges[::2], edges[1::2], strict=True):
        low, high = int(indptr[run_start]), int(indptr[run_stop])
        if low != filled:
            for offset in range(0, high - low, _COMPACT_ENTRIES):
                size = min(_COMPACT_ENTRIES, high - low - offset)
                source = slice(low + offset, low + offset + size)
                target = slice(filled + offset, filled + offset + size)
                indices[target] = indices[source]
                data[target] = data[source]
        filled += high - low
    renumber = np.full(kernel.shape[1], -1, dtype=indices.dtype)
    renumber[inliers] = np.arange(inliers.size, dtype=indices.dtype)
    for low in range(0, filled, _COMPACT_ENTRIES):
        block = slice(low, min(low + _COMPACT_ENTRIES, filled))
        indices[block] = renumber[indices[block]]
    new_indptr = np.zeros(int(own.sum()) + 1, dtype=indptr.dtype)
    np.cumsum(lengths[own], out=new_indptr[1:])
    compact = sparse.csr_matrix((own.sum(), inliers.size), dtype=data.dtype)
    # Assigned, not passed to the constructor, which copies arrays that it
    # finds much longer than their entries.
    compact.indptr, compact.indices, compact.data = (
        new_indptr,
        indices[:filled],
        data[:filled],
    )
    return compact


def _warn_if_isolating(
    unbounded, bounded, isolated, lost, max_edges, kernel, communicator=None
):
    """Warn when the edge bound cuts the sparse parts of the data apart.

    One bandwidth serves dense and sparse parts alike: on data whose density
    varies a lot (clusters of different spreads in many dimensions), the
    bandwidth that keeps the dense parts within the bound can leave the
    sparse ones without neighbours. ``lost`` is the share of the samples in
    components too small to be kept, ``isolated`` the share that the
    unbounded bandwidth left with too few neighbours to be kept. The warning
    also gives the share of all samples that keep ``STAYING_SHARE`` of their
    kernel mass on themselves (from the rows of ``kernel``, this process's
    with a ``communicator``): those the bound has nearly cut off.
    """
    if lost - isolated > ISOLATION_WARNING:
        sums = row_sums(kernel)
        if communicator is not None:
            sums = communicator.allgather(sums)
        staying = float(np.mean(sums < 1.0 / STAYING_SHARE))
        warnings.warn(
            f"max_edges_per_sample={max_edges} lowered the bandwidth from "
            f"{unbounded:.3g} to {bounded:.3g}, which leaves {lost:.1%} of the "
            f"samples in components of fewer than {MIN_CLUSTER_SIZE}, left out as "
            f"outliers ({isolated:.1%} had fewer than {MIN_CLUSTER_SIZE - 1} "
            f"neighbours at the first bandwidth), and {staying:.1%} keeping more "
            f"than {STAYING_SHARE:.0%} of their kernel mass on themselves: the "
            "sparser parts of the data fall apart. Raise max_edges_per_sample "
            "(the graph takes 8 to 12 bytes an entry), or pass a float bandwidth.",
            UserWarning,
            stacklevel=4,
        )


def _warn_if_flat(kernel, eps, communicator=None):
    """Warn (and return True) when nearly every pair is joined near the peak."""
    n_samples = kernel.shape[1]
    total, nnz = kernel.sum(), kernel.nnz
    if communicator is not None:
        total, nnz = communicator.allreduce(np.array([total, nnz], dtype=np.float64))
    if n_samples < 3 or nnz < 0.5 * n_samples**2:
        return False
    off_diagonal = (total - n_samples) / max(nnz - n_samples, 1)
    if off_diagonal > _FLAT_WEIGHT:
        warnings.warn(
            f"The kernel of bandwidth {eps:.3g} is nearly flat (mean weight "
            f"{off_diagonal:.2f} over {nnz / n_samples:.0f} neighbours per "
            "sample): every sample is close to every other, and the diffusion "
            "coordinates carry little geometry. Use bandwidth='auto' or a smaller "
            "bandwidth.",
            UserWarning,
            stacklevel=3,
        )
        return True
    return False


def transition_rows(nn_index, X, kernel, log_weights):
    """Rows ``p(x, .)`` of the Markov kernel for arbitrary points ``X``.

    ``p(x, x_j) = k(x, x_j) w_j / sum_l k(x, x_l) w_l`` with ``log w = log_weights``
    (``-alpha log q`` for the alpha-normalised kernel; the factor ``q(x)^-alpha``
    of the new point cancels). Computed as a softmax of log-weights so that no row
    underflows. A point with no training sample within the kernel's radius takes
    the limit of the kernel far from the data: its row concentrates on its
    nearest training sample(s).

    For a training point, with its own self-loop included, the row equals the row
    of ``P = D^-1 W^(alpha)``, which makes the Nystrom extension consistent.

    Returns
    -------
    csr_matrix of shape (n_queries, n_train)
    """
    distances, indices = nn_index.radius_neighbors(X, kernel.radius)
    empty = np.flatnonzero([len(row) == 0 for row in indices])
    if empty.size:
        near_d, near_i = nn_index.kneighbors(X[empty], n_neighbors=1)
        for position, row in enumerate(empty):
            distances[row] = near_d[position]
            indices[row] = near_i[position]
    lengths = np.fromiter((len(row) for row in indices), dtype=np.intp, count=len(X))
    cols = np.concatenate(indices).astype(np.intp, copy=False)
    dist = np.concatenate(distances)
    logits = kernel.log_value(dist**2) + log_weights[cols]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    row_ids = np.repeat(np.arange(len(X)), lengths)
    values = np.exp(logits - np.maximum.reduceat(logits, indptr[:-1])[row_ids])
    values /= np.add.reduceat(values, indptr[:-1])[row_ids]
    n_train = nn_index.n_samples_fit_
    return sparse.csr_matrix((values, cols, indptr), shape=(len(X), n_train))
