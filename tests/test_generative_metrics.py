"""Tests of precision/recall/density/coverage and of the Gaussian-kernel MMD."""

import warnings

import numpy as np
import pytest
from sklearn import config_context

from skvdae.metrics import (
    maximum_mean_discrepancy,
    median_heuristic_bandwidth,
    precision_recall_density_coverage,
)

ALGORITHMS = ["kd_tree", "ball_tree", "brute"]


def _pairwise_distances_dense(A, B):
    return np.linalg.norm(A[:, None, :] - B[None, :, :], axis=-1)


def _prdc_dense(real, fake, k):
    """Naeem et al.'s formulas on full distance matrices (closed balls)."""
    real_radii = np.sort(_pairwise_distances_dense(real, real), axis=1)[:, k]
    fake_radii = np.sort(_pairwise_distances_dense(fake, fake), axis=1)[:, k]
    distances = _pairwise_distances_dense(real, fake)  # real x fake
    in_real_ball = distances <= real_radii[:, None]
    in_fake_ball = distances <= fake_radii[None, :]
    return {
        "precision": in_real_ball.any(axis=0).mean(),
        "recall": in_fake_ball.any(axis=1).mean(),
        "density": in_real_ball.sum() / (k * fake.shape[0]),
        "coverage": in_real_ball.any(axis=1).mean(),
    }


def _gaussian_mmd2_dense(X, Y, sigma, biased):
    def gram(A, B):
        return np.exp(-(_pairwise_distances_dense(A, B) ** 2) / (2 * sigma**2))

    Kxx, Kyy, Kxy = gram(X, X), gram(Y, Y), gram(X, Y)
    m, n = len(X), len(Y)
    if biased:
        return Kxx.mean() + Kyy.mean() - 2 * Kxy.mean()
    return (
        (Kxx.sum() - np.trace(Kxx)) / (m * (m - 1))
        + (Kyy.sum() - np.trace(Kyy)) / (n * (n - 1))
        - 2 * Kxy.mean()
    )


# ---------------------------------------------------------------------------
# precision, recall, density, coverage
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("working_memory", [0.001, 0.05, None])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_prdc_chunked_equals_dense_formula(algorithm, working_memory, n_jobs):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(150, 3))
    # Fakes of mixed quality: some on the data, some shifted, a few outliers.
    fake = np.r_[
        rng.normal(size=(90, 3)),
        rng.normal(size=(40, 3)) + 1.5,
        rng.uniform(-8, 8, size=(10, 3)),
    ]
    expected = _prdc_dense(real, fake, k=4)
    result = precision_recall_density_coverage(
        real,
        fake,
        n_neighbors=4,
        algorithm=algorithm,
        working_memory=working_memory,
        n_jobs=n_jobs,
    )
    assert result == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_prdc_small_scale_data_with_a_far_outlier_equals_dense(algorithm):
    # A far point makes |a|^2 huge next to the tiny radii: the rounding guard of
    # the brute-force path must stay relative to each pair, not global.
    rng = np.random.default_rng(20)
    real = rng.normal(size=(200, 3)) * 1e-3
    fake = np.r_[rng.normal(size=(200, 3)) * 1e-3, [[1e4, 0.0, 0.0]]]
    expected = _prdc_dense(real, fake, k=5)
    result = precision_recall_density_coverage(real, fake, algorithm=algorithm)
    assert result == pytest.approx(expected, abs=1e-12)


def test_prdc_identical_distributions_near_one():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2))
    result = precision_recall_density_coverage(real, fake)
    assert result["precision"] > 0.95
    assert result["recall"] > 0.95
    assert result["density"] == pytest.approx(1.0, abs=0.1)
    assert result["coverage"] > 0.9


def test_prdc_disjoint_distributions_zero():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 2))
    fake = rng.normal(size=(300, 2)) + np.array([30.0, 0.0])
    assert precision_recall_density_coverage(real, fake) == {
        "precision": 0.0,
        "recall": 0.0,
        "density": 0.0,
        "coverage": 0.0,
    }


