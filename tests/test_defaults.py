"""Faithful samples at default parameters: kernel scale, latent dimension, step
length, the spread inside clusters and outliers.

Each test fits with the estimators' defaults (``VDAESampler(random_state=0)``,
a SpectralNet diffusion map with ``n_components='auto'``) unless it says
otherwise; the numbers are the targets of the faithful-defaults issue.
"""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from skvdae import DiffusionMapEmbedder, VDAESampler, load_model
from skvdae._vdae import (
    LatentNeighbourhoods,
    auto_covariance_scale,
    local_emission,
    local_second_moments,
    residual_differences,
    residual_mean_size,
)
from skvdae.datasets import (
    gaussian_grid_centres,
    grid_nearest_centre,
    loop_arc_length,
    loop_distance,
    make_gaussian_grid,
    make_loop,
    make_sphere,
)
from skvdae.graph import KERNEL_CUTOFF, auto_bandwidth
from skvdae.metrics import precision_recall_density_coverage
from skvdae.solvers import auto_n_components, folded_samples, harmonic_residuals

GRID_SIGMA = 0.05


def squared_chordal_distance(A, B):
    qa, _ = np.linalg.qr(A - A.mean(axis=0))
    qb, _ = np.linalg.qr(B - B.mean(axis=0))
    return A.shape[1] - np.linalg.norm(qa.T @ qb) ** 2


def circle(n):
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[np.cos(theta), np.sin(theta)]


def two_blobs():
    rng = np.random.RandomState(0)
    return np.r_[rng.randn(1000, 2), rng.randn(10, 2) + np.array([50.0, 0.0])]


def coverage_and_total_variation(bins, n_bins):
    share = np.bincount(bins, minlength=n_bins) / bins.size
    return np.mean(share > 0), 0.5 * np.abs(share - 1.0 / n_bins).sum()


# --- 1. the 'auto' kernel scale ---------------------------------------------------


def test_one_far_point_does_not_change_the_scale_or_the_coordinates():
    C = circle(200)
    X = np.r_[C, [[100.0, 100.0]]]
    with_outlier = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
    alone = DiffusionMapEmbedder(solver="exact", random_state=0).fit(C)
    # Before: the far point inflated the bandwidth from 0.0246 to 1643.
    assert with_outlier.bandwidth_ == pytest.approx(alone.bandwidth_, rel=1e-12)
    assert with_outlier.n_outliers_ == 1
    assert with_outlier.component_labels_[-1] == -1
    assert np.all(with_outlier.component_labels_[:-1] == 0)
    Z, Z_alone = with_outlier.transform(C), alone.transform(C)
    assert Z.std(axis=0).min() > 0.5  # before: 9e-7, collapsed
    assert squared_chordal_distance(Z[:, :2], Z_alone[:, :2]) <= 0.01


def test_separate_groups_stay_separate_components():
    X = two_blobs()
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
    assert embedder.n_connected_components_ == 2
    assert embedder.n_outliers_ == 0
    labels = embedder.component_labels_
    assert len(set(labels[:1000])) == 1 and len(set(labels[1000:])) == 1
    assert labels[0] != labels[-1]


def test_grid_blobs_are_components_at_the_auto_bandwidth():
    X, _ = make_gaussian_grid(2000, sigma=GRID_SIGMA, random_state=0)
    index = NearestNeighbors().fit(X)
    eps = auto_bandwidth(index, 10)
    # The truncation radius stays far below the gap between blobs (about 1.7).
    assert np.sqrt(12 * eps) < 0.5
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
    assert embedder.n_connected_components_ == 25


def test_degenerate_graphs_warn():
    X = circle(100)
    with pytest.warns(UserWarning, match="bandwidth is far below"):
        DiffusionMapEmbedder(2, bandwidth=1e-12, solver="exact").fit(X)
    with pytest.warns(UserWarning, match="nearly flat"):
        DiffusionMapEmbedder(2, bandwidth=1e6, solver="exact").fit(X)


