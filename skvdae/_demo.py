"""The README's main job: embed a built-in manifold and draw it."""

import os

import numpy as np

from ._embedder import DiffusionMapEmbedder
from .datasets import make_loop


def run_demo(out_dir, n_samples=2000, random_state=0):
    """Fit a SpectralNet diffusion map on the loop and write its coordinates and a PNG.

    Parameters
    ----------
    out_dir : str
        Folder for the outputs (created if missing).
    n_samples : int, default=2000
    random_state : int, default=0

    Returns
    -------
    paths : list of str
        The files written.
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
    embedder = DiffusionMapEmbedder(
        n_components=2, random_state=random_state, verbose=1
    )
    Z = embedder.fit_transform(X)

    coordinates_path = os.path.join(out_dir, "loop_diffusion_coordinates.npy")
    np.save(coordinates_path, Z)

    figure = plt.figure(figsize=(10, 4.5))
    data_axes = figure.add_subplot(1, 2, 1, projection="3d")
    data_axes.scatter(*X.T, c=t, cmap="twilight", s=3)
    data_axes.set_title("data: the loop (cos t, sin 2t, sin 3t)")
    latent_axes = figure.add_subplot(1, 2, 2)
    latent_axes.scatter(*Z.T, c=t, cmap="twilight", s=3)
    latent_axes.set_aspect("equal")
    latent_axes.set_title(
        "SpectralNet diffusion coordinates\n"
        f"eigenvalues {np.array2string(embedder.eigenvalues_, precision=5)}"
    )
    latent_axes.set_xlabel("psi_1")
    latent_axes.set_ylabel("psi_2")
    figure.tight_layout()
    figure_path = os.path.join(out_dir, "loop_diffusion_map.png")
    figure.savefig(figure_path, dpi=120)
    plt.close(figure)
    return [coordinates_path, figure_path]
