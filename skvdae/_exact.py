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
        Number of linear solves of the shift-invert iteration (0 when dense).
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
        laplacian = (sparse.identity(n_samples, format="csc") - symmetric).tocsc()
        shifted = splu(
            (laplacian - _SHIFT * sparse.identity(n_samples, format="csc")).tocsc()
        )
        counter = {"solves": 0}

        def solve(x):
            counter["solves"] += 1
            return shifted.solve(np.asarray(x, dtype=np.float64).ravel())

        inverse = LinearOperator((n_samples, n_samples), matvec=solve, dtype=float)
        v0 = random_state.uniform(-1.0, 1.0, size=n_samples)
        _, vectors = eigsh(
            laplacian, k=n_eigenvectors, sigma=_SHIFT, which="LM", OPinv=inverse, v0=v0
        )
        n_solves = counter["solves"]
    return vectors / np.sqrt(graph.degrees)[:, None], n_solves


def nystrom_extension(nn_index, X, bandwidth, radius, log_weights, train_psi):
    """``sum_j p(x, x_j) psi(x_j)`` for new points ``x``: ``lambda psi(x)``.

    ``psi_k(x) = (1 / lambda_k) sum_j p(x, x_j) psi_k(x_j)``; the caller divides
    by ``lambda_k`` or, for the diffusion map, multiplies by ``lambda_k^(t - 1)``.
    ``log_weights`` is ``-alpha log q`` on the training set.
    """
    rows = transition_rows(nn_index, X, bandwidth, radius, log_weights)
    return rows @ train_psi