def test_verbose_reports_components_and_outliers(capsys):
    X = np.r_[circle(200), [[100.0, 100.0]]]
    DiffusionMapEmbedder(solver="exact", verbose=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert "1 component(s), 1 outlier(s), 2 coordinate(s)" in out


# --- 2. n_components='auto' ------------------------------------------------------


def test_harmonic_residuals_separate_harmonics_from_new_directions():
    rng = np.random.RandomState(0)
    theta, phi = rng.uniform(0, 2 * np.pi, (2, 2000))
    psi = np.c_[
        np.cos(theta), np.sin(theta), np.cos(2 * theta), np.cos(phi), np.sin(phi)
    ]
    residuals = harmonic_residuals(psi, n_fixed=1)
    assert np.isnan(residuals[0])
    assert residuals[1] > 0.5  # sin is not a function of cos
    assert residuals[2] < 0.05  # cos 2t = cos^2 - sin^2
    assert residuals[3] > 0.5 and residuals[4] > 0.5  # a second circle


def test_auto_n_components_rule_on_constructed_spectra():
    theta = np.random.RandomState(0).uniform(0, 2 * np.pi, 1000)
    harmonics = np.column_stack(
        [f(k * theta) for k in range(1, 6) for f in (np.cos, np.sin)]
    )
    eigenvalues = 1.0 - 1e-3 * np.repeat(np.arange(1, 6) ** 2, 2)
    assert auto_n_components(harmonics, eigenvalues, 1) == 2
    # Three indicator coordinates, then the circle: 3 + 2.
    labels = np.arange(1000) % 4
    indicators = np.eye(4)[labels][:, 1:]
    psi = np.c_[indicators, harmonics]
    values = np.r_[np.ones(3), eigenvalues]
    assert auto_n_components(psi, values, 4) == 5


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: make_loop(2000, noise=0.01, random_state=0)[0], 2),
        (lambda: make_sphere(2000, random_state=0)[0], 3),
        (lambda: make_gaussian_grid(2000, sigma=GRID_SIGMA, random_state=0)[0], 24),
    ],
    ids=["loop", "sphere", "grid"],
)
def test_auto_n_components_from_the_spectrum(make, expected):
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0).fit(make())
    assert embedder.n_components_ == expected
    assert embedder.eigenvalues_.shape == (expected,)
    assert embedder.transform(make()[:5]).shape == (5, expected)


def test_fold_test_adds_the_coordinates_that_unfold_the_data():
    from sklearn.datasets import make_s_curve

    X = make_s_curve(3000, random_state=0)[0]
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
    radius = np.sqrt(KERNEL_CUTOFF * embedder.bandwidth_)
    Z = embedder.transform(X)
    # The harmonic test alone keeps 1 coordinate (the first eigenvectors are
    # harmonics along the S), which folds most of the 3000 samples.
    assert folded_samples(Z[:, :1], X, radius) > 1000
    assert embedder.n_components_ >= 5
    assert folded_samples(Z, X, radius) < 5


def test_fold_test_gives_the_bunny_five_coordinates():
    pytest.importorskip("pymeshfix")
    from skvdae.datasets import load_bunny

    X = load_bunny(3000, normalize=True, random_state=0)
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
    assert embedder.n_components_ == 5  # the harmonic test alone: 4, folded


def test_integer_n_components_still_works():
    X, _ = make_loop(500, random_state=0)
    embedder = DiffusionMapEmbedder(4, solver="exact", random_state=0).fit(X)
    assert embedder.n_components_ == 4


# --- 3. a default step that mixes ------------------------------------------------


def test_loop_walk_mixes_in_ten_steps_and_stays_on_the_curve():
    noise = 0.01
    X, _ = make_loop(3000, noise=noise, random_state=0)
    sampler = VDAESampler(random_state=0).fit(X)
    samples = sampler.sample(500, n_steps=10, random_state=0, seeds=X[:1])
    t = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    curve = np.c_[np.cos(t), np.sin(2 * t), np.sin(3 * t)]
    nearest = NearestNeighbors(n_neighbors=1).fit(curve).kneighbors(samples)[1][:, 0]
    arc, length = loop_arc_length(t[nearest])
    bins = np.minimum((arc / length * 36).astype(int), 35)
    covered, total_variation = coverage_and_total_variation(bins, 36)
    # Before: 6% of the bins, total variation 0.94.
    assert covered >= 0.9
    assert total_variation <= 0.25
    assert loop_distance(samples).mean() <= 2 * noise


def test_sphere_walk_mixes_in_ten_steps():
    X, _ = make_sphere(3000, random_state=0)
    sampler = VDAESampler(random_state=0).fit(X)
    samples = sampler.sample(500, n_steps=10, random_state=0, seeds=X[:1])
    unit = samples / np.linalg.norm(samples, axis=1, keepdims=True)
    # 20 equal-area zones: 5 bands of equal height times 4 sectors.
    band = np.clip(((unit[:, 2] + 1) / 2 * 5).astype(int), 0, 4)
    sector = ((np.arctan2(unit[:, 1], unit[:, 0]) + np.pi) / (np.pi / 2)).astype(int)
    covered, total_variation = coverage_and_total_variation(band * 4 + sector % 4, 20)
    assert covered >= 0.9
    assert total_variation <= 0.25


