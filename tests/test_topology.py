"""Tests of the Betti numbers of the generative benchmark (``topology``)."""

import math

import numpy as np
import pytest

pytest.importorskip("gudhi")

from benchmarks.generative.topology import (
    ThresholdCalibration,
    TopologyComparison,
    betti_numbers,
    calibrate_threshold,
    persistence_intervals,
    sample_betti_numbers,
)
from skvdae.datasets import make_sphere, make_torus


def _circle(n=500, noise=0.02, seed=0, radius=1.0):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, 2 * np.pi, n)
    X = radius * np.c_[np.cos(theta), np.sin(theta)]
    return X + noise * rng.standard_normal(X.shape)


def _disc(n=500, seed=0):
    rng = np.random.default_rng(seed)
    radius = np.sqrt(rng.uniform(size=n))
    phi = rng.uniform(0, 2 * np.pi, n)
    return np.c_[radius * np.cos(phi), radius * np.sin(phi)]


@pytest.fixture(scope="module")
def circle_calibration():
    return calibrate_threshold(persistence_intervals(_circle(seed=0)), (1, 1))


def test_circle_threshold_recovers_the_loop_on_a_fresh_sample(circle_calibration):
    calibration = circle_calibration
    assert isinstance(calibration, ThresholdCalibration)
    assert calibration.separation > 5
    assert calibration.max_noise < calibration.threshold < calibration.min_signal
    assert math.isclose(
        calibration.threshold,
        math.sqrt(calibration.max_noise * calibration.min_signal),
    )
    fresh = persistence_intervals(_circle(seed=1))
    assert betti_numbers(fresh, calibration.threshold) == (1, 1)
    # The essential H0 class is kept, with an infinite death.
    assert np.isinf(fresh[0][:, 1]).sum() == 1


def test_disc_has_no_loop(circle_calibration):
    intervals = persistence_intervals(_disc())
    assert betti_numbers(intervals, circle_calibration.threshold) == (1, 0)


def test_two_disjoint_circles(circle_calibration):
    shift = np.array([3.0, 0.0])
    X = np.concatenate([_circle(250, seed=2) + shift, _circle(250, seed=3) - shift])
    intervals = persistence_intervals(X)
    assert betti_numbers(intervals, circle_calibration.threshold) == (2, 2)


def test_gaussian_blob_is_told_from_a_circle(circle_calibration):
    # A blob of the circle's scale has no loop: the wrong topology is seen.
    # Its tails are cut at 2 standard deviations (radius 1, the circle's):
    # isolated outliers of an untruncated Gaussian are extra H0 components
    # of a lifetime comparable to the threshold, so only H1 is checked there.
    rng = np.random.default_rng(4)
    blob = 0.5 * rng.standard_normal((2000, 2))
    truncated = blob[np.linalg.norm(blob, axis=1) < 1.0][:500]
    threshold = circle_calibration.threshold
    assert betti_numbers(persistence_intervals(truncated), threshold) == (1, 0)
    assert betti_numbers(persistence_intervals(blob[:500]), threshold)[1] == 0


@pytest.mark.parametrize("complex", ["alpha", "rips"])
def test_filtration_is_in_data_units(complex):
    # Alpha radii are square-rooted: scaling the data scales the diagram.
    X = _circle(150, seed=5)
    h1 = persistence_intervals(X, complex=complex)[1]
    h1_scaled = persistence_intervals(3.0 * X, complex=complex)[1]
    np.testing.assert_allclose(np.sort(h1_scaled, axis=0), 3 * np.sort(h1, axis=0))
    death = h1[np.argmax(h1[:, 1] - h1[:, 0]), 1]
    # Alpha: the hole fills at ball radius ~1; Rips: at edges ~sqrt(3).
    expected = 1.0 if complex == "alpha" else math.sqrt(3)
    assert abs(death - expected) < 0.1


