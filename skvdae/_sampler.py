"""VDAESampler: the variational diffusion autoencoder as a scikit-learn estimator."""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.utils import check_array
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._embedder import DiffusionMapEmbedder
from ._random import check_private_random_state
from ._validation import (
    FLOAT_DTYPES,
    LAYER_SIZES,
    SHARED_CONSTRAINTS,
    check_count,
    check_data,
    check_layer_sizes,
)
from ._vdae import (
    LatentNeighbourhoods,
    LocalStep,
    StepMixture,
    auto_covariance_scale,
    auto_noise_variance,
    build_networks,
    default_ridge,
    gaussian_kl,
    local_elbo,
    local_second_moments,
    residual_differences,
    residual_mean_size,
    target_factors,
    train_vdae,
    walk,
)
from .distributed import Communicator
from .io import SafeModelFileMixin, register_estimator
from .nn import (
    CallbackSupportMixin,
    FitProgress,
    check_module_params,
    inference_copy,
    make_generator,
    predict_numpy,
    resolve_device,
    seed_from,
)
from .nn._callbacks import close_fit_context, open_fit_context, subtask, task


@register_estimator
class VDAESampler(
    SafeModelFileMixin,
    CallbackSupportMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Variational diffusion autoencoder: samples by a random walk on the manifold.

    On top of a frozen diffusion map ``psi`` (a :class:`DiffusionMapEmbedder`),
    two networks are trained by maximising the local evidence lower bound of one
    step of the diffusion random walk:

    - a covariance network ``z -> L(z)`` (lower triangular, positive diagonal):
      one walk step in the latent space is ``z' = z + L(z) eps``, and the exact
      Gaussian KL divergence pulls ``C = L L^T`` towards ``alpha * Sigma*(z)``,
      where ``Sigma*`` is the second moment of the latent displacements to the
      ``n_neighbors`` nearest training codes and ``alpha`` is
      ``covariance_scale``;
    - a decoder ``g: z -> x``, trained so that ``g(z')`` reproduces the landing
      point of the step (the minibatch point whose code is nearest to ``z'``)
      under Gaussian noise of variance ``noise_variance``.

    Sampling walks: each step moves a code by ``z' = z + L(z) eps``. With
    ``decoder_variance='local'`` (the default) the step lands on a training
    code drawn from the posterior of the mixture of the codes' step Gaussians
    (a Gibbs sampler whose stationary law is the data's own distribution,
    whatever the step length) and emits a draw decoded around that code with
    the local spread of the training data, so that clusters the diffusion map
    sends to one code keep their width; ``'none'`` iterates the paper's
    ``X_{t+1} = g(psi(X_t) + L(psi(X_t)) eps_t)``. The walk stays on the data
    manifold, keeps its topology and, started from a seed in one cluster,
    stays in that cluster. At the defaults every choice is made from the
    data: the kernel scale, outliers and components (``bandwidth='auto'``),
    the latent dimension (``n_components='auto'``) and the step length
    (``covariance_scale='auto'``, about ten steps to cross a component).

    Parameters
    ----------
    embedder : DiffusionMapEmbedder or None, default=None
        The diffusion map. It is cloned and fitted on ``X`` (``embedder_``); an
        unset ``random_state`` of the clone is seeded from ``random_state``.
        ``None`` uses ``DiffusionMapEmbedder(device=device)``, whose
        ``n_components='auto'`` chooses the latent dimension from the spectrum.
        Training samples that the embedder marks as outliers
        (``component_labels_ == -1``) are left out of the decoder, the
        covariance network and the walkers' starting points; the
        neighbourhoods of ``Sigma*`` stay within each connected component.
    n_neighbors : int, default=20
        Latent neighbours ``k`` of ``Sigma*``; raised to ``D + 1`` when smaller
        and capped at the number of training samples.
    covariance_scale : 'auto' or float, default='auto'
        ``alpha``: the target step covariance is ``alpha * Sigma*``. Larger
        values give longer steps (faster mixing, coarser walks). ``'auto'``:
        one value per connected component ``c`` of the training data, such
        that the root-mean-square step is the root-mean-square radius of the
        component's codes, ``alpha_c = tr Cov(Z_c) / mean_{i in c} tr
        Sigma*_i``, so that a walk crosses its component in about ten steps;
        1 where the codes are constant, and everywhere when the latent space
        has no coordinate beyond those that separate the components.
    noise_variance : 'auto' or float, default='auto'
        ``c``, the variance per coordinate of the decoder's Gaussian likelihood
        ``N(g(z'), c I)``. ``'auto'``: the mean squared data-space distance
        between a training point and its ``k`` latent neighbours, per feature,
        ``mean_i (1/k) sum_j |x_j - x_i|^2 / n_features_in_`` (the data-space
        size of one walk step per coordinate; the mean variance of the
        features when that is zero). Smaller values favour reconstruction
        over the KL term and shrink the learned steps.
    decoder_variance : {'local', 'none'}, default='local'
        What one step returns. ``'local'``: the step ``z'`` lands on a
        training code ``z_l`` of the walker's component, a Gibbs draw with
        weights proportional to ``N(z'; z_l, C_l)`` (``C = L L^T``) among the
        nearest codes of ``z'`` and a random subset of the others; the sample
        is decoded at ``u = z_l + E^(1/2) eta``, ``E = min(1, tr C_l / tr
        Sigma*_l) Sigma*_l`` (the landing code's neighbourhood, no wider than
        one step, on the surface the codes cover, instead of ``z'``, which
        long steps carry off it, where the decoder extrapolates), and drawn
        from a Gaussian whose mean and covariance are the local moments of the
        training data around the decoder: over the ``n_neighbors`` training
        points whose codes are nearest to ``u``, ``g(u) + mean_j r_j``, with
        ``r_j = x_j - g(psi(x_j))`` the reconstruction residuals, and the
        noise covariance of the ``r_j``
        estimated from differences between neighbours, ``(1/2k) sum_j d_j
        d_j^T`` with ``d_j = r_j - r_p(j)`` and ``p(j)`` the nearest other
        training code (drawn as ``(2k)^-1/2 sum_j d_j eta_j``, ``eta_j`` iid
        standard normal). This restores the spread that the codes do not
        resolve (the points of a cluster that the diffusion map sends to one
        code, the noise around a curve), only in the directions where the
        data have it, and removes the decoder's local bias; a decoder error
        that varies smoothly along the data cancels between neighbours and
        is not emitted as noise. Where the residuals are not noise but
        detail that varies with the code (noise-free images, which a mean of
        ``k`` would blend), the sample takes instead the residual of the
        training code nearest to ``u`` and no added noise
        (``n_residual_neighbors_``). The walk then goes on from the landing
        code, so that neither the emitted noise nor the decoder's error nor
        the encoder's extrapolation off the data accumulates along the walk.
        ``'none'``: ``g(z')`` itself, and the
        walk goes on from it (the paper's Algorithm 2), which collapses
        clusters that share one code onto their centres.
        ``inverse_transform`` always returns ``g``.
    decoder : None, torch.nn.Module subclass or callable, default=None
        The decoder's network. ``None``: an :class:`~skvdae.nn.MLP` with
        ``decoder_hidden_layer_sizes`` and ``activation``. Otherwise built at
        ``fit`` as ``decoder(n_components_, n_features_in_,
        **decoder_params)``: a module mapping standardised codes ``(n,
        n_components_)`` to standardised data ``(n, n_features_in_)`` (each
        feature centred and divided by its standard deviation; the library
        adds the de-standardisation), e.g. :class:`~skvdae.nn.ConvDecoder`
        for images. Its shapes are checked when it is built. A model file
        names the factory; load it with ``load_model(path,
        custom_objects={name: decoder})`` unless it is one of
        :mod:`skvdae.nn`'s.
    decoder_params : dict or None, default=None
        Keyword arguments of ``decoder``, e.g. ``{"image_shape": (1, 28, 28)}``.
    covariance_network : None, torch.nn.Module subclass or callable, default=None
        The covariance network's body, as ``decoder``: ``None`` for an MLP with
        ``covariance_hidden_layer_sizes``, or built as
        ``covariance_network(D, D (D + 1) / 2, **covariance_params)``; its
        outputs fill the lower triangle of ``L(z)``.
    covariance_params : dict or None, default=None
        Keyword arguments of ``covariance_network``.
    decoder_hidden_layer_sizes : tuple of int, default=(64, 64)
        Hidden layers of the default decoder ``g``.
    covariance_hidden_layer_sizes : tuple of int, default=(32, 32)
        Hidden layers of the default covariance network.
    activation : {'tanh', 'relu', 'silu', 'softplus'}, default='tanh'
        Activation of both default networks.
    batch_size : int, default=512
        Training points per step; the landing points are searched within it.
    max_iter : int, default=2000
        Adam steps.
    learning_rate : float, default=1e-2
        Adam step size for the first 80% of the steps; the last 20% use a
        tenth of it.
    tol : float or None, default=None
        Early stopping: training ends once the mean loss over windows of 50
        steps has not improved by a relative ``tol`` for ``n_iter_no_change``
        windows in a row (a ``ConvergenceWarning`` when ``max_iter`` comes
        first). ``None`` always takes ``max_iter`` steps.
    n_iter_no_change : int, default=10
        Windows without improvement before stopping, with ``tol``.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the networks train. Inference (``transform``, sampling, scores)
        runs on float64 CPU copies, so a model fitted on a GPU pickles and loads
        without CUDA.
    random_state : int, RandomState instance or None, default=None
        Seeds the embedder (when its own is unset), the initialisation and the
        minibatches. Sampling has its own ``random_state`` argument. Global
        random states are never touched.
    verbose : int, default=0
        Print training progress when positive. With scikit-learn 1.9 or later,
        ``set_callbacks`` takes its callbacks (e.g.
        ``sklearn.callback.ProgressBar()``); they see the tasks ``embedder``
        (the diffusion map's fit) and ``vdae`` (one subtask per step).

    Attributes
    ----------
    embedder_ : DiffusionMapEmbedder
        The fitted diffusion map ``psi``.
    decoder_ : torch.nn.Module
        ``g`` (float64, CPU, eval mode).
    covariance_network_ : torch.nn.Module
        ``z -> L(z)`` of shape ``(..., D, D)`` (float64, CPU, eval mode).
    n_components_ : int
        Latent dimension ``D``.
    n_neighbors_ : int
        The ``k`` used for ``Sigma*`` (capped by the size of each component).
    n_residual_neighbors_ : int or None
        With ``decoder_variance='local'``: 1 when a sample takes the
        reconstruction residual of its nearest training code (residuals that
        vary with the code: detail of noise-free data the decoder misses),
        ``n_neighbors_`` when it takes the mean residual of its nearest codes
        and fresh noise of their covariance (residuals that are noise);
        whichever predicts the training residuals better, each left out (see
        the user guide). None with ``decoder_variance='none'``.
    covariance_scale_ : ndarray of shape (n_clusters,)
        The ``alpha`` used in each connected component of the training data
        (one value when it is connected; all equal to ``covariance_scale``
        when that is a number).
    covariance_ridge_ : float
        Ridge added to ``Sigma*``: ``1e-2`` times its mean per-axis variance
        (floored for codes that are constant on clusters).
    noise_variance_ : float
        The ``c`` used.
    loss_curve_ : ndarray of shape (n_iter_,)
        Training loss (negative local ELBO, up to a constant) per step.
    n_iter_ : int
        Adam steps taken (``max_iter`` less any steps undone by a divergence
        restart).
    world_size_ : int
        The number of processes the fit ran on: 1, or the size of the
        ``torch.distributed`` process group initialised when ``fit`` was
        called (``torchrun``). Then the diffusion map is fitted data-parallel
        (see :class:`DiffusionMapEmbedder`), each process trains the networks
        on its shard of the samples with ``ceil(batch_size / world_size_)``
        of them per step, the gradients are averaged, and every process ends
        with the same fitted sampler.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    DiffusionMapEmbedder : The diffusion map this model is built on.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae import DiffusionMapEmbedder, VDAESampler
    >>> theta = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    >>> X = np.c_[np.cos(theta), np.sin(theta)]
    >>> sampler = VDAESampler(
    ...     embedder=DiffusionMapEmbedder(solver="exact"), max_iter=200, random_state=0
    ... ).fit(X)
    >>> samples = sampler.sample(5, n_steps=3, random_state=0)
    >>> samples.shape
    (5, 2)
    >>> sampler.random_walk(X[:2], n_steps=4, random_state=0).shape
    (5, 2, 2)
    """

    _parameter_constraints: dict = {
        "embedder": [None, HasMethods(["fit", "transform"])],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "covariance_scale": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "decoder_variance": [StrOptions({"local", "none"})],
        "noise_variance": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "decoder": [None, callable],
        "decoder_params": [None, dict],
        "covariance_network": [None, callable],
        "covariance_params": [None, dict],
        "decoder_hidden_layer_sizes": LAYER_SIZES,
        "covariance_hidden_layer_sizes": LAYER_SIZES,
        **SHARED_CONSTRAINTS,
    }

    def __init__(
        self,
        embedder=None,
        *,
        n_neighbors=20,
        covariance_scale="auto",
        noise_variance="auto",
        decoder_variance="local",
        decoder=None,
        decoder_params=None,
        covariance_network=None,
        covariance_params=None,
        decoder_hidden_layer_sizes=(64, 64),
        covariance_hidden_layer_sizes=(32, 32),
        activation="tanh",
        batch_size=512,
        max_iter=2000,
        learning_rate=1e-2,
        tol=None,
        n_iter_no_change=10,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.embedder = embedder
        self.n_neighbors = n_neighbors
        self.covariance_scale = covariance_scale
        self.noise_variance = noise_variance
        self.decoder_variance = decoder_variance
        self.decoder = decoder
        self.decoder_params = decoder_params
        self.covariance_network = covariance_network
        self.covariance_params = covariance_params
        self.decoder_hidden_layer_sizes = decoder_hidden_layer_sizes
        self.covariance_hidden_layer_sizes = covariance_hidden_layer_sizes
        self.activation = activation
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the diffusion map, then the decoder and the covariance network.

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
        X = check_data(self, X, reset=True, ensure_min_samples=2)
        X = X.astype(np.float64, copy=False)
        decoder_sizes = check_layer_sizes(
            self.decoder_hidden_layer_sizes, "decoder_hidden_layer_sizes"
        )
        covariance_sizes = check_layer_sizes(
            self.covariance_hidden_layer_sizes, "covariance_hidden_layer_sizes"
        )
        for factory, params in (
            ("decoder", "decoder_params"),
            ("covariance_network", "covariance_params"),
        ):
            check_module_params(
                getattr(self, params), params, getattr(self, factory), factory
            )
        device = resolve_device(self.device)
        random_state = check_private_random_state(self.random_state)
        communicator = Communicator.current()
        context = open_fit_context(self, max_subtasks=2)

        if self.embedder is None:
            embedder = DiffusionMapEmbedder(device=self.device)
        else:
            embedder = clone(self.embedder)
        if embedder.get_params().get("random_state", 0) is None:
            embedder.set_params(random_state=int(random_state.randint(2**31 - 1)))
        with task(subtask(context, "embedder", 0), self, embedder):
            Z = np.asarray(embedder.fit_transform(X), dtype=np.float64)
        self.embedder_ = embedder
        labels = getattr(embedder, "component_labels_", None)
        if labels is None:
            labels = np.zeros(X.shape[0], dtype=np.intp)
        inliers = labels >= 0
        X, Z, labels = X[inliers], Z[inliers], np.asarray(labels)[inliers]
        n_samples, n_latent = Z.shape

        k = min(max(self.n_neighbors, n_latent + 1), n_samples)
        neighbourhoods = LatentNeighbourhoods(Z, labels, k)
        raw_sigma = local_second_moments(neighbourhoods, Z, 0.0, labels)
        raw_trace = np.trace(raw_sigma, axis1=1, axis2=2)
        ridge = default_ridge(raw_trace.mean(), Z.var(axis=0).sum(), n_latent)
        sigma = raw_sigma + ridge * np.eye(n_latent)
        if self.covariance_scale == "auto":
            scales = auto_covariance_scale(raw_trace, Z, labels)
        else:
            scales = np.full(labels.max() + 1, float(self.covariance_scale))
        covariance_scale = scales[labels]
        target_inverse, target_log_det = target_factors(sigma, covariance_scale)

        if self.noise_variance == "auto":
            noise_variance = auto_noise_variance(X, neighbourhoods)
        else:
            noise_variance = float(self.noise_variance)
        _warn_if_flat_likelihood(noise_variance, X, self.noise_variance)

        step_scale = np.sqrt(
            (covariance_scale[:, None] * np.diagonal(sigma, axis1=1, axis2=2)).mean(
                axis=0
            )
        )
        seed = seed_from(random_state)
        decoder, covariance = build_networks(
            Z,
            X,
            step_scale,
            decoder_hidden_layer_sizes=decoder_sizes,
            covariance_hidden_layer_sizes=covariance_sizes,
            activation=self.activation,
            seed=seed,
            decoder=self.decoder,
            decoder_params=self.decoder_params,
            covariance_network=self.covariance_network,
            covariance_params=self.covariance_params,
        )
        self._initial_covariance_network = inference_copy(covariance)
        training = subtask(context, "vdae", self.max_iter)
        with task(training, self):
            decoder, covariance, result = train_vdae(
                Z,
                X,
                target_inverse,
                target_log_det,
                decoder,
                covariance,
                noise_variance=noise_variance,
                batch_size=self.batch_size,
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                device=device,
                seed=seed,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                progress=FitProgress(
                    "VDAESampler", self.max_iter, self.verbose, self, training
                ),
                communicator=communicator,
            )
        self.decoder_ = inference_copy(decoder)
        self.covariance_network_ = inference_copy(covariance)
        self.n_components_ = n_latent
        self.n_neighbors_ = k
        self.covariance_scale_ = scales
        self.covariance_ridge_ = ridge
        self.noise_variance_ = float(noise_variance)
        self.loss_curve_ = result.losses
        self.n_iter_ = result.n_iter
        self.world_size_ = 1 if communicator is None else communicator.world_size
        self._train_X = X
        self._train_Z = Z
        self._train_labels = labels
        self._neighbourhoods = neighbourhoods
        self._set_residuals(
            X - predict_numpy(self.decoder_, Z)
            if self.decoder_variance == "local"
            else None
        )
        close_fit_context(self, context)
        return self

    def transform(self, X):
        """Latent codes ``psi(X)`` (deterministic).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_)
            Diffusion coordinates, with the dtype of ``X``.
        """
        check_is_fitted(self)
        X = check_data(self, X, reset=False)
        return self._embed(X).astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Decode latent codes: ``g(Z)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components_)
            Latent codes.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Decoded points, with the dtype of the codes.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} latent coordinates, but VDAESampler was fitted "
                f"with n_components_={self.n_components_}."
            )
        decoded = predict_numpy(self.decoder_, Z.astype(np.float64, copy=False))
        return decoded.astype(Z.dtype, copy=False)

    def local_covariance(self, X):
        """Learned step covariance ``C(psi(x)) = L L^T`` at each point.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        C : ndarray of shape (n_samples, n_components_, n_components_)
        """
        check_is_fitted(self)
        X = check_data(self, X, reset=False)
        factor = self._factor(self.covariance_network_, self._embed(X))
        return factor @ np.swapaxes(factor, 1, 2)

    def target_covariance(self, X):
        """``covariance_scale * Sigma*(psi(x))``, the KL target of each point.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        S : ndarray of shape (n_samples, n_components_, n_components_)
        """
        check_is_fitted(self)
        X = check_data(self, X, reset=False)
        Z = self._embed(X)
        return self._scales(Z)[:, None, None] * self._sigma(Z)

    def kl_divergence(self, X, initial=False):
        """Per-sample KL term of the ELBO, ``KL(N(0, C) || N(0, alpha Sigma*))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        initial : bool, default=False
            Evaluate the covariance network as initialised, before training
            (for diagnostics).

        Returns
        -------
        kl : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = check_data(self, X, reset=False)
        Z = self._embed(X)
        network = (
            self._initial_covariance_network if initial else self.covariance_network_
        )
        inverse, log_det = target_factors(self._sigma(Z), self._scales(Z))
        factor = torch.as_tensor(self._factor(network, Z))
        return gaussian_kl(
            factor, torch.as_tensor(inverse), torch.as_tensor(log_det)
        ).numpy()

    def random_walk(self, X_start, n_steps, random_state=None):
        """Walk from each starting point (Algorithm 2) and return the whole path.

        Parameters
        ----------
        X_start : array-like of shape (n_start, n_features)
            Starting points.
        n_steps : int
            Number of steps, ``>= 0``.
        random_state : int, RandomState instance or None, default=None
            Seeds the steps' noise.

        Returns
        -------
        path : ndarray of shape (n_steps + 1, n_start, n_features)
            ``path[0]`` is ``X_start``; dtype follows ``X_start``.
        """
        check_is_fitted(self)
        n_steps = check_count(n_steps, "n_steps", minimum=0)
        X = check_data(self, X_start, reset=False, what="X_start")
        generator = self._generator(check_private_random_state(random_state))
        path = walk(
            self._embed,
            self.covariance_network_,
            self.decoder_,
            X.astype(np.float64),
            n_steps,
            generator,
            step=self._local_step(),
        )
        return path.astype(X.dtype, copy=False)

    def sample(self, n_samples=1, n_steps=10, random_state=None, seeds=None):
        """Draw samples: the end points of random walks of ``n_steps`` steps.

        Parameters
        ----------
        n_samples : int, default=1
            Number of walkers, ``>= 1``.
        n_steps : int, default=10
            Steps per walker, ``>= 0``.
        random_state : int, RandomState instance or None, default=None
            Seeds the choice of starting points and the steps.
        seeds : array-like of shape (n_seeds, n_features) or None, default=None
            Starting points; each walker starts from one drawn uniformly among
            them (one seed: cluster-conditional sampling). ``None`` draws the
            starting points among the training data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_in_)
            Samples, float64 (or the dtype of ``seeds``).
        """
        check_is_fitted(self)
        n_samples = check_count(n_samples, "n_samples", minimum=1)
        n_steps = check_count(n_steps, "n_steps", minimum=0)
        if seeds is None:
            pool = self._train_X
            dtype = np.float64
        else:
            seeds = check_data(self, seeds, reset=False, what="seeds")
            pool = seeds.astype(np.float64)
            dtype = seeds.dtype
        random_state = check_private_random_state(random_state)
        start = pool[random_state.randint(pool.shape[0], size=n_samples)]
        generator = self._generator(random_state)
        samples = walk(
            self._embed,
            self.covariance_network_,
            self.decoder_,
            start,
            n_steps,
            generator,
            keep_path=False,
            step=self._local_step(),
        )
        return samples.astype(dtype, copy=False)

    def score_samples(self, X):
        """Local evidence lower bound of each point returning to itself in one step.

        ``-KL(N(0, C) || N(0, alpha Sigma*)) - E|g(psi(x) + L eps) - x|^2 / (2c)
        - (m/2) log(2 pi c)``, the expectation computed by the ``2D`` symmetric
        sigma points ``eps = +-sqrt(D) e_d``. Deterministic; each value depends on
        its own row only (``Sigma*`` uses the training codes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher is better.
        """
        check_is_fitted(self)
        X = check_data(self, X, reset=False)
        X = X.astype(np.float64, copy=False)
        Z = self._embed(X)
        inverse, log_det = target_factors(self._sigma(Z), self._scales(Z))
        return local_elbo(
            Z,
            X,
            inverse,
            log_det,
            self.covariance_network_,
            self.decoder_,
            self.noise_variance_,
        )

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _embed(self, X):
        X = np.asarray(X, dtype=np.float64)
        return np.asarray(self.embedder_.transform(X), dtype=np.float64)

    def _sigma(self, Z):
        return local_second_moments(self._neighbourhoods, Z, self.covariance_ridge_)

    def _scales(self, Z):
        """``covariance_scale_`` of the component of each code."""
        return self.covariance_scale_[self._neighbourhoods.labels_of(Z)]

    def _set_residuals(self, residuals):
        """The local emission's residuals and their neighbour differences."""
        self._residuals = residuals
        self._residual_differences = None
        self.n_residual_neighbors_ = None
        if residuals is not None:
            self._residual_differences = residual_differences(
                self._neighbourhoods, residuals
            )
            self.n_residual_neighbors_ = residual_mean_size(
                self._neighbourhoods, residuals
            )
        self._step = None

    def _local_step(self):
        """The walk's :class:`LocalStep` (built once per fitted model, with its
        tables), or None for ``decoder_variance='none'``."""
        if self._residuals is None:
            return None
        if getattr(self, "_step", None) is None:
            self._step = LocalStep(
                StepMixture(self._neighbourhoods, self.covariance_network_),
                self._residuals,
                self._residual_differences,
                self.decoder_,
                self.covariance_ridge_,
                self.n_residual_neighbors_,
            )
        return self._step

    @staticmethod
    def _factor(network, Z):
        with torch.no_grad():
            return network(torch.as_tensor(Z, dtype=torch.float64)).numpy()

    @staticmethod
    def _generator(random_state):
        return make_generator(seed_from(random_state), "cpu")

    # -- model files ---------------------------------------------------------

    def _get_model_state(self):
        return {
            **self._feature_state(),
            "n_components_": self.n_components_,
            "n_neighbors_": self.n_neighbors_,
            "covariance_ridge_": self.covariance_ridge_,
            "noise_variance_": self.noise_variance_,
            "n_iter_": self.n_iter_,
            "world_size_": self.world_size_,
            "loss_curve_": self.loss_curve_,
            "covariance_scale_": self.covariance_scale_,
            "_train_X": self._train_X,
            "_train_Z": self._train_Z,
            "_train_labels": self._train_labels,
            "_residuals": self._residuals,
            "decoder_": self.decoder_,
            "covariance_network_": self.covariance_network_,
            "_initial_covariance_network": self._initial_covariance_network,
            "embedder_": self.embedder_,
        }

    def _set_model_state(self, state):
        self._set_feature_state(state)
        n_features = self.n_features_in_
        embedder = state.get("embedder_")
        if embedder is None:
            raise ValueError("the model file lacks the sampler's embedder_")
        n_latent = _positive_int(state, "n_components_")
        if embedder.n_features_in_ != n_features or embedder.n_components_ != n_latent:
            raise ValueError("the embedder does not match the sampler's shapes")
        train_X = _finite_array(state, "_train_X", (None, n_features))
        n_train = train_X.shape[0]
        train_Z = _finite_array(state, "_train_Z", (n_train, n_latent))
        labels = state.get("_train_labels")
        if labels is None:  # files written before components were tracked
            labels = np.zeros(n_train, dtype=np.intp)
        labels = np.asarray(labels)
        if (
            labels.shape != (n_train,)
            or labels.dtype.kind not in "iu"
            or n_train == 0
            or labels.min() < 0
        ):
            raise ValueError("invalid _train_labels")
        scales = state.get("covariance_scale_")
        if scales is None:  # files written before per-component scales
            scales = np.array([float(self.covariance_scale)])
        scales = np.asarray(scales, dtype=np.float64)
        if scales.shape != (int(labels.max()) + 1,) or not np.all(
            np.isfinite(scales) & (scales > 0)
        ):
            raise ValueError("invalid covariance_scale_")
        n_neighbors = _positive_int(state, "n_neighbors_")
        for name in ("covariance_ridge_", "noise_variance_"):
            value = state.get(name)
            if not isinstance(value, float) or not 0 < value < np.inf:
                raise ValueError(f"invalid {name} {value!r}")
        residuals = state.get("_residuals")
        if residuals is not None:
            residuals = _finite_array(state, "_residuals", (n_train, n_features))
        for name, n_in, n_out in (
            ("decoder_", n_latent, n_features),
            ("covariance_network_", n_latent, n_latent**2),
            ("_initial_covariance_network", n_latent, n_latent**2),
        ):
            _check_network(state.get(name), n_in, n_out, name)
        self.embedder_ = embedder
        self.n_components_ = n_latent
        self.n_neighbors_ = n_neighbors
        self.covariance_ridge_ = state["covariance_ridge_"]
        self.noise_variance_ = state["noise_variance_"]
        self.n_iter_ = int(state.get("n_iter_", 0))
        self.world_size_ = int(state.get("world_size_", 1))
        self.loss_curve_ = np.asarray(state.get("loss_curve_", []), dtype=np.float64)
        self.covariance_scale_ = scales
        self.decoder_ = state["decoder_"]
        self.covariance_network_ = state["covariance_network_"]
        self._initial_covariance_network = state["_initial_covariance_network"]
        self._train_X = train_X
        self._train_Z = train_Z
        self._train_labels = labels.astype(np.intp)
        self._neighbourhoods = LatentNeighbourhoods(
            train_Z, self._train_labels, n_neighbors
        )
        self._set_residuals(residuals)


#: A decoder variance this many times the data's largest variance per
#: coordinate leaves the reconstruction term of the loss with no weight.
_FLAT_LIKELIHOOD = 1e4


def _warn_if_flat_likelihood(noise_variance, X, setting):
    largest = float(X.var(axis=0).max())
    if largest > 0 and noise_variance > _FLAT_LIKELIHOOD * largest:
        warnings.warn(
            f"noise_variance={setting!r} gives a decoder variance of "
            f"{noise_variance:.3g}, {noise_variance / largest:.3g} times the "
            f"data's largest variance per coordinate ({largest:.3g}): the "
            "reconstruction term has no weight and the decoder learns nothing. "
            "Use a smaller noise_variance.",
            UserWarning,
            stacklevel=4,
        )


def _positive_int(state, name):
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"invalid {name} {value!r}")
    return value


def _finite_array(state, name, shape):
    value = state.get(name)
    if value is None:
        raise ValueError(f"the model file lacks the array {name!r}")
    value = np.asarray(value, dtype=np.float64)
    if value.ndim != len(shape) or any(
        s is not None and s != v for s, v in zip(shape, value.shape, strict=True)
    ):
        raise ValueError(f"{name} has shape {value.shape}, expected {shape}")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{name} holds non-finite values")
    return value


def _check_network(module, n_inputs, n_outputs, name):
    """A network must map ``n_inputs`` values to ``n_outputs``."""
    if module is None:
        raise ValueError(f"the model file lacks the network {name!r}")
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, n_inputs, dtype=torch.float64))
    except RuntimeError as error:
        raise ValueError(
            f"the network {name} does not take {n_inputs} inputs ({error})"
        ) from error
    if int(np.prod(out.shape[1:])) != n_outputs:
        raise ValueError(
            f"the network {name} maps {n_inputs} to {int(np.prod(out.shape[1:]))} "
            f"values, expected {n_inputs} to {n_outputs}"
        )
