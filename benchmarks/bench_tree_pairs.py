"""The KD-tree's kernel pairs: dual-tree search against shared ball queries.

In low dimension the kernel graph's pairs come either from scipy's dual-tree
search (then sorted into rows) or from one sorted ball query per block of 32
nearby rows (``NeighborIndex._shared_tree_rows``); the second is taken where
its lists hold at most ``_TREE_SHARED_RATIO`` times the pairs found. For each
data set this builds ``kernel_matrix`` both ways, at the bandwidth and cutoff
of a default exact fit, in the same process, and prints the ratio the rule
reads, the path it picks, both times and whether the matrices agree.

Usage::

    python benchmarks/bench_tree_pairs.py          # about 2 minutes on 2 cores
    python benchmarks/bench_tree_pairs.py --with-1e6
"""

import argparse
import time

import numpy as np


def data_sets(with_1e6):
    from sklearn.datasets import make_blobs, make_moons, make_s_curve, make_swiss_roll

    from skvdae.datasets import make_loop

    rng = np.random.RandomState(0)
    normal = rng.normal(size=(30_000, 3))
    sets = {
        "loop 1e5": make_loop(100_000, noise=0.01, random_state=0)[0],
        "moons 2e4": make_moons(20_000, noise=0.05, random_state=0)[0],
        "blobs 4e4": make_blobs(
            40_000,
            n_features=3,
            centers=5,
            cluster_std=[0.2, 0.5, 1.0, 1.5, 0.1],
            random_state=0,
        )[0],
        "s-curve 6-D 3e4": np.c_[
            make_s_curve(30_000, noise=0.05, random_state=0)[0],
            0.05 * rng.normal(size=(30_000, 3)),
        ],
        "swiss roll 3e4": make_swiss_roll(30_000, noise=0.3, random_state=0)[0],
        "cube 5e4": rng.uniform(size=(50_000, 3)),
        "sphere 3e4": normal / np.linalg.norm(normal, axis=1, keepdims=True),
    }
    if with_1e6:
        sets["loop 1e6"] = make_loop(1_000_000, noise=0.01, random_state=0)[0]
    return sets


def lists_per_pair(index, radius):
    """The ratio the rule reads: shared lists against balls, on probe blocks."""
    from skvdae.graph import _neighbors

    size = _neighbors._TREE_SHARED_ROWS
    blocks = _neighbors._evenly_spaced_rows(index.n_samples_fit_ // size, 256)
    rows = (blocks[:, None] * size + np.arange(size)).ravel()
    _, _, centres, reach = _neighbors._shared_balls(index.data_[rows], radius, size)
    tree = index._tree()
    listed = tree.query_ball_point(centres, reach, return_length=True).sum()
    return listed / tree.query_ball_point(centres, radius, return_length=True).sum()


def main():
    from skvdae import DiffusionMapEmbedder
    from skvdae.graph import (
        GaussianKernel,
        NeighborIndex,
        _neighbors,
        kernel_matrix,
        locality_order,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-1e6", action="store_true")
    args = parser.parse_args()
    default_ratio = _neighbors._TREE_SHARED_RATIO
    print(f"rule: shared where lists <= {default_ratio} x pairs")
    for name, X in data_sets(args.with_1e6).items():
        fitted = DiffusionMapEmbedder(n_components=2, max_iter=1, random_state=0)
        fitted.fit(X)
        kernel = GaussianKernel(fitted.bandwidth_, fitted.kernel_cutoff_)
        index = NeighborIndex().fit(X[locality_order(X)])
        ratio = lists_per_pair(index, kernel.radius)
        times, matrices = {}, {}
        for path, forced in (("dual", 0.0), ("shared", np.inf)):
            # The rule compares counts: an infinite ratio always shares.
            _neighbors._TREE_SHARED_RATIO = forced
            start = time.perf_counter()
            matrices[path] = kernel_matrix(index, kernel)
            times[path] = time.perf_counter() - start
        _neighbors._TREE_SHARED_RATIO = default_ratio
        dual, shared = matrices["dual"], matrices["shared"]
        same = np.array_equal(dual.indptr, shared.indptr) and np.array_equal(
            dual.indices, shared.indices
        )
        worst = np.max(np.abs(dual.data - shared.data) / dual.data) if same else np.nan
        print(
            f"{name:<17} {dual.nnz / len(X):7.1f} entries/sample  lists/pairs "
            f"{ratio:5.2f}  picks {'shared' if ratio <= default_ratio else 'dual':<6}"
            f"  dual {times['dual']:6.2f} s  shared {times['shared']:6.2f} s "
            f"({times['shared'] / times['dual']:.2f}x)  same pattern {same}, "
            f"weights within {worst:.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
