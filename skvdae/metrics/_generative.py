"""Generative-quality metrics in bounded memory.

- precision, recall, density and coverage from k-nearest-neighbour balls
  (Naeem et al., 2020, "Reliable Fidelity and Diversity Metrics for Generative
  Models");
- the kernel maximum mean discrepancy with a Gaussian kernel (Gretton et al.,
  2012, "A Kernel Two-Sample Test").

No function builds a full n x m matrix: pairwise distances and kernels are formed
in cache-sized square tiles (at most 2**16 entries, fewer if the memory budget
``working_memory``, in MiB as in scikit-learn, is smaller) and tree queries go in
chunks sized by the same budget, so memory grows linearly, not quadratically, with
the sample sizes.
"""

from math import isqrt
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from scipy.spatial.distance import pdist
from sklearn import config_context, get_config
from sklearn.neighbors import BallTree, KDTree, NearestNeighbors
from sklearn.utils import check_array, gen_batches
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._random import check_private_random_state
from ._validation import check_two_arrays, to_unit_scale

__all__ = [
    "maximum_mean_discrepancy",
    "median_heuristic_bandwidth",
    "precision_recall_density_coverage",
]

# Beyond this many features the trees lose to brute force (scikit-learn's rule).
_MAX_FEATURES_FOR_TREES = 15

# Pairwise work goes in square tiles of at most this many entries (512 KiB of
# float64), small enough to stay in cache; a smaller working_memory shrinks them.
_TILE_ENTRIES = 2**16

# ---------------------------------------------------------------------------
# Shared helpers: validation, memory budget, threaded row chunks.
# ---------------------------------------------------------------------------


def _budget_entries(bytes_per_entry, working_memory, n_workers):
    """Entries of a block that fit the memory budget of one worker."""
    if working_memory is None:
        working_memory = get_config()["working_memory"]
    return working_memory * 2**20 / (n_workers * bytes_per_entry)


