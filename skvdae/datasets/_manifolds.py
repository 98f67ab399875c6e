"""Synthetic manifolds with known intrinsic parameters."""

import functools

import numpy as np
from scipy.integrate import cumulative_trapezoid
from scipy.spatial import cKDTree

from .._random import check_private_random_state
from ._validation import check_n_samples, check_points, check_positive


def make_loop(n_samples=1000, *, noise=0.0, random_state=None):
    """The closed curve ``(cos t, sin 2t, sin 3t)`` in R^3, ``t`` uniform.

    The curve is a topological circle whose speed varies along it, so the
    sampling density along its arc length is not uniform.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    noise : float, default=0.0
        Standard deviation of isotropic Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None
        Seed of the sampling. ``None`` draws a fresh seed from the operating
        system without touching numpy's global random state.

    Returns
    -------
    X : ndarray of shape (n_samples, 3)
    t : ndarray of shape (n_samples,)
        The curve parameter of each point, in ``[0, 2 pi)``.

    See Also
    --------
    loop_distance : Distance of points to this curve.
    loop_arc_length : Arc length along the curve.

    Examples
    --------
    >>> from skvdae.datasets import make_loop
    >>> X, t = make_loop(5, random_state=0)
    >>> X.shape, t.shape
    ((5, 3), (5,))
    """
    n_samples = check_n_samples(n_samples)
    noise = check_positive(noise, "noise", allow_zero=True)
    rng = check_private_random_state(random_state)
    t = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    X = np.c_[np.cos(t), np.sin(2 * t), np.sin(3 * t)]
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    return X, t


def loop_arc_length(t):
    """Arc length of :func:`make_loop`'s curve from ``0`` to ``t``, and its length.

    Parameters
    ----------
    t : array-like
        Curve parameters in ``[0, 2 pi]``.

    Returns
    -------
    s : ndarray
        Arc length at each ``t``.
    total : float
        Length of the whole loop.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.datasets import loop_arc_length
    >>> s, total = loop_arc_length(np.array([0.0, 2 * np.pi]))
    >>> bool(np.isclose(s[1], total))
    True
    """
    grid = np.linspace(0.0, 2.0 * np.pi, 200_001)
    speed = np.sqrt(
        np.sin(grid) ** 2 + 4 * np.cos(2 * grid) ** 2 + 9 * np.cos(3 * grid) ** 2
    )
    cumulative = cumulative_trapezoid(speed, grid, initial=0.0)
    return np.interp(np.asarray(t, dtype=float), grid, cumulative), cumulative[-1]


def make_circle(n_samples=1000, *, density_modulation=0.0, random_state=None):
    """Unit circle with angle density proportional to ``1 + m cos(theta)``.

    Parameters
    ----------
    n_samples : int, default=1000
    density_modulation : float in [0, 1), default=0.0
        ``m``; 0 gives uniform angles.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    theta : ndarray of shape (n_samples,)

    Examples
    --------
    >>> from skvdae.datasets import make_circle
    >>> X, theta = make_circle(4, density_modulation=0.5, random_state=0)
    >>> X.shape
    (4, 2)
    """
    if not 0.0 <= density_modulation < 1.0:
        raise ValueError(
            f"density_modulation must be in [0, 1), got {density_modulation}."
        )
    n_samples = check_n_samples(n_samples)
    rng = check_private_random_state(random_state)
    accepted = []
    count = 0
    while count < n_samples:
        proposal = rng.uniform(0.0, 2.0 * np.pi, n_samples)
        bound = 1.0 + density_modulation
        keep = rng.uniform(0.0, bound, n_samples) < 1 + density_modulation * np.cos(
            proposal
        )
        accepted.append(proposal[keep])
        count += int(keep.sum())
    theta = np.concatenate(accepted)[:n_samples]
    return np.c_[np.cos(theta), np.sin(theta)], theta


def _loop_curve(t):
    """Point, first and second derivative of the loop at parameters ``t``."""
    c = np.stack([np.cos(t), np.sin(2 * t), np.sin(3 * t)], axis=-1)
    dc = np.stack([-np.sin(t), 2 * np.cos(2 * t), 3 * np.cos(3 * t)], axis=-1)
    ddc = np.stack([-np.cos(t), -4 * np.sin(2 * t), -9 * np.sin(3 * t)], axis=-1)
    return c, dc, ddc


@functools.lru_cache(maxsize=4)
def _loop_grid_tree(n_grid):
    """KD-tree over ``n_grid`` evenly spaced points of the loop."""
    curve, _, _ = _loop_curve(np.arange(n_grid) * (2.0 * np.pi / n_grid))
    return cKDTree(curve)


