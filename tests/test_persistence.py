"""Safe model files: round trips, no unpickling, clear errors for bad files."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

import skvdae.io._format as persistence
from skvdae import (
    DiffusionMapEmbedder,
    ModelFileError,
    VDAESampler,
    load_model,
    save_model,
)


def _loop(n=150):
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[np.cos(theta), np.sin(2 * theta), 0.5 * np.sin(3 * theta)]


@pytest.fixture(scope="module")
def X():
    return _loop()


@pytest.fixture(scope="module", params=["exact", "spectralnet"])
def embedder(request, X):
    return DiffusionMapEmbedder(
        n_components=2, solver=request.param, max_iter=30, random_state=0
    ).fit(X)


@pytest.fixture(scope="module", params=["exact", "spectralnet"])
def sampler(request, X):
    embedder = DiffusionMapEmbedder(solver=request.param, max_iter=30)
    return VDAESampler(embedder=embedder, max_iter=30, random_state=0).fit(X)


def _rewrite(path, out, manifest=None, arrays=None, drop=()):
    """Copy a model file, replacing the manifest or arrays, dropping entries."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name in drop:
                continue
            data = source.read(name)
            if name == "manifest.json" and manifest is not None:
                data = json.dumps(manifest(json.loads(data)))
            if name == "arrays.npz" and arrays is not None:
                with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                    contents = arrays({key: npz[key] for key in npz.files})
                buffer = io.BytesIO()
                np.savez(buffer, **contents)
                data = buffer.getvalue()
            target.writestr(name, data)
    return out


def test_embedder_round_trip(embedder, X, tmp_path):
    path = embedder.save(tmp_path / "embedder.skvdae")
    loaded = DiffusionMapEmbedder.load(path)
    assert type(loaded) is DiffusionMapEmbedder
    assert loaded.get_params() == embedder.get_params()
    X_new = X[::7] + 0.01
    np.testing.assert_array_equal(loaded.transform(X_new), embedder.transform(X_new))
    np.testing.assert_array_equal(loaded.transform(X), embedder.transform(X))
    np.testing.assert_array_equal(loaded.eigenvalues_, embedder.eigenvalues_)
    np.testing.assert_array_equal(loaded.loss_curve_, embedder.loss_curve_)
    for name in ("bandwidth_", "n_connected_components_", "n_iter_", "n_features_in_"):
        assert getattr(loaded, name) == getattr(embedder, name)
    if embedder.solver == "spectralnet":
        assert loaded.network_.head.weight.dtype == torch.float64
        assert not any(p.requires_grad for p in loaded.network_.parameters())
    else:
        assert loaded.network_ is None


def test_sampler_round_trip(sampler, X, tmp_path):
    path = save_model(sampler, tmp_path / "sampler.skvdae")
    loaded = load_model(path)
    assert type(loaded) is VDAESampler
    assert repr(loaded.get_params()) == repr(sampler.get_params())
    np.testing.assert_array_equal(loaded.transform(X), sampler.transform(X))
    Z = sampler.transform(X[:20])
    np.testing.assert_array_equal(
        loaded.inverse_transform(Z), sampler.inverse_transform(Z)
    )
    np.testing.assert_array_equal(
        loaded.sample(9, n_steps=4, random_state=3),
        sampler.sample(9, n_steps=4, random_state=3),
    )
    np.testing.assert_array_equal(
        loaded.sample(5, n_steps=2, random_state=1, seeds=X[:2]),
        sampler.sample(5, n_steps=2, random_state=1, seeds=X[:2]),
    )
    np.testing.assert_array_equal(loaded.score_samples(X), sampler.score_samples(X))
    np.testing.assert_array_equal(
        loaded.kl_divergence(X, initial=True), sampler.kl_divergence(X, initial=True)
    )
    np.testing.assert_array_equal(loaded.loss_curve_, sampler.loss_curve_)
    for name in (
        "n_components_",
        "n_neighbors_",
        "n_residual_neighbors_",
        "covariance_ridge_",
        "n_iter_",
    ):
        assert getattr(loaded, name) == getattr(sampler, name)
    # pickle keeps working on a loaded model
    again = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_array_equal(again.score_samples(X), sampler.score_samples(X))


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_feature_names_and_random_state_instance(tmp_path):
    X = _loop(60)
    embedder = DiffusionMapEmbedder(
        solver="exact", random_state=np.random.RandomState(4)
    ).fit(X)
    # As set by a fit on a DataFrame with string column names.
    embedder.feature_names_in_ = np.asarray(["a", "b", "c"], dtype=object)
    expected_state = embedder.random_state.get_state()
    loaded = DiffusionMapEmbedder.load(embedder.save(tmp_path / "m.skvdae"))
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    assert loaded.feature_names_in_.dtype == object
    np.testing.assert_array_equal(loaded.transform(X), embedder.transform(X))
    state = loaded.random_state.get_state()
    np.testing.assert_array_equal(state[1], expected_state[1])
    assert state[2:] == expected_state[2:]


