"""Sparse symmetric eigensolvers of the kernel graph, one component at a time."""

from contextlib import contextmanager

import numpy as np
from scipy import linalg, sparse
from scipy.sparse.csgraph import breadth_first_order
from scipy.sparse.linalg import LinearOperator, eigsh, splu

from ..graph import STAYING_SHARE, diagonal_positions, scale_symmetric

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

# The choice between shift-invert (a sparse LU, then few solves) and plain
# Lanczos (products with A only) compares their costs in units of one product
# with A. The LU's flops on the whole graph are extrapolated from those of two
# graph balls (breadth-first patches) of _PATCH and 4 * _PATCH samples, at
# least twice the mean row length each: about linear growth on curves, faster
# on surfaces, near cubic where the graph is locally dense in many dimensions
# (a 3-D ball of 2e4 points: 67 s of LU against 3.6 s of plain Lanczos; 20-D
# clusters of 4e4 points: an LU that does not finish).
_PATCH = 256
# One LU flop in products' entries (measured 0.17-0.9 ns a flop, against
# 0.66-1.0 ns an entry of a product): low, which favours the factorisation.
_LU_FLOP_COST = 0.25
# Plain Lanczos rarely converges in fewer products than this; a cheaper LU is
# taken at once.
_MIN_LANCZOS_PRODUCTS = 200
# An LU that costs more than this many products even at linear growth from
# the first patch is not tried: plain Lanczos runs to convergence.
_MAX_LANCZOS_PRODUCTS = 10_000

# SuperLU, as scipy builds it, first reserves 30 times the matrix's entries
# for the factors, counted in a 32-bit int: beyond this many it refuses with
# "Not enough memory", and only after ordering the columns (``loop100``, 1.2e8
# entries: 31 s lost, then plain Lanczos).
_SUPERLU_FILL_GUESS = 30
_SUPERLU_MAX_RESERVE = np.iinfo(np.int32).max

# Plain Lanczos stops after this many products where no factorisation is
# affordable, with an error that says why. Smooth manifolds converge in 76 to
# 2,900 (bench_eigensolver; the loop at 2e4); a spectrum crowded at 1 does
# not converge in any number a fit can afford: 60k clusters in 20-D whose
# bandwidth the edge bound lowered 17 times left 28,000 of the 38,000 samples
# of one cluster keeping more than 99% of their kernel mass, and no Ritz
# value converged in 2,900 products, with 40 or 160 Lanczos vectors.
_MAX_PLAIN_PRODUCTS = 20_000


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
    # Own float64 values (scaled in place, and the shifted Laplacian is
    # written over them), the graph's index arrays, read only: no float32
    # copy on the way, which cost seconds of fresh memory at 1e5 samples.
    symmetric = sparse.csr_matrix(
        (affinity.data.astype(np.float64), affinity.indices, affinity.indptr),
        shape=affinity.shape,
    )
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
        Linear solves of the shift-invert iterations plus products with ``A``
        of plain Lanczos; 0 for dense solves. Each component takes plain
        Lanczos where its factorisation would cost more products
        (:func:`factorisation_cost`), or until it has spent that many, and
        shift-invert otherwise.

    Raises
    ------
    RuntimeError
        Where plain Lanczos spends ``_MAX_PLAIN_PRODUCTS`` (20,000) products
        and the factorisation costs more or does not fit in memory: a
        spectrum crowded at 1. The message gives the share of nearly isolated
        samples.
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
        budget = np.inf
    else:
        budget = factorisation_cost(symmetric)
    n_products = 0
    if budget >= _MIN_LANCZOS_PRODUCTS:
        # Plain Lanczos while it costs less than the factorisation would: at
        # most about twice the cheaper of the two.
        try:
            vectors, n_products = _plain_lanczos(
                symmetric,
                n_eigenvectors,
                v0,
                max_products=min(budget, _MAX_PLAIN_PRODUCTS),
            )
        except _BudgetSpent as spent:
            if budget > _MAX_PLAIN_PRODUCTS:
                raise _not_converged(
                    symmetric, n_eigenvectors, spent.products, budget
                ) from None
            n_products = spent.products
        else:
            eigenvalues = np.einsum("ij,ij->j", vectors, symmetric @ vectors)
            return vectors, eigenvalues, n_products
    try:
        vectors, n_solves = _shift_invert_lanczos(symmetric, n_eigenvectors, v0)
    except MemoryError:
        # The factorisation did not fit: plain Lanczos needs only products.
        try:
            vectors, n_solves = _plain_lanczos(
                symmetric, n_eigenvectors, v0, max_products=_MAX_PLAIN_PRODUCTS
            )
        except _BudgetSpent as spent:
            raise _not_converged(
                symmetric, n_eigenvectors, spent.products, None
            ) from None
    eigenvalues = np.einsum("ij,ij->j", vectors, symmetric @ vectors)
    return vectors, eigenvalues, n_products + n_solves


