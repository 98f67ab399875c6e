"""Safe model files: save and load fitted estimators without running code from the file.

A model file is a zip archive with three kinds of entries:

``manifest.json``
    The format name (``"skvdae-model"``), the format version, the skvdae version
    that wrote it, and the estimator entry: its class name, its constructor
    parameters, its scalar fitted attributes, the name, shape and dtype of each
    fitted array, and for each network its architecture (the module's class
    name and ``get_config()``) and the entry holding its weights. A nested
    estimator (the ``embedder_`` of a :class:`~skvdae.VDAESampler`) is an
    entry of the same form, under its attribute's name.
``arrays.npz``
    The fitted arrays, read without pickle.
``weights/<name>.pt``
    One ``state_dict`` of CPU tensors per network, written by ``torch.save`` and
    read by ``torch.load(weights_only=True)``.

What is saved is the estimator's business: each estimator class is registered
here by name (:func:`register_estimator`) and declares its fitted state with
``_get_model_state()`` (a dict of numbers, strings, arrays, modules and nested
estimators) and takes it back, validated, with ``_set_model_state(state)``.
This module owns only the format, the limits and the name registries.

Nothing from a file is ever imported, called or unpickled by name: estimator
classes and built-in modules come from fixed registries, a user's own module
class only from ``load_model(path, custom_objects={"Name": cls})``. Every size
is checked before anything is allocated: the manifest's size and nesting depth,
each entry's uncompressed size against the shapes the manifest declares (and
the declared total against the archive's size), each array's header against
its declared shape, each network's parameter shapes (built on the ``meta``
device, which allocates nothing) against its stored weights. Every failure is a
:class:`ModelFileError`.
"""

import inspect
import io
import json
import os
import zipfile
import zlib

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted

from .._version import __version__
from ..graph import HNSWNeighbors
from ..nn import BUILTIN_MODULES
from ..nn._factory import UnknownFactoryError, factory_name

FORMAT_NAME = "skvdae-model"
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_ARRAYS = "arrays.npz"
_WEIGHTS_DIR = "weights/"
_ZIP_MAGIC = b"PK\x03\x04"

#: The manifest is small JSON: larger or deeper ones are refused unread.
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_MANIFEST_DEPTH = 64

#: The declared contents may inflate the archive by at most this factor (plus
#: ``_INFLATION_ALLOWANCE``): fitted arrays of floats hardly compress, a zip
#: bomb does by a thousand times.
MAX_INFLATION = 256
_INFLATION_ALLOWANCE = 64 * 2**20

# Room for the headers of an .npy member or a torch.save archive.
_HEADER_ALLOWANCE = 4096
_WEIGHTS_ALLOWANCE = 64 * 2**10
_PER_TENSOR_ALLOWANCE = 1024

_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}

_SECTIONS = ("class", "params", "attributes", "arrays", "networks", "nested")

_ESTIMATORS = {}

# Objects a parameter may hold besides estimators of this package, rebuilt
# from their own parameters: a fixed list, never extended by a file.
_PARAMETER_CLASSES = {
    "NearestNeighbors": NearestNeighbors,
    "HNSWNeighbors": HNSWNeighbors,
}


class ModelFileError(ValueError):
    """A file that is not a readable skvdae model file.

    Raised by :func:`load_model` for a file that is not a skvdae model file, a
    truncated or corrupt archive, a format version newer than this skvdae
    reads, a missing entry, an unknown estimator or network class, sizes beyond
    the format's limits or inconsistent contents (an array or a weight of the
    wrong shape, an invalid parameter or fitted value).

    Examples
    --------
    >>> from skvdae import ModelFileError
    >>> issubclass(ModelFileError, ValueError)
    True
    """


def register_estimator(cls):
    """Class decorator: let model files hold instances of ``cls`` by name.

    ``cls`` implements ``_get_model_state()`` and ``_set_model_state(state)``.
    """
    _ESTIMATORS[cls.__name__] = cls
    return cls


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
        For an estimator (or a parameter value, or a network) this format
        cannot hold.

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
    if _ESTIMATORS.get(type(estimator).__name__) is not type(estimator):
        raise TypeError(
            f"Cannot save a {type(estimator).__name__}: the skvdae model format "
            f"holds {', '.join(sorted(_ESTIMATORS))}. Use pickle or joblib for others."
        )
    check_is_fitted(estimator)
    writer = _Writer()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skvdae_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "estimator": writer.estimator(estimator, prefix=""),
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


