"""One table of the parameters the estimators share, and the shared checks.

``SHARED_CONSTRAINTS`` holds the scikit-learn parameter constraints of every
parameter that :class:`~skvdae.DiffusionMapEmbedder` and
:class:`~skvdae.VDAESampler` (and the command line, which generates its flags
from the estimators' constraints) have in common. Each estimator's
``_parameter_constraints`` includes them all.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from .nn import ACTIVATIONS, VALID_DEVICES

SHARED_CONSTRAINTS = {
    "activation": [StrOptions(set(ACTIVATIONS))],
    "batch_size": [Interval(Integral, 2, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "tol": [None, Interval(Real, 0, None, closed="left")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "device": [StrOptions(set(VALID_DEVICES))],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}

#: Parameters holding hidden layer sizes: checked by :func:`check_layer_sizes`.
LAYER_SIZES = ["array-like"]


def check_layer_sizes(sizes, name):
    """A list of positive ints from a hidden-layer-sizes parameter.

    Raises
    ------
    ValueError
        For an empty sequence, a value that is not a positive integer (``64.5``
        is refused, not truncated) or a nested sequence.

    Examples
    --------
    >>> from skvdae._validation import check_layer_sizes
    >>> check_layer_sizes((64, 64), "hidden_layer_sizes")
    [64, 64]
    >>> try:
    ...     check_layer_sizes((64.5,), "hidden_layer_sizes")
    ... except ValueError as error:
    ...     print(error)
    hidden_layer_sizes must be a non-empty sequence of positive integers, got (64.5,).
    """
    array = np.asarray(sizes)
    if (
        array.ndim != 1
        or array.size == 0
        or not np.issubdtype(array.dtype, np.integer)
        or np.any(array < 1)
    ):
        raise ValueError(
            f"{name} must be a non-empty sequence of positive integers, got {sizes!r}."
        )
    return [int(size) for size in array]


def check_count(value, name, minimum):
    """An int ``>= minimum`` from a method argument (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, Integral | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


#: Values beyond this (divided by the square root of the number of features)
#: make squared distances overflow float64 (about 1.8e308).
MAX_ABS_VALUE = 1e150

#: Training data whose every feature spans less than this has squared
#: distances that underflow to zero.
MIN_SPREAD = 1e-150

FLOAT_DTYPES = [np.float64, np.float32]


def check_data(estimator, X, *, reset, what="X", ensure_min_samples=1):
    """``validate_data`` for the estimators, then the data's scale.

    The estimators work with squared distances in float64: inputs whose
    squared norms would overflow (and training data whose squared distances
    would underflow) are refused with a message saying so, rather than
    turning into NaN or a misleading error deep inside a neighbour search.

    Returns
    -------
    X : ndarray, float64 or float32
    """
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=FLOAT_DTYPES,
        ensure_min_samples=ensure_min_samples,
    )
    if X.size == 0:
        return X
    largest = float(np.abs(X).max())
    limit = MAX_ABS_VALUE / np.sqrt(X.shape[1])
    if largest > limit:
        raise ValueError(
            f"{what} holds values up to {largest:.3g}: squared distances between "
            f"such points overflow float64 (the limit is {limit:.3g} for "
            f"{X.shape[1]} features). Rescale the data, e.g. with "
            "sklearn.preprocessing.StandardScaler."
        )
    if reset:
        spread = float(np.ptp(X, axis=0).max())
        if 0.0 < spread < MIN_SPREAD:
            raise ValueError(
                f"{what} spans at most {spread:.3g} in any feature: squared "
                "distances between its samples underflow float64. Rescale the "
                "data, e.g. with sklearn.preprocessing.StandardScaler."
            )
    return X
