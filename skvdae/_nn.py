"""Torch modules. No training logic here; see ``_spectralnet.py``."""

import torch
from torch import nn

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}


class MLP(nn.Sequential):
    """Fully connected layers with an activation after each hidden layer.

    Parameters
    ----------
    n_inputs : int
    hidden_layer_sizes : sequence of int
    n_outputs : int or None
        Width of a final linear layer; ``None`` ends on the last hidden layer
        (its activation included), which makes the module a feature map.
    activation : {'tanh', 'relu', 'silu', 'softplus'}
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


class Standardize(nn.Module):
    """``(x - mean) / scale`` with the statistics stored as buffers."""

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean))
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, x):
        return (x - self.mean) / self.scale


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
    n_outputs : int
    activation : str
    """

    def __init__(self, mean, scale, hidden_layer_sizes, n_outputs, activation="tanh"):
        super().__init__()
        self.standardize = Standardize(mean, scale)
        self.features = MLP(len(mean), hidden_layer_sizes, None, activation)
        self.head = nn.Linear(hidden_layer_sizes[-1], n_outputs)

    def forward(self, x):
        return self.head(self.features(self.standardize(x)))

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


class Decoder(nn.Module):
    """``z -> mean_x + scale_x * mlp((z - mean_z) / scale_z)``: the VDAE's map g.

    Parameters
    ----------
    latent_mean, latent_scale : array-like
        Standardisation of the latent input.
    data_mean, data_scale : array-like
        De-standardisation of the output.
    hidden_layer_sizes : sequence of int
    activation : str
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
    activation : str
    min_diagonal : float
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
