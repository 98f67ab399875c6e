"""Topology of point clouds for the generative benchmark: Betti numbers.

The benchmark compares the Betti numbers of generated samples with those of
the data manifold (loop ``(1, 1)``, sphere ``(1, 0, 1)``, torus ``(1, 2, 1)``,
surface of the Stanford bunny ``(1, 0, 1)``, video of a turning object
``(1, 1)``). A point cloud has no Betti numbers of its own: they are read off
its persistence diagram (computed with `gudhi <https://gudhi.inria.fr>`_) by
counting the features that live longer than a threshold, and that threshold
is calibrated on real held-out data whose Betti numbers are known.

- :func:`persistence_intervals`: persistence diagram of a point cloud (alpha
  complex in low dimension, Vietoris-Rips complex otherwise).
- :func:`betti_numbers`: number of features per dimension living longer than
  a threshold.
- :func:`calibrate_threshold`: the threshold that separates signal from noise
  in the diagram of real data, and how well it separates them.
- :func:`sample_betti_numbers`: all of the above for a real and a generated
  point cloud, with the same number of points for both.

Scale
-----
Lifetimes, and so thresholds, are in the units of the data, and they are only
comparable between diagrams of the same complex built on the same number of
points: the noise features of a sample of ``n`` points shrink as ``n`` grows
(about like the typical spacing of the points, ``n ** (-1 / intrinsic
dimension)``). Calibrate the threshold on real data subsampled to the same
number of points, with the same complex, as the generated data
(:func:`sample_betti_numbers` does this). The alpha complex's filtration value
is the radius of the balls (gudhi's squared radii are square-rooted here); the
Rips complex's is the length of the edges, which is about twice the radius, so
the two scales differ by a factor of about 2 and their thresholds must not be
mixed.

Outliers
--------
Each isolated point is a component of ``H_0`` that lives about half (alpha)
or all (Rips) of its distance to the rest of the cloud. A generator with
diffuse tails (e.g. the Gaussian tails of a VAE's samples) therefore shows
extra ``H_0`` features of a lifetime comparable to the threshold, where a
compact manifold has none: read an excess ``b_0`` with that in mind.

gudhi is an optional dependency, imported only when a diagram is computed:
``pip install gudhi`` or ``pip install 'skvdae[benchmarks]'``.
"""

import numbers
from typing import NamedTuple

import numpy as np
from scipy.spatial.distance import pdist, squareform
from sklearn.utils.validation import check_array

__all__ = [
    "ThresholdCalibration",
    "TopologyComparison",
    "betti_numbers",
    "calibrate_threshold",
    "persistence_intervals",
    "sample_betti_numbers",
]

#: Default subsample size of each complex (the Rips complex grows like the
#: cube of the number of points when expanded to triangles).
DEFAULT_MAX_POINTS = {"alpha": 2000, "rips": 400}

_COMPLEXES = ("auto", "alpha", "rips")


class ThresholdCalibration(NamedTuple):
    """Result of :func:`calibrate_threshold`.

    Attributes
    ----------
    threshold : float
        Lifetime above which a feature counts as signal: the geometric mean
        of ``max_noise`` and ``min_signal``.
    separation : float
        ``min_signal / max_noise``. Above 1 the true Betti numbers are
        recovered from the calibration data at ``threshold``; at or below 1
        they are not recoverable from real data at this sample size, and any
        Betti numbers read at ``threshold`` are meaningless. Larger is more
        robust (a ratio of 2 leaves a factor of about 1.4 on either side).
    min_signal : float
        Smallest lifetime of a feature that the true Betti numbers call
        signal (0 when a dimension has fewer features than its Betti number).
    max_noise : float
        Largest lifetime of the other features, over all dimensions (0 when
        there are none).
    """

    threshold: float
    separation: float
    min_signal: float
    max_noise: float


class TopologyComparison(NamedTuple):
    """Result of :func:`sample_betti_numbers`.

    Attributes
    ----------
    real_betti : tuple of int
        Betti numbers of real data at ``threshold``.
    sample_betti : tuple of int
        Betti numbers of the generated samples at ``threshold``.
    threshold : float
        The threshold calibrated on real data (see :func:`calibrate_threshold`).
    separation : float
        Quality of the calibration: at or below 1 the truth is not recoverable
        from real data at ``n_points`` points.
    n_points : int
        Number of points of each of the diagrams.
    complex : str
        The complex used, ``'alpha'`` or ``'rips'``.
    """

    real_betti: tuple
    sample_betti: tuple
    threshold: float
    separation: float
    n_points: int
    complex: str


