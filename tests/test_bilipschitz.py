"""Tests of the local bi-Lipschitz constants and the BiLipschitzScore scorer."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.manifold import Isomap
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skvdae import DiffusionMapEmbedder
from skvdae.metrics import BiLipschitzScore, bilipschitz_constants, bilipschitz_summary


@pytest.fixture
def no_runtime_warning():
    """Turn every RuntimeWarning (division, invalid value, overflow) into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def _random_rotation(rng, dim, ambient):
    """An ambient x dim matrix with orthonormal columns."""
    q, _ = np.linalg.qr(rng.normal(size=(ambient, dim)))
    return q


def _circle(n, rng, noise=0.0):
    angles = rng.uniform(0.0, 2 * np.pi, n)
    points = np.column_stack([np.cos(angles), np.sin(angles)])
    return angles, points + noise * rng.normal(size=points.shape)


def _anisotropic_3d_in_10d(n, rng):
    """Data that needs three components: a 3-D Gaussian placed in R^10."""
    latent = rng.normal(size=(n, 3)) * [3.0, 2.0, 1.5]
    return latent @ _random_rotation(rng, 3, 10).T + 5.0


class FirstCoordinate(TransformerMixin, BaseEstimator):
    """A custom transformer: keep x_1 only (folds a circle onto a segment)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X)[:, :1]


# ---------------------------------------------------------------------------
# bilipschitz_constants
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_scaled_translated_isometry(scale, no_runtime_warning):
    rng = np.random.default_rng(0)
    Z = rng.uniform(-1, 1, size=(300, 2))
    X = scale * Z @ _random_rotation(rng, 2, 5).T + rng.normal(size=5)

    K_free = bilipschitz_constants(Z, X, n_neighbors=8)
    K_fixed = bilipschitz_constants(Z, X, n_neighbors=8, scale_free=False)

    assert K_free.shape == (300,)
    assert_allclose(K_free, 1.0, rtol=1e-9)
    # With the local scale fixed to 1 the constant is max(s, 1/s).
    assert_allclose(K_fixed, max(scale, 1 / scale), rtol=1e-9)


def test_linear_map_constant_is_root_of_condition_number():
    rng = np.random.default_rng(1)
    Z = rng.uniform(-1, 1, size=(1500, 2))
    s_max, s_min = 4.0, 1.0
    V = _random_rotation(rng, 2, 2)
    A = _random_rotation(rng, 2, 3) @ np.diag([s_max, s_min]) @ V.T

    K = bilipschitz_constants(Z, Z @ A.T)

    expected = np.sqrt(s_max / s_min)
    # No ratio can leave [s_min, s_max], so K never exceeds the bound ...
    assert K.max() <= expected * (1 + 1e-9)
    # ... and with well-spread neighbours it is reached closely.
    assert np.median(K) == pytest.approx(expected, rel=0.03)
    # The scale-fixed form sees the largest stretch.
    K_fixed = bilipschitz_constants(Z, Z @ A.T, scale_free=False)
    assert np.median(K_fixed) == pytest.approx(s_max, rel=0.05)


def test_fold_gives_heavy_tail_located_at_the_fold(no_runtime_warning):
    rng = np.random.default_rng(2)
    flap = 0.15  # z_1 in [-flap, 1]: the strip z_1 < 0 is folded over z_1 > 0
    Z = np.column_stack([rng.uniform(-flap, 1, 1500), rng.uniform(-1, 1, 1500)])
    folded = np.column_stack([np.abs(Z[:, 0]), Z[:, 1]])
    smooth = np.column_stack([Z[:, 0] + 0.1 * np.sin(3 * Z[:, 1]), Z[:, 1]])

    fold = bilipschitz_summary(bilipschitz_constants(Z, folded), quantile=0.95)
    reference = bilipschitz_summary(bilipschitz_constants(Z, smooth), quantile=0.95)

    assert fold["median"] == pytest.approx(1.0)  # an isometry away from the fold
    assert fold["quantile"] > 2.5 * reference["quantile"]
    assert fold["max"] > 5 * reference["max"]

    K = bilipschitz_constants(Z, folded)
    worst = np.argsort(K)[-30:]
    assert np.all(np.abs(Z[worst, 0]) < flap + 0.05)
    assert_allclose(K[np.abs(Z[:, 0]) > flap + 0.15], 1.0)


def test_tear_gives_heavy_tail_located_at_the_cut(no_runtime_warning):
    rng = np.random.default_rng(3)
    angles, circle = _circle(800, rng)
    torn = bilipschitz_constants(angles[:, None], circle)  # codes in [0, 2 pi)
    smooth = bilipschitz_constants(2.0 * circle, circle)

    torn_summary = bilipschitz_summary(torn, quantile=0.99)
    smooth_summary = bilipschitz_summary(smooth, quantile=0.99)
    assert torn_summary["median"] == pytest.approx(1.0, abs=1e-3)
    assert torn_summary["quantile"] > 3 * smooth_summary["quantile"]
    assert torn_summary["max"] > 10 * smooth_summary["max"]

    distance_to_cut = np.minimum(angles, 2 * np.pi - angles)
    worst = np.argsort(torn)[-10:]
    assert np.all(distance_to_cut[worst] < 0.1)
    assert torn[distance_to_cut > 0.3].max() < 1.01


def test_exact_duplicate_pairs_are_merged(no_runtime_warning):
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(200, 2))
    X = np.column_stack([Z, np.sin(Z[:, 0])])
    repeated = np.r_[np.arange(200), [3, 3, 3, 17, 120]]

    K_unique = bilipschitz_constants(Z, X)
    K_repeated = bilipschitz_constants(Z[repeated], X[repeated])

    assert np.all(np.isfinite(K_repeated))
    assert_allclose(K_repeated, K_unique[repeated])


def test_more_duplicates_than_neighbours_uses_all_distinct_pairs(no_runtime_warning):
    Z = np.array([[0.0], [1.0], [3.0]])
    rows = np.repeat(np.arange(3), 5)  # 15 samples, only 3 distinct pairs
    K = bilipschitz_constants(Z[rows], 2.0 * Z[rows], n_neighbors=10)
    assert_allclose(K, 1.0)


def test_code_collapse_gives_infinite_constant_without_warning(no_runtime_warning):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 2))
    Z = X.copy()
    Z[1] = Z[0]  # two distinct data points share a code
    # x_0 and x_1 are not among each other's 5 nearest data points: only the
    # latent neighbours can reveal this collapse.
    K = bilipschitz_constants(Z, X, n_neighbors=5)
    assert np.isinf(K[0]) and np.isinf(K[1])
    assert not np.isnan(K).any()
    assert np.sum(np.isinf(K)) == 2  # only the pair that collapsed
    assert np.median(K) == pytest.approx(1.0)

    X_collapsed = X.copy()
    X_collapsed[1] = X_collapsed[0]  # two distinct codes decode to one point
    K = bilipschitz_constants(X, X_collapsed, n_neighbors=5)
    assert np.isinf(K[0]) and np.isinf(K[1])
    assert not np.isnan(K).any()


@pytest.mark.parametrize("scale_free", [True, False])
def test_constant_codes_give_infinite_constants_not_nan(scale_free, no_runtime_warning):
    X = np.random.default_rng(6).normal(size=(30, 2))
    K = bilipschitz_constants(
        np.zeros((30, 1)), X, n_neighbors=3, scale_free=scale_free
    )
    assert np.all(np.isposinf(K))
    summary = bilipschitz_summary(K)
    assert summary["n_infinite"] == 30
    assert all(not np.isnan(v) for v in summary.values())


def test_constants_are_at_least_one_and_use_both_neighbour_sets():
    rng = np.random.default_rng(7)
    angles, circle = _circle(300, rng)
    K = bilipschitz_constants(angles[:, None], circle, n_neighbors=5)
    assert np.all(K >= 1.0)
    # Data neighbours alone reveal the cut: if only latent neighbours were used,
    # the map angle -> point would look smooth everywhere.
    assert K.max() > 10


def test_summary_statistics():
    summary = bilipschitz_summary([1.0, 2.0, 4.0, 8.0, np.inf], quantile=0.5)
    assert summary["median"] == pytest.approx(4.0)
    assert summary["max"] == np.inf
    assert summary["mean_log"] == np.inf
    assert summary["n_infinite"] == 1
    assert summary["n_points"] == 5
    summary = bilipschitz_summary([1.0, 4.0], quantile=1.0)
    assert summary["geometric_mean"] == pytest.approx(2.0)
    assert summary["quantile"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match=">= 1"):
        bilipschitz_summary([0.5, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        bilipschitz_summary([np.nan, 2.0])


def test_bad_inputs_of_constants():
    rng = np.random.default_rng(8)
    Z, X = rng.normal(size=(20, 2)), rng.normal(size=(20, 3))
    with pytest.raises(ValueError, match="same number of samples"):
        bilipschitz_constants(Z, X[:-1])
    for bad in (np.nan, np.inf):
        Z_bad = Z.copy()
        Z_bad[3, 1] = bad
        with pytest.raises(ValueError, match="Z"):
            bilipschitz_constants(Z_bad, X)
        X_bad = X.copy()
        X_bad[0, 0] = bad
        with pytest.raises(ValueError, match="X"):
            bilipschitz_constants(Z, X_bad)
    with pytest.raises(ValueError, match="n_neighbors=20 must be smaller"):
        bilipschitz_constants(Z, X, n_neighbors=20)
    with pytest.raises(ValueError, match="n_neighbors"):
        bilipschitz_constants(Z, X, n_neighbors=0)
    with pytest.raises(ValueError, match="minimum of 2"):
        bilipschitz_constants(Z[:1], X[:1], n_neighbors=1)
    with pytest.raises(ValueError, match="identical"):
        bilipschitz_constants(np.ones((5, 2)), np.ones((5, 3)), n_neighbors=2)


@pytest.mark.parametrize("n_neighbors", [2, 10])
def test_identical_pairs_blame_the_duplicates_not_n_neighbors(n_neighbors):
    # All rows identical: whatever n_neighbors, the duplicates are the problem.
    with pytest.raises(ValueError, match=r"All 5 .* identical \(exact duplicate rows"):
        bilipschitz_constants(np.ones((5, 2)), np.ones((5, 3)), n_neighbors)
    # Most rows duplicated: n_neighbors is too large, and the message says why
    # the rows are fewer than they look.
    Z = np.r_[np.ones((4, 2)), [[0.0, 0.0]]]
    X = np.r_[np.ones((4, 3)), [[0.0, 0.0, 0.0]]]
    with pytest.raises(ValueError, match=r"only 2 of the .* exact duplicate rows"):
        bilipschitz_constants(Z, X, n_neighbors=10)
    assert_allclose(bilipschitz_constants(Z, X, n_neighbors=4), 1.0)


@pytest.mark.parametrize("scale", [1e300, 1e200, 1e-300, 2.0**-1000])
@pytest.mark.parametrize("scale_free", [True, False])
def test_constants_are_invariant_to_a_common_extreme_scale(
    scale, scale_free, no_runtime_warning
):
    # Squared distances at 1e300 overflow (the neighbour search used to fail with
    # numpy's "cannot reshape array") and at 1e-300 underflow to 0 (every
    # constant was inf, as if every point had collapsed).
    rng = np.random.default_rng(9)
    Z = rng.uniform(size=(150, 2))
    X = np.column_stack([Z, np.sin(3 * Z[:, 0])])
    expected = bilipschitz_constants(Z, X, scale_free=scale_free)
    K = bilipschitz_constants(Z * scale, X * scale, scale_free=scale_free)
    assert_allclose(K, expected, rtol=1e-9)


def test_constants_with_codes_and_data_at_different_extreme_scales(no_runtime_warning):
    # The scale-free form ignores the scale of either space; the scale-fixed
    # form sees the ratio, here 1e300, without overflow.
    rng = np.random.default_rng(12)
    Z = rng.uniform(size=(100, 2))
    for scale in (1e300, 1e-300):
        assert_allclose(bilipschitz_constants(Z, Z * scale), 1.0, rtol=1e-9)
        K_fixed = bilipschitz_constants(Z, Z * scale, scale_free=False)
        assert_allclose(K_fixed, max(scale, 1 / scale), rtol=1e-9)


# ---------------------------------------------------------------------------
# BiLipschitzScore
# ---------------------------------------------------------------------------


def test_scorer_ranks_pca_with_enough_components_first():
    rng = np.random.default_rng(10)
    X = _anisotropic_3d_in_10d(400, rng)
    scorer = BiLipschitzScore(random_state=0)
    scores = [scorer(PCA(n_components=k).fit(X), X) for k in (1, 2, 3)]
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] == pytest.approx(0.0, abs=1e-9)  # an isometry on the data

    # The decoder of PCA is an isometry whatever the number of components.
    decoder = BiLipschitzScore(mode="decoder", random_state=0)
    for k in (1, 2, 3):
        assert decoder(PCA(n_components=k).fit(X), X) == pytest.approx(0.0, abs=1e-9)


def test_scorer_prefers_isomap_of_a_loop_to_a_folding_projection():
    rng = np.random.default_rng(11)
    _, X = _circle(300, rng, noise=0.01)
    scorer = BiLipschitzScore(random_state=0)
    isomap = scorer(Isomap(n_neighbors=10, n_components=2).fit(X), X)
    projection = scorer(PCA(n_components=1).fit(X), X)
    custom = scorer(FirstCoordinate().fit(X), X)
    function = scorer(FunctionTransformer(lambda A: A[:, 1:]).fit(X), X)
    diffusion = scorer(
        DiffusionMapEmbedder(n_components=2, solver="exact", random_state=0).fit(X), X
    )
    assert diffusion > projection + 0.5
    assert diffusion > function + 0.5
    assert isomap > projection + 0.5
    assert isomap > custom + 0.5
    assert isomap > function + 0.5


def test_scorer_aggregates_and_distribution():
    rng = np.random.default_rng(12)
    _, X = _circle(300, rng)
    model = PCA(n_components=1).fit(X)
    summary = BiLipschitzScore(random_state=0).distribution(model, X, quantile=0.9)
    assert summary["median"] <= summary["quantile"] <= summary["max"]
    assert summary["n_points"] == 300
    scores = {
        aggregate: BiLipschitzScore(aggregate=aggregate, random_state=0)(model, X)
        for aggregate in ("mean", "median", "max", 0.9)
    }
    assert scores["mean"] == pytest.approx(-summary["mean_log"])
    assert scores["median"] == pytest.approx(-np.log(summary["median"]))
    assert scores[0.9] == pytest.approx(-np.log(summary["quantile"]))
    assert scores["max"] == pytest.approx(-np.log(summary["max"]))
    assert scores["max"] < scores[0.9] < scores["median"]


def test_scorer_subsample_is_seeded_and_pickles():
    rng = np.random.default_rng(13)
    X = _anisotropic_3d_in_10d(600, rng)
    model = make_pipeline(StandardScaler(), PCA(n_components=2)).fit(X)
    scorer = BiLipschitzScore(max_samples=200, random_state=42)
    score = scorer(model, X)
    assert scorer(model, X) == score
    assert scorer.distribution(model, X)["n_points"] == 200
    # A different subsample gives a different value.
    assert BiLipschitzScore(max_samples=200, random_state=1)(model, X) != score
    restored = pickle.loads(pickle.dumps(scorer))
    assert restored(model, X) == score
    assert "max_samples=200" in repr(restored)


def test_scorer_does_not_touch_global_random_state():
    X = _anisotropic_3d_in_10d(300, np.random.default_rng(14))
    model = PCA(n_components=2).fit(X)
    state = np.random.get_state()[1].copy()
    BiLipschitzScore(max_samples=100)(model, X)
    BiLipschitzScore(max_samples=100, random_state=0)(model, X)
    assert np.array_equal(np.random.get_state()[1], state)


def test_scorer_in_grid_search_with_two_jobs():
    X = _anisotropic_3d_in_10d(300, np.random.default_rng(15))
    search = GridSearchCV(
        PCA(),
        {"n_components": [1, 2, 3]},
        scoring=BiLipschitzScore(random_state=0),
        cv=KFold(3, shuffle=True, random_state=0),
        n_jobs=2,
    ).fit(X)
    assert search.best_params_ == {"n_components": 3}
    means = search.cv_results_["mean_test_score"]
    assert means[0] < means[1] < means[2]


def test_scorer_in_multimetric_search_and_cross_validate():
    X = _anisotropic_3d_in_10d(300, np.random.default_rng(16))
    scoring = {
        "mean": BiLipschitzScore(random_state=0),
        "tail": BiLipschitzScore(aggregate=0.9, random_state=0),
    }
    search = GridSearchCV(
        PCA(), {"n_components": [1, 3]}, scoring=scoring, refit="tail", cv=3, n_jobs=2
    ).fit(X)
    assert search.best_params_ == {"n_components": 3}
    assert hasattr(search, "best_estimator_")
    assert search.score(X) == pytest.approx(0.0, abs=1e-9)  # the refit metric

    results = cross_validate(PCA(n_components=1), X, scoring=scoring, cv=3)
    assert np.all(results["test_tail"] <= results["test_mean"])
    assert np.all(results["test_mean"] < -0.1)


def test_scorer_bad_estimators_and_parameters():
    rng = np.random.default_rng(17)
    X = rng.normal(size=(50, 3))
    regressor = LinearRegression().fit(X, X[:, 0])
    with pytest.raises(TypeError, match="LinearRegression has no transform"):
        BiLipschitzScore()(regressor, X)
    isomap = Isomap(n_neighbors=5, n_components=2).fit(X)
    assert np.isfinite(BiLipschitzScore()(isomap, X))
    with pytest.raises(TypeError, match="Isomap has no inverse_transform"):
        BiLipschitzScore(mode="decoder")(isomap, X)
    with pytest.raises(ValueError, match="n_neighbors=50 must be smaller"):
        BiLipschitzScore(n_neighbors=50)(PCA(2).fit(X), X)
    with pytest.raises(ValueError, match="mode"):
        BiLipschitzScore(mode="generator")
    with pytest.raises(ValueError, match="aggregate"):
        BiLipschitzScore(aggregate=1.5)
    with pytest.raises(ValueError, match="max_samples"):
        BiLipschitzScore(max_samples=1)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BiLipschitzScore()(FirstCoordinate(), X_nan)


def test_scorer_of_a_collapsing_transformer_is_minus_infinity(no_runtime_warning):
    X = np.random.default_rng(18).normal(size=(60, 2))
    constant = FunctionTransformer(lambda A: np.zeros((len(A), 1)))
    assert BiLipschitzScore()(constant.fit(X), X) == -np.inf
    summary = BiLipschitzScore().distribution(constant, X)
    assert summary["median"] == np.inf


def test_scorer_on_a_vdae_sampler_in_both_modes():
    from skvdae import VDAESampler
    from skvdae.datasets import make_loop

    X, _ = make_loop(600, noise=0.005, random_state=0)
    X_test, _ = make_loop(200, noise=0.005, random_state=1)
    sampler = VDAESampler(
        DiffusionMapEmbedder(solver="exact", n_components=2),
        covariance_scale=100.0,
        max_iter=600,
        random_state=0,
        device="cpu",
    ).fit(X)
    encoder = BiLipschitzScore(random_state=0)
    # The loop's diffusion coordinates are a circle: no fold, unlike a projection.
    assert encoder(sampler, X_test) > encoder(PCA(n_components=1).fit(X), X_test) + 0.5
    decoder = BiLipschitzScore(mode="decoder", random_state=0)
    report = decoder.distribution(sampler, X_test)
    assert np.isfinite(decoder(sampler, X_test))
    # A decoder that inverts the diffusion map is close to a local isometry
    # up to scale along the curve.
    assert report["median"] < 2.0
