"""SpectralNet's edge sampler: the envelope of its rejection sampling.

``EdgeSampler`` draws edges by rejection from an envelope: the largest weight of
each segment of up to ``_SEGMENT`` (32) consecutive entries of a row. The
baseline is the earlier envelope, the largest weight of each whole row. Both
sample batches of 2048 edges (SpectralNet's default) from the kernel graph of
the noisy loop at 1e5 points, in locality order as the estimator builds it, in
the same process; the acceptance rates and the time per batch are printed,
with the ratio to the baseline. Then the segment lookup of one round of
draws: the guide table against a binary search of the cdf (the baseline),
which must find the same segments.

Usage::

    python benchmarks/bench_edge_sampler.py            # about 30 s on 2 cores
    python benchmarks/bench_edge_sampler.py --n 20000 --batches 200
"""

import argparse
import time

import numpy as np
import torch

BATCH_SIZE = 2048


def time_per_batch(sampler, n_batches):
    generator = torch.Generator().manual_seed(0)
    sampler.sample(BATCH_SIZE, generator)
    start = time.perf_counter()
    for _ in range(n_batches):
        sampler.sample(BATCH_SIZE, generator)
    return (time.perf_counter() - start) / n_batches


def time_lookup(lookup, repeats=200):
    lookup()
    start = time.perf_counter()
    for _ in range(repeats):
        lookup()
    return (time.perf_counter() - start) / repeats


def main():
    from skvdae.datasets import make_loop
    from skvdae.graph import NeighborIndex, build_diffusion_graph, locality_order
    from skvdae.solvers import _spectralnet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    X, _ = make_loop(args.n, noise=0.01, random_state=0)
    X = X[locality_order(X)]
    graph = build_diffusion_graph(NeighborIndex().fit(X), 10, "auto", alpha=1.0)
    affinity = graph.affinity
    segments = _spectralnet.EdgeSampler(affinity, "cpu")
    default_segment = _spectralnet._SEGMENT
    _spectralnet._SEGMENT = affinity.shape[1]
    rows = _spectralnet.EdgeSampler(affinity, "cpu")
    _spectralnet._SEGMENT = default_segment
    print(
        f"loop n={args.n}: {affinity.nnz / args.n:.1f} entries per sample; "
        f"acceptance {rows.acceptance:.3f} with whole rows, "
        f"{segments.acceptance:.3f} with segments of {default_segment}"
    )
    baseline = time_per_batch(rows, args.batches)
    current = time_per_batch(segments, args.batches)
    print(f"whole rows:  {1e3 * baseline:7.2f} ms per batch")
    print(
        f"segments:    {1e3 * current:7.2f} ms per batch "
        f"({current / baseline:.2f}x the baseline)"
    )
    draws = int(1.25 * BATCH_SIZE / segments.acceptance) + 16
    uniform = torch.rand(draws, generator=torch.Generator().manual_seed(2))
    uniform = uniform.double()
    search = time_lookup(lambda: torch.searchsorted(segments.cdf, uniform))
    guide = time_lookup(lambda: segments.segments(uniform))
    same = torch.equal(
        segments.segments(uniform).long(), torch.searchsorted(segments.cdf, uniform)
    )
    print(
        f"segment lookup of a round's {draws} draws among {segments.cdf.numel()} "
        f"segments: binary search {1e3 * search:.3f} ms, guide table "
        f"{1e3 * guide:.3f} ms ({guide / search:.2f}x); same segments: {same}"
    )
    drawn, columns = segments.sample(200_000, torch.Generator().manual_seed(1))
    weights = np.asarray(affinity[drawn.numpy().copy(), columns.numpy().copy()])
    print(f"all drawn pairs are edges: {bool(np.all(weights.ravel() > 0))}")


if __name__ == "__main__":
    main()
