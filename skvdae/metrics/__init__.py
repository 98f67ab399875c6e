"""Metrics: local bi-Lipschitz constants and scorer, generative-quality metrics.

- :func:`bilipschitz_constants`, :func:`bilipschitz_summary` and
  :class:`BiLipschitzScore` measure how far a latent <-> data map is from locally
  bi-Lipschitz (a homeomorphism).
- :func:`precision_recall_density_coverage` (Naeem et al., 2020) and
  :func:`maximum_mean_discrepancy` (Gaussian kernel) compare generated samples
  with real data, in bounded memory.
"""

from ._bilipschitz import BiLipschitzScore, bilipschitz_constants, bilipschitz_summary
from ._generative import (
    maximum_mean_discrepancy,
    median_heuristic_bandwidth,
    precision_recall_density_coverage,
)

__all__ = [
    "BiLipschitzScore",
    "bilipschitz_constants",
    "bilipschitz_summary",
    "maximum_mean_discrepancy",
    "median_heuristic_bandwidth",
    "precision_recall_density_coverage",
]
