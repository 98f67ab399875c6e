"""The pure functions and small objects under the estimators, tested directly.

Each test checks a property a wrong implementation would break: an analytic
value, an exact solver's answer, an invariance.
"""

import numpy as np
import pytest
import torch
from scipy import linalg, sparse
from sklearn.neighbors import NearestNeighbors

from skvdae._vdae import gaussian_kl, target_factors
from skvdae.graph import (
    GaussianKernel,
    NeighborIndex,
    auto_bandwidth,
    build_diffusion_graph,
    kernel_matrix,
    transition_rows,
)
from skvdae.nn import (
    BUILTIN_MODULES,
    MLP,
    CholeskyNetwork,
    ConvDecoder,
    ConvEncoder,
    Decoder,
    DiffusionNetwork,
)
from skvdae.solvers import rayleigh_ritz_without_constant


def _circle(n):
    theta = 2 * np.pi * np.arange(n) / n
    return np.c_[np.cos(theta), np.sin(theta)]


# --- kernel and neighbours ---------------------------------------------------


def test_gaussian_kernel_values_radius_and_config():
    kernel = GaussianKernel(0.25, cutoff=12.0)
    squared = np.array([0.0, 0.25, 1.0])
    np.testing.assert_allclose(kernel.value(squared), np.exp([0.0, -1.0, -4.0]))
    assert kernel.radius == pytest.approx(np.sqrt(3.0))
    # At the radius the kernel is exp(-cutoff).
    assert kernel.value(np.array([kernel.radius**2]))[0] == pytest.approx(np.exp(-12))
    copy = GaussianKernel.from_config(kernel.get_config())
    assert (copy.bandwidth, copy.cutoff, copy.radius) == (0.25, 12.0, kernel.radius)
    exact = GaussianKernel.with_radius(0.25, 1.5)
    assert exact.radius == 1.5 and exact.cutoff == pytest.approx(9.0)
    for bad in (0.0, -1.0, np.nan, np.inf, "1"):
        with pytest.raises(ValueError, match="bandwidth"):
            GaussianKernel(bad)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("n_features", [3, 20])
def test_radius_pairs_equal_brute_force(n_features, shared, monkeypatch):
    """Every path (scipy's KD-tree, its dual-tree pairs or its ball queries
    shared by nearby rows; scikit-learn's index) gives every pair once."""
    from skvdae.graph import _neighbors

    monkeypatch.setattr(_neighbors, "_TREE_SHARED_RATIO", 1e300 if shared else 0.0)
    X = np.random.RandomState(0).uniform(size=(300, n_features))
    radius = np.quantile(
        np.linalg.norm(X[:, None] - X[None], axis=-1)[np.triu_indices(300, 1)], 0.02
    )
    first, second, squared = NeighborIndex().fit(X).radius_pairs(radius)
    distances = np.linalg.norm(X[:, None] - X[None], axis=-1)
    rows, cols = np.nonzero(distances <= radius)
    expected = {(i, j) for i, j in zip(rows, cols, strict=True) if i < j}
    assert set(zip(first.tolist(), second.tolist(), strict=True)) == expected
    assert len(first) == len(expected)
    np.testing.assert_allclose(squared, distances[first, second] ** 2, rtol=1e-12)


def test_exact_neighbors_keeps_its_data_and_matches_scikit_learn():
    X = np.random.RandomState(1).normal(size=(100, 4))
    index = NeighborIndex().fit(X)
    assert np.array_equal(index.data_, X)
    assert index.n_samples_fit_ == 100
    reference = NearestNeighbors().fit(X)
    for mine, theirs in zip(
        index.kneighbors(X[:5], n_neighbors=3),
        reference.kneighbors(X[:5], n_neighbors=3),
        strict=True,
    ):
        np.testing.assert_array_equal(mine, theirs)


# --- bandwidth -----------------------------------------------------------------


def test_auto_bandwidth_analytic_on_a_regular_circle():
    """Regular circle, k = 10: every 10th neighbour is 5 steps away."""
    n, k = 400, 10
    X = _circle(n)
    chord = 2 * np.sin(5 * np.pi / n)  # 5 steps along the circle
    step = 2 * np.sin(np.pi / n)  # spanning-tree edges: one step
    expected = max(chord**2, step**2 / 6.0)
    assert auto_bandwidth(NearestNeighbors().fit(X), k) == pytest.approx(expected)


def test_auto_bandwidth_scales_with_the_data_and_ignores_far_groups():
    X = np.random.RandomState(2).normal(size=(500, 3))
    eps = auto_bandwidth(NearestNeighbors().fit(X), 10)
    scaled = auto_bandwidth(NearestNeighbors().fit(7.0 * X + 3.0), 10)
    assert scaled == pytest.approx(49.0 * eps, rel=1e-10)
    far = np.r_[X, 1e4 + np.random.RandomState(3).normal(size=(3, 3))]
    assert auto_bandwidth(NearestNeighbors().fit(far), 10) == pytest.approx(eps)


# --- transition rows and the graph ----------------------------------------------


def test_transition_rows_are_the_markov_matrix_on_training_points():
    X = np.random.RandomState(4).uniform(size=(200, 2))
    index = NeighborIndex().fit(X)
    graph = build_diffusion_graph(index, 10, "auto", alpha=1.0)
    assert graph.inliers.size == 200
    rows = transition_rows(index, X, graph.kernel, -graph.log_kernel_density)
    markov = sparse.diags(1.0 / graph.degrees) @ graph.affinity
    np.testing.assert_allclose(rows.toarray(), markov.toarray(), atol=1e-13)
    np.testing.assert_allclose(np.asarray(rows.sum(axis=1)).ravel(), 1.0)


def test_transition_rows_far_from_the_data_concentrate_on_the_nearest_sample():
    X = _circle(50)
    index = NeighborIndex().fit(X)
    rows = transition_rows(
        index, np.array([[30.0, 0.0]]), GaussianKernel(0.01), 0 * X[:, 0]
    )
    assert rows.nnz == 1 and rows[0, 0] == 1.0