def _import_gudhi():
    try:
        import gudhi
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Persistent homology needs gudhi: pip install gudhi "
            "(or pip install 'skvdae[benchmarks]')."
        ) from exc
    return gudhi


def _check_rng(random_state):
    """A numpy Generator from an int, None, a Generator or a RandomState.

    None seeds from the operating system; nothing touches numpy's global
    random state (a ``RandomState`` instance passed in is advanced, as in
    scikit-learn).
    """
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


def _check_points(X):
    return check_array(X, dtype=np.float64, ensure_min_samples=1, input_name="X")


def _resolve_complex(complex, n_features):
    if complex not in _COMPLEXES:
        raise ValueError(f"complex must be one of {_COMPLEXES}, got {complex!r}.")
    if complex == "auto":
        return "alpha" if n_features <= 3 else "rips"
    if complex == "alpha" and n_features > 3:
        raise ValueError(
            "The alpha complex needs at most 3 features (its Delaunay "
            f"triangulation explodes in higher dimension), got {n_features}; "
            "use complex='rips'."
        )
    return complex


def _check_max_points(max_points, complex):
    if max_points is None:
        return DEFAULT_MAX_POINTS[complex]
    if (
        not isinstance(max_points, numbers.Integral)
        or isinstance(max_points, bool)
        or max_points < 1
    ):
        raise ValueError(f"max_points must be a positive integer, got {max_points!r}.")
    return int(max_points)


def _check_max_dimension(max_dimension, complex, n_features):
    if max_dimension is None:
        return min(n_features - 1, 2) if complex == "alpha" else 1
    if (
        not isinstance(max_dimension, numbers.Integral)
        or isinstance(max_dimension, bool)
        or max_dimension < 0
    ):
        raise ValueError(
            f"max_dimension must be a non-negative integer, got {max_dimension!r}."
        )
    return int(max_dimension)


def _subsample(X, max_points, rng):
    if len(X) <= max_points:
        return X
    return X[np.sort(rng.choice(len(X), max_points, replace=False))]


def _diagram(X, complex, max_dimension):
    """Intervals of ``X`` (no subsampling) in dimensions ``0..max_dimension``."""
    gudhi = _import_gudhi()
    if complex == "alpha":
        tree = gudhi.AlphaComplex(points=X).create_simplex_tree()
    else:
        # Exact Rips complex (sparse=None, no edge-length cap, so that every
        # non-essential class dies); edge collapse shrinks the 1-skeleton
        # without changing the persistence, then it is expanded to the
        # simplices that H_max_dimension needs.
        distances = squareform(pdist(X))
        tree = gudhi.RipsComplex(
            distance_matrix=distances, sparse=None
        ).create_simplex_tree(max_dimension=1)
        if max_dimension >= 1:
            tree.collapse_edges(1)
        tree.expansion(max_dimension + 1)
    tree.compute_persistence()
    intervals = []
    for dimension in range(max_dimension + 1):
        pairs = np.asarray(
            tree.persistence_intervals_in_dimension(dimension), dtype=np.float64
        ).reshape(-1, 2)
        if complex == "alpha":
            # gudhi's alpha filtration values are squared radii.
            pairs = np.sqrt(np.maximum(pairs, 0.0))
        intervals.append(pairs)
    if len(X) and not np.isinf(intervals[0][:, 1]).any():
        # gudhi drops the only vertex of a one-point (or all-duplicate) cloud.
        intervals[0] = np.vstack([intervals[0], [[0.0, np.inf]]])
    return intervals


