"""Model files: bounded work for any file, validated values, custom modules."""

import io
import json
import time
import zipfile

import numpy as np
import pytest
import torch

from skvdae import DiffusionMapEmbedder, ModelFileError, VDAESampler, load_model
from skvdae.nn import MLP


def _loop(n=120):
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[np.cos(theta), np.sin(2 * theta), 0.5 * np.sin(3 * theta)]


@pytest.fixture(scope="module")
def sampler():
    return VDAESampler(
        DiffusionMapEmbedder(n_components=2, max_iter=20), max_iter=20, random_state=0
    ).fit(_loop())


@pytest.fixture(scope="module")
def exact():
    return DiffusionMapEmbedder(n_components=2, solver="exact").fit(_loop())


def _rewrite(path, out, manifest=None, entries=None):
    """Copy a model file, editing the manifest and replacing raw entries."""
    entries = entries or {}
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target,
    ):
        for name in source.namelist():
            data = entries.get(name, source.read(name))
            if name == "manifest.json" and manifest is not None:
                data = manifest(json.loads(data))
                data = data if isinstance(data, str) else json.dumps(data)
            target.writestr(name, data)
    return out


def _npz(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _arrays(path):
    with zipfile.ZipFile(path) as archive:
        with np.load(io.BytesIO(archive.read("arrays.npz"))) as npz:
            return {key: npz[key] for key in npz.files}


def test_an_inflating_array_is_refused_before_it_is_read(exact, tmp_path):
    path = exact.save(tmp_path / "m.skvdae")
    arrays = _arrays(path)
    arrays["eigenvalues_"] = np.zeros(4_000_000)  # 32 MB of zeros, 32 kB zipped
    out = _rewrite(path, tmp_path / "bomb.skvdae", entries={"arrays.npz": _npz(arrays)})
    assert out.stat().st_size < 1_000_000
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match="inflates"):
        load_model(out)
    assert time.perf_counter() - start < 5.0


def test_declared_sizes_beyond_the_archive_are_refused(exact, tmp_path):
    path = exact.save(tmp_path / "m.skvdae")

    def huge(manifest):
        manifest["estimator"]["arrays"]["_train_psi"]["shape"] = [10**6, 10**6]
        return manifest

    with pytest.raises(ModelFileError, match=r"declares .* bytes"):
        load_model(_rewrite(path, tmp_path / "huge.skvdae", manifest=huge))


def test_an_npy_header_that_lies_is_refused(exact, tmp_path):
    path = exact.save(tmp_path / "m.skvdae")
    arrays = _arrays(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as npz:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.save(member, value)
            data = member.getvalue()
            if key == "eigenvalues_":
                header = {
                    "descr": "<f8",
                    "fortran_order": False,
                    "shape": (10**6, 10**6),
                }
                member = io.BytesIO()
                np.lib.format.write_array_header_1_0(member, header)
                data = member.getvalue() + value.tobytes()
            npz.writestr(f"{key}.npy", data)
    out = _rewrite(
        path, tmp_path / "header.skvdae", entries={"arrays.npz": buffer.getvalue()}
    )
    with pytest.raises(ModelFileError, match=r"eigenvalues_.*shape"):
        load_model(out)


def test_declared_wide_layers_are_refused_without_allocating_them(sampler, tmp_path):
    path = sampler.save(tmp_path / "m.skvdae")

    def wide(manifest):
        architecture = manifest["estimator"]["networks"]["decoder_"]["architecture"]
        architecture["body"]["hidden_layer_sizes"] = [100_000, 100_000]  # 80 GB
        return manifest

    with pytest.raises(ModelFileError, match="do not fit the recorded architecture"):
        load_model(_rewrite(path, tmp_path / "wide.skvdae", manifest=wide))


def test_a_deeply_nested_manifest_is_refused(exact, tmp_path):
    path = exact.save(tmp_path / "m.skvdae")

    def deep(manifest):
        manifest["estimator"]["params"]["bandwidth"] = "DEEP"
        return json.dumps(manifest).replace('"DEEP"', "[" * 3000 + "]" * 3000)

    with pytest.raises(ModelFileError, match="nested deeper"):
        load_model(_rewrite(path, tmp_path / "deep.skvdae", manifest=deep))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda e: e["params"].__setitem__("covariance_scale", -1.0),
            "covariance_scale",
        ),
        (lambda e: e["params"].__setitem__("learning_rate", "fast"), "learning_rate"),
        (
            lambda e: e["attributes"].__setitem__("noise_variance_", 0.0),
            "noise_variance_",
        ),
        (
            lambda e: e["attributes"].__setitem__("covariance_ridge_", -1.0),
            "covariance_ridge_",
        ),
        (lambda e: e["attributes"].__setitem__("n_neighbors_", 0), "n_neighbors_"),
        (
            lambda e: e["embedder_"]["attributes"].__setitem__("bandwidth_", 0.0),
            "bandwidth_",
        ),
        (
            lambda e: e["embedder_"]["params"].__setitem__(
                "diffusion_time", float("nan")
            ),
            "diffusion_time",
        ),
    ],
)
def test_invalid_values_are_model_file_errors(sampler, tmp_path, edit, message):
    path = sampler.save(tmp_path / "m.skvdae")

    def manifest(m):
        edit(m["estimator"])
        return m

    with pytest.raises(ModelFileError, match=message):
        load_model(_rewrite(path, tmp_path / "bad.skvdae", manifest=manifest))


