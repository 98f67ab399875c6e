"""The ``'auto'`` bandwidth: the scale of the dense parts, gaps kept open."""

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from ._approximate import _centred_squared_distances
from ._kernel import KERNEL_CUTOFF
from ._neighbors import NeighborIndex, _evenly_spaced, _evenly_spaced_rows

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


def auto_bandwidth(nn_index, n_neighbors, communicator=None):
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
    nn_index : NeighborIndex or NearestNeighbors
        Index fitted on the training data.
    n_neighbors : int
        Neighbour rank that sets the scale.
    communicator : Communicator or None, default=None
        In a data-parallel fit each process finds the neighbours of its shard
        of the samples and the lists are gathered (the rest is cheap and
        repeated on every process, with the same result).

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
    >>> from skvdae.graph import auto_bandwidth
    >>> theta = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    >>> circle = np.c_[np.cos(theta), np.sin(theta)]
    >>> alone = auto_bandwidth(NearestNeighbors().fit(circle), 10)
    >>> index = NearestNeighbors().fit(np.r_[circle, [[100.0, 100.0]]])
    >>> bool(np.isclose(auto_bandwidth(index, 10), alone))
    True
    """
    if not isinstance(nn_index, NeighborIndex):
        distances, indices = nn_index.kneighbors(n_neighbors=n_neighbors)
    elif communicator is None:
        distances, indices = nn_index.training_kneighbors(n_neighbors)
    else:
        rows = communicator.shard(nn_index.n_samples_fit_)
        distances, indices = nn_index.training_kneighbors(n_neighbors, rows)
        distances = communicator.allgather(distances)
        indices = communicator.allgather(indices)
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


#: The kernel graph of ``bandwidth='auto'`` holds at most about this many
#: entries (1 GiB at 8 bytes an entry), and at least ``MIN_EDGES_PER_SAMPLE``
#: per sample.
MAX_GRAPH_ENTRIES = 2**27
MIN_EDGES_PER_SAMPLE = 64

# Query points of the estimate of the mean neighbour count.
_COUNT_QUERIES = 2000

# Without radius queries, the bound counts neighbours among this many (up to
# twice as many) evenly spaced samples.
_COUNT_SAMPLE = 4096


def max_edges_per_sample(n_samples):
    """The default bound on the mean kernel neighbours per sample."""
    return max(MIN_EDGES_PER_SAMPLE, MAX_GRAPH_ENTRIES // max(n_samples, 1))


def bounded_bandwidth(nn_index, bandwidth, cutoff, max_edges):
    """``bandwidth``, or the largest smaller one that keeps the graph in bounds.

    The mean number of neighbours within the truncation radius
    ``sqrt(cutoff * bandwidth)`` (the sample itself included) is estimated on
    up to 2000 evenly spaced samples. When it exceeds ``max_edges``, the
    bandwidth is lowered, by bisection on its logarithm, to where it does
    not: on large dense data the ``'auto'`` rule's scale (set by the
    sparsest 1% of the samples) would otherwise give every sample thousands
    of neighbours, while the diffusion map needs far fewer. A backend
    without radius queries lists a ball only up to its candidate cap (the
    bound itself, in the estimator), which would hide larger balls; and the
    default exact search in high dimension (brute force) would pass over all
    the samples at each step of the bisection. There the counts come from
    brute force against about 4096 evenly spaced samples, computed once and
    scaled to the whole data.

    Returns
    -------
    bandwidth : float
    bound : bool
        Whether the bound lowered the bandwidth.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph import NeighborIndex, bounded_bandwidth
    >>> X = np.random.RandomState(0).uniform(size=(5000, 2))
    >>> index = NeighborIndex().fit(X)
    >>> eps, bound = bounded_bandwidth(index, 0.01, 12.0, max_edges=100)
    >>> bound, bool(eps < 0.01)
    (True, True)
    """
    n_samples = nn_index.n_samples_fit_
    if n_samples <= max_edges:
        # No sample has more neighbours than there are samples.
        return bandwidth, False
    if getattr(nn_index, "radius_search_", True) and not getattr(
        nn_index, "brute_force_", False
    ):
        queries = _evenly_spaced(nn_index.data_, _COUNT_QUERIES)

        def mean_count(eps):
            radius = np.sqrt(cutoff * eps)
            return float(np.mean(nn_index.radius_counts(queries, radius)))

    else:
        mean_count = _sampled_mean_count(nn_index.data_, cutoff)

    if mean_count(bandwidth) <= max_edges:
        return bandwidth, False
    low = bandwidth / 4.0
    while mean_count(low) > max_edges:
        low /= 4.0
    high = bandwidth
    for _ in range(20):
        middle = np.sqrt(low * high)
        if mean_count(middle) > max_edges:
            high = middle
        else:
            low = middle
    return float(low), True


def _sampled_mean_count(X, cutoff):
    """``mean_count(eps)`` of :func:`bounded_bandwidth` by brute force.

    The probes' squared distances to an evenly spaced sample of ``X`` are
    computed once (centred, from a matrix product; float32 is plenty for a
    count); each call counts them and scales the count to all the samples.
    """
    n_samples = len(X)
    probes = _evenly_spaced_rows(n_samples, _COUNT_QUERIES)
    sample = _evenly_spaced_rows(n_samples, _COUNT_SAMPLE)
    step = sample[1] - sample[0] if sample.size > 1 else 1
    centre = X[sample].mean(axis=0)
    others = X[sample] - centre
    norms = np.einsum("ij,ij->i", others, others)
    squared = np.empty((probes.size, sample.size), dtype=np.float32)
    for start in range(0, probes.size, 512):
        queries = X[probes[start : start + 512]] - centre
        squared[start : start + 512] = _centred_squared_distances(
            queries, others, norms
        )
    # A probe in the sample is not its own neighbour there: it counts once.
    own = probes % step == 0
    squared[np.flatnonzero(own), probes[own] // step] = np.inf
    scale = (n_samples - 1) / (sample.size - own)

    def mean_count(eps):
        hits = np.count_nonzero(squared <= np.float32(cutoff * eps), axis=1)
        return float(np.mean(1.0 + scale * hits))

    return mean_count


def _brute_force_balls(X, queries, radius):
    """The distances from each query to the rows of ``X`` within ``radius``.

    Blocks of rows against all the queries (centred, from matrix products),
    so that memory stays bounded on large ``X``.
    """
    centre = queries.mean(axis=0)
    queries = queries - centre
    step = max(1, _BRUTE_ENTRIES // len(queries))
    owners, found = [], []
    for start in range(0, len(X), step):
        rows = X[start : start + step] - centre
        norms = np.einsum("ij,ij->i", rows, rows)
        squared = _centred_squared_distances(queries, rows, norms)
        owner, column = np.nonzero(squared <= radius * radius)
        owners.append(owner)
        found.append(np.maximum(squared[owner, column], 0.0))
    owners, found = np.concatenate(owners), np.sqrt(np.concatenate(found))
    order = np.argsort(owners, kind="stable")
    bounds = np.cumsum(np.bincount(owners, minlength=len(queries)))[:-1]
    return np.split(found[order], bounds)


#: The edge bound warns when the share of the samples it leaves out as
#: outliers exceeds, by this much, the share that the bandwidth it lowered
#: left with fewer than ``MIN_CLUSTER_SIZE - 1`` neighbours.
ISOLATION_WARNING = 0.01


def isolated_share(nn_index, bandwidth, cutoff):
    """The share of samples with fewer than ``MIN_CLUSTER_SIZE - 1`` neighbours
    within the truncation radius ``sqrt(cutoff * bandwidth)``.

    Estimated on the evenly spaced samples of :func:`bounded_bandwidth`. Such
    samples end up in components of the kernel graph too small to be
    anything but outliers, or barely attached to the rest.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph import NeighborIndex, isolated_share
    >>> X = np.r_[np.linspace(0, 1, 100), np.linspace(10, 20, 100)][:, None]
    >>> index = NeighborIndex().fit(X)
    >>> float(isolated_share(index, 0.01**2, 25.0))  # the sparse half: 0.1 apart
    0.5
    """
    queries = _evenly_spaced(nn_index.data_, _COUNT_QUERIES)
    if nn_index.n_samples_fit_ < MIN_CLUSTER_SIZE:
        return 1.0
    # The k-th nearest (the sample itself first) says whether k are inside:
    # no ball to list, however large.
    distances, _ = nn_index.kneighbors(queries, n_neighbors=MIN_CLUSTER_SIZE)
    return float(np.mean(distances[:, -1] > np.sqrt(cutoff * bandwidth)))


#: The kernel's truncation drops at most this share of a sample's kernel mass
#: (for all but the 1% of samples where it drops most).
TRUNCATION_TOLERANCE = 1e-3

# Query points of the cutoff rule.
_CUTOFF_QUERIES = 500

# Entries of one block of the cutoff rule's brute-force distances (32 MB),
# and at most this many ball entries listed at once.
_BRUTE_ENTRIES = 1 << 22
_BALL_ENTRIES = 1 << 24


def auto_cutoff(nn_index, bandwidth, tolerance=TRUNCATION_TOLERANCE):
    """The smallest kernel cutoff that keeps all but ``tolerance`` of the mass.

    On up to 500 evenly spaced samples, the kernel ``exp(-|x - y|^2 / eps)``
    within the largest truncation radius ``sqrt(KERNEL_CUTOFF * eps)`` is
    measured, and for each sample the smallest cutoff ``c`` (in units of
    ``eps``) whose radius keeps all but ``tolerance`` of that mass. The
    result is the 99% quantile of those cutoffs, clipped to
    ``[6, KERNEL_CUTOFF]``. Where the data is locally ``d``-dimensional at the
    kernel's scale, the mass beyond ``c`` is the tail of a chi-squared law
    with ``d`` degrees of freedom at ``2 c``: about 5.4 for a curve and 6.9
    for a surface at the default tolerance, against 12 for every dimension
    before; the radius, and the graph's entries, shrink with it. The floor 6
    keeps the edges that the ``'auto'`` bandwidth keeps connected (kernel
    weight ``exp(-6)``, see :func:`auto_bandwidth`).

    Parameters
    ----------
    nn_index : NeighborIndex
        Index fitted on the training data.
    bandwidth : float
        The kernel scale ``eps``.
    tolerance : float, default=1e-3
        The share of a sample's kernel mass that the truncation may drop.

    Returns
    -------
    cutoff : float

    Examples
    --------
    On a surface sampled far more finely than the kernel's scale, the mass
    beyond ``c`` is ``exp(-c)``:

    >>> import numpy as np
    >>> from skvdae.graph import NeighborIndex, auto_cutoff
    >>> grid = np.linspace(0.0, 1.0, 201)
    >>> X = np.c_[np.repeat(grid, grid.size), np.tile(grid, grid.size)]
    >>> cutoff = auto_cutoff(NeighborIndex().fit(X), 0.002, tolerance=1e-4)
    >>> bool(abs(cutoff - np.log(1e4)) < 0.3)
    True
    """
    queries = _evenly_spaced(nn_index.data_, _CUTOFF_QUERIES)
    radius = np.sqrt(KERNEL_CUTOFF * bandwidth)
    needed = np.empty(len(queries))
    # Candidate lists stop at their cap, which would miss the mass beyond:
    # without radius queries the balls come by brute force, a few queries at
    # a time so that even balls holding every sample fit in memory.
    brute = not getattr(nn_index, "radius_search_", True)
    step = max(1, _BALL_ENTRIES // nn_index.n_samples_fit_) if brute else len(queries)
    for start in range(0, len(queries), step):
        part = queries[start : start + step]
        if brute:
            distances = _brute_force_balls(nn_index.data_, part, radius)
        else:
            distances, _ = nn_index.radius_neighbors(part, radius)
        for row, found in enumerate(distances, start):
            scaled = np.sort(np.square(found) / bandwidth)
            # Mass beyond each entry: beyond[j] is what a cutoff at scaled[j]
            # drops.
            weights = np.exp(-scaled)
            beyond = np.cumsum(weights[::-1])[::-1] - weights
            kept = np.flatnonzero(beyond <= tolerance * weights.sum())
            needed[row] = scaled[kept[0]] if kept.size else 0.0
    cutoff = float(np.quantile(needed, _SPARSE_QUANTILE))
    return float(np.clip(cutoff, _CONNECT_WEIGHT, KERNEL_CUTOFF))
