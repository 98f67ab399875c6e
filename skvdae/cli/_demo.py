"""The README's main job: learn a built-in manifold and walk on it."""

import os

import numpy as np

from .._sampler import VDAESampler
from ..datasets import make_loop


def run_demo(
    out_dir, n_samples=2000, random_state=0, n_walkers=300, n_steps=30, max_iter=1500
):
    """Fit a VDAESampler on the loop, walk from one seed, write arrays and a PNG.

    The sampler uses its default SpectralNet diffusion map. ``n_walkers``
    independent walks of ``n_steps`` steps all start from one training point
    (the seed); the whole path is saved, and its last step is the sample.

    Parameters
    ----------
    out_dir : str
        Folder for the outputs (created if missing).
    n_samples : int, default=2000
        Training points on the loop.
    random_state : int, default=0
        Seeds the data, the fit and the walk.
    n_walkers : int, default=300
    n_steps : int, default=30
    max_iter : int, default=1500
        Training steps of the decoder and covariance network.

    Returns
    -------
    paths : list of str
        The files written: diffusion coordinates of the data (``.npy``), the
        walk's samples (``.npy``, the last step), the whole walk (``.npy``, shape
        ``(n_steps + 1, n_walkers, 3)``) and the figure (``.png``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The demo draws with matplotlib: pip install 'skvdae[demo]'."
        ) from error

    os.makedirs(out_dir, exist_ok=True)
    X, t = make_loop(n_samples, noise=0.01, random_state=random_state)
    sampler = VDAESampler(
        max_iter=max_iter,
        random_state=random_state,
        verbose=1,
    )
    Z = sampler.fit_transform(X)
    seed = X[:1]
    path = sampler.random_walk(
        np.repeat(seed, n_walkers, axis=0), n_steps, random_state=random_state
    )
    samples = path[-1]

    coordinates_path = os.path.join(out_dir, "loop_diffusion_coordinates.npy")
    np.save(coordinates_path, Z)
    samples_path = os.path.join(out_dir, "loop_vdae_samples.npy")
    np.save(samples_path, samples)
    walk_path = os.path.join(out_dir, "loop_vdae_walk.npy")
    np.save(walk_path, path)

    figure = plt.figure(figsize=(15, 4.8))
    data_axes = figure.add_subplot(1, 3, 1, projection="3d")
    data_axes.scatter(*X.T, c=t, cmap="twilight", s=3)
    data_axes.set_title("data: the loop (cos t, sin 2t, sin 3t)")
    latent_axes = figure.add_subplot(1, 3, 2)
    latent_axes.scatter(*Z.T, c=t, cmap="twilight", s=3)
    latent_axes.set_aspect("equal")
    latent_axes.set_title(
        "diffusion coordinates (SpectralNet)\n"
        f"eigenvalues {np.array2string(sampler.embedder_.eigenvalues_, precision=5)}"
    )
    walk_axes = figure.add_subplot(1, 3, 3, projection="3d")
    walk_axes.scatter(*X.T, c="lightgrey", s=1, alpha=0.4)
    steps = np.repeat(np.arange(n_steps + 1), n_walkers)
    points = walk_axes.scatter(
        *path.reshape(-1, X.shape[1]).T, c=steps, cmap="viridis", s=2
    )
    walk_axes.scatter(
        *seed.T,
        c="red",
        s=250,
        marker="*",
        edgecolors="black",
        depthshade=False,
        zorder=10,
        label="seed",
    )
    walk_axes.legend(loc="upper left")
    figure.colorbar(points, ax=walk_axes, shrink=0.6, label="step")
    walk_axes.set_title(
        f"VDAE random walk: {n_walkers} walkers x {n_steps} steps from one seed"
    )
    figure.tight_layout()
    figure_path = os.path.join(out_dir, "loop_vdae_walk.png")
    figure.savefig(figure_path, dpi=120)
    plt.close(figure)
    return [coordinates_path, samples_path, walk_path, figure_path]
