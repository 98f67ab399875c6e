"""Neighbour search behind every neighbour query of the package.

:class:`ExactNeighbors` has the methods of
:class:`sklearn.neighbors.NearestNeighbors` that the package uses (``fit``,
``kneighbors``, ``radius_neighbors``) plus :meth:`~ExactNeighbors.radius_pairs`,
the pairs within a radius that the kernel graph is built from. It keeps its
training data as ``data_``.
"""

import numpy as np
from scipy.spatial import cKDTree
from sklearn.neighbors import NearestNeighbors

#: Up to this many features the pairs within a radius come from scipy's
#: KD-tree (several times faster than a radius query per sample); beyond it
#: from scikit-learn's index, which picks a tree or brute force itself.
TREE_MAX_FEATURES = 12

# Rows per block of the radius queries that feed radius_pairs in high dimension.
_PAIR_CHUNK = 4096


class ExactNeighbors:
    """Exact Euclidean neighbours of a fitted point set.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph import ExactNeighbors
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> index = ExactNeighbors().fit(X)
    >>> distances, indices = index.kneighbors(n_neighbors=1)
    >>> indices.ravel().tolist()
    [1, 0, 1]
    >>> first, second, squared = index.radius_pairs(1.5)
    >>> first.tolist(), second.tolist(), squared.tolist()
    ([0], [1], [1.0])
    """

    def fit(self, X):
        """Index the rows of ``X`` (a float64 array, kept as ``data_``)."""
        self.data_ = np.asarray(X, dtype=np.float64)
        self._index = NearestNeighbors().fit(self.data_)
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
        return self._index.radius_neighbors(X, radius=radius)

    def radius_pairs(self, radius):
        """Pairs ``i < j`` of training points within ``radius`` of each other.

        Returns
        -------
        first, second : ndarray of int32 (int64 beyond 2**31 samples)
        squared_distances : ndarray of float64
        """
        X = self.data_
        n_samples, n_features = X.shape
        index_dtype = np.int32 if n_samples < 2**31 else np.int64
        if n_features <= TREE_MAX_FEATURES:
            pairs = cKDTree(X).query_pairs(radius, output_type="ndarray")
            first = pairs[:, 0].astype(index_dtype)
            second = pairs[:, 1].astype(index_dtype)
            del pairs
        else:
            firsts, seconds = [], []
            for start in range(0, n_samples, _PAIR_CHUNK):
                rows = X[start : start + _PAIR_CHUNK]
                neighbours = self.radius_neighbors(rows, radius)[1]
                for offset, columns in enumerate(neighbours):
                    columns = columns[columns > start + offset]
                    firsts.append(np.full(columns.size, start + offset, index_dtype))
                    seconds.append(columns.astype(index_dtype))
            first = np.concatenate(firsts) if firsts else np.empty(0, index_dtype)
            second = np.concatenate(seconds) if seconds else np.empty(0, index_dtype)
        squared = np.zeros(first.size)
        for column in np.ascontiguousarray(X.T):
            squared += (column[first] - column[second]) ** 2
        return first, second, squared
