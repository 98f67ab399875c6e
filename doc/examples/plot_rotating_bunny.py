"""
Generating frames of a video: a walk on the rotating bunny
==========================================================

:func:`skvdae.datasets.make_rotating_bunny` renders the Stanford bunny turning
once about its vertical axis. Each frame is a point in a space of
``height * width * 3`` pixel values, yet the frames depend on one angle only:
they lie on a closed curve. The diffusion map finds that circle, and a walk of
the VDAE produces new frames that continue the rotation.
"""

import matplotlib.pyplot as plt
import numpy as np

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import make_rotating_bunny

height, width = 40, 50
X, angles = make_rotating_bunny(120, height=height, width=width)
X = X.astype(np.float64)
print("frames:", X.shape)

sampler = VDAESampler(
    DiffusionMapEmbedder(solver="exact", n_components=2, bandwidth_neighbors=5),
    n_neighbors=5,
    covariance_scale=100.0,
    batch_size=120,
    max_iter=800,
    random_state=0,
    device="cpu",
).fit(X)

# %%
# The diffusion coordinates are a circle ordered by the angle
# -----------------------------------------------------------

Z = sampler.transform(X)
fig, ax = plt.subplots(figsize=(4.5, 4.5))
sc = ax.scatter(*Z.T, c=np.rad2deg(angles), cmap="twilight", s=15)
fig.colorbar(sc, label="rotation angle (degrees)")
ax.set_aspect("equal")
ax.set_title("diffusion coordinates of the frames")
plt.show()

# %%
# Frames generated along one walk
# -------------------------------
# One walker starts from the first frame and takes 33 steps; every step is
# decoded into an image. The top row shows every third generated frame, the
# bottom row the training frame nearest to each (in pixel space), with its
# angle: the walk turns the bunny back and forth, as a random walk on a circle
# does, and its frames look like the rendered ones.

path = sampler.random_walk(X[:1], n_steps=33, random_state=0)[::3, 0]
nearest = np.argmin(((path[:, None, :] - X[None]) ** 2).sum(axis=2), axis=1)

fig, axes = plt.subplots(2, len(path), figsize=(1.3 * len(path), 2.9))
for k, frame in enumerate(path):
    axes[0, k].imshow(np.clip(frame, 0, 1).reshape(height, width, 3))
    axes[0, k].set_title(f"step {3 * k}", fontsize=8)
    axes[1, k].imshow(X[nearest[k]].reshape(height, width, 3))
    axes[1, k].set_title(f"{np.rad2deg(angles[nearest[k]]):.0f} deg", fontsize=8)
for ax in axes.ravel():
    ax.set_axis_off()
fig.suptitle("top: generated frames; bottom: nearest training frame")
plt.show()
