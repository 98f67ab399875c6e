"""The neighbour-search interface: any NearestNeighbors-like backend."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from skvdae import DiffusionMapEmbedder, VDAESampler, load_model
from skvdae.datasets import make_loop
from skvdae.graph import (
    DROPPED_MASS_WARNING,
    GaussianKernel,
    HNSWNeighbors,
    NeighborIndex,
    _approximate,
    _neighbors,
    dropped_kernel_mass,
    kernel_matrix,
    locality_order,
)
from skvdae.graph._approximate import approximate_backend_available

needs_faiss = pytest.mark.skipif(
    not approximate_backend_available(), reason="faiss (skvdae[ann]) not installed"
)


class KOnly:
    """An exact backend with kneighbors only, like an approximate library."""

    def fit(self, X):
        self.index = NearestNeighbors(algorithm="brute").fit(X)
        return self

    def kneighbors(self, X=None, n_neighbors=5, return_distance=True):
        return self.index.kneighbors(X, n_neighbors, return_distance)


@pytest.fixture(scope="module")
def X():
    return make_loop(600, noise=0.01, random_state=0)[0]


@pytest.mark.parametrize("solver", ["exact", "spectralnet"])
def test_a_user_backend_gives_the_default_embedding(X, solver):
    params = dict(n_components=2, solver=solver, max_iter=50, random_state=0)
    default = DiffusionMapEmbedder(**params).fit(X)
    brute = NearestNeighbors(algorithm="brute")
    given = DiffusionMapEmbedder(neighbors=brute, **params).fit(X)
    assert given.bandwidth_ == pytest.approx(default.bandwidth_, rel=1e-12)
    np.testing.assert_allclose(given.eigenvalues_, default.eigenvalues_, rtol=1e-6)
    Z = given.transform(X[::5] + 0.001)
    np.testing.assert_allclose(Z, default.transform(X[::5] + 0.001), atol=1e-6)
    # The backend given is cloned, never fitted itself.
    assert not hasattr(brute, "n_samples_fit_")


@pytest.mark.parametrize("rows", [None, (100, 170)])
def test_training_kneighbors_from_the_tree_answer_as_scikit_learn(rows):
    rng = np.random.RandomState(5)
    X = rng.uniform(size=(300, 3))
    X[150:160] = X[10]  # exact duplicates: ties, and self hidden among them
    index, reference = NeighborIndex().fit(X), NearestNeighbors().fit(X)
    start, stop = (0, 300) if rows is None else rows
    for k in (1, 4, 12):
        distances, indices = index.training_kneighbors(k, rows)
        expected, expected_indices = reference.kneighbors(n_neighbors=k)
        np.testing.assert_array_equal(distances, expected[start:stop])
        # The same distances; the neighbours differ only among ties.
        own = X[start:stop, None]
        np.testing.assert_array_equal(
            np.linalg.norm(X[indices] - own, axis=-1),
            np.linalg.norm(X[expected_indices[start:stop]] - own, axis=-1),
        )
        assert not np.any(indices == np.arange(start, stop)[:, None])
        # Rows without ties (among their k + 1 nearest): the same neighbours.
        wider = reference.kneighbors(n_neighbors=k + 1)[0][start:stop]
        untied = np.all(np.diff(wider, axis=1) > 0, axis=1)
        assert untied.mean() > 0.8
        np.testing.assert_array_equal(
            indices[untied], expected_indices[start:stop][untied]
        )


def test_high_dimensional_pairs_through_the_backend():
    """Beyond 12 features the pairs come from radius queries, chunked."""
    rng = np.random.RandomState(1)
    X = make_loop(400, random_state=1)[0] @ rng.normal(size=(3, 20))
    default = DiffusionMapEmbedder(n_components=2, solver="exact").fit(X)
    given = DiffusionMapEmbedder(
        n_components=2, solver="exact", neighbors=NearestNeighbors(algorithm="kd_tree")
    ).fit(X)
    np.testing.assert_allclose(given.eigenvalues_, default.eigenvalues_, rtol=1e-10)


@pytest.mark.parametrize("dense_bytes", [1 << 29, 0])
@pytest.mark.parametrize("block", [1 << 22, 1000])
def test_brute_force_pairs_equal_the_radius_queries(block, dense_bytes, monkeypatch):
    """The default high-dimensional pairs (Gram blocks) are the radius balls,
    through the whole distance matrix or a list of pairs."""
    monkeypatch.setattr(_neighbors, "_BRUTE_BLOCK", block)
    monkeypatch.setattr(_neighbors, "_BRUTE_DENSE_BYTES", dense_bytes)
    rng = np.random.RandomState(3)
    X = rng.normal(size=(300, 20)) + 50.0  # far from the origin: centring
    X = np.vstack([X, X[:4]])  # exact duplicates, distance 0
    radius = np.quantile(cdist(X[:40], X), 0.2)
    pairs = NeighborIndex().fit(X)._row_pairs(radius, None)
    truth = cdist(X, X, "sqeuclidean")
    expected = truth <= radius**2
    dense = pairs.toarray()
    stored = np.zeros_like(expected)
    stored[np.repeat(np.arange(len(X)), np.diff(pairs.indptr)), pairs.indices] = True
    # Pairs within round-off of the radius may go either way.
    unsure = np.abs(truth - radius**2) < 1e-9 * radius**2
    assert np.array_equal(stored[~unsure], expected[~unsure])
    assert pairs.has_sorted_indices and np.all(np.diff(pairs.indptr) > 0)
    np.testing.assert_allclose(dense[stored], truth[stored], atol=1e-9)
    assert np.array_equal(dense, dense.T)  # symmetric to the bit
    assert np.all(dense[np.arange(len(X)), np.arange(len(X))] == 0.0)
    assert np.all(dense[np.arange(4), np.arange(300, 304)] < 1e-9)
    assert stored[np.arange(4), np.arange(300, 304)].all()


@pytest.mark.parametrize("quantile", [0.1, 1.0])
def test_dense_and_listed_brute_force_pairs_are_the_same_matrix(quantile, monkeypatch):
    """Both constructions give the same CSR to the bit, a complete graph too."""
    monkeypatch.setattr(_neighbors, "_BRUTE_BLOCK", 2000)
    X = np.random.RandomState(5).normal(size=(250, 30))
    radius = np.quantile(cdist(X, X), quantile) * (1.0 + 1e-6)
    dense = NeighborIndex().fit(X)._row_pairs(radius, None)
    monkeypatch.setattr(_neighbors, "_BRUTE_DENSE_BYTES", 0)
    listed = NeighborIndex().fit(X)._row_pairs(radius, None)
    assert (dense.nnz == len(X) ** 2) == (quantile == 1.0)
    assert np.array_equal(dense.indptr, listed.indptr)
    assert np.array_equal(dense.indices, listed.indices)
    assert np.array_equal(dense.data, listed.data)


def test_the_backend_is_saved_and_used_after_loading(X, tmp_path):
    backend = NearestNeighbors(algorithm="ball_tree", leaf_size=7)
    sampler = VDAESampler(
        DiffusionMapEmbedder(n_components=2, solver="exact", neighbors=backend),
        max_iter=20,
        random_state=0,
    ).fit(X)
    loaded = load_model(sampler.save(tmp_path / "m.skvdae"))
    restored = loaded.embedder_.neighbors
    assert isinstance(restored, NearestNeighbors)
    assert restored.get_params() == backend.get_params()
    np.testing.assert_array_equal(loaded.transform(X), sampler.transform(X))


def test_bad_backends_are_refused(X):
    with pytest.raises(ValueError, match="neighbors"):
        DiffusionMapEmbedder(neighbors="fast").fit(X)
    with pytest.raises((TypeError, ValueError), match="neighbors"):
        DiffusionMapEmbedder(neighbors=NearestNeighbors).fit(X)


def _lifted(X, n_features=30, seed=0):
    """``X`` isometrically in more dimensions, with a little noise."""
    rng = np.random.RandomState(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(n_features, X.shape[1])))
    return X @ basis.T + 0.002 * rng.normal(size=(len(X), n_features))


def test_kneighbors_only_backend_gives_the_radius_graph(X):
    """Candidate lists that double until the ball is inside them are exact."""
    Y = _lifted(X)
    kernel = GaussianKernel(0.01)
    exact = kernel_matrix(NeighborIndex().fit(Y), kernel)
    index = NeighborIndex(KOnly()).fit(Y)
    assert not index.radius_search_
    from_lists = kernel_matrix(index, kernel, block_rows=37)
    assert index.n_truncated_ == 0
    # The same pairs; the weights agree to round-off (the default computes
    # high-dimensional distances from Gram blocks, the lists from the backend).
    assert np.array_equal(from_lists.indptr, exact.indptr)
    assert np.array_equal(from_lists.indices, exact.indices)
    np.testing.assert_allclose(from_lists.data, exact.data, rtol=1e-12, atol=1e-15)
    # The lists start at the smallest size 32 * 2^m above 90% of the probes'
    # balls (their exact sizes, the point itself included).
    probes = np.arange(0, len(Y), max(1, len(Y) // _neighbors._PROBE_ROWS))
    needed = np.quantile(np.diff(exact.indptr)[probes], 0.9) + 1
    first = index._first_candidates(kernel.radius * (1 + 1e-9))
    assert needed > 32 and first >= needed > first // 2
    assert first in 32 * 2 ** np.arange(8)
    params = dict(n_components=2, solver="exact", bandwidth=0.01)
    default = DiffusionMapEmbedder(**params).fit(Y)
    given = DiffusionMapEmbedder(neighbors=KOnly(), **params).fit(Y)
    assert given.dropped_kernel_mass_ == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(given.eigenvalues_, default.eigenvalues_, rtol=1e-10)
    # Coordinates of order 1: round-off of the kernel weights moves them by
    # about 1e-12, which is a large relative change only near zero.
    np.testing.assert_allclose(
        given.transform(Y[::7]), default.transform(Y[::7]), rtol=1e-7, atol=1e-10
    )


class MissesItself(KOnly):
    """Candidate lists that never hold the query point itself, as an
    approximate search may return them."""

    def fit(self, X):
        self.data = X
        return super().fit(X)

    def kneighbors(self, X=None, n_neighbors=5, return_distance=True):
        n_neighbors = min(n_neighbors, len(self.data) - 1)
        distances, indices = self.index.kneighbors(X, n_neighbors + 1)
        itself = np.all(self.data[indices] == X[:, None, :], axis=2)
        # Each row drops itself if found, else its farthest candidate.
        itself[~itself.any(axis=1), -1] = True
        keep = ~itself
        shape = (len(X), n_neighbors)
        return distances[keep].reshape(shape), indices[keep].reshape(shape)


def test_lists_without_the_point_itself_still_give_the_diagonal(X):
    """The graph of sorted candidate lists against the exact radius graph,
    from a search that never returns the query point: the diagonal (the
    kernel's self-loops) is added, with a squared distance of exactly 0."""
    Y = _lifted(X)
    kernel = GaussianKernel(0.01)
    exact = kernel_matrix(NeighborIndex().fit(Y), kernel)
    index = NeighborIndex(MissesItself()).fit(Y)
    squared = index.radius_matrix(kernel.radius)
    assert squared.has_sorted_indices
    assert np.array_equal(squared.indptr, exact.indptr)
    assert np.array_equal(squared.indices, exact.indices)
    assert np.all(squared.diagonal() == 0.0)
    np.testing.assert_allclose(
        kernel.value(squared.data), exact.data, rtol=1e-12, atol=1e-15
    )


def test_balls_from_candidate_lists_equal_radius_queries():
    """Rows finishing in different doubling rounds land in their own place,
    each ball sorted by distance; at the cap, the nearest ``cap`` points."""
    rng = np.random.RandomState(1)
    Y = np.r_[rng.normal(scale=0.3, size=(150, 3)), rng.normal(size=(150, 3))]
    queries = rng.normal(size=(80, 3))
    exact = NearestNeighbors().fit(Y)
    truth = exact.radius_neighbors(queries, radius=0.8, sort_results=True)
    index = NeighborIndex(KOnly()).fit(Y)
    distances, indices = index.radius_neighbors(queries, 0.8)
    sizes = np.fromiter(map(len, truth[1]), int)
    assert sizes.min() < 32 < sizes.max()  # one round for some, several for others
    for row in range(len(queries)):
        assert np.array_equal(indices[row], truth[1][row])
        np.testing.assert_allclose(distances[row], truth[0][row], rtol=1e-12)
    capped = NeighborIndex(KOnly(), max_candidates=40).fit(Y)
    lengths, columns, _, truncated = capped._candidate_rows(queries, 0.8, first=4)
    assert np.array_equal(truncated, sizes >= 40)
    bounds = np.cumsum(lengths)[:-1]
    for row, found in enumerate(np.split(columns, bounds)):
        expected = truth[1][row][:40] if truncated[row] else truth[1][row]
        assert np.array_equal(found, expected)


def test_shared_searches_of_nearby_rows_give_each_rows_ball(monkeypatch):
    """One candidate search per block of nearby rows (around their centroid,
    wide enough for every row's ball) gives each row's ball, as a search per
    row does; blocks whose shared list fills up fall back to those, and rows
    at the cap keep their nearest points in both."""
    rng = np.random.RandomState(2)
    t = rng.uniform(0, 2 * np.pi, 3000)
    Y = _lifted(np.c_[np.cos(t), np.sin(t)], n_features=20)
    Y[:40] += rng.normal(scale=0.3, size=(40, 20))  # a scattered first block
    Y = np.r_[Y[:40], Y[40:][locality_order(Y[40:])]]
    cap, radius = 60, 0.08
    monkeypatch.setattr(_neighbors, "_SHARED_FACTOR", 3)
    index = NeighborIndex(KOnly(), max_candidates=cap).fit(Y)
    # Some blocks share a list, at least one falls back.
    _, _, centres, reach = _neighbors._shared_balls(Y, radius)
    full = index._candidate_rows(centres, reach, cap=3 * cap)[3]
    assert full[0] and not full[1:].all()
    lengths, columns, distances, truncated = index._shared_candidate_rows(Y, radius)
    expected = index._candidate_rows(Y, radius)
    assert np.array_equal(lengths, expected[0])
    assert np.array_equal(truncated, expected[3])
    assert 0 < truncated.sum() < len(Y)
    balls = NearestNeighbors().fit(Y).radius_neighbors(Y, radius, sort_results=True)
    bounds = np.cumsum(lengths)[:-1]
    for row, (found, values) in enumerate(
        zip(np.split(columns, bounds), np.split(distances, bounds), strict=True)
    ):
        # scikit-learn's own distances carry the product formula's round-off
        # (1.5e-8 from a point to itself).
        order = np.argsort(values, kind="stable")
        truth = balls[1][row][:cap]
        assert np.all(np.diff(found) > 0)  # sorted columns
        assert np.array_equal(found, np.sort(truth))
        np.testing.assert_allclose(
            values[order], balls[0][row][:cap], rtol=1e-9, atol=3e-8
        )


def test_the_edge_bound_sees_balls_beyond_the_candidate_cap(monkeypatch):
    """A backend without radius queries lists balls only up to the cap, which
    the estimator sets to the bound: the bound counts by brute force instead,
    and lowers the bandwidth as exact search does."""
    from skvdae.graph import _bandwidth

    Y = np.random.RandomState(3).uniform(size=(3000, 3))
    params = dict(n_components=2, solver="exact", max_edges_per_sample=40)
    exact = DiffusionMapEmbedder(**params).fit(Y)
    given = DiffusionMapEmbedder(neighbors=KOnly(), **params).fit(Y)
    assert exact.bandwidth_bound_ and given.bandwidth_bound_
    assert given.bandwidth_ == pytest.approx(exact.bandwidth_, rel=1e-3)
    assert given.dropped_kernel_mass_ < 0.01
    # The rule's own balls exceed the cap everywhere: lists alone would read
    # a mean of exactly 40, within the bound.
    index = NeighborIndex(KOnly(), max_candidates=40).fit(Y)
    unbounded = DiffusionMapEmbedder(n_components=2).fit(Y).bandwidth_
    radius = np.sqrt(exact.kernel_cutoff_ * unbounded)
    assert np.all(index.radius_counts(Y, radius) == 40)
    # The cutoff rule's balls, by brute force a few queries at a time, are
    # the exact ones.
    monkeypatch.setattr(_bandwidth, "_BALL_ENTRIES", 7 * len(Y))
    assert _bandwidth.auto_cutoff(index, unbounded) == pytest.approx(
        _bandwidth.auto_cutoff(NeighborIndex().fit(Y), unbounded), rel=1e-9
    )
    # On a sample of the data, the counts scale to the exact mean.
    monkeypatch.setattr(_bandwidth, "_COUNT_SAMPLE", 500)
    eps = radius**2 / exact.kernel_cutoff_
    mean_count = _bandwidth._sampled_mean_count(Y, exact.kernel_cutoff_)
    truth = NeighborIndex().fit(Y).radius_counts(Y, radius).mean()
    assert mean_count(eps) == pytest.approx(truth, rel=0.03)


def test_dropped_mass_is_measured_on_truncated_lists():
    """Balls larger than the cap lose mass, measured against dense sums."""
    rng = np.random.RandomState(0)
    Y = rng.normal(size=(300, 15))
    kernel = GaussianKernel(4.0)  # the radius holds nearly every point
    cap = 20
    index = NeighborIndex(KOnly(), max_candidates=cap).fit(Y)
    truncated = kernel_matrix(index, kernel)
    dense = kernel.value(cdist(Y, Y, "sqeuclidean"))
    dense[dense < kernel.value(kernel.radius**2)] = 0.0
    balls = np.sum(dense > 0, axis=1)
    assert index.n_truncated_ == np.sum(balls >= cap)
    # Symmetric, a subset of the true pairs, at least each row's own list.
    assert (truncated != truncated.T).nnz == 0
    assert np.all(np.diff(truncated.indptr) >= cap)
    rows, cols = truncated.nonzero()
    np.testing.assert_allclose(truncated.data, dense[rows, cols].ravel(), rtol=1e-12)
    share = 1.0 - np.asarray(truncated.sum(axis=1)).ravel() / dense.sum(axis=1)
    measured = dropped_kernel_mass(Y, truncated, kernel, n_rows=300)
    assert measured == pytest.approx(share.mean(), rel=1e-9)
    assert measured > 4 * DROPPED_MASS_WARNING
    # The estimate on 50 evenly spaced rows is the mean over those rows.
    rows = np.unique(np.linspace(0, 299, 50).astype(int))
    assert dropped_kernel_mass(Y, truncated, kernel, n_rows=50) == pytest.approx(
        share[rows].mean(), rel=1e-9
    )
    with pytest.warns(UserWarning, match="kernel mass"):
        embedder = DiffusionMapEmbedder(
            n_components=2,
            solver="exact",
            bandwidth=4.0,
            neighbors=KOnly(),
            max_edges_per_sample=cap,
        ).fit(Y)
    assert embedder.dropped_kernel_mass_ > DROPPED_MASS_WARNING


@needs_faiss
def test_approximate_backend_matches_exact(X):
    """HNSW finds the exact neighbours here: embeddings agree to 1e-6."""
    Y = _lifted(X)
    found = HNSWNeighbors().fit(Y).kneighbors(n_neighbors=10)
    truth = NearestNeighbors().fit(Y).kneighbors(n_neighbors=10)
    assert np.mean(found[1] == truth[1]) > 0.99
    np.testing.assert_allclose(found[0], truth[0], rtol=1e-9)
    params = dict(n_components=2, solver="exact", random_state=0)
    default = DiffusionMapEmbedder(**params).fit(Y)
    approximate = DiffusionMapEmbedder(neighbors=HNSWNeighbors(), **params).fit(Y)
    assert approximate.dropped_kernel_mass_ < 1e-3
    np.testing.assert_allclose(
        approximate.eigenvalues_, default.eigenvalues_, rtol=1e-6
    )
    np.testing.assert_allclose(
        np.abs(approximate.transform(Y[::7])),
        np.abs(default.transform(Y[::7])),
        atol=1e-6,
    )
    again = DiffusionMapEmbedder(neighbors=HNSWNeighbors(), **params).fit(Y)
    np.testing.assert_array_equal(again.transform(Y), approximate.transform(Y))


@pytest.mark.parametrize("shuffled", [False, True])
def test_candidate_distances_by_products_equal_the_pairwise_ones(shuffled, monkeypatch):
    """Blocks of nearby queries take one product over their candidates' union
    (centred on the block); scattered ones fall back to pair differences.
    Both give float64 distances to within round-off of the distances'
    own size, duplicates included."""
    rng = np.random.RandomState(0)
    t = np.sort(rng.uniform(0, 2 * np.pi, 3000))
    frame = np.linalg.qr(rng.normal(size=(30, 2)))[0]
    Y = (
        50.0
        + np.c_[np.cos(t), np.sin(t)] @ frame.T
        + 1e-3 * rng.normal(size=(3000, 30))
    )
    Y[1] = Y[0]
    queries = Y[rng.permutation(len(Y))] if shuffled else Y
    found = NearestNeighbors().fit(Y).kneighbors(queries, 40, return_distance=False)
    calls = []
    pairwise = _approximate._pair_squared_distances
    monkeypatch.setattr(
        _approximate,
        "_pair_squared_distances",
        lambda *args: calls.append(1) or pairwise(*args),
    )
    squared = _approximate._row_squared_distances(Y, queries, found)
    assert bool(calls) == shuffled
    truth = ((Y[found] - queries[:, None]) ** 2).sum(axis=2)
    assert squared.min() >= 0.0
    np.testing.assert_allclose(squared, truth, rtol=1e-9, atol=1e-12 * truth.max())
    duplicates = truth == 0.0
    assert duplicates.sum() >= 4  # each of rows 0 and 1 with itself and the other
    assert squared[duplicates].max() < 1e-12


@needs_faiss
def test_auto_takes_the_approximate_backend_on_large_wide_data(X, monkeypatch):
    Y = _lifted(X)
    assert isinstance(NeighborIndex("auto").fit(Y).search_, NearestNeighbors)
    monkeypatch.setattr(_neighbors, "APPROXIMATE_MIN_SAMPLES", len(Y))
    work = len(Y) ** 2 * Y.shape[1]
    monkeypatch.setattr(_neighbors, "APPROXIMATE_MIN_WORK", work)
    assert isinstance(NeighborIndex(None).fit(Y).search_, HNSWNeighbors)
    assert isinstance(NeighborIndex(None).fit(X).search_, NearestNeighbors)
    # Exact search's work below the threshold: exact search.
    monkeypatch.setattr(_neighbors, "APPROXIMATE_MIN_WORK", work + 1)
    assert isinstance(NeighborIndex(None).fit(Y).search_, NearestNeighbors)


@needs_faiss
def test_approximate_backend_in_a_model_file(X, tmp_path):
    Y = _lifted(X)
    embedder = DiffusionMapEmbedder(
        n_components=2, solver="exact", neighbors=HNSWNeighbors(ef_search=64)
    ).fit(Y)
    loaded = load_model(embedder.save(tmp_path / "e.skvdae"))
    assert loaded.neighbors.get_params() == HNSWNeighbors(ef_search=64).get_params()
    np.testing.assert_array_equal(loaded.transform(Y), embedder.transform(Y))


def test_hnsw_refuses_bad_input():
    if not approximate_backend_available():
        with pytest.raises(ImportError, match="skvdae\\[ann\\]"):
            HNSWNeighbors().fit(np.zeros((5, 2)))
        return
    with pytest.raises(ValueError, match="n_links"):
        HNSWNeighbors(n_links=0).fit(np.zeros((5, 2)))
    index = HNSWNeighbors().fit(np.random.RandomState(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="features"):
        index.kneighbors(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="n_neighbors"):
        index.kneighbors(n_neighbors=20)


@needs_faiss
def test_fitted_approximate_embedder_pickles(X):
    import pickle

    Y = _lifted(X)
    embedder = DiffusionMapEmbedder(
        n_components=2, solver="exact", neighbors=HNSWNeighbors()
    ).fit(Y)
    copy = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_array_equal(copy.transform(Y[:50]), embedder.transform(Y[:50]))
