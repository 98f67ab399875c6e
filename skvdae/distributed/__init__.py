"""Data-parallel training on ``torch.distributed`` (gloo on CPU, NCCL on GPUs).

Start the script or the command line under ``torchrun``; the estimators find
the initialised process group and train data-parallel (see the user guide's
"Several processes and machines"):

- :class:`Communicator`: the collectives the package uses, on numpy arrays.
- :func:`shard_bounds`: the contiguous rows each process owns.
- :func:`process_group_active`: whether fits run data-parallel.
- :func:`single_process`: a block whose fits stay in their own process.
- :func:`init_from_environment`: ``init_process_group`` from ``torchrun``'s
  environment variables.
"""

from ._communicator import (
    Communicator,
    init_from_environment,
    process_group_active,
    shard_bounds,
    single_process,
)

__all__ = [
    "Communicator",
    "init_from_environment",
    "process_group_active",
    "shard_bounds",
    "single_process",
]