def _not_converged(symmetric, n_eigenvectors, products, budget):
    """The error of a plain Lanczos run that gave up, with the likely cause."""
    n_samples = symmetric.shape[0]
    if isinstance(symmetric, np.ndarray):
        entries, staying = np.count_nonzero(symmetric), np.diagonal(symmetric)
    else:
        entries, staying = symmetric.nnz, symmetric.diagonal()
    if budget is None:
        factor = "does not fit in memory"
    elif np.isinf(budget):
        factor = "is out of reach (nearly dense, or too large for SuperLU)"
    else:
        factor = f"would cost about {budget:.3g} such products"
    return RuntimeError(
        f"solver='exact' did not converge: plain Lanczos spent {products} "
        f"products with the kernel matrix of a component of {n_samples} samples "
        f"({entries / n_samples:.0f} entries a sample) without finding its "
        f"{n_eigenvectors} leading eigenvectors, and its sparse LU {factor}. "
        f"A walk stays put with probability above {STAYING_SHARE:.0%} at "
        f"{np.mean(staying > STAYING_SHARE):.0%} of these samples: the "
        "diffusion barely moves and the spectrum crowds at 1, as when "
        "max_edges_per_sample lowers the bandwidth far below the neighbour "
        "distances. Use solver='spectralnet', a larger max_edges_per_sample "
        "or a larger float bandwidth."
    )


