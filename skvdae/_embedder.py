"""DiffusionMapEmbedder: the diffusion map as a scikit-learn transformer."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._exact import nystrom_extension, top_eigenvectors
from ._graph import build_diffusion_graph, fit_neighbor_index, locality_order
from ._model_file import SafeModelFileMixin
from ._nn import ACTIVATIONS
from ._random import check_private_random_state
from ._spectral import (
    MAX_GEOMETRIC_COMPONENTS,
    auto_n_components,
    diffusion_coordinates,
)
from ._spectralnet import hidden_features, train_spectralnet
from ._torch_utils import (
    VALID_DEVICES,
    predict_numpy,
    resolve_device,
    seed_from,
)


class DiffusionMapEmbedder(
    SafeModelFileMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Diffusion map of the data, learned by a network (SpectralNet) or solved exactly.

    The diffusion map at time ``t`` sends a point to
    ``Psi_t(x) = (lambda_1^t psi_1(x), ..., lambda_D^t psi_D(x))``, where
    ``psi_k`` are the right eigenvectors of the Markov matrix of a Gaussian kernel
    graph normalised by the density to the power ``alpha`` (``alpha = 1``:
    Laplace-Beltrami, independent of the sampling density). Euclidean distance
    between diffusion coordinates is the diffusion distance at time ``t``.

    With ``solver='spectralnet'`` a neural network is trained on minibatches of
    graph edges so that its outputs are the diffusion coordinates themselves:
    ``transform`` of new points is one forward pass. ``solver='exact'`` uses a
    sparse eigensolver and extends to new points by the Nystrom formula; it is
    the reference for accuracy and the fastest choice for small data.

    Parameters
    ----------
    n_components : int or 'auto', default='auto'
        Number of diffusion coordinates ``D`` (the constant eigenvector is
        always dropped). ``'auto'`` chooses it from the spectrum: one
        coordinate per connected component beyond the first (they separate the
        clusters), then the shortest run of leading coordinates that holds
        every one that is not a harmonic of those before it (a local linear
        regression test), completed to its near-degenerate multiplet and
        capped at 10 beyond the components; see the user guide. A circle gets
        2, a sphere 3, 25 separate clusters at least 24. The number chosen is
        ``n_components_``.
    n_neighbors : int, default=10
        Neighbour rank used by ``bandwidth='auto'``.
    bandwidth : 'auto' or float, default='auto'
        Kernel scale ``eps`` in ``exp(-|x - y|^2 / eps)``. ``'auto'``: edges of
        the minimum spanning forest of the ``n_neighbors``-nearest-neighbour
        graph longer than 3 times the ``n_neighbors``-th neighbour distance at
        their nearer end are gaps; cutting them leaves groups, and groups of
        fewer than 5 samples are outliers. ``eps`` is the 99% quantile of the
        squared ``n_neighbors``-th neighbour distance over the other samples,
        enlarged only where an edge inside a group would otherwise fall below
        a kernel weight of ``exp(-6)``. Outliers and gaps never enter it: one
        far point does not flatten the kernel of the rest, and clusters whose
        gaps are much longer than their neighbour distances stay separate
        components. The kernel is truncated where it falls below ``exp(-12)``,
        a radius, never a fixed neighbour count. Connected components of the
        kernel graph with fewer than 5 samples (for any bandwidth) are
        outliers: they are left out of the diffusion map
        (``component_labels_ == -1``).
    alpha : float, default=1.0
        Density normalisation in ``[0, 1]``: 0 graph Laplacian, 0.5
        Fokker-Planck, 1 Laplace-Beltrami.
    diffusion_time : float, default=1.0
        ``t``; 0 gives the plain eigenfunctions.
    solver : {'spectralnet', 'exact'}, default='spectralnet'
        How the eigenvectors are computed.
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Hidden layers of the SpectralNet network.
    activation : {'tanh', 'relu', 'silu', 'softplus'}, default='tanh'
        Activation of the hidden layers.
    batch_size : int, default=2048
        Graph edges per SpectralNet step.
    max_iter : int, default=500
        SpectralNet optimisation steps.
    learning_rate : float, default=3e-3
        Adam step size.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where SpectralNet trains; ``'auto'`` takes CUDA when available.
        Inference (``transform``) always runs on a float64 CPU copy.
    random_state : int, RandomState instance or None, default=None
        Seeds the eigensolver's start vector, the network initialisation and the
        edge sampling. Global random states are never touched.
    verbose : int, default=0
        Print training progress when positive.

    Attributes
    ----------
    n_components_ : int
        The number of diffusion coordinates ``D``.
    eigenvalues_ : ndarray of shape (n_components_,)
        ``lambda_1 >= ... >= lambda_D`` of the Markov matrix (constant dropped).
    bandwidth_ : float
        The kernel scale used.
    n_connected_components_ : int
        Connected components of the kernel graph, outliers left out. Each adds
        an eigenvalue 1, whose eigenvector separates the components.
    component_labels_ : ndarray of shape (n_samples,)
        The component of each training sample, ``0 ..
        n_connected_components_ - 1``, or ``-1`` for an outlier.
    n_outliers_ : int
        Training samples left out of the diffusion map: those in connected
        components of fewer than 5 samples. They are embedded like new points.
    n_iter_ : int
        SpectralNet steps taken, or for ``'exact'`` the number of linear solves
        of the shift-invert eigensolver (1 for a dense eigendecomposition).
    network_ : torch.nn.Module or None
        The trained network (float64, CPU); its output is the diffusion map.
        ``None`` for ``solver='exact'``.
    loss_curve_ : ndarray of shape (n_iter_,)
        SpectralNet loss (sum of the batch's Rayleigh quotients) per step; empty
        for ``'exact'``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.manifold.SpectralEmbedding : Laplacian eigenmaps on a kNN graph,
        without density normalisation or out-of-sample extension.
    VDAESampler : Generative model built on top of this embedding.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae import DiffusionMapEmbedder
    >>> theta = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    >>> X = np.c_[np.cos(theta), np.sin(theta)]
    >>> embedder = DiffusionMapEmbedder(n_components=2, solver="exact", random_state=0)
    >>> Z = embedder.fit_transform(X)
    >>> Z.shape
    (400, 2)
    >>> bool(abs(embedder.eigenvalues_[0] - embedder.eigenvalues_[1]) < 1e-6)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "bandwidth": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "diffusion_time": [Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions({"spectralnet", "exact"})],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "device": [StrOptions(set(VALID_DEVICES))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        n_neighbors=10,
        bandwidth="auto",
        alpha=1.0,
        diffusion_time=1.0,
        solver="spectralnet",
        hidden_layer_sizes=(64, 64),
        activation="tanh",
        batch_size=2048,
        max_iter=500,
        learning_rate=3e-3,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.bandwidth = bandwidth
        self.alpha = alpha
        self.diffusion_time = diffusion_time
        self.solver = solver
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the diffusion map of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense, finite).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._fit(X, return_embedding=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit and return the diffusion coordinates of the training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Diffusion coordinates, with the dtype of ``X`` (float32 or float64).
        """
        return self._fit(X)

    def transform(self, X):
        """Diffusion coordinates of new points.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to embed.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            ``Psi_t(X)``, with the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._embed(X.astype(np.float64, copy=False)).astype(X.dtype, copy=False)

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _fit(self, X, return_embedding=True):
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        output_dtype = X.dtype
        X = X.astype(np.float64, copy=False)
        self._check_fit_data(X)
        random_state = check_private_random_state(self.random_state)

        order = locality_order(X)
        X = X[order]
        nn_index = fit_neighbor_index(X)
        graph = build_diffusion_graph(
            X, nn_index, self.n_neighbors, self.bandwidth, self.alpha
        )
        labels = np.full(X.shape[0], -1, dtype=np.intp)
        labels[graph.inliers] = graph.component_labels
        X_all = X
        if graph.inliers.size < X.shape[0]:
            X = X[graph.inliers]
            nn_index = fit_neighbor_index(X)
        self._check_graph(graph)
        if self.solver == "exact":
            psi, eigenvalues = self._fit_exact(graph, random_state)
            self._nn_index = nn_index
            self._kernel_radius = graph.radius
            self._log_weights = -self.alpha * graph.log_kernel_density
            self._train_psi = psi
            train_embedding = psi * self._time_scaling(eigenvalues)
        else:
            self._fit_spectralnet(X, graph, random_state)
            eigenvalues = self.eigenvalues_
            self._nn_index = self._train_psi = self._log_weights = None
            train_embedding = None
        self.bandwidth_ = graph.bandwidth
        self.n_connected_components_ = graph.n_connected_components
        original_rows = np.empty_like(order)
        original_rows[order] = np.arange(order.size)
        self.component_labels_ = labels[original_rows]
        self.n_outliers_ = int(np.sum(labels < 0))
        if self.verbose:
            print(
                f"[DiffusionMapEmbedder] bandwidth {graph.bandwidth:.3e}, "
                f"{graph.affinity.nnz / graph.inliers.size:.1f} edges per sample, "
                f"{graph.n_connected_components} component(s), "
                f"{self.n_outliers_} outlier(s), {self.n_components_} "
                f"coordinate(s), eigenvalues "
                f"{np.array2string(eigenvalues, precision=6)}"
            )
        if not return_embedding:
            return None
        if train_embedding is None:
            train_embedding = predict_numpy(self.network_, X)
        embedding = np.empty((X_all.shape[0], self.n_components_))
        embedding[graph.inliers] = train_embedding
        outliers = labels < 0
        if outliers.any():
            # Outliers are not in the graph: they are embedded as new points.
            embedding[outliers] = self._embed(X_all[outliers])
        return embedding[original_rows].astype(output_dtype, copy=False)

    def _check_fit_data(self, X):
        n_samples = X.shape[0]
        if np.ptp(X, axis=0).max() == 0.0:
            raise ValueError(
                "All samples in X are identical: a diffusion map needs at least two "
                "distinct points."
            )
        if self.n_neighbors >= n_samples:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must be smaller than n_samples="
                f"{n_samples}."
            )
        if self.n_components != "auto" and self.n_components >= n_samples - 1:
            raise ValueError(
                f"n_components={self.n_components} must be smaller than n_samples - 1 "
                f"= {n_samples - 1} (the constant eigenvector is dropped)."
            )
        resolve_device(self.device)
        if self.solver == "spectralnet":
            sizes = np.asarray(self.hidden_layer_sizes)
            if sizes.ndim != 1 or sizes.size == 0 or np.any(sizes < 1):
                raise ValueError(
                    "hidden_layer_sizes must be a non-empty sequence of positive "
                    f"integers, got {self.hidden_layer_sizes!r}."
                )

    def _check_graph(self, graph):
        n_inliers = graph.inliers.size
        if self.n_components != "auto" and self.n_components >= n_inliers - 1:
            raise ValueError(
                f"n_components={self.n_components} must be smaller than the "
                f"number of samples outside outlier groups less one, "
                f"{n_inliers - 1}."
            )

    def _n_candidates(self, graph):
        """Coordinates to compute before ``n_components='auto'`` chooses."""
        if self.n_components != "auto":
            return self.n_components
        wanted = graph.n_connected_components - 1 + MAX_GEOMETRIC_COMPONENTS
        return max(1, min(wanted, graph.inliers.size - 2))

    def _leading_coordinates(self, graph, random_state):
        """Exact leading coordinates: ``(psi, eigenvalues, n_solves)``."""
        n_candidates = self._n_candidates(graph)
        vectors, _, n_solves = top_eigenvectors(graph, n_candidates + 1, random_state)
        _, _, eigenvalues, psi = diffusion_coordinates(vectors, graph, n_candidates)
        return psi, eigenvalues, n_solves

    def _choose_n_components(self, psi, eigenvalues, graph):
        if self.n_components != "auto":
            return self.n_components
        return auto_n_components(psi, eigenvalues, graph.n_connected_components)

    def _fit_exact(self, graph, random_state):
        psi, eigenvalues, n_solves = self._leading_coordinates(graph, random_state)
        n_components = self._choose_n_components(psi, eigenvalues, graph)
        psi, eigenvalues = psi[:, :n_components], eigenvalues[:n_components]
        self.n_components_ = n_components
        self._set_eigenvalues(eigenvalues)
        self.n_iter_ = max(n_solves, 1)
        self.network_ = None
        self.loss_curve_ = np.empty(0)
        return psi, eigenvalues

    def _fit_spectralnet(self, X, graph, random_state):
        if self.n_components == "auto":
            psi, eigenvalues, _ = self._leading_coordinates(graph, random_state)
            n_components = self._choose_n_components(psi, eigenvalues, graph)
        else:
            n_components = self.n_components
        self.n_components_ = n_components
        network, n_iter, losses = train_spectralnet(
            X,
            graph,
            n_outputs=n_components + 1,
            hidden_layer_sizes=[int(size) for size in self.hidden_layer_sizes],
            activation=self.activation,
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            device=resolve_device(self.device),
            seed=seed_from(random_state),
            verbose=self.verbose,
        )
        features, network = hidden_features(network, X)
        try:
            coef, offset, eigenvalues, _ = diffusion_coordinates(
                features, graph, n_components
            )
        except np.linalg.LinAlgError as error:
            raise ValueError(
                "SpectralNet's features collapsed: "
                f"{error}. Increase hidden_layer_sizes or max_iter."
            ) from error
        self._set_eigenvalues(eigenvalues)
        scaling = self._time_scaling(eigenvalues)
        network.set_head(coef * scaling, offset * scaling)
        self.network_ = network
        self.n_iter_ = n_iter
        self.loss_curve_ = losses

    def _set_eigenvalues(self, eigenvalues):
        if not np.all(np.isfinite(eigenvalues)) or eigenvalues[-1] <= 0.0:
            raise ValueError(
                f"The {eigenvalues.size} leading non-trivial eigenvalues are not all "
                f"positive ({eigenvalues}); reduce n_components or enlarge the "
                "bandwidth."
            )
        self.eigenvalues_ = eigenvalues

    def _time_scaling(self, eigenvalues):
        return eigenvalues**self.diffusion_time

    def _embed(self, X):
        if self.network_ is not None:
            return predict_numpy(self.network_, X)
        propagated = nystrom_extension(
            self._nn_index,
            X,
            self.bandwidth_,
            self._kernel_radius,
            self._log_weights,
            self._train_psi,
        )
        return propagated * self.eigenvalues_ ** (self.diffusion_time - 1.0)