# --- Rayleigh-Ritz --------------------------------------------------------------


def test_rayleigh_ritz_on_the_full_space_is_the_exact_spectrum():
    """With every function as a candidate, Rayleigh-Ritz is the eigenproblem."""
    rng = np.random.RandomState(5)
    n = 30
    W = rng.uniform(size=(n, n))
    W = W + W.T
    degrees = W.sum(axis=1)
    features = np.eye(n)
    gram = np.diag(degrees)
    energy = gram - W
    coef, offset, eigenvalues = rayleigh_ritz_without_constant(
        gram, energy, degrees, degrees.sum(), n_components=5
    )
    markov = W / degrees[:, None]
    exact = np.sort(np.real(linalg.eigvals(markov)))[::-1][1:6]
    np.testing.assert_allclose(eigenvalues, exact, rtol=1e-10, atol=1e-12)
    psi = features @ coef + offset
    pi = degrees / degrees.sum()
    np.testing.assert_allclose(markov @ psi, psi * eigenvalues, atol=1e-10)
    np.testing.assert_allclose(pi @ psi, 0.0, atol=1e-12)
    np.testing.assert_allclose(pi @ psi**2, 1.0, rtol=1e-10)


def test_rayleigh_ritz_refuses_too_few_directions():
    n = 10
    W = np.ones((n, n))
    degrees = W.sum(axis=1)
    features = np.c_[np.ones(n), np.arange(n)]
    gram = features.T @ (features * degrees[:, None])
    energy = gram - features.T @ W @ features
    with pytest.raises(np.linalg.LinAlgError, match="non-constant directions"):
        rayleigh_ritz_without_constant(
            gram, energy, features.T @ degrees, degrees.sum(), n_components=2
        )


# --- the VDAE's Gaussian KL --------------------------------------------------------


def test_gaussian_kl_matches_torch_distributions():
    rng = np.random.RandomState(6)
    D, n = 3, 8
    A = rng.normal(size=(n, D, D))
    target = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(D)
    scale = rng.uniform(0.5, 2.0, size=n)
    inverse, log_det = target_factors(target, scale)
    B = rng.normal(size=(n, D, D))
    factor = torch.as_tensor(np.tril(B), dtype=torch.float64)
    diagonal = torch.diagonal(factor, dim1=1, dim2=2)
    factor = (
        factor - torch.diag_embed(diagonal) + torch.diag_embed(diagonal.abs() + 0.1)
    )
    kl = gaussian_kl(factor, torch.as_tensor(inverse), torch.as_tensor(log_det))
    zero = torch.zeros(D, dtype=torch.float64)
    reference = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(zero, scale_tril=factor),
        torch.distributions.MultivariateNormal(
            zero,
            covariance_matrix=torch.as_tensor(scale[:, None, None] * target),
        ),
    )
    np.testing.assert_allclose(kl.numpy(), reference.numpy(), rtol=1e-10)
    # KL of a distribution to itself is 0.
    own = torch.linalg.cholesky(torch.as_tensor(scale[:, None, None] * target))
    self_kl = gaussian_kl(own, torch.as_tensor(inverse), torch.as_tensor(log_det))
    np.testing.assert_allclose(self_kl.numpy(), 0.0, atol=1e-10)


# --- built-in modules describe themselves --------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        MLP(3, 2, (8, 4), "relu"),
        MLP(3, None, (5,)),
        DiffusionNetwork(
            torch.zeros(3), torch.tensor(2.0), MLP(3, None, (8, 8), "silu"), 8, 4
        ),
        Decoder(
            torch.zeros(2),
            torch.ones(2),
            torch.zeros(5),
            torch.ones(5),
            MLP(2, 5, (6,)),
        ),
        CholeskyNetwork(
            torch.zeros(3), torch.ones(3), torch.ones(3), MLP(3, 6, (7,), "tanh")
        ),
        ConvEncoder(48, 5, image_shape=(3, 4, 4), channels=(2,), hidden_size=6),
        ConvDecoder(2, 48, image_shape=(3, 4, 4), channels=(4, 2), hidden_size=6),
    ],
    ids=lambda m: type(m).__name__,
)
def test_modules_rebuild_from_their_config(module):
    assert BUILTIN_MODULES[type(module).__name__] is type(module)
    config = module.get_config()
    rebuilt = type(module).from_config(config)
    assert rebuilt.get_config() == config
    rebuilt.load_state_dict(module.state_dict())
    x = torch.randn(4, config["n_inputs"], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rebuilt(x), module(x))


def test_module_config_errors_are_value_errors():
    config = MLP(3, 2, (8,)).get_config()
    for key, value in (
        ("n_inputs", 0),
        ("hidden_layer_sizes", [8.5]),
        ("activation", "x"),
    ):
        with pytest.raises(ValueError, match=key):
            MLP.from_config({**config, key: value})
    cholesky = CholeskyNetwork(
        torch.zeros(3), torch.ones(3), torch.ones(3), MLP(3, 6, (7,))
    ).get_config()
    with pytest.raises(ValueError, match="outputs"):
        CholeskyNetwork.from_config({**cholesky, "n_outputs": 5})


def test_n_neighbors_is_a_deprecated_alias_of_bandwidth_neighbors():
    from skvdae import DiffusionMapEmbedder

    X = _circle(100) * np.r_[1.0, 2.0]
    new = DiffusionMapEmbedder(2, bandwidth_neighbors=6, solver="exact").fit(X)
    with pytest.warns(FutureWarning, match="renamed bandwidth_neighbors"):
        old = DiffusionMapEmbedder(2, n_neighbors=6, solver="exact").fit(X)
    assert old.bandwidth_ == new.bandwidth_
    np.testing.assert_array_equal(old.transform(X), new.transform(X))


