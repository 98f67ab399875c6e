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
import torch
from torch import nn

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import make_sphere
from skvdae.metrics import bilipschitz_constants, bilipschitz_summary

X, _ = make_sphere(1500, random_state=0)
X_test, _ = make_sphere(1000, random_state=1)

vdae = VDAESampler(
    DiffusionMapEmbedder(solver="exact", n_components=3),
    covariance_scale=10.0,
    max_iter=1000,
    random_state=0,
    device="cpu",
).fit(X)

# %%
# A small VAE with a two-dimensional Gaussian prior
# -------------------------------------------------
# Two hidden layers of 64 units, a Gaussian likelihood with a fixed variance,
# Adam on the whole data set for a few seconds. ``torch.random.fork_rng``
# keeps torch's global random state untouched.


class VAE(nn.Module):
    def __init__(self, n_features, n_latent=2, hidden=64):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 2 * n_latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(n_latent, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, n_features),
        )

    def loss(self, x, noise_variance, generator):
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        eps = torch.randn(mean.shape, generator=generator, dtype=x.dtype)
        z = mean + torch.exp(0.5 * log_var) * eps
        reconstruction = ((self.decoder(z) - x) ** 2).sum(1) / (2 * noise_variance)
        kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1)
        return (reconstruction + kl).mean()

    def encode(self, X):
        with torch.no_grad():
            x = torch.as_tensor(X, dtype=torch.float32)
            return self.encoder(x).chunk(2, dim=1)[0].numpy()

    def decode(self, Z):
        with torch.no_grad():
            return self.decoder(torch.as_tensor(Z, dtype=torch.float32)).numpy()


def fit_vae(X, n_epochs=1500, noise_variance=1e-3, seed=0):
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vae = VAE(X.shape[1])
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(vae.parameters(), lr=3e-3)
    for _ in range(n_epochs):
        optimiser.zero_grad()
        vae.loss(x, noise_variance, generator).backward()
        optimiser.step()
    return vae


vae = fit_vae(X)

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
Z_vae = vae.encode(X_test)
constants = {
    "VDAE encoder": bilipschitz_constants(Z_vdae, X_test),
    "VAE encoder": bilipschitz_constants(Z_vae, X_test),
    "VDAE decoder": bilipschitz_constants(Z_vdae, vdae.inverse_transform(Z_vdae)),
    "VAE decoder": bilipschitz_constants(Z_vae, vae.decode(Z_vae)),
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