def loop_distance(X, *, return_parameter=False, n_grid=4096, n_candidates=8):
    """Euclidean distance of points to :func:`make_loop`'s curve.

    The nearest point of the curve ``(cos t, sin 2t, sin 3t)`` is found on a
    dense grid of ``t`` (with a KD-tree) and then refined by safeguarded
    Newton steps on the squared distance, started from the ``n_candidates``
    nearest grid points (so that a nearby second branch of the curve is not
    missed). Near the curve the result is accurate to about ``1e-12``.

    Parameters
    ----------
    X : array-like of shape (n_points, 3)
        Points in R^3.
    return_parameter : bool, default=False
        Also return the curve parameter of the nearest point.
    n_grid : int, default=4096
        Number of grid points on ``[0, 2 pi)`` for the initial search.
    n_candidates : int, default=8
        Number of nearest grid points refined per point.

    Returns
    -------
    distance : ndarray of shape (n_points,)
        Distance of each point to the curve.
    t : ndarray of shape (n_points,)
        Parameter in ``[0, 2 pi)`` of the nearest point of the curve; only
        when ``return_parameter`` is True.

    See Also
    --------
    make_loop : Samples from the curve.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.datasets import loop_distance, make_loop
    >>> X, _ = make_loop(5, random_state=0)
    >>> bool(np.all(loop_distance(X) < 1e-9))
    True
    >>> float(loop_distance([[0.0, 0.0, 0.0]])[0]) >= 0.0
    True
    """
    X = check_points(X, 3)
    n_grid = check_n_samples(n_grid, "n_grid")
    n_candidates = min(check_n_samples(n_candidates, "n_candidates"), n_grid)
    step = 2.0 * np.pi / n_grid
    grid = np.arange(n_grid) * step
    distance = np.empty(len(X))
    parameter = np.empty(len(X))
    chunk = 4096
    for start in range(0, len(X), chunk):
        x = X[start : start + chunk]
        _, nearest = _loop_grid_tree(n_grid).query(x, k=n_candidates)
        t = grid[np.reshape(nearest, (len(x), n_candidates))]
        lower, upper = t - step, t + step
        xx = x[:, None, :]
        for _ in range(50):
            c, dc, ddc = _loop_curve(t)
            diff = c - xx
            gradient = np.einsum("...k,...k->...", dc, diff)
            curvature = np.einsum("...k,...k->...", ddc, diff) + np.einsum(
                "...k,...k->...", dc, dc
            )
            newton = -gradient / np.where(curvature > 0, curvature, 1.0)
            fallback = -np.sign(gradient) * step / 4
            update = np.where(curvature > 0, newton, fallback)
            previous = t
            t = np.clip(t + update, lower, upper)
            if np.max(np.abs(t - previous)) < 1e-13:
                break
        c, _, _ = _loop_curve(t)
        d = np.linalg.norm(c - xx, axis=-1)
        best = np.argmin(d, axis=1)
        rows = np.arange(len(x))
        distance[start : start + chunk] = d[rows, best]
        parameter[start : start + chunk] = np.mod(t[rows, best], 2.0 * np.pi)
    if return_parameter:
        return distance, parameter
    return distance


def make_sphere(n_samples=1000, *, noise=0.0, random_state=None):
    """Points drawn uniformly from the unit 2-sphere in R^3.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    noise : float, default=0.0
        Standard deviation of isotropic Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None
        Seed of the sampling. ``None`` draws a fresh seed from the operating
        system without touching numpy's global random state.

    Returns
    -------
    X : ndarray of shape (n_samples, 3)
        The points.
    angles : ndarray of shape (n_samples, 2)
        Intrinsic coordinates of the noiseless points: polar angle in
        ``[0, pi]`` (from the ``+z`` axis) and azimuth in ``[0, 2 pi)``.

    See Also
    --------
    sphere_distance : Distance of points to the sphere.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.datasets import make_sphere
    >>> X, angles = make_sphere(4, random_state=0)
    >>> X.shape, angles.shape
    ((4, 3), (4, 2))
    >>> bool(np.allclose(np.linalg.norm(X, axis=1), 1.0))
    True
    """
    n_samples = check_n_samples(n_samples)
    noise = check_positive(noise, "noise", allow_zero=True)
    rng = check_private_random_state(random_state)
    X = rng.standard_normal((n_samples, 3))
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    while np.any(norm == 0):  # probability zero, but keep the points valid
        bad = norm[:, 0] == 0
        X[bad] = rng.standard_normal((int(bad.sum()), 3))
        norm = np.linalg.norm(X, axis=1, keepdims=True)
    X = X / norm
    polar = np.arccos(np.clip(X[:, 2], -1.0, 1.0))
    azimuth = np.mod(np.arctan2(X[:, 1], X[:, 0]), 2.0 * np.pi)
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    return X, np.c_[polar, azimuth]


