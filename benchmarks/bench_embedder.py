"""Benchmark DiffusionMapEmbedder against sklearn.manifold.SpectralEmbedding.

Data sets:
- ``loop``: the loop (cos t, sin 2t, sin 3t) plus Gaussian noise 0.01, at each
  size n;
- ``loop100``: the same loop isometrically in 100 dimensions (a random
  orthonormal frame), with Gaussian noise 0.003 in every dimension, 1e5 points;
- ``mnist``: MNIST 5k (784 pixels, ``skvdae.datasets.load_mnist_5k``);
- ``clusters20``: three Gaussian clusters in 20 dimensions, of 40,000, 15,000
  and 5,000 samples with spreads 1, 0.6 and 0.3 (densities far apart), and 5
  far outliers: 60,005 samples.

Every (method, data set) runs in a fresh process (so peak memory is its own)
and reports fit time, peak resident memory, transform throughput and accuracy.
Times and memory are printed as ratios to SpectralEmbedding (same
n_neighbors) of the same run: its default eigensolver (ARPACK, shift-invert),
or ``eigen_solver='lobpcg'`` (method ``SpectralEmbedding lobpcg``, run on
``clusters20``, where the default's sparse LU of a 20-dimensional graph is
slow), whichever is faster. A job that runs past ``--timeout`` seconds is
stopped and reported as not finished. The embedder runs at its defaults
otherwise (``neighbors=None``: approximate search on ``loop100`` when faiss is
installed).

Accuracy:
- ``chordal_truth`` (loops): squared chordal distance between the span of the
  first two coordinates and {cos, sin} of the arc length (the
  Laplace-Beltrami modes of the loop), on the training points.
- ``knn_accuracy`` (MNIST, clusters): 5-fold cross-validated accuracy of a
  5-nearest neighbour classifier of the digits (the clusters, the outliers a
  class of their own) on the coordinates.
- ``chordal_exact``: for SpectralNet, squared chordal distance between the spans
  of all its coordinates and of the exact solver's, on held-out points;
  ``chordal_exact_first_pair`` the same for the first two coordinates only.

Usage::

    python benchmarks/bench_embedder.py                 # loop at 1e3, 1e4, 1e5
    python benchmarks/bench_embedder.py --with-1e6      # adds the loop at 1e6
    python benchmarks/bench_embedder.py --with-1e7      # adds 1e7 (SpectralNet)
    python benchmarks/bench_embedder.py --data mnist loop100 clusters20
    python benchmarks/bench_embedder.py --data clusters20 --timeout 600
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


def lifted_loop(n, random_state):
    """The loop in 100 dimensions, noise 0.003 in every one; and its ``t``."""
    from skvdae.datasets import make_loop

    X, t = make_loop(n, noise=0.0, random_state=random_state)
    frame, _ = np.linalg.qr(np.random.RandomState(0).normal(size=(100, 3)))
    noise = np.random.RandomState(random_state + 100).normal(size=(n, 100))
    return X @ frame.T + 0.003 * noise, t


def clusters_20(n_scale, random_state):
    """The ``clusters20`` set (sizes times ``n_scale``) and its labels."""
    centres = np.random.RandomState(7).normal(scale=6.0, size=(3, 20))
    rng = np.random.RandomState(random_state)
    sizes = [round(n_scale * size) for size in (40_000, 15_000, 5_000)]
    X = np.vstack(
        [
            centre + spread * rng.normal(size=(size, 20))
            for centre, size, spread in zip(
                centres, sizes, (1.0, 0.6, 0.3), strict=True
            )
        ]
        + [rng.uniform(-40.0, 40.0, size=(5, 20))]
    )
    return X, np.r_[np.repeat(np.arange(3), sizes), [3] * 5]


def load(data, n):
    """Training, held-out and transform sets; ``t`` or labels for accuracy."""
    from skvdae.datasets import load_mnist_5k, make_loop

    if data == "mnist":
        X, y = load_mnist_5k()
        X = np.asarray(X, dtype=np.float64)
        return {"X": X, "labels": y, "held": X[::5], "many": np.tile(X, (4, 1))}
    if data == "clusters20":
        X, y = clusters_20(1.0, random_state=0)
        held = clusters_20(N_HELD_OUT / 60_000, random_state=1)[0]
        many = clusters_20(20_000 / 60_000, random_state=2)[0]
        return {"X": X, "labels": y, "held": held, "many": many}

    def make(size, random_state):
        if data == "loop100":
            return lifted_loop(size, random_state)
        return make_loop(size, noise=NOISE, random_state=random_state)

    many = N_TRANSFORM if data == "loop" else 20_000
    X, t = make(n, random_state=0)
    return {
        "X": X,
        "t": t,
        "held": make(N_HELD_OUT, random_state=1)[0],
        "many": make(many, random_state=2)[0],
    }


def run_job(job):
    """One (method, data set, n) measurement, in its own process."""
    import torch

    from skvdae import DiffusionMapEmbedder

    method, n, data, scratch = job["method"], job["n"], job["data"], job["scratch"]
    sets = load(data, n)
    X, X_held, X_many = sets["X"], sets["held"], sets["many"]
    n = len(X)
    n_components = 10 if data == "mnist" else N_COMPONENTS
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "method": method,
        "data": data,
        "n": n,
        "torch_threads": torch.get_num_threads(),
    }

    if method.startswith("SpectralEmbedding"):
        from sklearn.manifold import SpectralEmbedding

        model = SpectralEmbedding(
            n_components=n_components,
            n_neighbors=N_NEIGHBORS,
            random_state=0,
            eigen_solver="lobpcg" if method.endswith("lobpcg") else None,
        )
        start = time.perf_counter()
        Z = model.fit_transform(X)
        result["fit_s"] = time.perf_counter() - start
        result["transform_pts_per_s"] = None
    else:
        solver = "exact" if method == "skvdae exact" else "spectralnet"
        model = DiffusionMapEmbedder(
            n_components=n_components,
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
        result["transform_pts_per_s"] = len(X_many) / (time.perf_counter() - start)
        held = model.transform(X_held)
        path = os.path.join(scratch, f"exact_{data}_{n}.npy")
        if solver == "exact":
            np.save(path, held)
        elif os.path.exists(path):
            reference = np.load(path)
            result["chordal_exact"] = squared_chordal(held, reference)
            result["chordal_exact_first_pair"] = squared_chordal(
                held[:, :2], reference[:, :2]
            )
        result["eigenvalue_gaps"] = (1 - model.eigenvalues_).tolist()
        result["edges_per_sample"] = model.edges_per_sample_
        result["dropped_kernel_mass"] = model.dropped_kernel_mass_
        result["neighbors"] = model.neighbor_search_
        result["n_outliers"] = model.n_outliers_
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_increase_mb"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_rss
    ) / 1024
    if "t" in sets:
        result["chordal_truth"] = squared_chordal(Z[:, :2], arc_length_modes(sets["t"]))
    else:
        from sklearn.model_selection import cross_val_score
        from sklearn.neighbors import KNeighborsClassifier

        result["knn_accuracy"] = float(
            cross_val_score(KNeighborsClassifier(5), Z, sets["labels"], cv=5).mean()
        )
    return result


def format_table(results):
    header = (
        f"{'data':<10} {'n':>8} {'method':<24} {'fit s':>8} {'fit/SE':>7} "
        f"{'peak MB':>8} {'mem/SE':>7} {'transform pts/s':>16} {'accuracy':>17} "
        f"{'vs exact 1-2':>13} {'vs exact all':>12}"
    )
    lines = [header, "-" * len(header)]
    groups = sorted({(r["data"], r["n"]) for r in results})
    for data, n in groups:
        rows = [r for r in results if (r["data"], r["n"]) == (data, n)]
        baselines = [
            r
            for r in rows
            if r["method"].startswith("SpectralEmbedding") and r["fit_s"] is not None
        ]
        base = min(baselines, key=lambda r: r["fit_s"], default=None)
        for r in rows:
            if r["fit_s"] is None:
                lines.append(
                    f"{data:<10} {n:>8} {r['method']:<24} did not finish in "
                    f"{r['timeout_s']} s"
                )
                continue
            pps = r.get("transform_pts_per_s")
            if "chordal_truth" in r:
                accuracy = f"chordal {r['chordal_truth']:.4f}"
            else:
                accuracy = f"5-NN {r['knn_accuracy']:.3f}"
            fit_ratio = f"{r['fit_s'] / base['fit_s']:.2f}" if base else "-"
            mem_ratio = f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}" if base else "-"
            lines.append(
                f"{data:<10} {n:>8} {r['method']:<24} {r['fit_s']:>8.2f} "
                f"{fit_ratio:>7} {r['peak_rss_mb']:>8.0f} {mem_ratio:>7} "
                f"{(f'{pps:,.0f}' if pps else '-'):>16} {accuracy:>17} "
                f"{_optional(r.get('chordal_exact_first_pair')):>13} "
                f"{_optional(r.get('chordal_exact')):>12}"
            )
    return "\n".join(lines)


def _optional(value):
    return "-" if value is None else f"{value:.4f}"


def methods_for(n, data="loop"):
    """Every method up to 2e5 points; beyond, what fits in 24 GB."""
    if data == "clusters20":
        return [
            "SpectralEmbedding",
            "SpectralEmbedding lobpcg",
            "skvdae exact",
            "skvdae spectralnet",
        ]
    if n > 2_000_000:  # SpectralEmbedding took 15 GB at 1e6
        return ["skvdae spectralnet"]
    if n > 200_000:
        return ["SpectralEmbedding", "skvdae spectralnet"]
    return ["SpectralEmbedding", "skvdae exact", "skvdae spectralnet"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument(
        "--data",
        nargs="+",
        default=["loop"],
        choices=["loop", "loop100", "mnist", "clusters20"],
    )
    parser.add_argument("--with-1e6", action="store_true", help="add the loop at 1e6")
    parser.add_argument("--with-1e7", action="store_true", help="add the loop at 1e7")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=[
            "SpectralEmbedding",
            "SpectralEmbedding lobpcg",
            "skvdae exact",
            "skvdae spectralnet",
        ],
        help="only these methods (default: every one that fits in memory)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop a job after this many seconds and report it as not finished",
    )
    parser.add_argument("--out", default="benchmarks/results/embedder.json")
    args = parser.parse_args()
    jobs = []
    for data in args.data:
        if data == "loop":
            sizes = list(args.sizes)
            sizes += [1_000_000] if args.with_1e6 else []
            sizes += [10_000_000] if args.with_1e7 else []
        else:
            sizes = [{"loop100": 100_000, "clusters20": 60_005}.get(data, 5000)]
        jobs += [
            (data, n, method)
            for n in sizes
            for method in methods_for(n, data)
            if args.methods is None or method in args.methods
        ]

    results = []
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch:
        for data, n, method in jobs:
            with context.Pool(1, maxtasksperchild=1) as pool:
                job = {"method": method, "n": n, "data": data, "scratch": scratch}
                pending = pool.apply_async(run_job, (job,))
                try:
                    result = pending.get(timeout=args.timeout)
                except multiprocessing.TimeoutError:
                    pool.terminate()
                    result = {"method": method, "data": data, "n": n}
                    result.update(fit_s=None, timeout_s=args.timeout)
            results.append(result)
            if result["fit_s"] is None:
                print(f"{data:<10} n={n:>8} {method:<24} stopped", flush=True)
                continue
            print(
                f"{data:<10} n={n:>8} {method:<24} fit {result['fit_s']:8.2f} s  "
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
