"""Benchmark DiffusionMapEmbedder against sklearn.manifold.SpectralEmbedding.

For each size n, on the loop (cos t, sin 2t, sin 3t) plus Gaussian noise, every
method runs in a fresh process (so peak memory is its own) and reports fit time,
peak resident memory, transform throughput and accuracy. Times and memory are
printed as ratios to SpectralEmbedding (same n_neighbors) of the same run.

Accuracy:
- ``chordal_truth``: squared chordal distance between the span of the first two
  coordinates and {cos, sin} of the arc length (the Laplace-Beltrami modes of the
  loop), on the training points.
- ``chordal_exact``: for SpectralNet, squared chordal distance between the spans
  of all its coordinates and of the exact solver's, on held-out points;
  ``chordal_exact_first_pair`` the same for the first two coordinates only.

Usage::

    python benchmarks/bench_embedder.py                 # n = 1e3, 1e4, 1e5
    python benchmarks/bench_embedder.py --with-1e6      # adds n = 1e6
    python benchmarks/bench_embedder.py --sizes 1000 5000 --out results.json
"""

import argparse
import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time

import numpy as np

N_COMPONENTS = 4
N_NEIGHBORS = 10
NOISE = 0.01
N_HELD_OUT = 5000
N_TRANSFORM = 200_000


def squared_chordal(A, B):
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    return float(A.shape[1] - np.linalg.norm(qa.T @ qb) ** 2)


def arc_length_modes(t):
    from skvdae.datasets import loop_arc_length

    s, total = loop_arc_length(t)
    phase = 2 * np.pi * s / total
    return np.c_[np.cos(phase), np.sin(phase)]


def run_job(job):
    """One (method, n) measurement, in its own process."""
    import torch

    from skvdae import DiffusionMapEmbedder
    from skvdae.datasets import make_loop

    method, n, scratch = job["method"], job["n"], job["scratch"]
    X, t = make_loop(n, noise=NOISE, random_state=0)
    X_held, _ = make_loop(N_HELD_OUT, noise=NOISE, random_state=1)
    X_many, _ = make_loop(N_TRANSFORM, noise=NOISE, random_state=2)
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"method": method, "n": n, "torch_threads": torch.get_num_threads()}

    if method == "SpectralEmbedding":
        from sklearn.manifold import SpectralEmbedding

        model = SpectralEmbedding(
            n_components=N_COMPONENTS, n_neighbors=N_NEIGHBORS, random_state=0
        )
        start = time.perf_counter()
        Z = model.fit_transform(X)
        result["fit_s"] = time.perf_counter() - start
        result["transform_pts_per_s"] = None
    else:
        solver = "exact" if method == "skvdae exact" else "spectralnet"
        model = DiffusionMapEmbedder(
            n_components=N_COMPONENTS,
            bandwidth_neighbors=N_NEIGHBORS,
            solver=solver,
            random_state=0,
            device="cpu",
        )
        start = time.perf_counter()
        Z = model.fit_transform(X)
        result["fit_s"] = time.perf_counter() - start
        start = time.perf_counter()
        model.transform(X_many)
        result["transform_pts_per_s"] = N_TRANSFORM / (time.perf_counter() - start)
        held = model.transform(X_held)
        path = os.path.join(scratch, f"exact_{n}.npy")
        if solver == "exact":
            np.save(path, held)
        elif os.path.exists(path):
            reference = np.load(path)
            result["chordal_exact"] = squared_chordal(held, reference)
            result["chordal_exact_first_pair"] = squared_chordal(
                held[:, :2], reference[:, :2]
            )
        result["eigenvalue_gaps"] = (1 - model.eigenvalues_).tolist()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_increase_mb"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_rss
    ) / 1024
    result["chordal_truth"] = squared_chordal(Z[:, :2], arc_length_modes(t))
    return result


def format_table(results):
    header = (
        f"{'n':>8} {'method':<18} {'fit s':>8} {'fit/SE':>7} {'peak MB':>8} "
        f"{'mem/SE':>7} {'transform pts/s':>16} {'chordal truth':>14} "
        f"{'vs exact 1-2':>13} {'vs exact all':>12}"
    )
    lines = [header, "-" * len(header)]
    for n in sorted({r["n"] for r in results}):
        rows = [r for r in results if r["n"] == n]
        base = next(r for r in rows if r["method"] == "SpectralEmbedding")
        for r in rows:
            pps = r.get("transform_pts_per_s")
            pps_text = f"{pps:,.0f}" if pps else "-"
            exact = r.get("chordal_exact")
            exact_text = f"{exact:.4f}" if exact is not None else "-"
            pair = r.get("chordal_exact_first_pair")
            pair_text = f"{pair:.4f}" if pair is not None else "-"
            lines.append(
                f"{n:>8} {r['method']:<18} {r['fit_s']:>8.2f} "
                f"{r['fit_s'] / base['fit_s']:>7.2f} {r['peak_rss_mb']:>8.0f} "
                f"{r['peak_rss_mb'] / base['peak_rss_mb']:>7.2f} "
                f"{pps_text:>16} {r['chordal_truth']:>14.4f} {pair_text:>13} "
                f"{exact_text:>12}"
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--with-1e6", action="store_true", help="add n = 1,000,000")
    parser.add_argument("--out", default="benchmarks/results/embedder.json")
    args = parser.parse_args()
    sizes = args.sizes + ([1_000_000] if args.with_1e6 else [])

    methods = ["SpectralEmbedding", "skvdae exact", "skvdae spectralnet"]
    results = []
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch:
        for n in sizes:
            for method in methods:
                with context.Pool(1, maxtasksperchild=1) as pool:
                    job = {"method": method, "n": n, "scratch": scratch}
                    result = pool.apply(run_job, (job,))
                results.append(result)
                print(
                    f"n={n:>8} {method:<18} fit {result['fit_s']:8.2f} s  "
                    f"peak {result['peak_rss_mb']:7.0f} MB",
                    flush=True,
                )
    table = format_table(results)
    print()
    print(table)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores",
                "python": platform.python_version(),
                "results": results,
                "table": table,
            },
            handle,
            indent=2,
        )


if __name__ == "__main__":
    main()
