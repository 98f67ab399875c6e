"""The built-in torch modules. No training logic here; see ``_training.py``.

Every module here describes its own architecture: ``get_config()`` returns the
JSON-serialisable arguments that ``from_config(config)`` rebuilds an untrained
module of the same shapes from (its buffers and weights then come from a
``state_dict``). Safe model files store these configurations instead of
pickled modules.
"""

from numbers import Integral, Real

import torch
from torch import nn

from ._activations import ACTIVATIONS
from ._conv import ConvDecoder, ConvEncoder
from ._factory import module_from_spec, module_spec
from ._torch_utils import seeded_torch


def _check_config(config, required):
    """Validated copy of ``config``: each name in ``required`` is a kind."""
    if not isinstance(config, dict):
        raise ValueError(f"a module configuration must be a dict, got {config!r}")
    values = {}
    for name, kind in required.items():
        if name not in config:
            raise ValueError(f"the module configuration lacks {name!r}")
        value = config[name]
        if kind == "count":
            valid = isinstance(value, Integral) and not isinstance(value, bool)
            valid = valid and value >= 1
        elif kind == "sizes":
            valid = isinstance(value, list | tuple) and all(
                isinstance(v, Integral) and not isinstance(v, bool) and v >= 1
                for v in value
            )
        elif kind == "activation":
            valid = value in ACTIVATIONS
        elif kind == "positive":
            valid = isinstance(value, Real) and not isinstance(value, bool)
            valid = valid and value > 0
        else:  # a shape: a list of counts
            valid = isinstance(value, list) and all(
                isinstance(v, Integral) and not isinstance(v, bool) and v >= 1
                for v in value
            )
        if not valid:
            raise ValueError(f"invalid {name!r} in the module configuration: {value!r}")
        values[name] = value
    return values


class MLP(nn.Sequential):
    """Fully connected layers with an activation after each hidden layer.

    The arguments follow the convention of every network parameter of the
    estimators, ``factory(n_inputs, n_outputs, **params)``: ``MLP`` can be
    passed as ``decoder=MLP, decoder_params={"hidden_layer_sizes": (256,)}``.

    Parameters
    ----------
    n_inputs : int
        Input width.
    n_outputs : int or None, default=None
        Width of a final linear layer; ``None`` ends on the last hidden layer
        (its activation included), which makes the module a feature map.
    hidden_layer_sizes : sequence of int, default=(64, 64)
        Width of each hidden layer.
    activation : {'tanh', 'relu', 'silu', 'softplus'}, default='tanh'
        Activation after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import MLP
    >>> mlp = MLP(3, 2, hidden_layer_sizes=(16, 16))
    >>> mlp(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    >>> MLP.from_config(mlp.get_config())(torch.zeros(1, 3)).shape
    torch.Size([1, 2])
    """

    def __init__(
        self, n_inputs, n_outputs=None, hidden_layer_sizes=(64, 64), activation="tanh"
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        layers = []
        width = n_inputs
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            width = size
        if n_outputs is not None:
            layers.append(nn.Linear(width, n_outputs))
        super().__init__(*layers)
        self.n_inputs = int(n_inputs)
        self.hidden_layer_sizes = [int(size) for size in hidden_layer_sizes]
        self.n_outputs = None if n_outputs is None else int(n_outputs)
        self.activation = activation

    def get_config(self):
        """The arguments that rebuild this module (JSON-serialisable)."""
        return {
            "n_inputs": self.n_inputs,
            "hidden_layer_sizes": list(self.hidden_layer_sizes),
            "n_outputs": self.n_outputs,
            "activation": self.activation,
        }

    @classmethod
    def from_config(cls, config):
        """An untrained module of the architecture ``config`` describes."""
        values = _check_config(
            config,
            {
                "n_inputs": "count",
                "hidden_layer_sizes": "sizes",
                "activation": "activation",
            },
        )
        n_outputs = config.get("n_outputs")
        if n_outputs is not None:
            _check_config(config, {"n_outputs": "count"})
        return cls(
            values["n_inputs"],
            n_outputs,
            values["hidden_layer_sizes"],
            values["activation"],
        )


class Standardize(nn.Module):
    """``(x - mean) / scale`` with the statistics stored as buffers.

    Parameters
    ----------
    mean : array-like of shape (n_features,)
    scale : array-like of shape (n_features,) or scalar
    """

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean))
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, x):
        return (x - self.mean) / self.scale