def test_walks_never_cross_between_components():
    X = two_blobs()
    sampler = VDAESampler(random_state=0).fit(X)
    path = sampler.random_walk(X, n_steps=10, random_state=0)

    def small_side(P):
        return np.linalg.norm(P - [50.0, 0.0], axis=1) < np.linalg.norm(P, axis=1)

    # Before: every walk seeded in the small blob ended in the big one.
    assert np.all(small_side(path[-1][1000:]))
    assert np.mean(small_side(path[0]) == small_side(path[-1])) >= 0.99


# --- 4. the right distribution inside clusters ----------------------------------


def test_grid_samples_have_the_spread_of_the_blobs():
    X, _ = make_gaussian_grid(5000, sigma=GRID_SIGMA, random_state=0)
    sampler = VDAESampler(random_state=0).fit(X)
    assert sampler.n_components_ >= 24
    samples = sampler.sample(2500, random_state=0)
    distance, index = grid_nearest_centre(samples)
    high = distance <= 4 * GRID_SIGMA
    assert high.mean() >= 0.98  # before: 0%
    counts = np.bincount(index[high], minlength=25)
    assert np.sum(counts >= 0.1 * 2500 / 25) == 25
    offsets = samples[high] - gaussian_grid_centres()[index[high]]
    spread = np.mean(
        [np.sqrt(np.mean(offsets[index[high] == m] ** 2)) for m in range(25)]
    )
    # Before (hand-set bandwidth, 24 coordinates): 0.020 against 0.05.
    assert spread == pytest.approx(GRID_SIGMA, rel=0.15)
    held_out, _ = make_gaussian_grid(2500, sigma=GRID_SIGMA, random_state=1)
    scores = precision_recall_density_coverage(held_out, samples, n_neighbors=5)
    assert scores["recall"] >= 0.8 and scores["coverage"] >= 0.8


def test_decoder_variance_none_returns_the_decoder_mean():
    X, _ = make_gaussian_grid(500, sigma=GRID_SIGMA, random_state=0)
    embedder = DiffusionMapEmbedder(solver="exact", random_state=0)
    params = dict(max_iter=200, random_state=0)
    mean = VDAESampler(embedder, decoder_variance="none", **params).fit(X)
    local = VDAESampler(embedder, **params).fit(X)

    def spread(samples):
        _, nearest = grid_nearest_centre(samples)
        means = np.array([samples[nearest == k].mean(axis=0) for k in nearest])
        return np.sqrt(np.mean((samples - means) ** 2))

    # Codes are constant on each blob: the mean walk barely moves inside it,
    # the local variance gives back the blob's own spread.
    assert spread(mean.sample(500, n_steps=3, random_state=0)) < 0.2 * GRID_SIGMA
    local_spread = spread(local.sample(500, n_steps=3, random_state=0))
    assert local_spread == pytest.approx(GRID_SIGMA, rel=0.25)


def _emit(Z, labels, residuals, query, n_draws=20000, n_neighbors=1000, n_mean=None):
    import torch

    neighbourhoods = LatentNeighbourhoods(Z, labels, n_neighbors=n_neighbors)
    differences = residual_differences(neighbourhoods, residuals)
    queries = np.repeat(np.atleast_2d(query), n_draws, axis=0)
    decoded = np.zeros((n_draws, residuals.shape[1]))
    generator = torch.Generator().manual_seed(0)
    return local_emission(
        neighbourhoods,
        residuals,
        differences,
        queries,
        decoded,
        generator,
        n_mean=n_mean,
    )


def test_local_emission_has_the_neighbourhood_moments():
    """Emissions follow the residuals' full local covariance, not a per-axis one."""
    rng = np.random.RandomState(0)
    size = 400
    Z = np.repeat(np.eye(3), size, axis=0)  # three clusters, constant codes
    labels = np.repeat(np.arange(3), size)
    along = rng.normal(size=3 * size)
    # Residuals on the line y = x + label: a rank-one covariance.
    residuals = np.c_[along, along + labels]
    emitted, landing = _emit(Z, labels, residuals, Z[size + 5])
    # k is capped at the component's points. Identical codes pair with the
    # next copy: the emitted covariance is (1/2k) sum_j (r_j - r_j+1)(...)^T.
    cluster = residuals[size : 2 * size]
    d = cluster - np.roll(cluster, -1, axis=0)
    np.testing.assert_allclose(emitted.mean(axis=0), cluster.mean(axis=0), atol=0.03)
    np.testing.assert_allclose(np.cov(emitted.T), d.T @ d / (2 * size), rtol=0.05)
    # For noise independent between points that estimates the cluster's own.
    np.testing.assert_allclose(
        np.cov(emitted.T), np.cov(cluster.T, bias=True), rtol=0.15
    )
    # Every draw stays on the residuals' line: no spread across it.
    np.testing.assert_allclose(emitted[:, 1] - emitted[:, 0], 1.0, atol=1e-12)
    assert np.all((landing >= size) & (landing < 2 * size))


