"""The kernel of the diffusion map: its values and where it is truncated."""

from numbers import Real

import numpy as np

#: The largest truncation: kernel values below ``exp(-KERNEL_CUTOFF)`` (about
#: 6e-6) of the peak are always dropped (see ``auto_cutoff`` for the graph's).
KERNEL_CUTOFF = 12.0


class GaussianKernel:
    """``k(x, y) = exp(-|x - y|^2 / bandwidth)``, truncated at ``exp(-cutoff)``.

    The one place where the kernel's formula lives: the graph, the Nystrom
    extension and model files all go through it.

    Parameters
    ----------
    bandwidth : float
        The scale ``eps``.
    cutoff : float, default=KERNEL_CUTOFF
        Pairs whose log-kernel falls below ``-cutoff`` are dropped: the
        truncation radius is ``sqrt(cutoff * bandwidth)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvdae.graph import GaussianKernel
    >>> kernel = GaussianKernel(0.5)
    >>> float(kernel.value(np.array([0.5]))[0]) == float(np.exp(-1.0))
    True
    >>> bool(np.isclose(kernel.radius, np.sqrt(12.0 * 0.5)))
    True
    """

    name = "gaussian"

    def __init__(self, bandwidth, cutoff=KERNEL_CUTOFF):
        for what, value in (("bandwidth", bandwidth), ("cutoff", cutoff)):
            if (
                not isinstance(value, Real)
                or isinstance(value, bool)
                or not np.isfinite(value)
                or value <= 0
            ):
                raise ValueError(
                    f"The kernel's {what} must be a positive finite number, "
                    f"got {value!r}."
                )
        self.bandwidth = float(bandwidth)
        self.cutoff = float(cutoff)
        self.radius = float(np.sqrt(self.cutoff * self.bandwidth))

    @classmethod
    def with_radius(cls, bandwidth, radius):
        """The kernel of ``bandwidth`` truncated at exactly ``radius``."""
        kernel = cls(bandwidth, cutoff=radius**2 / bandwidth)
        kernel.radius = float(radius)
        return kernel

    def log_value(self, squared_distances):
        """``log k`` at the given squared distances."""
        return squared_distances / -self.bandwidth

    def value(self, squared_distances, out=None):
        """``k`` at the given squared distances (into ``out`` when given)."""
        if out is None:
            return np.exp(self.log_value(squared_distances))
        np.divide(squared_distances, -self.bandwidth, out=out)
        return np.exp(out, out=out)

    def get_config(self):
        """The arguments that rebuild this kernel (JSON-serialisable)."""
        return {"name": self.name, "bandwidth": self.bandwidth, "cutoff": self.cutoff}

    @classmethod
    def from_config(cls, config):
        """The kernel ``config`` describes; ``ValueError`` for invalid values."""
        if not isinstance(config, dict) or config.get("name") != cls.name:
            raise ValueError(f"not a {cls.__name__} configuration: {config!r}")
        return cls(config.get("bandwidth"), config.get("cutoff"))

    def __repr__(self):
        return f"GaussianKernel(bandwidth={self.bandwidth!r}, cutoff={self.cutoff!r})"
