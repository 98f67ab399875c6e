"""Approximate nearest neighbours: faiss's HNSW graph behind a scikit-learn face.

faiss is an optional dependency (``pip install skvdae[ann]``). It was chosen
over pynndescent on the measurements in ``doc/benchmarks/embedder.rst``: the
same recall (0.999 at k = 30 on MNIST 5k and on 10^5 points in 100
dimensions), no just-in-time compilation (pynndescent spends 45-120 s
compiling in each new process before its first query) and any number of
neighbours per query.
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

# Queries per call into faiss (bounds the result arrays).
_QUERY_BLOCK = 8192
# Float64 distances: queries per matrix product, the product's largest size,
# and how many times a row's candidates the block's union may hold before
# pairs are differenced one by one instead (a product entry costs about a
# fiftieth of a gathered pair on 2 cores).
_PRODUCT_ROWS = 512
_PRODUCT_ENTRIES = 2**23
_UNION_FACTOR = 16


def approximate_backend_available():
    """Whether faiss, the approximate backend's library, can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class HNSWNeighbors(BaseEstimator):
    """Approximate Euclidean neighbours from a hierarchical navigable small world.

    A drop-in for :class:`sklearn.neighbors.NearestNeighbors` with ``fit`` and
    ``kneighbors`` only (no radius queries: the kernel graph then takes its
    pairs within the kernel's radius from candidate neighbour lists, see
    :class:`skvdae.graph.NeighborIndex`). The index is faiss's
    ``IndexHNSWFlat`` on centred float32 copies of the data; the distances
    returned are recomputed in float64 from the coordinates (by one matrix
    product per block of nearby queries, centred on the block), so only
    *which* neighbours are found is approximate.

    Requires the optional dependency faiss (``pip install skvdae[ann]``).

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours returned by :meth:`kneighbors` when it is not given.
    n_links : int, default=32
        Links per node of the graph (faiss's ``M``); more is more accurate,
        slower and larger.
    ef_construction : int, default=80
        Candidate list size while building the graph.
    ef_search : int, default=128
        Candidate list size of a query; raised to the number of neighbours
        asked for when that is larger.

    Attributes
    ----------
    n_samples_fit_ : int
        Number of indexed points.
    n_features_in_ : int
        Number of features.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : Exact neighbours.
    skvdae.DiffusionMapEmbedder : Takes this as ``neighbors=``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph import HNSWNeighbors
    >>> X = np.random.RandomState(0).normal(size=(500, 20))
    >>> index = HNSWNeighbors(n_neighbors=3).fit(X)  # doctest: +SKIP
    >>> index.kneighbors(X[:2])[1][:, 0].tolist()  # doctest: +SKIP
    [0, 1]
    """

    def __init__(self, n_neighbors=5, n_links=32, ef_construction=80, ef_search=128):
        self.n_neighbors = n_neighbors
        self.n_links = n_links
        self.ef_construction = ef_construction
        self.ef_search = ef_search

    def fit(self, X, y=None):
        """Build the graph on the rows of ``X``."""
        try:
            import faiss
        except ImportError as error:
            raise ImportError(
                "HNSWNeighbors needs faiss: pip install 'skvdae[ann]' (or faiss-cpu)."
            ) from error
        for name in ("n_neighbors", "n_links", "ef_construction", "ef_search"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an int; got {value!r}.")
            if value < 1:
                raise ValueError(f"{name} must be at least 1; got {value}.")
        X = self._validate_data_array(X)
        self._X = X
        index = faiss.IndexHNSWFlat(X.shape[1], int(self.n_links))
        index.hnsw.efConstruction = int(self.ef_construction)
        # Centred before the cast: float32 keeps ~7 digits of each coordinate.
        self._center = X.mean(axis=0)
        index.add(np.ascontiguousarray(X - self._center, dtype=np.float32))
        self._index = index
        self.n_samples_fit_, self.n_features_in_ = X.shape
        return self

    def __getstate__(self):
        # faiss's index is a C++ object: pickled as its own serialisation.
        state = self.__dict__.copy()
        if "_index" in state:
            import faiss

            state["_index"] = faiss.serialize_index(state["_index"])
        return state

    def __setstate__(self, state):
        if "_index" in state:
            import faiss

            state["_index"] = faiss.deserialize_index(state["_index"])
        self.__dict__.update(state)

    @staticmethod
    def _validate_data_array(X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D array; got shape {X.shape}.")
        return X

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The ``n_neighbors`` nearest indexed points of each row of ``X``.

        ``X=None`` queries the indexed points, each without itself, as
        :meth:`sklearn.neighbors.NearestNeighbors.kneighbors` does. Rows are
        sorted by distance. Where the search finds fewer points than asked
        (only when ``n_neighbors`` is close to the number indexed), the rest
        is filled with the nearest other indexed points by exact search.
        """
        check_is_fitted(self, "_index")
        k = self.n_neighbors if n_neighbors is None else int(n_neighbors)
        own = X is None
        queries = self._X if own else self._validate_data_array(X)
        if queries.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {queries.shape[1]} features; the index has "
                f"{self.n_features_in_}."
            )
        width = k + 1 if own else k
        if width > self.n_samples_fit_:
            raise ValueError(
                f"Expected n_neighbors <= {self.n_samples_fit_ - own}; got {k}."
            )
        self._index.hnsw.efSearch = max(int(self.ef_search), width)
        distances = np.empty((len(queries), k))
        indices = np.empty((len(queries), k), dtype=np.intp)
        for start in range(0, len(queries), _QUERY_BLOCK):
            rows = queries[start : start + _QUERY_BLOCK]
            squared, found = self._index.search(
                np.ascontiguousarray(rows - self._center, dtype=np.float32), width
            )
            squared, found = squared.astype(np.float64), found.astype(np.intp)
            if own:
                squared, found = _drop_self(
                    squared, found, np.arange(start, start + len(rows))
                )
            self._fill_missing(rows, squared, found)
            squared = _row_squared_distances(self._X, rows, found)
            order = np.argsort(squared, axis=1, kind="stable")
            distances[start : start + len(rows)] = np.sqrt(
                np.take_along_axis(squared, order, axis=1)
            )
            indices[start : start + len(rows)] = np.take_along_axis(
                found, order, axis=1
            )
        return (distances, indices) if return_distance else indices

    def _fill_missing(self, rows, squared, found):
        """Complete, by exact search, rows where the graph search ran short."""
        for row in np.flatnonzero((found < 0).any(axis=1)):
            exact = np.sum((self._X - rows[row]) ** 2, axis=1)
            missing = found[row] < 0
            exact[found[row][~missing]] = np.inf
            extra = np.argsort(exact, kind="stable")[: missing.sum()]
            found[row][missing] = extra
            squared[row][missing] = exact[extra]
            order = np.argsort(squared[row], kind="stable")
            found[row], squared[row] = found[row][order], squared[row][order]


def _row_squared_distances(X, rows, found):
    """``|rows[i] - X[found[i, j]]|^2`` in float64.

    Nearby queries (the kernel graph asks for its rows in locality order)
    share most of their candidates: a block of them then takes one matrix
    product against the union of its candidates, an order of magnitude
    faster than gathering each candidate's row. Both sides are centred on
    the block's mean first, since the product formula loses digits in
    proportion to the squared norms; these are then of the block's own
    extent. Blocks whose candidates barely overlap difference each pair.
    """
    squared = np.empty(found.shape)
    width = max(1, found.shape[1])
    step = max(1, min(_PRODUCT_ROWS, _PRODUCT_ENTRIES // (_UNION_FACTOR * width)))
    seen = np.zeros(len(X), dtype=bool)
    position = np.empty(len(X), dtype=np.intp)
    for start in range(0, len(rows), step):
        queries, block = rows[start : start + step], found[start : start + step]
        seen[block] = True
        union = np.flatnonzero(seen)
        seen[union] = False
        if union.size > _UNION_FACTOR * width:
            squared[start : start + step] = _pair_squared_distances(X, queries, block)
            continue
        centre = queries.mean(axis=0)
        queries = queries - centre
        candidates = X[union] - centre
        position[union] = np.arange(union.size)
        columns = position[block]
        products = np.take_along_axis(queries @ candidates.T, columns, axis=1)
        values = np.einsum("ij,ij->i", candidates, candidates)[columns]
        values += np.einsum("ij,ij->i", queries, queries)[:, None]
        values -= 2.0 * products
        np.maximum(values, 0.0, out=squared[start : start + step])
    return squared


def _centred_squared_distances(queries, others, other_norms):
    """``|q_i - o_j|^2`` from a matrix product, for centred ``queries`` and
    ``others`` (the product formula loses digits in proportion to the squared
    norms) and ``other_norms``, the squared norms of ``others``."""
    squared = other_norms - 2.0 * (queries @ others.T)
    squared += np.einsum("ij,ij->i", queries, queries)[:, None]
    return squared


def _pair_squared_distances(X, rows, found):
    """``|rows[i] - X[found[i, j]]|^2`` pair by pair, in blocks of bounded size."""
    squared = np.empty(found.shape)
    step = max(1, 2**22 // max(1, found.shape[1] * X.shape[1]))
    for start in range(0, len(rows), step):
        difference = X[found[start : start + step]] - rows[start : start + step, None]
        squared[start : start + step] = np.einsum("ijk,ijk->ij", difference, difference)
    return squared


def _drop_self(squared, found, own_rows):
    """Each row's results without the query's own index (or the farthest)."""
    is_self = found == own_rows[:, None]
    # Rows that did not find themselves drop their last (farthest) result.
    is_self[~is_self.any(axis=1), -1] = True
    shape = (len(found), found.shape[1] - 1)
    return squared[~is_self].reshape(shape), found[~is_self].reshape(shape)
