"""Run the generative benchmark: every model on every data set and seed.

One *cell* is one (data set, seed): it draws the split, computes the shared
:class:`~benchmarks.generative.evaluation.Reference`, evaluates the real
training data as the floor, then fits each distinct estimator once and
evaluates each model's samples. A model that fails to fit (a diverging loss,
say) is recorded with its error and the run goes on.
"""

import os
import platform
import time
import traceback
from datetime import datetime, timezone

import numpy as np
import sklearn
import torch
from joblib import Parallel, delayed

import skvdae

from .evaluation import (
    Reference,
    class_consistency,
    evaluate_samples,
    latent_map_quality,
)
from .models import MODELS
from .tasks import TASKS

__all__ = ["run_benchmark", "run_cell"]

REAL = "real"


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def _subsample(X, n, seed):
    if len(X) <= n:
        return X
    rows = np.random.default_rng(seed).choice(len(X), n, replace=False)
    return X[rows]


def _estimator_identity(estimator):
    """Equal for estimators of one class and parameters, which are fitted once
    per cell (GAN and GAN+DRS; the two Gaussian VAEs where D = 2)."""
    params = sorted(estimator.get_params(deep=False).items())
    return type(estimator).__name__, repr(params)


def _record(task, seed, model, **fields):
    return {"dataset": task, "seed": seed, "model": model, **fields}


def _evaluate_model(spec, model, reference, fit_time):
    split = reference.split
    X, sample_time = _timed(
        spec.sample, model, reference.task, split.n_generate, reference.seed
    )
    metrics = evaluate_samples(X, reference)
    Z, X_latent = spec.latent_pairs(model, split.test, reference.seed)
    metrics["bilipschitz"] = latent_map_quality(Z, X_latent)
    if reference.task.kind == "digits":
        metrics["consistency"] = class_consistency(spec, model, reference)
    return {"fit_time": fit_time, "sample_time": sample_time, **metrics}


def run_cell(task_name, seed, profile, model_keys, verbose=True):
    """Evaluate the real data and every model on one data set and seed.

    Parameters
    ----------
    task_name : str
        A key of :data:`~benchmarks.generative.tasks.TASKS`.
    seed : int
    profile : Profile
    model_keys : sequence of str
        Keys of :data:`~benchmarks.generative.models.MODELS`.
    verbose : bool, default=True

    Returns
    -------
    list of dict
        One record per model (and one for the real data), JSON-serialisable.
    """
    torch.set_num_threads(1)
    task = TASKS[task_name]
    split = task.load(profile, seed)
    reference = Reference(task, split, profile, seed)
    real = evaluate_samples(_subsample(split.train, split.n_generate, seed), reference)
    records = [_record(task_name, seed, REAL, **real)]
    if reference.topology is not None:
        records[0]["topology_calibration"] = reference.topology

    fitted = {}
    for key in model_keys:
        spec = MODELS[key]
        try:
            estimator = spec.build(task, profile, seed)
            identity = _estimator_identity(estimator)
            if identity not in fitted:
                fitted[identity] = _timed(estimator.fit, split.train)
            model, fit_time = fitted[identity]
            record = _record(
                task_name,
                seed,
                key,
                **_evaluate_model(spec, model, reference, fit_time),
            )
            if key == "vdae":
                # The VDAE chooses its latent dimension (n_components='auto').
                record["latent_dim"] = int(model.n_components_)
        except Exception as error:  # a failed model is a result, not a crash
            record = _record(
                task_name,
                seed,
                key,
                error=f"{type(error).__name__}: {error}",
                traceback=traceback.format_exc(limit=3),
            )
        records.append(record)
        if verbose:
            print(_progress_line(record), flush=True)
    return records


def _progress_line(record):
    head = f"[{record['dataset']} seed={record['seed']}] {record['model']:8s}"
    if "error" in record:
        return f"{head} FAILED {record['error']}"
    parts = [f"fit {record['fit_time']:.1f}s"]
    if "latent_dim" in record:
        parts.append(f"D={record['latent_dim']}")
    if "distance" in record:
        parts.append(f"dist {record['distance']['mean']:.4f}")
    parts.append(f"prec {record['precision']:.2f} rec {record['recall']:.2f}")
    parts.append(f"mmd {record['mmd']:.2e}")
    if "betti" in record:
        parts.append(f"betti {tuple(record['betti'])}")
    if "grid" in record:
        parts.append(
            f"HQ {record['grid']['high_quality']:.0%} modes {record['grid']['modes']}"
        )
    if "consistency" in record:
        parts.append(f"consistency {record['consistency']['after_5_steps']:.0%}")
    return f"{head} " + ", ".join(parts)


def machine_description():
    """Python, library versions, processor and thread settings of this run."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": _cpu_count(),
        "torch": torch.__version__,
        "torch_threads": 1,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skvdae": skvdae.__version__,
    }


def _cpu_count():
    return (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count()
    )


def run_benchmark(profile, task_names, model_keys, n_jobs=1, verbose=True):
    """Run every (data set, seed) cell and return the raw results.

    Parameters
    ----------
    profile : Profile
    task_names, model_keys : sequence of str
    n_jobs : int, default=1
        Cells run in parallel processes, each with one torch thread.
    verbose : bool, default=True

    Returns
    -------
    dict
        ``{"profile", "machine", "started", "wall_time", "records"}``.
    """
    started = datetime.now(timezone.utc)
    cells = [(name, seed) for name in task_names for seed in profile.seeds]
    start = time.perf_counter()
    if n_jobs == 1:
        results = [
            run_cell(name, seed, profile, model_keys, verbose) for name, seed in cells
        ]
    else:
        results = Parallel(n_jobs=n_jobs)(
            delayed(run_cell)(name, seed, profile, model_keys, verbose)
            for name, seed in cells
        )
    return {
        "profile": vars(profile) | {"seeds": list(profile.seeds)},
        "datasets": list(task_names),
        "models": list(model_keys),
        "machine": machine_description() | {"n_jobs": n_jobs},
        "started": started.isoformat(timespec="seconds"),
        "wall_time": time.perf_counter() - start,
        "records": [record for records in results for record in records],
    }
