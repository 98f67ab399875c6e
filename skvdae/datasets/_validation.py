"""Argument checks shared by the data set generators."""

import numbers

import numpy as np


def check_n_samples(n_samples, name="n_samples"):
    """Return ``n_samples`` as an int, or raise ``ValueError`` unless it is >= 1."""
    if (
        isinstance(n_samples, bool)
        or not isinstance(n_samples, numbers.Integral)
        or n_samples <= 0
    ):
        raise ValueError(f"{name} must be a positive integer, got {n_samples!r}.")
    return int(n_samples)


def check_positive(value, name, *, allow_zero=False):
    """Return ``value`` as a float, or raise ``ValueError`` unless it is > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    ok = value >= 0.0 if allow_zero else value > 0.0
    if not (ok and np.isfinite(value)):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {bound} number, got {value!r}.")
    return value


def check_points(X, n_features, name="X"):
    """Return ``X`` as a float 2-D array with ``n_features`` columns."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1 and X.shape[0] == n_features:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(
            f"{name} must have shape (n_points, {n_features}), got {X.shape}."
        )
    return X