def test_never_unpickles(sampler, X, tmp_path, monkeypatch):
    path = sampler.save(tmp_path / "m.skvdae")
    calls = []
    original_load = torch.load

    def checked_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original_load(*args, **kwargs)

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle was used to read a model file")

    monkeypatch.setattr(torch, "load", checked_load)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    loaded = load_model(path)
    assert calls and all(flag is True for flag in calls)
    assert len(calls) == 4 if sampler.embedder_.network_ is not None else 3
    np.testing.assert_array_equal(loaded.score_samples(X), sampler.score_samples(X))


def test_malicious_weights_are_refused(embedder, tmp_path):
    if embedder.network_ is None:
        pytest.skip("no network")
    path = embedder.save(tmp_path / "m.skvdae")

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    evil = io.BytesIO()
    torch.save({"head.weight": Evil()}, evil)
    out = tmp_path / "evil.skvdae"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, evil.getvalue() if name.endswith(".pt") else data)
    with pytest.raises(ModelFileError, match="cannot read the weights"):
        load_model(out)


def test_truncated_file(sampler, tmp_path):
    data = (sampler.save(tmp_path / "m.skvdae"),)
    raw = open(data[0], "rb").read()
    for size in (len(raw) // 2, len(raw) - 30, 10):
        out = tmp_path / f"cut{size}.skvdae"
        out.write_bytes(raw[:size])
        with pytest.raises(ModelFileError, match="truncated or corrupt"):
            load_model(out)


def test_random_bytes_and_other_files(tmp_path):
    out = tmp_path / "noise.skvdae"
    out.write_bytes(np.random.RandomState(0).bytes(4096))
    with pytest.raises(ModelFileError, match="not a skvdae model file"):
        load_model(out)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="not a skvdae model file"):
        load_model(other)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ModelFileError, match="not a skvdae model file"):
        load_model(npy)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.skvdae")


def test_corrupt_entry(embedder, tmp_path):
    path = embedder.save(tmp_path / "m.skvdae")
    raw = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("arrays.npz")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 5
    raw[start : start + 8] = b"\x00" * 8
    out = tmp_path / "corrupt.skvdae"
    out.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError):
        load_model(out)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: {**m, "format": "something-else"}, "not a skvdae model file"),
        (lambda m: {**m, "format_version": 99}, "format version 99"),
        (lambda m: {**m, "format_version": "1"}, "invalid format version"),
        (
            lambda m: {**m, "estimator": {**m["estimator"], "class": "Evil"}},
            "unknown estimator class 'Evil'",
        ),
        (
            lambda m: {
                **m,
                "estimator": {
                    **m["estimator"],
                    "params": {**m["estimator"]["params"], "exec": "rm"},
                },
            },
            "unknown .* parameters",
        ),
        (lambda m: {k: v for k, v in m.items() if k != "estimator"}, "lacks"),
    ],
)
def test_modified_manifest(sampler, tmp_path, edit, message):
    path = sampler.save(tmp_path / "m.skvdae")
    out = _rewrite(path, tmp_path / "edited.skvdae", manifest=edit)
    with pytest.raises(ModelFileError, match=message):
        load_model(out)