# --- bounded graphs ------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("n_features, bandwidth", [(3, 0.01), (7, 0.08), (20, 0.15)])
def test_kernel_matrix_does_not_depend_on_the_blocks(
    n_features, bandwidth, shared, monkeypatch
):
    from skvdae.graph import _neighbors, kernel_matrix

    # 3 and 7 features: the KD-tree's blocks, from its dual-tree pairs with
    # the tree's own distances (7: its sums unrolled by 4 plus a remainder),
    # or from one ball query per block of nearby rows, summed over the
    # features; 20: the brute-force pairs, built whole, the kernel written
    # into their arrays.
    monkeypatch.setattr(_neighbors, "_TREE_SHARED_RATIO", 1e300 if shared else 0.0)
    X = np.random.RandomState(7).uniform(size=(700, n_features))
    kernel = GaussianKernel(bandwidth)
    whole = kernel_matrix(NeighborIndex().fit(X), kernel, block_rows=10_000)
    blocks = kernel_matrix(NeighborIndex().fit(X), kernel, block_rows=37)
    assert (whole != blocks).nnz == 0
    assert (whole != whole.T).nnz == 0
    assert whole.dtype == np.float64
    # Against a dense computation.
    squared = ((X[:, None] - X[None]) ** 2).sum(axis=-1)
    inside = squared <= kernel.radius**2
    assert 0.01 < inside.mean() < 0.9
    dense = np.where(inside, np.exp(-squared / bandwidth), 0.0)
    np.testing.assert_allclose(whole.toarray(), dense, rtol=1e-9, atol=0)


def test_the_tree_shares_ball_queries_where_the_lists_stay_short(monkeypatch):
    """Ball queries shared by blocks of nearby rows are taken where their
    lists are at most ``_TREE_SHARED_RATIO`` times the balls (large balls
    along a curve) and the dual-tree pairs otherwise (small balls in a
    cube); both give the same matrix, rows sorted, to round-off."""
    from skvdae.graph import _neighbors, kernel_matrix, locality_order

    rng = np.random.RandomState(3)
    t = rng.uniform(0, 2 * np.pi, 4000)
    curve = np.c_[np.cos(t), np.sin(t), 0.01 * rng.normal(size=4000)]
    cube = rng.uniform(size=(4000, 3))
    cases = [(curve, 0.1, True), (cube, 0.03, False)]
    for X, radius, expected in cases:
        X = X[locality_order(X)]
        index = NeighborIndex().fit(X)
        assert index._tree_lists_pay(radius) is expected
        kernel = GaussianKernel(radius**2 / 12.0)
        monkeypatch.setattr(_neighbors, "_TREE_SHARED_RATIO", 0.0)
        pairs = kernel_matrix(index, kernel)
        monkeypatch.setattr(_neighbors, "_TREE_SHARED_RATIO", 1e300)
        shared = kernel_matrix(index, kernel)
        monkeypatch.undo()
        assert np.array_equal(shared.indptr, pairs.indptr)
        assert np.array_equal(shared.indices, pairs.indices)
        assert shared.has_sorted_indices and (shared != shared.T).nnz == 0
        np.testing.assert_allclose(shared.data, pairs.data, rtol=1e-13)


