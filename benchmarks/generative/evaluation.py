"""Metrics of the generative benchmark, for one model's samples on one split.

:class:`Reference` holds what is computed once per data split and shared by
every model (the MMD bandwidth, the topology threshold calibrated on real data,
the digits classifier), so that all models are measured with the same ruler.
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.svm import SVC

from skvdae.datasets import gaussian_grid_centres, grid_nearest_centre
from skvdae.metrics import (
    bilipschitz_constants,
    bilipschitz_summary,
    maximum_mean_discrepancy,
    median_heuristic_bandwidth,
    precision_recall_density_coverage,
)

from .tasks import GRID_SIGMA, video_nearest_frame
from .topology import betti_numbers, calibrate_threshold, persistence_intervals

__all__ = [
    "Reference",
    "class_consistency",
    "evaluate_samples",
    "grid_quality",
    "latent_map_quality",
]

#: A grid sample is of high quality within this many sigmas of its centre.
HIGH_QUALITY_SIGMAS = 4.0
#: A grid mode counts as reached when it holds this fraction of its fair share
#: (``n_samples / 25``) of high-quality samples.
MODE_SHARE = 0.1
N_ANGLE_BINS = 36
WALK_STEPS = 5


class Reference:
    """Per-split quantities shared by every model.

    Parameters
    ----------
    task : Task
    split : Split
    profile : Profile
    seed : int
    """

    def __init__(self, task, split, profile, seed):
        self.task = task
        self.split = split
        self.profile = profile
        self.seed = seed
        self.mmd_bandwidth = median_heuristic_bandwidth(
            split.train, split.test, random_state=seed
        )
        self.topology = None
        if task.true_betti is not None:
            self.topology = self._calibrate_topology()
        self.classifier = None
        if task.kind == "digits":
            self.classifier = SVC(gamma="scale").fit(split.train, split.train_labels)
            self.nn_distance = _mean_nearest_neighbour_distance(split.train)

    def _topology_sample(self, X):
        return persistence_intervals(
            X,
            max_dimension=len(self.task.true_betti) - 1,
            max_points=self.profile.n_topology,
            random_state=self.seed,
        )

    def _calibrate_topology(self):
        calibration = calibrate_threshold(
            self._topology_sample(self.split.test), self.task.true_betti
        )
        return {
            "threshold": float(calibration.threshold),
            "separation": _finite_float(calibration.separation),
        }

    def betti(self, X):
        """Betti numbers of ``X`` at the threshold calibrated on real data."""
        intervals = self._topology_sample(X)
        return [int(b) for b in betti_numbers(intervals, self.topology["threshold"])]


def _mean_nearest_neighbour_distance(X):
    distance, _ = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)
    return float(distance[:, 1].mean())


def _finite_float(value):
    value = float(value)
    return value if np.isfinite(value) else None


def distance_to_manifold(task, X, profile):
    """Mean, median and 95th percentile of the samples' distance to the truth."""
    distance = task.distance(X, profile)
    return {
        "mean": float(distance.mean()),
        "median": float(np.median(distance)),
        "p95": float(np.quantile(distance, 0.95)),
    }


def latent_map_quality(Z, X):
    """Bi-Lipschitz constants of the latent -> data map at pairs ``(Z, X)``.

    Returns the median, the 99th percentile and the maximum; infinite values
    (a collapse or a tear) are reported as ``None`` in these statistics and
    counted in ``n_infinite``.
    """
    summary = bilipschitz_summary(bilipschitz_constants(Z, X), quantile=0.99)
    return {
        "median": _finite_float(summary["median"]),
        "p99": _finite_float(summary["quantile"]),
        "max": _finite_float(summary["max"]),
        "n_infinite": int(summary["n_infinite"]),
    }


def grid_quality(X, n_centres=25):
    """Share of high-quality samples, modes reached and spread around centres.

    A sample is of high quality within ``HIGH_QUALITY_SIGMAS`` standard
    deviations of its nearest centre (the protocol of the discriminator
    rejection sampling paper); a mode is reached when it holds at least
    ``MODE_SHARE`` of its fair share of high-quality samples; the spread is the
    standard deviation of the high-quality samples around their centre, per
    coordinate, averaged over the reached modes (the truth is ``GRID_SIGMA``).
    """
    distance, index = grid_nearest_centre(X)
    high = distance <= HIGH_QUALITY_SIGMAS * GRID_SIGMA
    counts = np.bincount(index[high], minlength=n_centres)
    reached = counts >= max(1.0, MODE_SHARE * len(X) / n_centres)
    offsets = X[high] - gaussian_grid_centres()[index[high]]
    spreads = [
        float(np.sqrt(np.mean(offsets[index[high] == mode] ** 2)))
        for mode in np.flatnonzero(reached)
    ]
    return {
        "high_quality": float(high.mean()),
        "modes": int(reached.sum()),
        "high_quality_std": float(np.mean(spreads)) if spreads else None,
    }


def angle_coverage(X, profile):
    """Fraction of ``N_ANGLE_BINS`` rotation-angle bins hit by video samples."""
    _, angles = video_nearest_frame(X, profile)
    bins = np.floor(angles / (2.0 * np.pi) * N_ANGLE_BINS).astype(int) % N_ANGLE_BINS
    return float(np.unique(bins).size / N_ANGLE_BINS)


def class_consistency(model_spec, model, reference):
    """Class consistency of random walks on the digits.

    ``n_walkers`` walks of ``WALK_STEPS`` steps start from held-out digits (a
    prior draw for the GANs); the classifier trained on the real training
    digits labels every step. Returns, per step, the fraction of walkers
    labelled like their starting point, and the mean distance of the last step
    from the start in units of the real data's mean nearest-neighbour distance
    (a walk that does not move is trivially consistent).
    """
    split, profile = reference.split, reference.profile
    rng = np.random.default_rng(reference.seed)
    rows = rng.choice(len(split.test), profile.n_walkers, replace=False)
    _, path = model_spec.walk(model, split.test[rows], WALK_STEPS, reference.seed)
    labels = np.stack([reference.classifier.predict(step) for step in path])
    consistency = (labels[1:] == labels[0]).mean(axis=1)
    displacement = np.linalg.norm(path[-1] - path[0], axis=1).mean()
    return {
        "per_step": [float(c) for c in consistency],
        "after_5_steps": float(consistency[-1]),
        "displacement": float(displacement / reference.nn_distance),
    }


def evaluate_samples(X, reference):
    """Every sample-based metric of ``X`` against the held-out set.

    Parameters
    ----------
    X : ndarray of shape (n_generate, n_features)
        Generated (or real) samples.
    reference : Reference

    Returns
    -------
    dict
    """
    task, split, profile = reference.task, reference.split, reference.profile
    result = {}
    if not np.all(np.isfinite(X)):
        result["n_non_finite"] = int((~np.isfinite(X)).any(axis=1).sum())
        X = X[np.isfinite(X).all(axis=1)]
    if task.distance is not None:
        result["distance"] = distance_to_manifold(task, X, profile)
    result.update(precision_recall_density_coverage(split.test, X, n_neighbors=5))
    result["mmd"] = float(
        maximum_mean_discrepancy(
            X,
            split.test,
            bandwidth=reference.mmd_bandwidth,
            random_state=reference.seed,
        )
    )
    if reference.topology is not None:
        result["betti"] = reference.betti(X)
        result["betti_correct"] = result["betti"] == list(task.true_betti)
    if task.kind == "grid":
        result["grid"] = grid_quality(X)
    if task.kind == "video":
        result["angle_coverage"] = angle_coverage(X, profile)
    return result