def test_sphere():
    X_real, _ = make_sphere(1000, random_state=0)
    X_fresh, _ = make_sphere(1000, random_state=1)
    calibration = calibrate_threshold(persistence_intervals(X_real), (1, 0, 1))
    assert calibration.separation > 3
    fresh = persistence_intervals(X_fresh)
    assert len(fresh) == 3
    assert betti_numbers(fresh, calibration.threshold) == (1, 0, 1)


def test_torus():
    X_real, _ = make_torus(2000, R=2.0, r=1.0, random_state=0)
    X_fresh, _ = make_torus(2000, R=2.0, r=1.0, random_state=1)
    calibration = calibrate_threshold(persistence_intervals(X_real), (1, 2, 1))
    assert calibration.separation > 2
    fresh = persistence_intervals(X_fresh)
    assert betti_numbers(fresh, calibration.threshold) == (1, 2, 1)


def test_rips_on_a_circle_in_high_dimension():
    rng = np.random.default_rng(6)
    rotation, _ = np.linalg.qr(rng.standard_normal((100, 2)))
    X_real = _circle(300, seed=7) @ rotation.T
    X_fresh = _circle(300, seed=8) @ rotation.T
    real = persistence_intervals(X_real, complex="auto")
    np.testing.assert_array_equal(
        real[1], persistence_intervals(X_real, complex="rips")[1]
    )
    assert len(real) == 2  # H0 and H1 by default for Rips
    calibration = calibrate_threshold(real, (1, 1))
    assert calibration.separation > 5
    fresh = persistence_intervals(X_fresh, complex="auto")
    assert betti_numbers(fresh, calibration.threshold) == (1, 1)


def test_subsampling_is_seeded_and_private():
    X = _circle(3000, seed=9)
    state = np.random.get_state()
    first = persistence_intervals(X, max_points=300, random_state=0)
    again = persistence_intervals(X, max_points=300, random_state=0)
    other = persistence_intervals(X, max_points=300, random_state=1)
    unseeded = persistence_intervals(X, max_points=300)
    sample_betti_numbers(X, X[:400], (1, 1), max_points=300)
    after = np.random.get_state()
    assert after[0] == state[0]
    np.testing.assert_array_equal(after[1], state[1])
    assert after[2:] == state[2:]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    # Every kept point is born in H0: exactly max_points of them.
    assert len(first[0]) == len(other[0]) == len(unseeded[0]) == 300
    # Generators and RandomState instances are accepted as seeds.
    rng = np.random.default_rng(0)
    gen = persistence_intervals(X, max_points=300, random_state=rng)
    np.testing.assert_array_equal(gen[0], first[0])
    persistence_intervals(X, max_points=300, random_state=np.random.RandomState(0))


def test_no_subsampling_below_max_points():
    X = _circle(200, seed=10)
    np.testing.assert_array_equal(
        persistence_intervals(X, random_state=0)[1],
        persistence_intervals(X, random_state=1)[1],
    )


def test_default_max_dimension():
    assert len(persistence_intervals(_circle(50))) == 2
    assert len(persistence_intervals(make_sphere(50, random_state=0)[0])) == 3
    assert len(persistence_intervals(np.arange(5.0)[:, None])) == 1
    assert len(persistence_intervals(_circle(50), max_dimension=0)) == 1


def test_single_point_has_one_component():
    (h0,) = persistence_intervals(np.zeros((1, 2)), max_dimension=0)
    np.testing.assert_array_equal(h0, [[0.0, np.inf]])


def test_betti_numbers_counts_strictly_longer_lifetimes():
    h0 = np.array([[0.0, 0.5], [0.0, 2.0], [0.0, np.inf]])
    h1 = np.array([[0.5, 1.5], [1.0, 1.2]])
    h2 = np.empty((0, 2))
    assert betti_numbers([h0, h1, h2], 1.0) == (2, 0, 0)
    assert betti_numbers([h0, h1, h2], 0.5) == (2, 1, 0)
    assert betti_numbers([h0, h1, h2], 0.1) == (3, 2, 0)
    assert betti_numbers([h0, h1, h2], np.inf) == (0, 0, 0)
    with pytest.raises(ValueError, match="threshold"):
        betti_numbers([h0], -1.0)
    with pytest.raises(ValueError, match="threshold"):
        betti_numbers([h0], float("nan"))


