"""Approximate neighbour libraries against exact search: recall and time.

For MNIST 5k (784 pixels) and 1e5 points of a 7-dimensional manifold in 100
dimensions (noise 0.01), every point's 30 nearest neighbours by exact brute
force, pynndescent (its first call, which compiles, and a second one) and
faiss (HNSW at two settings, IVF, and exact flat search). Recall@30 is the
share of the exact neighbours found. Needs the optional ``faiss-cpu`` and
``pynndescent``.

Usage::

    python benchmarks/bench_neighbors.py
    python benchmarks/bench_neighbors.py --data mnist
"""

import argparse
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors

K = 30


def manifold_100(n, seed=0):
    rng = np.random.RandomState(seed)
    u, v = rng.uniform(0, 2 * np.pi, (2, n))
    w = rng.uniform(-1, 1, n)
    base = np.c_[
        np.cos(u), np.sin(u), np.cos(v), np.sin(v), np.cos(u + v), np.sin(2 * u - v), w
    ]
    frame, _ = np.linalg.qr(rng.normal(size=(100, base.shape[1])))
    return base @ frame.T + 0.01 * rng.normal(size=(n, 100))


def load(name):
    if name == "mnist":
        from skvdae.datasets import load_mnist_5k

        return np.asarray(load_mnist_5k(return_labels=False), dtype=np.float32)
    return manifold_100(100_000).astype(np.float32)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main():
    import faiss
    import pynndescent

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["mnist", "manifold100"])
    args = parser.parse_args()
    for name in args.data:
        X = load(name)
        exact, seconds = timed(
            lambda X=X: (
                NearestNeighbors(algorithm="brute")
                .fit(X)
                .kneighbors(X, n_neighbors=K + 1)[1]
            )
        )
        print(f"{name} {X.shape}: exact brute force {seconds:.1f} s", flush=True)

        def recall(found, exact=exact):
            pairs = zip(exact, found, strict=True)
            shares = [len(np.intersect1d(a[1:], b[: K + 1])) / K for a, b in pairs]
            return np.mean(shares)

        for attempt in ("first call", "second call"):
            graph, seconds = timed(
                lambda X=X: pynndescent.NNDescent(
                    X, n_neighbors=K + 1, random_state=0
                ).neighbor_graph[0]
            )
            print(f"  pynndescent ({attempt}): {seconds:.1f} s", end=", ")
            print(f"recall {recall(graph):.4f}", flush=True)
        for links, construction, search in [(32, 40, 64), (32, 80, 128)]:

            def hnsw(X=X, links=links, construction=construction, search=search):
                index = faiss.IndexHNSWFlat(X.shape[1], links)
                index.hnsw.efConstruction = construction
                index.add(X)
                index.hnsw.efSearch = search
                return index.search(X, K + 1)[1]

            found, seconds = timed(hnsw)
            print(
                f"  faiss HNSW M={links} efC={construction} efS={search}: "
                f"{seconds:.1f} s, recall {recall(found):.4f}",
                flush=True,
            )

        def ivf(X=X):
            lists = int(4 * np.sqrt(len(X)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(X.shape[1]), X.shape[1], lists)
            index.train(X)
            index.add(X)
            index.nprobe = 16
            return index.search(X, K + 1)[1]

        found, seconds = timed(ivf)
        print(f"  faiss IVF nprobe=16: {seconds:.1f} s, recall {recall(found):.4f}")

        def flat(X=X):
            index = faiss.IndexFlatL2(X.shape[1])
            index.add(X)
            return index.search(X, K + 1)[1]

        found, seconds = timed(flat)
        print(f"  faiss flat: {seconds:.1f} s, recall {recall(found):.4f}", flush=True)


if __name__ == "__main__":
    main()
