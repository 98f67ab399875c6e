"""Data files of the command line: ``.npy`` and ``.csv``, in and out."""

import csv
import os

import numpy as np

from ._errors import DataError, UsageError

_DATA_SUFFIXES = (".npy", ".csv")


def suffix(path):
    return os.path.splitext(os.fspath(path))[1].lower()


def check_output_suffix(path, option="--out"):
    if suffix(path) not in _DATA_SUFFIXES:
        raise UsageError(f"{option} {path!r}: unsupported suffix; use .npy or .csv.")


def read_data(path):
    """A 2-D float64 array from a ``.npy`` or ``.csv`` file.

    Parameters
    ----------
    path : str
        The file. A CSV file may start with a header row (any first row that does
        not parse as numbers); its separator is a comma, semicolon, tab or
        whitespace.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)

    Raises
    ------
    DataError
        For a missing or unreadable file, non-numeric values, a ragged CSV, an
        array that is not 2-D or has no rows, or non-finite values.
    """
    kind = suffix(path)
    if kind not in _DATA_SUFFIXES:
        raise DataError(f"{path!r}: unsupported data file; use .npy or .csv.")
    if not os.path.isfile(path):
        raise DataError(f"{path!r}: no such file.")
    if kind == ".npy":
        try:
            # Memory-mapped: processes of a data-parallel fit share the pages.
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise DataError(
                f"{path!r}: not a readable .npy array ({error})."
            ) from error
        if not isinstance(X, np.ndarray) or X.dtype.kind not in "biuf":
            raise DataError(
                f"{path!r}: expected a numeric array, got dtype "
                f"{getattr(X, 'dtype', type(X).__name__)}."
            )
    else:
        X = _read_csv(path)
    if X.ndim != 2:
        raise DataError(
            f"{path!r}: expected a 2-D array (n_samples, n_features), got shape "
            f"{X.shape}."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path!r}: no data (shape {X.shape}).")
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise DataError(f"{path!r}: contains NaN or infinite values.")
    return X


def _read_csv(path):
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path!r}: cannot read the CSV file ({error}).") from error
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise DataError(f"{path!r}: the CSV file is empty.")
    first = numbered[0][1]
    delimiter = next((d for d in (",", ";", "\t") if d in first), None)

    def split(line):
        if delimiter is None:
            return line.split()
        return [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter))]

    rows = [(n, split(line)) for n, line in numbered]
    if not _all_numbers(rows[0][1]):
        rows = rows[1:]  # a header
        if not rows:
            raise DataError(f"{path!r}: the CSV file has a header but no data.")
    width = len(rows[0][1])
    values = np.empty((len(rows), width))
    for i, (n, cells) in enumerate(rows):
        if len(cells) != width:
            raise DataError(
                f"{path!r}, line {n}: {len(cells)} values, expected {width}."
            )
        for j, cell in enumerate(cells):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise DataError(
                    f"{path!r}, line {n}, column {j + 1}: {cell!r} is not a number."
                ) from None
    return values


def _all_numbers(cells):
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return True


def write_array(path, array):
    """Write ``array`` as ``.npy`` or comma-separated ``.csv`` (full precision)."""
    try:
        if suffix(path) == ".npy":
            np.save(path, array)
        else:
            np.savetxt(path, np.atleast_2d(array), delimiter=",", fmt="%.17g")
    except OSError as error:
        raise DataError(f"{path!r}: cannot write ({error}).") from error
    return path