def factorisation_cost(symmetric):
    """Predicted cost of the shift-invert factorisation, in products with ``A``.

    The LU's flops (:func:`_lu_flops`) on two breadth-first balls of the graph
    around sample 0, of ``k`` and ``4 k`` samples (``k`` at least
    ``_PATCH`` and twice the mean row length), give the growth exponent ``p``
    (clipped to ``[1, 3]``); the whole graph's flops are extrapolated as
    ``F(4 k) (n / 4 k)^p``. The count depends only on the graph, so the
    choice it drives is deterministic. ``inf`` where the first ball alone
    shows that the LU would cost more than ``_MAX_LANCZOS_PRODUCTS`` products,
    and for a graph too dense for two such balls (rows of a sixteenth of the
    graph); 0 for such a graph of at most ``8 * _PATCH`` samples, cheap to
    factorise whatever its fill. ``inf`` too for a graph of more than
    ``_SUPERLU_MAX_RESERVE / _SUPERLU_FILL_GUESS`` (about 7.2e7) entries,
    which SuperLU refuses.
    """
    n_samples, entries = symmetric.shape[0], symmetric.nnz
    if _SUPERLU_FILL_GUESS * entries > _SUPERLU_MAX_RESERVE:
        return np.inf
    first = max(_PATCH, 2 * -(-entries // n_samples))
    if n_samples < 8 * first:
        # Rows of a sixteenth of the graph or more: dense-like, unless small.
        return 0.0 if n_samples <= 8 * _PATCH else np.inf
    # The graph is symmetric: its directed search needs no transpose.
    order = breadth_first_order(symmetric, 0, return_predecessors=False)
    if order.size < 4 * first:
        return np.inf
    order = order[: 4 * first]

    def cost(flops):
        return _LU_FLOP_COST * flops / entries

    small = _lu_flops(_patch(symmetric, order[:first]))
    if cost(small * n_samples / first) > _MAX_LANCZOS_PRODUCTS or (
        # The second ball could cost up to 64 times the first.
        cost(64 * small) > _MAX_LANCZOS_PRODUCTS
    ):
        return np.inf
    large = _lu_flops(_patch(symmetric, order))
    exponent = np.clip(np.log(large / small) / np.log(4.0), 1.0, 3.0)
    return cost(large * (n_samples / order.size) ** exponent)


def _patch(symmetric, rows):
    rows = np.sort(rows)
    return symmetric[rows][:, rows]


def _lu_flops(symmetric):
    """Multiply-adds of the shift-invert LU of ``symmetric`` (its outer products)."""
    with _shifted_laplacian(symmetric) as shifted:
        factor = _factorise(shifted)
    below = np.diff(factor.L.indptr) - 1
    right = np.bincount(factor.U.indices, minlength=symmetric.shape[0]) - 1
    return float(np.dot(below, right)) + symmetric.shape[0]


def _factorise(shifted):
    """``splu`` of the shifted Laplacian; ``MemoryError`` for any failed allocation.

    SuperLU reports some failed allocations as a ``RuntimeError``
    ("SUPERLU_MALLOC fails for buf in intCalloc()", a tridiagonal matrix of
    7.1e7 entries on this 24 GB machine): they get the same fallback as its
    ``MemoryError``.
    """
    # The shifted Laplacian is symmetric positive definite: a symmetric ordering
    # with diagonal pivots roughly halves the factorisation time.
    try:
        return splu(
            shifted,
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
    except RuntimeError as error:
        if "MALLOC" in str(error) or "memory" in str(error).lower():
            raise MemoryError(str(error)) from error
        raise


def _shift_invert_lanczos(symmetric, n_eigenvectors, v0):
    """Eigenvectors of ``L = I - A`` nearest 0, by shift-invert with a sparse LU.

    The LU (:func:`_factorise`) is of the shifted Laplacian written over
    ``A``'s values, which are restored as soon as it is done.
    """
    n_samples = symmetric.shape[0]
    with _shifted_laplacian(symmetric) as shifted:
        factor = _factorise(shifted)
    counter = {"solves": 0}

    def solve(x):
        counter["solves"] += 1
        return factor.solve(np.asarray(x, dtype=np.float64).ravel())

    inverse = LinearOperator((n_samples, n_samples), matvec=solve, dtype=float)
    # With OPinv, eigsh reads only the shape and dtype of its matrix.
    _, vectors = eigsh(
        symmetric, k=n_eigenvectors, sigma=_SHIFT, which="LM", OPinv=inverse, v0=v0
    )
    return vectors, counter["solves"]


@contextmanager
def _shifted_laplacian(symmetric):
    """``(I - A) - _SHIFT I`` in CSC, from the CSR of ``A`` (symmetric to the bit).

    The CSR arrays of a symmetric matrix are its CSC arrays. Where every row
    stores its diagonal (the kernel graph's self-loops) and the indices are
    canonical (so that ``splu`` leaves them as they are), the Laplacian is
    written over the values of ``A`` and shares its index arrays; on leaving
    the context the values of ``A`` are restored to the bit (a negation and
    the saved diagonal). A copy, and the row of every entry that finding the
    diagonal took, cost seconds of fresh memory at 1e5 samples. Otherwise the
    Laplacian is a new matrix.
    """
    n_samples = symmetric.shape[0]
    diagonal = None
    if symmetric.has_canonical_format:
        diagonal = diagonal_positions(symmetric)
    if diagonal is None:
        identity = sparse.identity(n_samples, format="csr")
        yield ((identity - symmetric) - _SHIFT * identity).tocsc()
        return
    data = symmetric.data
    kept = data[diagonal]
    np.negative(data, out=data)
    data[diagonal] = (1.0 - kept) - _SHIFT
    try:
        yield sparse.csc_matrix(
            (data, symmetric.indices, symmetric.indptr), shape=symmetric.shape
        )
    finally:
        np.negative(data, out=data)
        data[diagonal] = kept


class _BudgetSpent(Exception):
    def __init__(self, products):
        super().__init__(products)
        self.products = products


def _plain_lanczos(symmetric, n_eigenvectors, v0, max_products=np.inf):
    """Largest eigenvectors of ``A`` by Lanczos with products only (no factor).

    Raises ``_BudgetSpent`` at the product after ``max_products``.
    """
    counter = {"products": 0}

    def product(x):
        if counter["products"] >= max_products:
            raise _BudgetSpent(counter["products"])
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
