"""Data-parallel DiffusionMapEmbedder on 1 and 2 processes: time, memory, accuracy.

The loop (cos t, sin 2t, sin 3t) with Gaussian noise 0.01, n points, written
once to a ``.npy`` file that every process opens memory-mapped;
``DiffusionMapEmbedder(n_components=2, random_state=0)`` at its defaults
otherwise (SpectralNet, the bounded 'auto' bandwidth). Each run starts its
processes fresh (``torch.multiprocessing.spawn``, gloo, a file rendezvous), so
that each process's peak resident memory is its own. The cores are shared
fairly: the single process gets all of them as torch threads, each of P
processes a P-th. Accuracy: the squared chordal distance between the span of
the two coordinates and (cos, sin) of the arc length on 20,000 of the
training points, as in ``bench_scale.py``; and the same distance between the
coordinates of the P-process and the 1-process fits.

Usage::

    python benchmarks/bench_distributed.py                      # n = 1e6, P = 1, 2
    python benchmarks/bench_distributed.py --n 100000 --processes 1 2
    python benchmarks/bench_distributed.py --device cuda --processes 1
"""

import argparse
import json
import os
import resource
import tempfile
import time

import numpy as np
import torch
from bench_scale import loop_modes, noisy_loop, squared_chordal

_CHECK_ROWS = 20_000


def _worker(rank, world_size, folder, device, threads):
    torch.set_num_threads(threads)
    if world_size > 1:
        torch.distributed.init_process_group(
            "gloo",
            init_method=f"file://{os.path.join(folder, f'rendezvous{world_size}')}",
            rank=rank,
            world_size=world_size,
        )
    from skvdae import DiffusionMapEmbedder

    X = np.load(os.path.join(folder, "data.npy"), mmap_mode="r")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    embedder = DiffusionMapEmbedder(n_components=2, device=device, random_state=0).fit(
        X
    )
    fit_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "rank": rank,
        "fit_s": fit_s,
        "peak_gb": peak / 2**20,
        "fit_increase_gb": (peak - baseline) / 2**20,
        "world_size": embedder.world_size_,
        "edges_per_sample": embedder.edges_per_sample_,
        "eigenvalues": embedder.eigenvalues_.tolist(),
    }
    if rank == 0:
        np.save(
            os.path.join(folder, f"codes{world_size}.npy"),
            embedder.transform(np.asarray(X[:_CHECK_ROWS])),
        )
    with open(os.path.join(folder, f"result{world_size}_{rank}.json"), "w") as f:
        json.dump(result, f)
    if world_size > 1:
        torch.distributed.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench_distributed_")
    X, t = noisy_loop(args.n)
    np.save(os.path.join(folder, "data.npy"), X)
    modes = loop_modes(t[:_CHECK_ROWS])
    reference = None
    print(f"n = {args.n}, {args.cores} cores, device {args.device}", flush=True)
    for world_size in args.processes:
        threads = max(1, args.cores // world_size)
        start = time.perf_counter()
        torch.multiprocessing.spawn(
            _worker,
            args=(world_size, folder, args.device, threads),
            nprocs=world_size,
        )
        wall = time.perf_counter() - start
        results = []
        for rank in range(world_size):
            with open(os.path.join(folder, f"result{world_size}_{rank}.json")) as f:
                results.append(json.load(f))
        codes = np.load(os.path.join(folder, f"codes{world_size}.npy"))
        reference = codes if reference is None else reference
        print(
            f"P={world_size} ({threads} thread(s) each)  fit "
            f"{max(r['fit_s'] for r in results):6.1f} s (wall with start-up "
            f"{wall:6.1f} s)  peak per process "
            + ", ".join(f"{r['peak_gb']:.2f}" for r in results)
            + " GiB (fit +"
            + ", ".join(f"{r['fit_increase_gb']:.2f}" for r in results)
            + f")  {results[0]['edges_per_sample']:.0f} edges/sample  1 - lambda "
            + ", ".join(f"{1 - v:.3e}" for v in results[0]["eigenvalues"])
            + f"  chordal to truth {squared_chordal(codes, modes):.4f}, to the "
            f"first run {squared_chordal(codes, reference):.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
