"""Device choice, seeding and dtype handling shared by the estimators.

Nothing here touches global torch state: randomness flows through explicit
``torch.Generator`` objects, and network initialisation runs inside
``torch.random.fork_rng`` so that the caller's global RNG is unchanged.
"""

import contextlib
import copy
import warnings

import numpy as np
import torch

from ..graph import row_blocks

VALID_DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device):
    """Turn the ``device`` parameter into a ``torch.device``.

    Raises
    ------
    ValueError
        For ``'cuda'`` on a machine without a usable CUDA device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but CUDA is not available on this "
            "machine; use device='cpu' or device='auto'."
        )
    return torch.device(device)


def seed_from(random_state):
    """A 63-bit integer seed drawn from a ``numpy.random.RandomState``."""
    return int(random_state.randint(0, np.iinfo(np.int32).max)) * 2**31 + int(
        random_state.randint(0, np.iinfo(np.int32).max)
    )


def make_generator(seed, device):
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


@contextlib.contextmanager
def seeded_torch(seed):
    """Seed torch's CPU RNG for the block and restore the caller's state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def inference_copy(module):
    """A float64 CPU copy of ``module`` in eval mode, with gradients disabled.

    Used after training: float64 makes a row's output independent of the batch
    it is computed in (to round-off), and a CPU copy pickles and loads on a
    machine without CUDA.
    """
    module = copy.deepcopy(module).to(device="cpu", dtype=torch.float64).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def predict_numpy(module, X, batch_size=65536, method=None):
    """Forward ``X`` (numpy) through a float64 CPU module, batched, no grad.

    ``method`` names another method of the module to call instead of
    ``forward`` (e.g. ``"embed_features"``).
    """
    function = module if method is None else getattr(module, method)
    out = None
    with torch.no_grad():
        # A batch of zero rows still runs once, so that the output has its width.
        for start in range(0, max(X.shape[0], 1), batch_size):
            batch = torch.tensor(X[start : start + batch_size], dtype=torch.float64)
            values = function(batch).numpy()
            if out is None:  # written in place: no list of batches to join
                out = np.empty((X.shape[0], *values.shape[1:]))
            out[start : start + len(values)] = values
    return out


# Stored entries per block of sparse_matmul: bounds its temporaries (the
# float64 copy of a float32 matrix's values, 8 MiB, and the sparse kernel's
# own). Blocks of 2**22 raised the 1e6 loop's peak 61 MB above scipy's
# product; these are as fast.
_PRODUCT_ENTRIES = 2**20


def sparse_matmul(matrix, dense):
    """``matrix @ dense`` in float64 for a scipy CSR matrix, on torch's threads.

    scipy's sparse product runs on one thread; torch's CPU kernel (MKL's where
    torch is built with it) splits the rows over ``torch.get_num_threads()``
    threads: 0.40 s against 2.24 s (scipy, which first copies the values to
    float64) for the 6.7e7 float32 entries of the noisy loop's graph at 10^5
    samples times 64 columns, on two cores. The values enter in float64
    whatever their stored dtype, a block of at most ``_PRODUCT_ENTRIES``
    entries at a time, so that a float32 matrix is never copied whole. The
    result can differ from scipy's in the last bits (the order of the sums).

    Parameters
    ----------
    matrix : sparse matrix of shape (n_rows, n_columns)
        Converted to CSR if it is not.
    dense : ndarray or CPU torch.Tensor of shape (n_columns,) or \
            (n_columns, n_outputs)
        A tensor must be float64. Callers that go on computing with the
        result pass tensors: numpy's BLAS threads, left spinning after a
        call, slow torch's next parallel product by 2x on two cores.

    Returns
    -------
    ndarray or torch.Tensor of shape (n_rows,) or (n_rows, n_outputs)
        float64, of the kind of ``dense``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from skvdae.nn import sparse_matmul
    >>> M = sparse.csr_matrix(np.array([[1.0, 0.0], [2.0, 3.0]], dtype=np.float32))
    >>> sparse_matmul(M, np.array([1.0, 1.0])).tolist()
    [1.0, 5.0]
    """
    matrix = matrix.tocsr()
    tensor = isinstance(dense, torch.Tensor)
    if tensor and (dense.dtype != torch.float64 or dense.device.type != "cpu"):
        raise TypeError(
            f"sparse_matmul takes a float64 CPU tensor, got {dense.dtype} on "
            f"{dense.device}"
        )
    columns = dense if tensor else torch.as_tensor(np.asarray(dense, np.float64))
    if columns.ndim not in (1, 2) or columns.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"cannot multiply a sparse matrix of shape {matrix.shape} with an "
            f"array of shape {tuple(columns.shape)}"
        )
    columns = columns.reshape(columns.shape[0], -1).contiguous()
    out = torch.empty((matrix.shape[0], columns.shape[1]), dtype=torch.float64)
    indptr = matrix.indptr
    index_dtype = np.int64 if matrix.indices.dtype == np.int64 else np.int32
    for start, stop in row_blocks(indptr, matrix.shape[0], _PRODUCT_ENTRIES):
        low, high = int(indptr[start]), int(indptr[stop])
        block = _csr_tensor(
            (indptr[start : stop + 1] - low).astype(index_dtype, copy=False),
            matrix.indices[low:high].astype(index_dtype, copy=False),
            matrix.data[low:high].astype(np.float64, copy=False),
            (stop - start, matrix.shape[1]),
        )
        torch.mm(block, columns, out=out[start:stop])
    out = out.reshape(matrix.shape[0], *columns.shape[1:][: dense.ndim - 1])
    return out if tensor else out.numpy()


def _csr_tensor(indptr, indices, data, shape):
    with warnings.catch_warnings():
        # torch says once per process that sparse CSR support is "beta".
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        return torch.sparse_csr_tensor(
            torch.as_tensor(indptr),
            torch.as_tensor(indices),
            torch.as_tensor(data),
            size=shape,
            check_invariants=False,
        )
