"""Safe model files: save and load fitted estimators without running code from the file.

A model file is a zip archive with three kinds of entries:

``manifest.json``
    The format name (``"skvdae-model"``), the format version, the skvdae version
    that wrote it, and the estimator: its class name, its constructor
    parameters, its scalar fitted attributes, the name, shape and dtype of each
    fitted array, and for each network its architecture (class, layer sizes,
    activation) and the entry holding its weights. A nested estimator (the
    ``embedder_`` of a :class:`~skvdae.VDAESampler`) is described by a nested
    object of the same form.
``arrays.npz``
    The fitted arrays, read with ``numpy.load(allow_pickle=False)``.
``weights/<name>.pt``
    One ``state_dict`` of CPU tensors per network, written by ``torch.save`` and
    read by ``torch.load(weights_only=True)``.

Loading rebuilds each network from its recorded architecture and fills it with
``load_state_dict``; neighbour indices are refitted on their saved training
arrays. Nothing is unpickled. Files of an unknown format, a newer format
version, an unknown estimator class, with a missing entry or with arrays of the
wrong shape are refused with a :class:`ModelFileError`.
"""

import io
import json
import os
import zipfile
import zlib

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._embedder import DiffusionMapEmbedder
from ._graph import fit_neighbor_index
from ._nn import ACTIVATIONS, CholeskyNetwork, Decoder, DiffusionNetwork
from ._sampler import VDAESampler
from ._torch_utils import seeded_torch
from ._vdae import LatentNeighbourhoods
from ._version import __version__

FORMAT_NAME = "skvdae-model"
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_ARRAYS = "arrays.npz"
_WEIGHTS_DIR = "weights/"
_ZIP_MAGIC = b"PK\x03\x04"


class ModelFileError(ValueError):
    """A file that is not a readable skvdae model file.

    Raised by :func:`load_model` for a file that is not a skvdae model file, a
    truncated or corrupt archive, a format version newer than this skvdae
    reads, a missing entry, an unknown estimator class or inconsistent
    contents (an array or a weight of the wrong shape).

    Examples
    --------
    >>> from skvdae import ModelFileError
    >>> issubclass(ModelFileError, ValueError)
    True
    """


# --------------------------------------------------------------------- public API


def save_model(estimator, path):
    """Write a fitted estimator to a safe model file.

    Parameters
    ----------
    estimator : DiffusionMapEmbedder or VDAESampler
        A fitted estimator.
    path : str or path-like
        The file to write (overwritten). The suffix is free; ``.skvdae`` is a
        good choice.

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        For an estimator (or a parameter value) this format cannot hold.

    See Also
    --------
    load_model : Read the file back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvdae import DiffusionMapEmbedder, load_model, save_model
    >>> theta = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    >>> X = np.c_[np.cos(theta), np.sin(theta)]
    >>> embedder = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "circle.skvdae")
    >>> _ = save_model(embedder, path)
    >>> loaded = load_model(path)
    >>> bool(np.array_equal(loaded.transform(X), embedder.transform(X)))
    True
    """
    spec = _SPECS.get(type(estimator).__name__)
    if spec is None or not isinstance(estimator, spec.cls):
        raise TypeError(
            f"Cannot save a {type(estimator).__name__}: the skvdae model format "
            f"holds {', '.join(sorted(_SPECS))}. Use pickle or joblib for others."
        )
    check_is_fitted(estimator)
    writer = _Writer()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skvdae_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "estimator": spec.dump(estimator, writer, prefix=""),
    }
    path = os.fspath(path)
    arrays = io.BytesIO()
    np.savez(arrays, **writer.arrays)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_MANIFEST, json.dumps(manifest, indent=1, allow_nan=True))
        archive.writestr(_ARRAYS, arrays.getvalue())
        for name, blob in writer.weights.items():
            archive.writestr(name, blob)
    return path


