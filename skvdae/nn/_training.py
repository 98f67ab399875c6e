"""The one minibatch training loop: schedule, divergence policy, early stopping.

SpectralNet, the VDAE and the benchmark's baselines all train through
:func:`fit_minibatches`. It owns what every loop needs and none should write
again: the learning-rate schedule, snapshots and restarts when a loss is not
finite, optional early stopping on the loss, and progress reports (verbose
lines and scikit-learn callbacks, see :mod:`skvdae.nn._callbacks`).
"""

import copy
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

#: Restarts from the last snapshot (each at half the learning rate) before a
#: fit whose loss keeps turning non-finite fails.
MAX_RESTARTS = 5

#: Steps between snapshots, and the window of the early-stopping rule.
SNAPSHOT_EVERY = 50

#: A loss this many times above the largest of the first window's losses is a
#: divergence, like a non-finite one (a learning rate far too large blows the
#: loss up by millions without ever producing NaN).
MAX_GROWTH = 1e4


class ConstantSchedule:
    """The learning rate stays as set.

    Examples
    --------
    >>> from skvdae.nn import ConstantSchedule
    >>> ConstantSchedule().divisor(100, 100)
    1.0
    """

    def divisor(self, iteration, max_iter):
        """What the base rate is divided by at ``iteration`` (1-based)."""
        return 1.0


class StepSchedule:
    """The learning rate divided by ``divisor`` from a share ``at`` of the steps on.

    Parameters
    ----------
    at : float, default=0.8
        Share of ``max_iter`` after which the rate drops.
    divisor : float, default=10.0
        What the rate is divided by for the remaining steps.

    Examples
    --------
    >>> from skvdae.nn import StepSchedule
    >>> schedule = StepSchedule(at=0.8, divisor=10.0)
    >>> schedule.divisor(80, 100), schedule.divisor(81, 100)
    (1.0, 10.0)
    """

    def __init__(self, at=0.8, divisor=10.0):
        self.at = at
        self.divisor_ = float(divisor)

    def divisor(self, iteration, max_iter):
        """What the base rate is divided by at ``iteration`` (1-based)."""
        return self.divisor_ if iteration >= int(self.at * max_iter) + 1 else 1.0


class DivergenceGuard:
    """Snapshots of modules and optimisers, restored when a step fails.

    ``recover`` restores the last snapshot and returns the number of restarts
    so far; after ``max_restarts`` of them it raises ``FloatingPointError``
    naming ``name`` and ``advice``: a fit fails loudly rather than returning
    NaN.
    """

    def __init__(self, modules, optimizers, name, advice, max_restarts):
        self.modules = modules
        self.optimizers = optimizers
        self.name = name
        self.advice = advice
        self.max_restarts = max_restarts
        self.restarts = 0
        self._snapshot = self._take()

    def _take(self):
        return [copy.deepcopy(item.state_dict()) for item in self._items()]

    def _items(self):
        return [*self.modules, *self.optimizers]

    def step_done(self, iteration):
        """Call after each successful step; keeps a snapshot every few steps."""
        if iteration % SNAPSHOT_EVERY == 0:
            self._snapshot = self._take()

    def recover(self, losses, cause="non-finite loss"):
        """Restore the last snapshot, or raise after too many restarts."""
        self.restarts += 1
        if self.restarts > self.max_restarts:
            shown = "" if losses is None else f" {losses}"
            raise FloatingPointError(
                f"{self.name} training diverged ({cause}{shown}) after "
                f"{self.max_restarts} restarts with a halved learning rate; "
                f"{self.advice}"
            )
        for item, state in zip(self._items(), self._snapshot, strict=True):
            item.load_state_dict(state)
        return self.restarts


@dataclass
class TrainingResult:
    """What :func:`fit_minibatches` returns.

    Attributes
    ----------
    losses : ndarray of shape (n_iter,)
        The monitored loss of every successful step.
    history : list of dict
        Every value the step returned, per successful step, as floats.
    n_iter : int
        Successful steps.
    stopped_early : bool
        Whether the early-stopping rule (or a callback) ended the run.
    """

    losses: np.ndarray
    history: list = field(default_factory=list)
    n_iter: int = 0
    stopped_early: bool = False


def _as_floats(output):
    if isinstance(output, dict):
        return {key: float(value) for key, value in output.items()}
    return {"loss": float(output.detach())}


