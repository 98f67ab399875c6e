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

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}


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


# The configuration entries of a module built around one MLP.
_NETWORK_KEYS = {
    "n_inputs": "count",
    "hidden_layer_sizes": "sizes",
    "n_outputs": "count",
    "activation": "activation",
}


def _network_config(module, mlp, n_outputs):
    """The configuration of a module around ``mlp`` (see ``_NETWORK_KEYS``)."""
    return {
        "n_inputs": mlp.n_inputs,
        "hidden_layer_sizes": list(mlp.hidden_layer_sizes),
        "n_outputs": n_outputs,
        "activation": mlp.activation,
        "standardize_shapes": _standardize_shapes(module),
    }


class MLP(nn.Sequential):
    """Fully connected layers with an activation after each hidden layer.

    Parameters
    ----------
    n_inputs : int
        Input width.
    hidden_layer_sizes : sequence of int
        Width of each hidden layer.
    n_outputs : int or None, default=None
        Width of a final linear layer; ``None`` ends on the last hidden layer
        (its activation included), which makes the module a feature map.
    activation : {'tanh', 'relu', 'silu', 'softplus'}, default='tanh'
        Activation after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import MLP
    >>> mlp = MLP(3, (16, 16), 2)
    >>> mlp(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    >>> MLP.from_config(mlp.get_config())(torch.zeros(1, 3)).shape
    torch.Size([1, 2])
    """

    def __init__(self, n_inputs, hidden_layer_sizes, n_outputs=None, activation="tanh"):
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
            values["hidden_layer_sizes"],
            n_outputs,
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


class DiffusionNetwork(nn.Module):
    """``x -> head(features(x))``: SpectralNet's network.

    During training the head has one output per wanted eigenvector (the constant
    included); after training it is replaced by the Rayleigh-Ritz map from the
    last hidden layer to the diffusion coordinates, so that the network's output
    *is* the diffusion map.

    Parameters
    ----------
    mean, scale : array-like
        Input standardisation.
    hidden_layer_sizes : sequence of int
        Hidden layers of the feature map (at least one).
    n_outputs : int
        Width of the linear head.
    activation : str, default='tanh'
        Activation of the hidden layers.

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import DiffusionNetwork
    >>> network = DiffusionNetwork(torch.zeros(3), 1.0, (8,), 2)
    >>> network(torch.zeros(4, 3)).shape
    torch.Size([4, 2])
    """

    def __init__(self, mean, scale, hidden_layer_sizes, n_outputs, activation="tanh"):
        super().__init__()
        self.standardize = Standardize(mean, scale)
        self.features = MLP(len(mean), hidden_layer_sizes, None, activation)
        self.head = nn.Linear(hidden_layer_sizes[-1], n_outputs)

    def forward(self, x):
        return self.head(self.features(self.standardize(x)))

    def forward_standardized(self, x):
        """The output for inputs already standardised (training works so).

        The standardisation's statistics are float64 buffers: data at any
        scale is standardised in float64 before the float32 training.
        """
        return self.head(self.features(x))

    def embed_features(self, x):
        """The last hidden layer, the space the final head is a linear map of."""
        return self.features(self.standardize(x))

    def set_head(self, weight, bias):
        """Replace the head by ``x -> x @ weight + bias`` (numpy arrays)."""
        reference = self.head.weight
        # skip_init: the weights are overwritten, and the global RNG stays untouched.
        head = torch.nn.utils.skip_init(
            nn.Linear,
            weight.shape[0],
            weight.shape[1],
            device=reference.device,
            dtype=reference.dtype,
        )
        with torch.no_grad():
            head.weight.copy_(torch.as_tensor(weight.T, dtype=reference.dtype))
            head.bias.copy_(torch.as_tensor(bias, dtype=reference.dtype))
        self.head = head

    def get_config(self):
        """The arguments that rebuild this module (JSON-serialisable)."""
        return _network_config(self, self.features, self.head.out_features)

    @classmethod
    def from_config(cls, config):
        """An untrained module of the architecture ``config`` describes."""
        values = _check_config(config, _NETWORK_KEYS)
        if not values["hidden_layer_sizes"]:
            raise ValueError("a DiffusionNetwork needs at least one hidden layer")
        shapes = config.get("standardize_shapes", {})
        scale_shape = shapes.get("standardize.scale", [values["n_inputs"]])
        if not isinstance(scale_shape, list) or scale_shape not in (
            [],
            [values["n_inputs"]],
        ):
            raise ValueError(f"invalid standardize_shapes: {shapes!r}")
        return cls(
            torch.zeros(values["n_inputs"]),
            _ones(scale_shape),
            values["hidden_layer_sizes"],
            values["n_outputs"],
            values["activation"],
        )


