"""Neighbour search behind every neighbour query of the package.

:class:`NeighborIndex` wraps a backend with the methods of
:class:`sklearn.neighbors.NearestNeighbors` that the package uses (``fit``,
``kneighbors``, ``radius_neighbors``) and adds
:meth:`~NeighborIndex.radius_pairs`, the pairs within a radius that the kernel
graph is built from. It keeps its training data as ``data_``, so nothing reads
a backend's private attributes.

A backend without ``radius_neighbors`` (an approximate library returns ``k``
neighbours, not a ball) gets its balls from candidate lists of adaptive size:
``k`` doubles, for the rows whose ``k``-th candidate is still inside the
radius, up to ``max_candidates``; the pairs of the kernel graph are then the
union of both ends' lists, so the graph stays symmetric. For the graph, each
block of nearby training rows shares one such search, around the block's
centroid and wide enough for every row's ball, and the rows' distances to
its candidates take one matrix product. Rows still full at
``max_candidates`` are truncated, and :func:`skvdae.graph.kernel_matrix`'s
caller measures the kernel mass that this drops.
"""

import copy

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors

from ._approximate import (
    HNSWNeighbors,
    _centred_squared_distances,
    approximate_backend_available,
)
from ._rows import GrowingRows

#: Up to this many features, the default backend takes the pairs within a
#: radius from scipy's KD-tree (several times faster than a radius query per
#: sample); beyond it, and for any other backend, from radius queries.
TREE_MAX_FEATURES = 12

# Rows per block of the radius queries that feed radius_pairs.
_PAIR_CHUNK = 4096

# Entries of one block of squared distances in the brute-force pairs (32 MB).
_BRUTE_BLOCK = 1 << 22

# Up to this many bytes, the brute-force pairs come from the whole matrix of
# squared distances (8 bytes a pair; 8192 samples): no list of pairs to sort.
_BRUTE_DENSE_BYTES = 1 << 29

#: ``None`` or ``'auto'`` use the approximate backend (when faiss is
#: installed) from this many samples of more than ``TREE_MAX_FEATURES``
#: features: there exact search costs 35 s on 10^5 points in 100 dimensions,
#: HNSW 7 s at a recall of 0.9996.
APPROXIMATE_MIN_SAMPLES = 50_000

#: ... and where exact search's work, ``n_samples**2 * n_features``, is at
#: least this. HNSW's search slows with the data's intrinsic dimension, exact
#: search does not: the kernel graph of 10^5 points of a curve in 100
#: dimensions took 37 s with HNSW against 78 s exact, but in 20 dimensions
#: 42 s against 48 s, and of 20-D Gaussian clusters 155 s against 74 s (6e4
#: points: 142 s against 35 s), with HNSW's lists cut at their cap.
APPROXIMATE_MIN_WORK = 5 * 10**11

#: Default cap on the candidate list of a backend without radius queries.
MAX_CANDIDATES = 1024

# First candidate list size of a backend without radius queries.
_FIRST_CANDIDATES = 32

# Training rows whose balls set the first list size for all of them.
_PROBE_ROWS = 256

# Consecutive training rows (in locality order) that share one candidate
# search, and the size, in caps, at which their shared list stops.
_SHARED_ROWS = 64
_SHARED_FACTOR = 4

# The KD-tree's pairs come from one sorted ball query per block of this many
# nearby rows when those lists hold at most _TREE_SHARED_RATIO times the pairs
# found, judged on about _PROBE_ROWS blocks: below the break-even, above 7 on
# curves, surfaces, tubes, clusters and a cube in 2 to 6 dimensions
# (benchmarks/bench_tree_pairs.py; the dual-tree search's pairs must be sorted
# into rows); their rows' squared distances are computed in pieces of at most
# _TREE_SHARED_ENTRIES.
_TREE_SHARED_ROWS = 32
_TREE_SHARED_RATIO = 6.0
_TREE_SHARED_ENTRIES = 1 << 20

