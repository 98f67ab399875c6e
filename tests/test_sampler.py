"""VDAESampler: reconstruction, walks on manifolds, clusters, covariance, API."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import NearestNeighbors

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import make_loop

N_BINS = 36


def _loop_points(t):
    return np.c_[np.cos(t), np.sin(2 * t), np.sin(3 * t)]


@pytest.fixture(scope="module")
def loop_data():
    X, t = make_loop(1000, random_state=0)
    X_test, t_test = make_loop(300, random_state=1)
    return X, t, X_test, t_test


@pytest.fixture(scope="module")
def loop_sampler(loop_data):
    X = loop_data[0]
    return VDAESampler(
        DiffusionMapEmbedder(solver="exact", n_components=2),
        covariance_scale=400.0,
        max_iter=1500,
        random_state=0,
        device="cpu",
    ).fit(X)


@pytest.fixture(scope="module")
def loop_curve():
    """Dense samples of the true loop and their parameters, with a kNN index."""
    grid = np.linspace(0.0, 2.0 * np.pi, 20000, endpoint=False)
    return grid, NearestNeighbors(n_neighbors=1).fit(_loop_points(grid))


def _project_on_loop(loop_curve, Y):
    grid, index = loop_curve
    distance, nearest = index.kneighbors(Y)
    return distance[:, 0], grid[nearest[:, 0]]


def _histogram(t):
    counts = np.histogram(t, bins=N_BINS, range=(0.0, 2.0 * np.pi))[0]
    return counts / counts.sum()


def _gaussian_baseline(X, n, seed=0):
    """Gaussian samples with the data's mean and covariance (ignores geometry)."""
    rng = np.random.RandomState(seed)
    return rng.multivariate_normal(X.mean(axis=0), np.cov(X.T), n)


@pytest.fixture(scope="module")
def small_sampler():
    X, _ = make_loop(200, random_state=3)
    sampler = VDAESampler(
        DiffusionMapEmbedder(solver="exact", n_components=2),
        decoder_hidden_layer_sizes=(16,),
        covariance_hidden_layer_sizes=(8,),
        batch_size=64,
        max_iter=100,
        random_state=0,
        device="cpu",
    )
    return sampler.fit(X), X


# --- the loop -----------------------------------------------------------------


def test_reconstruction_on_the_loop(loop_sampler, loop_data):
    X_test = loop_data[2]
    reconstructed = loop_sampler.inverse_transform(loop_sampler.transform(X_test))
    error = np.linalg.norm(reconstructed - X_test, axis=1)
    data_scale = np.sqrt(X_test.var(axis=0).sum())
    assert error.mean() < 0.03 * data_scale
    assert np.percentile(error, 95) < 0.06 * data_scale


def test_samples_stay_on_the_loop(loop_sampler, loop_data, loop_curve):
    X = loop_data[0]
    samples = loop_sampler.sample(2000, n_steps=10, random_state=0)
    distance, t = _project_on_loop(loop_curve, samples)
    gaussian_distance, _ = _project_on_loop(loop_curve, _gaussian_baseline(X, 2000))
    # The loop's diameter is about 2.8; Gaussian samples lie ~0.4 away on average.
    assert distance.mean() < 0.02
    assert distance.mean() < 0.05 * gaussian_distance.mean()
    # Walks from random training points keep the training distribution.
    tv = 0.5 * np.abs(_histogram(t) - _histogram(loop_data[1])).sum()
    assert tv < 0.2


def test_walk_from_one_seed_covers_the_loop(loop_sampler, loop_data, loop_curve):
    X, t_train = loop_data[0], loop_data[1]
    samples = loop_sampler.sample(2000, n_steps=50, seeds=X[:1], random_state=1)
    distance, t = _project_on_loop(loop_curve, samples)
    assert distance.mean() < 0.02
    histogram = _histogram(t)
    assert np.count_nonzero(histogram) >= N_BINS - 1
    tv = 0.5 * np.abs(histogram - _histogram(t_train)).sum()
    assert tv < 0.25


def test_single_walker_path(loop_sampler, loop_data, loop_curve):
    X = loop_data[0]
    path = loop_sampler.random_walk(X[:1], n_steps=400, random_state=0)
    assert path.shape == (401, 1, 3)
    np.testing.assert_array_equal(path[0], X[:1])
    distance, t = _project_on_loop(loop_curve, path[:, 0])
    assert distance.mean() < 0.03
    assert np.count_nonzero(_histogram(t)) >= 0.8 * N_BINS


