"""Fit DiffusionMapEmbedder on a large noisy loop: time, memory, accuracy.

The loop (cos t, sin 2t, sin 3t) with Gaussian noise 0.01, n points,
``DiffusionMapEmbedder(n_components=2, random_state=0)`` (the default
SpectralNet solver, the default bounded 'auto' bandwidth). The fit runs in a
fresh process, so that its peak resident memory is its own; the accuracy is the
squared chordal distance between the span of the two coordinates and
(cos, sin) of the arc length, on 20,000 of the training points.

With several ``--device`` values each size is fitted on each device in turn
(``device=`` of the estimator; the graph is built on the CPU either way) and
the fit time is also given as a ratio to the first device's, on the same
machine in the same invocation; on CUDA the peak of GPU memory that torch
allocated is printed too.

Usage::

    python benchmarks/bench_scale.py                 # n = 1e6
    python benchmarks/bench_scale.py --n 100000 200000
    python benchmarks/bench_scale.py --device cpu cuda   # on a GPU machine
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


def run(n, device="auto"):
    import torch

    from skvdae import DiffusionMapEmbedder

    X, t = noisy_loop(n)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    embedder = DiffusionMapEmbedder(n_components=2, device=device, random_state=0)
    embedder.fit(X)
    fit_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cuda = torch.cuda.is_available() and device != "cpu"
    return {
        "n": n,
        "device": "cuda" if cuda else "cpu",
        "gpu_peak_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
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
    parser.add_argument(
        "--device", nargs="+", default=["auto"], choices=["auto", "cpu", "cuda"]
    )
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for n in args.n:
        first = None
        for device in args.device:
            with context.Pool(1, maxtasksperchild=1) as pool:
                result = pool.apply(run, (n, device))
            first = first or result["fit_s"]
            gpu = result["gpu_peak_gb"]
            print(
                f"n={result['n']:>9}  {result['device']:4}  fit "
                f"{result['fit_s']:7.1f} s ({result['fit_s'] / first:.2f}x the "
                f"first device)  peak {result['peak_gb']:5.2f} GiB (fit "
                f"+{result['fit_increase_gb']:.2f})"
                + ("" if gpu is None else f", GPU {gpu:.2f} GiB")
                + f"  {result['edges_per_sample']:.0f} edges/sample (bound "
                f"{'binds' if result['bandwidth_bound'] else 'free'}), "
                f"{result['n_outliers']} outliers, chordal {result['chordal']:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
