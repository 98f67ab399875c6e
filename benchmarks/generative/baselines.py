"""Baseline generative models for the VDAE benchmark (issue 5).

Four baselines, small and fair: every network is built by :func:`make_mlp`
(default one hidden layer of 512 tanh units, the paper's budget on the synthetic
sets) unless an ``encoder`` or ``decoder`` factory is given (the benchmark's
images get :class:`skvdae.nn.ConvEncoder` and :class:`skvdae.nn.ConvDecoder`),
and every model is trained by :func:`train_loop` (minibatches drawn
without replacement, epoch after epoch, Adam), the package's own training loop
(:func:`skvdae.nn.fit_minibatches`), so that the models differ only in what
they are, not in how they are trained.

- :class:`GaussianVAE`: Gaussian prior, Gaussian encoder, Gaussian decoder.
- :class:`HypersphericalVAE`: uniform prior on ``S^(latent_dim - 1)`` and a
  power spherical posterior (De Cao & Aziz, 2020).
- :class:`WGANGP`: Wasserstein GAN with gradient penalty (Gulrajani et al., 2017).
- :class:`GANDRS`: non-saturating GAN with discriminator rejection sampling
  (Azadi et al., 2019).

All of them standardise their inputs internally (and un-standardise their
outputs), are seeded by ``random_state`` through explicit ``torch.Generator``
objects and ``torch.random.fork_rng`` (the caller's global numpy and torch
generators are never advanced), and raise ``FloatingPointError`` on a
non-finite loss.
"""

import math
import numbers
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted
from torch import nn
from torch.nn import functional as F

from skvdae.nn import (
    MLP,
    FitProgress,
    build_network,
    descend,
    fit_minibatches,
    make_generator,
    seed_from,
    seeded_torch,
)
from skvdae.utils import check_random_state

from .power_spherical import PowerSpherical

_DTYPE = torch.float32

__all__ = [
    "GANDRS",
    "WGANGP",
    "GaussianVAE",
    "HypersphericalVAE",
    "drs_acceptance_probability",
    "gradient_penalty",
    "make_mlp",
    "train_loop",
]


# --------------------------------------------------------------------------
# Shared building blocks
# --------------------------------------------------------------------------


def make_mlp(n_inputs, n_outputs, hidden_layer_sizes=(512,), activation="tanh"):
    """The baselines' default network builder.

    Parameters
    ----------
    n_inputs, n_outputs : int
    hidden_layer_sizes : sequence of int, default=(512,)
    activation : {'tanh', 'relu', 'silu', 'softplus'}, default='tanh'

    Returns
    -------
    torch.nn.Module
        ``Linear -> activation`` per hidden layer, then a final ``Linear``,
        in float32.
    """
    return MLP(n_inputs, n_outputs, tuple(hidden_layer_sizes), activation).to(_DTYPE)


def train_loop(
    step,
    n_samples,
    *,
    max_iter,
    batch_size,
    generator,
    verbose=False,
    name="model",
):
    """The benchmark's epochs over :func:`skvdae.nn.fit_minibatches`.

    Parameters
    ----------
    step : callable
        ``step(next_batch) -> dict[str, torch.Tensor or float]``: one training
        iteration that updates its models itself (it may draw several
        batches, e.g. WGAN-GP's critic steps); ``next_batch()`` returns a
        ``LongTensor`` of row indices. The returned losses are logged and
        checked for finiteness.
    n_samples : int
        Number of training rows.
    max_iter : int
        Number of calls to ``step``.
    batch_size : int
        Rows per batch (capped at ``n_samples``).
    generator : torch.Generator
        Drives the shuffling.
    verbose : bool, default=False
        Print the losses ten times per run.
    name : str
        Used in messages.

    Returns
    -------
    list of dict
        The losses of every iteration, as floats.

    Raises
    ------
    FloatingPointError
        As soon as a loss is not finite: the baselines get no restarts, the
        VDAE's divergence policy with ``max_restarts=0`` (and no check of the
        loss's growth, which a GAN's losses, without a floor, would trip).
    """
    batch = min(int(batch_size), int(n_samples))
    order = torch.randperm(n_samples, generator=generator)
    position = 0

    def next_batch():
        nonlocal order, position
        if position + batch > n_samples:
            order = torch.randperm(n_samples, generator=generator)
            position = 0
        indices = order[position : position + batch]
        position += batch
        return indices

    result = fit_minibatches(
        lambda iteration: step(next_batch),
        max_iter=max_iter,
        optimizers=[],
        max_restarts=0,
        max_growth=None,
        name=name,
        progress=FitProgress(name, max_iter, verbose),
    )
    return result.history


