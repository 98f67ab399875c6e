"""The one training loop: schedule, divergence policy, early stopping, callbacks."""

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skvdae import DiffusionMapEmbedder, VDAESampler
from skvdae.nn import (
    ConstantSchedule,
    FitProgress,
    StepSchedule,
    fit_minibatches,
)
from skvdae.nn._training import MAX_RESTARTS, SNAPSHOT_EVERY


def _quadratic(lr=0.1):
    weight = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    optimizer = torch.optim.SGD([weight], lr=lr)
    return weight, optimizer


def test_minimises_a_quadratic_with_gradient_descent():
    weight, optimizer = _quadratic()
    result = fit_minibatches(
        lambda i: (weight**2).sum(), max_iter=30, optimizers=[optimizer]
    )
    # SGD on w^2 at rate 0.1 multiplies w by 0.8 per step (the loss is taken
    # before each step).
    assert weight.item() == pytest.approx(3.0 * 0.8**30)
    assert result.n_iter == 30 and result.losses.shape == (30,)
    np.testing.assert_allclose(result.losses, 9.0 * 0.64 ** np.arange(30))
    assert not result.stopped_early


def test_step_schedule_divides_the_rate():
    weight, optimizer = _quadratic(lr=0.5)
    rates = []

    def step(iteration):
        rates.append(optimizer.param_groups[0]["lr"])
        return (weight**2).sum()

    fit_minibatches(
        step, max_iter=10, optimizers=[optimizer], schedule=StepSchedule(0.8, 10.0)
    )
    assert rates == [0.5] * 8 + [0.05] * 2
    assert ConstantSchedule().divisor(7, 10) == 1.0


def test_non_finite_steps_restore_the_snapshot_at_half_the_rate():
    weight, optimizer = _quadratic(lr=0.1)
    rates = []

    def step(iteration):
        rates.append(optimizer.param_groups[0]["lr"])
        if iteration in (3, 4):
            weight.data.fill_(float("nan"))  # a step that broke the model
            return (weight**2).sum()
        return (weight**2).sum()

    result = fit_minibatches(
        step, max_iter=8, optimizers=[optimizer], modules=[_Holder(weight)]
    )
    assert result.n_iter == 6
    assert math.isfinite(weight.item())
    # Each restart halves the rate from the next step on.
    assert rates == [0.1] * 3 + [0.05] + [0.025] * 4


class _Holder(torch.nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = weight


def test_diverging_fit_fails_loudly_after_the_restarts():
    _, optimizer = _quadratic()
    calls = []

    def step(iteration):
        calls.append(iteration)
        return None  # a degenerate batch every time

    with pytest.raises(FloatingPointError, match=r"diverged.*advice here"):
        fit_minibatches(
            step,
            max_iter=100,
            optimizers=[optimizer],
            name="Model",
            advice="advice here",
        )
    assert len(calls) == MAX_RESTARTS + 1
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        fit_minibatches(
            lambda i: {"loss": float("nan")},
            max_iter=5,
            optimizers=[],
            max_restarts=0,
        )


def test_early_stopping_on_a_plateau_and_convergence_warning():
    weight, optimizer = _quadratic(lr=0.0)  # the loss never changes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit_minibatches(
            lambda i: (weight**2).sum(),
            max_iter=10_000,
            optimizers=[optimizer],
            tol=1e-4,
            n_iter_no_change=3,
        )
    assert result.stopped_early
    # The first window sets the best loss, three more bring no gain.
    assert result.n_iter == 4 * SNAPSHOT_EVERY

    weight, optimizer = _quadratic(lr=1e-3)  # still improving at max_iter
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        result = fit_minibatches(
            lambda i: (weight**2).sum(),
            max_iter=3 * SNAPSHOT_EVERY,
            optimizers=[optimizer],
            tol=1e-6,
            n_iter_no_change=2,
        )
    assert not result.stopped_early and result.n_iter == 3 * SNAPSHOT_EVERY


def test_dict_steps_update_themselves(capsys):
    seen = []

    def step(iteration):
        seen.append(iteration)
        return {"critic": torch.tensor(1.0), "generator": 2.0}

    result = fit_minibatches(
        step,
        max_iter=20,
        optimizers=[],
        progress=FitProgress("GAN", 20, verbose=1),
    )
    assert seen == list(range(1, 21))
    assert result.history[0] == {"critic": 1.0, "generator": 2.0}
    np.testing.assert_array_equal(result.losses, np.ones(20))
    printed = capsys.readouterr().out
    assert "[GAN] step 20/20  critic 1.0000e+00  generator 2.0000e+00" in printed


