"""The command line, end to end on tiny data, and its exit codes."""

import json
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

from skvdae import VDAESampler, load_model
from skvdae.cli import (
    EXIT_BAD_DATA,
    EXIT_BAD_MODEL,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_MISSING_DEPENDENCY,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    main,
    read_data,
)

FAST = ["--solver", "exact", "--max-iter", "20", "--random-state", "0", "--quiet"]


def _loop(n=120):
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[np.cos(theta), np.sin(2 * theta), 0.5 * np.sin(3 * theta)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    X = _loop()
    np.save(folder / "data.npy", X)
    with open(folder / "data.csv", "w") as file:
        file.write("x,y,z\n")
        for row in X:
            file.write(",".join(repr(float(v)) for v in row) + "\n")
    model = folder / "model.skvdae"
    assert main(["fit", str(folder / "data.csv"), "--out", str(model), *FAST]) == 0
    return folder


def test_read_csv_header_and_separators(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a;b\n1;2\n3;4.5\n\n")
    np.testing.assert_array_equal(read_data(str(path)), [[1, 2], [3, 4.5]])
    path.write_text("1 2\n3 4\n")
    np.testing.assert_array_equal(read_data(str(path)), [[1, 2], [3, 4]])
    path.write_text("1,2\n3,4\n")
    np.testing.assert_array_equal(read_data(str(path)), [[1, 2], [3, 4]])


def test_end_to_end(workspace, capsys):
    model_path = str(workspace / "model.skvdae")
    model = load_model(model_path)
    assert isinstance(model, VDAESampler)
    assert model.verbose == 0 and model.embedder_.verbose == 0
    assert model.n_iter_ == 20 and model.embedder_.solver == "exact"
    X = np.load(workspace / "data.npy")

    samples = str(workspace / "samples.npy")
    argv = ["sample", model_path, "--n", "7", "--steps", "3", "--out", samples]
    assert main([*argv, "--random-state", "2", "-q"]) == EXIT_OK
    drawn = np.load(samples)
    assert drawn.shape == (7, 3)
    np.testing.assert_allclose(drawn, model.sample(7, n_steps=3, random_state=2))

    seeds = str(workspace / "seeds.csv")
    np.savetxt(seeds, X[:2], delimiter=",")
    samples_csv = str(workspace / "samples.csv")
    argv = ["sample", model_path, "--n", "4", "--seeds", seeds, "--out", samples_csv]
    assert main(argv) == EXIT_OK
    assert np.loadtxt(samples_csv, delimiter=",").shape == (4, 3)

    embedding = str(workspace / "z.csv")
    data = str(workspace / "data.npy")
    assert main(["embed", model_path, data, "--out", embedding]) == EXIT_OK
    Z = np.loadtxt(embedding, delimiter=",")
    np.testing.assert_allclose(Z, model.transform(X), rtol=0, atol=1e-12)

    capsys.readouterr()
    assert main(["score", model_path, data]) == EXIT_OK
    printed = float(capsys.readouterr().out.strip())
    assert printed == pytest.approx(model.score(X), rel=1e-9)

    pytest.importorskip("matplotlib")
    figure = str(workspace / "plot.png")
    assert main(["plot", data, "--samples", samples, "--out", figure, "-q"]) == 0
    assert os.path.getsize(figure) > 1000
    with open(figure, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_fit_embedder_and_options(workspace):
    out = str(workspace / "embedder.skvdae")
    argv = [
        "fit",
        str(workspace / "data.npy"),
        "--out",
        out,
        "--model",
        "embedder",
        "--n-components",
        "3",
        "--bandwidth-neighbors",
        "8",
        "--max-iter",
        "15",
        "--hidden-layer-sizes",
        "16,16",
        "--device",
        "cpu",
        "--random-state",
        "0",
        "-q",
    ]
    assert main(argv) == EXIT_OK
    embedder = load_model(out)
    assert type(embedder).__name__ == "DiffusionMapEmbedder"
    assert embedder.n_components == 3 and embedder.bandwidth_neighbors == 8
    assert embedder.hidden_layer_sizes == (16, 16) and embedder.n_iter_ == 15
    z = str(workspace / "z_embedder.npy")
    data = str(workspace / "data.npy")
    assert main(["embed", out, data, "--out", z]) == EXIT_OK
    assert np.load(z).shape == (120, 3)
    # score and sample need a sampler
    assert main(["score", out, data]) == EXIT_BAD_MODEL
    assert main(["sample", out, "--out", z]) == EXIT_BAD_MODEL


def test_verbose_fit_prints_progress(workspace, capsys):
    out = str(workspace / "verbose.skvdae")
    data = str(workspace / "data.npy")
    argv = ["fit", data, "--out", out, "--max-iter", "10", "--verbose"]
    assert main([*argv, "--solver", "exact"]) == EXIT_OK
    captured = capsys.readouterr()
    assert "[VDAESampler] step 10/10" in captured.out
    assert "wrote" in captured.err


def test_progress_bar(capsys):
    import io

    from skvdae.cli._progress import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    for iteration in (5, 10):
        metadata = {"name": "VDAESampler", "iteration": iteration, "max_iter": 10}
        bar.on_fit_task_end(None, None, metadata=metadata)
    text = stream.getvalue()
    assert "[#####-----] 5/10" in text and "[##########] 10/10" in text


def test_progress_bar_follows_a_real_fit():
    """The bar is driven by scikit-learn's callbacks, never by printed lines."""
    import io

    pytest.importorskip("sklearn.callback")
    from skvdae import DiffusionMapEmbedder
    from skvdae.cli._progress import ProgressBar

    stream = io.StringIO()
    embedder = DiffusionMapEmbedder(n_components=2, max_iter=20, random_state=0)
    embedder.set_callbacks(ProgressBar(stream, width=10))
    embedder.fit(_loop())
    text = stream.getvalue()
    assert "[SpectralNet]" in text and "[##########] 20/20" in text


def test_bad_data_exit_codes(workspace, tmp_path, capsys):
    model = str(workspace / "model.skvdae")
    out = str(tmp_path / "out.npy")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b,c\n1,2,3\n4,five,6\n")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3\n4,5\n")
    vector = tmp_path / "vector.npy"
    np.save(vector, np.arange(5.0))
    two = tmp_path / "two.npy"
    np.save(two, np.ones((10, 2)))
    text = tmp_path / "strings.npy"
    np.save(text, np.array([["a", "b"]]))
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[1.0, np.nan, 0.0]]))
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x00\x01 not an array")

    cases = [
        (["fit", str(tmp_path / "missing.npy"), "--out", out], "no such file"),
        (["fit", str(bad_csv), "--out", out], "'five' is not a number"),
        (["fit", str(ragged), "--out", out], "2 values, expected 3"),
        (["fit", str(vector), "--out", out], "expected a 2-D array"),
        (["fit", str(text), "--out", out], "numeric"),
        (["fit", str(nan), "--out", out], "NaN"),
        (["fit", str(garbage), "--out", out], "not a readable .npy"),
        (["fit", str(two), "--out", out, "--n-components", "50"], "cannot fit"),
        (["embed", model, str(two), "--out", out], "has 2 features"),
        (["score", model, str(two)], "fitted on 3"),
        (["sample", model, "--seeds", str(two), "--out", out], "has 2 features"),
        (["plot", str(vector), "--out", str(tmp_path / "p.png")], "2-D array"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == EXIT_BAD_DATA, argv
        error = capsys.readouterr().err
        assert message in error, (argv, error)
        assert "Traceback" not in error


def test_bad_model_exit_codes(workspace, tmp_path, capsys):
    data = str(workspace / "data.npy")
    garbage = tmp_path / "garbage.skvdae"
    garbage.write_bytes(os.urandom(256))
    raw = (workspace / "model.skvdae").read_bytes()
    truncated = tmp_path / "truncated.skvdae"
    truncated.write_bytes(raw[: len(raw) // 2])
    future = tmp_path / "future.skvdae"
    with (
        zipfile.ZipFile(workspace / "model.skvdae") as source,
        zipfile.ZipFile(future, "w") as target,
    ):
        for name in source.namelist():
            content = source.read(name)
            if name == "manifest.json":
                content = content.replace(
                    b'"format_version": 1', b'"format_version": 7'
                )
            target.writestr(name, content)
    cases = [
        (str(tmp_path / "missing.skvdae"), "no such model file"),
        (str(garbage), "not a skvdae model file"),
        (str(truncated), "truncated or corrupt"),
        (str(future), "format version 7"),
    ]
    for model, message in cases:
        capsys.readouterr()
        assert main(["score", model, data]) == EXIT_BAD_MODEL
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error


def test_usage_errors(workspace, tmp_path, capsys):
    model = str(workspace / "model.skvdae")
    data = str(workspace / "data.npy")
    assert main([]) == EXIT_USAGE
    assert main(["fit", data]) == EXIT_USAGE  # --out missing
    assert main(["frobnicate"]) == EXIT_USAGE
    assert main(["sample", model, "--n", "0", "--out", "x.npy"]) == EXIT_USAGE
    assert main(["sample", model, "--out", str(tmp_path / "x.txt")]) == EXIT_USAGE
    assert main(["fit", data, "--out", "m", "--hidden-layer-sizes", "a"]) == 2
    assert main(["plot", data, "--out", str(tmp_path / "x.jpg2")]) == EXIT_USAGE
    capsys.readouterr()
    assert main(["--help"]) == EXIT_OK
    assert "exit codes" in capsys.readouterr().out


def test_module_help_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "skvdae", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0
    for command in ("demo", "fit", "sample", "embed", "score", "plot"):
        assert command in result.stdout
    assert "exit codes" in result.stdout and "python -m skvdae" in result.stdout


# --------------------------------------------------------------------- exit codes


def _one_line_error(capsys):
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "Traceback" not in error, error
    return error


def _raiser(error):
    def raise_(*args, **kwargs):
        raise error

    return raise_


def test_fit_rejections_exit_3_in_one_line(workspace, tmp_path, monkeypatch, capsys):
    from sklearn.utils._param_validation import InvalidParameterError

    data = str(workspace / "data.npy")
    out = str(tmp_path / "m.skvdae")
    big = tmp_path / "big.npy"
    np.save(big, _loop() * 1e200)
    capsys.readouterr()
    assert main(["fit", str(big), "--out", out, *FAST]) == EXIT_BAD_DATA
    assert "cannot fit" in _one_line_error(capsys)
    for error in (
        FloatingPointError("the loss diverged at step 3"),
        InvalidParameterError("The 'alpha' parameter must be\nin [0, 1]."),
    ):
        monkeypatch.setattr(VDAESampler, "fit", _raiser(error))
        assert main(["fit", data, "--out", out, *FAST]) == EXIT_BAD_DATA
        message = _one_line_error(capsys)
        assert "cannot fit" in message and str(error).split()[-1] in message
    assert not os.path.exists(out)


def test_demo_without_matplotlib_exits_5(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    out = tmp_path / "demo"
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "-q"]) == EXIT_MISSING_DEPENDENCY
    message = _one_line_error(capsys)
    assert "demo needs matplotlib: pip install matplotlib" in message
    assert not out.exists()  # refused before fitting anything
    data = tmp_path / "data.npy"
    np.save(data, _loop())
    assert main(["plot", str(data), "--out", str(tmp_path / "p.png")]) == 5
    assert "plot needs matplotlib: pip install matplotlib" in _one_line_error(capsys)


def _rewrite_manifest(source, target, edit):
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            content = old.read(name)
            if name == "manifest.json":
                content = edit(json.loads(content))
            new.writestr(name, content)
    return str(target)


def test_flags_and_model_files_are_checked(workspace, tmp_path, capsys):
    model = str(workspace / "model.skvdae")
    data = str(workspace / "data.npy")
    out = str(tmp_path / "out.npy")
    for argv in (
        ["fit", data, "--out", str(tmp_path / "m.skvdae"), "--random-state", "-1"],
        ["sample", model, "--out", out, "--random-state", "-1"],
        ["demo", "--out", str(tmp_path / "demo"), "--random-state", "-1"],
        ["demo", "--out", str(tmp_path / "demo"), "--n-samples", "0"],
    ):
        assert main(argv) == EXIT_USAGE, argv
    assert not (tmp_path / "demo").exists()

    def deep(manifest):
        manifest["estimator"]["params"]["covariance_scale"] = "DEEP"
        text = json.dumps(manifest)
        return text.replace('"DEEP"', "[" * 3000 + "]" * 3000)

    def zero_noise(manifest):
        manifest["estimator"]["attributes"]["noise_variance_"] = 0.0
        return json.dumps(manifest)

    for edit, message in ((deep, "nested deeper"), (zero_noise, "noise_variance_")):
        bad = _rewrite_manifest(model, tmp_path / f"{edit.__name__}.skvdae", edit)
        for argv in (
            ["score", bad, data],
            ["sample", bad, "--out", out],
            ["embed", bad, data, "--out", out],
        ):
            capsys.readouterr()
            assert main(argv) == EXIT_BAD_MODEL, argv
            assert message in _one_line_error(capsys)
    assert not os.path.exists(out)


def test_every_documented_exit_code(workspace, tmp_path, monkeypatch, capsys):
    from skvdae.cli import _main

    model = str(workspace / "model.skvdae")
    data = str(workspace / "data.npy")
    out = str(tmp_path / "z.npy")
    seen = {}

    def run(argv, expected):
        capsys.readouterr()
        code = main(argv)
        seen[expected] = code
        return code

    run(["embed", model, data, "--out", out, "-q"], EXIT_OK)
    run(["frobnicate"], EXIT_USAGE)
    run(["embed", model, str(tmp_path / "missing.npy"), "--out", out], EXIT_BAD_DATA)
    run(["score", str(tmp_path / "missing.skvdae"), data], EXIT_BAD_MODEL)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "matplotlib", None)
        for argv in (
            ["plot", data, "--out", str(tmp_path / "p.png")],
            ["demo", "--out", str(tmp_path / "demo")],
        ):
            assert run(argv, EXIT_MISSING_DEPENDENCY) == EXIT_MISSING_DEPENDENCY
    with monkeypatch.context() as patch:
        patch.setitem(_main._COMMANDS, "score", _raiser(RuntimeError("a bug")))
        run(["score", model, data], EXIT_UNEXPECTED)
        assert "unexpected error: RuntimeError: a bug" in _one_line_error(capsys)
        patch.setitem(_main._COMMANDS, "score", _raiser(KeyboardInterrupt()))
        run(["score", model, data], EXIT_INTERRUPTED)
        assert "interrupted" in capsys.readouterr().err
    documented = {code for code, _ in EXIT_CODES}
    assert documented == {0, 1, 2, 3, 4, 5, 130} == set(seen)
    assert all(code == expected for expected, code in seen.items()), seen


def test_non_finite_results_are_never_written(workspace, tmp_path, monkeypatch, capsys):
    model = str(workspace / "model.skvdae")
    out = tmp_path / "z.npy"
    far = tmp_path / "far.npy"
    np.save(far, np.array([[1e154, 0.0, 0.0]]))
    capsys.readouterr()
    # Refused by the estimator or caught in its output: exit 3 either way. The
    # estimator's numerical warnings stay warnings, as on the command line.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["embed", model, str(far), "--out", str(out)]) == EXIT_BAD_DATA
    assert f"cannot embed {str(far)!r}" in _one_line_error(capsys)
    assert not out.exists()

    data = str(workspace / "data.npy")

    def nan_rows(n_rows):
        return np.full((n_rows, 3), np.nan)

    monkeypatch.setattr(VDAESampler, "transform", lambda self, X: nan_rows(len(X)))
    assert main(["embed", model, data, "--out", str(out)]) == EXIT_BAD_DATA
    assert "NaN or infinite for 120 of 120 points" in _one_line_error(capsys)
    monkeypatch.setattr(VDAESampler, "sample", lambda self, n, **kw: nan_rows(n))
    assert main(["sample", model, "--n", "4", "--out", str(out)]) == EXIT_BAD_DATA
    assert "cannot sample" in _one_line_error(capsys)
    monkeypatch.setattr(VDAESampler, "score", lambda self, X: float("nan"))
    assert main(["score", model, data]) == EXIT_BAD_DATA
    assert "NaN" in _one_line_error(capsys)
    assert not out.exists()
