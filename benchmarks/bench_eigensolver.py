"""The exact solver's eigensolver: shift-invert or plain Lanczos, chosen by cost.

For each data set the kernel graph is built as the estimator builds it
(locality order, ``'auto'`` bandwidth, alpha = 1) and the leading eigenvectors
of its largest component are computed three ways in the same process: by the
rule (``factorisation_cost``, which predicts the sparse LU's cost in products
with the graph from two small graph balls), by shift-invert Lanczos (the
sparse LU) and by plain Lanczos (products only). Each line gives the time,
the solves or products, and the largest eigenvalue difference to the first
path run. A forced factorisation predicted to cost more than
``--max-factorisation`` products is skipped (it can take minutes or not end).

Usage::

    python benchmarks/bench_eigensolver.py                  # about 2 min on 2 cores
    python benchmarks/bench_eigensolver.py --n 50000 --data loop ball
"""

import argparse
import time

import numpy as np

DATA = ("loop", "sphere", "swiss_roll", "ball", "blob8")


def make(data, n, random_state=0):
    from sklearn.datasets import make_swiss_roll

    from skvdae.datasets import make_loop, make_sphere

    rng = np.random.RandomState(random_state)
    if data == "loop":
        return make_loop(n, noise=0.01, random_state=random_state)[0]
    if data == "sphere":
        return make_sphere(n, noise=0.01, random_state=random_state)[0]
    if data == "swiss_roll":
        return make_swiss_roll(n, noise=0.05, random_state=random_state)[0]
    if data == "ball":
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        return direction * rng.uniform(size=(n, 1)) ** (1 / 3)
    return rng.normal(size=(n, 8))


def largest_component(data, n):
    from skvdae.graph import NeighborIndex, build_diffusion_graph, locality_order
    from skvdae.solvers._eigen import symmetric_kernel_operator

    X = make(data, n)
    X = X[locality_order(X)]
    graph = build_diffusion_graph(NeighborIndex().fit(X), 10, "auto", alpha=1.0)
    labels = graph.component_labels
    rows = np.flatnonzero(labels == np.bincount(labels).argmax())
    affinity = graph.affinity[rows][:, rows]
    return symmetric_kernel_operator(affinity, graph.degrees[rows])


def solve(symmetric, n_eigenvectors, budget):
    """``(seconds, count, eigenvalues)`` of one path; ``budget=None``: the rule."""
    from skvdae.solvers import _eigen

    rule = _eigen.factorisation_cost
    if budget is not None:
        _eigen.factorisation_cost = lambda matrix: budget
    try:
        start = time.perf_counter()
        _, values, count = _eigen._component_eigenvectors(
            symmetric, n_eigenvectors, np.random.RandomState(0)
        )
        seconds = time.perf_counter() - start
    finally:
        _eigen.factorisation_cost = rule
    return seconds, count, np.sort(values)[::-1]


def main():
    from skvdae.solvers._eigen import _MIN_LANCZOS_PRODUCTS, factorisation_cost

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=DATA)
    parser.add_argument("--eigenvectors", type=int, default=11)
    parser.add_argument("--max-factorisation", type=float, default=5000.0)
    args = parser.parse_args()
    for data in args.data:
        symmetric = largest_component(data, args.n)
        n = symmetric.shape[0]
        start = time.perf_counter()
        cost = factorisation_cost(symmetric)
        probe = time.perf_counter() - start
        choice = "shift-invert" if cost < _MIN_LANCZOS_PRODUCTS else "plain first"
        print(
            f"{data}: n={n}, {symmetric.nnz / n:.0f} entries per row; predicted LU "
            f"{cost:.0f} products -> {choice} (probe {probe:.2f} s)"
        )
        reference = None
        paths = [("rule", None), ("shift-invert", 0.0), ("plain Lanczos", np.inf)]
        for name, budget in paths:
            if name == "shift-invert" and cost > args.max_factorisation:
                print(f"  {name:14s} skipped (predicted {cost:.0f} products)")
                continue
            seconds, count, values = solve(symmetric, args.eigenvectors, budget)
            reference = values if reference is None else reference
            print(
                f"  {name:14s} {seconds:7.2f} s  {count:6d} solves+products  "
                f"max |eigenvalue diff| {np.max(np.abs(values - reference)):.1e}"
            )


if __name__ == "__main__":
    main()
