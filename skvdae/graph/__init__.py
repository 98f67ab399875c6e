"""The kernel graph of the diffusion map, in numpy and scipy.

- :class:`GaussianKernel`: the kernel's values and truncation radius.
- :class:`NeighborIndex`: the neighbour search behind every query.
- :func:`auto_bandwidth`: the ``bandwidth='auto'`` rule.
- :func:`build_diffusion_graph`: kernel, outliers, components and the
  alpha-normalisation, as a :class:`DiffusionGraph`.
- :func:`transition_rows`: rows of the Markov kernel for new points, the
  basis of the Nystrom extension.
"""

from ._bandwidth import GAP_RATIO as GAP_RATIO
from ._bandwidth import MIN_CLUSTER_SIZE as MIN_CLUSTER_SIZE
from ._bandwidth import auto_bandwidth, bounded_bandwidth, max_edges_per_sample
from ._graph import (
    DiffusionGraph,
    build_diffusion_graph,
    density_normalize,
    kernel_matrix,
    locality_order,
    transition_rows,
)
from ._kernel import KERNEL_CUTOFF as KERNEL_CUTOFF
from ._kernel import GaussianKernel
from ._neighbors import TREE_MAX_FEATURES as TREE_MAX_FEATURES
from ._neighbors import NeighborIndex

__all__ = [
    "DiffusionGraph",
    "GaussianKernel",
    "NeighborIndex",
    "auto_bandwidth",
    "bounded_bandwidth",
    "build_diffusion_graph",
    "density_normalize",
    "kernel_matrix",
    "locality_order",
    "max_edges_per_sample",
    "transition_rows",
]