def load_model(path, custom_objects=None):
    """Read an estimator written by :func:`save_model`, without running its code.

    Parameters
    ----------
    path : str or path-like
        A model file.
    custom_objects : dict or None, default=None
        ``{"name": factory}`` for the networks built from your own factories
        (the ``network``, ``decoder`` or ``covariance_network`` parameter: a
        ``torch.nn.Module`` subclass or a function, under its ``__name__``),
        and for modules of your own classes with ``get_config`` /
        ``from_config``. A factory is never imported by a name read from the
        file: one that is neither built in nor given here is a
        :class:`ModelFileError` naming it.

    Returns
    -------
    estimator : DiffusionMapEmbedder or VDAESampler
        The fitted estimator, all its networks on the CPU in float64.

    Raises
    ------
    ModelFileError
        If the file is not a skvdae model file, is truncated or corrupt, was
        written in a newer format version, lacks an entry, names an unknown
        estimator or network class, exceeds the format's size limits or holds
        inconsistent or invalid contents.
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
    modules = dict(BUILTIN_MODULES)
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(
            f"custom_objects must be a dict of names to factories, got "
            f"{custom_objects!r}."
        )
    for name, cls in (custom_objects or {}).items():
        if not callable(cls) or (
            isinstance(cls, type) and not issubclass(cls, torch.nn.Module)
        ):
            raise TypeError(
                f"custom_objects[{name!r}] must be a torch.nn.Module subclass or "
                f"a function returning a module, got {cls!r}."
            )
        modules[name] = cls
    try:
        with zipfile.ZipFile(path) as archive:
            reader = _Reader(archive, path, modules)
            manifest = reader.manifest()
            entry = _get(manifest, "estimator", dict, "manifest")
            reader.check_sizes(entry)
            return reader.estimator(entry, prefix="")
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise ModelFileError(
            f"{path!r} is a truncated or corrupt skvdae model file ({error})."
        ) from error


# --------------------------------------------------------------------- writing


class _Writer:
    def __init__(self):
        self.arrays = {}
        self.weights = {}

    def estimator(self, estimator, prefix):
        entry = {
            "class": type(estimator).__name__,
            "params": {
                name: _encode(value, name)
                for name, value in estimator.get_params(deep=False).items()
            },
            "attributes": {},
            "arrays": {},
            "networks": {},
            "nested": [],
        }
        for name, value in estimator._get_model_state().items():
            if isinstance(value, np.ndarray):
                entry["arrays"][name] = self.array(prefix + name, value)
            elif isinstance(value, torch.nn.Module):
                entry["networks"][name] = self.network(prefix + name, value)
            elif _ESTIMATORS.get(type(value).__name__) is type(value):
                entry["nested"].append(name)
                entry[name] = self.estimator(value, prefix + name + ".")
            else:
                entry["attributes"][name] = _encode(value, name)
        return entry

    def array(self, key, value):
        if value.dtype.kind not in "fiub":
            raise TypeError(f"Cannot save the {value.dtype} array {key!r}.")
        self.arrays[key] = value
        return {"key": key, "shape": list(value.shape), "dtype": value.dtype.str}

    def network(self, key, module):
        kind = type(module).__name__
        if not hasattr(module, "get_config"):
            raise TypeError(
                f"Cannot save the network {key!r} of class {kind}: a module saved "
                "in a model file needs get_config() and from_config(config)."
            )
        name = f"{_WEIGHTS_DIR}{key}.pt"
        state = {
            k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()
        }
        architecture = {"class": kind, **module.get_config()}
        try:
            json.dumps(architecture)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Cannot save the network {key!r}: its architecture holds a value "
                f"that is not JSON ({error}); a network parameter's *_params may "
                "hold numbers, strings, booleans, None, lists, tuples and dicts."
            ) from error
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.weights[name] = buffer.getvalue()
        return {"file": name, "architecture": architecture}


def _encode(value, name):
    """A parameter or fitted scalar as JSON (tagged dicts for tuples and others)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, tuple | list | np.ndarray):
        items = [_encode(v, name) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, name) for k, v in value.items()}}
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
    if _is_factory(value):
        return {"__factory__": factory_name(value)}
    if _ESTIMATORS.get(type(value).__name__) is type(value) or _PARAMETER_CLASSES.get(
        type(value).__name__
    ) is type(value):
        return {
            "__estimator__": type(value).__name__,
            "params": {
                key: _encode(v, key) for key, v in value.get_params(deep=False).items()
            },
        }
    raise TypeError(
        f"Cannot save the parameter {name}={value!r} of type {type(value).__name__} "
        "in a skvdae model file."
    )