def _standardize_shapes(module):
    """Shapes of the ``standardize.*`` buffers, part of a module's config."""
    return {
        name: list(buffer.shape)
        for name, buffer in module.named_buffers()
        if name.startswith("standardize.")
    }


def _ones(shape):
    return torch.ones(shape)


def _body_config(module, body, n_inputs, n_outputs):
    """The configuration of a wrapper around ``body``: widths and body spec."""
    return {
        "n_inputs": int(n_inputs),
        "n_outputs": int(n_outputs),
        "body": module_spec(body),
        "standardize_shapes": _standardize_shapes(module),
    }


def _body_from_config(config, modules, n_inputs, n_outputs, key="body"):
    """The body (``config[key]``) a wrapper's configuration describes.

    Files written before networks became parameters describe an MLP by
    ``hidden_layer_sizes`` and ``activation`` instead (``n_outputs=None``: an
    MLP that ends on its last hidden layer).
    """
    if key not in config:
        values = _check_config(
            config, {"hidden_layer_sizes": "sizes", "activation": "activation"}
        )
        return MLP(
            n_inputs, n_outputs, values["hidden_layer_sizes"], values["activation"]
        )
    legacy = {"hidden_layer_sizes", "activation"} & set(config)
    if legacy:
        raise ValueError(f"a configuration with a {key} has no {sorted(legacy)}")
    registry = BUILTIN_MODULES if modules is None else modules
    return module_from_spec(config[key], registry)


class DiffusionNetwork(nn.Module):
    """``x -> head(features(standardize(x)))``: SpectralNet's network.

    During training the head has one output per wanted eigenvector (the constant
    included); after training it is replaced by the Rayleigh-Ritz map from the
    feature map's output to the diffusion coordinates, so that the network's
    output *is* the diffusion map.

    Parameters
    ----------
    mean, scale : array-like
        Input standardisation.
    features : torch.nn.Module
        The feature map, from ``(n, n_inputs)`` to ``(n, n_features)``: by
        default an :class:`MLP` without output layer, or the module built from
        the embedder's ``network`` parameter.
    n_features : int
        Width of the feature map's output.
    n_outputs : int
        Width of the linear head.

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import MLP, DiffusionNetwork
    >>> features = MLP(3, None, (8,))
    >>> network = DiffusionNetwork(torch.zeros(3), 1.0, features, 8, 2)
    >>> network(torch.zeros(4, 3)).shape
    torch.Size([4, 2])
    """

    def __init__(self, mean, scale, features, n_features, n_outputs):
        super().__init__()
        self.standardize = Standardize(mean, scale)
        self.features = features
        self.head = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        return self.head(self.features(self.standardize(x)))

    def forward_standardized(self, x):
        """The output for inputs already standardised (training works so).

        The standardisation's statistics are float64 buffers: data at any
        scale is standardised in float64 before the float32 training.
        """
        return self.head(self.features(x))

    def embed_features(self, x):
        """The feature map's output, the space the final head is a linear map of."""
        return self.features(self.standardize(x))

    def set_head(self, weight, bias):
        """Replace the head by ``x -> x @ weight + bias`` (numpy arrays)."""
        reference = self.head.weight
        # The initial weights are overwritten. Built on the CPU under a seed,
        # so that no global RNG moves (torch's skip_init would import sympy,
        # 0.26 s), then moved.
        with seeded_torch(0):
            head = nn.Linear(weight.shape[0], weight.shape[1], dtype=reference.dtype)
        head = head.to(reference.device)
        with torch.no_grad():
            head.weight.copy_(torch.as_tensor(weight.T, dtype=reference.dtype))
            head.bias.copy_(torch.as_tensor(bias, dtype=reference.dtype))
        self.head = head

    def get_config(self):
        """The arguments that rebuild this module (JSON-serialisable)."""
        return {
            "n_inputs": int(self.standardize.mean.shape[0]),
            "n_features": int(self.head.in_features),
            "n_outputs": int(self.head.out_features),
            "features": module_spec(self.features),
            "standardize_shapes": _standardize_shapes(self),
        }

    @classmethod
    def from_config(cls, config, modules=None):
        """An untrained module of the architecture ``config`` describes.

        ``modules`` (``{name: factory}``) resolves the feature map's factory;
        the built-in modules by default.
        """
        values = _check_config(config, {"n_inputs": "count", "n_outputs": "count"})
        n_inputs = values["n_inputs"]
        if "features" in config:
            n_features = _check_config(config, {"n_features": "count"})["n_features"]
        else:  # files written before networks became parameters
            sizes = _check_config(config, {"hidden_layer_sizes": "sizes"})
            if not sizes["hidden_layer_sizes"]:
                raise ValueError("a DiffusionNetwork needs at least one hidden layer")
            n_features = sizes["hidden_layer_sizes"][-1]
        features = _body_from_config(config, modules, n_inputs, None, "features")
        shapes = config.get("standardize_shapes", {})
        scale_shape = shapes.get("standardize.scale", [n_inputs])
        if not isinstance(scale_shape, list) or scale_shape not in ([], [n_inputs]):
            raise ValueError(f"invalid standardize_shapes: {shapes!r}")
        return cls(
            torch.zeros(n_inputs),
            _ones(scale_shape),
            features,
            n_features,
            values["n_outputs"],
        )