def persistence_intervals(
    X, max_dimension=None, complex="auto", max_points=None, random_state=None
):
    """Persistence intervals of a point cloud, dimension by dimension.

    At most ``max_points`` rows of ``X`` are kept (drawn at random without
    replacement), then the persistent homology of a filtered complex built on
    them is computed with gudhi (field ``Z/11``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points; finite values only.
    max_dimension : int or None, default=None
        Highest homology dimension returned. None: ``min(n_features - 1, 2)``
        for the alpha complex (the homology of a subset of ``R^d`` vanishes
        from dimension ``d`` on), 1 for the Rips complex (dimension 2 needs
        the tetrahedra of the Rips complex, whose number grows like the
        fourth power of the number of points).
    complex : {'auto', 'alpha', 'rips'}, default='auto'
        ``'alpha'``: alpha complex (:class:`gudhi.AlphaComplex`), exact and
        fast, for at most 3 features; filtration values are the radii of the
        balls (gudhi's squared radii are square-rooted). ``'rips'``:
        Vietoris-Rips complex (:class:`gudhi.RipsComplex`, exact:
        ``sparse=None`` and no cap on the edge length, so every class but the
        essential ``H_0`` one dies), for any number of features; filtration
        values are edge lengths (Euclidean distances), about twice the
        alpha radii. ``'auto'``: alpha for at most 3 features, else Rips.
    max_points : int or None, default=None
        Largest number of points kept. None: 2000 for the alpha complex and
        400 for the Rips complex (a few seconds each).
    random_state : int, numpy.random.Generator, RandomState instance or None, \
default=None
        Seed of the subsampling (only used when ``n_samples > max_points``).
        None seeds from the operating system; numpy's global random state is
        never used.

    Returns
    -------
    intervals : list of ndarray of shape (n_features_d, 2)
        One array per homology dimension ``0, ..., max_dimension``: the birth
        and death of each feature, in the units of ``X`` (sorted by gudhi, not
        by lifetime). The essential ``H_0`` class dies at ``inf``. Features
        of zero lifetime are left out.

    Raises
    ------
    ValueError
        When ``X`` is not a 2-D array of finite numbers, ``complex`` is
        unknown, or the alpha complex is asked for more than 3 features.
    ImportError
        When gudhi is not installed.

    See Also
    --------
    betti_numbers : Count the long-lived features.
    calibrate_threshold : Choose the threshold from real data.

    Examples
    --------
    >>> import numpy as np
    >>> from benchmarks.generative.topology import persistence_intervals
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.uniform(0, 2 * np.pi, 200)
    >>> X = np.c_[np.cos(theta), np.sin(theta)]
    >>> h0, h1 = persistence_intervals(X)
    >>> h0.shape
    (200, 2)
    >>> birth, death = h1[np.argmax(h1[:, 1] - h1[:, 0])]
    >>> round(float(death), 3)  # the hole fills when the balls reach radius 1
    1.0
    """
    X = _check_points(X)
    n_features = X.shape[1]
    complex = _resolve_complex(complex, n_features)
    max_dimension = _check_max_dimension(max_dimension, complex, n_features)
    max_points = _check_max_points(max_points, complex)
    X = _subsample(X, max_points, _check_rng(random_state))
    return _diagram(X, complex, max_dimension)


def _lifetimes(intervals):
    lifetimes = []
    for dimension, pairs in enumerate(intervals):
        pairs = np.asarray(pairs, dtype=np.float64)
        if pairs.size == 0:
            pairs = pairs.reshape(0, 2)
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ValueError(
                "intervals must be a sequence of arrays of shape (k, 2); got "
                f"shape {pairs.shape} in dimension {dimension}."
            )
        if np.isnan(pairs).any():
            raise ValueError(f"intervals contain NaN in dimension {dimension}.")
        # inf - finite = inf; a feature born at inf (never) has no lifetime.
        with np.errstate(invalid="ignore"):
            life = pairs[:, 1] - pairs[:, 0]
        lifetimes.append(np.where(np.isnan(life), 0.0, life))
    return lifetimes


def betti_numbers(intervals, threshold):
    """Number of features per dimension that live longer than a threshold.

    Parameters
    ----------
    intervals : sequence of array-like of shape (n_features_d, 2)
        Birth and death of the features of each dimension, as returned by
        :func:`persistence_intervals`.
    threshold : float
        Non-negative lifetime, in the units of the intervals: a feature
        counts when ``death - birth > threshold`` (so features that never die
        always count). Calibrate it with :func:`calibrate_threshold` on real
        data with the same number of points and the same complex.

    Returns
    -------
    betti : tuple of int
        One count per dimension, ``(b_0, b_1, ...)``.

    Examples
    --------
    >>> import numpy as np
    >>> from benchmarks.generative.topology import betti_numbers
    >>> h0 = np.array([[0.0, 0.1], [0.0, np.inf]])
    >>> h1 = np.array([[0.1, 0.2], [0.1, 1.0]])
    >>> betti_numbers([h0, h1], 0.3)
    (1, 1)
    """
    if (
        not isinstance(threshold, numbers.Real)
        or isinstance(threshold, bool)
        or np.isnan(threshold)
        or threshold < 0
    ):
        raise ValueError(f"threshold must be a non-negative number, got {threshold!r}.")
    return tuple(int(np.sum(life > threshold)) for life in _lifetimes(intervals))