def test_junk_lowers_precision_and_density_but_not_recall():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(1000, 2))
    clean = rng.normal(size=(1000, 2))
    good = clean[:900]
    junk = np.r_[good, rng.uniform(20, 40, size=(100, 2))]  # 10% junk far away

    clean_metrics = precision_recall_density_coverage(real, clean)
    good_metrics = precision_recall_density_coverage(real, good)
    junk_metrics = precision_recall_density_coverage(real, junk)

    # Junk is never in a real ball: both fidelity metrics lose exactly 10%.
    assert junk_metrics["precision"] == pytest.approx(0.9 * good_metrics["precision"])
    assert junk_metrics["density"] == pytest.approx(0.9 * good_metrics["density"])
    assert junk_metrics["precision"] < clean_metrics["precision"] - 0.05
    assert junk_metrics["density"] < clean_metrics["density"] - 0.05
    # Recall does not see the junk at all (the documented weakness).
    assert junk_metrics["recall"] == good_metrics["recall"]
    assert junk_metrics["recall"] >= clean_metrics["recall"] - 0.01
    # Coverage is computed on the real balls only, and junk does not change it.
    assert junk_metrics["coverage"] == good_metrics["coverage"]


def test_prdc_mode_collapse_lowers_recall_and_coverage():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(800, 2))
    collapsed = rng.normal(size=(800, 2)) * 0.2  # all fakes near the mode
    result = precision_recall_density_coverage(real, collapsed)
    assert result["precision"] > 0.95
    assert result["recall"] < 0.3
    assert result["coverage"] < 0.3


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("n_features", [2, 20])
def test_prdc_of_a_sample_against_itself(algorithm, n_features):
    # Every ball holds its centre and exactly its k neighbours (boundary included).
    real = np.random.default_rng(5).normal(size=(500, n_features)) * 3 + 7
    result = precision_recall_density_coverage(real, real.copy(), algorithm=algorithm)
    assert result == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "density": 6 / 5, "coverage": 1.0}
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("n_features", [2, 20])
def test_prdc_duplicates_and_no_runtime_warning(algorithm, n_features):
    rng = np.random.default_rng(5)
    # Six copies of each point: every k-NN radius is 0.
    real = np.repeat(rng.normal(size=(50, n_features)) * 30 + 7, 6, axis=0)
    fake = real.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = precision_recall_density_coverage(
            real, fake, n_neighbors=5, algorithm=algorithm
        )
    # Each real ball has radius 0 and holds the 6 exact copies in the fake set.
    assert result == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "density": 6 / 5, "coverage": 1.0}
    )


def test_prdc_bad_inputs():
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(20, 2)), rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="same number of features"):
        precision_recall_density_coverage(real, rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match=r"n_neighbors=10 must be smaller .* fake"):
        precision_recall_density_coverage(real, fake, n_neighbors=10)
    with pytest.raises(ValueError, match=r"n_neighbors=20 must be smaller .* real"):
        precision_recall_density_coverage(real, rng.normal(size=(30, 2)), 20)
    for bad in (np.nan, np.inf):
        fake_bad = fake.copy()
        fake_bad[2, 1] = bad
        with pytest.raises(ValueError, match="fake"):
            precision_recall_density_coverage(real, fake_bad, n_neighbors=3)
    with pytest.raises(ValueError, match="algorithm"):
        precision_recall_density_coverage(real, fake, algorithm="kdtree")
    with pytest.raises(ValueError, match="working_memory"):
        precision_recall_density_coverage(real, fake, working_memory=0)


