"""The data sets of the generative benchmark and the run sizes (profiles).

A :class:`Task` bundles what the harness needs to know about one data set:
how to draw a training set and a held-out set for a seed, the distance of
points to the true manifold, the true Betti numbers, and the VDAE settings used
on it. Nothing here downloads: the synthetic sets are generated, the bunny is
read from the ``pymeshfix`` wheel and the digits ship with scikit-learn.
"""

from dataclasses import dataclass, replace

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.datasets import (
    bunny_distance,
    grid_nearest_centre,
    load_bunny,
    load_digit_images,
    load_mnist_5k,
    loop_distance,
    make_gaussian_grid,
    make_loop,
    make_rotating_bunny,
    make_sphere,
    make_torus,
    sphere_distance,
    torus_distance,
)
from skvdae.nn import ConvDecoder, ConvEncoder

__all__ = ["PROFILES", "TASKS", "Profile", "Split", "Task", "build_vdae", "get_profile"]

GRID_SIGMA = 0.05


@dataclass(frozen=True)
class Profile:
    """How large a run is.

    Attributes
    ----------
    name : str
    seeds : tuple of int
        One run per seed: the seed draws the data split and seeds every model.
    n_train, n_test, n_generate : int
        Training points, held-out points, generated points (for the 3-D sets
        and the grid; the video and digits have their own sizes, below).
    baseline_iter : int
        Adam steps of the VAEs and generator steps of the GAN.
    wgan_iter : int
        Generator steps of WGAN-GP (each with ``n_critic = 5`` critic steps).
    video_baseline_iter, video_wgan_iter, digits_baseline_iter, \
mnist_baseline_iter, mnist_wgan_iter : int
        Steps of the baselines (generator steps for the GANs) on the video,
        the digits and MNIST (WGAN-GP apart where its own is given: each of
        its steps costs about five GAN steps).
    n_mnist : int or None
        MNIST images used (a stratified subset; None for all 5000), 70% for
        training.
    vdae_iter_scale : float
        Multiplies each task's ``max_iter`` of the VDAE's decoder and
        covariance training.
    n_topology : int
        Points (real and generated alike) fed to the persistence computation.
    video_shape : tuple of int
        ``(n_frames, height, width)`` of the training video.
    n_reference_frames : int
        Frames of the dense rendering that the video's distance is measured to.
    n_walkers : int
        Random walks started for the digits' class consistency.
    """

    name: str
    seeds: tuple
    n_train: int
    n_test: int
    n_generate: int
    baseline_iter: int
    wgan_iter: int
    video_baseline_iter: int
    video_wgan_iter: int
    digits_baseline_iter: int
    mnist_baseline_iter: int
    mnist_wgan_iter: int
    n_mnist: object
    vdae_iter_scale: float
    n_topology: int
    video_shape: tuple
    n_reference_frames: int
    n_walkers: int


PROFILES = {
    "full": Profile(
        name="full",
        seeds=(0, 1, 2),
        n_train=3000,
        n_test=2000,
        n_generate=2000,
        baseline_iter=5000,
        wgan_iter=2500,
        video_baseline_iter=400,
        video_wgan_iter=200,
        digits_baseline_iter=3000,
        mnist_baseline_iter=1000,
        mnist_wgan_iter=200,
        n_mnist=None,
        vdae_iter_scale=1.0,
        n_topology=1000,
        video_shape=(200, 80, 100),
        n_reference_frames=720,
        n_walkers=300,
    ),
    "quick": Profile(
        name="quick",
        seeds=(0,),
        n_train=1000,
        n_test=1000,
        n_generate=1000,
        baseline_iter=800,
        wgan_iter=300,
        video_baseline_iter=100,
        video_wgan_iter=50,
        digits_baseline_iter=500,
        mnist_baseline_iter=200,
        mnist_wgan_iter=50,
        n_mnist=None,
        vdae_iter_scale=0.5,
        n_topology=500,
        video_shape=(200, 40, 50),
        n_reference_frames=360,
        n_walkers=200,
    ),
    "tiny": Profile(
        name="tiny",
        seeds=(0,),
        n_train=200,
        n_test=150,
        n_generate=150,
        baseline_iter=15,
        wgan_iter=5,
        video_baseline_iter=10,
        video_wgan_iter=5,
        digits_baseline_iter=10,
        mnist_baseline_iter=10,
        mnist_wgan_iter=5,
        n_mnist=600,
        vdae_iter_scale=0.02,
        n_topology=120,
        video_shape=(60, 16, 20),
        n_reference_frames=120,
        n_walkers=30,
    ),
}