def test_partners_are_nearest_codes_within_the_component():
    # Three copies of two codes, a pair far apart, and a code alone.
    Z = np.r_[np.repeat(np.eye(2), 3, axis=0), [[5.0, 5.0], [5.0, 6.0], [9, 9]]]
    labels = np.r_[np.zeros(6, int), [1, 1, 2]]
    partners = LatentNeighbourhoods(Z, labels, n_neighbors=3).partners()
    # Copies pair cyclically (never all with one copy), the pair with each
    # other, the lone code with itself.
    np.testing.assert_array_equal(partners, [1, 2, 0, 4, 5, 3, 7, 6, 8])
    Z = np.random.RandomState(0).normal(size=(50, 3))
    partners = LatentNeighbourhoods(Z, np.zeros(50, int), n_neighbors=3).partners()
    distances = np.linalg.norm(Z[:, None] - Z[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    np.testing.assert_array_equal(partners, distances.argmin(axis=1))


def test_local_emission_keeps_noise_and_drops_a_smooth_decoder_error():
    """On a curve of codes, residuals that vary smoothly along it (a decoder's
    error on noise-free data) are not emitted as noise; independent noise on
    top of them is, at its own size."""
    t = np.linspace(0.0, 1.0, 500, endpoint=False)
    Z = t[:, None]
    labels = np.zeros(500, dtype=int)
    smooth = np.c_[np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)]
    query = Z[250]
    k = 20
    local = smooth[np.argsort(np.abs(t - t[250]))[:k]]
    local_std = np.sqrt(np.trace(np.cov(local.T, bias=True)))

    emitted, _ = _emit(Z, labels, smooth, query, n_neighbors=k)
    # The k-neighbourhood's own covariance would emit local_std (0.07 here).
    spread = np.sqrt(np.trace(np.cov(emitted.T)))
    assert spread < 0.25 * local_std, (spread, local_std)
    np.testing.assert_allclose(emitted.mean(axis=0), local.mean(axis=0), atol=1e-3)

    noise = 0.1 * np.random.RandomState(0).normal(size=smooth.shape)
    emitted, _ = _emit(Z, labels, smooth + noise, query, n_neighbors=k)
    spread = np.sqrt(np.trace(np.cov(emitted.T)) / 2)
    assert spread == pytest.approx(0.1, rel=0.3)


def test_residual_mean_size_follows_the_residuals():
    """Leave-one-out: the nearest residual where the residuals vary with the
    code faster than their mean can follow, all k for independent noise,
    whatever the scale."""
    rng = np.random.RandomState(0)
    t = np.sort(rng.uniform(size=1500))
    Z = np.c_[np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)]
    codes = LatentNeighbourhoods(Z, np.zeros(1500, int), n_neighbors=20)
    detail = 5.0 * np.c_[np.sin(12 * np.pi * t), np.cos(30 * np.pi * t)]
    assert residual_mean_size(codes, detail) == 1
    assert residual_mean_size(codes, 1e-3 * rng.normal(size=(1500, 2))) == 20
    # Noise on top of detail: whichever predicts better, by a margin.
    noise = 0.1 * rng.normal(size=(1500, 2))
    assert residual_mean_size(codes, 0.02 * detail + noise) == 20
    assert residual_mean_size(codes, 1.0 * detail + noise) == 1
    # A component of one code has nothing to predict from; copies leave
    # themselves out.
    Z1 = np.r_[Z, [[9.0, 9.0]], np.repeat(Z[:3], 2, axis=0)]
    labels = np.r_[np.zeros(1500, int), [1], np.zeros(6, int)]
    codes = LatentNeighbourhoods(Z1, labels, n_neighbors=20)
    residuals = np.r_[detail, [[0.0, 0.0]], np.repeat(detail[:3], 2, axis=0)]
    assert residual_mean_size(codes, residuals) == 1
    # Code 0 has three copies (rows 0, 1501, 1502): each sees the other two
    # first, never itself.
    others = codes.others(np.array([0, 1501, 1502]), 5)
    assert others.shape == (3, 5)
    for row, nearest in zip([0, 1501, 1502], others[:, :2], strict=True):
        assert set(nearest) == {0, 1501, 1502} - {row}
    assert codes.others(np.array([1500]), 5).shape == (1, 0)


