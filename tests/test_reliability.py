"""Failures found by adversarial probing: each is now a clear error or a right answer.

The probes of the reliability issue, one test per numbered point (points 7, 9,
10 and 11 are in the metrics, model-file and command-line tests).
"""

import numpy as np
import pytest

from skvdae import DiffusionMapEmbedder, VDAESampler


def _circle(n=200):
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[np.cos(theta), np.sin(theta)]


def _fast_sampler(**params):
    params = {"max_iter": 100, "random_state": 0, "device": "cpu", **params}
    return VDAESampler(DiffusionMapEmbedder(solver="exact", n_components=2), **params)


# 1. Training that blows up without a non-finite loss


def test_an_exploding_vdae_fit_fails_loudly():
    with pytest.raises(FloatingPointError, match=r"diverged.*exploding loss"):
        _fast_sampler(learning_rate=1e3).fit(_circle())


# 2. Data at extreme scales


@pytest.mark.parametrize("scale", [1e-50, 1e50])
def test_spectralnet_at_extreme_scales_matches_unit_scale(scale):
    X = _circle()
    unit = DiffusionMapEmbedder(n_components=2, random_state=0).fit(X)
    scaled = DiffusionMapEmbedder(n_components=2, random_state=0).fit(X * scale)
    assert np.all(scaled.eigenvalues_ <= 1.0)
    np.testing.assert_allclose(scaled.eigenvalues_, unit.eigenvalues_, rtol=1e-4)
    np.testing.assert_allclose(
        scaled.transform(X * scale), unit.transform(X), atol=1e-3
    )


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_vdae_at_extreme_scales_samples_on_the_circle(scale):
    sampler = _fast_sampler(max_iter=300).fit(_circle() * scale)
    radii = np.linalg.norm(sampler.sample(200, random_state=0), axis=1) / scale
    assert np.all(np.abs(radii - 1.0) < 0.2), radii.min()


# 3. Degenerate settings warn, naming the setting


def test_degenerate_settings_warn():
    X = _circle()
    with pytest.warns(UserWarning, match="bandwidth 1e-12"):
        DiffusionMapEmbedder(solver="exact", bandwidth=1e-12, n_components=2).fit(X)
    with pytest.warns(UserWarning, match="diffusion_time=1e"):
        DiffusionMapEmbedder(solver="exact", diffusion_time=1e6, n_components=2).fit(X)
    with pytest.warns(UserWarning, match="noise_variance=1e"):
        _fast_sampler(noise_variance=1e300, max_iter=5).fit(X)


# 4. One layer-size check


@pytest.mark.parametrize(
    "make",
    [
        lambda sizes: DiffusionMapEmbedder(hidden_layer_sizes=sizes, max_iter=5),
        lambda sizes: VDAESampler(
            DiffusionMapEmbedder(solver="exact"),
            decoder_hidden_layer_sizes=sizes,
            max_iter=5,
        ),
    ],
)
def test_fractional_layer_sizes_are_refused_not_truncated(make):
    with pytest.raises(ValueError, match=r"positive integers, got \(64.5,\)"):
        make((64.5,)).fit(_circle())


# 5. Finite but far inputs


def test_far_inputs_are_refused_with_a_message_not_nan():
    X = _circle()
    far = np.array([[1e154, 0.0]])
    embedder = DiffusionMapEmbedder(solver="exact", n_components=2).fit(X)
    sampler = _fast_sampler(max_iter=20).fit(X)
    calls = [
        lambda: embedder.transform(far),
        lambda: sampler.score_samples(far),
        lambda: sampler.sample(2, seeds=far, random_state=0),
        lambda: sampler.random_walk(far, 2, random_state=0),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="overflow"):
            call()
    # Far but representable points get finite coordinates.
    assert np.all(np.isfinite(embedder.transform([[1e100, 0.0]])))


# 6. The data's scale is checked up front


def test_fit_checks_the_scale_up_front():
    X = _circle()
    with pytest.raises(ValueError, match="overflow"):
        DiffusionMapEmbedder(solver="exact").fit(X * 1e300)
    with pytest.raises(ValueError, match="underflow"):
        DiffusionMapEmbedder(solver="exact").fit(X * 1e-300)


# 8. Right advice


def test_a_flat_kernel_asks_for_a_smaller_bandwidth():
    with pytest.raises(ValueError, match="smaller bandwidth"):
        DiffusionMapEmbedder(solver="exact", bandwidth=1e300, n_components=2).fit(
            _circle()
        )


def test_spectralnet_is_not_broken_by_a_far_group():
    """A far group set the inputs' mean and spread: the network saw two spots."""
    rng = np.random.RandomState(0)
    X = np.r_[_circle(), 1e6 + rng.normal(size=(5, 2))]
    embedder = DiffusionMapEmbedder(n_components=2, random_state=0).fit(X)
    assert np.all((embedder.eigenvalues_ > 0) & (embedder.eigenvalues_ <= 1))


# 12. Small data at the default parameters


def test_small_data_at_the_defaults():
    X = np.random.RandomState(0).uniform(size=(8, 1))
    with pytest.warns(UserWarning, match="bandwidth_neighbors=10"):
        embedder = DiffusionMapEmbedder(random_state=0).fit(X)
    assert np.all(embedder.eigenvalues_ > 0)