def get_profile(name, **overrides):
    """A profile by name, with fields replaced by ``overrides``."""
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}; choose from {sorted(PROFILES)}.")
    return replace(PROFILES[name], **overrides)


@dataclass
class Split:
    """One seed's data.

    Attributes
    ----------
    train, test : ndarray
        Training set and held-out set.
    n_generate : int
        How many points each model generates.
    test_labels, train_labels : ndarray or None
        Class labels (digits) or component labels (grid).
    """

    train: np.ndarray
    test: np.ndarray
    n_generate: int
    train_labels: np.ndarray = None
    test_labels: np.ndarray = None


@dataclass(frozen=True)
class Task:
    """One data set of the benchmark.

    Attributes
    ----------
    name, title : str
    load : callable
        ``load(profile, seed) -> Split``.
    distance : callable or None
        ``distance(X, profile) -> ndarray``: each point's distance to the true
        manifold (None for the digits, which have no known manifold).
    distance_note : str
        What the distance is, for the report.
    true_betti : tuple of int or None
    intrinsic_dim : int
        Dimension of the data manifold; the hyperspherical VAE gets the sphere
        ``S^intrinsic_dim``.
    vdae : dict
        Settings in which the VDAE departs from its defaults, read by
        :func:`build_vdae` (``covariance_scale``, ``noise_variance``,
        ``decoder_variance``, ``max_iter`` and parameters of its
        :class:`~skvdae.DiffusionMapEmbedder`); empty on most sets. Each is
        explained in ``doc/benchmarks/generative.rst``.
    n_steps : int
        Random-walk steps per VDAE sample.
    n_components : int
        Latent dimension D of the second Gaussian VAE and the GANs: the one
        the VDAE's ``n_components='auto'`` chooses on the set (seed 0).
    kind : {'manifold', 'grid', 'video', 'digits'}
        Which extra metrics apply.
    baseline_params : dict, callable or None
        Keyword arguments of every baseline that set its networks and batch
        (``hidden_layer_sizes`` and ``activation``, or ``encoder`` and
        ``decoder`` factories with their parameters, and ``batch_size``); a
        callable takes the profile and returns them. None means
        :data:`PAPER_NET`.
    gan_latent_dim : int or None
        Latent dimension of the GANs; None means ``n_components``.
    """

    name: str
    title: str
    load: object
    distance: object
    distance_note: str
    true_betti: tuple
    intrinsic_dim: int
    vdae: object
    n_steps: int
    n_components: int
    kind: str = "manifold"
    baseline_params: object = None
    gan_latent_dim: int = None


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def _seeds(seed, n):
    return np.random.SeedSequence([seed, 5]).generate_state(n)


def _load_generated(make):
    def load(profile, seed):
        train_seed, test_seed = _seeds(seed, 2)
        return Split(
            train=make(profile.n_train, int(train_seed)),
            test=make(profile.n_test, int(test_seed)),
            n_generate=profile.n_generate,
        )

    return load


def _make_loop(n, seed):
    return make_loop(n, random_state=seed)[0]


def _make_sphere(n, seed):
    return make_sphere(n, random_state=seed)[0]


def _make_torus(n, seed):
    return make_torus(n, random_state=seed)[0]


def _load_bunny(profile, seed):
    (split_seed,) = _seeds(seed, 1)
    X = load_bunny(
        profile.n_train + profile.n_test, normalize=True, random_state=int(split_seed)
    )
    return Split(
        train=X[: profile.n_train],
        test=X[profile.n_train :],
        n_generate=profile.n_generate,
    )


def _load_grid(profile, seed):
    train_seed, test_seed = _seeds(seed, 2)
    train, train_labels = make_gaussian_grid(
        profile.n_train, sigma=GRID_SIGMA, random_state=int(train_seed)
    )
    test, test_labels = make_gaussian_grid(
        profile.n_test, sigma=GRID_SIGMA, random_state=int(test_seed)
    )
    return Split(train, test, profile.n_generate, train_labels, test_labels)


