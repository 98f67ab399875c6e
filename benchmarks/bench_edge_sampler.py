"""SpectralNet's edge sampler: candidates per rejection round.

``EdgeSampler`` draws edges by rejection from a row-maximum envelope. Each
round draws the missing edges divided by the envelope's acceptance rate (with a
margin); the baseline is the earlier rule, twice the missing edges a round,
written here as a sampler whose acceptance rate is fixed at 0.625 (so that
``1.25 / 0.625 = 2``). Both sample batches of 2048 edges (SpectralNet's
default) from the kernel graph of the noisy loop at 1e5 points, in the same
process; the time per batch is printed with the ratio to the baseline.

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


def main():
    from skvdae.datasets import make_loop
    from skvdae.graph import NeighborIndex, build_diffusion_graph
    from skvdae.solvers._spectralnet import EdgeSampler

    class TwicePerRound(EdgeSampler):
        def __init__(self, affinity, device):
            super().__init__(affinity, device)
            self.acceptance = 0.625

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    X, _ = make_loop(args.n, noise=0.01, random_state=0)
    graph = build_diffusion_graph(NeighborIndex().fit(X), 10, "auto", alpha=1.0)
    affinity = graph.affinity
    adaptive = EdgeSampler(affinity, "cpu")
    print(
        f"loop n={args.n}: {affinity.nnz / args.n:.1f} entries per sample, "
        f"envelope acceptance {adaptive.acceptance:.3f}"
    )
    baseline = time_per_batch(TwicePerRound(affinity, "cpu"), args.batches)
    current = time_per_batch(adaptive, args.batches)
    print(f"twice the missing edges a round: {1e3 * baseline:7.2f} ms per batch")
    print(
        f"missing / acceptance a round:    {1e3 * current:7.2f} ms per batch "
        f"({current / baseline:.2f}x the baseline)"
    )
    rows, columns = adaptive.sample(200_000, torch.Generator().manual_seed(1))
    weights = np.asarray(affinity[rows.numpy().copy(), columns.numpy().copy()]).ravel()
    print(f"all drawn pairs are edges: {bool(np.all(weights > 0))}")


if __name__ == "__main__":
    main()
