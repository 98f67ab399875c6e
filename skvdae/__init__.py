"""skvdae: variational diffusion autoencoders for scikit-learn."""

from ._embedder import DiffusionMapEmbedder
from ._version import __version__
from .metrics import BiLipschitzScore, bilipschitz_constants

__all__ = [
    "BiLipschitzScore",
    "DiffusionMapEmbedder",
    "__version__",
    "bilipschitz_constants",
]
