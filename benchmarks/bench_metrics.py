"""Time and peak memory of the chunked metrics at n = 1e4 and n = 1e5.

Shows that the memory of the pairwise metrics (precision/recall/density/coverage
and the Gaussian-kernel MMD) stays bounded when the comparison grows from
1e4 x 1e4 to 1e5 x 1e5 pairs: a dense float64 distance matrix would need 0.8 GB
and 80 GB; the chunked computations need a few MiB beyond their inputs. All the
metrics are computed exactly on the full samples (no subsampling; only the MMD's
median-heuristic bandwidth uses a seeded subsample of 1000 points).

Peak memory is measured with :mod:`tracemalloc` (numpy reports its buffers to
it) as the peak above what was allocated before the call, inputs excluded.

Run from the repository root::

    python benchmarks/bench_metrics.py                # n = 1e4 and 1e5, ~2 min
    python benchmarks/bench_metrics.py --sizes 2000 5000   # a quick check
"""

import argparse
import time
import tracemalloc

import numpy as np

from skvdae.metrics import (
    bilipschitz_constants,
    maximum_mean_discrepancy,
    precision_recall_density_coverage,
)

MIB = 2**20


def measure(function):
    """Run ``function()`` once; return (result, seconds, peak MiB above the start)."""
    tracemalloc.start()
    start_memory, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - start
    _, peak_memory = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, (peak_memory - start_memory) / MIB


def samples(n, n_features, seed):
    """A real sample and a slightly shifted fake one."""
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, n_features))
    fake = rng.normal(size=(n, n_features)) + 0.1
    return real, fake


def cases(real, fake, n_jobs):
    """(name, callable, formatter of the result) for every metric benchmarked."""

    def prdc(algorithm):
        return lambda: precision_recall_density_coverage(
            real, fake, n_neighbors=5, algorithm=algorithm, n_jobs=n_jobs
        )

    def show_prdc(result):
        return " ".join(f"{key[:3]}={value:.3f}" for key, value in result.items())

    return [
        ("prdc kd_tree", prdc("kd_tree"), show_prdc),
        ("prdc brute", prdc("brute"), show_prdc),
        (
            "mmd2 unbiased",
            lambda: maximum_mean_discrepancy(real, fake, random_state=0, n_jobs=n_jobs),
            lambda value: f"mmd2={value:.2e}",
        ),
        (
            "bilipschitz",
            lambda: bilipschitz_constants(real[:, :2], real, n_jobs=n_jobs),
            lambda K: f"median K={np.median(K):.3f}",
        ),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--n-features", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()

    header = f"{'n':>7}  {'metric':<14} {'time (s)':>9} {'peak (MiB)':>11}  result"
    rule = "=" * 7 + "  " + "=" * 14 + " " + "=" * 9 + " " + "=" * 11 + "  " + "=" * 44
    print(f"n_features={args.n_features}, n_jobs={args.n_jobs}, float64")
    print(rule)
    print(header)
    print(rule)
    for n in args.sizes:
        real, fake = samples(n, args.n_features, seed=0)
        for name, function, show in cases(real, fake, args.n_jobs):
            result, seconds, peak = measure(function)
            print(f"{n:>7}  {name:<14} {seconds:>9.2f} {peak:>11.1f}  {show(result)}")
    print(rule)
    for n in args.sizes:
        print(f"a dense {n} x {n} float64 matrix: {n * n * 8 / MIB:,.0f} MiB")


if __name__ == "__main__":
    main()
