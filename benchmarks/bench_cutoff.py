"""Kernel cutoff study: does a smaller truncation keep the diffusion map's accuracy?

The kernel ``exp(-|x - y|^2 / eps)`` is truncated where it falls below
``exp(-cutoff)``: by default at the data-driven cutoff of
``skvdae.graph.auto_cutoff`` (between 6 and ``KERNEL_CUTOFF``, 12). For each
fixed cutoff the script makes the graph use it instead, and fits:

- ``DiffusionMapEmbedder(6, solver='exact')`` on the loop (2e4 points, noise
  0.01) and on a circle of 6000 points with density ``1 + 0.8 cos(theta)``:
  fit time, kernel entries per sample, the eigenvalue gaps ``1 - lambda``
  relative to the first pair's (4 and 9 for the second and third harmonics),
  and the squared chordal distance of each coordinate pair to (cos k s,
  sin k s) of the arc length, k = 1, 2, 3;
- ``DiffusionMapEmbedder(10, solver='exact')`` on MNIST 5k: time, entries,
  5-fold 5-NN accuracy on the coordinates;
- ``DiffusionMapEmbedder(2)`` (SpectralNet) on the loop at 1e5: time,
  entries, squared chordal distance of the pair.

Usage::

    python benchmarks/bench_cutoff.py
"""

import time

import numpy as np
from bench_scale import loop_modes, squared_chordal
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from skvdae import DiffusionMapEmbedder
from skvdae.datasets import load_mnist_5k, make_loop
from skvdae.graph import _graph

CUTOFFS = ("auto", 12.0, 9.0, 6.0, 4.0)
AUTO_CUTOFF = _graph.auto_cutoff


def set_cutoff(cutoff):
    """The graph's cutoff: the default rule for 'auto', else ``cutoff``."""
    _graph.auto_cutoff = (
        AUTO_CUTOFF if cutoff == "auto" else lambda nn_index, bandwidth: cutoff
    )


def label(name, cutoff, embedder):
    """``name`` and the cutoff used (marked ``auto`` under the default rule)."""
    rule = "auto" if cutoff == "auto" else "    "
    return f"{name:7s} cutoff {rule} {embedder.kernel_cutoff_:5.2f}"


def timed_fit(embedder, X):
    start = time.perf_counter()
    embedder.fit(X)
    return embedder, time.perf_counter() - start


def harmonics(name, X, modes, cutoff):
    embedder, seconds = timed_fit(
        DiffusionMapEmbedder(6, solver="exact", random_state=0), X
    )
    Z = embedder.transform(X) / embedder.eigenvalues_
    gaps = 1.0 - embedder.eigenvalues_
    ratios = gaps / gaps[:2].mean()
    chordal = [squared_chordal(Z[:, 2 * k : 2 * k + 2], modes(k + 1)) for k in range(3)]
    print(
        f"{label(name, cutoff, embedder)}: fit {seconds:6.2f} s, "
        f"{embedder.edges_per_sample_:6.1f} entries/sample, gap ratios "
        + " ".join(f"{r:.3f}" for r in ratios)
        + ", chordal k=1..3 "
        + " ".join(f"{c:.5f}" for c in chordal),
        flush=True,
    )


def main():
    rng = np.random.RandomState(0)
    theta = rng.uniform(0, 2 * np.pi, 40000)
    theta = theta[rng.uniform(0, 1.8, theta.size) < 1 + 0.8 * np.cos(theta)][:6000]
    circle = np.c_[np.cos(theta), np.sin(theta)]
    loop, t = make_loop(20000, noise=0.01, random_state=0)
    big, t_big = make_loop(100000, noise=0.01, random_state=0)
    digits, labels = load_mnist_5k()
    digits = digits.astype(np.float64)
    for cutoff in CUTOFFS:
        set_cutoff(cutoff)
        harmonics("loop", loop, lambda k: loop_modes(t, k), cutoff)
        harmonics(
            "circle",
            circle,
            lambda k: np.c_[np.cos(k * theta), np.sin(k * theta)],
            cutoff,
        )
        embedder, seconds = timed_fit(
            DiffusionMapEmbedder(10, solver="exact", random_state=0), digits
        )
        accuracy = cross_val_score(
            KNeighborsClassifier(5), embedder.transform(digits), labels, cv=5
        ).mean()
        print(
            f"{label('mnist', cutoff, embedder)}: fit {seconds:6.2f} s, "
            f"{embedder.edges_per_sample_:6.1f} entries/sample, 5-NN {accuracy:.4f}",
            flush=True,
        )
        embedder, seconds = timed_fit(DiffusionMapEmbedder(2, random_state=0), big)
        print(
            f"{label('loop1e5', cutoff, embedder)}: fit {seconds:6.2f} s "
            "(SpectralNet), "
            f"{embedder.edges_per_sample_:6.1f} entries/sample, chordal "
            f"{squared_chordal(embedder.transform(big), loop_modes(t_big)):.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