def test_future_version_message_names_versions(embedder, tmp_path):
    path = embedder.save(tmp_path / "m.skvdae")
    out = _rewrite(
        path,
        tmp_path / "future.skvdae",
        manifest=lambda m: {**m, "format_version": 2, "skvdae_version": "9.0"},
    )
    with pytest.raises(ModelFileError, match=r"skvdae 9\.0.*Upgrade"):
        load_model(out)


def test_missing_entries(sampler, tmp_path):
    path = sampler.save(tmp_path / "m.skvdae")
    for entry in ("arrays.npz", "weights/decoder_.pt", "manifest.json"):
        out = _rewrite(path, tmp_path / "dropped.skvdae", drop=(entry,))
        with pytest.raises(ModelFileError, match=r"lacks|not a skvdae model file"):
            load_model(out)


def test_wrong_shape_array(sampler, tmp_path):
    path = sampler.save(tmp_path / "m.skvdae")

    def shorter(arrays):
        arrays["_train_X"] = arrays["_train_X"][:, :2]
        return arrays

    out = _rewrite(path, tmp_path / "shape.skvdae", arrays=shorter)
    with pytest.raises(ModelFileError, match=r"_train_X.*shape"):
        load_model(out)

    # The manifest edited to match: the consistency checks still refuse it.
    def manifest(m):
        m["estimator"]["arrays"]["_train_X"]["shape"][1] = 2
        return m

    out = _rewrite(path, tmp_path / "both.skvdae", arrays=shorter, manifest=manifest)
    with pytest.raises(ModelFileError, match=r"_train_X.*shape"):
        load_model(out)

    def eigenvalues(arrays):
        arrays["embedder_.eigenvalues_"] = np.ones(5)
        return arrays

    out = _rewrite(path, tmp_path / "eig.skvdae", arrays=eigenvalues)
    with pytest.raises(ModelFileError, match="eigenvalues_"):
        load_model(out)


def test_wrong_network_architecture(sampler, tmp_path):
    path = sampler.save(tmp_path / "m.skvdae")

    def manifest(m):
        architecture = m["estimator"]["networks"]["decoder_"]["architecture"]
        architecture["body"]["hidden_layer_sizes"] = [3]
        return m

    out = _rewrite(path, tmp_path / "arch.skvdae", manifest=manifest)
    with pytest.raises(ModelFileError, match="do not fit the recorded architecture"):
        load_model(out)


def test_load_checks_class(embedder, tmp_path):
    path = embedder.save(tmp_path / "m.skvdae")
    with pytest.raises(ModelFileError, match="not a VDAESampler"):
        VDAESampler.load(path)


def test_unfitted_and_unsupported(tmp_path):
    with pytest.raises(NotFittedError):
        VDAESampler().save(tmp_path / "m.skvdae")
    with pytest.raises(NotFittedError):
        save_model(DiffusionMapEmbedder(), tmp_path / "m.skvdae")
    from sklearn.decomposition import PCA

    with pytest.raises(TypeError, match="Cannot save a PCA"):
        save_model(PCA().fit(np.eye(3)), tmp_path / "m.skvdae")


def test_global_rng_untouched(sampler, tmp_path):
    path = sampler.save(tmp_path / "m.skvdae")
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    load_model(path)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


def test_saved_tensors_are_cpu(sampler, tmp_path):
    path = sampler.save(tmp_path / "m.skvdae")
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(".pt"):
                state = torch.load(
                    io.BytesIO(archive.read(name)), weights_only=True
                )  # no map_location: fails for CUDA tensors without CUDA
                assert all(t.device.type == "cpu" for t in state.values())
    assert persistence.FORMAT_VERSION == 1
