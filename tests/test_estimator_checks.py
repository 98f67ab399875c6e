"""scikit-learn's estimator checks over both solvers, with small fast settings."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvdae import DiffusionMapEmbedder, VDAESampler


def _instances():
    common = dict(n_components=2, bandwidth_neighbors=5, random_state=0, device="cpu")
    return [
        DiffusionMapEmbedder(solver="exact", **common),
        DiffusionMapEmbedder(
            solver="spectralnet",
            hidden_layer_sizes=(16,),
            batch_size=64,
            max_iter=20,
            **common,
        ),
        VDAESampler(
            embedder=DiffusionMapEmbedder(solver="exact", **common),
            decoder_hidden_layer_sizes=(8,),
            covariance_hidden_layer_sizes=(8,),
            batch_size=32,
            max_iter=10,
            random_state=0,
            device="cpu",
        ),
        VDAESampler(
            embedder=DiffusionMapEmbedder(
                solver="spectralnet",
                hidden_layer_sizes=(8,),
                batch_size=32,
                max_iter=5,
                **common,
            ),
            decoder_hidden_layer_sizes=(8,),
            covariance_hidden_layer_sizes=(8,),
            batch_size=32,
            max_iter=10,
            random_state=0,
            device="cpu",
        ),
    ]


# The default instances too, as a user builds them: small inputs work at the
# defaults (the neighbour rank is capped, with a warning).
@parametrize_with_checks([*_instances(), DiffusionMapEmbedder(), VDAESampler()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
