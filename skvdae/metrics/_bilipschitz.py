"""Local bi-Lipschitz constants of a latent <-> data correspondence, and a scorer.

A correspondence between latent codes ``z_i`` and data points ``x_i`` is locally
bi-Lipschitz at ``i`` with constant ``K_i >= 1`` when, for the neighbours ``j`` of
``i``::

    (c_i / K_i) |z_i - z_j| <= |x_i - x_j| <= c_i K_i |z_i - z_j|

for some local scale ``c_i``. A homeomorphism keeps every ``K_i`` bounded; folds,
collapses and tears show as a heavy upper tail of the distribution of ``K``.
"""

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import _safe_indexing, check_array, gen_batches
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.validation import _num_samples

from .._random import check_private_random_state
from ._validation import check_two_arrays, to_unit_scale

__all__ = ["BiLipschitzScore", "bilipschitz_constants", "bilipschitz_summary"]

# Differences are formed in blocks of at most this many float64 entries (8 MiB).
_MAX_BLOCK_ENTRIES = 2**20


def _validate_paired_arrays(Z, X, z_name="Z", x_name="X"):
    """Z and X: finite 2-D float arrays with the same number of rows."""
    return check_two_arrays(
        Z, X, names=(z_name, x_name), match="samples", ensure_min_samples=2
    )


def _merge_exact_duplicate_pairs(Z, X):
    """Merge the rows where both the code and the data point repeat exactly.

    Returns the unique (z, x) pairs and, for every original row, the index of its
    unique pair.
    """
    pairs = np.hstack([Z, X])
    _, first_rows, inverse = np.unique(
        pairs, axis=0, return_index=True, return_inverse=True
    )
    return Z[first_rows], X[first_rows], inverse.reshape(-1)


def _neighbours_in_both_spaces(Z, X, n_neighbors, n_jobs):
    """Indices of the k nearest neighbours of every row in Z, then in X (self left out).

    Returns an integer array of shape (n_samples, 2 * n_neighbors).
    """
    neighbours = []
    for space in (Z, X):
        search = NearestNeighbors(n_neighbors=n_neighbors, n_jobs=n_jobs).fit(space)
        neighbours.append(search.kneighbors(return_distance=False))
    return np.hstack(neighbours)


