"""Generative benchmark of issue 5: baseline models (VAE, hyperspherical VAE,
WGAN-GP, GAN with discriminator rejection sampling) sharing one MLP builder and
one training loop, so that every comparison with the VDAE is like for like."""

from .baselines import GANDRS, WGANGP, GaussianVAE, HypersphericalVAE
from .power_spherical import PowerSpherical

__all__ = ["GANDRS", "WGANGP", "GaussianVAE", "HypersphericalVAE", "PowerSpherical"]
