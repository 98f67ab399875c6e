"""
How far from a homeomorphism? Bi-Lipschitz constants of VDAE and VAE
====================================================================

A generative model whose latent space and data manifold correspond by a
homeomorphism keeps neighbours neighbours in both directions. The local
bi-Lipschitz constant ``K`` of :func:`skvdae.metrics.bilipschitz_constants`
measures, point by point, how much the correspondence stretches some
neighbour distances relative to others: ``K = 1`` for a similarity, a heavy
upper tail for folds, collapses and tears.

The data here are points on the unit sphere. A VAE with a two-dimensional
Gaussian latent space cannot map a sphere to the plane without tearing it
somewhere; the VDAE's latent space is the sphere's three leading diffusion
coordinates, which embed it.
"""

import matplotlib.pyplot as plt
import numpy as np

from benchmarks.generative.baselines import GaussianVAE
from benchmarks.generative.models import VAE_DECODER_VARIANCE
from benchmarks.generative.tasks import PAPER_NET
from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import make_sphere
from skvdae.metrics import bilipschitz_constants, bilipschitz_summary

X, _ = make_sphere(1500, random_state=0)
X_test, _ = make_sphere(1000, random_state=1)

# The VDAE at its defaults, on an exact diffusion map: n_components='auto'
# finds the sphere's three leading coordinates.
vdae = VDAESampler(
    DiffusionMapEmbedder(solver="exact"), random_state=0, device="cpu"
).fit(X)
print("latent dimension:", vdae.n_components_)

# %%
# The benchmark's Gaussian VAE with a two-dimensional latent space
# ----------------------------------------------------------------
# The generative benchmark's baseline with its settings on the sphere (see
# :doc:`/benchmarks/generative`): one hidden layer of 512 tanh units in the
# encoder and the decoder (the VDAE paper's budget), a decoder variance of
# 0.01 in standardised units, 5000 Adam steps on minibatches of 128. The model
# lives in the repository's ``benchmarks/generative`` package.

vae = GaussianVAE(
    2,
    decoder_variance=VAE_DECODER_VARIANCE,
    max_iter=5000,
    random_state=0,
    **PAPER_NET,
).fit(X)

# %%
# Constants of the encoders and of the decoders
# ---------------------------------------------
# Encoder: the pairs (code of a held-out point, the point). Decoder: the pairs
# (code, its decoding). Most points are fine in both models (the medians are
# close to 1), so the histograms use a logarithmic count axis to show the
# tails, which is where a tear or a fold shows: a few points of the VAE's
# encoder have constants in the tens (neighbouring points on the sphere get
# distant codes where the sphere is cut open to fit in the plane), and its
# decoder spreads its constants wider, while the VDAE's encoder stays below 2
# and its decoder is nearly a similarity (``K`` close to 1) everywhere. The
# printed summaries give the median, the 95% quantile and the maximum.

Z_vdae = vdae.transform(X_test)
Z_vae = vae.transform(X_test)
constants = {
    "VDAE encoder": bilipschitz_constants(Z_vdae, X_test),
    "VAE encoder": bilipschitz_constants(Z_vae, X_test),
    "VDAE decoder": bilipschitz_constants(Z_vdae, vdae.inverse_transform(Z_vdae)),
    "VAE decoder": bilipschitz_constants(Z_vae, vae.inverse_transform(Z_vae)),
}
for name, K in constants.items():
    summary = bilipschitz_summary(K)
    print(f"{name:13s}", {key: round(float(v), 2) for key, v in summary.items()})

fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
bins = np.linspace(0, 1.5, 40)
for ax, part in zip(axes[:2], ("encoder", "decoder"), strict=True):
    for model, colour in (("VDAE", "tab:blue"), ("VAE", "tab:red")):
        K = constants[f"{model} {part}"]
        label = f"{model} (median {np.median(K):.2f}, max {K.max():.1f})"
        clipped = np.log10(np.minimum(K, 10**1.5))
        ax.hist(clipped, bins=bins, alpha=0.6, color=colour, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("log10 K (clipped at 1.5)")
    ax.set_title(f"{part}: local bi-Lipschitz constants")
    ax.legend()

ax = axes[2]
ax.scatter(*Z_vae.T, c=X_test[:, 2], s=4, cmap="coolwarm")
ax.set_title("VAE codes of held-out points, coloured by height")
ax.set_aspect("equal")
plt.show()
