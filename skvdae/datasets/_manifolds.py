"""Synthetic manifolds with known intrinsic parameters."""

import numpy as np
from scipy.integrate import cumulative_trapezoid
from sklearn.utils import check_random_state


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
        Seed of the sampling.

    Returns
    -------
    X : ndarray of shape (n_samples, 3)
    t : ndarray of shape (n_samples,)
        The curve parameter of each point, in ``[0, 2 pi)``.

    Examples
    --------
    >>> from skvdae.datasets import make_loop
    >>> X, t = make_loop(5, random_state=0)
    >>> X.shape, t.shape
    ((5, 3), (5,))
    """
    rng = check_random_state(random_state)
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
    rng = check_random_state(random_state)
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