def _rows_per_chunk(n_columns, bytes_per_entry, working_memory, n_workers):
    """Rows of an (n_rows, n_columns) block that fit the budget of one worker."""
    budget = _budget_entries(bytes_per_entry, working_memory, n_workers)
    return max(1, int(budget // n_columns))


def _tile_side(bytes_per_entry, working_memory, n_workers):
    """Side of the square tiles of pairwise work: cache-sized, within the budget."""
    budget = _budget_entries(bytes_per_entry, working_memory, n_workers)
    return max(1, isqrt(int(min(_TILE_ENTRIES, budget))))


def _n_workers(n_jobs, n_chunks):
    return max(1, min(effective_n_jobs(n_jobs), n_chunks))


def _map_over_chunk_shares(work, chunks, n_jobs):
    """Give worker w the chunks w, w + n_workers, ... and return the workers' results.

    Threads are used: the heavy numpy and tree operations release the GIL, and
    memory stays at one chunk per worker.
    """
    n_workers = _n_workers(n_jobs, len(chunks))
    if n_workers == 1:
        return [work(chunks)]
    shares = [chunks[worker::n_workers] for worker in range(n_workers)]
    return Parallel(n_jobs=n_workers, prefer="threads")(
        delayed(work)(share) for share in shares
    )


def _squared_distance_tile(A_scaled, B, A_norms, B_norms):
    """|a_i - b_j|^2 for a tile, from A_scaled = -2 A and the squared row norms.

    Not clipped at 0: rounding can leave tiny negative values, which compare
    below any radius as a zero distance would.
    """
    distances = A_scaled @ B.T
    distances += A_norms[:, None]
    distances += B_norms[None, :]
    return distances


def _rounding_bound(n_features):
    """Relative rounding error of |a - b|^2 from the dot-product expansion.

    The error of |a|^2 - 2 a.b + |b|^2 is below this factor times
    |a|^2 + |b|^2 (about (2 d + 5) eps; a margin is added).
    """
    return 8.0 * (n_features + 2) * np.finfo(np.float64).eps


def _row_squared_norms(A):
    return np.einsum("ij,ij->i", A, A)


# ---------------------------------------------------------------------------
# Precision, recall, density and coverage.
# ---------------------------------------------------------------------------


def _choose_algorithm(algorithm, n_features):
    if algorithm != "auto":
        return algorithm
    return "kd_tree" if n_features <= _MAX_FEATURES_FOR_TREES else "brute"


def _kth_neighbour_radii(A, n_neighbors, algorithm, working_memory, n_jobs):
    """Distance of every row of A to its k-th nearest other row of A."""
    search = NearestNeighbors(
        n_neighbors=n_neighbors, algorithm=algorithm, n_jobs=n_jobs
    )
    if working_memory is None:
        working_memory = get_config()["working_memory"]
    with config_context(working_memory=working_memory):
        distances, _ = search.fit(A).kneighbors()
    return distances[:, -1]


def _ball_membership_brute(real, fake, real_radii, fake_radii, working_memory, n_jobs):
    """One chunked pass over all (real, fake) distances.

    Returns, per real point, the number of fake points in its ball and whether it
    lies in some fake ball; per fake point, whether it lies in some real ball.
    """
    n_real, n_fake = real.shape[0], fake.shape[0]
    # Squared distances from the expansion |a|^2 - 2 a.b + |b|^2 carry a rounding
    # error below c eps (|a|^2 + |b|^2). Shrinking both norms by that relative
    # bound subtracts it from every pair, so that exact copies (distance 0) stay
    # inside a ball of radius 0 and the k-th neighbour inside its own ball.
    shrink = 1.0 - _rounding_bound(real.shape[1])
    real_norms = shrink * _row_squared_norms(real)
    fake_norms = shrink * _row_squared_norms(fake)
    real_radii_sq, fake_radii_sq = real_radii**2, fake_radii**2
    fakes_per_real_ball = np.zeros(n_real, dtype=np.int64)
    real_in_fake_ball = np.zeros(n_real, dtype=bool)
    real_scaled = -2.0 * real

    # 8 bytes per distance plus the boolean masks and their reductions.
    side = _tile_side(12, working_memory, effective_n_jobs(n_jobs))
    real_blocks = list(gen_batches(n_real, side))
    fake_blocks = list(gen_batches(n_fake, side))

    def work(share):
        # A worker owns whole rows (real points); fake-side marks are its own.
        fake_in_real_ball = np.zeros(n_fake, dtype=bool)
        for rows in share:
            for cols in fake_blocks:
                distances_sq = _squared_distance_tile(
                    real_scaled[rows], fake[cols], real_norms[rows], fake_norms[cols]
                )
                inside_real = distances_sq <= real_radii_sq[rows, None]
                fakes_per_real_ball[rows] += inside_real.sum(axis=1)
                fake_in_real_ball[cols] |= inside_real.any(axis=0)
                inside_fake = distances_sq <= fake_radii_sq[None, cols]
                real_in_fake_ball[rows] |= inside_fake.any(axis=1)
        return fake_in_real_ball

    shares = _map_over_chunk_shares(work, real_blocks, n_jobs)
    fake_in_real_ball = np.logical_or.reduce(shares)
    return fakes_per_real_ball, real_in_fake_ball, fake_in_real_ball


def _points_in_balls_tree(
    centres, radii, points, algorithm, working_memory, n_jobs, counts=None
):
    """Which of ``points`` lie in some ball (centre, radius), from a tree on points.

    If ``counts`` is given, the number of points in each ball is written into it.
    Queries go in chunks of centres sized so that even a ball holding every point
    keeps the index arrays of a chunk within the budget.
    """
    tree = (KDTree if algorithm == "kd_tree" else BallTree)(points)
    # The radii went through a square root: widen them by a few ulps so that the
    # k-th neighbour that defines a ball is found on its boundary again.
    radii = radii * (1.0 + 4.0 * np.finfo(np.float64).eps)
    n_points = points.shape[0]
    n_workers = effective_n_jobs(n_jobs)
    # One int64 index per (centre, point) pair in the worst case, plus the copy
    # made when the per-ball arrays are concatenated.
    rows = _rows_per_chunk(n_points, 16, working_memory, n_workers)
    chunks = list(gen_batches(centres.shape[0], rows))

    def work(share):
        covered = np.zeros(n_points, dtype=bool)
        for chunk in share:
            members = tree.query_radius(centres[chunk], r=radii[chunk])
            if counts is not None:
                counts[chunk] = [len(ball) for ball in members]
            covered[np.concatenate(members)] = True
        return covered

    return np.logical_or.reduce(_map_over_chunk_shares(work, chunks, n_jobs))


def _ball_membership_tree(
    real, fake, real_radii, fake_radii, algorithm, working_memory, n_jobs
):
    fakes_per_real_ball = np.zeros(real.shape[0], dtype=np.int64)
    fake_in_real_ball = _points_in_balls_tree(
        real, real_radii, fake, algorithm, working_memory, n_jobs, fakes_per_real_ball
    )
    real_in_fake_ball = _points_in_balls_tree(
        fake, fake_radii, real, algorithm, working_memory, n_jobs
    )
    return fakes_per_real_ball, real_in_fake_ball, fake_in_real_ball


@validate_params(
    {
        "real": ["array-like"],
        "fake": ["array-like"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "algorithm": [StrOptions({"auto", "kd_tree", "ball_tree", "brute"})],
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def precision_recall_density_coverage(
    real, fake, n_neighbors=5, *, algorithm="auto", working_memory=None, n_jobs=None
):
    """Precision, recall, density and coverage of generated samples.

    The metrics of Naeem et al. (2020), built on k-nearest-neighbour balls: the
    ball of a real point has as radius its distance to its ``n_neighbors``-th
    nearest other real point (likewise for fake points, used by recall only).
    With ``N`` real and ``M`` fake samples:

    - precision: fraction of fake samples inside at least one real ball
      (fidelity);
    - recall: fraction of real samples inside at least one fake ball
      (diversity);
    - density: ``(1 / (k M)) sum_j sum_i 1[fake_j in ball(real_i)]``, the
      average number of real balls holding a fake sample, divided by ``k``; about
      1 when the two distributions match, above 1 when fakes crowd dense regions
      (it is not bounded by 1);
    - coverage: fraction of real samples whose ball holds at least one fake
      sample.

    Balls are closed (a sample on the boundary is inside). Recall is not robust
    to outliers among the fake samples: a fake outlier has a large k-NN ball
    that may cover real points, and junk far from the data leaves recall as it
    is, which is the weakness that motivates coverage; precision and density do
    drop with junk. Density and coverage use only the real balls, whose radii are
    not distorted by fake outliers.

    Memory stays bounded for large samples (e.g. 1e5 x 1e5): with
    ``algorithm='brute'`` the squared distances are formed in square tiles of at
    most 2**16 entries (fewer if ``working_memory`` is smaller); with trees the
    ball queries go in chunks of balls sized so that even balls holding every
    point fit within ``working_memory``. No full ``N x M`` matrix is built; the
    extra memory is O(N + M) plus one tile or chunk per thread.

    The metrics are invariant to a translation and scaling common to both
    samples; they are computed in a unit where the data are about 1, so any
    finite scale works (data at 1e300 or 1e-300 give the same result as at 1).

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Samples of the data distribution, finite.

    fake : array-like of shape (n_fake, n_features)
        Generated samples, finite.

    n_neighbors : int, default=5
        The ``k`` of the k-NN radii; must be smaller than ``n_real`` and
        ``n_fake``.

    algorithm : {'auto', 'kd_tree', 'ball_tree', 'brute'}, default='auto'
        How the balls are searched: trees (:class:`~sklearn.neighbors.KDTree`,
        :class:`~sklearn.neighbors.BallTree` with per-ball radii) or chunked
        brute-force distances. ``'auto'`` uses a k-d tree up to 15 features and
        brute force above. All give the same result: points within rounding
        error of a ball's boundary count as inside (so the k-th neighbour that
        defines a ball is inside it, and exact copies are inside balls of radius
        0).

    working_memory : float, default=None
        Memory budget in MiB for the tiles and chunks (shared by the ``n_jobs``
        threads). ``None`` uses scikit-learn's ``working_memory`` setting (see
        :func:`sklearn.set_config`).

    n_jobs : int, default=None
        Number of threads for the tiles, chunks and neighbour searches.

    Returns
    -------
    metrics : dict
        ``{'precision': float, 'recall': float, 'density': float,
        'coverage': float}``.

    Raises
    ------
    ValueError
        If a sample contains NaN or infinity, the numbers of features differ, or
        ``n_neighbors`` is not smaller than both sample sizes.

    See Also
    --------
    maximum_mean_discrepancy : A kernel two-sample distance.

    References
    ----------
    M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi, J. Yoo. "Reliable Fidelity and
    Diversity Metrics for Generative Models", ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.metrics import precision_recall_density_coverage
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(1000, 2))
    >>> metrics = precision_recall_density_coverage(real, rng.normal(size=(1000, 2)))
    >>> sorted(metrics)
    ['coverage', 'density', 'precision', 'recall']
    >>> bool(min(metrics.values()) > 0.8)
    True
    >>> far = precision_recall_density_coverage(real, rng.normal(size=(1000, 2)) + 50)
    >>> far
    {'precision': 0.0, 'recall': 0.0, 'density': 0.0, 'coverage': 0.0}
    """
    real, fake = check_two_arrays(real, fake, ("real", "fake"))
    for name, sample in (("real", real), ("fake", fake)):
        if n_neighbors >= sample.shape[0]:
            raise ValueError(
                f"n_neighbors={n_neighbors} must be smaller than the number of "
                f"{name} samples ({sample.shape[0]})."
            )
    # The balls are invariant to a common translation and scaling: centring
    # reduces cancellation in the squared distances of the brute path, the
    # common unit keeps them (and the trees') finite and nonzero at any scale.
    (real, fake), _ = to_unit_scale((real, fake), centre="first")
    algorithm = _choose_algorithm(algorithm, real.shape[1])
    real_radii = _kth_neighbour_radii(
        real, n_neighbors, algorithm, working_memory, n_jobs
    )
    fake_radii = _kth_neighbour_radii(
        fake, n_neighbors, algorithm, working_memory, n_jobs
    )
    if algorithm == "brute":
        membership = _ball_membership_brute(
            real, fake, real_radii, fake_radii, working_memory, n_jobs
        )
    else:
        membership = _ball_membership_tree(
            real, fake, real_radii, fake_radii, algorithm, working_memory, n_jobs
        )
    fakes_per_real_ball, real_in_fake_ball, fake_in_real_ball = membership
    return {
        "precision": float(fake_in_real_ball.mean()),
        "recall": float(real_in_fake_ball.mean()),
        "density": float(fakes_per_real_ball.sum() / (n_neighbors * fake.shape[0])),
        "coverage": float((fakes_per_real_ball > 0).mean()),
    }


# ---------------------------------------------------------------------------
# Maximum mean discrepancy.
# ---------------------------------------------------------------------------


def _pooled_subsample(X, Y, max_samples, random_state):
    n_x = X.shape[0]
    n_pooled = n_x + (0 if Y is None else Y.shape[0])
    if n_pooled <= max_samples:
        rows = np.arange(n_pooled)
    else:
        rows = np.sort(
            check_private_random_state(random_state).choice(
                n_pooled, size=max_samples, replace=False
            )
        )
    from_x = rows[rows < n_x]
    if Y is None:
        return X[from_x]
    return np.vstack([X[from_x], Y[rows[rows >= n_x] - n_x]])


@validate_params(
    {
        "X": ["array-like"],
        "Y": ["array-like", None],
        "max_samples": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def median_heuristic_bandwidth(X, Y=None, *, max_samples=1000, random_state=None):
    """Gaussian-kernel bandwidth by the median heuristic.

    The bandwidth ``sigma`` of ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))`` is the
    median of the positive Euclidean distances between the points of the pooled
    sample (``X`` and ``Y`` together), computed on a random subsample of at most
    ``max_samples`` pooled points (seeded by ``random_state``). Zero distances
    (duplicate points) are left out.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        First sample, finite.

    Y : array-like of shape (n_samples_Y, n_features), default=None
        Second sample, pooled with ``X``.

    max_samples : int, default=1000
        Largest number of pooled points used (the cost is quadratic in it).

    random_state : int, RandomState instance or None, default=None
        Seeds the subsample when the pooled sample has more than
        ``max_samples`` points. ``None`` draws fresh points each call without
        touching numpy's global random state.

    Returns
    -------
    bandwidth : float
        The median heuristic ``sigma > 0``.

    Raises
    ------
    ValueError
        If a sample contains NaN or infinity, the numbers of features differ,
        all the subsampled points coincide (no positive distance), or the median
        distance exceeds the float64 range.

    See Also
    --------
    maximum_mean_discrepancy : Uses this bandwidth by default.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.metrics import median_heuristic_bandwidth
    >>> median_heuristic_bandwidth(np.array([[0.0], [1.0], [3.0]]))
    2.0
    """
    X = check_array(X, dtype=np.float64, input_name="X")
    if Y is not None:
        X, Y = check_two_arrays(X, Y, ("X", "Y"))
    median, exponent = _median_positive_distance(X, Y, max_samples, random_state)
    with np.errstate(over="ignore"):
        bandwidth = np.ldexp(median, exponent)
    if not np.isfinite(bandwidth):
        raise ValueError(
            "The median heuristic's bandwidth (the median distance between the "
            "points) exceeds the float64 range; rescale the data."
        )
    return float(bandwidth)


def _median_positive_distance(X, Y, max_samples, random_state):
    """The median heuristic in the unit of :func:`to_unit_scale`.

    Returns ``(median, exponent)``: the bandwidth is ``median * 2**exponent``.
    In that unit the distances neither overflow nor underflow, whatever the scale
    of the data.
    """
    (points,), exponent = to_unit_scale(
        [_pooled_subsample(X, Y, max_samples, random_state)]
    )
    distances = pdist(points)
    positive = distances[distances > 0]
    if positive.size == 0:
        raise ValueError(
            "The median heuristic found no positive distance: all the (subsampled) "
            "points coincide. Pass a float bandwidth."
        )
    return float(np.median(positive)), exponent


def _gaussian_kernel_tile(A_scaled, B, A_norms, B_norms, on_diagonal):
    """exp(-gamma |a_i - b_j|^2) on a tile, in one array.

    ``A_scaled`` is ``2 gamma A`` and the norms are ``gamma |.|^2``, so the
    exponent is ``2 gamma a.b - gamma |a|^2 - gamma |b|^2``. On a diagonal tile
    (the same rows of the same sample) the diagonal is set to exactly 1.
    """
    exponent = A_scaled @ B.T
    exponent -= A_norms[:, None]
    exponent -= B_norms[None, :]
    np.minimum(exponent, 0.0, out=exponent)
    if on_diagonal:
        np.fill_diagonal(exponent, 0.0)
    return np.exp(exponent, out=exponent)


def _kernel_sum(A, B, gamma, working_memory, n_jobs):
    """sum_{i, j} k(a_i, b_j) over all ordered pairs; ``B=None`` pairs A with itself.

    Within one sample only the tiles on and above the diagonal are formed, the
    others being their transposes.
    """
    within = B is None
    if within:
        B = A
    A_scaled = 2.0 * gamma * A
    A_norms = gamma * _row_squared_norms(A)
    B_norms = A_norms if within else gamma * _row_squared_norms(B)
    side = _tile_side(8, working_memory, effective_n_jobs(n_jobs))
    row_blocks = list(gen_batches(A.shape[0], side))
    col_blocks = list(gen_batches(B.shape[0], side))

    def work(share):
        total = 0.0
        for rows in share:
            for cols in col_blocks:
                if within and cols.start < rows.start:
                    continue
                on_diagonal = within and cols.start == rows.start
                tile = _gaussian_kernel_tile(
                    A_scaled[rows], B[cols], A_norms[rows], B_norms[cols], on_diagonal
                )
                total += tile.sum() * (2.0 if within and not on_diagonal else 1.0)
        return total

    return float(sum(_map_over_chunk_shares(work, row_blocks, n_jobs)))


@validate_params(
    {
        "X": ["array-like"],
        "Y": ["array-like"],
        "bandwidth": [
            StrOptions({"median"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "biased": ["boolean"],
        "bandwidth_samples": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def maximum_mean_discrepancy(
    X,
    Y,
    *,
    bandwidth="median",
    biased=False,
    bandwidth_samples=1000,
    random_state=None,
    working_memory=None,
    n_jobs=None,
):
    """Squared maximum mean discrepancy with a Gaussian kernel.

    With ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))``, ``m`` samples ``x_i`` and
    ``n`` samples ``y_j``, the unbiased estimate (Gretton et al., 2012) is::

        MMD^2_u = 1/(m(m-1)) sum_{i != i'} k(x_i, x_i')
                + 1/(n(n-1)) sum_{j != j'} k(y_j, y_j')
                - 2/(mn) sum_{i, j} k(x_i, y_j)

    It is about 0 (and may be slightly negative) when both samples come from the
    same distribution. The biased estimate keeps the diagonal terms
    (``1/m^2 sum_{i, i'}`` and ``1/n^2 sum_{j, j'}``) and is never negative.

    The kernel sums are accumulated over square tiles of at most 2**16 entries
    (fewer if ``working_memory`` is smaller; only the tiles on and above the
    diagonal for the within-sample sums), so memory stays bounded for 1e5 x 1e5
    comparisons; the cost remains quadratic in time. The data and the bandwidth
    are taken in a common unit where the data are about 1, so any finite scale
    works: scaling the samples and the bandwidth alike leaves the value as it is.

    Parameters
    ----------
    X : array-like of shape (m, n_features)
        First sample, finite.

    Y : array-like of shape (n, n_features)
        Second sample, finite.

    bandwidth : 'median' or float, default='median'
        The kernel width ``sigma``. ``'median'`` applies the median heuristic
        (:func:`median_heuristic_bandwidth`): the median positive distance
        between points of the pooled sample, on a seeded subsample of at most
        ``bandwidth_samples`` points.

    biased : bool, default=False
        Whether to return the biased (V-statistic) estimate instead of the
        unbiased one.

    bandwidth_samples : int, default=1000
        Subsample size of the median heuristic.

    random_state : int, RandomState instance or None, default=None
        Seeds the median heuristic's subsample.

    working_memory : float, default=None
        Memory budget in MiB for the tiles (shared by the ``n_jobs`` threads);
        it only matters below the 0.5 MiB of a default tile per thread. ``None``
        uses scikit-learn's ``working_memory`` setting.

    n_jobs : int, default=None
        Number of threads over the tiles.

    Returns
    -------
    mmd2 : float
        The squared MMD estimate.

    Raises
    ------
    ValueError
        If a sample contains NaN or infinity, the numbers of features differ, a
        sample has fewer than 2 points, the median heuristic finds no positive
        distance, or the bandwidth is so small next to the spread of the data
        (by a factor of about 1e-150) that ``|x - y|^2 / (2 sigma^2)`` overflows.

    See Also
    --------
    median_heuristic_bandwidth : The default bandwidth rule.
    precision_recall_density_coverage : Fidelity and diversity metrics.

    References
    ----------
    A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schoelkopf, A. Smola. "A Kernel
    Two-Sample Test", JMLR 13, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.metrics import maximum_mean_discrepancy
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    >>> abs(maximum_mean_discrepancy(X, Y, random_state=0)) < 0.01
    True
    >>> maximum_mean_discrepancy(X, Y + 2.0, random_state=0) > 0.3
    True
    """
    X, Y = check_two_arrays(X, Y, ("X", "Y"), min_samples=2)
    # The kernel depends on |x - y| / bandwidth only: both are taken in the unit
    # where the centred data are about 1, so that the squared distances and norms
    # stay finite at any scale. Centring reduces cancellation in them.
    (X, Y), exponent = to_unit_scale((X, Y), centre="means")
    if bandwidth == "median":
        median, median_exponent = _median_positive_distance(
            X, Y, bandwidth_samples, random_state
        )
        scaled_bandwidth = np.ldexp(median, median_exponent)
    else:
        # May overflow to inf (gamma = 0: every kernel value is 1, the limit) or
        # underflow to 0 (caught below).
        with np.errstate(over="ignore", under="ignore"):
            scaled_bandwidth = np.ldexp(bandwidth, -exponent)
    with np.errstate(over="ignore", divide="ignore"):
        gamma = 0.5 / np.square(scaled_bandwidth)
        # Exponents in the tiles reach 4 gamma n_features (|a|^2 <= n_features).
        largest_exponent = 4.0 * gamma * X.shape[1]
    if not np.isfinite(largest_exponent):
        raise ValueError(
            f"bandwidth={bandwidth!r} is too small for the spread of the data "
            f"(largest centred absolute value about 2**{exponent}): "
            "|x - y|^2 / (2 bandwidth^2) overflows float64. Use a bandwidth closer "
            "to the distances between the points."
        )
    gamma = float(gamma)
    m, n = X.shape[0], Y.shape[0]
    sum_xx = _kernel_sum(X, None, gamma, working_memory, n_jobs)
    sum_yy = _kernel_sum(Y, None, gamma, working_memory, n_jobs)
    sum_xy = _kernel_sum(X, Y, gamma, working_memory, n_jobs)
    if biased:
        return sum_xx / m**2 + sum_yy / n**2 - 2.0 * sum_xy / (m * n)
    # The diagonal terms are exactly k(x, x) = 1.
    return (
        (sum_xx - m) / (m * (m - 1))
        + (sum_yy - n) / (n * (n - 1))
        - 2.0 * sum_xy / (m * n)
    )
