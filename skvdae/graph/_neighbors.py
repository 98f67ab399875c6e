"""Neighbour search behind every neighbour query of the package.

:class:`NeighborIndex` wraps a backend with the methods of
:class:`sklearn.neighbors.NearestNeighbors` that the package uses (``fit``,
``kneighbors``, ``radius_neighbors``) and adds
:meth:`~NeighborIndex.radius_pairs`, the pairs within a radius that the kernel
graph is built from. It keeps its training data as ``data_``, so nothing reads
a backend's private attributes.
"""

import copy

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors

#: Up to this many features, the default backend takes the pairs within a
#: radius from scipy's KD-tree (several times faster than a radius query per
#: sample); beyond it, and for any other backend, from radius queries.
TREE_MAX_FEATURES = 12

# Rows per block of the radius queries that feed radius_pairs.
_PAIR_CHUNK = 4096


def check_neighbors(neighbors, name="neighbors"):
    """``neighbors`` as given, or a TypeError saying what it must be."""
    if neighbors is None or (isinstance(neighbors, str) and neighbors == "auto"):
        return neighbors
    missing = [
        method
        for method in ("fit", "kneighbors")
        if not callable(getattr(neighbors, method, None))
    ]
    if missing or isinstance(neighbors, type):
        raise TypeError(
            f"{name} must be None, 'auto' or an unfitted object with the "
            "methods fit and kneighbors (and radius_neighbors), such as "
            f"sklearn.neighbors.NearestNeighbors(); got {neighbors!r}."
        )
    return neighbors


class NeighborIndex:
    """Euclidean neighbours of a fitted point set, through one interface.

    Parameters
    ----------
    backend : None, 'auto' or object, default=None
        ``None`` or ``'auto'``: exact search (scikit-learn's
        ``NearestNeighbors``, scipy's KD-tree for the pairs in low dimension).
        Otherwise an unfitted object with ``fit``, ``kneighbors`` and
        ``radius_neighbors`` like :class:`sklearn.neighbors.NearestNeighbors`
        (e.g. ``NearestNeighbors(algorithm="brute")``); it is cloned, never
        changed.

    Attributes
    ----------
    data_ : ndarray of shape (n_samples, n_features)
        The indexed points (float64).

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph import NeighborIndex
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> index = NeighborIndex().fit(X)
    >>> distances, indices = index.kneighbors(n_neighbors=1)
    >>> indices.ravel().tolist()
    [1, 0, 1]
    >>> first, second, squared = index.radius_pairs(1.5)
    >>> first.tolist(), second.tolist(), squared.tolist()
    ([0], [1], [1.0])
    """

    def __init__(self, backend=None):
        self.backend = check_neighbors(backend)

    @property
    def _default(self):
        return self.backend is None or isinstance(self.backend, str)

    def fit(self, X):
        """Index the rows of ``X`` (kept, as float64, in ``data_``)."""
        self.data_ = np.asarray(X, dtype=np.float64)
        if self._default:
            index = NearestNeighbors()
        elif hasattr(self.backend, "get_params"):
            index = clone(self.backend)
        else:
            index = copy.deepcopy(self.backend)
        self._index = index.fit(self.data_)
        return self

    @property
    def n_samples_fit_(self):
        return self.data_.shape[0]

    def kneighbors(self, X=None, n_neighbors=5, return_distance=True):
        """As :meth:`sklearn.neighbors.NearestNeighbors.kneighbors`.

        ``X=None`` queries the training points, each without itself.
        """
        return self._index.kneighbors(
            X, n_neighbors=n_neighbors, return_distance=return_distance
        )

    def radius_neighbors(self, X, radius):
        """As :meth:`sklearn.neighbors.NearestNeighbors.radius_neighbors`."""
        method = getattr(self._index, "radius_neighbors", None)
        if method is None:
            raise TypeError(
                f"The neighbour backend {type(self._index).__name__} has no "
                "radius_neighbors method, which the kernel graph needs."
            )
        return method(X, radius=radius)

    def radius_counts(self, X, radius):
        """How many indexed points lie within ``radius`` of each row of ``X``."""
        if self._default and self.data_.shape[1] <= TREE_MAX_FEATURES:
            return self._tree().query_ball_point(X, radius, return_length=True)
        return np.fromiter(map(len, self.radius_neighbors(X, radius)[1]), np.intp)

    def _tree(self):
        if getattr(self, "_kd_tree", None) is None:
            self._kd_tree = cKDTree(self.data_)
        return self._kd_tree

    def radius_rows(self, radius, block_rows=_PAIR_CHUNK):
        """Every training point's neighbours within ``radius``, itself included.

        Yields ``(start, stop, lengths, columns, squared)`` for consecutive
        blocks of rows: ``lengths[i]`` neighbours of row ``start + i``, their
        indices (sorted) and squared distances, concatenated. Memory is that
        of one block. The squared distances are computed from coordinates, a
        formula symmetric to the bit in ``i`` and ``j``, and pairs are kept by
        it, so that the rows make a symmetric matrix.
        """
        X = self.data_
        n_samples, n_features = X.shape
        # A hair beyond the radius: the search's own rounding must not drop a
        # pair that the symmetric criterion below keeps.
        search = radius * (1.0 + 1e-9)
        squared_radius = radius * radius
        fast = self._default and n_features <= TREE_MAX_FEATURES
        for start in range(0, n_samples, block_rows):
            stop = min(start + block_rows, n_samples)
            rows = X[start:stop]
            if fast:
                # Arrays straight from C: no Python object per neighbour.
                found = cKDTree(rows).sparse_distance_matrix(
                    self._tree(), search, output_type="coo_matrix"
                )
                origin, columns = found.row.astype(np.intp), found.col.astype(np.intp)
                del found
            else:
                neighbours = self.radius_neighbors(rows, search)[1]
                lengths = np.fromiter(map(len, neighbours), np.intp, stop - start)
                columns = np.concatenate(neighbours).astype(np.intp, copy=False)
                origin = np.repeat(np.arange(stop - start), lengths)
            squared = np.zeros(columns.size)
            for feature in range(n_features):
                column = X[:, feature]
                squared += (column[origin + start] - column[columns]) ** 2
            keep = squared <= squared_radius
            # Grouped by row (a counting sort in scipy), columns sorted.
            block = sparse.csr_matrix(
                (squared[keep], (origin[keep], columns[keep])),
                shape=(stop - start, n_samples),
            )
            block.sort_indices()
            lengths = np.diff(block.indptr)
            columns, squared = block.indices, block.data
            yield start, stop, lengths, columns, squared

    def radius_pairs(self, radius):
        """Pairs ``i < j`` of training points within ``radius`` of each other.

        Returns
        -------
        first, second : ndarray of int32 (int64 beyond 2**31 samples)
        squared_distances : ndarray of float64
        """
        index_dtype = np.int32 if self.n_samples_fit_ < 2**31 else np.int64
        firsts, seconds, squares = [], [], []
        for start, stop, lengths, columns, squared in self.radius_rows(radius):
            origin = np.repeat(np.arange(start, stop), lengths)
            upper = columns > origin
            firsts.append(origin[upper].astype(index_dtype))
            seconds.append(columns[upper].astype(index_dtype))
            squares.append(squared[upper])
        return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(squares)