def sphere_distance(X):
    """Euclidean distance of points to the unit 2-sphere, ``| |x| - 1 |``.

    Parameters
    ----------
    X : array-like of shape (n_points, 3)
        Points in R^3.

    Returns
    -------
    distance : ndarray of shape (n_points,)

    See Also
    --------
    make_sphere : Samples from the sphere.

    Examples
    --------
    >>> from skvdae.datasets import sphere_distance
    >>> sphere_distance([[0.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    array([1. , 0.5])
    """
    X = check_points(X, 3)
    return np.abs(np.linalg.norm(X, axis=1) - 1.0)


def _check_torus(R, r):
    R = check_positive(R, "R")
    r = check_positive(r, "r")
    if r >= R:
        raise ValueError(
            f"The tube radius r must be smaller than the centre radius R, got "
            f"r={r} and R={R}."
        )
    return R, r


def make_torus(n_samples=1000, *, R=2.0, r=1.0, noise=0.0, random_state=None):
    """Points drawn uniformly (in surface area) from a ring torus in R^3.

    The torus ``((R + r cos v) cos u, (R + r cos v) sin u, r sin v)`` turns
    about the ``z`` axis. Its area element is proportional to
    ``R + r cos v``, so the tube angle ``v`` is drawn by rejection sampling
    with that density (the outer side of the ring gets more points than the
    inner side); ``u`` is uniform.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    R : float, default=2.0
        Distance from the centre of the tube to the centre of the torus.
    r : float, default=1.0
        Radius of the tube; ``0 < r < R``.
    noise : float, default=0.0
        Standard deviation of isotropic Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None
        Seed of the sampling. ``None`` draws a fresh seed from the operating
        system without touching numpy's global random state.

    Returns
    -------
    X : ndarray of shape (n_samples, 3)
        The points.
    angles : ndarray of shape (n_samples, 2)
        Intrinsic coordinates ``(u, v)`` in ``[0, 2 pi)^2``: ``u`` about the
        ``z`` axis, ``v`` about the tube.

    See Also
    --------
    torus_distance : Distance of points to the torus.

    Examples
    --------
    >>> from skvdae.datasets import make_torus, torus_distance
    >>> X, angles = make_torus(5, R=2.0, r=0.5, random_state=0)
    >>> X.shape, angles.shape
    ((5, 3), (5, 2))
    >>> bool(torus_distance(X, R=2.0, r=0.5).max() < 1e-12)
    True
    """
    n_samples = check_n_samples(n_samples)
    R, r = _check_torus(R, r)
    noise = check_positive(noise, "noise", allow_zero=True)
    rng = check_private_random_state(random_state)
    accepted = []
    count = 0
    while count < n_samples:
        v = rng.uniform(0.0, 2.0 * np.pi, n_samples)
        keep = rng.uniform(0.0, R + r, n_samples) < R + r * np.cos(v)
        accepted.append(v[keep])
        count += int(keep.sum())
    v = np.concatenate(accepted)[:n_samples]
    u = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    ring = R + r * np.cos(v)
    X = np.c_[ring * np.cos(u), ring * np.sin(u), r * np.sin(v)]
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    return X, np.c_[u, v]


def torus_distance(X, *, R=2.0, r=1.0):
    """Euclidean distance of points to the torus of :func:`make_torus`.

    ``| sqrt((sqrt(x^2 + y^2) - R)^2 + z^2) - r |``, exact.

    Parameters
    ----------
    X : array-like of shape (n_points, 3)
        Points in R^3.
    R : float, default=2.0
        Distance from the centre of the tube to the centre of the torus.
    r : float, default=1.0
        Radius of the tube; ``0 < r < R``.

    Returns
    -------
    distance : ndarray of shape (n_points,)

    See Also
    --------
    make_torus : Samples from the torus.

    Examples
    --------
    >>> from skvdae.datasets import torus_distance
    >>> torus_distance([[2.0, 0.0, 0.0], [3.5, 0.0, 0.0]], R=2.0, r=1.0)
    array([1. , 0.5])
    """
    X = check_points(X, 3)
    R, r = _check_torus(R, r)
    rho = np.hypot(X[:, 0], X[:, 1])
    return np.abs(np.hypot(rho - R, X[:, 2]) - r)


def _check_grid(n_centres_per_side, spacing):
    n_centres_per_side = check_n_samples(n_centres_per_side, "n_centres_per_side")
    spacing = check_positive(spacing, "spacing")
    return n_centres_per_side, spacing


