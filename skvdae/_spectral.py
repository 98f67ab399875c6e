"""Post-processing shared by both solvers: from a space of candidate functions on
the training graph to sorted, normalised, sign-fixed diffusion coordinates.

Both the exact solver (candidates: the top eigenvectors of the kernel) and
SpectralNet (candidates: the network's last hidden layer) end with one
Rayleigh-Ritz step on the pencil ``(D - W, D)`` restricted to the candidates, with
the constant direction projected out. This is where the constant eigenvector is
dropped, degenerate eigenspaces (one eigenvalue 1 per connected component) are
resolved deterministically, and the normalisation ``sum_i pi_i psi_k(x_i)^2 = 1``
is applied.
"""

import numpy as np
from scipy import linalg


def diffusion_pencil(features, graph):
    """Project the pencil ``(D - W, D)`` onto the columns of ``features``.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Candidate functions evaluated on the training samples.
    graph : DiffusionGraph

    Returns
    -------
    gram : ndarray of shape (n_features, n_features)
        ``H^T D H``.
    energy : ndarray of shape (n_features, n_features)
        ``H^T (D - W) H``, the Dirichlet energy of the graph.
    degree_moment : ndarray of shape (n_features,)
        ``H^T d``, needed to project out the constant.
    """
    weighted = features * graph.degrees[:, None]
    gram = features.T @ weighted
    energy = gram - features.T @ (graph.affinity @ features)
    return gram, (energy + energy.T) * 0.5, weighted.sum(axis=0)


def rayleigh_ritz_without_constant(
    gram, energy, degree_moment, volume, n_components, rank_tol=1e-10
):
    """Diffusion eigenfunctions in the span of the candidates, constant removed.

    Centring the candidates against the stationary distribution removes the
    constant and leaves the energy unchanged, since ``(D - W) 1 = 0``; the centred
    Gram matrix is ``G - m m^T / vol``. The remaining pencil is whitened (dropping
    numerically null directions) and solved exactly.

    Returns
    -------
    coef : ndarray of shape (n_features, n_components)
    offset : ndarray of shape (n_components,)
        ``psi = features @ coef + offset`` with ``sum_i pi_i psi^2 = 1`` and
        ``sum_i pi_i psi = 0``.
    eigenvalues : ndarray of shape (n_components,)
        ``lambda_k = 1 - mu_k``, in decreasing order.
    """
    centred_gram = gram - np.outer(degree_moment, degree_moment) / volume
    scales, basis = linalg.eigh((centred_gram + centred_gram.T) * 0.5)
    keep = scales > rank_tol * max(scales.max(), np.finfo(float).tiny)
    if keep.sum() < n_components:
        raise np.linalg.LinAlgError(
            f"the candidate functions span {int(keep.sum())} non-constant "
            f"directions, fewer than n_components={n_components}"
        )
    whitener = basis[:, keep] / np.sqrt(scales[keep])
    reduced = whitener.T @ energy @ whitener
    mu, rotation = linalg.eigh((reduced + reduced.T) * 0.5)
    coef = whitener @ rotation[:, :n_components] * np.sqrt(volume)
    offset = -(degree_moment @ coef) / volume
    return coef, offset, 1.0 - mu[:n_components]


def sign_fixing_signs(coordinates):
    """Signs that make the largest-magnitude entry of each column positive."""
    rows = np.argmax(np.abs(coordinates), axis=0)
    signs = np.sign(coordinates[rows, np.arange(coordinates.shape[1])])
    signs[signs == 0] = 1.0
    return signs


def diffusion_coordinates(features, graph, n_components):
    """Rayleigh-Ritz, constant removal and sign fixing in one call.

    Returns
    -------
    coef, offset : ndarrays
        The affine map from candidates to eigenfunctions ``psi`` (unscaled by
        eigenvalues), signs included.
    eigenvalues : ndarray of shape (n_components,)
    train_psi : ndarray of shape (n_samples, n_components)
    """
    gram, energy, moment = diffusion_pencil(features, graph)
    coef, offset, eigenvalues = rayleigh_ritz_without_constant(
        gram, energy, moment, graph.degrees.sum(), n_components
    )
    train_psi = features @ coef + offset
    signs = sign_fixing_signs(train_psi)
    return coef * signs, offset * signs, eigenvalues, train_psi * signs
