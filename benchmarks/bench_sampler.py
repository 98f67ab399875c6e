"""Benchmark VDAESampler: fit time and random-walk sampling throughput.

On the loop (cos t, sin 2t, sin 3t) with n = 5,000 points and a little noise:

- fit time of ``VDAESampler`` with its default SpectralNet embedder (the
  diffusion map, then the decoder and covariance network), with the share taken
  by the embedder reported separately;
- sampling throughput: 1e5 walkers x 10 steps (``sample(100_000, n_steps=10)``),
  reported as points x steps per second. Sampling runs on the model's float64 CPU
  inference copies;
- quality, for scale: mean distance of the samples to the true loop and the
  mean reconstruction error ``|g(psi(x)) - x|`` on held-out points.

Training never forms an n x n matrix: the only pairwise distances are
batch x batch (``batch_size=512``).

Usage::

    python benchmarks/bench_sampler.py                  # CPU, 1 torch thread
    python benchmarks/bench_sampler.py --threads 2
    python benchmarks/bench_sampler.py --device cuda    # fit on a GPU
"""

import argparse
import platform
import time

import numpy as np
import torch

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import make_loop


def distance_to_loop(Y):
    from sklearn.neighbors import NearestNeighbors

    grid = np.linspace(0.0, 2.0 * np.pi, 100_000, endpoint=False)
    curve = np.c_[np.cos(grid), np.sin(2 * grid), np.sin(3 * grid)]
    distance, _ = NearestNeighbors(n_neighbors=1).fit(curve).kneighbors(Y)
    return distance[:, 0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--walkers", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X, _ = make_loop(args.n_samples, noise=0.01, random_state=0)
    X_test, _ = make_loop(2000, random_state=1)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), device={args.device}, "
        f"cuda available: {torch.cuda.is_available()}"
    )

    start = time.perf_counter()
    DiffusionMapEmbedder(n_components=2, device=args.device, random_state=0).fit(X)
    embed_time = time.perf_counter() - start

    sampler = VDAESampler(covariance_scale=400.0, device=args.device, random_state=0)
    start = time.perf_counter()
    sampler.fit(X)
    fit_time = time.perf_counter() - start

    sampler.sample(1000, n_steps=1, random_state=0)  # warm-up
    start = time.perf_counter()
    samples = sampler.sample(args.walkers, n_steps=args.steps, random_state=0)
    sample_time = time.perf_counter() - start
    throughput = args.walkers * args.steps / sample_time

    reconstruction = sampler.inverse_transform(sampler.transform(X_test))
    error = np.linalg.norm(reconstruction - X_test, axis=1).mean()
    on_loop = distance_to_loop(samples[:20000]).mean()

    rows = [
        (f"fit, n={args.n_samples} (total)", f"{fit_time:8.2f} s", "target < 60 s"),
        ("  of which embedder", f"{embed_time:8.2f} s", ""),
        (
            f"sample {args.walkers} walkers x {args.steps} steps",
            f"{sample_time:8.2f} s",
            "target < 10 s",
        ),
        ("throughput", f"{throughput:10.3e} points x steps / s", ""),
        ("mean distance of samples to loop", f"{on_loop:8.4f}", "diameter ~2.8"),
        ("mean reconstruction error", f"{error:8.4f}", "data scale ~1.25"),
    ]
    width = max(len(row[0]) for row in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<36} {note}")


if __name__ == "__main__":
    main()