def gaussian_grid_centres(n_centres_per_side=5, *, spacing=2.0):
    """Centres of the Gaussian grid of :func:`make_gaussian_grid`.

    Parameters
    ----------
    n_centres_per_side : int, default=5
        Number of centres along each axis.
    spacing : float, default=2.0
        Distance between neighbouring centres. The grid is centred on the
        origin, so the defaults give ``{-4, -2, 0, 2, 4}^2``.

    Returns
    -------
    centres : ndarray of shape (n_centres_per_side ** 2, 2)
        Centre ``i * n_centres_per_side + j`` is at
        ``(offset[i], offset[j])`` with
        ``offset = (arange(n) - (n - 1) / 2) * spacing``.

    See Also
    --------
    make_gaussian_grid : Samples from the mixture.
    grid_nearest_centre : Nearest centre of points.

    Examples
    --------
    >>> from skvdae.datasets import gaussian_grid_centres
    >>> gaussian_grid_centres(2, spacing=1.0)
    array([[-0.5, -0.5],
           [-0.5,  0.5],
           [ 0.5, -0.5],
           [ 0.5,  0.5]])
    """
    n, spacing = _check_grid(n_centres_per_side, spacing)
    offset = (np.arange(n) - (n - 1) / 2.0) * spacing
    first, second = np.meshgrid(offset, offset, indexing="ij")
    return np.c_[first.ravel(), second.ravel()]


def make_gaussian_grid(
    n_samples=1000,
    *,
    n_centres_per_side=5,
    spacing=2.0,
    sigma=0.05,
    random_state=None,
):
    """Mixture of isotropic Gaussians centred on a square grid in R^2.

    The defaults are the 5 x 5 grid of the discriminator-rejection-sampling
    literature: centres at ``{-4, -2, 0, 2, 4}^2``, standard deviation 0.05,
    each component equally likely.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    n_centres_per_side : int, default=5
        Number of centres along each axis.
    spacing : float, default=2.0
        Distance between neighbouring centres.
    sigma : float, default=0.05
        Standard deviation of each component.
    random_state : int, RandomState instance or None, default=None
        Seed of the sampling. ``None`` draws a fresh seed from the operating
        system without touching numpy's global random state.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
        The points.
    labels : ndarray of shape (n_samples,)
        Index of the component each point was drawn from, a row of
        :func:`gaussian_grid_centres`.

    See Also
    --------
    gaussian_grid_centres : The centres.
    grid_nearest_centre : Distance to and index of the nearest centre.

    Examples
    --------
    >>> from skvdae.datasets import make_gaussian_grid
    >>> X, labels = make_gaussian_grid(6, random_state=0)
    >>> X.shape, labels.shape
    ((6, 2), (6,))
    """
    n_samples = check_n_samples(n_samples)
    sigma = check_positive(sigma, "sigma")
    centres = gaussian_grid_centres(n_centres_per_side, spacing=spacing)
    rng = check_private_random_state(random_state)
    labels = rng.randint(len(centres), size=n_samples)
    X = centres[labels] + sigma * rng.standard_normal((n_samples, 2))
    return X, labels


def grid_nearest_centre(X, *, n_centres_per_side=5, spacing=2.0):
    """Distance to, and index of, the nearest centre of the Gaussian grid.

    The nearest point of a product grid is found coordinate by coordinate,
    exactly.

    Parameters
    ----------
    X : array-like of shape (n_points, 2)
        Points in R^2.
    n_centres_per_side : int, default=5
        Number of centres along each axis.
    spacing : float, default=2.0
        Distance between neighbouring centres.

    Returns
    -------
    distance : ndarray of shape (n_points,)
        Euclidean distance to the nearest centre.
    index : ndarray of shape (n_points,)
        Its index, a row of :func:`gaussian_grid_centres` (and a label of
        :func:`make_gaussian_grid`).

    See Also
    --------
    make_gaussian_grid : Samples from the mixture.

    Examples
    --------
    >>> from skvdae.datasets import grid_nearest_centre
    >>> distance, index = grid_nearest_centre([[-4.0, -3.9], [9.0, 0.0]])
    >>> distance
    array([0.1, 5. ])
    >>> index
    array([ 0, 22])
    """
    X = check_points(X, 2)
    n, spacing = _check_grid(n_centres_per_side, spacing)
    half = (n - 1) / 2.0
    ij = np.clip(np.rint(X / spacing + half), 0, n - 1).astype(np.intp)
    nearest = (ij - half) * spacing
    return np.linalg.norm(X - nearest, axis=1), ij[:, 0] * n + ij[:, 1]
