"""The input check of the metrics, and the one unit their arithmetic works in.

:func:`check_two_arrays` is the one input check: two float arrays that must
agree. :func:`to_unit_scale` brings data of any finite scale to about 1, so
that squared distances neither overflow nor underflow.
"""

import numpy as np
from sklearn.utils import check_array


def check_two_arrays(
    A, B, names=("A", "B"), match="features", min_samples=1, ensure_min_samples=1
):
    """Two finite 2-D float64 arrays that agree in rows or in columns.

    Parameters
    ----------
    A, B : array-like
    names : tuple of str
        The arrays' names in messages.
    match : {'features', 'samples'}
        What the arrays must share: their number of columns (two samples of
        one space) or of rows (paired points of two spaces).
    min_samples : int
        Rows each array needs (checked after the arrays agree).
    ensure_min_samples : int
        Rows each array needs before anything else (scikit-learn's check).

    Returns
    -------
    A, B : ndarrays
    """
    a_name, b_name = names
    A, B = (
        check_array(
            array,
            dtype=np.float64,
            input_name=name,
            ensure_min_samples=ensure_min_samples,
        )
        for array, name in ((A, a_name), (B, b_name))
    )
    axis, what = (1, "features") if match == "features" else (0, "samples (rows)")
    if A.shape[axis] != B.shape[axis]:
        raise ValueError(
            f"{a_name} and {b_name} must have the same number of {what}; got "
            f"{A.shape[axis]} and {B.shape[axis]}."
        )
    for name, array in ((a_name, A), (b_name, B)):
        if array.shape[0] < min_samples:
            raise ValueError(
                f"{name} needs at least {min_samples} samples; got {array.shape[0]}."
            )
    return A, B


def _scale_exponent(arrays):
    """The exponent e with max |value| / 2**e in [0.5, 1) (0 for all-zero arrays)."""
    largest = max(np.max(np.abs(array), initial=0.0) for array in arrays)
    return int(np.frexp(largest)[1])


def to_unit_scale(arrays, centre=None):
    """Express arrays in one common unit, a power of two, where they are about 1.

    Squared distances and norms of data at scale 1e200 overflow float64 and at
    scale 1e-200 underflow to 0, so the metrics work on the arrays divided by
    ``2**exponent``, which brings their largest absolute value into [0.5, 1).
    A power of two divides exactly (except values over 2**1000 times smaller
    than the largest, which lose digits as subnormal numbers), so a metric
    invariant to a common scaling gives the same result as on the arrays
    themselves.

    Parameters
    ----------
    arrays : sequence of ndarrays
        Finite float arrays, all in the same space.

    centre : {'first', 'means'} or None, default=None
        The point subtracted from every array before the final scaling (it
        reduces cancellation in the dot-product expansion of squared
        distances): the mean of the first array, the mean of the arrays'
        means, or none.

    Returns
    -------
    scaled : list of ndarrays
        ``(array - shift) / 2**exponent`` for each array, for some ``shift``.

    exponent : int
        The common unit is ``2**exponent``: distances between rows of
        ``scaled`` times ``2**exponent`` are the distances between the rows of
        ``arrays`` (up to the rounding of the centring). Use :func:`numpy.ldexp`,
        since ``2**exponent`` itself may overflow.
    """
    exponent = _scale_exponent(arrays)
    scaled = [np.ldexp(array, -exponent) for array in arrays]
    if centre is None:
        return scaled, exponent
    if centre == "first":
        shift = scaled[0].mean(axis=0)
    else:
        shift = np.mean([array.mean(axis=0) for array in scaled], axis=0)
    # The scaled arrays are copies: the rest is done in place.
    for array in scaled:
        array -= shift
    # Data far from the origin compared with its spread shrink after centring:
    # bring them back to about 1.
    spread_exponent = _scale_exponent(scaled)
    for array in scaled:
        np.ldexp(array, -spread_exponent, out=array)
    return scaled, exponent + spread_exponent