# --- scikit-learn's callbacks (1.9 and later) -------------------------------------

callback = pytest.importorskip("sklearn.callback")


class Recorder:
    """A scikit-learn FitCallback that records tasks and can stop a run."""

    max_propagation_depth = None

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.ends = []
        self.begins = []
        self.setups = 0
        self.teardowns = 0

    def setup(self, estimator, context):
        self.setups += 1

    def teardown(self, estimator, context):
        self.teardowns += 1

    def on_fit_task_begin(self, estimator, context):
        self.begins.append((type(estimator).__name__, context.task_name))

    def on_fit_task_end(self, estimator, context, *, metadata=None):
        self.ends.append((type(estimator).__name__, context.task_name, metadata))
        return bool(
            metadata
            and self.stop_at is not None
            and metadata.get("iteration") == self.stop_at
        )


def _loop(n=200):
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[np.cos(theta), np.sin(2 * theta), np.sin(3 * theta)]


def test_embedder_reports_every_step_to_callbacks():
    recorder = Recorder()
    embedder = DiffusionMapEmbedder(n_components=2, max_iter=15, random_state=0)
    embedder.set_callbacks(recorder)
    embedder.fit(_loop())
    steps = [end for end in recorder.ends if end[1] == "step"]
    assert [m["iteration"] for _, _, m in steps] == list(range(1, 16))
    assert all(m["name"] == "SpectralNet" and m["max_iter"] == 15 for *_, m in steps)
    assert all(np.isfinite(m["loss"]) for *_, m in steps)
    np.testing.assert_allclose([m["loss"] for *_, m in steps], embedder.loss_curve_)
    assert recorder.ends[-1][1] == "fit" and recorder.begins[0][1] == "fit"
    assert recorder.setups == recorder.teardowns == 1


def test_a_callback_stops_training():
    recorder = Recorder(stop_at=7)
    embedder = DiffusionMapEmbedder(n_components=2, max_iter=50, random_state=0)
    embedder.set_callbacks(recorder)
    embedder.fit(_loop())
    assert embedder.n_iter_ == 7


def test_sampler_propagates_callbacks_to_its_embedder():
    recorder = Recorder()
    sampler = VDAESampler(
        DiffusionMapEmbedder(n_components=2, max_iter=10),
        max_iter=12,
        random_state=0,
    )
    sampler.set_callbacks(recorder)
    sampler.fit(_loop())
    names = [m["name"] for _, task, m in recorder.ends if task == "step"]
    assert names == ["SpectralNet"] * 10 + ["VDAESampler"] * 12
    tasks = [task for _, task, _ in recorder.ends if task != "step"]
    assert tasks[-1] == "fit" and "vdae" in tasks
    assert recorder.setups == recorder.teardowns == 1


def test_adam_makes_torchs_update_bit_for_bit_and_restores_its_state():
    """The estimators' Adam (no import of torch's compiler) against
    torch.optim.Adam: the same parameters after every step, a learning rate
    changed midway, and a restored snapshot resuming as the original."""
    from skvdae.nn import Adam

    def run(make, restore_at=None):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = torch.nn.Sequential(
                torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)
            )
            optimizer = make(net.parameters())
            inputs = torch.randn(64, 3)
            history, snapshot = [], None
            for step in range(40):
                if step == 20:
                    optimizer.param_groups[0]["lr"] = 1e-3
                if step == 10:
                    snapshot = copy.deepcopy(optimizer.state_dict())
                    weights = copy.deepcopy(net.state_dict())
                if restore_at is not None and step == restore_at:
                    optimizer.load_state_dict(snapshot)
                    net.load_state_dict(weights)
                optimizer.zero_grad(set_to_none=True)
                (net(inputs) ** 2).sum().backward()
                optimizer.step()
                history.append(
                    torch.cat([p.detach().ravel() for p in net.parameters()])
                )
            return torch.stack(history)

    ours = run(lambda params: Adam(params, lr=3e-2))
    reference = run(lambda params: torch.optim.Adam(params, lr=3e-2))
    assert torch.equal(ours, reference)
    # Back at step 10's state at step 15, then on as the original from there
    # (until the learning rate changes at step 20).
    restored = run(lambda params: Adam(params, lr=3e-2), restore_at=15)
    assert torch.equal(restored[15:20], ours[10:15])
    assert not torch.equal(ours[10], ours[15])