def test_learned_covariance_matches_the_target(loop_sampler, loop_data):
    X_test = loop_data[2]
    kl_initial = loop_sampler.kl_divergence(X_test, initial=True)
    kl = loop_sampler.kl_divergence(X_test)
    assert np.all(np.isfinite(kl)) and np.all(kl >= -1e-9)
    assert np.median(kl) < 0.02 * np.median(kl_initial)

    learned = loop_sampler.local_covariance(X_test)
    target = loop_sampler.target_covariance(X_test)
    values, vectors = np.linalg.eigh(target)
    tangent, normal = vectors[:, :, -1], vectors[:, :, 0]
    tangent_ratio = np.einsum("ni,nij,nj->n", tangent, learned, tangent) / values[:, -1]
    assert 0.5 < np.median(tangent_ratio) < 2
    # Steps go along the curve: the normal variance is a small fraction.
    normal_variance = np.einsum("ni,nij,nj->n", normal, learned, normal)
    tangent_variance = np.einsum("ni,nij,nj->n", tangent, learned, tangent)
    assert np.median(normal_variance / tangent_variance) < 0.05


def test_score_samples_prefers_the_manifold(loop_sampler, loop_data):
    X_test = loop_data[2]
    rng = np.random.RandomState(0)
    displaced = X_test + 0.3 * rng.standard_normal(X_test.shape)
    on = loop_sampler.score_samples(X_test)
    off = loop_sampler.score_samples(displaced)
    assert on.shape == (300,)
    assert np.median(on) > np.median(off)
    assert loop_sampler.score(X_test) == pytest.approx(on.mean())
    np.testing.assert_array_equal(on, loop_sampler.score_samples(X_test))
    np.testing.assert_allclose(
        loop_sampler.score_samples(X_test[7:8]), on[7:8], rtol=1e-12
    )


# --- the sphere -----------------------------------------------------------------