def test_kernel_matrix_switches_to_float32_the_same_for_any_blocks(monkeypatch):
    from skvdae.graph import _graph, kernel_matrix

    X = np.random.RandomState(4).uniform(size=(900, 3))
    kernel = GaussianKernel(0.01)
    reference = kernel_matrix(NeighborIndex().fit(X), kernel)
    assert reference.dtype == np.float64
    # Past this many entries the values are stored as float32: the switch
    # falls in a different block for each block size, the result must not.
    monkeypatch.setattr(_graph, "_FLOAT64_MAX_ENTRIES", reference.nnz // 3)
    results = [
        kernel_matrix(NeighborIndex().fit(X), kernel, block_rows=block_rows)
        for block_rows in (1, 37, 10_000)
    ]
    for result in results:
        assert result.dtype == np.float32
        assert result.indices.dtype == np.int32 == result.indptr.dtype
        assert np.array_equal(result.indptr, reference.indptr)
        assert np.array_equal(result.indices, reference.indices)
        # Each weight rounded once from float64.
        assert np.array_equal(result.data, reference.data.astype(np.float32))


@pytest.mark.parametrize("dense_bytes", [1 << 29, 0])
def test_whole_pair_matrices_round_their_weights_to_float32_once(
    dense_bytes, monkeypatch
):
    from skvdae.graph import _graph, _neighbors, _rows, kernel_matrix

    # 20 features: the brute-force pairs (the whole distance matrix, or
    # listed), the kernel written into them, then narrowed in place a few
    # hundred values at a time (each slice over values read before).
    monkeypatch.setattr(_neighbors, "_BRUTE_DENSE_BYTES", dense_bytes)
    monkeypatch.setattr(_rows, "_NARROW_ENTRIES", 333)
    X = np.random.RandomState(4).uniform(size=(501, 20))
    kernel = GaussianKernel(0.15)
    reference = kernel_matrix(NeighborIndex().fit(X), kernel)
    assert reference.nnz % 2 == 1 and reference.nnz > 10 * 333
    monkeypatch.setattr(_graph, "_FLOAT64_MAX_ENTRIES", reference.nnz - 1)
    result = kernel_matrix(NeighborIndex().fit(X), kernel)
    assert result.dtype == np.float32
    assert np.array_equal(result.indices, reference.indices)
    assert np.array_equal(result.data, reference.data.astype(np.float32))


@pytest.mark.parametrize("n_features", [2, 20])
def test_bounded_bandwidth_keeps_the_mean_neighbour_count(n_features, monkeypatch):
    """In high dimension (brute-force pairs) the counts come from one pass
    over an evenly spaced sample, not from a radius search at each step of
    the bisection."""
    from scipy.spatial.distance import pdist

    from skvdae.graph import bounded_bandwidth, kernel_matrix

    X = np.random.RandomState(8).uniform(size=(4000, n_features))
    index = NeighborIndex().fit(X)
    assert index.brute_force_ == (n_features == 20)
    if index.brute_force_:

        def no_search(*args, **kwargs):
            raise AssertionError("a radius search per count")

        monkeypatch.setattr(NeighborIndex, "radius_counts", no_search)
    # Balls of the median distance: half of the samples, far above the bound.
    start = np.median(pdist(X[:300])) ** 2 / 12.0
    eps, bound = bounded_bandwidth(index, start, 12.0, max_edges=60)
    assert bound
    counts = np.diff(kernel_matrix(index, GaussianKernel(eps)).indptr)
    assert 50 <= counts.mean() <= 60
    # Unbound when the rule's scale is within the bound.
    assert bounded_bandwidth(index, eps / 2, 12.0, max_edges=60) == (eps / 2, False)


def test_the_edge_bound_warns_when_it_cuts_the_sparse_parts_apart():
    """A dense and a sparse blob: the bandwidth that keeps the dense blob's
    balls within the bound leaves the sparse blob's samples without
    neighbours; on uniform data the same bound only shrinks the balls."""
    import warnings

    from skvdae import DiffusionMapEmbedder

    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(scale=0.05, size=(1500, 3)), 5 + rng.normal(size=(500, 3))]
    params = dict(n_components=2, solver="exact", max_edges_per_sample=100)
    with pytest.warns(UserWarning, match="fall apart") as record:
        embedder = DiffusionMapEmbedder(**params).fit(X)
    assert embedder.bandwidth_bound_
    message = str(record[0].message)
    share = float(message.split("leaves ")[1].split("%")[0]) / 100
    # The warning's share is that of the samples left out: the sparse blob.
    assert embedder.n_outliers_ >= 500
    assert share == pytest.approx(embedder.n_outliers_ / len(X), abs=1e-3)
    # And the share of all samples that keep more than 99% of their kernel
    # weight (their own, 1, against the row sum), from the graph itself.
    staying = float(message.split("), and ")[1].split("%")[0]) / 100
    from skvdae.graph import NeighborIndex, kernel_matrix

    index = NeighborIndex().fit(X)
    kernel = GaussianKernel(embedder.bandwidth_, embedder.kernel_cutoff_)
    sums = np.asarray(kernel_matrix(index, kernel).sum(axis=1)).ravel()
    assert staying >= share  # isolated samples keep all their weight
    assert staying == pytest.approx(np.mean(sums < 1 / 0.99), abs=1e-3)
    uniform = rng.uniform(size=(2000, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embedder = DiffusionMapEmbedder(**params).fit(uniform)
    assert embedder.bandwidth_bound_


@pytest.mark.parametrize("dimension, tolerance", [(1, 1e-5), (2, 1e-4)])
def test_auto_cutoff_is_the_chi_squared_tail_on_finely_sampled_data(
    dimension, tolerance
):
    from scipy.stats import chi2

    from skvdae.graph import auto_cutoff

    # A circle and a square, both sampled far below the kernel's scale: the
    # mass beyond c of a d-dimensional Gaussian is the chi-squared tail at 2c.
    if dimension == 1:
        X, eps = _circle(20000), 1e-4
    else:
        grid = np.linspace(0.0, 1.0, 161)
        X, eps = np.c_[np.repeat(grid, grid.size), np.tile(grid, grid.size)], 2e-3
    cutoff = auto_cutoff(NeighborIndex().fit(X), eps, tolerance=tolerance)
    expected = chi2.isf(tolerance, dimension) / 2.0
    assert 6.0 < expected < 12.0
    assert abs(cutoff - expected) < 0.3


def test_auto_cutoff_keeps_the_kernel_mass_it_promises():
    from skvdae.graph import TRUNCATION_TOLERANCE, auto_cutoff

    rng = np.random.RandomState(3)
    t = rng.uniform(0, 2 * np.pi, 3000)
    X = np.c_[np.cos(t), np.sin(2 * t), np.sin(3 * t)] + 0.02 * rng.randn(3000, 3)
    index = NeighborIndex().fit(X)
    eps = auto_bandwidth(index, 10)
    cutoff = auto_cutoff(index, eps)
    assert 6.0 <= cutoff < 12.0
    full = kernel_matrix(index, GaussianKernel(eps))
    kept = kernel_matrix(index, GaussianKernel(eps, cutoff))
    dropped = 1.0 - np.asarray(kept.sum(axis=1)).ravel() / full.sum(axis=1).A1
    assert np.quantile(dropped, 0.99) <= 1.5 * TRUNCATION_TOLERANCE
    # The bounds: never below exp(-6) (the 'auto' bandwidth's connected
    # edges), never beyond the largest truncation.
    assert auto_cutoff(index, eps, tolerance=0.5) == 6.0
    assert 11.0 < auto_cutoff(index, eps, tolerance=1e-12) <= 12.0


@pytest.mark.parametrize("sketch_entries", [1, 2, 8])
def test_pattern_components_are_scipys_components(sketch_entries):
    from scipy.sparse.csgraph import connected_components

    from skvdae.graph import pattern_components

    rng = np.random.RandomState(0)
    for n_samples, n_edges in [(1, 0), (300, 150), (300, 400), (2000, 3000)]:
        # Random symmetric patterns around the percolation threshold: many
        # components, isolated samples, long chains; float32 values and
        # explicit zeros as in the kernel graph.
        first = rng.randint(n_samples, size=n_edges)
        second = rng.randint(n_samples, size=n_edges)
        values = rng.choice([0.0, 0.5], size=n_edges).astype(np.float32)
        upper = sparse.coo_matrix(
            (values, (first, second)), shape=(n_samples, n_samples)
        )
        matrix = (upper + upper.T + sparse.eye(n_samples, dtype=np.float32)).tocsr()
        matrix.data[::3] = 0.0
        expected = connected_components(matrix, directed=False)[1]
        labels = pattern_components(matrix, sketch_entries=sketch_entries)
        # The same partition: labels map one to one.
        pairs = np.unique(np.c_[expected, labels], axis=0)
        assert len(pairs) == len(np.unique(expected)) == len(np.unique(labels))


@pytest.mark.parametrize("block_entries", [7, 2**16])
def test_shifted_laplacian_is_the_sparse_difference(block_entries, monkeypatch):
    """Written over A's values where every row stores its diagonal and the
    indices are canonical, and A restored to the bit on leaving (also after
    an error); a new matrix otherwise (no self-loops, unsorted indices).
    Blocks of 7 entries split rows across the diagonal search."""
    from skvdae.graph import _graph
    from skvdae.solvers import _eigen

    monkeypatch.setattr(_graph, "_SCALE_ENTRIES", block_entries)
    rng = np.random.RandomState(5)
    upper = sparse.random(300, 300, density=0.05, random_state=rng)
    with_loops = (upper + upper.T + sparse.eye(300)).tocsr()
    without = with_loops.copy()
    without.setdiag(0.0)
    without.eliminate_zeros()
    unsorted = with_loops.copy()
    order = rng.permutation(unsorted.indptr[1])
    unsorted.indices[: order.size] = unsorted.indices[order]
    unsorted.data[: order.size] = unsorted.data[order]
    unsorted.has_sorted_indices = False
    identity = sparse.identity(300, format="csr")
    for symmetric, in_place in (
        (with_loops, True),
        (without, False),
        (unsorted, False),
    ):
        before = symmetric.copy()
        expected = (identity - before) - _eigen._SHIFT * identity
        with _eigen._shifted_laplacian(symmetric) as shifted:
            assert shifted.format == "csc"
            np.testing.assert_array_equal(shifted.toarray(), expected.toarray())
            assert np.shares_memory(shifted.data, symmetric.data) == in_place
        for name in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(
                getattr(symmetric, name), getattr(before, name)
            )
    before = with_loops.data.copy()
    with pytest.raises(MemoryError):
        with _eigen._shifted_laplacian(with_loops):
            raise MemoryError
    np.testing.assert_array_equal(with_loops.data, before)


@pytest.mark.parametrize("segment", [1, 2, 32])
def test_edge_sampler_draws_edges_by_weight(segment, monkeypatch):
    """Segments of one entry (an exact envelope), of two (rows cut into a
    segment of two and one of one) and whole rows: the same law, W / sum W,
    with the rows numbered from a shard's first row."""
    from skvdae.solvers import _spectralnet

    monkeypatch.setattr(_spectralnet, "_SEGMENT", segment)
    W = sparse.csr_matrix(np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.1], [0.0, 0.1, 0.2]]))
    sampler = _spectralnet.EdgeSampler(W, "cpu", row_start=5)
    rows, cols = sampler.sample(200_000, torch.Generator().manual_seed(0))
    assert rows.shape == cols.shape == (200_000,)
    counts = np.zeros((3, 3))
    np.add.at(counts, (rows.numpy() - 5, cols.numpy()), 1)
    np.testing.assert_allclose(counts / counts.sum(), W.toarray() / W.sum(), atol=3e-3)
    # Envelopes: every weight; 2 + (2 + 0.1) + 0.4; 2 + 3 + 0.4.
    expected = {1: 1.0, 2: W.sum() / 4.5, 32: W.sum() / 5.4}[segment]
    assert sampler.acceptance == pytest.approx(expected)


