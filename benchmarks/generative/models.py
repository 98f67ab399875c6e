"""The models compared by the generative benchmark, behind one interface.

Every entry of :data:`MODELS` knows how to build its estimator for a task,
draw samples, give latent/data pairs for the bi-Lipschitz measure, and walk
from a starting point (for the digits' class consistency):

- ``vdae``: :class:`skvdae.VDAESampler`, samples are the ends of random walks
  from training points; its latent/data pairs are ``(psi(x), g(psi(x)))`` on
  held-out data; its walk is :meth:`~skvdae.VDAESampler.random_walk`.
- ``vae2`` and ``vaeD``: Gaussian-prior VAEs with latent dimension 2 and D (the
  VDAE's); ``svae``: the hyperspherical VAE on ``S^intrinsic_dim``;
  ``wgan``: WGAN-GP; ``gan`` and ``gan_drs``: one non-saturating GAN sampled
  without and with discriminator rejection sampling (fitted once: the
  benchmark fits each distinct estimator once per cell, so the two Gaussian
  VAEs share one fit where D = 2). Their
  latent/data pairs are prior draws and their decodings; their walks are
  Gaussian random walks in the latent space (from the encoder's mean for the
  VAEs, from a prior draw for the GANs), projected back onto the sphere for
  the hyperspherical VAE.
"""

from dataclasses import dataclass

import numpy as np

from .baselines import GANDRS, WGANGP, GaussianVAE, HypersphericalVAE
from .tasks import PAPER_NET, build_vdae

__all__ = ["LATENT_WALK_STEP", "MODELS", "VAE_DECODER_VARIANCE", "ModelSpec"]

#: Fixed variance of the VAEs' Gaussian decoders, in standardised units (the
#: VDAE's decoder also has a fixed variance). With a learned variance, which
#: starts at the data's variance, both VAEs fell into posterior collapse on the
#: sphere within 5000 steps (samples at the data mean, mean distance 0.73 from
#: the sphere, against 0.014 with this value).
VAE_DECODER_VARIANCE = 0.01

#: Standard deviation of one step of the baselines' latent random walks, in
#: units of the prior's scale (1 for the Gaussian prior, the unit sphere).
LATENT_WALK_STEP = 0.25


@dataclass(frozen=True)
class ModelSpec:
    """One row of the benchmark's tables.

    Attributes
    ----------
    key : str
        Short name used on the command line and in the JSON.
    label : str
        Name in the tables.
    build : callable
        ``build(task, profile, seed) -> estimator`` (unfitted).
    sample : callable
        ``sample(estimator, task, n, seed) -> ndarray``.
    latent_pairs : callable
        ``latent_pairs(estimator, X_test, seed) -> (Z, X)``.
    walk : callable
        ``walk(estimator, X_start, n_steps, seed) -> (starts, path)`` where
        ``path`` has shape ``(n_steps + 1, n_walkers, n_features)``.
    """

    key: str
    label: str
    build: object
    sample: object
    latent_pairs: object
    walk: object


def _iterations(task, profile, wgan=False):
    if task.name == "mnist":
        return profile.mnist_wgan_iter if wgan else profile.mnist_baseline_iter
    if task.kind == "video":
        return profile.video_wgan_iter if wgan else profile.video_baseline_iter
    if task.kind == "digits":
        return profile.digits_baseline_iter
    return profile.wgan_iter if wgan else profile.baseline_iter


# --------------------------------------------------------------------------
# VDAE
# --------------------------------------------------------------------------


def _sample_vdae(model, task, n, seed):
    return model.sample(n, n_steps=task.n_steps, random_state=seed)


def _latent_pairs_vdae(model, X_test, seed):
    Z = model.transform(X_test)
    return Z, model.inverse_transform(Z)


def _walk_vdae(model, X_start, n_steps, seed):
    return X_start, model.random_walk(X_start, n_steps, random_state=seed)


# --------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------