# ---------------------------------------------------------------------------
# MMD
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("biased", [False, True])
@pytest.mark.parametrize("working_memory", [0.001, 0.02, None])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_mmd_chunked_equals_dense_formula(biased, working_memory, n_jobs):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 4)) + 100.0  # far from the origin: tests centring
    Y = rng.normal(size=(90, 4)) * 1.3 + 100.5
    expected = _gaussian_mmd2_dense(X, Y, sigma=1.7, biased=biased)
    result = maximum_mean_discrepancy(
        X, Y, bandwidth=1.7, biased=biased, working_memory=working_memory, n_jobs=n_jobs
    )
    assert result == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_mmd_same_distribution_near_zero_and_shift_positive():
    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(600, 3)), rng.normal(size=(600, 3))
    same = maximum_mean_discrepancy(X, Y, random_state=0)
    shifted = maximum_mean_discrepancy(X, Y + np.array([1.0, 0.0, 0.0]), random_state=0)
    far = maximum_mean_discrepancy(X, Y + np.array([3.0, 0.0, 0.0]), random_state=0)
    assert abs(same) < 0.005
    assert shifted > 0.05
    assert far > shifted  # grows with the shift
    # The biased estimate is never negative; it exceeds the unbiased one here.
    biased = maximum_mean_discrepancy(X, Y, biased=True, random_state=0)
    assert biased >= 0
    assert biased > same
    # MMD(X, X) with the biased estimate is exactly 0.
    assert maximum_mean_discrepancy(X, X, biased=True, bandwidth=1.0) == (
        pytest.approx(0.0, abs=1e-12)
    )


def test_median_heuristic_bandwidth():
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 1.0
    pooled = np.r_[X, Y]
    expected = np.median(
        _pairwise_distances_dense(pooled, pooled)[np.triu_indices(70, 1)]
    )
    assert median_heuristic_bandwidth(X, Y) == pytest.approx(expected)
    # Duplicates give zero distances, which are left out.
    assert median_heuristic_bandwidth(np.array([[0.0], [0.0], [1.0], [3.0]])) == 2.0
    # Subsampling is seeded and keeps the scale.
    big = rng.normal(size=(3000, 2))
    first = median_heuristic_bandwidth(big, max_samples=300, random_state=0)
    assert first == median_heuristic_bandwidth(big, max_samples=300, random_state=0)
    full_scale = np.sqrt(2) * 1.1774  # median distance of two standard normals in 2-D
    assert first == pytest.approx(full_scale, rel=0.1)
    # The MMD uses it by default.
    assert maximum_mean_discrepancy(X, Y, random_state=0) == pytest.approx(
        maximum_mean_discrepancy(X, Y, bandwidth=median_heuristic_bandwidth(X, Y))
    )


def test_mmd_does_not_touch_global_random_state():
    X = np.random.default_rng(10).normal(size=(200, 2))
    state = np.random.get_state()[1].copy()
    maximum_mean_discrepancy(X[:100], X[100:], bandwidth_samples=50)
    maximum_mean_discrepancy(X[:100], X[100:], bandwidth_samples=50, random_state=1)
    assert np.array_equal(np.random.get_state()[1], state)


def test_mmd_respects_global_working_memory():
    rng = np.random.default_rng(11)
    X, Y = rng.normal(size=(100, 2)), rng.normal(size=(80, 2)) + 0.3
    expected = _gaussian_mmd2_dense(X, Y, sigma=1.0, biased=False)
    with config_context(working_memory=0.001):  # one row per chunk
        assert maximum_mean_discrepancy(X, Y, bandwidth=1.0) == pytest.approx(expected)


