"""Data sets to test, demonstrate and benchmark skvdae.

Synthetic manifolds with their ground-truth intrinsic parameters and exact
distance functions, the Stanford bunny (point cloud and a rotating video)
and small real image sets. Nothing is downloaded: the bunny and the MNIST
sample are read from files shipped inside optional wheels
(``pip install 'skvdae[datasets]'``, ``pip install 'skvdae[mnist]'``).
"""

from ._bunny import bunny_distance, load_bunny, make_rotating_bunny
from ._images import load_digit_images, load_mnist_5k
from ._manifolds import (
    gaussian_grid_centres,
    grid_nearest_centre,
    loop_arc_length,
    loop_distance,
    make_circle,
    make_gaussian_grid,
    make_loop,
    make_sphere,
    make_torus,
    sphere_distance,
    torus_distance,
)
from ._ply import read_ply, write_ply

__all__ = [
    "bunny_distance",
    "gaussian_grid_centres",
    "grid_nearest_centre",
    "load_bunny",
    "load_digit_images",
    "load_mnist_5k",
    "loop_arc_length",
    "loop_distance",
    "make_circle",
    "make_gaussian_grid",
    "make_loop",
    "make_rotating_bunny",
    "make_sphere",
    "make_torus",
    "read_ply",
    "sphere_distance",
    "torus_distance",
    "write_ply",
]