def calibrate_threshold(intervals, true_betti):
    """Lifetime threshold separating signal from noise, from real data.

    In each dimension ``d`` the ``true_betti[d]`` longest-lived features of
    real data are signal (the essential ``H_0`` class, of infinite lifetime,
    is the longest) and all the others are noise. The threshold is the
    geometric mean of the longest noise lifetime (over all dimensions) and
    the shortest signal lifetime (over all dimensions), i.e. the middle of
    the gap on a logarithmic scale.

    The threshold is in the units of the data, and only valid for diagrams
    of the same complex on the same number of points (the noise shrinks as
    the number of points grows): compute ``intervals`` on real held-out data
    subsampled to as many points as the samples to be judged (see
    :func:`sample_betti_numbers`).

    Parameters
    ----------
    intervals : sequence of array-like of shape (n_features_d, 2)
        Persistence intervals of real data, as returned by
        :func:`persistence_intervals`.
    true_betti : sequence of int
        The Betti numbers of the data manifold, ``(b_0, b_1, ...)``; at most
        ``len(intervals)`` of them, dimensions beyond them have Betti number
        0 (all their features are noise).

    Returns
    -------
    calibration : ThresholdCalibration
        Named tuple ``(threshold, separation, min_signal, max_noise)``:
        ``separation = min_signal / max_noise`` is above 1 when the true Betti
        numbers are recovered from ``intervals`` at ``threshold``, and at or
        below 1 when the truth is not recoverable from real data at this
        sample size. When there is no noise at all, ``max_noise = 0``,
        ``separation = inf`` and ``threshold = min_signal / 2``.

    Raises
    ------
    ValueError
        When ``true_betti`` is longer than ``intervals`` or has negative
        entries, or when its only signal is the essential ``H_0`` class
        (e.g. ``(1, 0)``): a contractible data set has no finite signal
        lifetime to calibrate against.

    See Also
    --------
    betti_numbers : Count the features above the threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from benchmarks.generative.topology import (
    ...     betti_numbers, calibrate_threshold, persistence_intervals)
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.uniform(0, 2 * np.pi, 200)
    >>> X = np.c_[np.cos(theta), np.sin(theta)] + 0.02 * rng.normal(size=(200, 2))
    >>> intervals = persistence_intervals(X)
    >>> calibration = calibrate_threshold(intervals, (1, 1))
    >>> bool(calibration.separation > 5)
    True
    >>> betti_numbers(intervals, calibration.threshold)
    (1, 1)
    """
    lifetimes = _lifetimes(intervals)
    true_betti = tuple(true_betti)
    if len(true_betti) > len(lifetimes):
        raise ValueError(
            f"true_betti has {len(true_betti)} entries but intervals only "
            f"{len(lifetimes)} dimensions; compute the diagram up to "
            f"max_dimension={len(true_betti) - 1}."
        )
    if any(
        not isinstance(b, numbers.Integral) or isinstance(b, bool) or b < 0
        for b in true_betti
    ):
        raise ValueError(
            f"true_betti must be non-negative integers, got {true_betti!r}."
        )
    true_betti = true_betti + (0,) * (len(lifetimes) - len(true_betti))
    signal = []
    noise = []
    for life, b in zip(lifetimes, true_betti, strict=True):
        life = np.sort(life)[::-1]
        top = life[:b]
        # A dimension with fewer features than its Betti number misses some
        # signal: count the missing ones as lifetime 0.
        signal.append(np.r_[top, np.zeros(b - len(top))])
        noise.append(life[b:])
    signal = np.concatenate(signal)
    noise = np.concatenate(noise)
    min_signal = float(signal.min()) if signal.size else np.inf
    if np.isinf(min_signal):
        raise ValueError(
            f"true_betti={true_betti!r} has no feature of finite lifetime "
            "(only never-dying classes such as the essential H_0 class), so "
            "signal cannot be told from noise: calibrate on data with a "
            "finite-lifetime feature (a loop, a void, a second component)."
        )
    max_noise = float(noise.max()) if noise.size else 0.0
    if max_noise == 0.0:
        return ThresholdCalibration(min_signal / 2.0, np.inf, min_signal, 0.0)
    separation = min_signal / max_noise
    with np.errstate(invalid="ignore"):
        threshold = float(np.sqrt(max_noise * min_signal))
    if np.isnan(threshold):  # inf * 0: infinite noise, missing signal
        threshold = np.inf
    return ThresholdCalibration(threshold, float(separation), min_signal, max_noise)


