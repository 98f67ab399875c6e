import pickle

import numpy as np
import pytest
import torch
from scipy import sparse

import skvdae.solvers._spectralnet as spectralnet_module
from skvdae import DiffusionMapEmbedder
from skvdae.solvers._spectralnet import cholesky_with_jitter


def squared_chordal_distance(A, B):
    """Sum of squared sines of the principal angles between column spans."""
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    return A.shape[1] - np.linalg.norm(qa.T @ qb) ** 2


def uniform_circle(n, seed):
    theta = np.random.default_rng(seed).uniform(0, 2 * np.pi, n)
    return np.c_[np.cos(theta), np.sin(theta)], theta


def non_uniform_circle(n, seed):
    """Angles with density proportional to 1 + 0.8 cos(theta), by rejection."""
    rng = np.random.default_rng(seed)
    theta = np.empty(0)
    while theta.size < n:
        proposal = rng.uniform(0, 2 * np.pi, n)
        accept = rng.uniform(0, 1.8, n) < 1 + 0.8 * np.cos(proposal)
        theta = np.concatenate([theta, proposal[accept]])
    theta = theta[:n]
    return np.c_[np.cos(theta), np.sin(theta)], theta


def helix_arc(n, seed):
    """An open curve: its spectrum k^2 has no degenerate eigenvalues."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1.5 * np.pi, n)
    return np.c_[np.cos(t), np.sin(t), 0.3 * t] + 0.01 * rng.normal(size=(n, 3))


def fast_spectralnet(**params):
    defaults = dict(
        solver="spectralnet",
        hidden_layer_sizes=(32,),
        batch_size=128,
        max_iter=50,
        device="cpu",
        random_state=0,
    )
    return DiffusionMapEmbedder(**{**defaults, **params})


# --- analytic truth -----------------------------------------------------------


def test_exact_circle_recovers_fourier_modes_and_spectrum():
    X, theta = uniform_circle(2000, seed=0)
    embedder = DiffusionMapEmbedder(n_components=4, solver="exact", random_state=0)
    Z = embedder.fit_transform(X)

    first = np.c_[np.cos(theta), np.sin(theta)]
    second = np.c_[np.cos(2 * theta), np.sin(2 * theta)]
    assert squared_chordal_distance(Z[:, :2], first) <= 0.01
    assert squared_chordal_distance(Z[:, 2:4], second) <= 0.01

    gaps = 1.0 - embedder.eigenvalues_
    assert np.all(np.diff(embedder.eigenvalues_) <= 0)
    np.testing.assert_allclose(gaps[1], gaps[0], rtol=0.05)
    np.testing.assert_allclose(gaps[3], gaps[2], rtol=0.05)
    assert gaps[2] / gaps[0] == pytest.approx(4.0, rel=0.15)


def test_alpha_one_removes_the_sampling_density():
    X, theta = non_uniform_circle(2000, seed=0)
    first = np.c_[np.cos(theta), np.sin(theta)]
    distances = {}
    for alpha in (1.0, 0.0):
        embedder = DiffusionMapEmbedder(
            n_components=2, alpha=alpha, solver="exact", random_state=0
        )
        distances[alpha] = squared_chordal_distance(embedder.fit_transform(X), first)
    assert distances[1.0] <= 0.01
    assert distances[0.0] > 0.1


def test_diffusion_time_scales_by_eigenvalue_powers():
    X, _ = uniform_circle(300, seed=1)
    plain = DiffusionMapEmbedder(n_components=3, solver="exact", diffusion_time=0)
    later = DiffusionMapEmbedder(n_components=3, solver="exact", diffusion_time=2.5)
    psi = plain.set_params(random_state=0).fit_transform(X)
    psi_t = later.set_params(random_state=0).fit_transform(X)
    np.testing.assert_allclose(psi_t, psi * plain.eigenvalues_**2.5, rtol=1e-7)
    # psi is normalised in the stationary measure, here close to uniform.
    np.testing.assert_allclose(np.mean(psi**2, axis=0), 1.0, rtol=0.05)


@pytest.mark.parametrize("solver", ["exact", "spectralnet"])
def test_disconnected_blobs_are_separated(solver):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.repeat(np.arange(3), 100)
    X = centres[labels] + 0.3 * rng.normal(size=(300, 2))
    params = dict(n_components=2, random_state=0)
    if solver == "spectralnet":
        embedder = fast_spectralnet(max_iter=300, **params)
    else:
        embedder = DiffusionMapEmbedder(solver="exact", **params)
    Z = embedder.fit_transform(X)

    assert np.isfinite(Z).all()
    assert embedder.n_connected_components_ == 3
    np.testing.assert_allclose(embedder.eigenvalues_, 1.0, atol=1e-3)
    means = np.array([Z[labels == k].mean(axis=0) for k in range(3)])
    spread = max(Z[labels == k].std(axis=0).max() for k in range(3))
    gaps = [np.linalg.norm(means[a] - means[b]) for a, b in [(0, 1), (0, 2), (1, 2)]]
    assert min(gaps) > 20 * spread


# --- spectralnet against the exact solver ---------------------------------------


def test_spectralnet_matches_exact_on_held_out_points():
    X, X_test = helix_arc(2000, seed=0), helix_arc(500, seed=1)
    params = dict(n_components=4, random_state=0, device="cpu")
    exact = DiffusionMapEmbedder(solver="exact", **params).fit(X)
    net = DiffusionMapEmbedder(solver="spectralnet", **params).fit(X)

    assert net.bandwidth_ == exact.bandwidth_
    Z_exact, Z_net = exact.transform(X_test), net.transform(X_test)
    for k in range(4):
        a, b = Z_exact[:, k], Z_net[:, k]
        cos2 = (a @ b) ** 2 / ((a @ a) * (b @ b))
        assert 1 - cos2 <= 0.02, (k, 1 - cos2)
    np.testing.assert_allclose(1 - net.eigenvalues_, 1 - exact.eigenvalues_, rtol=0.05)
    # Rayleigh-Ritz on a subspace can only over-estimate the gaps 1 - lambda.
    assert np.all(1 - net.eigenvalues_ >= (1 - exact.eigenvalues_) * (1 - 1e-6))
    assert net.n_iter_ == net.max_iter == net.loss_curve_.size


def test_spectralnet_transform_is_the_network_output():
    X = helix_arc(300, seed=2)
    embedder = fast_spectralnet(n_components=2).fit(X)
    with torch.no_grad():
        direct = embedder.network_(torch.tensor(X)).numpy()
    np.testing.assert_allclose(embedder.transform(X), direct, rtol=1e-12)
    assert embedder.network_.head.out_features == 2


# --- consistency, determinism, pickling -----------------------------------------


def test_spectralnet_auto_takes_the_geometry_from_a_subsample(monkeypatch):
    import skvdae._embedder as embedder_module
    from skvdae.datasets import make_loop

    loop, _ = make_loop(3000, noise=0.01, random_state=0)
    # A far cluster of 6 samples: a subsample of 1000 keeps about 2 of them
    # (outliers there), so it sees one component where the whole graph has
    # two, and cannot tell the cluster's geometry.
    cluster = 5.0 + 0.01 * np.random.RandomState(1).normal(size=(6, 3))
    with_cluster = np.vstack([loop, cluster])
    expected = {}
    for name, X in [("loop", loop), ("with_cluster", with_cluster)]:
        exact = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
        expected[name] = (exact.n_connected_components_, exact.n_components_)
    # The loop's (cos, sin) pair; with the cluster, the rule keeps only the
    # coordinate that separates it (none of the loop's varies on it).
    assert expected == {"loop": (1, 2), "with_cluster": (2, 1)}

    def whole_spectrum(*args, **kwargs):
        raise AssertionError("the exact spectrum of the whole graph was computed")

    monkeypatch.setattr(embedder_module, "AUTO_SUBSAMPLE", 1000)
    monkeypatch.setattr(spectralnet_module, "leading_coordinates", whole_spectrum)
    for name, X in [("loop", loop), ("with_cluster", with_cluster)]:
        fitted = fast_spectralnet().fit(X)
        assert (fitted.n_connected_components_, fitted.n_components_) == expected[name]


def test_lanczos_fallback_when_the_factorisation_does_not_fit(monkeypatch):
    import skvdae.solvers._eigen as exact_module

    X, _ = uniform_circle(1500, seed=17)
    reference = DiffusionMapEmbedder(n_components=4, solver="exact", random_state=0)
    Z_reference = reference.fit_transform(X)

    def out_of_memory(*args):
        raise MemoryError

    monkeypatch.setattr(exact_module, "_shift_invert_lanczos", out_of_memory)
    fallback = DiffusionMapEmbedder(n_components=4, solver="exact", random_state=0)
    Z_fallback = fallback.fit_transform(X)
    np.testing.assert_allclose(
        fallback.eigenvalues_, reference.eigenvalues_, rtol=0, atol=1e-9
    )
    for pair in (slice(0, 2), slice(2, 4)):
        assert (
            squared_chordal_distance(Z_fallback[:, pair], Z_reference[:, pair]) < 1e-6
        )
    assert fallback.n_iter_ > 0


def test_exact_nystrom_reproduces_training_embedding():
    X, _ = uniform_circle(800, seed=3)
    embedder = DiffusionMapEmbedder(n_components=4, solver="exact", random_state=0)
    Z = embedder.fit_transform(X)
    np.testing.assert_allclose(embedder.transform(X), Z, atol=1e-6 * np.abs(Z).max())


def test_nystrom_of_far_points_is_finite():
    X, _ = uniform_circle(300, seed=4)
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
    far = np.array([[50.0, 0.0], [0.0, -80.0]])
    Z = embedder.transform(far)
    assert np.isfinite(Z).all()
    # Far from the data the kernel row concentrates on the nearest sample.
    nearest = embedder.transform(np.array([[1.0, 0.0], [0.0, -1.0]]))
    np.testing.assert_allclose(Z, nearest, atol=0.1 * np.abs(nearest).max())


@pytest.mark.parametrize("solver", ["exact", "spectralnet"])
def test_same_random_state_same_output_and_pickle(solver):
    X = helix_arc(400, seed=5)
    X_new = helix_arc(50, seed=6)
    make = (
        fast_spectralnet
        if solver == "spectralnet"
        else lambda **p: DiffusionMapEmbedder(solver="exact", random_state=0, **p)
    )
    first = make(n_components=3).fit(X)
    second = make(n_components=3).fit(X)
    np.testing.assert_array_equal(first.transform(X_new), second.transform(X_new))
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.transform(X_new), first.transform(X_new))


def test_global_random_states_untouched():
    X = helix_arc(200, seed=7)
    np.random.seed(123)
    torch.manual_seed(123)
    numpy_state, torch_state = np.random.get_state(), torch.get_rng_state()
    fast_spectralnet(random_state=None).fit(X)
    DiffusionMapEmbedder(solver="exact", random_state=None).fit(X)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_float32_input_gives_float32_output():
    X = helix_arc(200, seed=8).astype(np.float32)
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0)
    assert embedder.fit_transform(X).dtype == np.float32
    assert embedder.transform(X).dtype == np.float32


def test_feature_names_and_pandas_output():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(helix_arc(200, seed=9), columns=["a", "b", "c"])
    embedder = DiffusionMapEmbedder(2, solver="exact", random_state=0)
    out = embedder.set_output(transform="pandas").fit_transform(X)
    assert list(out.columns) == [
        "diffusionmapembedder0",
        "diffusionmapembedder1",
    ]
    assert list(embedder.feature_names_in_) == ["a", "b", "c"]


def test_duplicated_points_share_coordinates():
    X, _ = uniform_circle(300, seed=10)
    X = np.vstack([X, X[:20]])
    for embedder in (
        DiffusionMapEmbedder(solver="exact", random_state=0),
        fast_spectralnet(),
    ):
        Z = embedder.fit_transform(X)
        assert np.isfinite(Z).all()
        np.testing.assert_allclose(Z[300:], Z[:20], atol=1e-8)


# --- robustness of the training loop ----------------------------------------------


def test_cholesky_recovers_from_a_singular_gram():
    y = torch.randn(50, 2, dtype=torch.float64)
    gram = torch.cat([y, y], dim=1)
    gram = gram.T @ gram / 50  # rank 2 of 4
    factor = cholesky_with_jitter(gram)
    assert factor is not None
    assert torch.isfinite(factor).all()
    np.testing.assert_allclose(factor @ factor.T, gram, atol=1e-4)


def test_non_finite_losses_restart_then_fail_loudly(monkeypatch):
    X = helix_arc(200, seed=11)
    real_loss = spectralnet_module.rayleigh_loss
    calls = {"n": 0}

    def flaky(first, second, *shared):
        calls["n"] += 1
        loss = real_loss(first, second, *shared)
        return loss * float("nan") if calls["n"] <= 2 else loss

    monkeypatch.setattr(spectralnet_module, "rayleigh_loss", flaky)
    Z = fast_spectralnet().fit_transform(X)
    assert np.isfinite(Z).all()

    monkeypatch.setattr(spectralnet_module, "rayleigh_loss", lambda *batch: None)
    with pytest.raises(FloatingPointError, match="diverged"):
        fast_spectralnet().fit(X)


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 1.0]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 1.0]]), "infinity"),
        (np.arange(10.0), "Expected 2D array"),
        (np.empty((0, 3)), "0 sample"),
        (np.ones((1, 3)), "1 sample"),
        (np.ones((30, 3)), "identical"),
    ],
)
def test_bad_training_data(X, message):
    with pytest.raises(ValueError, match=message):
        DiffusionMapEmbedder(solver="exact").fit(X)


def test_sparse_input_is_refused():
    X = sparse.random(30, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(TypeError, match=r"[Ss]parse"):
        DiffusionMapEmbedder().fit(X)


def test_sample_count_limits():
    X = helix_arc(8, seed=12)
    # A neighbour rank beyond the data is capped at n_samples - 1, with a
    # warning, as scikit-learn's estimators do (it used to raise).
    with pytest.warns(UserWarning, match="bandwidth_neighbors=10 is not smaller"):
        capped = DiffusionMapEmbedder(n_components=2, solver="exact").fit(X)
    explicit = DiffusionMapEmbedder(
        n_components=2, bandwidth_neighbors=7, solver="exact"
    ).fit(X)
    assert capped.bandwidth_ == explicit.bandwidth_
    with pytest.raises(ValueError, match="n_components=7 must be smaller"):
        DiffusionMapEmbedder(n_components=7, bandwidth_neighbors=3, solver="exact").fit(
            X
        )


def test_transform_errors():
    X = helix_arc(100, seed=13)
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        embedder.transform(X)
    embedder.fit(X)
    with pytest.raises(ValueError, match="3 features"):
        embedder.transform(X[:, :2])


def test_unknown_or_unavailable_device():
    X = helix_arc(100, seed=14)
    with pytest.raises(ValueError, match="device"):
        DiffusionMapEmbedder(device="tpu").fit(X)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            DiffusionMapEmbedder(device="cuda").fit(X)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_fit_pickles_to_cpu_tensors():
    X = helix_arc(1000, seed=15)
    gpu = fast_spectralnet(device="cuda", max_iter=200).fit(X)
    cpu = fast_spectralnet(device="cpu", max_iter=200).fit(X)
    restored = pickle.loads(pickle.dumps(gpu))
    tensors = list(restored.network_.parameters()) + list(restored.network_.buffers())
    assert all(t.device.type == "cpu" for t in tensors)
    Z_gpu, Z_cpu = restored.transform(X), cpu.transform(X)
    assert squared_chordal_distance(Z_gpu, Z_cpu) < 0.05


def test_training_improves_on_the_untrained_network():
    # With many coordinates the untrained network's hidden layer is a poor basis
    # for the higher eigenvectors; training must lower their Rayleigh quotients.
    X = helix_arc(2000, seed=16)
    params = dict(n_components=10, random_state=0, device="cpu")
    exact = DiffusionMapEmbedder(solver="exact", **params).fit(X)
    untrained = DiffusionMapEmbedder(max_iter=1, **params).fit(X)
    trained = DiffusionMapEmbedder(**params).fit(X)

    def excess(model):
        return (1 - model.eigenvalues_) / (1 - exact.eigenvalues_) - 1

    assert excess(trained)[-4:].mean() < 0.7 * excess(untrained)[-4:].mean()
    curve = trained.loss_curve_
    assert curve[-50:].mean() < 0.2 * curve[:5].mean()
