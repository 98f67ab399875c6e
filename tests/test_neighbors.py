"""The neighbour-search interface: any NearestNeighbors-like backend."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from skvdae import DiffusionMapEmbedder, VDAESampler, load_model
from skvdae.datasets import make_loop


@pytest.fixture(scope="module")
def X():
    return make_loop(600, noise=0.01, random_state=0)[0]


@pytest.mark.parametrize("solver", ["exact", "spectralnet"])
def test_a_user_backend_gives_the_default_embedding(X, solver):
    params = dict(n_components=2, solver=solver, max_iter=50, random_state=0)
    default = DiffusionMapEmbedder(**params).fit(X)
    brute = NearestNeighbors(algorithm="brute")
    given = DiffusionMapEmbedder(neighbors=brute, **params).fit(X)
    assert given.bandwidth_ == pytest.approx(default.bandwidth_, rel=1e-12)
    np.testing.assert_allclose(given.eigenvalues_, default.eigenvalues_, rtol=1e-6)
    Z = given.transform(X[::5] + 0.001)
    np.testing.assert_allclose(Z, default.transform(X[::5] + 0.001), atol=1e-6)
    # The backend given is cloned, never fitted itself.
    assert not hasattr(brute, "n_samples_fit_")


def test_high_dimensional_pairs_through_the_backend():
    """Beyond 12 features the pairs come from radius queries, chunked."""
    rng = np.random.RandomState(1)
    X = make_loop(400, random_state=1)[0] @ rng.normal(size=(3, 20))
    default = DiffusionMapEmbedder(n_components=2, solver="exact").fit(X)
    given = DiffusionMapEmbedder(
        n_components=2, solver="exact", neighbors=NearestNeighbors(algorithm="kd_tree")
    ).fit(X)
    np.testing.assert_allclose(given.eigenvalues_, default.eigenvalues_, rtol=1e-10)


def test_the_backend_is_saved_and_used_after_loading(X, tmp_path):
    backend = NearestNeighbors(algorithm="ball_tree", leaf_size=7)
    sampler = VDAESampler(
        DiffusionMapEmbedder(n_components=2, solver="exact", neighbors=backend),
        max_iter=20,
        random_state=0,
    ).fit(X)
    loaded = load_model(sampler.save(tmp_path / "m.skvdae"))
    restored = loaded.embedder_.neighbors
    assert isinstance(restored, NearestNeighbors)
    assert restored.get_params() == backend.get_params()
    np.testing.assert_array_equal(loaded.transform(X), sampler.transform(X))


def test_bad_backends_are_refused(X):
    with pytest.raises(ValueError, match="neighbors"):
        DiffusionMapEmbedder(neighbors="fast").fit(X)
    with pytest.raises((TypeError, ValueError), match="neighbors"):
        DiffusionMapEmbedder(neighbors=NearestNeighbors).fit(X)

    class KOnly:
        def fit(self, X):
            self.index = NearestNeighbors().fit(X)
            return self

        def kneighbors(self, X=None, n_neighbors=5, return_distance=True):
            return self.index.kneighbors(X, n_neighbors, return_distance)

    with pytest.raises(TypeError, match="radius_neighbors"):
        DiffusionMapEmbedder(neighbors=KOnly(), solver="exact").fit(X)
