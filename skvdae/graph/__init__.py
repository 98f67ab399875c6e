"""The kernel graph of the diffusion map, in numpy and scipy.

- :class:`GaussianKernel`: the kernel's values and truncation radius.
- :class:`NeighborIndex`: the neighbour search behind every query.
- :class:`HNSWNeighbors`: approximate neighbours (faiss, ``skvdae[ann]``).
- :func:`auto_bandwidth`: the ``bandwidth='auto'`` rule.
- :func:`auto_cutoff`: where the kernel is truncated.
- :func:`build_diffusion_graph`: kernel, outliers, components and the
  alpha-normalisation, as a :class:`DiffusionGraph`.
- :func:`transition_rows`: rows of the Markov kernel for new points, the
  basis of the Nystrom extension.
"""

from ._approximate import HNSWNeighbors
from ._bandwidth import GAP_RATIO as GAP_RATIO
from ._bandwidth import ISOLATION_WARNING as ISOLATION_WARNING
from ._bandwidth import MIN_CLUSTER_SIZE as MIN_CLUSTER_SIZE
from ._bandwidth import TRUNCATION_TOLERANCE as TRUNCATION_TOLERANCE
from ._bandwidth import (
    auto_bandwidth,
    auto_cutoff,
    bounded_bandwidth,
    isolated_share,
    max_edges_per_sample,
)
from ._graph import DROPPED_MASS_WARNING as DROPPED_MASS_WARNING
from ._graph import STAYING_SHARE as STAYING_SHARE
from ._graph import (
    DiffusionGraph,
    build_diffusion_graph,
    density_normalize,
    diagonal_positions,
    dropped_kernel_mass,
    kernel_matrix,
    locality_order,
    pattern_components,
    row_blocks,
    row_sums,
    row_view,
    scale_symmetric,
    transition_rows,
)
from ._kernel import KERNEL_CUTOFF as KERNEL_CUTOFF
from ._kernel import GaussianKernel
from ._neighbors import APPROXIMATE_MIN_SAMPLES as APPROXIMATE_MIN_SAMPLES
from ._neighbors import APPROXIMATE_MIN_WORK as APPROXIMATE_MIN_WORK
from ._neighbors import MAX_CANDIDATES as MAX_CANDIDATES
from ._neighbors import TREE_MAX_FEATURES as TREE_MAX_FEATURES
from ._neighbors import NeighborIndex

__all__ = [
    "DiffusionGraph",
    "GaussianKernel",
    "HNSWNeighbors",
    "NeighborIndex",
    "auto_bandwidth",
    "auto_cutoff",
    "bounded_bandwidth",
    "build_diffusion_graph",
    "density_normalize",
    "diagonal_positions",
    "dropped_kernel_mass",
    "isolated_share",
    "kernel_matrix",
    "locality_order",
    "max_edges_per_sample",
    "pattern_components",
    "row_blocks",
    "row_sums",
    "row_view",
    "scale_symmetric",
    "transition_rows",
]