def test_calibrate_threshold_by_hand():
    h0 = np.array([[0.0, 0.1], [0.0, 0.2], [0.0, np.inf]])
    h1 = np.array([[0.1, 0.3], [0.2, 3.4], [0.5, 8.5]])
    calibration = calibrate_threshold([h0, h1], (1, 2))
    assert calibration.min_signal == pytest.approx(3.2)
    assert calibration.max_noise == pytest.approx(0.2)
    assert calibration.threshold == pytest.approx(math.sqrt(0.64))
    assert calibration.separation == pytest.approx(16.0)
    assert betti_numbers([h0, h1], calibration.threshold) == (1, 2)
    # Asking for a third loop: the truth is not in the data.
    bad = calibrate_threshold([h0, h1], (1, 3))
    assert bad.separation <= 1
    # Dimensions beyond true_betti are noise (Betti number 0).
    h2 = np.array([[1.0, 1.5]])
    assert calibrate_threshold([h0, h1, h2], (1, 2)).max_noise == pytest.approx(0.5)
    # No noise at all.
    clean = calibrate_threshold([h0[2:], h1[1:]], (1, 2))
    assert clean.separation == np.inf
    assert clean.threshold == pytest.approx(1.6)


def test_calibrate_threshold_errors():
    h0 = np.array([[0.0, 0.1], [0.0, np.inf]])
    h1 = np.array([[0.1, 0.3]])
    with pytest.raises(ValueError, match="max_dimension=2"):
        calibrate_threshold([h0, h1], (1, 0, 1))
    with pytest.raises(ValueError, match="finite lifetime"):
        calibrate_threshold([h0, h1], (1, 0))
    with pytest.raises(ValueError, match="non-negative"):
        calibrate_threshold([h0, h1], (1, -1))
    with pytest.raises(ValueError, match="shape"):
        calibrate_threshold([np.ones((2, 3))], (1,))


def test_sample_betti_numbers():
    result = sample_betti_numbers(
        _circle(1000, seed=11), _disc(300, seed=12), (1, 1), random_state=0
    )
    assert isinstance(result, TopologyComparison)
    assert result.complex == "alpha"
    assert result.n_points == 300  # real data cut to the samples' size
    assert result.real_betti == (1, 1)
    assert result.sample_betti == (1, 0)
    assert result.separation > 5
    again = sample_betti_numbers(
        _circle(1000, seed=11), _disc(300, seed=12), (1, 1), random_state=0
    )
    assert again == result
    capped = sample_betti_numbers(
        _circle(1000, seed=11), _circle(400, seed=13), (1, 1), max_points=200
    )
    assert capped.n_points == 200
    assert capped.sample_betti == (1, 1)


@pytest.mark.parametrize(
    "X, kwargs, match",
    [
        (np.array([[0.0, 1.0], [np.nan, 2.0]]), {}, "NaN"),
        (np.arange(5.0), {}, "2D"),
        (np.zeros((5, 2)), {"complex": "cech"}, "complex must be"),
        (np.zeros((5, 4)), {"complex": "alpha"}, "at most 3 features"),
        (np.zeros((5, 2)), {"max_points": 0}, "max_points"),
        (np.zeros((5, 2)), {"max_dimension": -1}, "max_dimension"),
    ],
)
def test_bad_input(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        persistence_intervals(X, **kwargs)


def test_sample_betti_numbers_bad_input():
    with pytest.raises(ValueError, match="features"):
        sample_betti_numbers(np.zeros((5, 2)), np.zeros((5, 3)), (1, 1))
    with pytest.raises(ValueError, match="NaN"):
        sample_betti_numbers(_circle(50), np.full((5, 2), np.nan), (1, 1))
