"""Progress of a fit: verbose lines and scikit-learn's callback API.

scikit-learn 1.9 added callbacks (``sklearn.callback``): an estimator that
supports them has ``set_callbacks(*callbacks)``, opens a *context* per fit, one
sub-context per task (here: one per training step) and calls the callbacks'
``on_fit_task_begin`` / ``on_fit_task_end`` hooks, whose return value can stop
the iterations. The estimators of this package support them where scikit-learn
has them; with an older scikit-learn the mixin below is empty and only
``verbose`` reports progress.

A fit's task tree: the root ``fit`` task; for ``VDAESampler`` its subtasks
``embedder`` (the diffusion map's own tree is merged under it) and
``vdae``; each training run has one leaf per step, whose ``on_fit_task_end``
hook gets ``metadata={"name": run, "iteration": i, "max_iter": n, "loss":
value}`` (``run`` is ``'SpectralNet'`` or ``'VDAESampler'``; the loss is
``None`` for a step undone by the divergence policy).
"""

import contextlib

try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # scikit-learn < 1.9

    class CallbackSupportMixin:
        """Placeholder: scikit-learn before 1.9 has no callback API."""


def open_fit_context(estimator, max_subtasks):
    """The root callback context of a fit, its begin hook called; or None."""
    init = getattr(estimator, "_init_callback_context", None)
    if init is None:
        return None
    context = init(max_subtasks=max_subtasks)
    context.call_on_fit_task_begin(estimator=estimator)
    return context


def close_fit_context(estimator, context):
    """Call the end hook of a fit's root context (no-op without one)."""
    if context is not None:
        context.call_on_fit_task_end(estimator=estimator)


def subtask(context, task_name, max_subtasks):
    """A sub-context of ``context``, or None without callbacks."""
    if context is None:
        return None
    return context.subcontext(task_name=task_name, max_subtasks=max_subtasks)


@contextlib.contextmanager
def task(context, estimator, sub_estimator=None):
    """Call the begin and end hooks of ``context`` around a block.

    With ``sub_estimator``, the block is that estimator's fit: the context and
    the auto-propagated callbacks are handed to it, and its own task tree is
    merged under ``context``. A no-op when ``context`` is None.
    """
    if context is None:
        yield
        return
    context.call_on_fit_task_begin(estimator=estimator)
    if sub_estimator is not None and hasattr(sub_estimator, "set_callbacks"):
        with context.propagate_callback_context(sub_estimator):
            yield
    else:
        yield
    context.call_on_fit_task_end(estimator=estimator)


class FitProgress:
    """Reports the steps of one training run.

    Parameters
    ----------
    name : str
        Prefix of the verbose lines, e.g. ``'SpectralNet'``.
    max_iter : int
    verbose : int, default=0
        When positive, print ``[name] step i/max_iter  loss ...`` ten times per
        run.
    estimator : estimator or None, default=None
        The estimator whose callbacks are called.
    context : sklearn.callback.CallbackContext or None, default=None
        The task whose subtasks the steps are (its own hooks are the caller's,
        see :func:`task`); ``None`` without callbacks.
    """

    def __init__(self, name, max_iter, verbose=0, estimator=None, context=None):
        self.name = name
        self.max_iter = max_iter
        self.verbose = verbose
        self.estimator = estimator
        self.context = context
        self._step_context = None

    def step_begin(self, iteration):
        if self.context is not None:
            self._step_context = self.context.subcontext(task_name="step")
            self._step_context.call_on_fit_task_begin(estimator=self.estimator)

    def step_end(self, iteration, values):
        """Report a finished step; returns True when a callback asks to stop."""
        if self.verbose and values is not None:
            every = max(1, self.max_iter // 10)
            if iteration % every == 0 or iteration == self.max_iter:
                shown = "  ".join(f"{k} {v:.4e}" for k, v in values.items())
                print(f"[{self.name}] step {iteration}/{self.max_iter}  {shown}")
        if self._step_context is None:
            return False
        loss = None if values is None else next(iter(values.values()))
        stop = self._step_context.call_on_fit_task_end(
            estimator=self.estimator,
            metadata={
                "name": self.name,
                "iteration": iteration,
                "max_iter": self.max_iter,
                "loss": loss,
            },
        )
        self._step_context = None
        return bool(stop)
