"""
Random walks from one seed on the loop, the sphere and the bunny
================================================================

A :class:`~skvdae.VDAESampler` generates data by walking: each step encodes
the current point with the diffusion map, takes a Gaussian step whose
covariance was learned for that place of the manifold, and decodes. Started
from a single seed point, a crowd of walkers spreads along the manifold and,
after enough steps, covers it, without ever leaving it.

Here 100 walkers start from one seed (the black star) on three manifolds: the
loop ``(cos t, sin 2t, sin 3t)``, the unit sphere and the Stanford bunny. The
samples are coloured by step: dark early, bright late.
"""

import matplotlib.pyplot as plt
import numpy as np

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import load_bunny, make_loop, make_sphere

# %%
# Three data sets and three samplers
# ----------------------------------
# The loop and the sphere have 2 and 3 leading diffusion coordinates that
# embed them; the bunny (a sphere, topologically) gets 3 as well. The exact
# solver is the fastest at these sizes. ``covariance_scale`` sets the step
# length: a few hundred times the local neighbourhood size on the loop.

X_loop, _ = make_loop(1000, random_state=0)
X_sphere, _ = make_sphere(1500, random_state=0)
X_bunny = load_bunny(2000, normalize=True, random_state=0)

settings = {
    "loop": (X_loop, 2, 100.0),
    "sphere": (X_sphere, 3, 10.0),
    "bunny": (X_bunny, 3, 10.0),
}
n_steps = {"loop": 40, "sphere": 25, "bunny": 25}

paths = {}
for name, (X, n_components, scale) in settings.items():
    sampler = VDAESampler(
        DiffusionMapEmbedder(solver="exact", n_components=n_components),
        covariance_scale=scale,
        max_iter=1000,
        random_state=0,
        device="cpu",
    ).fit(X)
    seed = X[:1]
    # random_walk returns the whole path: shape (n_steps + 1, n_walkers, 3).
    paths[name] = sampler.random_walk(
        np.repeat(seed, 100, axis=0), n_steps=n_steps[name], random_state=0
    )

# %%
# Samples coloured by step
# ------------------------
# Grey: the training data. The walkers first spread around the seed, then
# along the manifold; on the loop they travel both ways round and meet on the
# far side. No sample leaves the manifold. On the bunny, three diffusion
# coordinates do not resolve the thin ears (they are the slowest parts of the
# surface for a random walk to reach), so the walkers rarely go there: more
# ``n_components`` and more steps would.

fig = plt.figure(figsize=(14, 5))
for i, (name, path) in enumerate(paths.items()):
    X = settings[name][0]
    ax = fig.add_subplot(1, 3, i + 1, projection="3d")
    ax.scatter(*X.T, s=1, c="0.8", alpha=0.3)
    steps = np.repeat(np.arange(path.shape[0]), path.shape[1])
    points = path.reshape(-1, 3)
    sc = ax.scatter(*points.T, c=steps, s=2, cmap="viridis")
    ax.scatter(*path[0, 0], marker="*", s=200, c="k")
    ax.set_title(f"{name}: 100 walkers, {path.shape[0] - 1} steps")
    ax.set_axis_off()
    if name == "bunny":
        ax.view_init(elev=15, azim=-60)
fig.subplots_adjust(left=0, right=0.9, wspace=0)
fig.colorbar(sc, ax=fig.axes, shrink=0.6, label="step")
plt.show()
