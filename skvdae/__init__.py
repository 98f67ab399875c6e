"""skvdae: variational diffusion autoencoders for scikit-learn."""

from ._embedder import DiffusionMapEmbedder
from ._sampler import VDAESampler
from ._version import __version__
from .io import ModelFileError, load_model, save_model
from .metrics import BiLipschitzScore, bilipschitz_constants

__all__ = [
    "BiLipschitzScore",
    "DiffusionMapEmbedder",
    "ModelFileError",
    "VDAESampler",
    "__version__",
    "bilipschitz_constants",
    "load_model",
    "save_model",
]