def sample_betti_numbers(
    X_real,
    X_samples,
    true_betti,
    *,
    complex="auto",
    max_dimension=None,
    max_points=None,
    random_state=None,
):
    """Betti numbers of generated samples, at a threshold calibrated on real data.

    Both clouds are subsampled to the same number of points, ``n_points =
    min(max_points, len(X_samples), len(X_real))``, because the lifetimes of
    noise features depend on it. The threshold is calibrated
    (:func:`calibrate_threshold`) on one subsample of ``X_real``; the real
    Betti numbers are then read on a second subsample of ``X_real``, disjoint
    from the first when ``X_real`` has at least ``2 * n_points`` rows (so
    that they test the threshold on data it was not fitted to), else on the
    same one (where they equal ``true_betti`` exactly when ``separation >
    1``).

    Parameters
    ----------
    X_real : array-like of shape (n_real, n_features)
        Real held-out data, whose manifold has Betti numbers ``true_betti``.
    X_samples : array-like of shape (n_generated, n_features)
        Generated samples.
    true_betti : sequence of int
        The Betti numbers of the data manifold, ``(b_0, b_1, ...)``.
    complex : {'auto', 'alpha', 'rips'}, default='auto'
        See :func:`persistence_intervals`; the same complex for both clouds.
    max_dimension : int or None, default=None
        Highest homology dimension; None: ``len(true_betti) - 1``.
    max_points : int or None, default=None
        Largest subsample size; None: the default of the complex (see
        :func:`persistence_intervals`).
    random_state : int, numpy.random.Generator, RandomState instance or None, \
default=None
        Seed of the subsamples; numpy's global random state is never used.

    Returns
    -------
    comparison : TopologyComparison
        Named tuple ``(real_betti, sample_betti, threshold, separation,
        n_points, complex)``. Report ``sample_betti`` only when
        ``separation > 1``: otherwise the truth cannot be read even from real
        data at this sample size.

    Examples
    --------
    >>> import numpy as np
    >>> from benchmarks.generative.topology import sample_betti_numbers
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.uniform(0, 2 * np.pi, 400)
    >>> circle = np.c_[np.cos(theta), np.sin(theta)]
    >>> radius, phi = np.sqrt(rng.uniform(size=200)), rng.uniform(0, 2 * np.pi, 200)
    >>> disc = np.c_[radius * np.cos(phi), radius * np.sin(phi)]
    >>> result = sample_betti_numbers(circle, disc, (1, 1), random_state=0)
    >>> result.real_betti, result.sample_betti, result.n_points
    ((1, 1), (1, 0), 200)
    """
    X_real = _check_points(X_real)
    X_samples = _check_points(X_samples)
    if X_real.shape[1] != X_samples.shape[1]:
        raise ValueError(
            f"X_real has {X_real.shape[1]} features but X_samples has "
            f"{X_samples.shape[1]}."
        )
    true_betti = tuple(true_betti)
    if not true_betti:
        raise ValueError("true_betti must not be empty.")
    n_features = X_real.shape[1]
    complex = _resolve_complex(complex, n_features)
    if max_dimension is None:
        max_dimension = len(true_betti) - 1
    max_dimension = _check_max_dimension(max_dimension, complex, n_features)
    max_points = _check_max_points(max_points, complex)
    rng = _check_rng(random_state)
    n_points = min(max_points, len(X_real), len(X_samples))

    order = rng.permutation(len(X_real))
    calibration_rows = np.sort(order[:n_points])
    if len(X_real) >= 2 * n_points:
        check_rows = np.sort(order[n_points : 2 * n_points])
    else:
        check_rows = calibration_rows
    calibration_intervals = _diagram(X_real[calibration_rows], complex, max_dimension)
    calibration = calibrate_threshold(calibration_intervals, true_betti)
    if check_rows is calibration_rows:
        real_intervals = calibration_intervals
    else:
        real_intervals = _diagram(X_real[check_rows], complex, max_dimension)
    sample_intervals = _diagram(
        _subsample(X_samples, n_points, rng), complex, max_dimension
    )
    return TopologyComparison(
        real_betti=betti_numbers(real_intervals, calibration.threshold),
        sample_betti=betti_numbers(sample_intervals, calibration.threshold),
        threshold=calibration.threshold,
        separation=calibration.separation,
        n_points=n_points,
        complex=complex,
    )
