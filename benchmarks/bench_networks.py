"""Benchmark the sampler's networks on MNIST: the default MLPs against the
convolutional modules of :mod:`skvdae.nn` (issue 12, point 5).

On :func:`skvdae.datasets.load_mnist_5k` (``pip install 'skvdae[mnist]'``),
4,500 training digits and 500 held out (a stratified split), for each of

- ``mlp``: :class:`skvdae.VDAESampler` at its defaults;
- ``conv``: the same with ``ConvEncoder`` as SpectralNet's network and
  ``ConvDecoder`` as the decoder (``image_shape=(1, 28, 28)``),

it reports the latent dimension, the share of 200 walks from held-out digits
whose fifth step keeps the class of its seed (a 5-nearest-neighbour
classifier trained on the real training digits labels both), how far the
fifth step moved (in units of the training digits' mean nearest-neighbour
distance), the reconstruction error ``|g(psi(X)) - X| / |X - mean(X)|`` on
the training and the held-out digits, and the fit time.

Usage::

    python benchmarks/bench_networks.py                # both, 2 torch threads
    python benchmarks/bench_networks.py --networks conv --threads 1

The results go in ``doc/networks.rst``.
"""

import argparse
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import load_mnist_5k
from skvdae.nn import ConvDecoder, ConvEncoder

IMAGE = {"image_shape": (1, 28, 28)}
N_WALKS = 200
N_STEPS = 5


def build(networks, seed):
    if networks == "mlp":
        return VDAESampler(random_state=seed, device="cpu")
    embedder = DiffusionMapEmbedder(network=ConvEncoder, network_params=IMAGE)
    return VDAESampler(
        embedder,
        decoder=ConvDecoder,
        decoder_params=IMAGE,
        random_state=seed,
        device="cpu",
    )


def reconstruction_error(sampler, X):
    error = sampler.inverse_transform(sampler.transform(X)) - X
    return np.linalg.norm(error) / np.linalg.norm(X - X.mean(axis=0))


def measure(networks, X_train, y_train, X_test, seed):
    sampler = build(networks, seed)
    start = time.perf_counter()
    sampler.fit(X_train)
    fit_time = time.perf_counter() - start

    classifier = KNeighborsClassifier(n_neighbors=5).fit(X_train, y_train)
    distance, _ = NearestNeighbors(n_neighbors=2).fit(X_train).kneighbors(X_train)
    rows = np.random.default_rng(seed).choice(len(X_test), N_WALKS, replace=False)
    path = sampler.random_walk(X_test[rows], n_steps=N_STEPS, random_state=seed)
    kept = np.mean(classifier.predict(path[-1]) == classifier.predict(path[0]))
    moved = np.linalg.norm(path[-1] - path[0], axis=1).mean() / distance[:, 1].mean()
    return {
        "D": sampler.n_components_,
        "kept": kept,
        "moved": moved,
        "train_error": reconstruction_error(sampler, X_train),
        "test_error": reconstruction_error(sampler, X_test),
        "fit": fit_time,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--networks", nargs="+", choices=["mlp", "conv"], default=["mlp", "conv"]
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X, y = load_mnist_5k()
    X_train, X_test, y_train, _ = train_test_split(
        X, y, test_size=500, stratify=y, random_state=args.seed
    )
    print(
        f"MNIST 5k: {len(X_train)} training, {len(X_test)} held-out digits; "
        f"{args.threads} torch thread(s), seed {args.seed}"
    )
    print(
        f"{'networks':8s} {'D':>3s} {'kept@5':>7s} {'moved':>6s} "
        f"{'rec train':>9s} {'rec test':>9s} {'fit (s)':>8s}"
    )
    for networks in args.networks:
        r = measure(networks, X_train, y_train, X_test, args.seed)
        print(
            f"{networks:8s} {r['D']:3d} {r['kept']:7.1%} {r['moved']:6.2f} "
            f"{r['train_error']:9.3f} {r['test_error']:9.3f} {r['fit']:8.1f}",
            flush=True,
        )