def _row_to_neighbour_distances(A, neighbours):
    """Euclidean distances |a_i - a_j| for every row i and each of its neighbours j.

    Formed from exact differences (no dot-product trick) so that a zero distance is
    exactly zero; blocked so that memory stays bounded in high dimension.
    """
    n_samples, n_columns = neighbours.shape
    distances = np.empty((n_samples, n_columns))
    rows_per_block = max(1, _MAX_BLOCK_ENTRIES // (n_columns * max(A.shape[1], 1)))
    for rows in gen_batches(n_samples, rows_per_block):
        differences = A[rows, None, :] - A[neighbours[rows]]
        distances[rows] = np.sqrt(np.einsum("ijk,ijk->ij", differences, differences))
    return distances


def _log_distance_ratios(latent_distances, data_distances):
    """log r_ij = log |x_i - x_j| - log |z_i - z_j|, without any division.

    No pair has both distances zero (exact duplicate pairs are merged first). A zero
    latent distance with distinct data points (a collapse of codes) gives +inf; a zero
    data distance with distinct codes gives -inf.
    """
    log_ratios = np.empty_like(latent_distances)
    both_positive = (latent_distances > 0) & (data_distances > 0)
    log_ratios[both_positive] = np.log(data_distances[both_positive]) - np.log(
        latent_distances[both_positive]
    )
    log_ratios[latent_distances == 0] = np.inf
    log_ratios[data_distances == 0] = -np.inf
    return log_ratios


def _log_constants_from_ratios(log_ratios, scale_free):
    """Per-row log K from the log ratios of its neighbour pairs (always >= 0)."""
    if not scale_free:
        # K_i = max_j max(r_ij, 1 / r_ij)  <=>  log K_i = max_j |log r_ij|
        return np.max(np.abs(log_ratios), axis=1)
    finite = np.isfinite(log_ratios)
    largest = np.max(np.where(finite, log_ratios, -np.inf), axis=1)
    smallest = np.min(np.where(finite, log_ratios, np.inf), axis=1)
    # For a row with an infinite ratio, largest - smallest is -inf, never NaN; such
    # rows are replaced by +inf below.
    half_spread = np.maximum(0.5 * (largest - smallest), 0.0)
    return np.where(finite.all(axis=1), half_spread, np.inf)


def _log_bilipschitz_constants(Z, X, n_neighbors, scale_free, n_jobs):
    """log K_i for validated float arrays Z and X (see bilipschitz_constants)."""
    n_samples = Z.shape[0]
    Z_unique, X_unique, row_to_unique = _merge_exact_duplicate_pairs(Z, X)
    n_unique = Z_unique.shape[0]
    if n_unique < 2:
        raise ValueError(
            f"All {n_samples} (Z, X) pairs are identical (exact duplicate rows): at "
            "least two distinct pairs are needed to measure distances."
        )
    if n_neighbors >= n_samples:
        duplicates = ""
        if n_unique < n_samples:
            duplicates = (
                f"; only {n_unique} of the (Z, X) pairs are distinct, the others "
                "are exact duplicate rows"
            )
        raise ValueError(
            f"n_neighbors={n_neighbors} must be smaller than the number of samples "
            f"({n_samples}){duplicates}."
        )
    n_neighbors = min(n_neighbors, n_unique - 1)
    # Each space is taken in its own unit, a power of two where its values are
    # about 1, so that squared distances neither overflow nor underflow in the
    # neighbour searches; the ratio of the units goes back into the log ratios.
    (Z_unique,), z_exponent = to_unit_scale([Z_unique])
    (X_unique,), x_exponent = to_unit_scale([X_unique])
    neighbours = _neighbours_in_both_spaces(Z_unique, X_unique, n_neighbors, n_jobs)
    log_ratios = _log_distance_ratios(
        _row_to_neighbour_distances(Z_unique, neighbours),
        _row_to_neighbour_distances(X_unique, neighbours),
    )
    log_ratios += (x_exponent - z_exponent) * np.log(2.0)
    return _log_constants_from_ratios(log_ratios, scale_free)[row_to_unique]


def _exp_without_overflow_warning(log_values):
    with np.errstate(over="ignore"):
        return np.exp(log_values)


@validate_params(
    {
        "Z": ["array-like"],
        "X": ["array-like"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "scale_free": ["boolean"],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def bilipschitz_constants(Z, X, n_neighbors=10, scale_free=True, *, n_jobs=None):
    """Per-point local bi-Lipschitz constants of paired codes Z and data X.

    For every point ``i`` the neighbours ``j`` are the ``n_neighbors`` nearest
    points in latent space *and* the ``n_neighbors`` nearest points in data space
    (Euclidean distances). Latent neighbours catch folds and collapses (near codes,
    far data); data neighbours catch tears (near data, far codes). With the ratios
    ``r_ij = |x_i - x_j| / |z_i - z_j|`` the constant is

    - ``K_i = sqrt(max_j r_ij / min_j r_ij)`` when ``scale_free=True``: invariant
      to a rescaling of either space, 1 for a similarity (scaled isometry);
    - ``K_i = max_j max(r_ij, 1 / r_ij)`` when ``scale_free=False``: the original
      form with local scale 1, so a map that multiplies distances by ``s`` gets
      ``K = max(s, 1 / s)``.

    A homeomorphism keeps every ``K_i`` bounded; a fold, a collapse or a tear
    shows as a heavy upper tail. Report the median, a high quantile and the
    maximum (see :func:`bilipschitz_summary`), not only a mean.

    Both forms are invariant to a translation of either space and to a scaling
    common to both; the scale-free form also to a scaling of either space. Any
    finite scale works (codes or data at 1e300 or 1e-300): each space is
    handled in a unit where its values are about 1.

    The function is generic: pass codes and data (an encoder, ``Z = transform(X)``)
    or latent samples and their decodings (a decoder, ``X = decode(Z)``).

    **Duplicates and zero distances.** No division is performed and no NaN or
    division warning can come out:

    - rows where both the code and the data point repeat exactly are the same
      sample given twice; they are merged before the neighbour search and every
      copy receives the constant of the merged point. If fewer than
      ``n_neighbors + 1`` distinct pairs remain, all of them are used as
      neighbours;
    - two distinct data points with the same code (a collapse, ``r = inf``), or two
      distinct codes with the same data point (``r = 0``), is a true failure of
      injectivity: the points involved get ``K_i = inf``.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_latent)
        Latent codes, finite.

    X : array-like of shape (n_samples, n_features)
        Data points paired row by row with ``Z``, finite.

    n_neighbors : int, default=10
        Number of neighbours taken in each space; must be smaller than
        ``n_samples``.

    scale_free : bool, default=True
        Whether to let the local scale ``c_i`` free (``True``) or fix it to 1.

    n_jobs : int, default=None
        Number of parallel jobs of the neighbour searches (see
        :class:`~sklearn.neighbors.NearestNeighbors`).

    Returns
    -------
    constants : ndarray of shape (n_samples,)
        The constants ``K_i >= 1``; ``inf`` where the correspondence is not
        injective.

    Raises
    ------
    ValueError
        If ``Z`` and ``X`` have different numbers of rows, contain NaN or
        infinity, have fewer than 2 rows, if ``n_neighbors >= n_samples``, or if
        all pairs are identical (exact duplicate rows).

    See Also
    --------
    bilipschitz_summary : Median, high quantile and maximum of the constants.
    BiLipschitzScore : The scorer form, for model selection.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.metrics import bilipschitz_constants
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.uniform(size=(200, 2))
    >>> X = 3.0 * Z + 1.0  # a scaled, translated isometry
    >>> K = bilipschitz_constants(Z, X)
    >>> bool(np.allclose(K, 1.0))
    True
    >>> bool(np.allclose(bilipschitz_constants(Z, X, scale_free=False), 3.0))
    True
    """
    Z, X = _validate_paired_arrays(Z, X)
    log_constants = _log_bilipschitz_constants(Z, X, n_neighbors, scale_free, n_jobs)
    return _exp_without_overflow_warning(log_constants)


def _quantile_allowing_inf(values, q):
    """Linear-interpolation quantile of values in [0, inf], never NaN.

    ``np.quantile`` interpolates ``inf - inf`` into NaN when two infinite values
    surround the requested position; here any infinite value involved gives inf.
    """
    ordered = np.sort(values)
    position = q * (ordered.size - 1)
    below, above = int(np.floor(position)), int(np.ceil(position))
    if np.isinf(ordered[above]):
        return np.inf
    fraction = position - below
    return float(ordered[below] + fraction * (ordered[above] - ordered[below]))


def _check_constants(constants):
    constants = check_array(
        constants,
        ensure_2d=False,
        dtype=np.float64,
        ensure_all_finite=False,
        input_name="constants",
    )
    if constants.ndim != 1:
        raise ValueError(
            f"constants must be a 1-D array; got an array of shape {constants.shape}."
        )
    if np.isnan(constants).any() or (constants < 1).any():
        raise ValueError(
            "constants must be bi-Lipschitz constants: values >= 1 (inf allowed), "
            "no NaN."
        )
    return constants


def _summary_of_log_constants(log_constants, quantile):
    n_infinite = int(np.isinf(log_constants).sum())
    mean_log = float(np.mean(log_constants))
    exp = _exp_without_overflow_warning
    return {
        "n_points": int(log_constants.size),
        "n_infinite": n_infinite,
        "mean_log": mean_log,
        "geometric_mean": float(exp(mean_log)),
        "median": float(exp(_quantile_allowing_inf(log_constants, 0.5))),
        "quantile_level": float(quantile),
        "quantile": float(exp(_quantile_allowing_inf(log_constants, quantile))),
        "max": float(exp(np.max(log_constants))),
    }


@validate_params(
    {
        "constants": ["array-like"],
        "quantile": [Interval(Real, 0, 1, closed="both")],
    },
    prefer_skip_nested_validation=True,
)
def bilipschitz_summary(constants, quantile=0.95):
    """Summarise a distribution of bi-Lipschitz constants for a report.

    Prior mismatch, folds and tears show as a heavy upper tail, so the summary
    gives the median, a high quantile and the maximum next to the geometric mean.

    Parameters
    ----------
    constants : array-like of shape (n_points,)
        Constants ``K_i >= 1`` as returned by :func:`bilipschitz_constants`;
        ``inf`` is allowed.

    quantile : float, default=0.95
        Level of the high quantile, in [0, 1].

    Returns
    -------
    summary : dict
        With keys ``'n_points'``, ``'n_infinite'`` (number of infinite
        constants), ``'mean_log'`` (mean of ``log K``; the default
        :class:`BiLipschitzScore` is its negative), ``'geometric_mean'``
        (``exp(mean_log)``), ``'median'``, ``'quantile_level'``, ``'quantile'``
        (the constant at that level, linear interpolation on ``log K``) and
        ``'max'``. Any infinite constant involved makes the statistic ``inf``;
        none is NaN.

    See Also
    --------
    bilipschitz_constants : The per-point constants.
    BiLipschitzScore.distribution : The summary for an estimator and data.

    Examples
    --------
    >>> from skvdae.metrics import bilipschitz_summary
    >>> summary = bilipschitz_summary([1.0, 1.0, 1.0, 4.0], quantile=0.5)
    >>> summary["median"], summary["max"], summary["geometric_mean"]
    (1.0, 4.0, 1.414...)
    """
    constants = _check_constants(constants)
    return _summary_of_log_constants(np.log(constants), quantile)


class BiLipschitzScore:
    """Scorer: how close a fitted latent <-> data map is to locally bi-Lipschitz.

    A callable ``scorer(estimator, X, y=None) -> float``, greater is better, that
    can be passed as ``scoring=`` to :class:`~sklearn.model_selection.GridSearchCV`
    or :func:`~sklearn.model_selection.cross_validate` (alone or in a multimetric
    dict). It draws at most ``max_samples`` rows of ``X`` (seeded by
    ``random_state``), computes :func:`bilipschitz_constants` on pairs built by
    the estimator, and returns minus an aggregate of ``log K``. A perfect
    (scaled) isometry scores 0; a collapse scores ``-inf``.

    Two meanings, selected by ``mode``:

    - ``'encoder'`` (default): pairs ``(transform(X), X)``; any transformer
      works (PCA, Isomap, a Pipeline, ...). It measures whether the
      representation keeps the neighbourhoods of held-out data: PCA with too few
      components collapses directions and scores below PCA with enough.
    - ``'decoder'``: pairs ``(Z, inverse_transform(Z))`` with codes
      ``Z = transform(X)``; it measures the generating map of estimators that
      decode. For PCA the decoder is an isometry (``K = 1``, score 0) whatever
      the number of components, so this mode does not rank PCA models.

    Parameters
    ----------
    n_neighbors : int, default=10
        Neighbours taken in each space (see :func:`bilipschitz_constants`).

    max_samples : int or None, default=2000
        Largest number of rows of ``X`` used; a larger ``X`` is subsampled
        without replacement. ``None`` uses all rows.

    mode : {'encoder', 'decoder'}, default='encoder'
        Which map is scored, see above.

    aggregate : {'mean', 'median', 'max'} or float in [0, 1], default='mean'
        Statistic of ``log K`` whose negative is the score: ``'mean'`` gives
        minus the log of the geometric mean of ``K``; a float ``q`` gives minus
        the ``q``-quantile of ``log K`` (e.g. 0.9 to focus on the tail).

    scale_free : bool, default=True
        Passed to :func:`bilipschitz_constants`.

    random_state : int, RandomState instance or None, default=None
        Seeds the subsample when ``X`` has more than ``max_samples`` rows. With
        an int every call draws the same rows for the same number of samples
        (so candidate models are compared on the same points). ``None`` draws
        fresh rows each call without touching numpy's global random state.

    n_jobs : int, default=None
        Number of parallel jobs of the neighbour searches.

    See Also
    --------
    bilipschitz_constants : The per-point constants.
    bilipschitz_summary : Median, high quantile and maximum of the constants.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skvdae.metrics import BiLipschitzScore
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3)) * [3.0, 2.0, 1.5]
    >>> search = GridSearchCV(
    ...     PCA(), {"n_components": [1, 2, 3]}, scoring=BiLipschitzScore(), cv=3
    ... ).fit(X)
    >>> search.best_params_
    {'n_components': 3}
    >>> scorer = BiLipschitzScore(random_state=0)
    >>> summary = scorer.distribution(PCA(n_components=1).fit(X), X)
    >>> bool(summary["quantile"] > summary["median"] > 1.0)
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [Interval(Integral, 2, None, closed="left"), None],
        "mode": [StrOptions({"encoder", "decoder"})],
        "aggregate": [
            StrOptions({"mean", "median", "max"}),
            Interval(Real, 0, 1, closed="both"),
        ],
        "scale_free": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        n_neighbors=10,
        max_samples=2000,
        mode="encoder",
        aggregate="mean",
        scale_free=True,
        random_state=None,
        n_jobs=None,
    ):
        self.n_neighbors = n_neighbors
        self.max_samples = max_samples
        self.mode = mode
        self.aggregate = aggregate
        self.scale_free = scale_free
        self.random_state = random_state
        self.n_jobs = n_jobs
        validate_parameter_constraints(
            self._parameter_constraints, self._get_params(), type(self).__name__
        )

    def _get_params(self):
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self._get_params().items())
        return f"{type(self).__name__}({params})"

    def __call__(self, estimator, X, y=None):
        """Score ``estimator`` on ``X`` (``y`` is ignored).

        Parameters
        ----------
        estimator : fitted estimator
            Must have ``transform`` (and ``inverse_transform`` in decoder mode).

        X : array-like of shape (n_samples, n_features)
            Held-out data.

        y : None
            Ignored; present for the scorer signature.

        Returns
        -------
        score : float
            Minus the aggregate of ``log K``; 0 is a perfect score, greater is
            better, ``-inf`` for a collapse.
        """
        log_constants = self._log_constants(estimator, X)
        return -self._aggregate(log_constants)

    def distribution(self, estimator, X, y=None, quantile=0.95):
        """Summary of the constants behind the score, for reports.

        Uses the same subsample and pairs as a call of the scorer.

        Parameters
        ----------
        estimator : fitted estimator
            Must have ``transform`` (and ``inverse_transform`` in decoder mode).

        X : array-like of shape (n_samples, n_features)
            Held-out data.

        y : None
            Ignored.

        quantile : float, default=0.95
            Level of the high quantile.

        Returns
        -------
        summary : dict
            See :func:`bilipschitz_summary`.
        """
        validate_parameter_constraints(
            {"quantile": [Interval(Real, 0, 1, closed="both")]},
            {"quantile": quantile},
            f"{type(self).__name__}.distribution",
        )
        return _summary_of_log_constants(self._log_constants(estimator, X), quantile)

    def _aggregate(self, log_constants):
        if self.aggregate == "mean":
            return float(np.mean(log_constants))
        if self.aggregate == "max":
            return float(np.max(log_constants))
        level = 0.5 if self.aggregate == "median" else self.aggregate
        return _quantile_allowing_inf(log_constants, level)

    def _check_estimator_methods(self, estimator):
        required = ["transform"]
        if self.mode == "decoder":
            required.append("inverse_transform")
        missing = [name for name in required if not hasattr(estimator, name)]
        if missing:
            raise TypeError(
                f"{type(self).__name__}(mode={self.mode!r}) needs an estimator with "
                f"{' and '.join(required)}; {type(estimator).__name__} has no "
                f"{' and no '.join(missing)} method."
            )

    def _subsample(self, X):
        n_samples = _num_samples(X)
        if self.max_samples is None or n_samples <= self.max_samples:
            return X
        rng = check_private_random_state(self.random_state)
        rows = np.sort(rng.choice(n_samples, size=self.max_samples, replace=False))
        return _safe_indexing(X, rows)

    def _paired_codes_and_points(self, estimator, X):
        codes = estimator.transform(X)
        if self.mode == "encoder":
            return _validate_paired_arrays(codes, X, z_name="transform(X)", x_name="X")
        decoded = estimator.inverse_transform(codes)
        return _validate_paired_arrays(
            codes, decoded, z_name="transform(X)", x_name="inverse_transform(Z)"
        )

    def _log_constants(self, estimator, X):
        self._check_estimator_methods(estimator)
        Z, X_paired = self._paired_codes_and_points(estimator, self._subsample(X))
        return _log_bilipschitz_constants(
            Z, X_paired, self.n_neighbors, self.scale_free, self.n_jobs
        )
