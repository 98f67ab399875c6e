"""skvdae: variational diffusion autoencoders for scikit-learn."""

from ._embedder import DiffusionMapEmbedder
from ._version import __version__

__all__ = ["DiffusionMapEmbedder", "__version__"]
