"""The power spherical distribution (De Cao & Aziz, 2020).

A distribution on the unit sphere ``S^(d-1)`` of ``R^d`` with density
``p(x) ∝ (1 + mu^T x)^kappa``. Unlike the von Mises-Fisher distribution it is
sampled exactly, without rejection, and reparameterised: ``t = mu^T x`` is
``2 B - 1`` with ``B ~ Beta(alpha, beta)``, ``alpha = (d - 1) / 2 + kappa``,
``beta = (d - 1) / 2``; the sample ``[t, sqrt(1 - t^2) v]`` (``v`` uniform on
``S^(d-2)``) is built around ``e_1`` and moved to ``mu`` by a Householder
reflection.

Reference: N. De Cao and W. Aziz, "The Power Spherical distribution",
ICML 2020 INNF+ workshop, arXiv:2006.04437.
"""

import math

import torch


def _cos_sin_rsample(alpha, beta, generator):
    """Reparameterised ``t = 2 B - 1`` and ``sqrt(1 - t^2)``, ``B ~ Beta(alpha, beta)``.

    ``B = g_a / (g_a + g_b)`` with ``g_a ~ Gamma(alpha)``, ``g_b ~ Gamma(beta)``
    (``torch._standard_gamma`` takes an explicit generator and has a
    reparameterisation gradient, which ``torch.distributions.Beta`` does not
    expose with a generator). ``sqrt(1 - t^2) = 2 sqrt(g_a g_b) / (g_a + g_b)``
    is computed from the gamma variates directly: ``1 - t^2`` would round to 0
    for a concentrated posterior and give an infinite gradient.
    """
    g_a = torch._standard_gamma(alpha, generator=generator)
    g_b = torch._standard_gamma(beta, generator=generator)
    total = g_a + g_b
    t = (g_a - g_b) / total
    tiny = torch.finfo(total.dtype).tiny
    sin = 2.0 * (g_a * g_b).clamp_min(tiny).sqrt() / total
    return t, sin


def log_sphere_area(d):
    """``log`` of the surface area of the unit sphere ``S^(d-1)`` in ``R^d``."""
    return math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)


class PowerSpherical:
    """Power spherical distribution on ``S^(d-1)``.

    Parameters
    ----------
    loc : torch.Tensor of shape (..., d)
        Mean direction ``mu``; rows must have unit norm.
    concentration : torch.Tensor of shape (...)
        ``kappa >= 0``; ``0`` is the uniform distribution.
    """

    def __init__(self, loc, concentration):
        if loc.shape[-1] < 2:
            raise ValueError("The power spherical distribution needs d >= 2.")
        self.loc = loc
        self.concentration = concentration
        self.dim = loc.shape[-1]
        half = (self.dim - 1) / 2.0
        self.alpha = half + concentration
        self.beta = torch.full_like(concentration, half)

    def rsample(self, generator=None):
        """One reparameterised draw per row of ``loc``.

        Parameters
        ----------
        generator : torch.Generator or None
            Source of randomness; ``None`` uses torch's global generator.

        Returns
        -------
        torch.Tensor of shape (..., d)
            Points of unit norm.
        """
        t, sin = _cos_sin_rsample(self.alpha, self.beta, generator)
        v = torch.randn(
            (*self.loc.shape[:-1], self.dim - 1),
            generator=generator,
            dtype=self.loc.dtype,
            device=self.loc.device,
        )
        v = v / v.norm(dim=-1, keepdim=True)
        y = torch.cat([t.unsqueeze(-1), sin.unsqueeze(-1) * v], dim=-1)
        # Householder reflection taking e_1 to loc.
        e1 = torch.zeros_like(self.loc)
        e1[..., 0] = 1.0
        u = e1 - self.loc
        u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        x = y - 2.0 * (y * u).sum(-1, keepdim=True) * u
        return x / x.norm(dim=-1, keepdim=True)

    def log_normalizer(self):
        """``log N`` with ``p(x) = (1 + mu^T x)^kappa / N``.

        ``N = 2^(alpha + beta) pi^beta Gamma(alpha) / Gamma(alpha + beta)``.
        """
        a, b = self.alpha, self.beta
        return (
            (a + b) * math.log(2.0)
            + b * math.log(math.pi)
            + torch.lgamma(a)
            - torch.lgamma(a + b)
        )

    def log_prob(self, x):
        """Log density of points ``x`` on the sphere (w.r.t. surface measure)."""
        cos = (self.loc * x).sum(-1)
        return self.concentration * torch.log1p(cos) - self.log_normalizer()

    def entropy(self):
        """Differential entropy, in closed form.

        ``H = log N - kappa (log 2 + psi(alpha) - psi(alpha + beta))``.
        """
        a, b = self.alpha, self.beta
        expected_log = math.log(2.0) + torch.digamma(a) - torch.digamma(a + b)
        return self.log_normalizer() - self.concentration * expected_log

    def kl_to_uniform(self):
        """``KL(PS(mu, kappa) || Uniform(S^(d-1)))``, in closed form.

        Equal to ``log |S^(d-1)| - H``; zero at ``kappa = 0`` and increasing in
        ``kappa``.
        """
        return log_sphere_area(self.dim) - self.entropy()

    @property
    def mean(self):
        """``E[x] = (alpha - beta) / (alpha + beta) mu``."""
        scale = (self.alpha - self.beta) / (self.alpha + self.beta)
        return scale.unsqueeze(-1) * self.loc
