"""Safe model files: :func:`save_model`, :func:`load_model`, :class:`ModelFileError`.

The format, its limits and the registry of estimator classes live in
``skvdae.io._format``; each estimator declares its own fitted state.
"""

from ._format import FORMAT_NAME as FORMAT_NAME
from ._format import FORMAT_VERSION as FORMAT_VERSION
from ._format import (
    ModelFileError,
    load_model,
    register_estimator,
    save_model,
)
from ._mixin import SafeModelFileMixin

__all__ = [
    "ModelFileError",
    "SafeModelFileMixin",
    "load_model",
    "register_estimator",
    "save_model",
]