def test_edge_sampler_guide_table_finds_the_binary_searchs_segments(monkeypatch):
    """The guide table against torch.searchsorted on a skewed law (segments
    of one entry): segments of zero weight (flat cdf), bins crowded with
    light segments (the binary search's fallback), heavy segments spanning
    many bins, and the draws 0 and 1 - 2**-53 at the ends."""
    from skvdae.solvers import _spectralnet

    monkeypatch.setattr(_spectralnet, "_SEGMENT", 1)
    rng = np.random.RandomState(4)
    dense = rng.uniform(size=(60, 60)) ** 12 * (rng.uniform(size=(60, 60)) < 0.5)
    dense[7] = 0.0
    dense[:, 3] = 50.0
    sampler = _spectralnet.EdgeSampler(sparse.csr_matrix(dense), "cpu")
    uniform = torch.rand(100_000, generator=torch.Generator().manual_seed(0))
    uniform = torch.cat(
        [uniform.double(), torch.tensor([0.0, 1.0 - 2.0**-53], dtype=torch.float64)]
    )
    expected = torch.searchsorted(sampler.cdf, uniform)
    crowded = sampler.guide[1:] - sampler.guide[:-1]
    assert int(crowded.max()) > _spectralnet._GUIDE_STEPS
    assert torch.equal(sampler.segments(uniform).long(), expected)


def test_outliers_leave_the_graph_as_its_plain_submatrix():
    from skvdae.graph._graph import _inlier_submatrix

    rng = np.random.RandomState(9)
    X = np.r_[rng.uniform(size=(300, 2)), [[50.0, 50.0], [-40.0, 3.0]]]
    index = NeighborIndex().fit(X)
    graph = build_diffusion_graph(index, 10, "auto", alpha=0.0)
    assert graph.inliers.size == 300
    kernel = kernel_matrix(index, graph.kernel)
    expected = kernel[graph.inliers][:, graph.inliers]
    assert (_inlier_submatrix(kernel, graph.inliers) != expected).nnz == 0
    # alpha = 0: the affinity is the kernel itself.
    assert abs(graph.affinity - expected).max() == 0