def _is_factory(value):
    """A network parameter's value: a module class or a function."""
    if isinstance(value, type):
        return issubclass(value, torch.nn.Module)
    return inspect.isfunction(value) or inspect.isbuiltin(value)


# --------------------------------------------------------------------- reading


class _Reader:
    def __init__(self, archive, path, modules):
        self.archive = archive
        self.path = path
        self.modules = modules
        self.infos = {info.filename: info for info in archive.infolist()}
        self._arrays = None

    def error(self, message):
        return ModelFileError(f"{self.path!r}: {message}")

    def info(self, name):
        if name not in self.infos:
            raise ModelFileError(f"{self.path!r} lacks the entry {name!r}.")
        return self.infos[name]

    def read(self, name, limit):
        """The bytes of an entry, refused when it inflates beyond ``limit``."""
        info = self.info(name)
        if info.file_size > limit:
            raise self.error(
                f"the entry {name!r} inflates to {info.file_size} bytes, more than "
                f"the {limit} its declared contents need."
            )
        with self.archive.open(info) as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise self.error(f"the entry {name!r} inflates beyond its declared size.")
        return data

    def manifest(self):
        if _MANIFEST not in self.infos:
            raise ModelFileError(
                f"{self.path!r} is not a skvdae model file (no {_MANIFEST})."
            )
        raw = self.read(_MANIFEST, MAX_MANIFEST_BYTES)
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except RecursionError:
            manifest = None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelFileError(
                f"{self.path!r} has an unreadable {_MANIFEST} ({error})."
            ) from error
        if manifest is None or _depth(manifest) > MAX_MANIFEST_DEPTH:
            raise self.error(
                f"{_MANIFEST} is nested deeper than {MAX_MANIFEST_DEPTH} levels."
            )
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

    # -- sizes ---------------------------------------------------------------

    def check_sizes(self, entry):
        """Refuse declared contents far beyond what the archive could hold."""
        declared = sum(
            _declared_bytes(array, self) + _HEADER_ALLOWANCE
            for array in _all_arrays(entry)
        )
        archive_bytes = sum(info.compress_size for info in self.infos.values())
        limit = MAX_INFLATION * archive_bytes + _INFLATION_ALLOWANCE
        if declared > limit:
            raise self.error(
                f"the manifest declares {declared} bytes of arrays, more than "
                f"{MAX_INFLATION} times the archive's {archive_bytes} bytes."
            )
        self._arrays_limit = declared + _HEADER_ALLOWANCE

    # -- arrays --------------------------------------------------------------

    def array(self, entry, what):
        if self._arrays is None:
            data = self.read(_ARRAYS, self._arrays_limit)
            try:
                self._arrays = zipfile.ZipFile(io.BytesIO(data))
            except zipfile.BadZipFile as error:
                raise self.error(f"{_ARRAYS} is unreadable ({error}).") from error
        key = _get(entry, "key", str, what)
        shape = tuple(_get(entry, "shape", list, what))
        dtype = _declared_dtype(entry, what, self)
        expected = _declared_bytes(entry, self)
        member = f"{key}.npy"
        try:
            info = self._arrays.getinfo(member)
        except KeyError:
            raise ModelFileError(f"{self.path!r} lacks the array {key!r}.") from None
        if info.file_size > expected + _HEADER_ALLOWANCE:
            raise self.error(
                f"array {key!r} inflates to {info.file_size} bytes, but the "
                f"manifest declares shape {shape} of {dtype}."
            )
        try:
            with self._arrays.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                read_header = _NPY_HEADER_READERS.get(version)
                if read_header is None:
                    raise self.error(f"array {key!r} has the .npy version {version}.")
                stored_shape, fortran, stored_dtype = read_header(stream)
                if stored_shape != shape:
                    raise self.error(
                        f"array {key!r} has shape {stored_shape}, but the manifest "
                        f"records {shape}."
                    )
                if stored_dtype != dtype:
                    raise self.error(
                        f"array {key!r} has the dtype {stored_dtype}, the manifest "
                        f"{dtype}."
                    )
                data = stream.read(expected + 1)
        except ModelFileError:
            raise
        except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
            raise self.error(f"{_ARRAYS} is unreadable ({error}).") from error
        if len(data) != expected:
            raise self.error(
                f"array {key!r} holds {len(data)} bytes, its shape {shape} needs "
                f"{expected}."
            )
        value = np.frombuffer(data, dtype=dtype).copy()
        return value.reshape(shape, order="F" if fortran else "C")

    # -- networks ------------------------------------------------------------

    def network(self, entry, what):
        name = _get(entry, "file", str, what)
        architecture = _get(entry, "architecture", dict, what)
        kind = _get(architecture, "class", str, what)
        cls = self.modules.get(kind)
        if cls is None:
            raise self.error(
                f"the network {what!r} is of class {kind!r}, which is not built "
                f"into skvdae; pass it as load_model(path, custom_objects="
                f"{{{kind!r}: {kind}}})."
            )
        config = {k: v for k, v in architecture.items() if k != "class"}
        # On the meta device nothing is allocated: a declared 8000-wide layer
        # costs nothing until its shape is compared with the stored weights.
        extra = {}
        if "modules" in inspect.signature(cls.from_config).parameters:
            extra["modules"] = self.modules
        try:
            with torch.device("meta"), torch.random.fork_rng(devices=[]):
                module = cls.from_config(config, **extra)
        except UnknownFactoryError as error:
            raise self.error(_unknown_factory(error.name, what)) from error
        except Exception as error:  # a user's factory may raise anything
            raise self.error(
                f"records an invalid network {what!r}: {architecture!r} ({error})."
            ) from error
        expected = module.state_dict()
        limit = _WEIGHTS_ALLOWANCE + sum(
            8 * t.numel() + _PER_TENSOR_ALLOWANCE for t in expected.values()
        )
        blob = self.read(name, limit)
        try:
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as error:  # any failure of the restricted unpickler
            raise ModelFileError(
                f"{self.path!r}: cannot read the weights {name!r} ({error})."
            ) from error
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise self.error(f"{name!r} is not a state_dict.")
        shapes = {k: tuple(v.shape) for k, v in expected.items()}
        stored = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != stored:
            raise self.error(
                f"the weights {name!r} do not fit the recorded architecture "
                f"(expected {shapes}, stored {stored})."
            )
        module = module.to(dtype=torch.float64).to_empty(device="cpu")
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

    # -- estimators ----------------------------------------------------------

    def estimator(self, entry, prefix):
        name = _get(entry, "class", str, "estimator entry")
        cls = _ESTIMATORS.get(name)
        if cls is None:
            raise ModelFileError(
                f"The model file holds an unknown estimator class {name!r}; this "
                f"skvdae ({__version__}) knows {', '.join(sorted(_ESTIMATORS))}."
            )
        estimator = cls(**_decode_params(entry.get("params"), cls, self.modules))
        try:
            estimator._validate_params()
        except ValueError as error:
            raise self.error(f"invalid {name} parameters ({error})") from error
        state = {}
        attributes = _get(entry, "attributes", dict, "estimator entry")
        for key, value in attributes.items():
            state[key] = _decode(value)
        for key, array in _get(entry, "arrays", dict, "estimator entry").items():
            state[key] = self.array(array, f"array {key}")
        for key, network in _get(entry, "networks", dict, "estimator entry").items():
            state[key] = self.network(network, key)
        for key in _nested_names(entry):
            state[key] = self.estimator(entry[key], prefix + key + ".")
        try:
            estimator._set_model_state(state)
        except ModelFileError:
            raise
        except (ValueError, TypeError, KeyError, np.linalg.LinAlgError) as error:
            raise self.error(f"invalid {name} state ({error})") from error
        return estimator


