"""Small helpers for code built on skvdae (the benchmark's baselines, say).

- :func:`check_random_state`: like scikit-learn's, but ``None`` never touches
  numpy's global generator.
"""

from ._random import check_private_random_state as check_random_state

__all__ = ["check_random_state"]
