"""Exact diffusion maps: sparse symmetric eigensolver and Nystrom extension."""

import numpy as np
from scipy import linalg, sparse
from scipy.sparse.linalg import LinearOperator, eigsh, splu

from ._graph import transition_rows

# Below this size (or for a large share of the spectrum) a dense solve is faster
# and avoids ARPACK's requirement k < n.
_DENSE_MAX_SAMPLES = 400

# Shift of the shift-invert Lanczos iteration on the normalised Laplacian. The
# spectrum lies in [0, 2] and the wanted eigenvalues near 0, some within 1e-6 of
# it for large n; the shift keeps L - sigma I non-singular at eigenvalue 0.
_SHIFT = -1e-8

# Query points per block of the Nystrom extension, which bounds its memory.
_NYSTROM_CHUNK = 4096


def symmetric_kernel_operator(graph):
    """``A = D^-1/2 W^(alpha) D^-1/2``, similar to the Markov matrix ``P``."""
    inv_sqrt = 1.0 / np.sqrt(graph.degrees)
    return (sparse.diags(inv_sqrt) @ graph.affinity @ sparse.diags(inv_sqrt)).tocsc()


def top_eigenvectors(graph, n_eigenvectors, random_state):
    """Right eigenvectors ``psi`` of ``P`` for the largest eigenvalues.

    Parameters
    ----------
    graph : DiffusionGraph
    n_eigenvectors : int
    random_state : RandomState
        Seeds ARPACK's starting vector.

    Returns
    -------
    psi : ndarray of shape (n_samples, n_eigenvectors)
        ``D^-1/2 v`` for the eigenvectors ``v`` of ``A``, any order.
    n_solves : int
        Number of linear solves of the shift-invert iteration, or of products
        with ``A`` when the factorisation did not fit in memory and plain
        Lanczos took over; 0 for a dense solve.
    """
    symmetric = symmetric_kernel_operator(graph)
    n_samples = symmetric.shape[0]
    if n_samples <= _DENSE_MAX_SAMPLES or 3 * n_eigenvectors >= n_samples:
        _, vectors = linalg.eigh(
            symmetric.toarray(),
            subset_by_index=[n_samples - n_eigenvectors, n_samples - 1],
        )
        n_solves = 0
    else:
        v0 = random_state.uniform(-1.0, 1.0, size=n_samples)
        try:
            vectors, n_solves = _shift_invert_lanczos(symmetric, n_eigenvectors, v0)
        except MemoryError:
            # Dense graphs in 3 or more intrinsic dimensions can make the sparse
            # factorisation too large; plain Lanczos needs only products with A.
            vectors, n_solves = _plain_lanczos(symmetric, n_eigenvectors, v0)
    return vectors / np.sqrt(graph.degrees)[:, None], n_solves


def _shift_invert_lanczos(symmetric, n_eigenvectors, v0):
    """Eigenvectors of ``L = I - A`` nearest 0, by shift-invert with a sparse LU."""
    n_samples = symmetric.shape[0]
    identity = sparse.identity(n_samples, format="csc")
    laplacian = (identity - symmetric).tocsc()
    # The shifted Laplacian is symmetric positive definite: a symmetric ordering
    # with diagonal pivots roughly halves the factorisation time.
    factor = splu(
        (laplacian - _SHIFT * identity).tocsc(),
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    counter = {"solves": 0}

    def solve(x):
        counter["solves"] += 1
        return factor.solve(np.asarray(x, dtype=np.float64).ravel())

    inverse = LinearOperator((n_samples, n_samples), matvec=solve, dtype=float)
    _, vectors = eigsh(
        laplacian, k=n_eigenvectors, sigma=_SHIFT, which="LM", OPinv=inverse, v0=v0
    )
    return vectors, counter["solves"]


def _plain_lanczos(symmetric, n_eigenvectors, v0):
    """Largest eigenvectors of ``A`` by Lanczos with products only (no factor)."""
    counter = {"products": 0}

    def product(x):
        counter["products"] += 1
        return symmetric @ np.asarray(x, dtype=np.float64).ravel()

    operator = LinearOperator(symmetric.shape, matvec=product, dtype=float)
    _, vectors = eigsh(
        operator,
        k=n_eigenvectors,
        which="LA",
        v0=v0,
        ncv=min(symmetric.shape[0], max(4 * n_eigenvectors + 1, 40)),
        maxiter=100 * symmetric.shape[0],
    )
    return vectors, counter["products"]


def nystrom_extension(nn_index, X, bandwidth, radius, log_weights, train_psi):
    """``sum_j p(x, x_j) psi(x_j)`` for new points ``x``: ``lambda psi(x)``.

    ``psi_k(x) = (1 / lambda_k) sum_j p(x, x_j) psi_k(x_j)``; the caller divides
    by ``lambda_k`` or, for the diffusion map, multiplies by ``lambda_k^(t - 1)``.
    ``log_weights`` is ``-alpha log q`` on the training set.
    """
    out = np.empty((X.shape[0], train_psi.shape[1]))
    for start in range(0, X.shape[0], _NYSTROM_CHUNK):
        chunk = slice(start, start + _NYSTROM_CHUNK)
        rows = transition_rows(nn_index, X[chunk], bandwidth, radius, log_weights)
        out[chunk] = rows @ train_psi
    return out