def _depth(value, limit=MAX_MANIFEST_DEPTH + 1):
    """Nesting depth of decoded JSON, counted up to ``limit``."""
    depth, level = 0, [value]
    while level and depth < limit:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def _nested_names(entry):
    """Names of nested estimator entries (older files do not list them)."""
    if "nested" in entry:
        names = _get(entry, "nested", list, "estimator entry")
    else:
        names = [
            k for k, v in entry.items() if k not in _SECTIONS and isinstance(v, dict)
        ]
    for name in names:
        if not isinstance(name, str) or not isinstance(entry.get(name), dict):
            raise ModelFileError(f"The model file lacks the nested entry {name!r}.")
    return names


def _all_arrays(entry):
    arrays = entry.get("arrays", {})
    if not isinstance(arrays, dict):
        raise ModelFileError("The model file's estimator entry has invalid arrays.")
    yield from arrays.values()
    for name in _nested_names(entry):
        yield from _all_arrays(entry[name])


def _declared_dtype(entry, what, reader):
    try:
        dtype = np.dtype(_get(entry, "dtype", str, what))
    except TypeError as error:
        raise reader.error(f"{what} has an invalid dtype ({error}).") from error
    if dtype.kind not in "fiub":
        raise reader.error(f"{what} has the non-numeric dtype {dtype}.")
    return dtype


