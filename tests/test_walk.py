"""The sampling walk: where a step lands and where its sample is decoded.

A step ``z' ~ N(z_i, C_i)`` lands on a training code drawn from the posterior
of the mixture of the codes' step Gaussians given a candidate set
(``StepMixture``), a Gibbs sampler whose stationary law is uniform over the
training codes; the sample is decoded around the landing code
(``emission_roots``).
"""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import skvdae._vdae as vdae
from skvdae import VDAESampler
from skvdae._vdae import (
    LatentNeighbourhoods,
    StepMixture,
    emission_codes,
    emission_roots,
)
from skvdae.datasets import make_circle


class FactorOfCode(torch.nn.Module):
    """``L(z)``: lower triangular, its entries smooth functions of ``z``."""

    def forward(self, z):
        n, d = z.shape
        factor = torch.zeros((n, d, d), dtype=z.dtype)
        diagonal = 0.3 + 0.2 * torch.sigmoid(z)
        factor[:, range(d), range(d)] = diagonal
        if d > 1:
            factor[:, 1, 0] = 0.1 * torch.tanh(z[:, 0])
        return factor


class ConstantFactor(torch.nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, z):
        n, d = z.shape
        return self.scale * torch.eye(d, dtype=z.dtype).expand(n, d, d)


def posterior(Z, labels, covariance, z, label):
    factor = covariance(torch.as_tensor(Z)).numpy()
    density = np.array(
        [
            multivariate_normal(Z[j], factor[j] @ factor[j].T).pdf(z)
            if labels[j] == label
            else 0.0
            for j in range(Z.shape[0])
        ]
    )
    return density / density.sum()


def mixture(Z, labels, covariance, n_neighbors=2):
    return StepMixture(LatentNeighbourhoods(Z, labels, n_neighbors), covariance)


def landing_frequencies(mixture, z, current, label, n_draws=40000):
    generator = torch.Generator().manual_seed(0)
    queries = np.repeat(z[None, :], n_draws, axis=0)
    index = mixture.draw(
        queries, np.full(n_draws, current), np.full(n_draws, label), generator
    )
    return np.bincount(index, minlength=mixture.neighbourhoods.Z.shape[0]) / n_draws


@pytest.mark.parametrize("on_a_code", [False, True])
def test_landing_follows_the_exact_posterior(on_a_code):
    """In components smaller than the candidate subset, the landing codes
    follow p(j | z') computed by scipy, wherever the walker stands."""
    rng = np.random.RandomState(0)
    Z = rng.normal(scale=0.5, size=(8, 2))
    labels = np.array([0, 0, 1, 0, 1, 0, 0, 1])
    covariance = FactorOfCode()
    steps = mixture(Z, labels, covariance)
    z = np.array([0.2, -0.1])
    for label in (0, 1):
        expected = posterior(Z, labels, covariance, z, label)
        current = np.flatnonzero(labels == label)[-1] if on_a_code else -1
        observed = landing_frequencies(steps, z, current, label)
        assert np.abs(observed - expected).max() < 0.01
        # A walker never lands outside its component.
        assert np.all(observed[labels != label] == 0)


@pytest.mark.parametrize("subset", [1, 3])
def test_landing_on_candidate_subsets_keeps_the_uniform_law(monkeypatch, subset):
    """With random candidate subsets far smaller than the component the step is
    still an exact Gibbs step: the transition matrix estimated from every
    code, T_ij = P(land on j | start at i), leaves the uniform law invariant
    (its columns sum to 1)."""
    monkeypatch.setattr(vdae, "LANDING_SUBSET", subset)
    # A fresh subset for every 16 walkers, so that the estimate averages many.
    monkeypatch.setattr(vdae, "LANDING_WALKERS", 16)
    rng = np.random.RandomState(0)
    Z = np.c_[np.sort(rng.uniform(0, 1, 9)) ** 2, np.zeros(9)]  # uneven spacing
    covariance = ConstantFactor(0.4)
    steps = mixture(Z, np.zeros(9, dtype=np.intp), covariance)
    n_draws = 15000
    generator = torch.Generator().manual_seed(0)
    transition = np.empty((9, 9))
    for i in range(9):
        moved = Z[i] + 0.4 * rng.normal(size=(n_draws, 2))
        index = steps.draw(
            moved, np.full(n_draws, i), np.zeros(n_draws, dtype=np.intp), generator
        )
        transition[i] = np.bincount(index, minlength=9) / n_draws
    # Without the 1 / rho weight of the candidates outside K(z'): 0.6 to 1.36.
    np.testing.assert_allclose(transition.sum(axis=0), 1.0, atol=0.04)


