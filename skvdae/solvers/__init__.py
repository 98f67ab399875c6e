"""Solvers of the diffusion map and their out-of-sample maps.

``SOLVERS`` maps the ``solver`` parameter of
:class:`~skvdae.DiffusionMapEmbedder` to a :class:`Solver` class:

- ``'exact'`` (:class:`ExactSolver`): a sparse eigensolver, one connected
  component at a time; new points by the Nystrom extension
  (:class:`NystromMap`).
- ``'spectralnet'`` (:class:`SpectralNetSolver`): a network trained on
  minibatches of graph edges so that its outputs are the eigenvectors; new
  points by one forward pass (:class:`NetworkMap`).

Both end with the same Rayleigh-Ritz step (:func:`diffusion_coordinates`).
A new solver is one module with a :class:`Solver` subclass and its
:class:`EmbeddingMap`, plus an entry here.
"""

from ._base import EmbeddingMap, Solver, SolverResult
from ._eigen import top_eigenvectors
from ._exact import ExactSolver, NystromMap, nystrom_extension
from ._rayleigh_ritz import HARMONIC_THRESHOLD as HARMONIC_THRESHOLD
from ._rayleigh_ritz import MAX_GEOMETRIC_COMPONENTS as MAX_GEOMETRIC_COMPONENTS
from ._rayleigh_ritz import (
    auto_n_components,
    diffusion_coordinates,
    diffusion_pencil,
    folded_samples,
    harmonic_residuals,
    rayleigh_ritz_without_constant,
    sign_fixing_signs,
)
from ._spectralnet import NetworkMap, SpectralNetSolver

SOLVERS = {solver.name: solver for solver in (SpectralNetSolver, ExactSolver)}

__all__ = [
    "EmbeddingMap",
    "ExactSolver",
    "NetworkMap",
    "NystromMap",
    "Solver",
    "SolverResult",
    "SpectralNetSolver",
    "auto_n_components",
    "diffusion_coordinates",
    "diffusion_pencil",
    "folded_samples",
    "harmonic_residuals",
    "nystrom_extension",
    "rayleigh_ritz_without_constant",
    "sign_fixing_signs",
    "top_eigenvectors",
]