class Decoder(nn.Module):
    """``z -> mean_x + scale_x * mlp((z - mean_z) / scale_z)``: the VDAE's map g.

    Parameters
    ----------
    latent_mean, latent_scale : array-like
        Standardisation of the latent input.
    data_mean, data_scale : array-like
        De-standardisation of the output.
    mlp : torch.nn.Module
        The network from ``(n, n_latent)`` to ``(n, n_features)``, in
        standardised units: an :class:`MLP` by default, or the module built
        from the sampler's ``decoder`` parameter (the attribute keeps the name
        ``mlp`` so that older model files load).

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import MLP, Decoder
    >>> mean, scale = torch.zeros(2), torch.ones(2)
    >>> decoder = Decoder(mean, scale, torch.zeros(3), torch.ones(3), MLP(2, 3, (8,)))
    >>> decoder(torch.zeros(5, 2)).shape
    torch.Size([5, 3])
    """

    def __init__(self, latent_mean, latent_scale, data_mean, data_scale, mlp):
        super().__init__()
        self.standardize = Standardize(latent_mean, latent_scale)
        self.mlp = mlp
        self.register_buffer("data_mean", torch.as_tensor(data_mean))
        self.register_buffer("data_scale", torch.as_tensor(data_scale))

    def forward(self, z):
        return self.data_mean + self.data_scale * self.mlp(self.standardize(z))

    def forward_standardized(self, z):
        """``(g(z) - data_mean) / data_scale``, the output in standardised units.

        Training compares it with standardised data, so that data at any scale
        (the de-standardisation's float64 buffers) trains in float32.
        """
        return self.mlp(self.standardize(z))

    def get_config(self):
        """The arguments that rebuild this module (JSON-serialisable)."""
        return _body_config(
            self, self.mlp, self.standardize.mean.shape[0], self.data_mean.shape[0]
        )

    @classmethod
    def from_config(cls, config, modules=None):
        """An untrained module of the architecture ``config`` describes.

        ``modules`` (``{name: factory}``) resolves the network's factory; the
        built-in modules by default.
        """
        values = _check_config(config, {"n_inputs": "count", "n_outputs": "count"})
        n_inputs, n_outputs = values["n_inputs"], values["n_outputs"]
        return cls(
            torch.zeros(n_inputs),
            _ones([n_inputs]),
            torch.zeros(n_outputs),
            _ones([n_outputs]),
            _body_from_config(config, modules, n_inputs, n_outputs),
        )