# Stands for a squared distance of 0 while sparse operations would drop it.
_STORED_ZERO = np.finfo(np.float64).tiny


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
        ``NearestNeighbors``, scipy's KD-tree for the pairs in low dimension),
        except for ``APPROXIMATE_MIN_SAMPLES`` or more samples of more than
        ``TREE_MAX_FEATURES`` features, ``n_samples**2 * n_features`` at
        least ``APPROXIMATE_MIN_WORK`` (10^5 samples of 50 features), when
        faiss is installed: then :class:`HNSWNeighbors`. Otherwise an
        unfitted object with ``fit`` and ``kneighbors`` (and, optionally,
        ``radius_neighbors``) like
        :class:`sklearn.neighbors.NearestNeighbors` (e.g.
        ``NearestNeighbors(algorithm="brute")``); it is cloned, never
        changed.
    max_candidates : int, default=MAX_CANDIDATES
        For a backend without ``radius_neighbors``: the largest candidate
        list of a radius query.
    allow_approximate : bool, default=True
        Whether ``None`` or ``'auto'`` may choose approximate search (data
        parallel fits need radius queries, so they pass False).

    Attributes
    ----------
    data_ : ndarray of shape (n_samples, n_features)
        The indexed points (float64).
    search_ : object
        The fitted backend.
    radius_search_ : bool
        Whether the backend answers radius queries itself (otherwise they
        come from candidate lists).
    brute_force_ : bool
        Whether the training pairs come from blocked brute force (the
        default exact search in high dimension).
    n_truncated_ : int
        Training rows whose kernel ball was cut at ``max_candidates`` in the
        last :meth:`radius_rows` (always 0 with radius queries).

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

    def __init__(
        self, backend=None, max_candidates=MAX_CANDIDATES, allow_approximate=True
    ):
        self.backend = check_neighbors(backend)
        self.max_candidates = max_candidates
        self.allow_approximate = allow_approximate

    def fit(self, X):
        """Index the rows of ``X`` (kept, as float64, in ``data_``)."""
        self.data_ = np.asarray(X, dtype=np.float64)
        n_samples, n_features = self.data_.shape
        self._default = self.backend is None or isinstance(self.backend, str)
        if self._default:
            if (
                self.allow_approximate
                and n_features > TREE_MAX_FEATURES
                and n_samples >= APPROXIMATE_MIN_SAMPLES
                and n_samples**2 * n_features >= APPROXIMATE_MIN_WORK
                and approximate_backend_available()
            ):
                self._default = False
                index = HNSWNeighbors()
            else:
                index = NearestNeighbors()
        elif hasattr(self.backend, "get_params"):
            index = clone(self.backend)
        else:
            index = copy.deepcopy(self.backend)
        self._index = index.fit(self.data_)
        self.radius_search_ = callable(getattr(self._index, "radius_neighbors", None))
        self.n_truncated_ = 0
        self._pairs = None
        return self

    @property
    def search_(self):
        return self._index

    @property
    def brute_force_(self):
        """Whether the training pairs come from blocked brute force (the
        default exact search beyond ``TREE_MAX_FEATURES`` features)."""
        return self._default and not self._tree_pairs()

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

    def training_kneighbors(self, n_neighbors, rows=None):
        """``kneighbors(n_neighbors=n_neighbors)`` of the training rows ``rows``.

        ``rows=(start, stop)`` queries only those training points, each
        without itself, by the rule of scikit-learn's ``X=None`` query (ask
        for one more, drop the point itself, or the first neighbour when
        duplicates hide it), so that the shards of a data-parallel fit
        together give the single-process answer. ``None``: every row.

        In low dimension the default backend answers from scipy's KD-tree,
        twice as fast as scikit-learn's on 10^6 points: the same distances,
        the same neighbours up to the order of ties.
        """
        start, stop = (0, self.n_samples_fit_) if rows is None else rows
        if self._tree_pairs() and 0 < n_neighbors < self.n_samples_fit_:
            return self._without_self(
                np.arange(start, stop),
                *self._tree().query(
                    self.data_[start:stop], k=[*range(1, n_neighbors + 2)]
                ),
            )
        if rows is None:
            return self.kneighbors(n_neighbors=n_neighbors)
        return self.row_kneighbors(np.arange(start, stop), n_neighbors)

    def row_kneighbors(self, rows, n_neighbors):
        """:meth:`training_kneighbors` of the training rows ``rows`` (an index
        array): each row's ``n_neighbors`` nearest other training points."""
        found = self.kneighbors(self.data_[rows], n_neighbors=n_neighbors + 1)
        return self._without_self(rows, *found)

    @staticmethod
    def _without_self(rows, distances, indices):
        """Each row's ``k + 1`` neighbours less itself (or the first, when
        duplicates hide it)."""
        keep = indices != np.asarray(rows)[:, None]
        keep[keep.all(axis=1), 0] = False
        shape = (len(rows), indices.shape[1] - 1)
        return distances[keep].reshape(shape), indices[keep].reshape(shape)

    def radius_neighbors(self, X, radius):
        """As :meth:`sklearn.neighbors.NearestNeighbors.radius_neighbors`.

        From a backend without radius queries, the balls come from candidate
        lists of at most ``max_candidates`` (each sorted by distance).
        """
        if self.radius_search_:
            return self._index.radius_neighbors(X, radius=radius)
        distances, indices, _ = self._candidates(np.asarray(X, np.float64), radius)
        return distances, indices

    def _candidates(self, X, radius, first=_FIRST_CANDIDATES):
        """:meth:`_candidate_rows` as object arrays of distances and indices
        (as ``radius_neighbors``), and the mask of truncated rows."""
        lengths, columns, distances, truncated = self._candidate_rows(X, radius, first)
        bounds = np.cumsum(lengths)[:-1]
        distances, columns = np.split(distances, bounds), np.split(columns, bounds)
        balls = np.empty((2, len(X)), dtype=object)
        for row in range(len(X)):
            balls[0, row], balls[1, row] = distances[row], columns[row]
        return balls[0], balls[1], truncated

    def _candidate_rows(self, X, radius, first=_FIRST_CANDIDATES, cap=None):
        """Balls of ``radius`` from candidate lists that double while full.

        The lists start at ``first`` candidates and stop at ``cap`` (default
        ``max_candidates``); ``radius`` is one for all rows or one per row.
        Returns ``(lengths, columns, distances, truncated)``: the
        ``lengths[i]`` points within ``radius`` of row ``i``, in the backend's
        order (by distance), concatenated row after row, and a mask of the
        rows whose list was still full at the cap. Each round's lists are cut
        as one array: no Python work per row.
        """
        n_queries = len(X)
        cap = self._list_cap() if cap is None else min(int(cap), self.n_samples_fit_)
        radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), n_queries)
        k = min(first, cap)
        lengths = np.zeros(n_queries, dtype=np.intp)
        truncated = np.zeros(n_queries, dtype=bool)
        rounds = []
        pending = np.arange(n_queries)
        while pending.size:
            d, i = self._index.kneighbors(X[pending], n_neighbors=k)
            full = d[:, -1] <= radius[pending]
            if k >= cap:
                truncated[pending[full]] = True
                full[:] = False
            done = ~full
            d, i = d[done], i[done]
            inside = d <= radius[pending[done], None]
            lengths[pending[done]] = inside.sum(axis=1)
            rounds.append((pending[done], i[inside], d[inside]))
            pending = pending[full]
            k = min(2 * k, cap)
        if len(rounds) == 1 and np.array_equal(rounds[0][0], np.arange(n_queries)):
            return lengths, rounds[0][1], rounds[0][2], truncated
        starts = np.cumsum(lengths) - lengths
        columns = np.empty(lengths.sum(), dtype=np.intp)
        distances = np.empty(lengths.sum())
        for rows, found, values in rounds:
            counts = lengths[rows]
            offsets = np.arange(counts.sum()) - np.repeat(
                np.cumsum(counts) - counts, counts
            )
            positions = np.repeat(starts[rows], counts) + offsets
            columns[positions], distances[positions] = found, values
        return lengths, columns, distances, truncated

    def _list_cap(self):
        """The longest candidate list: ``max_candidates``, at most every sample."""
        return max(1, min(int(self.max_candidates), self.n_samples_fit_))

    def _first_candidates(self, radius, queries=None, cap=None):
        """The first list size for the balls of ``queries`` (the training rows).

        Each doubling round searches again from scratch, so lists that start
        far below the balls' sizes cost about twice the last round. The balls
        of about ``_PROBE_ROWS`` evenly spaced queries are measured first;
        lists then start large enough for 90% of them.
        """
        queries = self.data_ if queries is None else queries
        cap = self.max_candidates if cap is None else cap
        probes = _evenly_spaced_rows(len(queries), _PROBE_ROWS)
        radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), len(queries))
        lengths, *_ = self._candidate_rows(
            queries[probes], radius[probes], _FIRST_CANDIDATES, cap
        )
        needed = np.quantile(lengths, 0.9) + 1
        first = _FIRST_CANDIDATES
        while first < needed and first < cap:
            first *= 2
        return first

    def _shared_candidate_rows(self, X, radius, first=None):
        """:meth:`_candidate_rows` of nearby rows, one search per block of them.

        The ball of ``radius`` around each of ``_SHARED_ROWS`` consecutive rows
        lies inside the ball of ``radius + s`` around their centroid, ``s``
        the distance from it to the farthest of them: one candidate list
        (doubling, as in :meth:`_candidate_rows`) serves the whole block, and
        the rows' distances to it take one matrix product. The training rows
        come in locality order (:func:`~skvdae.graph.locality_order`), so
        blocks are compact and this is many times cheaper than a search per
        row. A block whose shared list fills up at ``_SHARED_FACTOR`` times
        the cap (spread-out rows) takes a list per row instead. A row whose
        ball holds ``max_candidates`` points or more keeps the nearest
        ``max_candidates`` and is marked truncated, as there. Each row's
        columns come sorted (so that the graph's rows need no sorting).
        ``first``: the shared lists' first size (:meth:`_first_candidates` of
        the blocks' balls when ``None``).
        """
        n_rows = len(X)
        cap = self._list_cap()
        starts, sizes, centres, reach = _shared_balls(X, radius)
        if first is None:
            first = self._first_candidates(reach, centres, _SHARED_FACTOR * cap)
        shared = self._candidate_rows(centres, reach, first, _SHARED_FACTOR * cap)
        bounds = np.cumsum(shared[0])
        limit = radius * radius
        lengths = np.zeros(n_rows, dtype=np.intp)
        truncated = np.zeros(n_rows, dtype=bool)
        columns, distances = [], []
        for block, (start, size) in enumerate(zip(starts, sizes, strict=True)):
            stop = start + size
            if shared[3][block]:
                found = self._candidate_rows(X[start:stop], radius, cap=cap)
                lengths[start:stop], truncated[start:stop] = found[0], found[3]
                order = np.lexsort((found[1], np.repeat(np.arange(size), found[0])))
                columns.append(found[1][order])
                distances.append(found[2][order])
                continue
            union = np.sort(shared[1][bounds[block] - shared[0][block] : bounds[block]])
            candidates = self.data_[union] - centres[block]
            squared = _centred_squared_distances(
                X[start:stop] - centres[block],
                candidates,
                np.einsum("ij,ij->i", candidates, candidates),
            )
            np.maximum(squared, 0.0, out=squared)
            inside = squared <= limit
            counts = np.count_nonzero(inside, axis=1)
            full = np.flatnonzero(counts >= cap)
            if full.size:
                # The nearest cap points of each full row, all rows at once.
                nearest = np.argpartition(squared[full], cap - 1, axis=1)[:, :cap]
                inside[full] = False
                inside[full[:, None], nearest] = True
                truncated[start + full] = True
            lengths[start:stop] = np.minimum(counts, cap)
            columns.append(np.broadcast_to(union, inside.shape)[inside])
            distances.append(np.sqrt(squared[inside]))
        return lengths, np.concatenate(columns), np.concatenate(distances), truncated

    def radius_counts(self, X, radius):
        """How many indexed points lie within ``radius`` of each row of ``X``."""
        if self._tree_pairs():
            return self._tree().query_ball_point(X, radius, return_length=True)
        return np.fromiter(map(len, self.radius_neighbors(X, radius)[1]), np.intp)

    def _tree_pairs(self):
        """Whether the pairs come from the KD-tree (default backend, low dimension)."""
        return self._default and self.data_.shape[1] <= TREE_MAX_FEATURES

    def _tree(self):
        if getattr(self, "_kd_tree", None) is None:
            self._kd_tree = cKDTree(self.data_)
        return self._kd_tree

    def radius_rows(self, radius, block_rows=_PAIR_CHUNK, rows=None):
        """Every training point's neighbours within ``radius``, itself included.

        Yields ``(start, stop, lengths, columns, squared)`` for consecutive
        blocks of rows: ``lengths[i]`` neighbours of row ``start + i``, their
        indices (sorted) and squared distances, concatenated; the rows make a
        symmetric matrix. ``rows=(first, last)`` yields only the training
        rows ``first .. last - 1`` (a process's shard in a data-parallel fit).

        In low dimension (the default backend, at most ``TREE_MAX_FEATURES``
        features) the pairs come from a KD-tree block by block, with squared
        distances computed from coordinates by a formula symmetric to the bit,
        and memory is that of one block. A shard's rows with any other
        backend come from its radius queries, their squared distances
        recomputed the same way, and are assembled first (one shard's rows
        in memory). All rows with any other backend take the backend's
        distances (each pair as the larger of its two directions' values,
        which differ by round-off), from the union of both ends' lists, so the
        whole matrix is assembled first.
        """
        X = self.data_
        n_samples = X.shape[0]
        first, last = (0, n_samples) if rows is None else rows
        if not self._tree_pairs():
            yield from _csr_blocks(self._row_pairs(radius, rows), block_rows, first)
            # Read once by the graph: not kept with the fitted index.
            self._pairs = None
            return
        if self._tree_lists_pay(radius):
            for start in range(first, last, block_rows):
                stop = min(start + block_rows, last)
                yield start, stop, *self._shared_tree_rows(start, stop, radius)
            return
        # A hair beyond the radius: the search's own rounding must not drop a
        # pair that the symmetric criterion below keeps.
        search = radius * (1.0 + 1e-9)
        for start in range(first, last, block_rows):
            stop = min(start + block_rows, last)
            # Arrays straight from C: no Python object per neighbour. The
            # tree's distance is a sum over the features in a fixed order of
            # (x_ik - x_jk)^2, the same number for (i, j) and (j, i): squared,
            # it is symmetric to the bit, with no second pass over the pairs.
            found = cKDTree(X[start:stop]).sparse_distance_matrix(
                self._tree(), search, output_type="ndarray"
            )
            origin, columns = found["i"].astype(np.intp), found["j"].astype(np.intp)
            squared = np.square(found["v"])
            del found
            lengths, columns, squared = _sorted_rows(
                X, start, stop, origin, columns, radius, squared
            )
            yield start, stop, lengths, columns, squared

    def _tree_lists_pay(self, radius):
        """Whether :meth:`_shared_tree_rows` beats the dual-tree pair search.

        Judged on about ``_PROBE_ROWS`` evenly spaced blocks of the training
        data (all processes of a data-parallel fit judge alike): their shared
        lists against the balls around their centroids, counted by the tree.
        Small balls around spread-out blocks (dense data in three dimensions
        and more) make the lists many times the pairs found; the dual-tree
        search is then the cheaper.
        """
        size = _TREE_SHARED_ROWS
        blocks = _evenly_spaced_rows(self.n_samples_fit_ // size, _PROBE_ROWS)
        if blocks.size == 0:
            return False
        rows = (blocks[:, None] * size + np.arange(size)).ravel()
        _, _, centres, reach = _shared_balls(self.data_[rows], radius, size)
        tree = self._tree()
        listed = tree.query_ball_point(centres, reach, return_length=True)
        found = tree.query_ball_point(centres, radius, return_length=True)
        return bool(listed.sum() <= _TREE_SHARED_RATIO * max(int(found.sum()), 1))

    def _shared_tree_rows(self, start, stop, radius):
        """Rows ``start .. stop - 1`` of :meth:`radius_rows` from one sorted ball
        query of the KD-tree per block of ``_TREE_SHARED_ROWS`` rows, around
        the block's centroid and wide enough for each row's ball (see
        :meth:`_shared_candidate_rows`).

        Each pair's squared distance is summed over the features in their
        order from its coordinates' differences, the same number for
        ``(i, j)`` and ``(j, i)``: symmetric to the bit, and so is the
        criterion that keeps it. Candidates come sorted, so the rows do too,
        with no sort of the pairs.
        """
        X = self.data_
        rows = X[start:stop]
        starts, sizes, centres, reach = _shared_balls(rows, radius, _TREE_SHARED_ROWS)
        lists = self._tree().query_ball_point(centres, reach, return_sorted=True)
        limit = radius * radius
        longest = max(map(len, lists), default=0)
        # One pair of buffers for all blocks: fresh arrays of a few hundred
        # KiB each time are fresh pages to fault in, a third of the time.
        capacity = min(_TREE_SHARED_ROWS * longest, max(_TREE_SHARED_ENTRIES, longest))
        buffers = np.empty((2, capacity))
        lengths, columns, squares = [], [], []
        for first, size, found in zip(starts, sizes, lists, strict=True):
            found = np.asarray(found, dtype=np.intp)
            features = np.ascontiguousarray(X[found].T)
            step = max(1, _TREE_SHARED_ENTRIES // max(1, found.size))
            for low in range(first, first + size, step):
                block = rows[low : min(low + step, first + size)]
                shape = (len(block), found.size)
                squared = buffers[0, : shape[0] * shape[1]].reshape(shape)
                difference = buffers[1, : squared.size].reshape(shape)
                for feature in range(X.shape[1]):
                    np.subtract(block[:, feature, None], features[feature], difference)
                    if feature == 0:
                        np.multiply(difference, difference, out=squared)
                    else:
                        squared += np.multiply(difference, difference, difference)
                inside = squared <= limit
                lengths.append(np.count_nonzero(inside, axis=1))
                columns.append(np.broadcast_to(found, inside.shape)[inside])
                squares.append(squared[inside])
        return np.concatenate(lengths), np.concatenate(columns), np.concatenate(squares)

    def radius_matrix(self, radius, rows=None):
        """:meth:`radius_rows` as one CSR matrix of squared distances, or ``None``.

        ``None`` where the pairs come block by block from the KD-tree (read
        them with :meth:`radius_rows`). Otherwise the matrix that the other
        searches build whole anyway, handed over and not kept with the
        fitted index: the caller may overwrite its values.
        """
        if self._tree_pairs():
            return None
        pairs = self._row_pairs(radius, rows)
        self._pairs = None
        return pairs

    def _row_pairs(self, radius, rows):
        """The pairs' CSR of all rows (``rows=None``) or of a shard's rows."""
        if rows is None:
            if self._default:
                return self._brute_pairs(radius)
            return self._symmetric_pairs(radius)
        if not self.radius_search_:
            raise ValueError(
                "A data-parallel fit builds each process's rows of the kernel graph "
                "from radius queries; the neighbour search "
                f"{type(self._index).__name__} has no radius_neighbors. Use "
                "neighbors=None or sklearn.neighbors.NearestNeighbors()."
            )
        if self._pairs is not None and self._pairs[0] == (radius, rows):
            return self._pairs[1]
        X = self.data_
        first, last = rows
        search = radius * (1.0 + 1e-9)
        blocks = []
        for start in range(first, last, _PAIR_CHUNK):
            stop = min(start + _PAIR_CHUNK, last)
            _, found = self._index.radius_neighbors(X[start:stop], radius=search)
            counts = np.fromiter(map(len, found), np.intp, stop - start)
            origin = np.repeat(np.arange(stop - start), counts)
            columns = np.concatenate(found).astype(np.intp, copy=False)
            lengths, columns, squared = _sorted_rows(
                X, start, stop, origin, columns, radius
            )
            indptr = np.concatenate([[0], np.cumsum(lengths)])
            blocks.append(
                sparse.csr_matrix(
                    (squared, columns, indptr), shape=(stop - start, X.shape[0])
                )
            )
        pairs = sparse.vstack(blocks, format="csr")
        self._pairs = ((radius, rows), pairs)
        return pairs

    def _brute_pairs(self, radius):
        """Symmetric CSR of squared distances within ``radius``, diagonal
        included, by blocked brute force (the default exact search in high
        dimension).

        Each pair is computed once, in the block of its lower row, from the
        Gram matrix (one matrix product per block of rows against the rows
        after it), so the matrix is symmetric to the bit without comparing
        the two directions of a radius query, and no per-row lists are
        built. The data are centred first: the dot-product formula loses
        digits in proportion to the squared norms.
        """
        if self._pairs is not None and self._pairs[0] == (radius, None):
            return self._pairs[1]
        X = self.data_ - self.data_.mean(axis=0)
        n_samples = X.shape[0]
        norms = np.einsum("ij,ij->i", X, X)
        limit = radius * radius
        block_rows = max(1, _BRUTE_BLOCK // n_samples)
        if 8 * n_samples**2 <= _BRUTE_DENSE_BYTES:
            pairs = _dense_pairs(X, norms, limit, block_rows)
            self._pairs = ((radius, None), pairs)
            return pairs
        index_dtype = np.int32 if n_samples < 2**31 else np.int64
        # Pass 1, block of rows by block of rows: the pairs j > i of each row
        # i (columns ascending) and their squared distances, and how many
        # pairs each row has on either side of its diagonal.
        blocks = []
        upper = np.zeros(n_samples, dtype=np.int64)
        lower = np.zeros(n_samples, dtype=np.int64)
        buffer = np.empty(block_rows * n_samples)
        mask = np.empty(buffer.size, dtype=bool)
        for start in range(0, n_samples, block_rows):
            stop = min(start + block_rows, n_samples)
            squared = _upper_squared_distances(X, norms, start, stop, buffer)
            inside = np.less_equal(
                squared, limit, out=mask[: squared.size].reshape(squared.shape)
            )
            inside[:, : stop - start] = np.triu(inside[:, : stop - start], k=1)
            # Row by row, columns ascending (a flat search is twice as fast).
            flat = np.flatnonzero(inside)
            row, column = np.divmod(flat, squared.shape[1])
            values = squared.ravel()[flat]
            column += start
            upper[start:stop] = np.bincount(row, minlength=stop - start)
            lower[start:] += np.bincount(column - start, minlength=n_samples - start)
            blocks.append((start, column.astype(index_dtype), values))
            del flat, row, column, values
        del buffer, mask, squared, inside
        # Pass 2: each row is its mirrored pairs (columns below it), its
        # diagonal, then its own pairs, written straight into the CSR arrays:
        # no coordinate lists, no sort of the whole matrix.
        indptr = np.zeros(n_samples + 1, dtype=np.int64)
        np.cumsum(lower + upper + 1, out=indptr[1:])
        indices = np.empty(indptr[-1], dtype=index_dtype)
        data = np.empty(indptr[-1])
        diagonal = indptr[:-1] + lower
        indices[diagonal] = np.arange(n_samples)
        data[diagonal] = 0.0
        cursor = indptr[:-1].copy()
        for number, (start, column, values) in enumerate(blocks):
            blocks[number] = None
            if not column.size:
                continue
            counts = upper[start : start + block_rows]
            row = np.repeat(np.arange(start, start + counts.size), counts)
            within = np.arange(column.size) - np.repeat(
                np.cumsum(counts) - counts, counts
            )
            direct = diagonal[row] + 1 + within
            indices[direct], data[direct] = column, values
            # Mirrored: pair (i, j) goes to row j after those of smaller i,
            # which earlier blocks and earlier rows of this block hold.
            order = np.argsort(column, kind="stable")
            mirrored = column[order]
            first = np.flatnonzero(np.r_[True, mirrored[1:] != mirrored[:-1]])
            sizes = np.diff(np.r_[first, mirrored.size])
            rank = np.arange(mirrored.size) - np.repeat(first, sizes)
            target = cursor[mirrored] + rank
            indices[target], data[target] = row[order], values[order]
            cursor[mirrored[first]] += sizes
            del column, values, row, within, direct, order, mirrored, target
        pairs = sparse.csr_matrix((data, indices, indptr), shape=(n_samples, n_samples))
        self._pairs = ((radius, None), pairs)
        return pairs

    def _symmetric_pairs(self, radius):
        """Symmetric CSR of squared distances within ``radius``, diagonal included.

        Each row's list comes from the backend (a radius query, or candidate
        lists); the matrix is the union of both ends' lists, each pair with
        the larger of its two values. Kept for the last radius, since
        :meth:`radius_rows` may read it in turn.
        """
        if self._pairs is not None and self._pairs[0] == (radius, None):
            return self._pairs[1]
        X = self.data_
        n_samples = X.shape[0]
        search = radius * (1.0 + 1e-9)
        # Each row's list as it comes, in arrays that grow in place.
        lists, truncated = GrowingRows(n_samples, n_samples), 0
        if not self.radius_search_:
            _, _, centres, reach = _shared_balls(X, search)
            first = self._first_candidates(
                reach, centres, _SHARED_FACTOR * self._list_cap()
            )
            del centres, reach
        for start in range(0, n_samples, _PAIR_CHUNK):
            stop = min(start + _PAIR_CHUNK, n_samples)
            if self.radius_search_:
                distances, found = self._index.radius_neighbors(
                    X[start:stop], radius=search
                )
                lengths = np.fromiter(map(len, found), np.intp, stop - start)
                found = np.concatenate(found).astype(np.intp, copy=False)
                distances = np.concatenate(distances).astype(np.float64)
            else:
                lengths, found, distances, full = self._shared_candidate_rows(
                    X[start:stop], search, first
                )
                truncated += int(full.sum())
            # Squared distances of 0 (duplicates; each row's own entry, set to
            # 0 exactly) must stay stored entries through the sparse maximum
            # below, which drops zeros.
            origin = np.repeat(np.arange(start, stop), lengths)
            own = found == origin
            squared = np.square(distances, out=distances)
            np.maximum(squared, _STORED_ZERO, out=squared)
            squared[own] = _STORED_ZERO
            found, squared, lengths = _with_own_entries(
                found, squared, lengths, origin, own, start
            )
            del origin, own
            lists.append(start, stop, lengths, found, squared)
            del found, distances, squared
        one_sided = lists.tocsr()
        del lists
        # The maximum merges two matrices of sorted rows. Transposing sorts
        # each row (a counting sort, much faster than sorting the rows): the
        # mirror comes sorted, and the lists too if their search did not sort
        # them (radius queries), by a second transpose.
        transposed = one_sided.T.tocsr()
        if not one_sided.has_sorted_indices:
            del one_sided
            one_sided = transposed.T.tocsr()
        pairs = one_sided.maximum(transposed)
        del one_sided, transposed
        pairs.sort_indices()
        keep = pairs.data <= radius * radius
        if not keep.all():
            origin = np.repeat(np.arange(n_samples), np.diff(pairs.indptr))
            indptr = np.zeros(n_samples + 1, dtype=pairs.indptr.dtype)
            np.cumsum(np.bincount(origin[keep], minlength=n_samples), out=indptr[1:])
            pairs = sparse.csr_matrix(
                (pairs.data[keep], pairs.indices[keep], indptr),
                shape=(n_samples, n_samples),
            )
        pairs.data[pairs.data == _STORED_ZERO] = 0.0
        self.n_truncated_ = truncated
        self._pairs = ((radius, None), pairs)
        return pairs

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


def _with_own_entries(columns, squared, lengths, origin, own, start):
    """Rows ``start ..`` of the lists with each row's own entry (squared
    distance ``_STORED_ZERO``) put in where its search missed the point
    itself, as an approximate one may: the kernel needs the diagonal. The
    entry goes before the row's first larger column, so sorted rows stay
    sorted."""
    n_rows = lengths.size
    has_own = np.zeros(n_rows, dtype=bool)
    has_own[origin[own] - start] = True
    missing = np.flatnonzero(~has_own)
    if missing.size == 0:
        return columns, squared, lengths
    ends = np.cumsum(lengths)
    before = np.concatenate([[0], np.cumsum(columns < origin)])
    position = ends[missing] - lengths[missing]
    position += before[ends[missing]] - before[position]
    lengths = lengths.copy()
    lengths[missing] += 1
    return (
        np.insert(columns, position, start + missing),
        np.insert(squared, position, _STORED_ZERO),
        lengths,
    )


def _shared_balls(X, radius, block_rows=_SHARED_ROWS):
    """Blocks of ``block_rows`` consecutive rows of ``X``: ``(starts, sizes,
    centres, reach)``, each block's centroid and the radius around it that
    holds the ball of ``radius`` around every row of the block."""
    starts = np.arange(0, len(X), block_rows)
    sizes = np.diff(np.append(starts, len(X)))
    centres = np.add.reduceat(X, starts, axis=0) / sizes[:, None]
    offsets = X - np.repeat(centres, sizes, axis=0)
    spread = np.maximum.reduceat(np.einsum("ij,ij->i", offsets, offsets), starts)
    # A hair more: the backend's distances carry their own round-off.
    return starts, sizes, centres, (radius + np.sqrt(spread)) * (1.0 + 1e-9)


def _evenly_spaced(X, count):
    """About ``count`` (up to twice as many) evenly spaced rows of ``X``."""
    return X[_evenly_spaced_rows(len(X), count)]


def _evenly_spaced_rows(n_rows, count):
    """The indices of :func:`_evenly_spaced`'s rows."""
    return np.arange(0, n_rows, max(1, n_rows // count))


def _upper_squared_distances(X, norms, start, stop, buffer=None):
    """``|x_i - x_j|^2`` for the rows ``start .. stop - 1`` and every ``j >= start``.

    From the Gram matrix of centred data ``X`` (``norms`` its squared row
    norms), clipped at 0. Written into ``buffer`` (flat, float64) if given:
    on blocks of tens of MB, fresh memory for each one costs more in page
    faults than the arithmetic.
    """
    shape = (stop - start, X.shape[0] - start)
    out = None if buffer is None else buffer[: shape[0] * shape[1]].reshape(shape)
    squared = np.matmul(X[start:stop], X[start:].T, out=out)
    squared *= -2.0
    squared += norms[start:stop, None]
    squared += norms[None, start:]
    return np.maximum(squared, 0.0, out=squared)


def _dense_pairs(X, norms, limit, block_rows):
    """:meth:`NeighborIndex._brute_pairs` through the whole distance matrix.

    Each block of rows is computed against the rows after it and mirrored
    into the lower triangle, its diagonal square from its upper triangle, so
    the matrix is symmetric to the bit; the CSR then comes straight from the
    mask of the pairs within ``sqrt(limit)`` (row by row, columns ascending).
    """
    n_samples = X.shape[0]
    squared = np.empty((n_samples, n_samples))
    buffer = np.empty(block_rows * n_samples)
    for start in range(0, n_samples, block_rows):
        stop = min(start + block_rows, n_samples)
        block = _upper_squared_distances(X, norms, start, stop, buffer)
        square = np.triu(block[:, : stop - start], k=1)
        block[:, : stop - start] = square + square.T
        squared[start:stop, start:] = block
        squared[start:, start:stop] = block.T
        del block, square
    del buffer
    index_dtype = np.int32 if n_samples < 2**31 else np.int64
    inside = squared <= limit
    counts = np.count_nonzero(inside, axis=1)
    indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    if indptr[-1] == n_samples**2:
        # Every pair within the radius: no mask to apply.
        data = squared.reshape(-1)
        indices = np.tile(np.arange(n_samples, dtype=index_dtype), n_samples)
    else:
        flat = np.flatnonzero(inside)
        del inside
        data = squared.reshape(-1)[flat]
        del squared
        indices = np.remainder(flat, n_samples).astype(index_dtype)
    return sparse.csr_matrix(
        (data, indices, indptr.astype(index_dtype)), shape=(n_samples, n_samples)
    )


def _squared_distances(X, first, second):
    """``|X[first] - X[second]|^2`` from coordinates, symmetric to the bit."""
    squared = np.zeros(len(first))
    for feature in range(X.shape[1]):
        column = X[:, feature]
        squared += (column[first] - column[second]) ** 2
    return squared


def _sorted_rows(X, start, stop, origin, columns, radius, squared=None):
    """Rows ``start .. stop - 1`` of the pairs within ``radius``, columns sorted.

    ``origin`` (row offsets from ``start``) and ``columns`` are candidate
    pairs; their ``squared`` distances, symmetric to the bit, are recomputed
    from coordinates where not given, and those beyond ``radius`` dropped.
    Returns ``(lengths, columns, squared)`` as :meth:`NeighborIndex.radius_rows`
    yields them.
    """
    if squared is None:
        squared = _squared_distances(X, origin + start, columns)
    keep = squared <= radius * radius
    # Grouped by row (a counting sort in scipy), columns sorted. Self-pairs
    # (distance 0) stay explicit entries: the constructor keeps zeros.
    block = sparse.csr_matrix(
        (squared[keep], (origin[keep], columns[keep])),
        shape=(stop - start, X.shape[0]),
    )
    block.sort_indices()
    return np.diff(block.indptr), block.indices, block.data


def _csr_blocks(matrix, block_rows, first=0):
    """``radius_rows``'s blocks from a CSR matrix of rows ``first ..``."""
    for start in range(0, matrix.shape[0], block_rows):
        stop = min(start + block_rows, matrix.shape[0])
        low, high = matrix.indptr[start], matrix.indptr[stop]
        lengths = np.diff(matrix.indptr[start : stop + 1])
        yield (
            first + start,
            first + stop,
            lengths,
            matrix.indices[low:high],
            matrix.data[low:high],
        )
