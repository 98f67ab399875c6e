"""Device choice, seeding and dtype handling shared by the estimators.

Nothing here touches global torch state: randomness flows through explicit
``torch.Generator`` objects, and network initialisation runs inside
``torch.random.fork_rng`` so that the caller's global RNG is unchanged.
"""

import contextlib
import copy

import numpy as np
import torch

VALID_DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device):
    """Turn the ``device`` parameter into a ``torch.device``.

    Raises
    ------
    ValueError
        For ``'cuda'`` on a machine without a usable CUDA device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but CUDA is not available on this "
            "machine; use device='cpu' or device='auto'."
        )
    return torch.device(device)


def seed_from(random_state):
    """A 63-bit integer seed drawn from a ``numpy.random.RandomState``."""
    return int(random_state.randint(0, np.iinfo(np.int32).max)) * 2**31 + int(
        random_state.randint(0, np.iinfo(np.int32).max)
    )


def make_generator(seed, device):
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


@contextlib.contextmanager
def seeded_torch(seed):
    """Seed torch's CPU RNG for the block and restore the caller's state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def inference_copy(module):
    """A float64 CPU copy of ``module`` in eval mode, with gradients disabled.

    Used after training: float64 makes a row's output independent of the batch
    it is computed in (to round-off), and a CPU copy pickles and loads on a
    machine without CUDA.
    """
    module = copy.deepcopy(module).to(device="cpu", dtype=torch.float64).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def predict_numpy(module, X, batch_size=65536, method=None):
    """Forward ``X`` (numpy) through a float64 CPU module, batched, no grad.

    ``method`` names another method of the module to call instead of
    ``forward`` (e.g. ``"embed_features"``).
    """
    function = module if method is None else getattr(module, method)
    out = None
    with torch.no_grad():
        # A batch of zero rows still runs once, so that the output has its width.
        for start in range(0, max(X.shape[0], 1), batch_size):
            batch = torch.tensor(X[start : start + batch_size], dtype=torch.float64)
            values = function(batch).numpy()
            if out is None:  # written in place: no list of batches to join
                out = np.empty((X.shape[0], *values.shape[1:]))
            out[start : start + len(values)] = values
    return out
