"""Generative benchmark of issue 5: the VDAE against baseline models.

- ``baselines``: a VAE, a hyperspherical VAE, WGAN-GP and a GAN with
  discriminator rejection sampling, sharing one MLP builder and one training
  loop, so that every comparison with the VDAE is like for like;
- ``tasks`` (data sets and run sizes), ``models`` (every model behind one
  interface), ``evaluation`` (the metrics), ``topology`` (Betti numbers),
  ``run`` and ``report`` (the harness and its tables);
- ``python -m benchmarks.generative`` runs it (see ``__main__``).
"""

from .baselines import GANDRS, WGANGP, GaussianVAE, HypersphericalVAE
from .power_spherical import PowerSpherical

__all__ = ["GANDRS", "WGANGP", "GaussianVAE", "HypersphericalVAE", "PowerSpherical"]
