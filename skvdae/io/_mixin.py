"""``save`` / ``load`` methods shared by the estimators (format in ``_format``)."""

import numpy as np

from ._format import ModelFileError, load_model, save_model


class SafeModelFileMixin:
    """Adds ``save(path)`` and ``load(path)`` over the safe model file format.

    A subclass registers itself with :func:`register_estimator` and declares
    its fitted state in ``_get_model_state`` / ``_set_model_state``; the
    mixin's ``_feature_state`` and ``_set_feature_state`` handle the input
    description every estimator has (``n_features_in_``,
    ``feature_names_in_``).
    """

    def save(self, path):
        """Write the fitted estimator to a safe model file (see :func:`save_model`).

        Parameters
        ----------
        path : str or path-like
            The file to write.

        Returns
        -------
        path : str
            The path written.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from skvdae import DiffusionMapEmbedder
        >>> theta = np.linspace(0, 2 * np.pi, 60, endpoint=False)
        >>> X = np.c_[np.cos(theta), np.sin(theta)]
        >>> model = DiffusionMapEmbedder(solver="exact", random_state=0).fit(X)
        >>> path = model.save(os.path.join(tempfile.mkdtemp(), "model.skvdae"))
        >>> loaded = DiffusionMapEmbedder.load(path)
        >>> bool(np.array_equal(loaded.transform(X), model.transform(X)))
        True
        """
        return save_model(self, path)

    @classmethod
    def load(cls, path, custom_objects=None):
        """Read an estimator of this class written by :meth:`save`.

        Nothing from the file is executed: weights are read with
        ``torch.load(weights_only=True)`` and arrays without pickle (see
        :func:`load_model`).

        Parameters
        ----------
        path : str or path-like
            A model file.
        custom_objects : dict or None, default=None
            Your own module classes by name (see :func:`load_model`).

        Returns
        -------
        estimator : object
            The fitted estimator, an instance of this class.

        Raises
        ------
        ModelFileError
            When the file is not a valid model file, or holds another class.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from skvdae import DiffusionMapEmbedder, VDAESampler
        >>> theta = np.linspace(0, 2 * np.pi, 60, endpoint=False)
        >>> X = np.c_[np.cos(theta), np.sin(theta)]
        >>> model = VDAESampler(
        ...     DiffusionMapEmbedder(solver="exact"), max_iter=20, random_state=0
        ... ).fit(X)
        >>> path = model.save(os.path.join(tempfile.mkdtemp(), "model.skvdae"))
        >>> loaded = VDAESampler.load(path)
        >>> bool(np.array_equal(loaded.sample(3, random_state=0),
        ...                     model.sample(3, random_state=0)))
        True
        """
        estimator = load_model(path, custom_objects=custom_objects)
        if not isinstance(estimator, cls):
            raise ModelFileError(
                f"{path!r} holds a {type(estimator).__name__}, not a {cls.__name__}."
            )
        return estimator

    def _feature_state(self):
        state = {"n_features_in_": self.n_features_in_}
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            state["feature_names_in_"] = [str(name) for name in names]
        return state

    def _set_feature_state(self, state):
        n_features = state.get("n_features_in_")
        if isinstance(n_features, bool) or not isinstance(n_features, int):
            raise ValueError(f"invalid n_features_in_ {n_features!r}")
        if n_features < 1:
            raise ValueError(f"invalid n_features_in_ {n_features!r}")
        self.n_features_in_ = n_features
        names = state.get("feature_names_in_")
        if names is not None:
            if (
                not isinstance(names, list)
                or len(names) != n_features
                or not all(isinstance(name, str) for name in names)
            ):
                raise ValueError("invalid feature names")
            self.feature_names_in_ = np.asarray(names, dtype=object)
