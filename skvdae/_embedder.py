"""DiffusionMapEmbedder: the diffusion map as a scikit-learn transformer."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._random import check_private_random_state
from ._validation import (
    LAYER_SIZES,
    SHARED_CONSTRAINTS,
    check_data,
    check_layer_sizes,
)
from .distributed import Communicator
from .graph import (
    KERNEL_CUTOFF,
    NeighborIndex,
    build_diffusion_graph,
    locality_order,
    max_edges_per_sample,
)
from .io import SafeModelFileMixin, register_estimator
from .nn import (
    CallbackSupportMixin,
    FitProgress,
    check_module_params,
    resolve_device,
)
from .nn._callbacks import close_fit_context, open_fit_context
from .solvers import SOLVERS

#: In a data-parallel fit, ``n_components='auto'`` is chosen on a seeded
#: subsample of this many samples.
AUTO_SUBSAMPLE = 10_000


@register_estimator
class DiffusionMapEmbedder(
    SafeModelFileMixin,
    CallbackSupportMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
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
        capped at 20 beyond the components; then more coordinates while
        they fold at least 5 samples (a sample's ``bandwidth_neighbors``
        nearest samples in the coordinates include one that the kernel graph
        does not join to it); see the user guide. A circle gets 2, a sphere
        3, 25 separate clusters at least 24. The number chosen is
        ``n_components_``. With ``solver='spectralnet'`` on more than
        10,000 samples, and in a data-parallel fit (several processes, see
        ``world_size_``), the coordinates beyond the component ones are
        chosen on an exact fit of a seeded subsample of 10,000 samples: the
        rule needs exact eigenvectors, which cost more than SpectralNet's
        training on the whole graph (and which no process holds).
    bandwidth_neighbors : int, default=10
        Neighbour rank ``k`` used by ``bandwidth='auto'`` (the kernel graph
        itself is truncated by a radius, not by a neighbour count), and the
        latent neighbours per sample of the fold test of
        ``n_components='auto'``.
    n_neighbors : int, default='deprecated'
        Former name of ``bandwidth_neighbors``, which it sets with a
        ``FutureWarning``; removed in 0.3.
    bandwidth : 'auto' or float, default='auto'
        Kernel scale ``eps`` in ``exp(-|x - y|^2 / eps)``. ``'auto'``: edges of
        the minimum spanning forest of the ``k``-nearest-neighbour graph
        longer than 3 times the ``k``-th neighbour distance at their nearer
        end are gaps; cutting them leaves groups, and groups of fewer than 5
        samples are outliers. ``eps`` is the 99% quantile of the squared
        ``k``-th neighbour distance over the other samples,
        enlarged only where an edge inside a group would otherwise fall below
        a kernel weight of ``exp(-6)``. Outliers and gaps never enter it: one
        far point does not flatten the kernel of the rest, and clusters whose
        gaps are much longer than their neighbour distances stay separate
        components. The kernel is truncated at a radius, never a fixed
        neighbour count: where it falls below ``exp(-c)``, ``c`` the smallest
        cutoff that keeps all but 0.1% of the kernel mass of 99% of the
        samples, between 6 and 12 (``kernel_cutoff_``, for any bandwidth).
        Connected components of the kernel graph with fewer than 5 samples
        (for any bandwidth) are outliers: they are left out of the diffusion
        map (``component_labels_ == -1``).
    max_edges_per_sample : int or 'auto', default='auto'
        A bound on the mean number of kernel neighbours per sample of the
        ``'auto'`` bandwidth's graph, which bounds its memory (8 bytes an
        entry on large data). When the rule's scale would exceed it, the
        bandwidth is lowered to the largest one within it
        (``bandwidth_bound_``). ``'auto'``: ``max(64, 2**27 / n_samples)``, a
        graph of at most about 1 GiB; it binds only beyond about 10^5 samples.
        A float ``bandwidth`` is never changed. One bandwidth serves all the
        data: where the density varies a lot, the bound can leave the sparse
        parts without neighbours (outliers and small components), which a
        ``UserWarning`` reports (see :func:`skvdae.graph.isolated_share`).
    neighbors : None, 'auto' or object, default=None
        The neighbour search behind the bandwidth rule, the kernel graph and
        the Nystrom extension. ``None`` or ``'auto'``: exact search (a
        KD-tree in low dimension), except on 50,000 or more samples of more
        than 12 features where ``n_samples**2 * n_features`` is at least
        5e11 (10^5 samples of 50 features), when faiss is installed (``pip
        install skvdae[ann]``): then approximate search,
        :class:`~skvdae.graph.HNSWNeighbors`. Or an unfitted object with the
        methods ``fit`` and ``kneighbors`` of
        :class:`sklearn.neighbors.NearestNeighbors`, e.g.
        ``NearestNeighbors(algorithm="brute", n_jobs=-1)`` or
        ``HNSWNeighbors()``; it is cloned. Without ``radius_neighbors`` the
        kernel's pairs come from candidate lists of at most
        ``max_edges_per_sample`` neighbours per sample, and
        ``dropped_kernel_mass_`` reports the kernel mass this misses.
    alpha : float, default=1.0
        Density normalisation in ``[0, 1]``: 0 graph Laplacian, 0.5
        Fokker-Planck, 1 Laplace-Beltrami.
    diffusion_time : float, default=1.0
        ``t``; 0 gives the plain eigenfunctions.
    solver : {'spectralnet', 'exact'}, default='spectralnet'
        How the eigenvectors are computed.
    network : None, torch.nn.Module subclass or callable, default=None
        SpectralNet's feature map, for ``solver='spectralnet'``. ``None``: an
        :class:`~skvdae.nn.MLP` with ``hidden_layer_sizes`` and
        ``activation``. Otherwise built at ``fit`` as ``network(n_features_in_,
        hidden_layer_sizes[-1], **network_params)``: a module mapping a batch of
        standardised inputs ``(n, n_features_in_)`` to features ``(n,
        hidden_layer_sizes[-1])``, e.g. :class:`~skvdae.nn.ConvEncoder` for
        images. The library's own linear head on top of it is fitted by
        Rayleigh-Ritz, so that the output is the diffusion map. Its shapes are
        checked when it is built. A model file names the factory; load it
        with ``load_model(path, custom_objects={name: network})`` unless it is
        one of :mod:`skvdae.nn`'s.
    network_params : dict or None, default=None
        Keyword arguments of ``network``, e.g. ``{"image_shape": (1, 28, 28)}``.
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Hidden layers of the default SpectralNet network; its last entry is the
        width of the features of a custom ``network``.
    activation : {'tanh', 'relu', 'silu', 'softplus'}, default='tanh'
        Activation of the default network's hidden layers.
    batch_size : int, default=2048
        Graph edges per SpectralNet step.
    max_iter : int, default=500
        SpectralNet optimisation steps.
    learning_rate : float, default=3e-3
        Adam step size.
    tol : float or None, default=None
        SpectralNet early stopping: training ends once the mean loss over
        windows of 50 steps has not improved by a relative ``tol`` for
        ``n_iter_no_change`` windows in a row (a ``ConvergenceWarning`` when
        ``max_iter`` comes first). ``None`` always takes ``max_iter`` steps.
    n_iter_no_change : int, default=10
        Windows without improvement before stopping, with ``tol``.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where SpectralNet trains; ``'auto'`` takes CUDA when available.
        Inference (``transform``) always runs on a float64 CPU copy.
    random_state : int, RandomState instance or None, default=None
        Seeds the eigensolver's start vector, the network initialisation and the
        edge sampling. Global random states are never touched.
    verbose : int, default=0
        Print training progress when positive. With scikit-learn 1.9 or later,
        ``set_callbacks`` takes its callbacks (e.g.
        ``sklearn.callback.ProgressBar()``); each SpectralNet step is a task.

    Attributes
    ----------
    n_components_ : int
        The number of diffusion coordinates ``D``.
    eigenvalues_ : ndarray of shape (n_components_,)
        ``lambda_1 >= ... >= lambda_D`` of the Markov matrix (constant dropped).
    bandwidth_ : float
        The kernel scale used.
    bandwidth_bound_ : bool
        Whether ``max_edges_per_sample`` lowered the ``'auto'`` bandwidth.
    kernel_cutoff_ : float
        The kernel's truncation ``c``: pairs farther apart than
        ``sqrt(c * bandwidth_)`` are not joined (see
        :func:`skvdae.graph.auto_cutoff`).
    edges_per_sample_ : float
        Mean entries per row of the kernel graph (self-loops included).
    neighbor_search_ : str
        The class name of the neighbour search used, e.g.
        ``'NearestNeighbors'`` or ``'HNSWNeighbors'``.
    dropped_kernel_mass_ : float
        The mean share of a sample's kernel mass (within the kernel's
        truncation radius) that the graph lacks. 0 with a neighbour search
        that answers radius queries (exact by construction); with one that
        only returns ``k`` neighbours (approximate search), measured on 500
        samples against exact row sums, and a warning above 5%.
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
        of the shift-invert eigensolver plus products of plain Lanczos (1 for
        a dense eigendecomposition).
    embedding_map_ : skvdae.solvers.EmbeddingMap
        The out-of-sample map ``x -> Psi_t(x)`` that ``transform`` applies: a
        Nystrom extension for ``'exact'``, the network for ``'spectralnet'``.
    network_ : torch.nn.Module or None
        The trained network (float64, CPU); its output is the diffusion map.
        ``None`` for ``solver='exact'``.
    loss_curve_ : ndarray of shape (n_iter_,)
        SpectralNet loss (sum of the batch's Rayleigh quotients) per step; empty
        for ``'exact'``.
    world_size_ : int
        The number of processes the fit ran on: 1, or the size of the
        ``torch.distributed`` process group that was initialised when ``fit``
        was called (``torchrun``; see the user guide's "Several processes and
        machines"). Then each process builds the kernel rows of its shard of
        the samples, SpectralNet trains data-parallel, and every process ends
        with the same fitted estimator. Only ``solver='spectralnet'`` runs
        data-parallel.
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
        "bandwidth_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_neighbors": [
            StrOptions({"deprecated"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "bandwidth": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "max_edges_per_sample": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "neighbors": [
            None,
            StrOptions({"auto"}),
            HasMethods(["fit", "kneighbors"]),
        ],
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "diffusion_time": [Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "network": [None, callable],
        "network_params": [None, dict],
        "hidden_layer_sizes": LAYER_SIZES,
        **SHARED_CONSTRAINTS,
    }

    # Model files written before a rename keep the old parameter name.
    _renamed_params = {"n_neighbors": "bandwidth_neighbors"}

    def __init__(
        self,
        n_components="auto",
        *,
        bandwidth_neighbors=10,
        n_neighbors="deprecated",
        bandwidth="auto",
        max_edges_per_sample="auto",
        neighbors=None,
        alpha=1.0,
        diffusion_time=1.0,
        solver="spectralnet",
        network=None,
        network_params=None,
        hidden_layer_sizes=(64, 64),
        activation="tanh",
        batch_size=2048,
        max_iter=500,
        learning_rate=3e-3,
        tol=None,
        n_iter_no_change=10,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.bandwidth_neighbors = bandwidth_neighbors
        self.n_neighbors = n_neighbors
        self.bandwidth = bandwidth
        self.max_edges_per_sample = max_edges_per_sample
        self.neighbors = neighbors
        self.alpha = alpha
        self.diffusion_time = diffusion_time
        self.solver = solver
        self.network = network
        self.network_params = network_params
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
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
        X = check_data(self, X, reset=False)
        return self._embed(X.astype(np.float64, copy=False)).astype(X.dtype, copy=False)

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _fit(self, X, return_embedding=True, distributed=True):
        X = check_data(self, X, reset=True, ensure_min_samples=2)
        output_dtype = X.dtype
        X = X.astype(np.float64, copy=False)
        bandwidth_neighbors = self._bandwidth_neighbors(X.shape[0])
        self._check_fit_data(X)
        communicator = Communicator.current() if distributed else None
        if communicator is not None and self.solver != "spectralnet":
            raise ValueError(
                f"solver={self.solver!r} runs in one process; a data-parallel fit "
                f"(a process group of {communicator.world_size} processes is "
                "initialised) needs solver='spectralnet'."
            )
        random_state = check_private_random_state(self.random_state)
        solver = SOLVERS[self.solver].from_params(self.get_params())
        context = open_fit_context(self, max_subtasks=solver.n_steps)

        order = locality_order(X)
        X = X[order]
        max_edges = self.max_edges_per_sample
        if max_edges == "auto":
            max_edges = max_edges_per_sample(X.shape[0])
        exact = communicator is not None
        nn_index = self._neighbor_index(X, exact)
        graph = build_diffusion_graph(
            nn_index,
            bandwidth_neighbors,
            self.bandwidth,
            self.alpha,
            max_edges,
            communicator=communicator,
        )
        labels = np.full(X.shape[0], -1, dtype=np.intp)
        labels[graph.inliers] = graph.component_labels
        X_all = X
        if graph.inliers.size < X.shape[0]:
            X = X[graph.inliers]
            nn_index = self._neighbor_index(X, exact)
        self._check_graph(graph)
        n_components = self.n_components
        if n_components == "auto" and (
            communicator is not None
            or (self.solver == "spectralnet" and X_all.shape[0] > AUTO_SUBSAMPLE)
        ):
            n_components = self._subsample_n_components(X_all, graph, random_state)

        def report(name, max_iter):
            return FitProgress(name, max_iter, self.verbose, self, context)

        result = solver.solve(
            X,
            nn_index,
            graph,
            n_components=n_components,
            diffusion_time=self.diffusion_time,
            random_state=random_state,
            report=report,
            fold_neighbors=bandwidth_neighbors,
        )
        self.embedding_map_ = result.map
        self.eigenvalues_ = result.eigenvalues
        self.n_components_ = int(result.eigenvalues.size)
        self.n_iter_ = int(result.n_iter)
        self.loss_curve_ = result.loss_curve
        self.bandwidth_ = graph.bandwidth
        self.bandwidth_bound_ = graph.bandwidth_bound
        self.kernel_cutoff_ = graph.kernel.cutoff
        self.edges_per_sample_ = graph.n_entries / graph.inliers.size
        self.dropped_kernel_mass_ = graph.dropped_mass
        self.neighbor_search_ = type(nn_index.search_).__name__
        self.n_connected_components_ = graph.n_connected_components
        original_rows = np.empty_like(order)
        original_rows[order] = np.arange(order.size)
        self.component_labels_ = labels[original_rows]
        self.n_outliers_ = int(np.sum(labels < 0))
        self.world_size_ = 1 if communicator is None else communicator.world_size
        if self.verbose and (communicator is None or communicator.rank == 0):
            print(
                f"[DiffusionMapEmbedder] bandwidth {graph.bandwidth:.3e}"
                f"{' (lowered to the edge bound)' if graph.bandwidth_bound else ''}, "
                f"cutoff {graph.kernel.cutoff:.2f}, "
                f"{self.edges_per_sample_:.1f} edges per sample, "
                f"{self.neighbor_search_} neighbours"
                + (
                    ""
                    if nn_index.radius_search_
                    else f" ({graph.dropped_mass:.2%} of the kernel mass dropped)"
                )
                + ", "
                f"{graph.n_connected_components} component(s), "
                f"{self.n_outliers_} outlier(s), {self.n_components_} "
                f"coordinate(s), eigenvalues "
                f"{np.array2string(self.eigenvalues_, precision=6)}"
                + ("" if communicator is None else f", {self.world_size_} processes")
            )
        close_fit_context(self, context)
        if not return_embedding:
            return None
        train_embedding = result.train_embedding
        if train_embedding is None:
            train_embedding = self.embedding_map_.transform(X)
        embedding = np.empty((X_all.shape[0], self.n_components_))
        embedding[graph.inliers] = train_embedding
        outliers = labels < 0
        if outliers.any():
            # Outliers are not in the graph: they are embedded as new points.
            embedding[outliers] = self.embedding_map_.transform(X_all[outliers])
        return embedding[original_rows].astype(output_dtype, copy=False)

    @property
    def network_(self):
        """The trained network (float64, CPU) whose output is the diffusion map.

        ``None`` for a solver without a network (``'exact'``).
        """
        check_is_fitted(self)
        return getattr(self.embedding_map_, "network", None)

    def _neighbor_index(self, X, exact=False):
        """The fitted neighbour index of ``X``, with its candidate cap.

        ``exact``: the default search is never the approximate one (a
        data-parallel fit needs radius queries).
        """
        max_edges = self.max_edges_per_sample
        if max_edges == "auto":
            max_edges = max_edges_per_sample(X.shape[0])
        return NeighborIndex(
            self.neighbors, max_candidates=max_edges, allow_approximate=not exact
        ).fit(X)

    def _subsample_n_components(self, X, graph, random_state):
        """``n_components='auto'`` with its geometric part from a seeded subsample.

        One coordinate per connected component of ``graph`` (the whole data's)
        beyond the first, plus those the rule keeps beyond the component
        coordinates on an exact fit of ``AUTO_SUBSAMPLE`` samples: the exact
        spectrum of the whole graph would cost SpectralNet more than its own
        training (the noisy loop at 1e5: 62 s against 6 s). Where the
        subsample has fewer components (it missed small clusters, whose
        geometry it cannot tell), only the component coordinates are kept, as
        the rule itself does when the geometry of some cluster does not fit.
        In a process group every process draws the same subsample, so all
        agree without communicating.
        """
        n_rows = min(X.shape[0], AUTO_SUBSAMPLE)
        rows = np.sort(random_state.choice(X.shape[0], n_rows, replace=False))
        probe = clone(self).set_params(
            solver="exact", verbose=0, random_state=random_state.randint(2**31 - 1)
        )
        probe._fit(X[rows], return_embedding=False, distributed=False)
        geometric = 0
        if probe.n_connected_components_ >= graph.n_connected_components:
            geometric = probe.n_components_ - (probe.n_connected_components_ - 1)
        wanted = graph.n_connected_components - 1 + max(geometric, 0)
        return max(1, min(wanted, graph.inliers.size - 2))

    def _bandwidth_neighbors(self, n_samples):
        """The neighbour rank of the bandwidth rule, capped at ``n_samples - 1``."""
        name, rank = "bandwidth_neighbors", self.bandwidth_neighbors
        if self.n_neighbors != "deprecated":
            warnings.warn(
                "The parameter n_neighbors of DiffusionMapEmbedder was renamed "
                "bandwidth_neighbors in 0.2 and will be removed in 0.3; the value "
                f"n_neighbors={self.n_neighbors} is used.",
                FutureWarning,
                stacklevel=4,
            )
            name, rank = "n_neighbors", self.n_neighbors
        if rank >= n_samples:
            warnings.warn(
                f"{name}={rank} is not smaller than n_samples={n_samples}; "
                f"using {n_samples - 1}.",
                UserWarning,
                stacklevel=4,
            )
            rank = n_samples - 1
        return rank

    def _check_fit_data(self, X):
        n_samples = X.shape[0]
        if np.ptp(X, axis=0).max() == 0.0:
            raise ValueError(
                "All samples in X are identical: a diffusion map needs at least two "
                "distinct points."
            )
        if self.n_components != "auto" and self.n_components >= n_samples - 1:
            raise ValueError(
                f"n_components={self.n_components} must be smaller than n_samples - 1 "
                f"= {n_samples - 1} (the constant eigenvector is dropped)."
            )
        resolve_device(self.device)
        if self.solver == "spectralnet":
            check_layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
            check_module_params(
                self.network_params, "network_params", self.network, "network"
            )

    def _check_graph(self, graph):
        n_inliers = graph.inliers.size
        if self.n_components != "auto" and self.n_components >= n_inliers - 1:
            raise ValueError(
                f"n_components={self.n_components} must be smaller than the "
                f"number of samples outside outlier groups less one, "
                f"{n_inliers - 1}."
            )

    def _embed(self, X):
        return self.embedding_map_.transform(X)

    # -- model files ---------------------------------------------------------

    def _get_model_state(self):
        return {
            **self._feature_state(),
            "n_components_": self.n_components_,
            "bandwidth_": self.bandwidth_,
            "n_connected_components_": self.n_connected_components_,
            "bandwidth_bound_": self.bandwidth_bound_,
            "kernel_cutoff_": self.kernel_cutoff_,
            "edges_per_sample_": self.edges_per_sample_,
            "dropped_kernel_mass_": self.dropped_kernel_mass_,
            "neighbor_search_": self.neighbor_search_,
            "n_outliers_": self.n_outliers_,
            "world_size_": self.world_size_,
            "n_iter_": self.n_iter_,
            "component_labels_": self.component_labels_,
            "eigenvalues_": self.eigenvalues_,
            "loss_curve_": self.loss_curve_,
            **self.embedding_map_.get_state(),
        }

    def _set_model_state(self, state):
        self._set_feature_state(state)
        n_components = state.get("n_components_", self.n_components)
        if isinstance(n_components, bool) or not isinstance(n_components, int):
            raise ValueError(f"invalid n_components_ {n_components!r}")
        eigenvalues = np.asarray(state.get("eigenvalues_"), dtype=np.float64)
        if eigenvalues.shape != (n_components,):
            raise ValueError(
                f"eigenvalues_ has shape {eigenvalues.shape}, expected "
                f"({n_components},)"
            )
        if not np.all((eigenvalues > 0) & (eigenvalues <= 1 + 1e-6)):
            raise ValueError(f"eigenvalues_ {eigenvalues} are not in (0, 1]")
        bandwidth = state.get("bandwidth_")
        if not isinstance(bandwidth, float) or not 0 < bandwidth < np.inf:
            raise ValueError(f"invalid bandwidth_ {bandwidth!r}")
        map_class = SOLVERS[self.solver].map_class
        self.embedding_map_ = map_class.from_state(
            state,
            n_features=self.n_features_in_,
            eigenvalues=eigenvalues,
            diffusion_time=self.diffusion_time,
            bandwidth=bandwidth,
            make_index=self._neighbor_index,
        )
        self._check_output_width(n_components)
        self.n_components_ = n_components
        self.eigenvalues_ = eigenvalues
        self.bandwidth_ = bandwidth
        self.n_connected_components_ = int(state.get("n_connected_components_", 1))
        self.n_outliers_ = int(state.get("n_outliers_", 0))
        self.world_size_ = int(state.get("world_size_", 1))
        self.bandwidth_bound_ = bool(state.get("bandwidth_bound_", False))
        cutoff = state.get("kernel_cutoff_", KERNEL_CUTOFF)
        if not isinstance(cutoff, float) or not 0 < cutoff <= KERNEL_CUTOFF:
            raise ValueError(f"invalid kernel_cutoff_ {cutoff!r}")
        self.kernel_cutoff_ = cutoff
        self.edges_per_sample_ = float(state.get("edges_per_sample_", np.nan))
        self.dropped_kernel_mass_ = float(state.get("dropped_kernel_mass_", 0.0))
        self.neighbor_search_ = str(state.get("neighbor_search_", "NearestNeighbors"))
        self.n_iter_ = int(state.get("n_iter_", 0))
        self.component_labels_ = state.get("component_labels_")
        self.loss_curve_ = np.asarray(state.get("loss_curve_", []), dtype=np.float64)

    def _check_output_width(self, n_components):
        probe = np.zeros((1, self.n_features_in_))
        try:
            width = self.embedding_map_.transform(probe).shape
        except RuntimeError as error:  # a network of other input width
            raise ValueError(
                f"the embedder's map does not take {self.n_features_in_} features "
                f"({error})"
            ) from error
        if width != (1, n_components):
            raise ValueError(
                f"the embedder's map gives {width[1]} coordinates, "
                f"n_components_ is {n_components}"
            )