def test_invalid_kernel_radius_is_a_model_file_error(exact, tmp_path):
    path = exact.save(tmp_path / "m.skvdae")

    def manifest(m):
        m["estimator"]["attributes"]["_kernel_radius"] = -1.0
        return m

    with pytest.raises(ModelFileError, match="_kernel_radius"):
        load_model(_rewrite(path, tmp_path / "radius.skvdae", manifest=manifest))


class ShiftedDecoder(torch.nn.Module):
    """A user's own decoder: an MLP plus a learned shift."""

    def __init__(self, n_inputs, n_outputs, width=8):
        super().__init__()
        self.width = width
        self.mlp = MLP(n_inputs, n_outputs, (width,))
        self.shift = torch.nn.Parameter(torch.zeros(n_outputs))

    def forward(self, z):
        return self.mlp(z) + self.shift

    def get_config(self):
        return {
            "n_inputs": self.mlp.n_inputs,
            "n_outputs": self.mlp.n_outputs,
            "width": self.width,
        }

    @classmethod
    def from_config(cls, config):
        return cls(config["n_inputs"], config["n_outputs"], config["width"])


def test_custom_modules_load_only_when_supplied(sampler, tmp_path):
    import copy

    custom = copy.deepcopy(sampler)
    with torch.no_grad():
        decoder = ShiftedDecoder(2, 3).to(torch.float64)
        decoder.shift.fill_(0.5)
    custom.decoder_ = decoder.eval()
    path = custom.save(tmp_path / "custom.skvdae")
    with pytest.raises(ModelFileError, match=r"ShiftedDecoder.*custom_objects"):
        load_model(path)
    loaded = load_model(path, custom_objects={"ShiftedDecoder": ShiftedDecoder})
    assert isinstance(loaded.decoder_, ShiftedDecoder)
    Z = custom.transform(_loop()[:10])
    np.testing.assert_array_equal(
        loaded.inverse_transform(Z), custom.inverse_transform(Z)
    )
    with pytest.raises(TypeError, match="custom_objects"):
        load_model(path, custom_objects={"ShiftedDecoder": "not a class"})


def test_a_module_without_a_config_cannot_be_saved(sampler, tmp_path):
    import copy

    custom = copy.deepcopy(sampler)
    custom.decoder_ = torch.nn.Linear(2, 3).to(torch.float64)
    with pytest.raises(TypeError, match="get_config"):
        custom.save(tmp_path / "linear.skvdae")


def test_files_written_by_skvdae_0_1_still_load():
    """Format version 1 as skvdae 0.1 wrote it (before the estimators declared
    their own state), with outputs recorded by that version."""
    import pathlib

    folder = pathlib.Path(__file__).parent / "data"
    recorded = np.load(folder / "outputs_0.1.npz")
    X = recorded["X"]
    embedder = load_model(folder / "embedder_exact_0.1.skvdae")
    assert embedder.bandwidth_neighbors == 10  # was n_neighbors
    np.testing.assert_allclose(embedder.transform(X), recorded["embed"], atol=1e-12)
    sampler = load_model(folder / "sampler_spectralnet_0.1.skvdae")
    np.testing.assert_allclose(sampler.transform(X), recorded["sampler_Z"], atol=1e-12)
    np.testing.assert_allclose(sampler.score_samples(X), recorded["scores"], rtol=1e-12)
