"""``save`` / ``load`` methods shared by the estimators (format in ``_persistence``)."""


class SafeModelFileMixin:
    """Adds ``save(path)`` and ``load(path)`` over the safe model file format.

    The format module imports the estimator classes, so it is imported lazily.
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
        from ._persistence import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path):
        """Read an estimator of this class written by :meth:`save`.

        Nothing from the file is executed: weights are read with
        ``torch.load(weights_only=True)`` and arrays without pickle (see
        :func:`load_model`).

        Parameters
        ----------
        path : str or path-like
            A model file.

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
        from ._persistence import ModelFileError, load_model

        estimator = load_model(path)
        if not isinstance(estimator, cls):
            raise ModelFileError(
                f"{path!r} holds a {type(estimator).__name__}, not a {cls.__name__}."
            )
        return estimator