def fit_minibatches(
    step,
    *,
    max_iter,
    optimizers,
    modules=(),
    schedule=None,
    tol=None,
    n_iter_no_change=10,
    max_restarts=MAX_RESTARTS,
    max_growth=MAX_GROWTH,
    name="model",
    advice="try a smaller learning_rate.",
    progress=None,
    after_backward=None,
):
    """Run ``max_iter`` minibatch steps with one policy for every network.

    Parameters
    ----------
    step : callable
        ``step(iteration) -> loss``, called with ``iteration = 1 ..
        max_iter``. It returns either a scalar tensor, which the loop
        minimises with ``optimizers`` (zero the gradients, backpropagate, step
        each optimiser), or a dict of losses (tensors or floats) after updating
        the parameters itself (a GAN's alternating updates); the first entry
        is the monitored loss. ``None`` reports a degenerate batch.
    max_iter : int
        Steps to attempt.
    optimizers : sequence of torch.optim.Optimizer or Adam
        Their learning rates follow the schedule; their states are part of the
        snapshots.
    modules : sequence of torch.nn.Module, default=()
        Snapshotted every ``SNAPSHOT_EVERY`` steps.
    schedule : ConstantSchedule or StepSchedule or None, default=None
        ``None`` keeps the rates constant.
    tol : float or None, default=None
        Early stopping: the loop ends when the mean loss over windows of
        ``SNAPSHOT_EVERY`` steps has not fallen below ``best - tol * |best|``
        for ``n_iter_no_change`` windows in a row; a run that reaches
        ``max_iter`` first warns with a ``ConvergenceWarning``. ``None``
        always runs ``max_iter`` steps.
    n_iter_no_change : int, default=10
        Windows without improvement before stopping (with ``tol``).
    max_restarts : int, default=MAX_RESTARTS
        Divergence policy: a step whose loss is ``None``, not finite, or more
        than ``max_growth`` times the largest loss of the first
        ``SNAPSHOT_EVERY`` steps restores the last snapshot, and the learning
        rates are halved per restart; the next restart past ``max_restarts``
        raises ``FloatingPointError`` (0: the first diverging step raises).
    max_growth : float or None, default=MAX_GROWTH
        See ``max_restarts``; ``None`` checks finiteness only (for losses
        without a floor, such as a GAN's).
    name : str, default='model'
        Used in messages.
    advice : str
        Appended to the divergence error.
    progress : FitProgress or None, default=None
        Receives every step (verbose lines, scikit-learn callbacks); a
        callback's request to stop ends the run.
    after_backward : callable or None, default=None
        Called between the backward pass and the optimisers' steps (a
        data-parallel fit averages the gradients over processes there).

    Returns
    -------
    TrainingResult

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import fit_minibatches
    >>> weight = torch.nn.Parameter(torch.tensor([3.0]))
    >>> optimizer = torch.optim.SGD([weight], lr=0.1)
    >>> result = fit_minibatches(
    ...     lambda iteration: (weight**2).sum(), max_iter=50, optimizers=[optimizer]
    ... )
    >>> result.n_iter, bool(abs(weight.item()) < 0.01)
    (50, True)
    """
    schedule = schedule or ConstantSchedule()
    guard = DivergenceGuard(list(modules), list(optimizers), name, advice, max_restarts)
    base_rates = [[group["lr"] for group in opt.param_groups] for opt in optimizers]
    stopper = _EarlyStopping(tol, n_iter_no_change)
    history, losses = [], []
    reference = 0.0  # the largest |loss| of the first window
    rate_key = None
    stopped = False
    for iteration in range(1, max_iter + 1):
        key = (schedule.divisor(iteration, max_iter), guard.restarts)
        if key != rate_key:
            rate_key = key
            for optimizer, rates in zip(optimizers, base_rates, strict=True):
                for group, rate in zip(optimizer.param_groups, rates, strict=True):
                    group["lr"] = rate / key[0] / 2 ** key[1]
        if progress is not None:
            progress.step_begin(iteration)
        output = step(iteration)
        values = None if output is None else _as_floats(output)
        cause = _divergence(values, reference, max_growth)
        if cause:
            guard.recover(values, cause)
            if progress is not None and progress.step_end(iteration, None):
                stopped = True
                break
            continue
        if not isinstance(output, dict):
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            output.backward()
            if after_backward is not None:
                after_backward()
            for optimizer in optimizers:
                optimizer.step()
        history.append(values)
        losses.append(next(iter(values.values())))
        if len(losses) <= SNAPSHOT_EVERY:
            reference = max(reference, abs(losses[-1]))
        guard.step_done(iteration)
        stop = progress is not None and progress.step_end(iteration, values)
        if stopper.update(losses[-1]) or stop:
            stopped = True
            break
    if tol is not None and not stopped:
        warnings.warn(
            f"{name} did not converge within max_iter={max_iter} steps (tol={tol}, "
            f"n_iter_no_change={n_iter_no_change}); increase max_iter.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return TrainingResult(
        losses=np.asarray(losses, dtype=np.float64),
        history=history,
        n_iter=len(losses),
        stopped_early=stopped,
    )


def _divergence(values, reference, max_growth):
    """Why a step diverged, or an empty string."""
    if values is None or not all(math.isfinite(v) for v in values.values()):
        return "non-finite loss"
    loss = next(iter(values.values()))
    if max_growth is not None and reference > 0 and loss > max_growth * reference:
        return f"exploding loss, over {max_growth:g} times its start,"
    return ""


class _EarlyStopping:
    """Window means of the loss; True once ``patience`` windows brought no gain."""

    def __init__(self, tol, patience):
        self.tol = tol
        self.patience = patience
        self.window = []
        self.best = math.inf
        self.stale = 0

    def update(self, loss):
        if self.tol is None:
            return False
        self.window.append(loss)
        if len(self.window) < SNAPSHOT_EVERY:
            return False
        mean = float(np.mean(self.window))
        self.window = []
        if mean < self.best - self.tol * abs(self.best) or self.best == math.inf:
            self.best = mean
            self.stale = 0
        else:
            self.stale += 1
        return self.stale >= self.patience


def descend(optimizer, loss):
    """One optimiser step on ``loss``, for steps that update several models."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
