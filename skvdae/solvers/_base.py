"""What every solver of the diffusion map is and returns.

A solver turns the kernel graph of a training set into an out-of-sample map
``x -> Psi_t(x)`` (an :class:`EmbeddingMap`) and the eigenvalues. The
estimator holds the map and never asks which solver made it. A map says what
it saves in a model file (:meth:`EmbeddingMap.get_state`) and is rebuilt from
that (:meth:`EmbeddingMap.from_state`).

Adding a solver: a module with a :class:`Solver` subclass and its map class,
and one entry in ``skvdae.solvers.SOLVERS``.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from ..graph import KERNEL_CUTOFF
from ._eigen import top_eigenvectors
from ._rayleigh_ritz import (
    MAX_GEOMETRIC_COMPONENTS,
    auto_n_components,
    diffusion_coordinates,
)


class EmbeddingMap:
    """The fitted diffusion map ``Psi_t``, applicable to new points.

    Attributes
    ----------
    n_features_in_ : int
    n_components_ : int
    """

    #: Names of the model-file entries of this map (``get_state``'s keys).
    state_names = ()

    def transform(self, X):
        """``Psi_t(X)`` as a float64 array of shape (n_samples, n_components)."""
        raise NotImplementedError

    def get_state(self):
        """The map's state for a model file: a dict of arrays, modules, scalars."""
        raise NotImplementedError

    @classmethod
    def from_state(
        cls, state, *, n_features, eigenvalues, diffusion_time, bandwidth, make_index
    ):
        """Rebuild the map from :meth:`get_state`'s entries.

        ``make_index(X)`` returns a fitted neighbour index of ``X``, for maps
        that query the training data.

        Raises ``ValueError`` naming the entry that is missing or inconsistent.
        """
        raise NotImplementedError


@dataclass
class SolverResult:
    """What :meth:`Solver.solve` returns.

    Attributes
    ----------
    map : EmbeddingMap
    eigenvalues : ndarray of shape (n_components,)
        ``lambda_1 >= ... >= lambda_D``, the constant dropped.
    n_iter : int
        Training steps, or linear solves of the eigensolver.
    loss_curve : ndarray
    train_embedding : ndarray of shape (n_samples, n_components) or None
        ``Psi_t`` of the training samples when the solver has it at hand.
    """

    map: EmbeddingMap
    eigenvalues: np.ndarray
    n_iter: int
    loss_curve: np.ndarray
    train_embedding: np.ndarray = None


class Solver:
    """Computes the diffusion map of a graph; subclasses set ``name``.

    Built from the estimator's parameters by :meth:`from_params`, which takes
    the ones it needs.
    """

    name = None
    map_class = EmbeddingMap

    @classmethod
    def from_params(cls, params):
        return cls()

    @property
    def n_steps(self):
        """Training steps, the leaves of the fit's callback task tree."""
        return 0

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
        """Fit on the inliers ``X`` and their ``graph``; returns a SolverResult.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training samples in the graph, float64.
        nn_index : NeighborIndex
            Index fitted on ``X``.
        graph : DiffusionGraph
        n_components : int or 'auto'
        diffusion_time : float
        random_state : numpy.random.RandomState
        report : callable
            ``report(name, max_iter) -> FitProgress`` for training loops.
        fold_neighbors : int, default=10
            Latent neighbours per sample of the fold test of
            ``n_components='auto'``.
        """
        raise NotImplementedError


def n_candidates(graph, n_components):
    """Coordinates to compute before ``n_components='auto'`` chooses."""
    if n_components != "auto":
        return n_components
    wanted = graph.n_connected_components - 1 + MAX_GEOMETRIC_COMPONENTS
    return max(1, min(wanted, graph.inliers.size - 2))


def leading_coordinates(graph, n_components, random_state):
    """Exact leading coordinates of the graph: ``(psi, eigenvalues, n_solves)``.

    With ``n_components='auto'`` enough candidates for the rule.
    """
    count = n_candidates(graph, n_components)
    vectors, _, n_solves = top_eigenvectors(graph, count + 1, random_state)
    _, _, eigenvalues, psi = diffusion_coordinates(vectors, graph, count)
    return psi, eigenvalues, n_solves


def choose_n_components(
    n_components, psi, eigenvalues, graph, X, diffusion_time, fold_neighbors
):
    """``n_components``, or the ``'auto'`` rule's choice from the spectrum.

    ``X`` (the samples of the graph), ``diffusion_time`` and
    ``fold_neighbors`` feed its fold test.
    """
    if n_components != "auto":
        return n_components
    return auto_n_components(
        psi,
        eigenvalues,
        graph.n_connected_components,
        X=X,
        # The largest truncation radius, not the graph's (which follows the
        # data): a latent neighbour is folded when no kernel would join it.
        radius=np.sqrt(KERNEL_CUTOFF * graph.bandwidth),
        diffusion_time=diffusion_time,
        n_neighbors=fold_neighbors,
        component_labels=graph.component_labels,
    )


def check_eigenvalues(eigenvalues, graph, diffusion_time):
    """The eigenvalues, checked; warns when ``lambda^t`` erases coordinates.

    Eigenvalues of a Markov matrix lie in ``[-1, 1]``; the diffusion
    coordinates need them positive. A ``ValueError`` says which failed and
    what to change: a flat kernel (a bandwidth far above the neighbour
    distances) has a single non-zero eigenvalue, too few coordinates for the
    request.
    """
    if not np.all(np.isfinite(eigenvalues)) or np.any(eigenvalues > 1.0 + 1e-6):
        raise ValueError(
            f"The computed eigenvalues {eigenvalues} are not all in [-1, 1], "
            "which a Markov matrix's are: the solver failed (for SpectralNet, "
            "try solver='exact' or a larger max_iter)."
        )
    if eigenvalues[-1] <= 0.0:
        if graph.flat:
            advice = (
                f"the kernel of bandwidth {graph.bandwidth:.3g} is nearly flat; "
                "use a smaller bandwidth (or 'auto')"
            )
        else:
            advice = "reduce n_components or enlarge the bandwidth"
        raise ValueError(
            f"The {eigenvalues.size} leading non-trivial eigenvalues are not all "
            f"positive ({eigenvalues}): {advice}."
        )
    weights = eigenvalues**diffusion_time
    if weights[-1] < 1e-12 * max(weights[0], np.finfo(float).tiny):
        warnings.warn(
            f"diffusion_time={diffusion_time:g} weights the diffusion coordinates "
            f"by lambda^t from {weights[0]:.3g} down to {weights[-1]:.3g} "
            f"(eigenvalues {np.array2string(eigenvalues, precision=4)}): "
            "coordinates that small carry nothing. Use a smaller diffusion_time "
            "or fewer n_components.",
            UserWarning,
            stacklevel=4,
        )
    return eigenvalues