@pytest.mark.parametrize("rows", [None, (40, 260)])
def test_outliers_are_dropped_in_place_wherever_they_are(monkeypatch, rows):
    from skvdae.graph import _graph

    # Outliers first, in the middle (two in a row) and last, moved in blocks
    # of 7 entries: the moves overlap their sources.
    monkeypatch.setattr(_graph, "_COMPACT_ENTRIES", 7)
    rng = np.random.RandomState(3)
    X = rng.uniform(size=(300, 2))
    far = {0: [90.0, 0.0], 120: [0.0, 80.0], 121: [70.0, 70.0], 299: [-60.0, 5.0]}
    for row, point in far.items():
        X[row] = point
    index = NeighborIndex().fit(X)
    kernel = kernel_matrix(index, GaussianKernel(0.01), rows=rows)
    inliers = np.setdiff1d(np.arange(300), list(far))
    first, last = (0, 300) if rows is None else rows
    own = inliers[(inliers >= first) & (inliers < last)]
    expected = kernel[own - first][:, inliers]
    compact = _graph._inlier_submatrix(kernel, inliers, first, last)
    assert compact.shape == expected.shape
    assert (compact != expected).nnz == 0
    assert np.array_equal(compact.indptr, expected.indptr)


@pytest.mark.parametrize("max_entries", [1, 7, 2**18])
def test_diffusion_pencil_is_the_dense_formula_for_any_blocks(max_entries, monkeypatch):
    """Blocks bounded by entries (dense rows) give the same projections."""
    from skvdae.graph import DiffusionGraph, GaussianKernel
    from skvdae.solvers import _rayleigh_ritz

    rng = np.random.RandomState(0)
    n = 40
    dense = rng.uniform(size=(n, n)) * (rng.uniform(size=(n, n)) < 0.6)
    dense = dense + dense.T + np.eye(n)
    dense[0] = dense[:, 0] = 1.0  # one complete row
    W = sparse.csr_matrix(dense)
    degrees = np.asarray(W.sum(axis=1)).ravel()
    graph = DiffusionGraph(
        affinity=W,
        degrees=degrees,
        log_kernel_density=np.zeros(n),
        kernel=GaussianKernel(1.0),
        n_connected_components=1,
        component_labels=np.zeros(n, dtype=np.intp),
        inliers=np.arange(n),
    )
    F = rng.normal(size=(n, 3))
    monkeypatch.setattr(_rayleigh_ritz, "_ENTRY_BLOCK", max_entries)
    monkeypatch.setattr(_rayleigh_ritz, "_ROW_BLOCK", 5)
    gram, energy, moment = _rayleigh_ritz.diffusion_pencil(F, graph)
    np.testing.assert_allclose(gram, F.T @ (degrees[:, None] * F), rtol=1e-12)
    np.testing.assert_allclose(
        energy, F.T @ (np.diag(degrees) - dense) @ F, rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(moment, degrees @ F, rtol=1e-12)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("value_dtype", [np.float32, np.float64])
def test_sparse_matmul_is_the_float64_product_for_any_blocks(
    index_dtype, value_dtype, monkeypatch
):
    """torch's threaded product against scipy's on the float64 values, with
    blocks of 7 entries (rows longer than a block, empty rows), vectors,
    strided arrays and tensors; and clear errors for what it cannot take."""
    from skvdae.nn import _torch_utils, sparse_matmul

    rng = np.random.RandomState(3)
    dense = rng.uniform(size=(30, 25)) * (rng.uniform(size=(30, 25)) < 0.3)
    dense[4] = 0.0
    dense[9] = rng.uniform(size=25)
    matrix = sparse.csr_matrix(dense.astype(value_dtype))
    matrix.indices = matrix.indices.astype(index_dtype)
    matrix.indptr = matrix.indptr.astype(index_dtype)
    exact = dense.astype(value_dtype).astype(np.float64)
    F = rng.normal(size=(50, 6))[::2]  # strided
    monkeypatch.setattr(_torch_utils, "_PRODUCT_ENTRIES", 7)
    product = sparse_matmul(matrix, F)
    assert isinstance(product, np.ndarray) and product.dtype == np.float64
    np.testing.assert_allclose(product, exact @ F, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(
        sparse_matmul(matrix, F[:, 0]), exact @ F[:, 0], rtol=1e-13, atol=1e-14
    )
    from_tensor = sparse_matmul(matrix.tocoo(), torch.as_tensor(F))
    assert isinstance(from_tensor, torch.Tensor)
    np.testing.assert_array_equal(from_tensor.numpy(), product)
    assert sparse_matmul(matrix[:0], F).shape == (0, 6)
    with pytest.raises(ValueError, match="shape"):
        sparse_matmul(matrix, F[:-1])
    with pytest.raises(TypeError, match="float64"):
        sparse_matmul(matrix, torch.as_tensor(F, dtype=torch.float32))


@pytest.mark.parametrize("float32_beyond", [None, 0, 40])
def test_growing_rows_are_the_joined_blocks(float32_beyond):
    """Rows 5 .. 64 of a matrix appended in uneven blocks (one of no rows,
    empty rows among them): the same CSR arrays as the matrix's own, values
    rounded once to float32 from the given size on."""
    from skvdae.graph._rows import GrowingRows

    rng = np.random.RandomState(6)
    dense = rng.uniform(size=(60, 30)) * (rng.uniform(size=(60, 30)) < 0.3)
    dense[[3, 17, 18]] = 0.0
    expected = sparse.csr_matrix(dense)
    rows = GrowingRows(60, 30, first_row=5, float32_beyond=float32_beyond)
    for start, stop in [(5, 6), (6, 6), (6, 31), (31, 45), (45, 65)]:
        block = expected[start - 5 : stop - 5]
        rows.append(start, stop, np.diff(block.indptr), block.indices, block.data)
    matrix = rows.tocsr()
    assert np.array_equal(matrix.indptr, expected.indptr)
    assert np.array_equal(matrix.indices, expected.indices)
    dtype = np.float64 if float32_beyond is None else np.float32
    assert matrix.data.dtype == dtype
    assert np.array_equal(matrix.data, expected.data.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_eigenvectors_leave_the_graph_as_it_was(dtype):
    """The operator owns its values (the shifted Laplacian is written over
    them) and only reads the graph's index arrays: after the solve the
    graph's arrays are the same to the bit."""
    from skvdae.graph import NeighborIndex, build_diffusion_graph
    from skvdae.solvers import _eigen, top_eigenvectors

    rng = np.random.RandomState(4)
    t = rng.uniform(0.0, 2.0 * np.pi, 1200)
    X = np.c_[np.cos(t), np.sin(t)] + rng.normal(scale=0.01, size=(1200, 2))
    graph = build_diffusion_graph(NeighborIndex().fit(X), 10, "auto", 1.0)
    graph.affinity.data = graph.affinity.data.astype(dtype)
    before = [a.copy() for a in (graph.affinity.data, graph.affinity.indices)]
    symmetric = _eigen.symmetric_kernel_operator(graph.affinity, graph.degrees)
    assert symmetric.dtype == np.float64
    assert not np.shares_memory(symmetric.data, graph.affinity.data)
    psi, values, solves = top_eigenvectors(graph, 4, np.random.RandomState(0))
    assert solves > 0
    np.testing.assert_array_equal(graph.affinity.data, before[0])
    np.testing.assert_array_equal(graph.affinity.indices, before[1])
    # psi are right eigenvectors of P = D^-1 W.
    markov = sparse.diags(1.0 / graph.degrees) @ graph.affinity.astype(np.float64)
    np.testing.assert_allclose(markov @ psi, psi * values, atol=1e-6)


def test_dense_graphs_take_plain_lanczos_with_the_same_spectrum():
    from skvdae.solvers._eigen import _component_eigenvectors

    rng = np.random.RandomState(1)
    X = rng.normal(size=(500, 3))
    A = np.exp(-np.sum((X[:, None] - X[None]) ** 2, axis=-1) / 4.0)
    d = A.sum(axis=1)
    symmetric = sparse.csc_matrix(A / np.sqrt(np.outer(d, d)))
    vectors, values, products = _component_eigenvectors(
        symmetric, 4, np.random.RandomState(0)
    )
    exact = linalg.eigh(symmetric.toarray(), eigvals_only=True)[::-1][:4]
    np.testing.assert_allclose(np.sort(values)[::-1], exact, rtol=1e-8)
    assert products > 0  # products with A, not a factorisation
    np.testing.assert_allclose(symmetric @ vectors, vectors * values, atol=1e-8)


def _radius_kernel(X, radius):
    """``D^-1/2 W D^-1/2`` of the Gaussian kernel truncated at ``radius``."""
    W = NearestNeighbors(radius=radius).fit(X).radius_neighbors_graph(mode="distance")
    W.data = np.exp(-((W.data / radius) ** 2) * 4.0)
    W = (W + sparse.identity(X.shape[0], format="csr")).tocsr()
    d = np.asarray(W.sum(axis=1)).ravel()
    scale = sparse.diags(1.0 / np.sqrt(d))
    return (scale @ W @ scale).tocsr()


def test_lu_flops_are_the_outer_products_of_the_elimination():
    from skvdae.solvers._eigen import _lu_flops

    # A path eliminates from its ends without fill: one product per pivot but
    # the last (plus the n divisions counted for the diagonal).
    n = 50
    path = sparse.diags([0.3, 0.0, 0.3], [-1, 0, 1], shape=(n, n), format="csr")
    path = path + sparse.identity(n) * 0.1
    assert _lu_flops(path.tocsr()) == (n - 1) + n
    # A complete graph fills nothing but is dense: pivot j updates (k-1-j)^2.
    k = 40
    complete = sparse.csr_matrix(np.full((k, k), 0.5 / k))
    assert _lu_flops(complete) == sum(j * j for j in range(k)) + k


def test_factorisation_cost_is_small_on_a_curve_and_large_on_a_blob():
    from skvdae.solvers import _eigen

    rng = np.random.RandomState(0)
    t = rng.uniform(0.0, 2.0 * np.pi, 6000)
    curve = np.c_[np.cos(t), np.sin(2 * t), np.sin(3 * t)]
    blob = rng.normal(size=(6000, 8))
    cost_curve = _eigen.factorisation_cost(_radius_kernel(curve, 0.05))
    cost_blob = _eigen.factorisation_cost(_radius_kernel(blob, 2.2))
    assert cost_curve < _eigen._MIN_LANCZOS_PRODUCTS  # factorised at once
    # The blob's LU fills in: plain Lanczos is tried first.
    assert cost_blob > 10 * _eigen._MIN_LANCZOS_PRODUCTS


def test_factorisation_cost_is_infinite_beyond_superlus_first_reserve(monkeypatch):
    """SuperLU reserves 30 times the matrix's entries in a 32-bit count and
    refuses beyond it (after ordering the columns): no LU is predicted."""
    from skvdae.solvers import _eigen

    rng = np.random.RandomState(0)
    t = rng.uniform(0.0, 2.0 * np.pi, 3000)
    symmetric = _radius_kernel(np.c_[np.cos(t), np.sin(t)], 0.05)
    reserve = _eigen._SUPERLU_FILL_GUESS * symmetric.nnz
    monkeypatch.setattr(_eigen, "_SUPERLU_MAX_RESERVE", reserve)
    assert np.isfinite(_eigen.factorisation_cost(symmetric))
    monkeypatch.setattr(_eigen, "_SUPERLU_MAX_RESERVE", reserve - 1)
    assert _eigen.factorisation_cost(symmetric) == np.inf


@pytest.mark.parametrize(
    "failure",
    [
        MemoryError("Not enough memory to perform factorization."),
        RuntimeError("SUPERLU_MALLOC fails for buf in intCalloc() at line 173"),
        RuntimeError("Factor is exactly singular"),
    ],
)
def test_a_factorisation_that_runs_out_of_memory_falls_back_to_products(
    monkeypatch, failure
):
    """SuperLU's allocation failures, a MemoryError or a RuntimeError naming
    SUPERLU_MALLOC, fall back to plain Lanczos with the dense eigenpairs; any
    other error of the factorisation propagates."""
    from skvdae.solvers import _eigen

    rng = np.random.RandomState(3)
    t = rng.uniform(0.0, 2.0 * np.pi, 1000)
    symmetric = _radius_kernel(np.c_[np.cos(t), np.sin(t)], 0.1)

    def failing(*args, **kwargs):
        raise failure

    monkeypatch.setattr(_eigen, "splu", failing)
    monkeypatch.setattr(_eigen, "factorisation_cost", lambda matrix: 0.0)
    if "singular" in str(failure):
        with pytest.raises(RuntimeError, match="singular"):
            _eigen._component_eigenvectors(symmetric, 4, np.random.RandomState(0))
        return
    vectors, values, products = _eigen._component_eigenvectors(
        symmetric, 4, np.random.RandomState(0)
    )
    exact = linalg.eigh(symmetric.toarray(), eigvals_only=True)[::-1][:4]
    np.testing.assert_allclose(np.sort(values)[::-1], exact, rtol=0, atol=1e-10)
    np.testing.assert_allclose(symmetric @ vectors, vectors * values, atol=1e-8)
    assert products > 0


@pytest.mark.parametrize("budget", [0.0, 250.0, np.inf])
def test_every_eigensolver_path_gives_the_dense_eigenpairs(monkeypatch, budget):
    from skvdae.solvers import _eigen

    rng = np.random.RandomState(3)
    t = rng.uniform(0.0, 2.0 * np.pi, 1500)
    symmetric = _radius_kernel(np.c_[np.cos(t), np.sin(t)], 0.1)
    # 0: shift-invert at once; 250: plain Lanczos runs out of products and
    # shift-invert takes over; inf: plain Lanczos to convergence.
    monkeypatch.setattr(_eigen, "factorisation_cost", lambda matrix: budget)
    monkeypatch.setattr(_eigen, "_MIN_LANCZOS_PRODUCTS", 100)
    vectors, values, count = _eigen._component_eigenvectors(
        symmetric, 5, np.random.RandomState(0)
    )
    exact = linalg.eigh(symmetric.toarray(), eigvals_only=True)[::-1][:5]
    np.testing.assert_allclose(np.sort(values)[::-1], exact, rtol=0, atol=1e-10)
    np.testing.assert_allclose(symmetric @ vectors, vectors * values, atol=1e-8)
    _, solves = _eigen._shift_invert_lanczos(symmetric, 5, np.zeros(1500) + 1.0)
    if budget == 0.0:
        assert count < 100  # solves only
    elif budget == 250.0:
        assert 250 < count < 250 + 3 * solves  # the spent products, then solves
    else:
        assert count > 250  # products to convergence


@pytest.mark.parametrize(
    "cause", ["no factorisation", "costly factorisation", "memory"]
)
def test_plain_lanczos_gives_up_on_a_crowded_spectrum(monkeypatch, cause):
    """A path whose samples are held by edges of 1e-7 (every walk stays put):
    eigenvalues within 4e-7 of 1, which plain Lanczos does not resolve. With
    no affordable factorisation it stops at its cap and says why, instead of
    running for hours."""
    from skvdae.solvers import _eigen

    n = 600
    weak = sparse.diags([1e-7, 1.0, 1e-7], [-1, 0, 1], shape=(n, n), format="csr")
    d = np.asarray(weak.sum(axis=1)).ravel()
    symmetric = sparse.csr_matrix(sparse.diags(d**-0.5) @ weak @ sparse.diags(d**-0.5))
    budget = {"no factorisation": np.inf, "costly factorisation": 1e6}.get(cause, 0.0)
    monkeypatch.setattr(_eigen, "factorisation_cost", lambda matrix: budget)
    monkeypatch.setattr(_eigen, "_MAX_PLAIN_PRODUCTS", 300)
    if cause == "memory":

        def no_memory(*args):
            raise MemoryError

        monkeypatch.setattr(_eigen, "_shift_invert_lanczos", no_memory)
    with pytest.raises(RuntimeError, match="did not converge") as error:
        _eigen._component_eigenvectors(symmetric, 5, np.random.RandomState(0))
    message = str(error.value)
    assert "above 99% at 100% of these samples" in message
    assert "solver='spectralnet'" in message
    assert ("does not fit in memory" in message) == (cause == "memory")


def test_dense_graphs_get_a_dense_operator_with_the_same_eigenpairs(monkeypatch):
    from skvdae.solvers import _eigen

    rng = np.random.RandomState(2)
    X = rng.normal(size=(600, 3))
    W = sparse.csr_matrix(np.exp(-np.sum((X[:, None] - X[None]) ** 2, axis=-1) / 3.0))
    d = np.asarray(W.sum(axis=1)).ravel()
    dense = _eigen.symmetric_kernel_operator(W, d)
    monkeypatch.setattr(_eigen, "_DENSE_OPERATOR_BYTES", 0)
    listed = _eigen.symmetric_kernel_operator(W, d)
    assert isinstance(dense, np.ndarray) and sparse.issparse(listed)
    assert np.array_equal(dense, dense.T)  # symmetric to the bit
    np.testing.assert_allclose(dense, listed.toarray(), rtol=1e-15, atol=0)
    vectors, values, products = _eigen._component_eigenvectors(
        dense, 5, np.random.RandomState(0)
    )
    exact = linalg.eigh(dense, eigvals_only=True)[::-1][:5]
    np.testing.assert_allclose(np.sort(values)[::-1], exact, rtol=1e-9)
    assert products > 0
    np.testing.assert_allclose(dense @ vectors, vectors * values, atol=1e-8)
