"""The command line's progress bar: a scikit-learn callback, not parsed output.

The estimators report every training step to scikit-learn's callbacks (1.9 and
later, see :mod:`skvdae.nn._callbacks`); :class:`ProgressBar` draws one bar per
training run from the step's ``metadata``. With an older scikit-learn the
estimators have no callbacks and the command line shows no bar.
"""

import time


class ProgressBar:
    """Draws ``[name] [#####-----] done/total  seconds`` on a stream.

    An auto-propagated callback: set on a :class:`~skvdae.VDAESampler`, it
    also follows its diffusion map's SpectralNet training.

    Parameters
    ----------
    stream : file-like
        Where the bar is drawn (a terminal's stderr).
    width : int, default=30
        Characters of the bar.
    """

    max_propagation_depth = None

    def __init__(self, stream, width=30):
        self.stream = stream
        self.width = width
        self._start = None
        self._open = False

    def setup(self, estimator, context):
        self._start = time.monotonic()

    def on_fit_task_begin(self, estimator, context, **kwargs):
        return None

    def on_fit_task_end(self, estimator, context, *, metadata=None):
        if not metadata or "iteration" not in metadata:
            return False
        if self._start is None:
            self._start = time.monotonic()
        done, total = metadata["iteration"], metadata["max_iter"]
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        label = f"[{metadata.get('name', 'training')}]"
        self.stream.write(
            f"\r{label:<15} [{bar}] {done}/{total} "
            f"{time.monotonic() - self._start:6.1f} s"
        )
        self._open = done < total
        if not self._open:
            self.stream.write("\n")
        self.stream.flush()
        return False

    def teardown(self, estimator, context):
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