def _check_positive_int(value, name, minimum=1):
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_positive_float(value, name):
    if not isinstance(value, numbers.Real) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


def _sample_generator(random_state):
    """A CPU ``torch.Generator`` from ``random_state`` (global RNGs untouched)."""
    return make_generator(seed_from(check_random_state(random_state)), "cpu")


class _Baseline(BaseEstimator):
    """Common fitting, standardisation, seeding and sampling."""

    _name = "baseline"

    # -- hooks for subclasses ------------------------------------------------
    def _build(self, n_features):
        raise NotImplementedError

    def _make_step(self, X, generator):
        raise NotImplementedError

    def _decode(self, Z):
        """Latent (torch) -> standardised data (torch), the model's mean map."""
        raise NotImplementedError

    def _prior_sample(self, n_samples, generator):
        raise NotImplementedError

    def _after_fit(self, generator):
        pass

    # -- shared machinery ----------------------------------------------------
    def _validate_common(self):
        _check_positive_int(self.latent_dim, "latent_dim")
        _check_positive_int(self.max_iter, "max_iter")
        _check_positive_int(self.batch_size, "batch_size")
        _check_positive_float(self.learning_rate, "learning_rate")
        sizes = tuple(self.hidden_layer_sizes)
        if not sizes:
            raise ValueError("hidden_layer_sizes must hold at least one layer.")
        for size in sizes:
            _check_positive_int(size, "each hidden layer size")
        if self.activation not in ("tanh", "relu", "silu", "softplus"):
            raise ValueError(
                "activation must be one of 'tanh', 'relu', 'silu', 'softplus', "
                f"got {self.activation!r}."
            )

    def _validate_params_extra(self):
        pass

    def _network(self, role, n_inputs, n_outputs):
        """The ``role`` ('encoder' or 'decoder') network (float32 either way)."""
        return build_network(
            getattr(self, role),
            getattr(self, f"{role}_params"),
            n_inputs,
            n_outputs,
            default=lambda: make_mlp(
                n_inputs, n_outputs, self.hidden_layer_sizes, self.activation
            ),
            name=role,
            params_name=f"{role}_params",
        )

    def fit(self, X, y=None):
        """Fit the model to ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._validate_common()
        self._validate_params_extra()
        X = check_array(X, dtype=np.float64, ensure_min_samples=2)
        self.n_features_in_ = X.shape[1]
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Xs = torch.as_tensor((X - self.mean_) / self.scale_, dtype=_DTYPE)

        rng = check_random_state(self.random_state)
        init_seed, train_seed = seed_from(rng), seed_from(rng)
        start = time.perf_counter()
        with seeded_torch(init_seed):
            self._build(X.shape[1])
        generator = make_generator(train_seed, "cpu")
        self.loss_history_ = train_loop(
            self._make_step(Xs, generator),
            Xs.shape[0],
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            generator=generator,
            verbose=self.verbose,
            name=type(self).__name__,
        )
        self._after_fit(generator)
        self.fit_time_ = time.perf_counter() - start
        return self

    def _to_data(self, Xs):
        return Xs.detach().cpu().double().numpy() * self.scale_ + self.mean_

    def _check_data(self, X):
        check_is_fitted(self, "mean_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, the model was fitted with "
                f"{self.n_features_in_}."
            )
        return torch.as_tensor((X - self.mean_) / self.scale_, dtype=_DTYPE)

    def _check_latent(self, Z):
        check_is_fitted(self, "mean_")
        Z = check_array(Z, dtype=np.float64)
        if Z.shape[1] != self.latent_dim:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, latent_dim is {self.latent_dim}."
            )
        return torch.as_tensor(Z, dtype=_DTYPE)

    def inverse_transform(self, Z):
        """Map latent points to data space (the decoder's / generator's mean).

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        Z = self._check_latent(Z)
        with torch.no_grad():
            return self._to_data(self._decode(Z))

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` points from the model.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None
            Same value, same samples; ``None`` draws fresh entropy without
            touching numpy's or torch's global generator.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self, "mean_")
        n_samples = _check_positive_int(n_samples, "n_samples")
        generator = _sample_generator(random_state)
        with torch.no_grad():
            return self._to_data(self._sample_standardized(n_samples, generator))

    def _sample_standardized(self, n_samples, generator):
        return self._decode(self._prior_sample(n_samples, generator))


# --------------------------------------------------------------------------
# VAEs
# --------------------------------------------------------------------------


class _VAEBase(_Baseline):
    """Gaussian decoder ``N(g(z), diag(sigma^2))`` shared by both VAEs."""

    def _validate_params_extra(self):
        variance = self.decoder_variance
        if not (
            variance == "learned"
            or (
                isinstance(variance, numbers.Real)
                and not isinstance(variance, bool)
                and variance > 0
            )
        ):
            raise ValueError(
                "decoder_variance must be 'learned' or a positive number, "
                f"got {variance!r}."
            )

    def _build_decoder(self, n_features):
        self.decoder_ = self._network("decoder", self.latent_dim, n_features)
        if self.decoder_variance == "learned":
            self.decoder_log_var_ = nn.Parameter(torch.zeros(n_features, dtype=_DTYPE))
        else:
            self.decoder_log_var_ = torch.full(
                (n_features,), math.log(self.decoder_variance), dtype=_DTYPE
            )

    def _log_var(self):
        # Floor at 1e-6 (standardised units) so a learned variance cannot diverge.
        return self.decoder_log_var_.clamp_min(math.log(1e-6))

    def _neg_log_likelihood(self, x, z):
        log_var = self._log_var()
        mean = self.decoder_(z)
        return 0.5 * (
            (x - mean).square() / log_var.exp() + log_var + math.log(2 * math.pi)
        ).sum(-1)

    def _decode(self, Z):
        return self.decoder_(Z)

    def _sample_standardized(self, n_samples, generator):
        X = self._decode(self._prior_sample(n_samples, generator))
        if self.sample_noise:
            noise = torch.randn(X.shape, generator=generator, dtype=X.dtype)
            X = X + noise * (0.5 * self._log_var()).exp()
        return X

    def _posterior_kl(self, x, generator):
        """(z sample, KL) for a batch; defined by the subclass."""
        raise NotImplementedError

    def _make_step(self, X, generator):
        parameters = [*self.encoder_.parameters(), *self.decoder_.parameters()]
        if isinstance(self.decoder_log_var_, nn.Parameter):
            parameters.append(self.decoder_log_var_)
        optimizer = torch.optim.Adam(parameters, lr=self.learning_rate)

        def step(next_batch):
            x = X[next_batch()]
            z, kl = self._posterior_kl(x, generator)
            nll = self._neg_log_likelihood(x, z)
            loss = (nll + kl).mean()
            descend(optimizer, loss)
            return {"loss": loss.detach(), "kl": kl.mean().detach()}

        return step


class GaussianVAE(_VAEBase):
    """Variational autoencoder with a standard Gaussian prior.

    Encoder ``q(z|x) = N(mu(x), diag(sigma^2(x)))``, prior ``N(0, I)``,
    decoder ``p(x|z) = N(g(z), diag(s^2))`` with ``s^2`` learned (one value per
    feature, in standardised units) or fixed. Trained on the negative ELBO.

    Parameters
    ----------
    latent_dim : int, default=2
    hidden_layer_sizes : sequence of int, default=(512,)
        Hidden layers of the encoder and of the decoder.
    activation : str, default='tanh'
        Of the default networks.
    encoder, decoder : None, torch.nn.Module subclass or callable, default=None
        The encoder (output ``2 * latent_dim``: means and log-variances) and
        the decoder. ``None`` is :func:`make_mlp` with ``hidden_layer_sizes``
        and ``activation``; otherwise each is built at ``fit`` as
        ``factory(n_inputs, n_outputs, **params)``, as the package's own
        estimators build theirs (e.g. :class:`skvdae.nn.ConvEncoder` and
        :class:`skvdae.nn.ConvDecoder` for images).
    encoder_params, decoder_params : dict or None, default=None
        Keyword arguments of ``encoder`` and ``decoder``.
    decoder_variance : 'learned' or float, default='learned'
        Fixed values are in standardised units.
    sample_noise : bool, default=False
        If True, :meth:`sample` adds the decoder's noise to ``g(z)``; by
        default it returns the decoder mean at prior draws.
    max_iter : int, default=5000
        Number of Adam steps.
    batch_size : int, default=128
    learning_rate : float, default=1e-3
    random_state : int, RandomState instance or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    encoder_, decoder_ : torch.nn.Module
        Acting on standardised data.
    decoder_log_var_ : torch.Tensor of shape (n_features,)
    mean_, scale_ : ndarray of shape (n_features,)
        Standardisation.
    loss_history_ : list of dict
    fit_time_ : float
        Seconds spent in :meth:`fit`.
    """

    def __init__(
        self,
        latent_dim=2,
        *,
        hidden_layer_sizes=(512,),
        activation="tanh",
        encoder=None,
        encoder_params=None,
        decoder=None,
        decoder_params=None,
        decoder_variance="learned",
        sample_noise=False,
        max_iter=5000,
        batch_size=128,
        learning_rate=1e-3,
        random_state=None,
        verbose=False,
    ):
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.decoder = decoder
        self.decoder_params = decoder_params
        self.decoder_variance = decoder_variance
        self.sample_noise = sample_noise
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.verbose = verbose

    def _build(self, n_features):
        self.encoder_ = self._network("encoder", n_features, 2 * self.latent_dim)
        self._build_decoder(n_features)

    def _encode(self, x):
        mean, log_var = self.encoder_(x).chunk(2, dim=-1)
        return mean, log_var

    def _posterior_kl(self, x, generator):
        mean, log_var = self._encode(x)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        z = mean + (0.5 * log_var).exp() * eps
        kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(-1)
        return z, kl

    def _prior_sample(self, n_samples, generator):
        return torch.randn((n_samples, self.latent_dim), generator=generator)

    def transform(self, X):
        """Encoder mean of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, latent_dim)
        """
        X = self._check_data(X)
        with torch.no_grad():
            return self._encode(X)[0].double().numpy()


class HypersphericalVAE(_VAEBase):
    """Variational autoencoder with a latent sphere ``S^(latent_dim - 1)``.

    Prior: uniform on the sphere. Posterior: power spherical
    ``PS(mu(x), kappa(x))`` (De Cao & Aziz, 2020), sampled without rejection
    and with a closed-form KL to the uniform prior. ``mu(x)`` is the encoder's
    first ``latent_dim`` outputs normalised to unit length and
    ``kappa(x) = softplus(last output) + 1`` (the ``+ 1`` follows the
    hyperspherical VAE of Davidson et al., 2018, and keeps the posterior from
    collapsing to the prior early in training). Decoder as in
    :class:`GaussianVAE`.

    Parameters
    ----------
    latent_dim : int, default=3
        Dimension of the ambient latent space (``>= 2``); the latent manifold
        is the sphere ``S^(latent_dim - 1)``.
    hidden_layer_sizes, activation, encoder, encoder_params, decoder, \
decoder_params, decoder_variance, sample_noise, max_iter, batch_size, \
learning_rate, random_state, verbose
        As in :class:`GaussianVAE`; the encoder's output has width
        ``latent_dim + 1`` (the direction, then the concentration).

    Attributes
    ----------
    encoder_, decoder_ : torch.nn.Module
    decoder_log_var_ : torch.Tensor
    mean_, scale_ : ndarray of shape (n_features,)
    loss_history_ : list of dict
    fit_time_ : float
    """

    def __init__(
        self,
        latent_dim=3,
        *,
        hidden_layer_sizes=(512,),
        activation="tanh",
        encoder=None,
        encoder_params=None,
        decoder=None,
        decoder_params=None,
        decoder_variance="learned",
        sample_noise=False,
        max_iter=5000,
        batch_size=128,
        learning_rate=1e-3,
        random_state=None,
        verbose=False,
    ):
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.decoder = decoder
        self.decoder_params = decoder_params
        self.decoder_variance = decoder_variance
        self.sample_noise = sample_noise
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.verbose = verbose

    def _validate_params_extra(self):
        super()._validate_params_extra()
        _check_positive_int(self.latent_dim, "latent_dim", minimum=2)

    def _build(self, n_features):
        self.encoder_ = self._network("encoder", n_features, self.latent_dim + 1)
        self._build_decoder(n_features)

    def _posterior(self, x):
        out = self.encoder_(x)
        loc = out[:, :-1]
        loc = loc / loc.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        kappa = F.softplus(out[:, -1]) + 1.0
        return PowerSpherical(loc, kappa)

    def _posterior_kl(self, x, generator):
        posterior = self._posterior(x)
        return posterior.rsample(generator), posterior.kl_to_uniform()

    def _prior_sample(self, n_samples, generator):
        z = torch.randn((n_samples, self.latent_dim), generator=generator)
        return z / z.norm(dim=-1, keepdim=True)

    def transform(self, X):
        """Posterior mean direction ``mu(x)`` of ``X``, a point on the sphere.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, latent_dim)
        """
        X = self._check_data(X)
        with torch.no_grad():
            return self._posterior(X).loc.double().numpy()


# --------------------------------------------------------------------------
# GANs
# --------------------------------------------------------------------------


def gradient_penalty(critic, real, fake, generator):
    """WGAN-GP's penalty ``E[(||grad_x critic(x_hat)||_2 - 1)^2]``.

    ``x_hat = e real + (1 - e) fake`` with ``e ~ U(0, 1)`` per row
    (Gulrajani et al., 2017).

    Parameters
    ----------
    critic : callable
        ``(n, d) -> (n, 1)`` tensor map.
    real, fake : torch.Tensor of shape (n, d)
    generator : torch.Generator

    Returns
    -------
    torch.Tensor
        A scalar, differentiable with respect to the critic's parameters.
    """
    e = torch.rand((real.shape[0], 1), generator=generator, dtype=real.dtype)
    x_hat = (e * real + (1.0 - e) * fake).detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (gradient.norm(dim=1) - 1.0).square().mean()


class _GANBase(_Baseline):
    def _build_generator(self, n_features):
        self.generator_ = self._network("decoder", self.latent_dim, n_features)

    def _decode(self, Z):
        return self.generator_(Z)

    def _prior_sample(self, n_samples, generator):
        return torch.randn((n_samples, self.latent_dim), generator=generator)


class WGANGP(_GANBase):
    """Wasserstein GAN with gradient penalty (Gulrajani et al., 2017).

    Generator ``G: R^latent_dim -> R^d`` at standard normal draws; critic
    ``C: R^d -> R``. Each iteration makes ``n_critic`` critic steps on
    ``E[C(G(z))] - E[C(x)] + lambda_gp * penalty`` then one generator step on
    ``-E[C(G(z))]``. Defaults follow the paper's toy experiments: ``lambda_gp
    = 10``, ``n_critic = 5``, Adam with learning rate ``1e-4`` and betas
    ``(0.5, 0.9)``.

    Parameters
    ----------
    latent_dim : int, default=2
    hidden_layer_sizes : sequence of int, default=(512,)
        Hidden layers of the generator and of the critic.
    activation : str, default='tanh'
        Of the default networks.
    encoder, decoder : None, torch.nn.Module subclass or callable, default=None
        The critic (output width 1) and the generator, named as in the VAEs
        so that one setting serves every baseline. ``None`` is
        :func:`make_mlp` with ``hidden_layer_sizes`` and ``activation``;
        otherwise each is built at ``fit`` as ``factory(n_inputs, n_outputs,
        **params)``.
    encoder_params, decoder_params : dict or None, default=None
        Keyword arguments of ``encoder`` and ``decoder``.
    lambda_gp : float, default=10.0
    n_critic : int, default=5
    max_iter : int, default=5000
        Number of generator steps.
    batch_size : int, default=128
    learning_rate : float, default=1e-4
    betas : tuple of float, default=(0.5, 0.9)
    random_state : int, RandomState instance or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    generator_, critic_ : torch.nn.Module
        Acting on standardised data.
    mean_, scale_ : ndarray of shape (n_features,)
    loss_history_ : list of dict
    fit_time_ : float
    """

    def __init__(
        self,
        latent_dim=2,
        *,
        hidden_layer_sizes=(512,),
        activation="tanh",
        encoder=None,
        encoder_params=None,
        decoder=None,
        decoder_params=None,
        lambda_gp=10.0,
        n_critic=5,
        max_iter=5000,
        batch_size=128,
        learning_rate=1e-4,
        betas=(0.5, 0.9),
        random_state=None,
        verbose=False,
    ):
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.decoder = decoder
        self.decoder_params = decoder_params
        self.lambda_gp = lambda_gp
        self.n_critic = n_critic
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.betas = betas
        self.random_state = random_state
        self.verbose = verbose

    def _validate_params_extra(self):
        _check_positive_float(self.lambda_gp, "lambda_gp")
        _check_positive_int(self.n_critic, "n_critic")

    def _build(self, n_features):
        self._build_generator(n_features)
        self.critic_ = self._network("encoder", n_features, 1)

    def _make_step(self, X, generator):
        betas = tuple(self.betas)
        opt_g = torch.optim.Adam(
            self.generator_.parameters(), lr=self.learning_rate, betas=betas
        )
        opt_c = torch.optim.Adam(
            self.critic_.parameters(), lr=self.learning_rate, betas=betas
        )

        def step(next_batch):
            for _ in range(self.n_critic):
                real = X[next_batch()]
                with torch.no_grad():
                    fake = self.generator_(self._prior_sample(len(real), generator))
                wasserstein = self.critic_(fake).mean() - self.critic_(real).mean()
                penalty = gradient_penalty(self.critic_, real, fake, generator)
                loss_c = wasserstein + self.lambda_gp * penalty
                descend(opt_c, loss_c)
            fake = self.generator_(self._prior_sample(len(real), generator))
            loss_g = -self.critic_(fake).mean()
            descend(opt_g, loss_g)
            return {
                "critic": loss_c.detach(),
                "generator": loss_g.detach(),
                "penalty": penalty.detach(),
            }

        return step


def drs_acceptance_probability(logits, d_max, gamma, epsilon=1e-6):
    """Discriminator rejection sampling's acceptance probability.

    ``sigmoid(F(x))`` with ``F(x) = D(x) - D*_max - log(1 - exp(D(x) - D*_max
    - epsilon)) - gamma`` (Azadi et al., 2019, eq. 8), ``D`` the
    discriminator's logit. Logits above ``d_max`` are treated as equal to it.

    Parameters
    ----------
    logits : torch.Tensor
    d_max : float
        Estimate of the largest logit, ``D*_max``.
    gamma : float
        Shift; larger rejects more.
    epsilon : float, default=1e-6

    Returns
    -------
    torch.Tensor
        Probabilities in ``[0, 1]``, shaped like ``logits``.
    """
    return torch.sigmoid(_drs_score(logits, d_max, epsilon) - gamma)


def _drs_score(logits, d_max, epsilon):
    """``F(x) + gamma``: the DRS score before the shift."""
    delta = (logits - d_max).clamp_max(0.0)
    return delta - torch.log1p(-torch.exp(delta - epsilon))


class GANDRS(_GANBase):
    """Non-saturating GAN with discriminator rejection sampling (DRS).

    Training: discriminator loss ``-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))``,
    generator loss ``-log sigmoid(D(G(z)))`` (the non-saturating loss of
    Goodfellow et al., 2014), one discriminator step per generator step.

    Sampling (Azadi et al., 2019): generator proposals are accepted with
    probability ``sigmoid(F(x))``, see :func:`drs_acceptance_probability`.
    Choices made here:

    - ``D*_max`` is the largest logit over ``n_burnin`` proposals drawn at the
      end of :meth:`fit`; during one :meth:`sample` call it is raised whenever
      a proposal's logit exceeds it (as in the paper), but the fitted
      ``d_max_`` is not changed, so that sampling is reproducible.
    - ``gamma`` is fixed once, as the ``gamma_percentile``-th percentile of
      ``F(x) + gamma`` over the burn-in proposals (the paper sets it to a
      percentile of the batch; fixing it keeps sampling independent of batch
      composition). With the default 80, about the top fifth of proposals get
      an acceptance probability above one half.
    - The discriminator is used as trained, without the paper's optional
      post-hoc calibration on held-out data.

    Parameters
    ----------
    latent_dim : int, default=2
    hidden_layer_sizes : sequence of int, default=(512,)
        Hidden layers of the generator and of the discriminator.
    activation : str, default='tanh'
        Of the default networks.
    encoder, decoder : None, torch.nn.Module subclass or callable, default=None
        The discriminator (output width 1) and the generator, named as in the VAEs
        so that one setting serves every baseline. ``None`` is
        :func:`make_mlp` with ``hidden_layer_sizes`` and ``activation``;
        otherwise each is built at ``fit`` as ``factory(n_inputs, n_outputs,
        **params)``.
    encoder_params, decoder_params : dict or None, default=None
        Keyword arguments of ``encoder`` and ``decoder``.
    max_iter : int, default=5000
        Number of generator steps.
    batch_size : int, default=128
    learning_rate : float, default=2e-4
    betas : tuple of float, default=(0.5, 0.999)
    n_burnin : int, default=10000
    gamma_percentile : float in [0, 100], default=80.0
    drs_epsilon : float, default=1e-6
    max_proposals_factor : int, default=1000
        :meth:`sample` gives up (``RuntimeError``) after
        ``max_proposals_factor * n_samples`` proposals.
    random_state : int, RandomState instance or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    generator_, discriminator_ : torch.nn.Module
        Acting on standardised data; the discriminator outputs a logit.
    d_max_ : float
    gamma_ : float
    burnin_acceptance_rate_ : float
        Mean acceptance probability over the burn-in proposals.
    last_acceptance_rate_ : float
        Accepted / proposed in the latest :meth:`sample` call with rejection.
    mean_, scale_ : ndarray of shape (n_features,)
    loss_history_ : list of dict
    fit_time_ : float
    """

    def __init__(
        self,
        latent_dim=2,
        *,
        hidden_layer_sizes=(512,),
        activation="tanh",
        encoder=None,
        encoder_params=None,
        decoder=None,
        decoder_params=None,
        max_iter=5000,
        batch_size=128,
        learning_rate=2e-4,
        betas=(0.5, 0.999),
        n_burnin=10000,
        gamma_percentile=80.0,
        drs_epsilon=1e-6,
        max_proposals_factor=1000,
        random_state=None,
        verbose=False,
    ):
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.decoder = decoder
        self.decoder_params = decoder_params
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.betas = betas
        self.n_burnin = n_burnin
        self.gamma_percentile = gamma_percentile
        self.drs_epsilon = drs_epsilon
        self.max_proposals_factor = max_proposals_factor
        self.random_state = random_state
        self.verbose = verbose

    def _validate_params_extra(self):
        _check_positive_int(self.n_burnin, "n_burnin")
        _check_positive_int(self.max_proposals_factor, "max_proposals_factor")
        _check_positive_float(self.drs_epsilon, "drs_epsilon")
        if not (
            isinstance(self.gamma_percentile, numbers.Real)
            and 0 <= self.gamma_percentile <= 100
        ):
            raise ValueError(
                f"gamma_percentile must be in [0, 100], got {self.gamma_percentile!r}."
            )

    def _build(self, n_features):
        self._build_generator(n_features)
        self.discriminator_ = self._network("encoder", n_features, 1)

    def _make_step(self, X, generator):
        betas = tuple(self.betas)
        opt_g = torch.optim.Adam(
            self.generator_.parameters(), lr=self.learning_rate, betas=betas
        )
        opt_d = torch.optim.Adam(
            self.discriminator_.parameters(), lr=self.learning_rate, betas=betas
        )

        def step(next_batch):
            real = X[next_batch()]
            with torch.no_grad():
                fake = self.generator_(self._prior_sample(len(real), generator))
            loss_d = (
                F.softplus(-self.discriminator_(real)).mean()
                + F.softplus(self.discriminator_(fake)).mean()
            )
            descend(opt_d, loss_d)
            fake = self.generator_(self._prior_sample(len(real), generator))
            loss_g = F.softplus(-self.discriminator_(fake)).mean()
            descend(opt_g, loss_g)
            return {"discriminator": loss_d.detach(), "generator": loss_g.detach()}

        return step

    def _after_fit(self, generator):
        self._calibrate(generator)

    def calibrate_rejection(self, random_state=None):
        """Re-estimate ``d_max_`` and ``gamma_`` from fresh burn-in proposals.

        :meth:`fit` calls this already; call it again after changing the
        discriminator or ``gamma_percentile``.

        Parameters
        ----------
        random_state : int, RandomState instance or None

        Returns
        -------
        self
        """
        check_is_fitted(self, "mean_")
        self._calibrate(_sample_generator(random_state))
        return self

    def _calibrate(self, generator):
        with torch.no_grad():
            proposals = self.generator_(self._prior_sample(self.n_burnin, generator))
            logits = self.discriminator_(proposals).squeeze(-1).double()
        self.d_max_ = float(logits.max())
        scores = _drs_score(logits, self.d_max_, self.drs_epsilon)
        self.gamma_ = float(np.percentile(scores.numpy(), self.gamma_percentile))
        self.burnin_acceptance_rate_ = float(torch.sigmoid(scores - self.gamma_).mean())

    def acceptance_probability(self, X):
        """DRS acceptance probability of data points ``X`` (with ``d_max_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._check_data(X)
        with torch.no_grad():
            logits = self.discriminator_(X).squeeze(-1).double()
            return drs_acceptance_probability(
                logits, self.d_max_, self.gamma_, self.drs_epsilon
            ).numpy()

    def sample(self, n_samples=1, random_state=None, rejection=True):
        """Draw ``n_samples`` accepted points (or raw generator samples).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None
        rejection : bool, default=True
            False returns plain GAN samples, without rejection.

        Returns
        -------
        ndarray of shape (n_samples, n_features)

        Raises
        ------
        RuntimeError
            If fewer than ``n_samples`` proposals are accepted out of
            ``max_proposals_factor * n_samples``.
        """
        if not rejection:
            return super().sample(n_samples, random_state)
        check_is_fitted(self, "d_max_")
        n_samples = _check_positive_int(n_samples, "n_samples")
        generator = _sample_generator(random_state)
        cap = self.max_proposals_factor * n_samples
        batch = max(1024, 2 * n_samples)
        d_max = self.d_max_
        accepted, n_accepted, n_proposed = [], 0, 0
        with torch.no_grad():
            while n_accepted < n_samples:
                if n_proposed >= cap:
                    raise RuntimeError(
                        f"GANDRS.sample: only {n_accepted} of {n_samples} samples "
                        f"accepted after {n_proposed} proposals (rate "
                        f"{n_accepted / n_proposed:.2e}); lower gamma_percentile or "
                        "raise max_proposals_factor."
                    )
                size = min(batch, cap - n_proposed)
                proposals = self.generator_(self._prior_sample(size, generator))
                logits = self.discriminator_(proposals).squeeze(-1).double()
                d_max = max(d_max, float(logits.max()))
                probability = drs_acceptance_probability(
                    logits, d_max, self.gamma_, self.drs_epsilon
                )
                u = torch.rand(size, generator=generator, dtype=torch.float64)
                keep = proposals[u < probability]
                accepted.append(keep)
                n_accepted += len(keep)
                n_proposed += size
        self.last_acceptance_rate_ = n_accepted / n_proposed
        return self._to_data(torch.cat(accepted)[:n_samples])