def test_landing_is_deterministic_given_the_generator():
    rng = np.random.RandomState(1)
    Z = rng.normal(size=(500, 3))
    steps = mixture(Z, np.zeros(500, dtype=np.intp), FactorOfCode(), n_neighbors=5)
    queries = rng.normal(size=(20, 3))
    current = np.arange(20)
    draws = [
        steps.draw(
            queries,
            current,
            np.zeros(20, dtype=np.intp),
            torch.Generator().manual_seed(5),
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*draws)


def test_far_steps_land_by_their_posterior_not_underflow():
    """A step many standard deviations from every code still lands on the
    code of highest posterior (log-sum-exp, no underflow to NaN)."""
    Z = np.array([[0.0], [1.0], [2.0]])
    steps = mixture(Z, np.zeros(3, dtype=np.intp), ConstantFactor(0.01))
    index = steps.draw(
        np.array([[40.0], [-40.0]]),
        np.array([0, 2]),
        np.zeros(2, dtype=np.intp),
        torch.Generator(),
    )
    np.testing.assert_array_equal(index, [2, 0])


def _walk_landings(Z, scale, n_walkers, n_steps, nearest):
    """Landing codes of walkers from code 0 with steps N(0, scale^2 I)."""
    rng = np.random.RandomState(0)
    generator = torch.Generator().manual_seed(0)
    labels = np.zeros(len(Z), dtype=np.intp)
    steps = mixture(Z, labels, ConstantFactor(scale), n_neighbors=20)
    index = np.zeros(n_walkers, dtype=np.intp)
    for _ in range(n_steps):
        moved = Z[index] + scale * rng.normal(size=(n_walkers, Z.shape[1]))
        if nearest:
            distance = np.linalg.norm(moved[:, None, :] - Z[None, :, :], axis=2)
            index = distance.argmin(axis=1)
        else:
            index = steps.draw(moved, index, labels[index], generator)
    return index


def test_walk_has_the_data_distribution_as_its_stationary_law():
    """On a circle sampled with density 1 + 0.8 cos(theta) and steps as long as
    the radius, the landings follow the data's density; the nearest-code rule
    over-samples the sparse side (its Voronoi cells are larger)."""
    Z, theta = make_circle(600, density_modulation=0.8, random_state=0)
    bins = np.linspace(0.0, 2 * np.pi, 13)
    data = np.histogram(theta, bins)[0] / theta.size

    def total_variation(index):
        landed = np.histogram(theta[index], bins)[0] / index.size
        return 0.5 * np.abs(landed - data).sum()

    gibbs = total_variation(_walk_landings(Z, 1.0, 4000, 15, nearest=False))
    nearest = total_variation(_walk_landings(Z, 1.0, 4000, 15, nearest=True))
    assert gibbs < 0.04
    assert nearest > 3 * gibbs


def test_emission_codes_shrink_the_neighbourhood_to_the_step():
    """E = min(1, tr C / tr Sigma*) Sigma*: Sigma* itself for long steps, shrunk
    to the step's trace for short ones."""
    n = 40000
    Z = np.zeros((n, 2))
    sigma = np.broadcast_to(np.array([[2.0, 0.6], [0.6, 1.0]]), (n, 2, 2))
    generator = torch.Generator().manual_seed(0)
    for step, shrink in ((3.0, 1.0), (0.5, 0.5**2 * 2 / 3.0)):
        factor = np.broadcast_to(step * np.eye(2), (n, 2, 2))
        points = emission_codes(Z, emission_roots(sigma, factor), generator)
        np.testing.assert_allclose(
            np.cov(points.T), shrink * sigma[0], atol=0.03 * np.trace(sigma[0])
        )


def test_samples_follow_a_non_uniform_density_on_a_circle():
    """Default sampler: samples from the training points after ten steps keep
    the data's angular density (1 + 0.8 cos(theta)) and stay on the circle."""
    X, theta = make_circle(2000, density_modulation=0.8, random_state=0)
    sampler = VDAESampler(random_state=0).fit(X)
    samples = sampler.sample(4000, n_steps=10, random_state=1)
    bins = np.linspace(0.0, 2 * np.pi, 13)
    data = np.histogram(theta, bins)[0] / theta.size
    angle = np.arctan2(samples[:, 1], samples[:, 0]) % (2 * np.pi)
    landed = np.histogram(angle, bins)[0] / angle.size
    assert 0.5 * np.abs(landed - data).sum() < 0.05
    assert np.abs(np.linalg.norm(samples, axis=1) - 1.0).mean() < 0.01


def test_samples_of_a_rendered_video_keep_its_frames():
    """Noise-free images: the residuals are detail the decoder misses, so a
    sample takes its nearest frame's own (m = 1) instead of blending k."""
    from sklearn.neighbors import NearestNeighbors

    from skvdae import DiffusionMapEmbedder
    from skvdae.datasets import make_rotating_bunny

    shape = dict(height=24, width=30)
    X, _ = make_rotating_bunny(200, **shape)
    middle = (np.arange(200) + 0.5) * 2 * np.pi / 200
    held_out, _ = make_rotating_bunny(200, angles=middle, **shape)
    dense, _ = make_rotating_bunny(720, **shape)
    nearest = NearestNeighbors(n_neighbors=1).fit(dense)
    sampler = VDAESampler(
        DiffusionMapEmbedder(solver="exact", random_state=0),
        max_iter=500,
        random_state=0,
    ).fit(X)
    assert sampler.n_residual_neighbors_ == 1
    floor = nearest.kneighbors(held_out)[0].mean()
    distance = nearest.kneighbors(sampler.sample(300, random_state=0))[0].mean()
    # The local mean of k residuals instead blends k frames.
    sampler._local_step().n_mean = sampler.n_neighbors_
    blended = nearest.kneighbors(sampler.sample(300, random_state=0))[0].mean()
    assert distance < 1.5 * floor < blended, (distance, floor, blended)
