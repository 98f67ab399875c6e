"""Sparse symmetric eigensolvers of the kernel graph, one component at a time."""

import numpy as np
from scipy import linalg, sparse
from scipy.sparse.linalg import LinearOperator, eigsh, splu

from ..graph import scale_symmetric

# Below this size (or for a large share of the spectrum) a dense solve is faster
# and avoids ARPACK's requirement k < n.
_DENSE_MAX_SAMPLES = 400

# A graph with more than this share of all pairs is "dense": its sparse LU
# costs as much as a dense factorisation, while a product with it costs its
# entries, and a kernel that wide has a quickly decaying spectrum, where plain
# Lanczos converges in few products (MNIST 5k's complete graph: 7 s of LU).
_DENSE_GRAPH_SHARE = 0.25

# A dense graph of at most this many bytes as a float64 array is solved with a
# dense operator: a product with it reads 8 bytes an entry where the CSR reads
# 12, contiguously (MNIST 5k's complete graph: 26 ms -> 8 ms a product).
_DENSE_OPERATOR_BYTES = 2**29

# Shift of the shift-invert Lanczos iteration on the normalised Laplacian. The
# spectrum lies in [0, 2] and the wanted eigenvalues near 0, some within 1e-6 of
# it for large n; the shift keeps L - sigma I non-singular at eigenvalue 0.
_SHIFT = -1e-8


