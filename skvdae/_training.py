"""Pieces shared by the training loops (SpectralNet, VDAE)."""

import copy

MAX_RESTARTS = 5
SNAPSHOT_EVERY = 50


class DivergenceGuard:
    """Snapshots of a module and its optimiser, restored when a loss is not finite.

    ``recover`` restores the last snapshot and divides the learning rate by two
    per restart so far; after ``MAX_RESTARTS`` restarts it raises
    ``FloatingPointError`` naming ``what`` and ``advice``: a fit fails loudly
    rather than returning NaN.
    """

    def __init__(self, module, optimizer, learning_rate, what, advice):
        self.module = module
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.what = what
        self.advice = advice
        self.restarts = 0
        self._snapshot = self._take()

    def _take(self):
        return (
            copy.deepcopy(self.module.state_dict()),
            copy.deepcopy(self.optimizer.state_dict()),
        )

    def step_done(self, step):
        """Call after each successful step; keeps a snapshot every few steps."""
        if step % SNAPSHOT_EVERY == 0:
            self._snapshot = self._take()

    def recover(self, rate_factor=1.0):
        """Restore the last snapshot at a halved rate, or raise after too many."""
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise FloatingPointError(
                f"{self.what} training diverged (non-finite loss) after "
                f"{MAX_RESTARTS} restarts with a halved learning rate; "
                f"{self.advice}"
            )
        self.module.load_state_dict(self._snapshot[0])
        self.optimizer.load_state_dict(self._snapshot[1])
        rate = rate_factor * self.learning_rate / 2**self.restarts
        for group in self.optimizer.param_groups:
            group["lr"] = rate
