"""Fit DiffusionMapEmbedder on a large noisy loop: time, memory, accuracy.

The loop (cos t, sin 2t, sin 3t) with Gaussian noise 0.01, n points,
``DiffusionMapEmbedder(n_components=2, random_state=0)`` (the default
SpectralNet solver, the default bounded 'auto' bandwidth). The fit runs in a
fresh process, so that its peak resident memory is its own; the accuracy is the
squared chordal distance between the span of the two coordinates and
(cos, sin) of the arc length, on 20,000 of the training points.

Usage::

    python benchmarks/bench_scale.py                 # n = 1e6
    python benchmarks/bench_scale.py --n 100000 200000
"""

import argparse
import multiprocessing
import resource
import time

import numpy as np


def noisy_loop(n):
    """The loop with Gaussian noise 0.01, ``n`` points, seed 0; and its ``t``."""
    rng = np.random.RandomState(0)
    t = rng.uniform(0, 2 * np.pi, n)
    X = np.c_[np.cos(t), np.sin(2 * t), np.sin(3 * t)] + 0.01 * rng.normal(size=(n, 3))
    return X, t


def loop_modes(t, k=1):
    """(cos k s, sin k s) of the arc length ``s`` (in radians) at ``t``."""
    from skvdae.datasets import loop_arc_length

    arc, total = loop_arc_length(t)
    phase = 2 * np.pi * k * arc / total
    return np.c_[np.cos(phase), np.sin(phase)]


def squared_chordal(A, B):
    """Squared chordal distance between the spans of the centred columns."""
    qa, _ = np.linalg.qr(A - A.mean(axis=0))
    qb, _ = np.linalg.qr(B - B.mean(axis=0))
    return float(A.shape[1] - np.linalg.norm(qa.T @ qb) ** 2)


def run(n):
    from skvdae import DiffusionMapEmbedder

    X, t = noisy_loop(n)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    embedder = DiffusionMapEmbedder(n_components=2, random_state=0).fit(X)
    fit_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "fit_s": fit_s,
        "peak_gb": peak / 2**20,
        "fit_increase_gb": (peak - baseline) / 2**20,
        "edges_per_sample": embedder.edges_per_sample_,
        "bandwidth_bound": embedder.bandwidth_bound_,
        "n_outliers": embedder.n_outliers_,
        "chordal": squared_chordal(
            embedder.transform(X[:20_000]), loop_modes(t[:20_000])
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1_000_000])
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for n in args.n:
        with context.Pool(1, maxtasksperchild=1) as pool:
            result = pool.apply(run, (n,))
        print(
            f"n={result['n']:>9}  fit {result['fit_s']:7.1f} s  peak "
            f"{result['peak_gb']:5.2f} GiB (fit +{result['fit_increase_gb']:.2f})  "
            f"{result['edges_per_sample']:.0f} edges/sample (bound "
            f"{'binds' if result['bandwidth_bound'] else 'free'}), "
            f"{result['n_outliers']} outliers, chordal {result['chordal']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
