"""Tests of the generative benchmark's baselines (``benchmarks.generative``)."""

import copy
import math

import numpy as np
import pytest
import torch

from benchmarks.generative import (
    GANDRS,
    WGANGP,
    GaussianVAE,
    HypersphericalVAE,
    PowerSpherical,
)
from benchmarks.generative.baselines import (
    drs_acceptance_probability,
    gradient_penalty,
    make_mlp,
    train_loop,
)
from benchmarks.generative.power_spherical import log_sphere_area

SMALL = {"hidden_layer_sizes": (32,), "batch_size": 64}
MEAN = np.array([1.0, -2.0])
COV = np.array([[2.0, 0.8], [0.8, 0.5]])


def _gaussian(n=500, seed=0):
    return np.random.RandomState(seed).multivariate_normal(MEAN, COV, size=n)


def _circle(n=500, seed=0):
    rng = np.random.RandomState(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    return np.c_[np.cos(t), np.sin(t)] + 0.02 * rng.randn(n, 2)


MODELS = {
    "vae": lambda rs: GaussianVAE(
        max_iter=400, learning_rate=1e-2, random_state=rs, **SMALL
    ),
    "hvae": lambda rs: HypersphericalVAE(
        max_iter=400, learning_rate=1e-2, random_state=rs, **SMALL
    ),
    "wgangp": lambda rs: WGANGP(
        max_iter=100, learning_rate=1e-3, random_state=rs, **SMALL
    ),
    "gandrs": lambda rs: GANDRS(
        max_iter=300, learning_rate=1e-3, n_burnin=2000, random_state=rs, **SMALL
    ),
}


@pytest.fixture(scope="module")
def fitted():
    X = _gaussian()
    return {name: make(0).fit(X) for name, make in MODELS.items()}


# -- shared pieces -----------------------------------------------------------


def test_make_mlp_default_is_one_tanh_layer_of_512():
    mlp = make_mlp(3, 2)
    kinds = [type(layer) for layer in mlp]
    assert kinds == [torch.nn.Linear, torch.nn.Tanh, torch.nn.Linear]
    assert mlp[0].out_features == 512
    assert mlp(torch.zeros(4, 3)).shape == (4, 2)


def test_train_loop_epochs_and_nonfinite_loss():
    seen = []

    def step(next_batch):
        seen.append(next_batch())
        return {"loss": torch.tensor(1.0)}

    history = train_loop(
        step, 10, max_iter=4, batch_size=5, generator=torch.Generator().manual_seed(0)
    )
    assert len(history) == 4
    # Each epoch visits every row exactly once.
    assert sorted(torch.cat(seen[:2]).tolist()) == list(range(10))
    assert sorted(torch.cat(seen[2:]).tolist()) == list(range(10))

    def bad_step(next_batch):
        next_batch()
        return {"loss": torch.tensor(float("nan"))}

    with pytest.raises(FloatingPointError, match="non-finite loss"):
        train_loop(
            bad_step,
            10,
            max_iter=3,
            batch_size=5,
            generator=torch.Generator().manual_seed(0),
        )


@pytest.mark.parametrize("name", list(MODELS))
def test_sample_shape_finite_and_fit_time(fitted, name):
    model = fitted[name]
    S = model.sample(50, random_state=0)
    assert S.shape == (50, 2)
    assert np.isfinite(S).all()
    assert model.fit_time_ > 0
    Z = np.random.RandomState(0).randn(7, model.latent_dim)
    assert model.inverse_transform(Z).shape == (7, 2)
    if name in ("vae", "hvae"):
        assert model.transform(_gaussian(9)).shape == (9, model.latent_dim)


@pytest.mark.parametrize("name", list(MODELS))
def test_determinism_and_global_rng_untouched(fitted, name):
    X = _gaussian()
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()
    again = MODELS[name](0).fit(X)
    a = again.sample(30, random_state=3)
    again.sample(30)  # random_state=None must not touch global RNGs either
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    np.testing.assert_array_equal(a, fitted[name].sample(30, random_state=3))
    assert not np.array_equal(a, again.sample(30, random_state=4))


def test_wgangp_has_no_transform():
    assert not hasattr(WGANGP(), "transform")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (GaussianVAE(max_iter=0), "max_iter"),
        (GaussianVAE(decoder_variance=-1.0), "decoder_variance"),
        (HypersphericalVAE(latent_dim=1), "latent_dim"),
        (WGANGP(lambda_gp=0.0), "lambda_gp"),
        (GANDRS(gamma_percentile=101), "gamma_percentile"),
        (GANDRS(hidden_layer_sizes=()), "hidden_layer_sizes"),
    ],
)
def test_invalid_parameters(model, message):
    with pytest.raises(ValueError, match=message):
        model.fit(_gaussian(20))


# -- Gaussian VAE ----------------------------------------------------------