def test_samples_stay_on_the_sphere():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((1500, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    sampler = VDAESampler(
        DiffusionMapEmbedder(solver="exact", n_components=3),
        covariance_scale=100.0,
        max_iter=1500,
        random_state=0,
        device="cpu",
    ).fit(X)
    samples = sampler.sample(2000, n_steps=10, random_state=0)
    distance = np.abs(np.linalg.norm(samples, axis=1) - 1.0)
    gaussian = np.abs(np.linalg.norm(_gaussian_baseline(X, 2000), axis=1) - 1.0)
    assert distance.mean() < 0.02  # diameter 2
    assert distance.mean() < 0.1 * gaussian.mean()
    # From one seed the walk spreads over the whole sphere: the moments of the
    # uniform distribution (mean 0, covariance I / 3) within sampling error.
    walked = sampler.sample(2000, n_steps=30, seeds=X[:1], random_state=0)
    assert np.abs(np.linalg.norm(walked, axis=1) - 1.0).mean() < 0.02
    assert np.abs(walked.mean(axis=0)).max() < 0.1
    np.testing.assert_allclose(np.cov(walked.T), np.eye(3) / 3, atol=0.05)


# --- clusters ---------------------------------------------------------------------


def test_grid_of_blobs():
    sigma = 0.05
    centres = np.array([(a, b) for a in range(-4, 5, 2) for b in range(-4, 5, 2)])
    rng = np.random.RandomState(0)
    labels = np.repeat(np.arange(25), 40)
    X = centres[labels] + sigma * rng.standard_normal((labels.size, 2))
    # A fixed bandwidth keeps the blobs disconnected: eigenvalue 1 has 25 copies,
    # and the 24 non-constant ones are the blob indicators that separate them.
    embedder = DiffusionMapEmbedder(
        solver="exact", n_components=24, bandwidth=0.1, bandwidth_neighbors=5
    )
    sampler = VDAESampler(embedder, max_iter=800, random_state=0, device="cpu")
    sampler.fit(X)
    assert sampler.embedder_.n_connected_components_ == 25

    samples = sampler.sample(1000, n_steps=10, random_state=0)
    distance = np.linalg.norm(samples[:, None, :] - centres[None], axis=2)
    close = distance.min(axis=1) < 4 * sigma
    assert close.mean() >= 0.95
    assert np.unique(distance.argmin(axis=1)[close]).size == 25

    for seed_row in (0, 437, 999):
        walked = sampler.sample(100, n_steps=5, seeds=X[seed_row : seed_row + 1])
        to_seed_centre = np.linalg.norm(walked - centres[labels[seed_row]], axis=1)
        # Every walker stays in its seed's blob (half the spacing of 2); the
        # samples spread like the blob itself (decoder_variance='local').
        assert np.all(to_seed_centre < 1.0)
        assert np.mean(to_seed_centre < 4 * sigma) >= 0.95


# --- the SpectralNet embedder ----------------------------------------------------


def test_with_spectralnet_embedder(loop_data, loop_curve):
    X, _, X_test, _ = loop_data
    embedder = DiffusionMapEmbedder(
        n_components=2, batch_size=512, max_iter=300, random_state=0, device="cpu"
    )
    sampler = VDAESampler(
        embedder, covariance_scale=100.0, max_iter=800, random_state=0, device="cpu"
    ).fit(X)
    reconstructed = sampler.inverse_transform(sampler.transform(X_test))
    data_scale = np.sqrt(X_test.var(axis=0).sum())
    assert np.linalg.norm(reconstructed - X_test, axis=1).mean() < 0.08 * data_scale
    distance, _ = _project_on_loop(loop_curve, sampler.sample(500, random_state=0))
    assert distance.mean() < 0.06


# --- API ------------------------------------------------------------------------------


def test_shapes_and_dtypes(small_sampler):
    sampler, X = small_sampler
    assert sampler.transform(X).shape == (200, 2)
    assert sampler.transform(X.astype(np.float32)).dtype == np.float32
    assert sampler.inverse_transform(np.zeros((4, 2), np.float32)).dtype == np.float32
    assert sampler.sample().shape == (1, 3)
    assert sampler.sample(5, n_steps=0, random_state=0).shape == (5, 3)
    path = sampler.random_walk(X[:4].astype(np.float32), 3, random_state=0)
    assert path.shape == (4, 4, 3) and path.dtype == np.float32
    assert sampler.random_walk(X[:4], 0).shape == (1, 4, 3)
    assert list(sampler.get_feature_names_out()) == ["vdaesampler0", "vdaesampler1"]
    assert sampler.loss_curve_.shape == (100,)
    assert sampler.noise_variance_ > 0 and sampler.covariance_ridge_ > 0


def test_sample_without_steps_returns_seeds(small_sampler):
    sampler, X = small_sampler
    out = sampler.sample(10, n_steps=0, seeds=X[:3], random_state=0)
    assert all(any(np.array_equal(row, seed) for seed in X[:3]) for row in out)


def test_determinism_and_randomness(small_sampler):
    sampler, X = small_sampler
    again = clone(sampler).fit(X)
    np.testing.assert_array_equal(again.loss_curve_, sampler.loss_curve_)
    np.testing.assert_array_equal(again.transform(X), sampler.transform(X))
    first = sampler.sample(50, random_state=4)
    np.testing.assert_array_equal(first, again.sample(50, random_state=4))
    np.testing.assert_array_equal(first, sampler.sample(50, random_state=4))
    assert not np.array_equal(first, sampler.sample(50, random_state=5))
    np.testing.assert_array_equal(
        sampler.random_walk(X[:5], 4, random_state=2),
        again.random_walk(X[:5], 4, random_state=2),
    )
    np.testing.assert_array_equal(sampler.transform(X), sampler.transform(X))


def test_pickle_round_trip(small_sampler):
    sampler, X = small_sampler
    loaded = pickle.loads(pickle.dumps(sampler))
    np.testing.assert_array_equal(loaded.transform(X), sampler.transform(X))
    np.testing.assert_array_equal(
        loaded.sample(20, random_state=0), sampler.sample(20, random_state=0)
    )
    np.testing.assert_array_equal(loaded.score_samples(X), sampler.score_samples(X))
    for module in (loaded.decoder_, loaded.covariance_network_):
        for tensor in list(module.parameters()) + list(module.buffers()):
            assert tensor.device.type == "cpu"
            assert not tensor.is_floating_point() or tensor.dtype == torch.float64


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_loads_on_cpu():
    X, _ = make_loop(300, random_state=0)
    sampler = VDAESampler(
        DiffusionMapEmbedder(solver="exact"), max_iter=50, random_state=0, device="cuda"
    ).fit(X)
    loaded = pickle.loads(pickle.dumps(sampler))
    for module in (loaded.decoder_, loaded.covariance_network_):
        assert all(p.device.type == "cpu" for p in module.parameters())
    np.testing.assert_array_equal(
        loaded.sample(10, random_state=0), sampler.sample(10, random_state=0)
    )


def test_global_random_state_untouched():
    X, _ = make_loop(150, random_state=0)
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    sampler = VDAESampler(
        DiffusionMapEmbedder(solver="exact"),
        decoder_hidden_layer_sizes=(8,),
        covariance_hidden_layer_sizes=(8,),
        max_iter=20,
        device="cpu",
    ).fit(X)
    sampler.sample(10)
    sampler.random_walk(X[:3], 2)
    sampler.score_samples(X[:5])
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_grid_search_default_scoring():
    X, _ = make_loop(240, random_state=0)
    search = GridSearchCV(
        VDAESampler(
            DiffusionMapEmbedder(solver="exact"),
            decoder_hidden_layer_sizes=(16,),
            covariance_hidden_layer_sizes=(8,),
            max_iter=60,
            random_state=0,
            device="cpu",
        ),
        {"covariance_scale": [1.0, 10.0]},
        cv=2,
    ).fit(X)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_bad_input(small_sampler):
    sampler, X = small_sampler
    with pytest.raises(ValueError, match="n_samples"):
        sampler.sample(0)
    with pytest.raises(ValueError, match="n_samples"):
        sampler.sample(-3)
    with pytest.raises(TypeError, match="n_samples"):
        sampler.sample(2.5)
    with pytest.raises(ValueError, match="n_steps"):
        sampler.sample(3, n_steps=-1)
    with pytest.raises(ValueError, match="n_steps"):
        sampler.random_walk(X[:2], -1)
    with pytest.raises(ValueError, match="features"):
        sampler.sample(3, seeds=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="latent coordinates"):
        sampler.inverse_transform(np.zeros((2, 3)))
    bad = X[:5].copy()
    bad[2, 1] = np.nan
    for method in (sampler.transform, sampler.score_samples):
        with pytest.raises(ValueError, match="NaN"):
            method(bad)
    with pytest.raises(ValueError, match="NaN"):
        sampler.random_walk(bad, 2)
    with pytest.raises(ValueError, match="NaN"):
        sampler.sample(2, seeds=bad)
    with pytest.raises(ValueError, match="infinity"):
        sampler.inverse_transform(np.array([[0.0, np.inf]]))
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        VDAESampler(max_iter=2).fit(bad)


def test_not_fitted():
    sampler = VDAESampler()
    for call in (
        lambda: sampler.sample(3),
        lambda: sampler.random_walk(np.zeros((2, 3)), 1),
        lambda: sampler.transform(np.zeros((2, 3))),
        lambda: sampler.inverse_transform(np.zeros((2, 2))),
        lambda: sampler.score_samples(np.zeros((2, 3))),
    ):
        with pytest.raises(NotFittedError):
            call()


def test_divergence_fails_loudly():
    X, _ = make_loop(200, random_state=0)
    sampler = VDAESampler(
        DiffusionMapEmbedder(solver="exact"),
        learning_rate=1e30,
        max_iter=100,
        random_state=0,
        device="cpu",
    )
    with pytest.raises(FloatingPointError, match="diverged"):
        sampler.fit(X)


def test_bad_parameters():
    X, _ = make_loop(100, random_state=0)
    with pytest.raises(ValueError, match="covariance_scale"):
        VDAESampler(covariance_scale=0.0).fit(X)
    with pytest.raises(ValueError, match="noise_variance"):
        VDAESampler(noise_variance="big").fit(X)
    with pytest.raises(ValueError, match="decoder_hidden_layer_sizes"):
        VDAESampler(
            DiffusionMapEmbedder(solver="exact"), decoder_hidden_layer_sizes=()
        ).fit(X)