def _render_video(profile, angles=None):
    n_frames, height, width = profile.video_shape
    frames, _ = make_rotating_bunny(n_frames, height=height, width=width, angles=angles)
    return frames.astype(np.float64)


def _load_video(profile, seed):
    """Train on the evenly spaced frames; hold out one random angle per interval.

    The held-out angles are jittered (one uniform draw between each pair of
    consecutive training angles) rather than uniform on the circle, so that the
    held-out video has no large gaps: its persistence diagram calibrates the
    topology threshold (see ``evaluation.Reference``).
    """
    (angle_seed,) = _seeds(seed, 1)
    n_frames = profile.video_shape[0]
    jitter = np.random.default_rng(angle_seed).uniform(0.0, 1.0, n_frames)
    angles = (np.arange(n_frames) + jitter) * (2.0 * np.pi / n_frames)
    return Split(
        train=_render_video(profile),
        test=_render_video(profile, angles),
        n_generate=n_frames,
    )


def _load_labelled(load, size=None):
    """A stratified 70% / 30% split of labelled images ``load() -> (X, y)``,
    of the profile's attribute ``size`` images if given (all if it is None)."""

    def split(profile, seed):
        (split_seed,) = _seeds(seed, 1)
        X, y = load()
        n = getattr(profile, size) if size else None
        X_train, X_test, y_train, y_test = train_test_split(
            X.astype(np.float64),
            y,
            train_size=None if n is None else round(0.7 * n),
            test_size=0.3 if n is None else n - round(0.7 * n),
            stratify=y,
            random_state=int(split_seed % (2**32 - 1)),
        )
        return Split(X_train, X_test, len(X_test), y_train, y_test)

    return split


# --------------------------------------------------------------------------
# Distances to the manifold
# --------------------------------------------------------------------------


def _video_reference(profile):
    n = profile.n_reference_frames
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return _render_video(profile, angles), angles


_VIDEO_REFERENCES = {}


def video_nearest_frame(X, profile):
    """Distance to, and angle of, the nearest frame of a dense rendering."""
    key = (profile.video_shape, profile.n_reference_frames)
    if key not in _VIDEO_REFERENCES:
        frames, angles = _video_reference(profile)
        _VIDEO_REFERENCES[key] = (NearestNeighbors(n_neighbors=1).fit(frames), angles)
    tree, angles = _VIDEO_REFERENCES[key]
    distance, index = tree.kneighbors(np.asarray(X, dtype=np.float64))
    return distance[:, 0], angles[index[:, 0]]


def _loop_distance(X, profile):
    return loop_distance(X)


def _sphere_distance(X, profile):
    return sphere_distance(X)


def _torus_distance(X, profile):
    return torus_distance(X)


def _bunny_distance(X, profile):
    return bunny_distance(X, normalize=True)


def _grid_distance(X, profile):
    return grid_nearest_centre(X)[0]


def _video_distance(X, profile):
    return video_nearest_frame(X, profile)[0]


# --------------------------------------------------------------------------
# VDAE settings
# --------------------------------------------------------------------------


def build_vdae(task, profile, seed):
    """The task's unfitted VDAE: :class:`~skvdae.VDAESampler` at its defaults
    (a SpectralNet diffusion map with ``n_components='auto'``,
    ``covariance_scale='auto'``), but for the settings of ``task.vdae`` (each
    documented with its reason in the benchmark's page). The training steps of
    both networks are scaled by the profile's ``vdae_iter_scale``."""
    settings = dict(task.vdae)
    sampler_params = {
        key: settings.pop(key)
        for key in ("covariance_scale", "noise_variance", "decoder_variance")
        if key in settings
    }
    scale = profile.vdae_iter_scale
    max_iter = settings.pop("max_iter", VDAESampler().max_iter)
    embedder = DiffusionMapEmbedder(
        max_iter=max(1, round(DiffusionMapEmbedder().max_iter * scale)),
        device="cpu",
        random_state=seed,
        **settings,
    )
    return VDAESampler(
        embedder,
        max_iter=max(1, round(max_iter * scale)),
        device="cpu",
        random_state=seed,
        **sampler_params,
    )