def test_vae_matches_gaussian_moments_and_reconstructs():
    X = _gaussian()
    model = GaussianVAE(
        max_iter=400, learning_rate=1e-2, sample_noise=True, random_state=0, **SMALL
    ).fit(X)
    S = model.sample(4000, random_state=1)
    np.testing.assert_allclose(S.mean(axis=0), MEAN, atol=0.15)
    np.testing.assert_allclose(np.cov(S.T), COV, atol=0.25)
    # Latent 2 on 2-D data: encoder mean then decoder mean is nearly the identity.
    error = np.mean((model.inverse_transform(model.transform(X)) - X) ** 2)
    assert error < 0.2 * np.trace(COV) / 2


# -- power spherical and hyperspherical VAE --------------------------------


@pytest.mark.parametrize(("d", "kappa"), [(3, 5.0), (5, 2.0), (2, 10.0)])
def test_power_spherical_samples_match_closed_form_mean(d, kappa):
    generator = torch.Generator().manual_seed(0)
    loc = torch.randn(d, generator=generator, dtype=torch.float64)
    loc = loc / loc.norm()
    n = 40000
    dist = PowerSpherical(
        loc.expand(n, d), torch.full((n,), kappa, dtype=torch.float64)
    )
    x = dist.rsample(generator)
    np.testing.assert_allclose(x.norm(dim=-1).numpy(), 1.0, atol=1e-12)
    expected_t = kappa / (d - 1 + kappa)  # (alpha - beta) / (alpha + beta)
    np.testing.assert_allclose(dist.mean[0].numpy(), expected_t * loc.numpy())
    np.testing.assert_allclose(x.mean(0).numpy(), dist.mean[0].numpy(), atol=0.02)
    # KL to uniform, by Monte Carlo: E[log q] + log |S^(d-1)|.
    mc_kl = float(dist.log_prob(x).mean()) + log_sphere_area(d)
    assert mc_kl == pytest.approx(float(dist.kl_to_uniform()[0]), abs=0.03)


def test_power_spherical_kl_is_zero_at_kappa_zero_and_increasing():
    for d in (2, 3, 8):
        loc = torch.zeros(50, d, dtype=torch.float64)
        loc[:, 0] = 1.0
        kappa = torch.linspace(0.0, 50.0, 50, dtype=torch.float64)
        kl = PowerSpherical(loc, kappa).kl_to_uniform()
        assert abs(float(kl[0])) < 1e-10
        assert (kl.diff() > 0).all()
    assert math.exp(log_sphere_area(3)) == pytest.approx(4 * math.pi)


def test_power_spherical_is_reparameterised():
    generator = torch.Generator().manual_seed(0)
    loc = torch.tensor([[0.0, 0.6, 0.8]], requires_grad=True)
    kappa = torch.tensor([3.0], requires_grad=True)
    PowerSpherical(loc, kappa).rsample(generator).sum().backward()
    assert loc.grad is not None and kappa.grad is not None
    assert torch.isfinite(kappa.grad).all() and kappa.grad.abs().sum() > 0


def test_hyperspherical_vae_on_a_circle():
    X = _circle()
    model = HypersphericalVAE(
        latent_dim=2, max_iter=400, learning_rate=1e-2, random_state=0, **SMALL
    ).fit(X)
    np.testing.assert_allclose(np.linalg.norm(model.transform(X), axis=1), 1.0)
    radius = np.linalg.norm(model.sample(2000, random_state=0), axis=1)
    assert np.median(np.abs(radius - 1.0)) < 0.1
    assert np.median(np.abs(np.linalg.norm(X, axis=1) - 1.0)) < 0.1


# -- WGAN-GP ---------------------------------------------------------------


def test_gradient_penalty_zero_for_unit_lipschitz_linear_critic():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(64, 3, generator=generator)
    fake = torch.randn(64, 3, generator=generator)
    critic = torch.nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.0, 0.8]]))
    assert float(gradient_penalty(critic, real, fake, generator).detach()) < 1e-12
    with torch.no_grad():
        critic.weight.mul_(2.0)  # gradient norm 2 everywhere: penalty (2 - 1)^2
    assert float(
        gradient_penalty(critic, real, fake, generator).detach()
    ) == pytest.approx(1.0)
    penalty = gradient_penalty(critic, real, fake, generator)
    penalty.backward()
    assert critic.weight.grad.abs().sum() > 0


# -- GAN + discriminator rejection sampling --------------------------------


def test_drs_acceptance_probability_properties():
    logits = torch.linspace(-20.0, 3.0, 100, dtype=torch.float64)
    p = drs_acceptance_probability(logits, d_max=3.0, gamma=0.0)
    assert ((p >= 0) & (p <= 1)).all()
    assert (p.diff() >= 0).all()
    assert float(p[-1]) > 0.999  # the best-scored point is (almost) always kept
    assert float(p[0]) < 1e-6


