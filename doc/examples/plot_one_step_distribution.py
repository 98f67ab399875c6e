"""
One step of the walk: the distribution p(x' | x) from a single seed
===================================================================

One step of the VDAE's random walk from a point ``x`` is

.. math::

    z = \\psi(x), \\qquad z' = z + L(z)\\,\\varepsilon, \\quad
    \\varepsilon \\sim N(0, I), \\qquad x' = g(z'),

where ``psi`` is the diffusion map, ``L(z) L(z)^T`` the learned step
covariance and ``g`` the decoder. Here we draw 2000 single steps from one seed
on the loop ``(cos t, sin 2t, sin 3t)`` and look at them in the latent space
(the diffusion coordinates) and in the data space.
"""

import matplotlib.pyplot as plt
import numpy as np

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import make_loop

X, t = make_loop(1000, random_state=0)
sampler = VDAESampler(
    DiffusionMapEmbedder(solver="exact", n_components=2),
    covariance_scale=100.0,
    max_iter=1500,
    random_state=0,
    device="cpu",
).fit(X)

seed = X[np.argmin(np.abs(t - 1.0))][None, :]
steps = sampler.sample(2000, n_steps=1, seeds=seed, random_state=0)

# %%
# The learned step covariance against its target
# ----------------------------------------------
# :meth:`~skvdae.VDAESampler.local_covariance` is the covariance ``C = L L^T``
# the covariance network predicts at the seed;
# :meth:`~skvdae.VDAESampler.target_covariance` is what the KL term pulls it
# towards: ``covariance_scale`` times the second moment of the displacements to
# the latent neighbours. Both are long and thin along the latent circle: steps
# go along the manifold, not across it.

Z = sampler.transform(X)
z0 = sampler.transform(seed)[0]
C = sampler.local_covariance(seed)[0]
S = sampler.target_covariance(seed)[0]
print("learned covariance\n", C, "\ntarget covariance\n", S)


def ellipse(centre, covariance, n_std=2.0):
    angle = np.linspace(0, 2 * np.pi, 200)
    values, vectors = np.linalg.eigh(covariance)
    circle = np.c_[np.cos(angle), np.sin(angle)] * n_std * np.sqrt(values)
    return centre + circle @ vectors.T


# %%
# The step in both spaces
# -----------------------
# Left: the diffusion coordinates of the data (grey), the seed's code (star),
# the two-standard-deviation ellipses of the learned (orange) and target
# (dashed) covariances, and the codes of the landing points ``psi(x')``
# (blue), which fall back onto the circle of the codes. Right: the landing
# points ``x'`` in the data space: they stay on the curve, on both sides of
# the seed.

fig = plt.figure(figsize=(12, 5))
ax = fig.add_subplot(1, 2, 1)
ax.scatter(*Z.T, s=3, c="0.75", label="data codes")
ax.scatter(*sampler.transform(steps).T, s=3, alpha=0.4, label="psi(x')")
ax.plot(*ellipse(z0, C).T, c="tab:orange", lw=2, label="learned C (2 sd)")
ax.plot(*ellipse(z0, S).T, "k--", lw=1, label="target (2 sd)")
ax.scatter(*z0, marker="*", s=250, c="k", zorder=3, label="seed")
ax.set_aspect("equal")
ax.set_title("latent space (diffusion coordinates)")
ax.legend(loc="center", fontsize=8)

ax = fig.add_subplot(1, 2, 2, projection="3d")
ax.scatter(*X.T, s=2, c="0.8")
ax.scatter(*steps.T, s=3, c="tab:blue", alpha=0.4)
ax.scatter(*seed[0], marker="*", s=250, c="k")
ax.set_title("data space: 2000 one-step samples")
ax.set_axis_off()
plt.show()