class CholeskyNetwork(nn.Module):
    """``z -> L(z)``, lower triangular with positive diagonal; ``C = L L^T``.

    The network's ``D (D + 1) / 2`` outputs fill the lower triangle; the
    diagonal goes through ``softplus`` plus ``min_diagonal``. Rows are then
    scaled by ``output_scale`` (the typical latent step size per coordinate), so
    that the network works in units of order one; a diagonal times a lower
    triangular matrix stays lower triangular with a positive diagonal.

    Parameters
    ----------
    latent_mean, latent_scale : array-like
        Standardisation of the input.
    output_scale : array-like of shape (D,)
    mlp : torch.nn.Module
        The network from ``(n, D)`` to ``(n, D (D + 1) / 2)``: an :class:`MLP`
        by default, or the module built from the sampler's
        ``covariance_network`` parameter.
    min_diagonal : float, default=1e-3

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import MLP, CholeskyNetwork
    >>> ones = torch.ones(2)
    >>> network = CholeskyNetwork(torch.zeros(2), ones, ones, MLP(2, 3, (8,)))
    >>> factor = network(torch.zeros(5, 2))
    >>> factor.shape, bool((torch.diagonal(factor, dim1=1, dim2=2) > 0).all())
    (torch.Size([5, 2, 2]), True)
    """

    def __init__(self, latent_mean, latent_scale, output_scale, mlp, min_diagonal=1e-3):
        super().__init__()
        n_latent = len(latent_mean)
        self.n_latent = n_latent
        self.min_diagonal = float(min_diagonal)
        self.standardize = Standardize(latent_mean, latent_scale)
        self.mlp = mlp
        self.register_buffer("output_scale", torch.as_tensor(output_scale))
        rows, cols = torch.tril_indices(n_latent, n_latent)
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols)
        self.register_buffer("is_diagonal", rows == cols)

    def forward(self, z):
        raw = self.mlp(self.standardize(z))
        values = torch.where(
            self.is_diagonal,
            nn.functional.softplus(raw) + self.min_diagonal,
            raw,
        )
        factor = raw.new_zeros((*raw.shape[:-1], self.n_latent, self.n_latent))
        factor[..., self.rows, self.cols] = values
        return self.output_scale[:, None] * factor

    def get_config(self):
        """The arguments that rebuild this module (JSON-serialisable)."""
        n_latent = self.n_latent
        config = _body_config(self, self.mlp, n_latent, n_latent * (n_latent + 1) // 2)
        return {**config, "min_diagonal": self.min_diagonal}

    @classmethod
    def from_config(cls, config, modules=None):
        """An untrained module of the architecture ``config`` describes.

        ``modules`` (``{name: factory}``) resolves the network's factory; the
        built-in modules by default.
        """
        values = _check_config(
            config,
            {"n_inputs": "count", "n_outputs": "count", "min_diagonal": "positive"},
        )
        n_latent = values["n_inputs"]
        if values["n_outputs"] != n_latent * (n_latent + 1) // 2:
            raise ValueError(
                f"a CholeskyNetwork of {n_latent} inputs has "
                f"{n_latent * (n_latent + 1) // 2} outputs, not {values['n_outputs']}"
            )
        return cls(
            torch.zeros(n_latent),
            _ones([n_latent]),
            _ones([n_latent]),
            _body_from_config(config, modules, n_latent, values["n_outputs"]),
            float(values["min_diagonal"]),
        )


#: The modules that model files rebuild by name (``skvdae.io``), and the
#: factories a file may name for a network parameter.
BUILTIN_MODULES = {
    cls.__name__: cls
    for cls in (
        MLP,
        ConvEncoder,
        ConvDecoder,
        DiffusionNetwork,
        Decoder,
        CholeskyNetwork,
    )
}