def test_local_emission_with_the_nearest_residual_adds_no_noise():
    """m = 1: the decoded point plus the nearest code's residual, the noise
    included; m = k/2: the mean of the nearest half and (1 - 2/k) of the
    difference covariance."""
    rng = np.random.RandomState(1)
    Z = rng.normal(size=(300, 2))
    residuals = rng.normal(size=(300, 3))
    query = np.array([0.1, -0.2])
    nearest = np.argsort(np.linalg.norm(Z - query, axis=1))
    emitted, _ = _emit(Z, np.zeros(300, int), residuals, query, 50, 10, n_mean=1)
    np.testing.assert_array_equal(emitted, np.tile(residuals[nearest[0]], (50, 1)))
    emitted, _ = _emit(Z, np.zeros(300, int), residuals, query, 40000, 10, n_mean=5)
    np.testing.assert_allclose(
        emitted.mean(axis=0), residuals[nearest[:5]].mean(axis=0), atol=0.02
    )
    d = residual_differences(
        LatentNeighbourhoods(Z, np.zeros(300, int), 10), residuals
    )[nearest[:10]]
    np.testing.assert_allclose(
        np.cov(emitted.T), (1 - 1 / 5) * d.T @ d / 20, rtol=0.05, atol=0.01
    )


def test_second_moments_stay_within_the_component():
    Z = np.r_[np.zeros((5, 1)), np.ones((20, 1)) * 10 + np.arange(20)[:, None]]
    labels = np.r_[np.zeros(5, int), np.ones(20, int)]
    neighbourhoods = LatentNeighbourhoods(Z, labels, n_neighbors=10)
    sigma = local_second_moments(neighbourhoods, Z, 0.0, labels)
    # The 5 identical codes see only each other, never the other cluster.
    np.testing.assert_array_equal(sigma[:5], 0.0)
    assert np.all(sigma[5:] > 0)


def test_auto_covariance_scale_formula():
    Z = np.r_[circle(100), circle(100) * 2 + 10]
    labels = np.repeat([0, 1], 100)
    trace = np.full(200, 0.01)
    # tr Cov of the radius-1 and radius-2 circles over the mean tr Sigma*.
    scales = auto_covariance_scale(trace, Z, labels)
    np.testing.assert_allclose(scales, [1.0 / 0.01, 4.0 / 0.01])
    constant = np.repeat(np.eye(2), 50, axis=0)
    scales = auto_covariance_scale(np.zeros(100), constant, np.repeat([0, 1], 50))
    np.testing.assert_array_equal(scales, [1.0, 1.0])
    # Three clusters in two coordinates: only separating ones, whatever the
    # (solver) noise inside each cluster, the walk has nowhere to go.
    rng = np.random.RandomState(0)
    codes = np.repeat(np.eye(3)[:, :2], 50, axis=0) + 1e-3 * rng.normal(size=(150, 2))
    labels = np.repeat([0, 1, 2], 50)
    scales = auto_covariance_scale(np.full(150, 1e-7), codes, labels)
    np.testing.assert_array_equal(scales, 1.0)


# --- 5. outliers ------------------------------------------------------------------


def test_samples_stay_on_the_circle_despite_a_far_point(tmp_path):
    C = circle(200)
    X = np.r_[C, [[100.0, 100.0]]]
    sampler = VDAESampler(random_state=0).fit(X)
    alone = VDAESampler(random_state=0).fit(C)
    samples = sampler.sample(2000, random_state=0)
    on_circle = np.abs(np.linalg.norm(samples, axis=1) - 1.0) < 0.05
    assert on_circle.mean() >= 0.99  # before: no sample on the circle
    Z, Z_alone = sampler.transform(C), alone.transform(C)
    assert squared_chordal_distance(Z[:, :2], Z_alone[:, :2]) <= 0.01
    # The outlier-aware state survives a model file.
    path = tmp_path / "circle.skvdae"
    sampler.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(
        loaded.embedder_.component_labels_, sampler.embedder_.component_labels_
    )
    np.testing.assert_array_equal(
        loaded.sample(50, random_state=1), sampler.sample(50, random_state=1)
    )