class Decoder(nn.Module):
    """``z -> mean_x + scale_x * mlp((z - mean_z) / scale_z)``: the VDAE's map g.

    Parameters
    ----------
    latent_mean, latent_scale : array-like
        Standardisation of the latent input.
    data_mean, data_scale : array-like
        De-standardisation of the output.
    hidden_layer_sizes : sequence of int
    activation : str, default='tanh'

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import Decoder
    >>> mean, scale = torch.zeros(2), torch.ones(2)
    >>> decoder = Decoder(mean, scale, torch.zeros(3), torch.ones(3), (8,))
    >>> decoder(torch.zeros(5, 2)).shape
    torch.Size([5, 3])
    """

    def __init__(
        self,
        latent_mean,
        latent_scale,
        data_mean,
        data_scale,
        hidden_layer_sizes,
        activation="tanh",
    ):
        super().__init__()
        self.standardize = Standardize(latent_mean, latent_scale)
        self.mlp = MLP(len(latent_mean), hidden_layer_sizes, len(data_mean), activation)
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
        return _network_config(self, self.mlp, self.mlp.n_outputs)

    @classmethod
    def from_config(cls, config):
        """An untrained module of the architecture ``config`` describes."""
        values = _check_config(config, _NETWORK_KEYS)
        n_inputs, n_outputs = values["n_inputs"], values["n_outputs"]
        return cls(
            torch.zeros(n_inputs),
            _ones([n_inputs]),
            torch.zeros(n_outputs),
            _ones([n_outputs]),
            values["hidden_layer_sizes"],
            values["activation"],
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
    hidden_layer_sizes : sequence of int
    activation : str, default='tanh'
    min_diagonal : float, default=1e-3

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import CholeskyNetwork
    >>> network = CholeskyNetwork(torch.zeros(2), torch.ones(2), torch.ones(2), (8,))
    >>> factor = network(torch.zeros(5, 2))
    >>> factor.shape, bool((torch.diagonal(factor, dim1=1, dim2=2) > 0).all())
    (torch.Size([5, 2, 2]), True)
    """

    def __init__(
        self,
        latent_mean,
        latent_scale,
        output_scale,
        hidden_layer_sizes,
        activation="tanh",
        min_diagonal=1e-3,
    ):
        super().__init__()
        n_latent = len(latent_mean)
        self.n_latent = n_latent
        self.min_diagonal = float(min_diagonal)
        self.standardize = Standardize(latent_mean, latent_scale)
        self.mlp = MLP(
            n_latent, hidden_layer_sizes, n_latent * (n_latent + 1) // 2, activation
        )
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
        config = _network_config(self, self.mlp, self.mlp.n_outputs)
        return {**config, "min_diagonal": self.min_diagonal}

    @classmethod
    def from_config(cls, config):
        """An untrained module of the architecture ``config`` describes."""
        values = _check_config(config, {**_NETWORK_KEYS, "min_diagonal": "positive"})
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
            values["hidden_layer_sizes"],
            values["activation"],
            float(values["min_diagonal"]),
        )


#: The modules that model files rebuild by name (``skvdae.io``).
BUILTIN_MODULES = {
    cls.__name__: cls for cls in (MLP, DiffusionNetwork, Decoder, CholeskyNetwork)
}