def _declared_bytes(entry, reader):
    what = "array entry"
    shape = _get(entry, "shape", list, what)
    if not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise reader.error(f"an array has an invalid shape {shape!r}.")
    dtype = _declared_dtype(entry, what, reader)
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def _get(mapping, key, kind, what):
    if not isinstance(mapping, dict) or key not in mapping:
        raise ModelFileError(f"The model file's {what or 'manifest'} lacks {key!r}.")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ModelFileError(
            f"The model file's {what or 'manifest'} has an invalid {key!r}: {value!r}."
        )
    return value


def _unknown_factory(name, what):
    return (
        f"the {what!r} is built by {name!r}, which is not built into skvdae; "
        f"pass it as load_model(path, custom_objects={{{name!r}: {name}}})."
    )


def _decode(value, modules=None):
    if isinstance(value, list):
        return [_decode(v, modules) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode(v, modules) for v in value["__tuple__"])
    if "__dict__" in value and isinstance(value["__dict__"], dict):
        return {k: _decode(v, modules) for k, v in value["__dict__"].items()}
    if "__factory__" in value:
        name = value["__factory__"]
        factory = (modules or {}).get(name) if isinstance(name, str) else None
        if factory is None:
            raise ModelFileError(
                f"The model file's parameters name the network factory {name!r}, "
                "which is not built into skvdae; pass it as load_model(path, "
                f"custom_objects={{{name!r}: {name}}})."
            )
        return factory
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
        name = value["__estimator__"]
        cls = _ESTIMATORS.get(name) or _PARAMETER_CLASSES.get(name)
        if cls is None:
            raise ModelFileError(
                "The model file holds an unknown estimator class "
                f"{value['__estimator__']!r}."
            )
        return cls(**_decode_params(value.get("params"), cls, modules))
    raise ModelFileError(f"Unknown parameter encoding in the manifest: {value!r}.")


def _decode_params(params, cls, modules=None):
    if not isinstance(params, dict):
        raise ModelFileError("The model file's manifest lacks the parameters.")
    params = dict(params)
    # Parameters renamed since a file was written keep their old name there.
    for old, new in getattr(cls, "_renamed_params", {}).items():
        if old in params and new not in params:
            params[new] = params.pop(old)
    known = set(cls().get_params(deep=False))
    unknown = set(params) - known
    if unknown:
        raise ModelFileError(
            f"The model file sets unknown {cls.__name__} parameters {sorted(unknown)}."
        )
    return {name: _decode(value, modules) for name, value in params.items()}