def test_mmd_bad_inputs():
    rng = np.random.default_rng(12)
    X, Y = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    with pytest.raises(ValueError, match="same number of features"):
        maximum_mean_discrepancy(X, rng.normal(size=(20, 3)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        maximum_mean_discrepancy(X, Y[:1])
    with pytest.raises(ValueError, match="bandwidth"):
        maximum_mean_discrepancy(X, Y, bandwidth=0.0)
    with pytest.raises(ValueError, match="bandwidth"):
        maximum_mean_discrepancy(X, Y, bandwidth="scott")
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        maximum_mean_discrepancy(X_nan, Y)
    with pytest.raises(ValueError, match="no positive distance"):
        maximum_mean_discrepancy(np.ones((5, 2)), np.ones((4, 2)))


# ---------------------------------------------------------------------------
# Extreme scales
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e300, 1e200, 1e-300, 2.0**-1000])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_prdc_is_invariant_to_extreme_scales(scale, algorithm):
    # Squared distances at 1e300 overflow (the neighbour search used to fail with
    # numpy's "cannot reshape array") and at 1e-300 underflow to 0 (every ball
    # held every point).
    rng = np.random.default_rng(13)
    real = rng.normal(size=(200, 3))
    fake = rng.normal(size=(150, 3)) + 0.5
    expected = precision_recall_density_coverage(real, fake, algorithm=algorithm)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = precision_recall_density_coverage(
            real * scale, fake * scale, algorithm=algorithm
        )
    assert result == pytest.approx(expected, abs=1e-12)


def test_prdc_of_data_far_from_the_origin():
    rng = np.random.default_rng(14)
    real, fake = rng.normal(size=(200, 2)), rng.normal(size=(150, 2)) + 0.5
    expected = precision_recall_density_coverage(real, fake)
    offset = 1e3
    result = precision_recall_density_coverage(
        real * 1e-5 + offset, fake * 1e-5 + offset
    )
    assert result == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize("scale", [1e200, 1e300, 1e-200, 1e-300])
def test_mmd_at_extreme_scales_equals_mmd_at_scale_one(scale):
    # The kernel depends on |x - y| / bandwidth: data and bandwidth scaled alike
    # give the same value (it was NaN or an OverflowError at 1e200, and a false
    # "all points coincide" at 1e-200).
    rng = np.random.default_rng(15)
    X, Y = rng.normal(size=(150, 3)), rng.normal(size=(120, 3)) + 0.4
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for biased in (False, True):
            expected = maximum_mean_discrepancy(X, Y, bandwidth=1.3, biased=biased)
            scaled = maximum_mean_discrepancy(
                X * scale, Y * scale, bandwidth=1.3 * scale, biased=biased
            )
            assert scaled == pytest.approx(expected, rel=1e-9)
        expected = maximum_mean_discrepancy(X, Y, random_state=0)
        scaled = maximum_mean_discrepancy(X * scale, Y * scale, random_state=0)
        assert np.isfinite(scaled)
        assert scaled == pytest.approx(expected, rel=1e-9)
        bandwidth = median_heuristic_bandwidth(X * scale, Y * scale)
        assert bandwidth == pytest.approx(median_heuristic_bandwidth(X, Y) * scale)


def test_mmd_bandwidth_far_from_the_data_scale():
    rng = np.random.default_rng(16)
    X, Y = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        # A huge bandwidth makes every kernel value 1, a tiny one every value
        # between distinct points 0: both estimates are 0, never NaN.
        assert maximum_mean_discrepancy(X, Y, bandwidth=1e300) == 0.0
        assert maximum_mean_discrepancy(X * 1e-300, Y, bandwidth=1e300) == 0.0
        assert maximum_mean_discrepancy(X, Y, bandwidth=1e-100) == 0.0
        # Where |x - y|^2 / (2 bandwidth^2) overflows, a clear error.
        with pytest.raises(ValueError, match="bandwidth=1e-200 is too small"):
            maximum_mean_discrepancy(X, Y, bandwidth=1e-200)
        with pytest.raises(ValueError, match="overflows float64"):
            maximum_mean_discrepancy(X * 1e300, Y * 1e300, bandwidth=1e-10)
    with pytest.raises(ValueError, match="exceeds the float64 range"):
        median_heuristic_bandwidth(np.array([[-1.7e308], [1.7e308]]))