def symmetric_kernel_operator(affinity, degrees):
    """``A = D^-1/2 W^(alpha) D^-1/2``, similar to the Markov matrix ``P``.

    A float64 CSR matrix; a dense float64 array for a dense graph (more than
    ``_DENSE_GRAPH_SHARE`` of all pairs) that fits in
    ``_DENSE_OPERATOR_BYTES``. Both are symmetric to the bit.
    """
    scale = 1.0 / np.sqrt(degrees)
    n_samples = affinity.shape[0]
    if (
        affinity.nnz > _DENSE_GRAPH_SHARE * n_samples**2
        and 8 * n_samples**2 <= _DENSE_OPERATOR_BYTES
    ):
        dense = affinity.toarray().astype(np.float64, copy=False)
        # Each entry times the product s_i s_j, as in the sparse scaling.
        block = max(1, 2**16 // n_samples)
        for start in range(0, n_samples, block):
            rows = slice(start, start + block)
            dense[rows] *= scale[rows, None] * scale[None, :]
        return dense
    symmetric = sparse.csr_matrix(affinity, dtype=np.float64, copy=True)
    return scale_symmetric(symmetric, scale)


def top_eigenvectors(graph, n_eigenvectors, random_state):
    """Right eigenvectors ``psi`` of ``P`` for the largest eigenvalues.

    The graph's connected components are solved one at a time (``P`` is block
    diagonal): each contributes its constant vector, of eigenvalue 1, and its
    leading non-trivial eigenvectors; the union is sorted. This finds every
    copy of the eigenvalue 1 exactly, which a Lanczos iteration on the whole
    graph can miss.

    Parameters
    ----------
    graph : DiffusionGraph
    n_eigenvectors : int
    random_state : RandomState
        Seeds ARPACK's starting vectors.

    Returns
    -------
    psi : ndarray of shape (n_samples, n_eigenvectors)
        ``D^-1/2 v`` for the eigenvectors ``v`` of ``A``, each supported on one
        component, by decreasing eigenvalue.
    eigenvalues : ndarray of shape (n_eigenvectors,)
        Their eigenvalues, decreasing.
    n_solves : int
        Number of linear solves of the shift-invert iterations, or of products
        with ``A`` where the factorisation did not fit in memory and plain
        Lanczos took over; 0 for dense solves.
    """
    labels = graph.component_labels
    n_samples = labels.size
    columns, values, n_solves = [], [], 0
    for component in range(graph.n_connected_components):
        rows = np.flatnonzero(labels == component)
        affinity = graph.affinity
        if rows.size < n_samples:
            affinity = affinity[rows][:, rows]
        degrees = graph.degrees[rows]
        wanted = min(n_eigenvectors, rows.size)
        if wanted == 1:
            vectors, eigenvalues = np.sqrt(degrees)[:, None], np.ones(1)
        else:
            vectors, eigenvalues, solves = _component_eigenvectors(
                symmetric_kernel_operator(affinity, degrees), wanted, random_state
            )
            n_solves += solves
        for vector, value in zip(vectors.T, eigenvalues, strict=True):
            column = np.zeros(n_samples)
            column[rows] = vector / np.sqrt(degrees)
            columns.append(column)
            values.append(value)
    values = np.asarray(values)
    keep = np.argsort(-values, kind="stable")[:n_eigenvectors]
    return np.stack([columns[i] for i in keep], axis=1), values[keep], n_solves


def _component_eigenvectors(symmetric, n_eigenvectors, random_state):
    n_samples = symmetric.shape[0]
    dense = isinstance(symmetric, np.ndarray)
    if n_samples <= _DENSE_MAX_SAMPLES or 3 * n_eigenvectors >= n_samples:
        eigenvalues, vectors = linalg.eigh(
            symmetric if dense else symmetric.toarray(),
            subset_by_index=[n_samples - n_eigenvectors, n_samples - 1],
        )
        return vectors, eigenvalues, 0
    v0 = random_state.uniform(-1.0, 1.0, size=n_samples)
    if dense or symmetric.nnz > _DENSE_GRAPH_SHARE * n_samples**2:
        vectors, n_solves = _plain_lanczos(symmetric, n_eigenvectors, v0)
        eigenvalues = np.einsum("ij,ij->j", vectors, symmetric @ vectors)
        return vectors, eigenvalues, n_solves
    try:
        vectors, n_solves = _shift_invert_lanczos(symmetric, n_eigenvectors, v0)
    except MemoryError:
        # Dense graphs in 3 or more intrinsic dimensions can make the sparse
        # factorisation too large; plain Lanczos needs only products with A.
        vectors, n_solves = _plain_lanczos(symmetric, n_eigenvectors, v0)
    eigenvalues = np.einsum("ij,ij->j", vectors, symmetric @ vectors)
    return vectors, eigenvalues, n_solves


def _shift_invert_lanczos(symmetric, n_eigenvectors, v0):
    """Eigenvectors of ``L = I - A`` nearest 0, by shift-invert with a sparse LU."""
    n_samples = symmetric.shape[0]
    shifted = _shifted_laplacian(symmetric)
    # The shifted Laplacian is symmetric positive definite: a symmetric ordering
    # with diagonal pivots roughly halves the factorisation time.
    factor = splu(
        shifted,
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    counter = {"solves": 0}

    def solve(x):
        counter["solves"] += 1
        return factor.solve(np.asarray(x, dtype=np.float64).ravel())

    inverse = LinearOperator((n_samples, n_samples), matvec=solve, dtype=float)
    # With OPinv, eigsh reads only the shape and dtype of its matrix.
    _, vectors = eigsh(
        shifted, k=n_eigenvectors, sigma=_SHIFT, which="LM", OPinv=inverse, v0=v0
    )
    return vectors, counter["solves"]


def _shifted_laplacian(symmetric):
    """``(I - A) - _SHIFT I`` in CSC, from the CSR of ``A`` (symmetric to the bit).

    The CSR arrays of a symmetric matrix are its CSC arrays: no conversion,
    and no sparse sums where every row stores its diagonal (the kernel
    graph's self-loops).
    """
    n_samples = symmetric.shape[0]
    rows = np.repeat(np.arange(n_samples), np.diff(symmetric.indptr))
    diagonal = symmetric.indices == rows
    if np.count_nonzero(diagonal) != n_samples:
        identity = sparse.identity(n_samples, format="csr")
        return ((identity - symmetric) - _SHIFT * identity).tocsc()
    data = -symmetric.data
    data[diagonal] = (1.0 - symmetric.data[diagonal]) - _SHIFT
    # Own index arrays: splu may sort them in place.
    return sparse.csc_matrix(
        (data, symmetric.indices.copy(), symmetric.indptr.copy()),
        shape=symmetric.shape,
    )


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
