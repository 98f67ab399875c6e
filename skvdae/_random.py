"""Random states that never touch numpy's global generator."""

import numpy as np
from sklearn.utils import check_random_state


def check_private_random_state(random_state):
    """Like ``sklearn.utils.check_random_state`` without the global RNG.

    ``None`` gives a fresh ``RandomState`` seeded from OS entropy instead of
    numpy's global singleton, so that fitting or scoring never advances the
    caller's state.
    """
    if random_state is None:
        return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
    return check_random_state(random_state)