def load_model(path):
    """Read an estimator written by :func:`save_model`, without running its code.

    Parameters
    ----------
    path : str or path-like
        A model file.

    Returns
    -------
    estimator : DiffusionMapEmbedder or VDAESampler
        The fitted estimator, all its networks on the CPU in float64.

    Raises
    ------
    ModelFileError
        If the file is not a skvdae model file, is truncated or corrupt, was
        written in a newer format version, lacks an entry, names an unknown
        estimator class or holds arrays of the wrong shape.
    FileNotFoundError
        If ``path`` does not exist.

    See Also
    --------
    save_model : Write a model file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvdae import DiffusionMapEmbedder, ModelFileError, load_model
    >>> path = os.path.join(tempfile.mkdtemp(), "not_a_model.skvdae")
    >>> with open(path, "wb") as file:
    ...     _ = file.write(b"hello")
    >>> try:
    ...     load_model(path)
    ... except ModelFileError as error:
    ...     print("not a skvdae model file" in str(error))
    True
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        head = file.read(4)
    if head != _ZIP_MAGIC:
        raise ModelFileError(
            f"{path!r} is not a skvdae model file (not a zip archive)."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            reader = _Reader(archive, path)
            manifest = reader.manifest()
            estimator_manifest = _get(manifest, "estimator", dict, "manifest")
            return _load_estimator(estimator_manifest, reader, prefix="")
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise ModelFileError(
            f"{path!r} is a truncated or corrupt skvdae model file ({error})."
        ) from error


# --------------------------------------------------------------------- plumbing


class _Writer:
    def __init__(self):
        self.arrays = {}
        self.weights = {}

    def array(self, key, value):
        value = np.asarray(value)
        if value.dtype == object:
            raise TypeError(f"Cannot save the object array {key!r}.")
        self.arrays[key] = value
        return {"key": key, "shape": list(value.shape), "dtype": value.dtype.str}

    def network(self, key, module):
        name = f"{_WEIGHTS_DIR}{key}.pt"
        state = {
            k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.weights[name] = buffer.getvalue()
        return {"file": name, "architecture": _describe_network(module)}


class _Reader:
    def __init__(self, archive, path):
        self.archive = archive
        self.path = path
        self.names = set(archive.namelist())
        self._arrays = None

    def read(self, name):
        if name not in self.names:
            raise ModelFileError(f"{self.path!r} lacks the entry {name!r}.")
        return self.archive.read(name)

    def manifest(self):
        if _MANIFEST not in self.names:
            raise ModelFileError(
                f"{self.path!r} is not a skvdae model file (no {_MANIFEST})."
            )
        try:
            manifest = json.loads(self.read(_MANIFEST).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelFileError(
                f"{self.path!r} has an unreadable {_MANIFEST} ({error})."
            ) from error
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise ModelFileError(
                f"{self.path!r} is not a skvdae model file (format "
                f"{manifest.get('format') if isinstance(manifest, dict) else None!r})."
            )
        version = manifest.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ModelFileError(
                f"{self.path!r} has an invalid format version {version!r}."
            )
        if version > FORMAT_VERSION:
            raise ModelFileError(
                f"{self.path!r} uses model format version {version}, written by "
                f"skvdae {manifest.get('skvdae_version', '?')}; this skvdae "
                f"({__version__}) reads format version {FORMAT_VERSION} and older. "
                "Upgrade skvdae to load it."
            )
        return manifest

    def array(self, entry, shape=None, what=None):
        """The array described by ``entry``; ``shape`` entries of None are free."""
        if self._arrays is None:
            try:
                with np.load(io.BytesIO(self.read(_ARRAYS)), allow_pickle=False) as npz:
                    self._arrays = {key: npz[key] for key in npz.files}
            except (ValueError, OSError) as error:
                raise ModelFileError(
                    f"{self.path!r} has an unreadable {_ARRAYS} ({error})."
                ) from error
        key = _get(entry, "key", str, what)
        if key not in self._arrays:
            raise ModelFileError(f"{self.path!r} lacks the array {key!r}.")
        value = self._arrays[key]
        recorded = tuple(_get(entry, "shape", list, what))
        if value.shape != recorded:
            raise ModelFileError(
                f"{self.path!r}: array {key!r} has shape {value.shape}, but the "
                f"manifest records {recorded}."
            )
        if shape is not None and (
            len(shape) != value.ndim
            or any(
                s is not None and s != v
                for s, v in zip(shape, value.shape, strict=True)
            )
        ):
            expected = tuple("any" if s is None else s for s in shape)
            raise ModelFileError(
                f"{self.path!r}: array {key!r} has shape {value.shape}, expected "
                f"{expected}."
            )
        if value.dtype.kind not in "fiub":
            raise ModelFileError(
                f"{self.path!r}: array {key!r} has the non-numeric dtype {value.dtype}."
            )
        return value

    def network(self, entry, what):
        name = _get(entry, "file", str, what)
        architecture = _get(entry, "architecture", dict, what)
        module = _build_network(architecture, self.path)
        try:
            state = torch.load(
                io.BytesIO(self.read(name)), map_location="cpu", weights_only=True
            )
        except ModelFileError:
            raise
        except Exception as error:  # any failure of the restricted unpickler
            raise ModelFileError(
                f"{self.path!r}: cannot read the weights {name!r} ({error})."
            ) from error
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise ModelFileError(f"{self.path!r}: {name!r} is not a state_dict.")
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ModelFileError(
                f"{self.path!r}: the weights {name!r} do not fit the recorded "
                f"architecture ({error})."
            ) from error
        module = module.eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        return module


def _get(mapping, key, kind, what):
    if not isinstance(mapping, dict) or key not in mapping:
        raise ModelFileError(f"The model file's {what or 'manifest'} lacks {key!r}.")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ModelFileError(
            f"The model file's {what or 'manifest'} has an invalid {key!r}: {value!r}."
        )
    return value


# --------------------------------------------------------------------- networks


def _activation_name(mlp):
    names = {cls: name for name, cls in ACTIVATIONS.items()}
    for layer in mlp:
        if type(layer) in names:
            return names[type(layer)]
    return "tanh"  # no hidden layer: the activation is never used


def _mlp_sizes(mlp):
    return [layer.out_features for layer in mlp if isinstance(layer, torch.nn.Linear)]


def _describe_network(module):
    buffers = {
        name: list(buffer.shape)
        for name, buffer in module.named_buffers()
        if name.startswith("standardize.")
    }
    if isinstance(module, DiffusionNetwork):
        return {
            "class": "DiffusionNetwork",
            "n_inputs": module.features[0].in_features,
            "hidden_layer_sizes": _mlp_sizes(module.features),
            "n_outputs": module.head.out_features,
            "activation": _activation_name(module.features),
            "standardize_shapes": buffers,
        }
    if isinstance(module, Decoder):
        sizes = _mlp_sizes(module.mlp)
        return {
            "class": "Decoder",
            "n_inputs": module.mlp[0].in_features,
            "hidden_layer_sizes": sizes[:-1],
            "n_outputs": sizes[-1],
            "activation": _activation_name(module.mlp),
            "standardize_shapes": buffers,
        }
    if isinstance(module, CholeskyNetwork):
        sizes = _mlp_sizes(module.mlp)
        return {
            "class": "CholeskyNetwork",
            "n_inputs": module.n_latent,
            "hidden_layer_sizes": sizes[:-1],
            "n_outputs": sizes[-1],
            "activation": _activation_name(module.mlp),
            "min_diagonal": module.min_diagonal,
            "standardize_shapes": buffers,
        }
    raise TypeError(f"Cannot save a network of type {type(module).__name__}.")


def _build_network(architecture, path):
    """An empty float64 CPU module of the recorded architecture."""
    what = "network architecture"
    kind = _get(architecture, "class", str, what)
    n_inputs = _get(architecture, "n_inputs", int, what)
    sizes = _get(architecture, "hidden_layer_sizes", list, what)
    n_outputs = _get(architecture, "n_outputs", int, what)
    activation = _get(architecture, "activation", str, what)
    if (
        activation not in ACTIVATIONS
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)
        or n_inputs < 1
        or n_outputs < 1
    ):
        raise ModelFileError(f"{path!r} records an invalid network: {architecture!r}.")
    mean = np.zeros(n_inputs)
    # Construction initialises weights; fork the RNG so the caller's stays as is.
    with seeded_torch(0):
        if kind == "DiffusionNetwork":
            if not sizes:
                raise ModelFileError(f"{path!r} records an invalid network.")
            shapes = architecture.get("standardize_shapes", {})
            scale = np.ones(shapes.get("standardize.scale", [n_inputs]))
            module = DiffusionNetwork(mean, scale, sizes, n_outputs, activation)
        elif kind == "Decoder":
            module = Decoder(
                mean, np.ones(n_inputs), np.zeros(n_outputs), np.ones(n_outputs),
                sizes, activation,
            )  # fmt: skip
        elif kind == "CholeskyNetwork":
            min_diagonal = _get(architecture, "min_diagonal", float, what)
            if n_outputs != n_inputs * (n_inputs + 1) // 2:
                raise ModelFileError(f"{path!r} records an invalid network.")
            module = CholeskyNetwork(
                mean, np.ones(n_inputs), np.ones(n_inputs), sizes, activation,
                min_diagonal,
            )  # fmt: skip
        else:
            raise ModelFileError(f"{path!r} records an unknown network class {kind!r}.")
    return module.to(dtype=torch.float64)


# --------------------------------------------------------------------- parameters


def _encode_param(value, name):
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, tuple | list | np.ndarray):
        items = [_encode_param(v, name) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, np.random.RandomState):
        _, keys, pos, has_gauss, cached = value.get_state()
        return {
            "__random_state__": {
                "keys": [int(k) for k in keys],
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached),
            }
        }
    spec = _SPECS.get(type(value).__name__)
    if spec is not None and isinstance(value, spec.cls):
        return {"__estimator__": type(value).__name__, "params": _dump_params(value)}
    raise TypeError(
        f"Cannot save the parameter {name}={value!r} of type {type(value).__name__} "
        "in a skvdae model file."
    )


def _decode_param(value):
    if isinstance(value, list):
        return [_decode_param(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode_param(v) for v in value["__tuple__"])
    if "__random_state__" in value:
        state = value["__random_state__"]
        try:
            random_state = np.random.RandomState()
            random_state.set_state(
                (
                    "MT19937",
                    np.asarray(state["keys"], dtype=np.uint32),
                    int(state["pos"]),
                    int(state["has_gauss"]),
                    float(state["cached_gaussian"]),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(
                f"Invalid random state in the manifest: {error}"
            ) from error
        return random_state
    if "__estimator__" in value:
        spec = _spec_for(value["__estimator__"])
        params = _decode_params(value.get("params"), spec)
        return spec.cls(**params)
    raise ModelFileError(f"Unknown parameter encoding in the manifest: {value!r}.")


def _dump_params(estimator):
    return {
        name: _encode_param(value, name)
        for name, value in estimator.get_params(deep=False).items()
    }


def _decode_params(params, spec):
    if not isinstance(params, dict):
        raise ModelFileError("The model file's manifest lacks the parameters.")
    known = set(spec.cls().get_params(deep=False))
    unknown = set(params) - known
    if unknown:
        raise ModelFileError(
            f"The model file sets unknown {spec.cls.__name__} parameters "
            f"{sorted(unknown)}."
        )
    return {name: _decode_param(value) for name, value in params.items()}


# --------------------------------------------------------------------- estimators


class _Spec:
    """How one estimator class maps to the manifest: scalars, arrays, networks."""

    def __init__(
        self, cls, scalars, arrays, networks, dump_extra, load_extra, defaults=None
    ):
        self.cls = cls
        self.scalars = scalars
        # Attributes added after format version 1 was first written: a file
        # without them gets the value these functions compute from the rest.
        self.defaults = defaults or {}
        self.arrays = arrays  # name -> shape function of the loaded scalars
        self.networks = networks
        self.dump_extra = dump_extra
        self.load_extra = load_extra

    def dump(self, estimator, writer, prefix):
        out = {
            "class": type(estimator).__name__,
            "params": _dump_params(estimator),
            "attributes": {},
            "arrays": {},
            "networks": {},
        }
        for name in self.scalars:
            value = getattr(estimator, name, None)
            out["attributes"][name] = (
                None if value is None else _encode_param(value, name)
            )
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None:
            out["attributes"]["feature_names_in_"] = [str(n) for n in names]
        for name in self.arrays:
            value = getattr(estimator, name, None)
            if value is not None:
                out["arrays"][name] = writer.array(prefix + name, value)
        for name in self.networks:
            module = getattr(estimator, name, None)
            if module is not None:
                out["networks"][name] = writer.network(prefix + name, module)
        self.dump_extra(estimator, out, writer, prefix)
        return out

    def load(self, manifest, reader):
        params = _decode_params(manifest.get("params"), self)
        estimator = self.cls(**params)
        attributes = _get(manifest, "attributes", dict, "estimator entry")
        for name in self.scalars:
            if name not in attributes and name in self.defaults:
                continue
            if name not in attributes:
                raise ModelFileError(
                    f"{reader.path!r} lacks the attribute {name!r} of "
                    f"{self.cls.__name__}."
                )
            setattr(estimator, name, _decode_param(attributes[name]))
        names = attributes.get("feature_names_in_")
        if names is not None:
            if not isinstance(names, list) or len(names) != estimator.n_features_in_:
                raise ModelFileError(f"{reader.path!r} has invalid feature names.")
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        arrays = _get(manifest, "arrays", dict, "estimator entry")
        for name, shape in self.arrays.items():
            entry = arrays.get(name)
            value = None
            if entry is not None:
                value = reader.array(entry, shape(estimator), f"array {name}")
            setattr(estimator, name, value)
        networks = _get(manifest, "networks", dict, "estimator entry")
        for name in self.networks:
            entry = networks.get(name)
            setattr(
                estimator,
                name,
                None if entry is None else reader.network(entry, f"network {name}"),
            )
        for name, default in self.defaults.items():
            if name not in attributes and (
                name not in self.arrays or arrays.get(name) is None
            ):
                setattr(estimator, name, default(estimator))
        self.load_extra(estimator, manifest, reader)
        return estimator


def _dump_embedder_extra(estimator, out, writer, prefix):
    index = getattr(estimator, "_nn_index", None)
    if index is not None:
        out["arrays"]["_nn_index"] = writer.array(prefix + "_nn_index", index._fit_X)


def _load_embedder_extra(estimator, manifest, reader):
    n_features = estimator.n_features_in_
    n_components = estimator.n_components_
    if isinstance(n_components, bool) or not isinstance(n_components, int):
        raise ModelFileError(f"{reader.path!r} has an invalid n_components_.")
    _check_shape(estimator.eigenvalues_, (n_components,), "eigenvalues_", reader)
    if estimator.solver == "exact":
        entry = manifest["arrays"].get("_nn_index")
        if entry is None or estimator._train_psi is None:
            raise ModelFileError(
                f"{reader.path!r} lacks the Nystrom state of an exact embedder."
            )
        X = reader.array(entry, (None, n_features), "array _nn_index")
        n_samples = X.shape[0]
        _check_shape(
            estimator._train_psi, (n_samples, n_components), "_train_psi", reader
        )
        _check_shape(estimator._log_weights, (n_samples,), "_log_weights", reader)
        estimator._nn_index = fit_neighbor_index(np.asarray(X, dtype=np.float64))
    else:
        if estimator.network_ is None:
            raise ModelFileError(f"{reader.path!r} lacks the embedder's network.")
        _check_network(estimator.network_, n_features, n_components, "network_", reader)
        estimator._nn_index = None


def _dump_sampler_extra(estimator, out, writer, prefix):
    out["embedder_"] = _SPECS[type(estimator.embedder_).__name__].dump(
        estimator.embedder_, writer, prefix + "embedder_."
    )


def _load_sampler_extra(estimator, manifest, reader):
    nested = _get(manifest, "embedder_", dict, "estimator entry")
    estimator.embedder_ = _load_estimator(nested, reader, prefix="embedder_.")
    n_features = estimator.n_features_in_
    n_latent = estimator.n_components_
    if (
        estimator.embedder_.n_features_in_ != n_features
        or estimator.embedder_.n_components_ != n_latent
    ):
        raise ModelFileError(
            f"{reader.path!r}: the embedder does not match the sampler's shapes."
        )
    for name in ("decoder_", "covariance_network_", "_initial_covariance_network"):
        if getattr(estimator, name) is None:
            raise ModelFileError(f"{reader.path!r} lacks the network {name!r}.")
    n_out = n_latent * (n_latent + 1) // 2
    _check_network(estimator.decoder_, n_latent, n_features, "decoder_", reader)
    for name in ("covariance_network_", "_initial_covariance_network"):
        _check_network(getattr(estimator, name), n_latent, n_out, name, reader)
    for name in ("_train_X", "_train_Z", "loss_curve_"):
        if getattr(estimator, name) is None:
            raise ModelFileError(f"{reader.path!r} lacks the array {name!r}.")
    _check_shape(
        estimator._train_Z, (estimator._train_X.shape[0], n_latent), "_train_Z", reader
    )
    n_train = estimator._train_X.shape[0]
    labels = estimator._train_labels
    _check_shape(labels, (n_train,), "_train_labels", reader)
    if labels.dtype.kind not in "iu" or n_train == 0 or labels.min() < 0:
        raise ModelFileError(f"{reader.path!r} has invalid _train_labels.")
    scales = np.asarray(estimator.covariance_scale_, dtype=np.float64)
    if scales.shape != (int(labels.max()) + 1,) or not np.all(scales > 0):
        raise ModelFileError(f"{reader.path!r} has an invalid covariance_scale_.")
    estimator.covariance_scale_ = scales
    if estimator._residuals is not None:
        _check_shape(estimator._residuals, (n_train, n_features), "_residuals", reader)
        estimator._residuals = np.asarray(estimator._residuals, dtype=np.float64)
    estimator._train_X = np.asarray(estimator._train_X, dtype=np.float64)
    estimator._train_Z = np.asarray(estimator._train_Z, dtype=np.float64)
    estimator._train_labels = np.asarray(labels, dtype=np.intp)
    estimator._neighbourhoods = LatentNeighbourhoods(
        estimator._train_Z, estimator._train_labels, estimator.n_neighbors_
    )


def _check_shape(value, shape, name, reader):
    if value is None or np.shape(value) != shape:
        raise ModelFileError(
            f"{reader.path!r}: {name} has shape {np.shape(value)}, expected {shape}."
        )


def _check_network(module, n_inputs, n_outputs, name, reader):
    linear = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if linear[0].in_features != n_inputs or linear[-1].out_features != n_outputs:
        raise ModelFileError(
            f"{reader.path!r}: the network {name} maps {linear[0].in_features} to "
            f"{linear[-1].out_features} values, expected {n_inputs} to {n_outputs}."
        )


def _load_estimator(manifest, reader, prefix):
    spec = _spec_for(_get(manifest, "class", str, "estimator entry"))
    return spec.load(manifest, reader)


def _spec_for(name):
    spec = _SPECS.get(name)
    if spec is None:
        raise ModelFileError(
            f"The model file holds an unknown estimator class {name!r}; this skvdae "
            f"({__version__}) knows {', '.join(sorted(_SPECS))}."
        )
    return spec


def _make_specs():
    def vector(attribute):
        return lambda estimator: (getattr(estimator, attribute),)

    embedder = _Spec(
        DiffusionMapEmbedder,
        scalars=[
            "n_components_",
            "bandwidth_",
            "n_connected_components_",
            "n_outliers_",
            "n_iter_",
            "n_features_in_",
            "_kernel_radius",
        ],
        arrays={
            "component_labels_": lambda e: (None,),
            "eigenvalues_": lambda e: (None,),
            "loss_curve_": lambda e: (None,),
            "_log_weights": lambda e: (None,),
            "_train_psi": lambda e: (None, None),
        },
        networks=["network_"],
        dump_extra=_dump_embedder_extra,
        load_extra=_load_embedder_extra,
        defaults={
            "n_components_": lambda e: e.n_components,
            "n_outliers_": lambda e: 0,
            "component_labels_": lambda e: None,
        },
    )
    sampler = _Spec(
        VDAESampler,
        scalars=[
            "n_components_",
            "n_neighbors_",
            "covariance_ridge_",
            "noise_variance_",
            "n_iter_",
            "n_features_in_",
        ],
        arrays={
            "loss_curve_": vector("n_iter_"),
            "_train_X": lambda e: (None, e.n_features_in_),
            "_train_Z": lambda e: (None, e.n_components_),
            "_train_labels": lambda e: (None,),
            "covariance_scale_": lambda e: (None,),
            "_residuals": lambda e: (None, e.n_features_in_),
        },
        networks=["decoder_", "covariance_network_", "_initial_covariance_network"],
        dump_extra=_dump_sampler_extra,
        load_extra=_load_sampler_extra,
        defaults={
            "covariance_scale_": lambda e: np.array([float(e.covariance_scale)]),
            "_train_labels": lambda e: (
                None if e._train_X is None else np.zeros(len(e._train_X), np.intp)
            ),
            "_residuals": lambda e: None,
        },
    )
    return {"DiffusionMapEmbedder": embedder, "VDAESampler": sampler}


_SPECS = _make_specs()
