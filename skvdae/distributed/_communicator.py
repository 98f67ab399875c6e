"""Collective operations of a ``torch.distributed`` process group, on numpy arrays.

The estimators train data-parallel when they find an initialised process group
of more than one process (started by ``torchrun``, or by the user's own
``torch.distributed.init_process_group``). Every collective the package needs
lives here: sums and gathers of numpy arrays (through tensors on the backend's
device: the CPU for gloo, the current CUDA device for NCCL), a sum with
gradients for the losses, the averaging of gradients and the broadcast of
initial parameters.
"""

import contextlib
import threading

import numpy as np
import torch

# Each process's random streams are offset by its rank times this (odd, so
# that distinct ranks never share a stream modulo 2**63).
_RANK_STRIDE = 0x9E3779B97F4A7C15


_LOCAL = threading.local()


@contextlib.contextmanager
def single_process():
    """Fit in this process alone inside the block, even in a process group.

    For a script that initialised a process group for its own purposes and
    fits an estimator on some processes only (a data-parallel fit needs every
    process of the group to call ``fit`` with the same data and parameters).

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae import DiffusionMapEmbedder
    >>> from skvdae.distributed import single_process
    >>> X = np.random.RandomState(0).normal(size=(50, 2))
    >>> with single_process():
    ...     embedder = DiffusionMapEmbedder(2, solver="exact").fit(X)
    >>> embedder.world_size_
    1
    """
    previous = getattr(_LOCAL, "single", False)
    _LOCAL.single = True
    try:
        yield
    finally:
        _LOCAL.single = previous


def process_group_active():
    """Whether fits run data-parallel: a group of several processes, not disabled.

    True when ``torch.distributed`` has an initialised group of more than one
    process, outside a :func:`single_process` block.
    """
    return (
        not getattr(_LOCAL, "single", False)
        and torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


class Communicator:
    """The current process group, seen through numpy arrays.

    Build it with :meth:`current`, which returns ``None`` outside a process
    group of several processes (the single-process code paths).

    Attributes
    ----------
    rank : int
    world_size : int
    device : torch.device
        Where the collectives' tensors live: the CPU for gloo, the current
        CUDA device for NCCL.

    Examples
    --------
    Outside ``torchrun`` there is no group:

    >>> from skvdae.distributed import Communicator
    >>> Communicator.current() is None
    True
    """

    def __init__(self):
        distributed = torch.distributed
        self.rank = distributed.get_rank()
        self.world_size = distributed.get_world_size()
        if distributed.get_backend() == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.device = torch.device("cpu")

    @classmethod
    def current(cls):
        """The communicator of the initialised group, or ``None`` for one process."""
        return cls() if process_group_active() else None

    # -- shards ---------------------------------------------------------------

    def shard(self, n_samples):
        """This process's contiguous rows ``(start, stop)`` of ``n_samples``."""
        return shard_bounds(n_samples, self.world_size)[self.rank]

    def seed(self, seed):
        """This process's seed derived from the shared ``seed``."""
        return (int(seed) + self.rank * _RANK_STRIDE) % 2**63

    # -- numpy collectives ----------------------------------------------------

    def _tensor(self, array):
        # A C-ordered copy (np.ascontiguousarray would make a 0-d array 1-d).
        return torch.as_tensor(np.array(array, order="C"), device=self.device)

    def allreduce(self, array, op="sum"):
        """Elementwise sum (or ``'min'``, ``'max'``) of ``array`` over processes."""
        operation = {
            "sum": torch.distributed.ReduceOp.SUM,
            "min": torch.distributed.ReduceOp.MIN,
            "max": torch.distributed.ReduceOp.MAX,
        }[op]
        tensor = self._tensor(array)
        torch.distributed.all_reduce(tensor, op=operation)
        result = tensor.cpu().numpy()
        return result if np.ndim(array) else result[()]

    def allgather(self, array):
        """The processes' arrays concatenated along axis 0, in rank order.

        The arrays may differ in length along axis 0 (not in their other
        dimensions or dtype). Each process's part is broadcast straight into
        the result, so memory is the result and one part.
        """
        array = np.asarray(array)
        lengths = self.allreduce(
            np.eye(self.world_size, dtype=np.int64)[self.rank] * array.shape[0]
        )
        result = np.empty((int(lengths.sum()), *array.shape[1:]), dtype=array.dtype)
        ends = np.cumsum(lengths)
        for rank, (length, end) in enumerate(zip(lengths, ends, strict=True)):
            part = result[end - length : end]
            if rank == self.rank:
                part[...] = array
            if length == 0:
                continue
            if self.device.type == "cpu":
                torch.distributed.broadcast(torch.from_numpy(part), src=rank)
            else:
                tensor = self._tensor(part)
                torch.distributed.broadcast(tensor, src=rank)
                part[...] = tensor.cpu().numpy()
        return result

    # -- torch collectives ----------------------------------------------------

    def sum_with_gradient(self, tensor):
        """Sum of ``tensor`` over processes, differentiable.

        The gradient that reaches each process's ``tensor`` is the sum of the
        processes' gradients of the result, so that with the parameters'
        gradients then averaged (:meth:`average_gradients`) every process
        descends the gradient of the common loss.
        """
        device = tensor.device
        return _SumOverProcesses.apply(tensor.to(self.device)).to(device)

    def average_gradients(self, modules):
        """Average the parameters' gradients over processes, in place.

        One all-reduce of all the gradients, flattened into one buffer.
        """
        grads = [
            parameter.grad
            for module in modules
            for parameter in module.parameters()
            if parameter.grad is not None
        ]
        if not grads:
            return
        flat = torch.cat([grad.reshape(-1).to(self.device) for grad in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def broadcast_parameters(self, modules):
        """Rank 0's parameters and buffers to every process, in place."""
        with torch.no_grad():
            for module in modules:
                for tensor in [*module.parameters(), *module.buffers()]:
                    copy = tensor.detach().to(self.device).clone()
                    torch.distributed.broadcast(copy, src=0)
                    tensor.copy_(copy)

    def barrier(self):
        torch.distributed.barrier()


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the incoming gradients.

    The loss on every process depends on every process's tensor, so the
    gradient of a process's tensor is the sum of the processes' gradients of
    the result (torch.distributed.nn.functional.all_reduce, deprecated).
    """

    @staticmethod
    def forward(ctx, tensor):
        result = tensor.clone()
        torch.distributed.all_reduce(result)
        return result

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


def shard_bounds(n_samples, world_size):
    """Contiguous ``(start, stop)`` rows of each of ``world_size`` processes.

    Examples
    --------
    >>> from skvdae.distributed import shard_bounds
    >>> shard_bounds(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    base, extra = divmod(n_samples, world_size)
    edges, start = [], 0
    for rank in range(world_size):
        stop = start + base + (1 if rank < extra else 0)
        edges.append((start, stop))
        start = stop
    return edges


def init_from_environment(backend=None):
    """Initialise the process group that ``torchrun`` describes, if any.

    ``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
    ``MASTER_ADDR`` and ``MASTER_PORT``; with ``WORLD_SIZE`` above 1 and no
    group yet, this calls ``torch.distributed.init_process_group`` with
    ``backend`` (``None``: NCCL when CUDA is available, gloo otherwise) and,
    for NCCL, selects the GPU ``LOCAL_RANK``.

    Returns
    -------
    bool
        Whether a group was initialised here (the caller then destroys it with
        ``torch.distributed.destroy_process_group()`` when done).
    """
    import os

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if (
        world_size <= 1
        or not torch.distributed.is_available()
        or torch.distributed.is_initialized()
    ):
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend, init_method="env://")
    return True
