"""Torch building blocks: the built-in modules and the one training loop.

- Modules: :class:`MLP`, :class:`DiffusionNetwork` (SpectralNet's network),
  :class:`Decoder` and :class:`CholeskyNetwork` (the VDAE's networks). Each
  describes its architecture with ``get_config()`` and is rebuilt with
  ``from_config(config)``, which is how safe model files store them.
- Training: :func:`fit_minibatches`, shared by SpectralNet, the VDAE and the
  benchmark's baselines, with :class:`ConstantSchedule` and
  :class:`StepSchedule` learning rates, one divergence policy and optional
  early stopping.
- Seeding without global state: :func:`make_generator`, :func:`seeded_torch`,
  :func:`seed_from`.
"""

from ._callbacks import CallbackSupportMixin as CallbackSupportMixin
from ._callbacks import FitProgress
from ._modules import ACTIVATIONS as ACTIVATIONS
from ._modules import BUILTIN_MODULES as BUILTIN_MODULES
from ._modules import (
    MLP,
    CholeskyNetwork,
    Decoder,
    DiffusionNetwork,
    Standardize,
)
from ._torch_utils import VALID_DEVICES as VALID_DEVICES
from ._torch_utils import (
    inference_copy,
    make_generator,
    predict_numpy,
    resolve_device,
    seed_from,
    seeded_torch,
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
    "CholeskyNetwork",
    "ConstantSchedule",
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
]
