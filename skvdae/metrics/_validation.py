"""The one input check of the metrics: two float arrays that must agree."""

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