#: Networks of the baselines: one hidden layer of 512 tanh units (the VDAE
#: paper's budget on the synthetic sets) except on the grid, where that network
#: reaches only a few percent of high-quality samples and the baselines get
#: three hidden layers of 256 ReLU units, like the discriminator rejection
#: sampling paper's grid experiment (and the GANs a 2-D latent space: with D =
#: 24 the GAN reached 4-8% high-quality samples).
PAPER_NET = {"hidden_layer_sizes": (512,), "activation": "tanh"}
DRS_GRID_NET = {"hidden_layer_sizes": (256, 256, 256), "activation": "relu"}


def _image_networks(image_shape, channels_last=False, batch_size=128):
    """The baselines' networks on images: :class:`~skvdae.nn.ConvEncoder`
    reads them (the VAEs' encoders, the GANs' critics) and
    :class:`~skvdae.nn.ConvDecoder` writes them, at the modules' defaults."""
    shape = {"image_shape": tuple(image_shape), "channels_last": channels_last}
    return {
        "encoder": ConvEncoder,
        "encoder_params": shape,
        "decoder": ConvDecoder,
        "decoder_params": dict(shape),
        "batch_size": batch_size,
    }


def _video_networks(profile):
    # Batches of 64 of the 200 frames: at 100 x 80 a step costs half as much
    # as one of 128, which keeps the video's cells within the run's budget.
    _, height, width = profile.video_shape
    return _image_networks((height, width, 3), channels_last=True, batch_size=64)


def _mnist_networks(profile):
    return _image_networks((1, 28, 28))


TASKS = {
    "loop": Task(
        name="loop",
        title="Loop (cos t, sin 2t, sin 3t)",
        load=_load_generated(_make_loop),
        distance=_loop_distance,
        distance_note="to the curve",
        true_betti=(1, 1),
        intrinsic_dim=1,
        vdae={},
        n_steps=20,
        n_components=2,
    ),
    "sphere": Task(
        name="sphere",
        title="Unit sphere S^2",
        load=_load_generated(_make_sphere),
        distance=_sphere_distance,
        distance_note="to the sphere",
        true_betti=(1, 0, 1),
        intrinsic_dim=2,
        vdae={},
        n_steps=20,
        n_components=3,
    ),
    "torus": Task(
        name="torus",
        title="Torus (R = 2, r = 1)",
        load=_load_generated(_make_torus),
        distance=_torus_distance,
        distance_note="to the torus",
        true_betti=(1, 2, 1),
        intrinsic_dim=2,
        vdae={},
        n_steps=20,
        n_components=6,
    ),
    "bunny": Task(
        name="bunny",
        title="Stanford bunny (normalised)",
        load=_load_bunny,
        distance=_bunny_distance,
        distance_note="to the nearest mesh vertex",
        true_betti=(1, 0, 1),
        intrinsic_dim=2,
        vdae={"solver": "exact"},
        n_steps=20,
        n_components=5,
    ),
    "grid": Task(
        name="grid",
        title="5x5 Gaussian grid",
        load=_load_grid,
        distance=_grid_distance,
        distance_note="to the nearest centre",
        true_betti=(25, 0),
        intrinsic_dim=1,
        vdae={},
        n_steps=20,
        n_components=24,
        kind="grid",
        baseline_params=DRS_GRID_NET,
        gan_latent_dim=2,
    ),
    "video": Task(
        name="video",
        title="Rotating bunny video",
        load=_load_video,
        distance=_video_distance,
        distance_note="to the nearest frame of a dense rendering",
        true_betti=(1, 1),
        intrinsic_dim=1,
        vdae={"solver": "exact"},
        n_steps=10,
        n_components=2,
        kind="video",
        baseline_params=_video_networks,
    ),
    "digits": Task(
        name="digits",
        title="Digits (8x8)",
        load=_load_labelled(load_digit_images),
        distance=None,
        distance_note="",
        true_betti=None,
        intrinsic_dim=7,
        vdae={"solver": "exact", "covariance_scale": 0.3},
        n_steps=5,
        n_components=10,
        kind="digits",
    ),
    "mnist": Task(
        name="mnist",
        title="MNIST (28x28, 5000 digits)",
        load=_load_labelled(load_mnist_5k, "n_mnist"),
        distance=None,
        distance_note="",
        true_betti=None,
        intrinsic_dim=11,
        vdae={},
        n_steps=5,
        n_components=20,
        kind="digits",
        baseline_params=_mnist_networks,
    ),
}
