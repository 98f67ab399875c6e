"""Torch building blocks: the built-in modules and the one training loop.

- Modules for the estimators' network parameters, each built as
  ``factory(n_inputs, n_outputs, **params)``: :class:`MLP` (the default),
  :class:`ConvEncoder` (the embedder's ``network`` for images) and
  :class:`ConvDecoder` (the sampler's ``decoder`` for images). Any
  ``torch.nn.Module`` subclass or function with that signature works too; see
  the user guide's "Bring your own network".
- The wrappers the estimators put around them: :class:`DiffusionNetwork`
  (SpectralNet's network), :class:`Decoder` and :class:`CholeskyNetwork` (the
  VDAE's networks). Each describes its architecture with ``get_config()`` and
  is rebuilt with ``from_config(config)``, which is how safe model files
  store them.
- Training: :func:`fit_minibatches`, shared by SpectralNet, the VDAE and the
  benchmark's baselines, with :class:`ConstantSchedule` and
  :class:`StepSchedule` learning rates, one divergence policy and optional
  early stopping; :class:`Adam`, ``torch.optim.Adam``'s update without its
  one-time import of the compiler.
- Seeding without global state: :func:`make_generator`, :func:`seeded_torch`,
  :func:`seed_from`.
- :func:`sparse_matmul`: a scipy sparse matrix times a dense array in
  float64 on torch's threads, where scipy's product has one.
"""

from ._activations import ACTIVATIONS as ACTIVATIONS
from ._callbacks import CallbackSupportMixin as CallbackSupportMixin
from ._callbacks import FitProgress
from ._conv import ConvDecoder, ConvEncoder
from ._factory import build_module as build_module
from ._factory import build_network as build_network
from ._factory import check_module_params as check_module_params
from ._modules import BUILTIN_MODULES as BUILTIN_MODULES
from ._modules import (
    MLP,
    CholeskyNetwork,
    Decoder,
    DiffusionNetwork,
    Standardize,
)
from ._optim import Adam
from ._torch_utils import VALID_DEVICES as VALID_DEVICES
from ._torch_utils import (
    inference_copy,
    make_generator,
    predict_numpy,
    resolve_device,
    seed_from,
    seeded_torch,
    sparse_matmul,
)
from ._training import (
    ConstantSchedule,
    StepSchedule,
    TrainingResult,
    descend,
    fit_minibatches,
)

__all__ = [
    "MLP",
    "Adam",
    "CholeskyNetwork",
    "ConstantSchedule",
    "ConvDecoder",
    "ConvEncoder",
    "Decoder",
    "DiffusionNetwork",
    "FitProgress",
    "Standardize",
    "StepSchedule",
    "TrainingResult",
    "descend",
    "fit_minibatches",
    "inference_copy",
    "make_generator",
    "predict_numpy",
    "resolve_device",
    "seed_from",
    "seeded_torch",
    "sparse_matmul",
]