def _onto_latent_space(model, Z):
    """The hyperspherical VAE's latent points live on the unit sphere."""
    if isinstance(model, HypersphericalVAE):
        Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    return Z


def _prior(model, n, rng):
    return _onto_latent_space(model, rng.standard_normal((n, model.latent_dim)))


def _latent_pairs_prior(model, X_test, seed):
    Z = _prior(model, len(X_test), np.random.default_rng(seed))
    return Z, model.inverse_transform(Z)


def _latent_walk(model, Z0, n_steps, rng):
    path = [Z0]
    for _ in range(n_steps):
        step = LATENT_WALK_STEP * rng.standard_normal(Z0.shape)
        path.append(_onto_latent_space(model, path[-1] + step))
    return np.stack([model.inverse_transform(Z) for Z in path])


def _walk_encoder(model, X_start, n_steps, seed):
    rng = np.random.default_rng(seed)
    return X_start, _latent_walk(model, model.transform(X_start), n_steps, rng)


def _walk_prior(model, X_start, n_steps, seed):
    rng = np.random.default_rng(seed)
    path = _latent_walk(model, _prior(model, len(X_start), rng), n_steps, rng)
    return path[0], path


def _sample_plain(model, task, n, seed):
    return model.sample(n, random_state=seed)


def _sample_gan(model, task, n, seed):
    return model.sample(n, random_state=seed, rejection=False)


def _sample_drs(model, task, n, seed):
    return model.sample(n, random_state=seed, rejection=True)


def _common(task, profile, seed, wgan=False):
    params = task.baseline_params
    if callable(params):
        params = params(profile)
    return {
        **(params or PAPER_NET),
        "max_iter": _iterations(task, profile, wgan),
        "random_state": seed,
    }


def _build_vae2(task, profile, seed):
    return GaussianVAE(
        2, decoder_variance=VAE_DECODER_VARIANCE, **_common(task, profile, seed)
    )


def _build_vae_d(task, profile, seed):
    return GaussianVAE(
        task.n_components,
        decoder_variance=VAE_DECODER_VARIANCE,
        **_common(task, profile, seed),
    )


def _build_svae(task, profile, seed):
    return HypersphericalVAE(
        task.intrinsic_dim + 1,
        decoder_variance=VAE_DECODER_VARIANCE,
        **_common(task, profile, seed),
    )


def _gan_latent_dim(task):
    return task.gan_latent_dim or task.n_components


def _build_wgan(task, profile, seed):
    return WGANGP(_gan_latent_dim(task), **_common(task, profile, seed, wgan=True))


def _build_gan(task, profile, seed):
    return GANDRS(_gan_latent_dim(task), **_common(task, profile, seed))


MODELS = {
    spec.key: spec
    for spec in [
        ModelSpec(
            "vdae",
            "VDAE",
            build_vdae,
            _sample_vdae,
            _latent_pairs_vdae,
            _walk_vdae,
        ),
        ModelSpec(
            "vae2",
            "VAE (d=2)",
            _build_vae2,
            _sample_plain,
            _latent_pairs_prior,
            _walk_encoder,
        ),
        ModelSpec(
            "vaeD",
            "VAE (d=D)",
            _build_vae_d,
            _sample_plain,
            _latent_pairs_prior,
            _walk_encoder,
        ),
        ModelSpec(
            "svae",
            "S-VAE",
            _build_svae,
            _sample_plain,
            _latent_pairs_prior,
            _walk_encoder,
        ),
        ModelSpec(
            "wgan",
            "WGAN-GP",
            _build_wgan,
            _sample_plain,
            _latent_pairs_prior,
            _walk_prior,
        ),
        ModelSpec(
            "gan",
            "GAN",
            _build_gan,
            _sample_gan,
            _latent_pairs_prior,
            _walk_prior,
        ),
        ModelSpec(
            "gan_drs",
            "GAN+DRS",
            _build_gan,
            _sample_drs,
            _latent_pairs_prior,
            _walk_prior,
        ),
    ]
}
