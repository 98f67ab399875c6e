"""Networks as parameters: build a user's module and describe how to rebuild it.

An estimator parameter such as ``network`` or ``decoder`` takes ``None`` (the
built-in MLP), a ``torch.nn.Module`` subclass or any callable; at ``fit`` it is
called as ``factory(n_inputs, n_outputs, **params)`` (:func:`build_module`).
The module it returns remembers that call (its *spec*: the factory's name, the
two widths and the parameters), which is how a model file stores it and how
:func:`module_from_spec` rebuilds it, the factory looked up by name in a
registry the caller supplies (the built-in modules, plus a user's
``custom_objects``), never imported.
"""

import inspect

import torch
from torch import nn

_SPEC_ATTRIBUTE = "_skvdae_factory_spec"


class UnknownFactoryError(KeyError):
    """A module description names a factory that the registry lacks.

    ``name`` holds the factory's name.
    """

    def __init__(self, name):
        super().__init__(name)
        self.name = name


#: Batch size of the shape check made when a module is built.
_CHECK_ROWS = 2


def factory_name(factory):
    """The name a model file records for ``factory`` (a class or a function)."""
    return getattr(factory, "__name__", type(factory).__name__)


def check_module_params(params, name, factory=None, factory_parameter=None):
    """A dict of keyword arguments (``{}`` for ``None``).

    With ``factory``, the call ``factory(n_inputs, n_outputs, **params)`` is
    also checked against its signature, so that a misspelt keyword fails
    before any fitting rather than once the widths are known.
    """
    if params is None:
        params = {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise TypeError(
            f"{name} must be None or a dict of keyword arguments, got {params!r}."
        )
    if factory is not None:
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # no signature to check against
            signature = None
        if signature is not None:
            try:
                signature.bind(1, 1, **params)
            except TypeError as error:
                raise TypeError(
                    f"{factory_parameter}={factory_name(factory)} cannot be called "
                    f"as {factory_name(factory)}(n_inputs, n_outputs, **{name}) "
                    f"with {name}={params!r}: {error}"
                ) from error
    return dict(params)


def build_module(factory, n_inputs, n_outputs, params, *, name, params_name):
    """``factory(n_inputs, n_outputs, **params)``, checked.

    The module must map a float32 batch of shape ``(n, n_inputs)`` to one of
    shape ``(n, n_outputs)``; this is checked at once, on a small batch in
    eval mode, so that a wrong architecture fails here with a message naming
    the parameter rather than deep inside training. Call it under
    :func:`~skvdae.nn.seeded_torch` for a seeded initialisation.

    Parameters
    ----------
    factory : callable
        A ``torch.nn.Module`` subclass or a function returning a module.
    n_inputs, n_outputs : int
        The widths the module must have.
    params : dict
        Further keyword arguments of ``factory``.
    name, params_name : str
        The estimator parameters holding ``factory`` and ``params`` (for
        error messages).

    Returns
    -------
    module : torch.nn.Module
        With its spec attached (see :func:`module_spec`).

    Examples
    --------
    >>> from skvdae.nn import MLP
    >>> from skvdae.nn._factory import build_module, module_spec
    >>> def small(n_inputs, n_outputs, width=8):
    ...     return MLP(n_inputs, n_outputs, (width,))
    >>> module = build_module(
    ...     small, 3, 2, {"width": 4}, name="decoder", params_name="decoder_params"
    ... )
    >>> module_spec(module)["factory"]
    'small'
    """
    label = f"{name}={factory_name(factory)}"
    try:
        module = factory(n_inputs, n_outputs, **params)
    except TypeError as error:
        raise TypeError(
            f"{label} could not be built as {factory_name(factory)}(n_inputs="
            f"{n_inputs}, n_outputs={n_outputs}, **{params_name}) with "
            f"{params_name}={params!r}: {error}"
        ) from error
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"{label} returned a {type(module).__name__}, not a torch.nn.Module."
        )
    module = module.float()
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            output = module(torch.zeros(_CHECK_ROWS, n_inputs))
    except Exception as error:  # any failure of the user's forward pass
        raise ValueError(
            f"{label} fails on a batch of shape ({_CHECK_ROWS}, {n_inputs}): "
            f"{type(error).__name__}: {error}. It must map (n_samples, {n_inputs}) "
            f"to (n_samples, {n_outputs})."
        ) from error
    finally:
        module.train(was_training)
    shape = tuple(getattr(output, "shape", ()))
    if shape != (_CHECK_ROWS, n_outputs):
        raise ValueError(
            f"{label} maps a batch of shape ({_CHECK_ROWS}, {n_inputs}) to "
            f"{shape}; it must return (n_samples, {n_outputs})."
        )
    setattr(
        module,
        _SPEC_ATTRIBUTE,
        {
            "factory": factory_name(factory),
            "n_inputs": int(n_inputs),
            "n_outputs": int(n_outputs),
            "params": params,
        },
    )
    return module


def build_network(factory, params, n_inputs, n_outputs, *, default, name, params_name):
    """An estimator's network: ``default()`` when ``factory`` is None, else
    :func:`build_module` with ``params`` (a ``*_params`` value, None or a dict)."""
    if factory is None:
        return default()
    return build_module(
        factory,
        n_inputs,
        n_outputs,
        check_module_params(params, params_name),
        name=name,
        params_name=params_name,
    )


def module_spec(module):
    """How ``module`` is rebuilt: its factory call, or its class's config.

    Raises
    ------
    TypeError
        For a module neither built by :func:`build_module` nor describing
        itself with ``get_config()``.
    """
    spec = getattr(module, _SPEC_ATTRIBUTE, None)
    if spec is not None:
        return dict(spec)
    if hasattr(module, "get_config"):
        return {"class": type(module).__name__, **module.get_config()}
    raise TypeError(
        f"Cannot describe the module of class {type(module).__name__}: a module "
        "saved in a model file is built from an estimator parameter or has "
        "get_config() and from_config(config)."
    )


def module_from_spec(spec, modules):
    """An untrained module rebuilt from :func:`module_spec`'s description.

    Parameters
    ----------
    spec : dict
    modules : dict
        ``{name: factory}``: the only factories that may be called.

    Raises
    ------
    UnknownFactoryError
        For a factory or class not in ``modules``; ``error.name`` names it.
    ValueError, TypeError
        For an invalid description.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"a module description must be a dict, got {spec!r}")
    if "factory" in spec:
        name = spec["factory"]
        factory = modules.get(name) if isinstance(name, str) else None
        if factory is None:
            raise UnknownFactoryError(name)
        n_inputs, n_outputs = spec.get("n_inputs"), spec.get("n_outputs")
        params = spec.get("params", {})
        if not isinstance(params, dict):
            raise ValueError(f"invalid module parameters {params!r}")
        for width in (n_inputs, n_outputs):
            if not isinstance(width, int) or isinstance(width, bool) or width < 1:
                raise ValueError(f"invalid module width {width!r}")
        module = factory(n_inputs, n_outputs, **params)
        if not isinstance(module, nn.Module):
            raise TypeError(f"{name} returned a {type(module).__name__}")
        setattr(module, _SPEC_ATTRIBUTE, dict(spec))
        return module
    name = spec.get("class")
    cls = modules.get(name) if isinstance(name, str) else None
    if cls is None or not hasattr(cls, "from_config"):
        raise UnknownFactoryError(name)
    return cls.from_config({k: v for k, v in spec.items() if k != "class"})