class _FixedDiscriminator(torch.nn.Module):
    """Logit 5 x_0 (standardised): 'real' to the right, 'fake' to the left."""

    def forward(self, x):
        return 5.0 * x[:, :1]


def test_drs_rejects_what_the_discriminator_calls_fake(fitted):
    model = fitted["gandrs"]
    S = model.sample(500, random_state=0)
    assert 0 < model.last_acceptance_rate_ <= 1
    assert 0 < model.burnin_acceptance_rate_ <= 1
    assert S.shape == (500, 2)

    fixed = copy.deepcopy(model)
    fixed.discriminator_ = _FixedDiscriminator()
    fixed.calibrate_rejection(random_state=0)
    raw = fixed.sample(2000, random_state=0, rejection=False)
    kept = fixed.sample(2000, random_state=0)
    threshold = np.percentile(raw[:, 0], 50)
    assert np.mean(kept[:, 0] > threshold) > 0.9
    assert kept[:, 0].mean() > raw[:, 0].mean() + 0.5 * raw[:, 0].std()
    assert 0 < fixed.last_acceptance_rate_ < 0.5
    p = fixed.acceptance_probability(raw)
    order = np.argsort(raw[:, 0])
    assert (np.diff(p[order]) >= -1e-12).all()


def test_drs_gives_up_with_a_clear_error(fitted):
    model = copy.deepcopy(fitted["gandrs"]).set_params(
        gamma_percentile=100, max_proposals_factor=1
    )
    model.calibrate_rejection(random_state=0)
    with pytest.raises(RuntimeError, match="accepted after"):
        model.sample(200, random_state=0)


@pytest.mark.parametrize("cls", [GaussianVAE, HypersphericalVAE, WGANGP, GANDRS])
def test_sklearn_params_and_shared_defaults(cls):
    from sklearn.base import clone

    model = cls(random_state=3)
    params = clone(model).get_params()
    assert params["random_state"] == 3
    assert params["hidden_layer_sizes"] == (512,)
    assert params["activation"] == "tanh"
    with pytest.raises(Exception, match="not fitted"):
        model.sample(3)


# -- networks as parameters --------------------------------------------------


def _images(n=40, seed=0):
    """Small 1 x 6 x 8 images: a bright square moving along a row."""
    rng = np.random.RandomState(seed)
    images = np.zeros((n, 1, 6, 8))
    for row, column in enumerate(rng.randint(0, 6, n)):
        images[row, 0, 2:4, column : column + 2] = 1.0
    return images.reshape(n, -1) + 0.01 * rng.randn(n, 48)


@pytest.mark.parametrize("cls", [GaussianVAE, HypersphericalVAE, WGANGP, GANDRS])
def test_convolutional_networks_are_built_from_the_factories(cls):
    from sklearn.base import clone

    from skvdae.nn import ConvDecoder, ConvEncoder

    shape = {"image_shape": (1, 6, 8), "channels": (4,)}
    model = cls(
        3,
        encoder=ConvEncoder,
        encoder_params={**shape, "hidden_size": 8},
        decoder=ConvDecoder,
        decoder_params={**shape, "hidden_size": 8},
        max_iter=3,
        batch_size=16,
        random_state=0,
    )
    X = _images()
    model.fit(X)
    reads, writes, width = {
        GaussianVAE: ("encoder_", "decoder_", 6),
        HypersphericalVAE: ("encoder_", "decoder_", 4),
        WGANGP: ("critic_", "generator_", 1),
        GANDRS: ("discriminator_", "generator_", 1),
    }[cls]
    assert isinstance(getattr(model, reads), ConvEncoder)
    assert isinstance(getattr(model, writes), ConvDecoder)
    assert getattr(model, reads).head[-1].out_features == width
    assert model.sample(5, random_state=0).shape == (5, 48)
    # Seeded like the default networks: the same random_state, the same model.
    again = clone(model).fit(X)
    np.testing.assert_array_equal(
        again.sample(5, random_state=1), model.sample(5, random_state=1)
    )


def test_a_network_of_the_wrong_shape_fails_at_build_naming_the_parameter():
    def wrong(n_inputs, n_outputs):
        return torch.nn.Linear(n_inputs, n_outputs + 1)

    with pytest.raises(ValueError, match=r"decoder=wrong maps .* must return"):
        GaussianVAE(decoder=wrong, max_iter=1).fit(_gaussian(20))
    with pytest.raises(TypeError, match="encoder_params"):
        WGANGP(encoder=make_mlp, encoder_params={"depth": 2}, max_iter=1).fit(
            _gaussian(20)
        )
    with pytest.raises(TypeError, match="decoder_params must be None or a dict"):
        GANDRS(decoder=make_mlp, decoder_params=[1], max_iter=1).fit(_gaussian(20))
