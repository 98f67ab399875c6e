"""The ``'exact'`` solver: sparse eigensolver, Nystrom extension to new points."""

import numpy as np

from ..graph import GaussianKernel, transition_rows
from ._base import (
    EmbeddingMap,
    Solver,
    SolverResult,
    check_eigenvalues,
    choose_n_components,
    leading_coordinates,
)

# Query points per block of the Nystrom extension, which bounds its memory.
_NYSTROM_CHUNK = 4096


def nystrom_extension(nn_index, X, kernel, log_weights, train_psi):
    """``sum_j p(x, x_j) psi(x_j)`` for new points ``x``: ``lambda psi(x)``.

    ``psi_k(x) = (1 / lambda_k) sum_j p(x, x_j) psi_k(x_j)``; the caller divides
    by ``lambda_k`` or, for the diffusion map, multiplies by ``lambda_k^(t - 1)``.
    ``log_weights`` is ``-alpha log q`` on the training set.
    """
    out = np.empty((X.shape[0], train_psi.shape[1]))
    for start in range(0, X.shape[0], _NYSTROM_CHUNK):
        chunk = slice(start, start + _NYSTROM_CHUNK)
        rows = transition_rows(nn_index, X[chunk], kernel, log_weights)
        out[chunk] = rows @ train_psi
    return out


class NystromMap(EmbeddingMap):
    """``Psi_t(x) = lambda^(t - 1) sum_j p(x, x_j) psi(x_j)`` over the training set.

    Parameters
    ----------
    nn_index : NeighborIndex
        Index of the training samples (the samples in the graph).
    kernel : GaussianKernel
    log_weights : ndarray of shape (n_train,)
        ``-alpha log q`` of the training samples.
    train_psi : ndarray of shape (n_train, n_components)
        The eigenvectors on the training samples.
    eigenvalues : ndarray of shape (n_components,)
    diffusion_time : float
    """

    state_names = ("_nn_index", "_train_psi", "_log_weights", "_kernel_radius")

    def __init__(
        self, nn_index, kernel, log_weights, train_psi, eigenvalues, diffusion_time
    ):
        self.nn_index = nn_index
        self.kernel = kernel
        self.log_weights = log_weights
        self.train_psi = train_psi
        self.scaling = eigenvalues ** (diffusion_time - 1.0)

    def transform(self, X):
        propagated = nystrom_extension(
            self.nn_index, X, self.kernel, self.log_weights, self.train_psi
        )
        return propagated * self.scaling

    def get_state(self):
        return {
            "_nn_index": self.nn_index.data_,
            "_train_psi": self.train_psi,
            "_log_weights": self.log_weights,
            "_kernel_radius": self.kernel.radius,
        }

    @classmethod
    def from_state(
        cls, state, *, n_features, eigenvalues, diffusion_time, bandwidth, make_index
    ):
        missing = [name for name in cls.state_names if state.get(name) is None]
        if missing:
            raise ValueError(f"the Nystrom state of an exact embedder lacks {missing}")
        X = np.asarray(state["_nn_index"], dtype=np.float64)
        n_train, n_components = X.shape[0], eigenvalues.shape[0]
        _check_array(X, (n_train, n_features), "_nn_index")
        _check_array(state["_train_psi"], (n_train, n_components), "_train_psi")
        _check_array(state["_log_weights"], (n_train,), "_log_weights")
        radius = state["_kernel_radius"]
        if not isinstance(radius, float) or not np.isfinite(radius) or radius <= 0:
            raise ValueError(f"invalid _kernel_radius {radius!r}")
        kernel = GaussianKernel.with_radius(bandwidth, radius)
        return cls(
            make_index(X),
            kernel,
            np.asarray(state["_log_weights"], dtype=np.float64),
            np.asarray(state["_train_psi"], dtype=np.float64),
            eigenvalues,
            diffusion_time,
        )


def _check_array(value, shape, name):
    value = np.asarray(value)
    if value.shape != shape or not np.all(np.isfinite(value)):
        raise ValueError(
            f"{name} has shape {value.shape}, expected {shape}, with finite values"
        )


class ExactSolver(Solver):
    """Leading eigenvectors of the graph by a sparse eigensolver (seeded)."""

    name = "exact"
    map_class = NystromMap

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    @classmethod
    def from_params(cls, params):
        return cls(alpha=params["alpha"])

    def solve(
        self,
        X,
        nn_index,
        graph,
        *,
        n_components,
        diffusion_time,
        random_state,
        report,
        fold_neighbors=10,
    ):
        psi, eigenvalues, n_solves = leading_coordinates(
            graph, n_components, random_state
        )
        chosen = choose_n_components(
            n_components, psi, eigenvalues, graph, X, diffusion_time, fold_neighbors
        )
        psi = psi[:, :chosen]
        eigenvalues = check_eigenvalues(eigenvalues[:chosen], graph, diffusion_time)
        embedding_map = NystromMap(
            nn_index,
            graph.kernel,
            -self.alpha * graph.log_kernel_density,
            psi,
            eigenvalues,
            diffusion_time,
        )
        return SolverResult(
            map=embedding_map,
            eigenvalues=eigenvalues,
            n_iter=max(n_solves, 1),
            loss_curve=np.empty(0),
            train_embedding=psi * eigenvalues**diffusion_time,
        )
