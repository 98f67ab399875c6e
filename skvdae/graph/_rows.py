"""CSR arrays that grow in place, block of rows by block of rows."""

import numpy as np
from scipy import sparse

# Values narrowed per slice by narrowed_in_place (an 8 MB temporary at most).
_NARROW_ENTRIES = 2**20


def narrowed_in_place(values):
    """``values`` (float64) rounded to float32 in their own memory, cut to half.

    Each slice is written over the first half of the bytes already read, and
    the array then shrinks in place (``realloc``), so the float64 and float32
    copies never exist side by side. ``values`` must own its memory, or be a
    view of a whole array that does (as a scipy matrix's ``data``); anything
    else is copied instead. ``values`` and its array are no longer valid
    after the call (the memory moves).

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph._rows import narrowed_in_place
    >>> narrowed_in_place(np.array([0.1, 2.0, 3.0])).tolist() == [
    ...     float(np.float32(0.1)), 2.0, 3.0]
    True
    """
    # A view of a whole array (as scipy keeps a matrix's data) narrows that.
    owner = values if values.base is None else values.base
    if not (
        isinstance(owner, np.ndarray)
        and owner.flags.owndata
        and owner.dtype == np.float64
        and owner.shape == values.shape == (owner.size,)
        and owner.ctypes.data == values.ctypes.data
    ):
        return values.astype(np.float32)
    values, size = owner, owner.size
    narrow = values.view(np.float32)
    for start in range(0, size, _NARROW_ENTRIES):
        stop = min(start + _NARROW_ENTRIES, size)
        # numpy buffers the source where it overlaps the destination.
        narrow[start:stop] = values[start:stop]
    del narrow
    values.resize(-(-size // 2), refcheck=False)
    return values.view(np.float32)[:size]


class GrowingRows:
    """The CSR arrays of a matrix filled block of consecutive rows at a time.

    The index and value arrays grow in place (realloc moves pages, it does not
    copy them) to about the size that the rows so far project: no counting
    pass, no list of blocks to join into a second copy of the matrix. Indices
    are 32-bit until they pass ``2**31``; values are float64 and switch to
    float32 once the matrix passes ``float32_beyond`` entries (if given), the
    entries so far rounded once.

    Parameters
    ----------
    n_rows, n_columns : int
    first_row : int, default=0
        The number of the first row: blocks come as rows ``first_row ..``.
    float32_beyond : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph._rows import GrowingRows
    >>> rows = GrowingRows(3, 3)
    >>> rows.append(0, 2, np.array([1, 2]), np.array([0, 0, 1]), np.ones(3))
    >>> rows.append(2, 3, np.array([1]), np.array([2]), np.array([5.0]))
    >>> rows.tocsr().toarray().tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 5.0]]
    """

    def __init__(self, n_rows, n_columns, first_row=0, float32_beyond=None):
        self.shape = (n_rows, n_columns)
        self.first_row = first_row
        self.float32_beyond = float32_beyond
        self.indices = np.empty(0, dtype=np.int32)
        self.data = np.empty(0, dtype=np.float64)
        self.indptr = np.zeros(n_rows + 1, dtype=np.int64)
        self.filled = 0

    def append(self, start, stop, lengths, columns, values):
        """Rows ``start .. stop - 1`` (numbered from ``first_row``): ``lengths``
        entries each, their ``columns`` and ``values`` row after row."""
        end = self.filled + columns.size
        if self.float32_beyond is not None and end > self.float32_beyond:
            self._cast("data", np.float32)
        if end >= np.iinfo(self.indices.dtype).max:
            self._cast("indices", np.int64)
        if end > self.indices.size:
            done = stop - self.first_row
            projected = int(1.05 * end * self.shape[0] / done)
            capacity = max(end, projected, int(1.5 * self.indices.size))
            self.indices.resize(capacity, refcheck=False)
            self.data.resize(capacity, refcheck=False)
        self.indices[self.filled : end] = columns
        self.data[self.filled : end] = values
        first = start - self.first_row
        np.cumsum(lengths, out=self.indptr[first + 1 : stop - self.first_row + 1])
        self.indptr[first + 1 : stop - self.first_row + 1] += self.filled
        self.filled = end

    def _cast(self, name, dtype):
        if getattr(self, name).dtype != dtype:
            size = getattr(self, name).size
            # The old array goes before the new one grows: one copy at a time.
            setattr(self, name, getattr(self, name)[: self.filled].astype(dtype))
            getattr(self, name).resize(size, refcheck=False)

    def tocsr(self):
        """The matrix, on the arrays themselves (cut to their entries)."""
        self.indices.resize(self.filled, refcheck=False)
        self.data.resize(self.filled, refcheck=False)
        matrix = sparse.csr_matrix(self.shape, dtype=self.data.dtype)
        matrix.indptr = self.indptr.astype(self.indices.dtype)
        matrix.indices, matrix.data = self.indices, self.data
        return matrix
