"""The Stanford bunny: point cloud, mesh, distance and a rotating video."""

import functools

import numpy as np
from scipy.spatial import cKDTree

from .._random import check_private_random_state
from ._ply import read_ply
from ._resources import find_package_file
from ._validation import check_n_samples, check_points, check_positive

_BUNNY_PACKAGE = "pymeshfix"
_BUNNY_FILE = "examples/StanfordBunny.ply"


def _bunny_path():
    return find_package_file(_BUNNY_PACKAGE, _BUNNY_FILE, extra="datasets")


@functools.lru_cache(maxsize=1)
def _bunny_mesh():
    """Vertices (float64) and triangles (intp) of the shipped bunny, read-only."""
    ply = read_ply(_bunny_path())
    vertex = ply["vertex"]
    vertices = np.c_[vertex["x"], vertex["y"], vertex["z"]].astype(float)
    faces = ply.get("face", {}).get("vertex_indices")
    if faces is not None and faces.dtype != object:
        faces = faces.astype(np.intp)
    else:
        faces = np.empty((0, 3), dtype=np.intp)
    vertices.flags.writeable = False
    faces.flags.writeable = False
    return vertices, faces


def _normalization(vertices):
    centre = vertices.mean(axis=0)
    scale = np.linalg.norm(vertices - centre, axis=1).max()
    return centre, scale


def load_bunny(
    n_samples=None, *, normalize=False, return_faces=False, random_state=None
):
    """The Stanford bunny point cloud (50,000 vertices of its mesh).

    Read, with :func:`read_ply`, from ``pymeshfix/examples/StanfordBunny.ply``
    shipped in the ``pymeshfix`` wheel (a ``binary_little_endian`` PLY file
    with 50,000 ``float`` vertices and 99,785 triangles). The package is
    located without being imported; install the optional extra with
    ``pip install 'skvdae[datasets]'``. Nothing is downloaded.

    In the file's coordinates the bunny stands on the plane ``z = 0`` with
    ``z`` pointing up; it is about 50 wide (``x``), 39 deep (``y``) and 49.5
    tall (``z``).

    Parameters
    ----------
    n_samples : int or None, default=None
        If given, a random subset of this many distinct vertices is returned
        (in random order); else all vertices, in file order.
    normalize : bool, default=False
        Centre the points on the vertices' mean and divide by the largest
        distance of a vertex from it, so that the bunny fills the unit ball.
    return_faces : bool, default=False
        Also return the triangles (only with ``n_samples=None``).
    random_state : int, RandomState instance or None, default=None
        Seed of the subsampling. ``None`` does not touch numpy's global
        random state.

    Returns
    -------
    X : ndarray of shape (n_samples, 3)
        The points.
    faces : ndarray of shape (99785, 3)
        Vertex indices of each triangle; only when ``return_faces`` is True.

    Raises
    ------
    ImportError
        When ``pymeshfix`` is not installed.

    See Also
    --------
    bunny_distance : Distance of points to the bunny.
    make_rotating_bunny : A video of the turning bunny.

    Examples
    --------
    >>> from skvdae.datasets import load_bunny
    >>> X = load_bunny()
    >>> X.shape
    (50000, 3)
    """
    vertices, faces = _bunny_mesh()
    X = vertices.copy()
    if normalize:
        centre, scale = _normalization(vertices)
        X = (X - centre) / scale
    if n_samples is not None:
        if return_faces:
            raise ValueError("return_faces=True needs n_samples=None.")
        n_samples = check_n_samples(n_samples)
        if n_samples > len(X):
            raise ValueError(
                f"n_samples must be at most {len(X)} (the number of vertices), "
                f"got {n_samples}."
            )
        rng = check_private_random_state(random_state)
        X = X[rng.choice(len(X), n_samples, replace=False)]
    if return_faces:
        return X, faces.copy()
    return X


@functools.lru_cache(maxsize=2)
def _bunny_tree(normalize):
    return cKDTree(load_bunny(normalize=normalize))


def bunny_distance(X, *, normalize=False, return_index=False):
    """Distance of points to the nearest vertex of the Stanford bunny.

    An evaluation proxy for the distance to the bunny's surface, computed
    with a KD-tree over the 50,000 vertices of :func:`load_bunny`. The mesh's
    edges are about 0.37 long in file units (median; 0.01 normalised), so
    points exactly on the surface get up to about 0.4 (triangle centroids:
    median 0.18); compare models against this floor, not against zero.

    Parameters
    ----------
    X : array-like of shape (n_points, 3)
        Points, in the coordinates of :func:`load_bunny` with the same
        ``normalize``.
    normalize : bool, default=False
        Whether ``X`` is in the normalised coordinates.
    return_index : bool, default=False
        Also return the index of the nearest vertex.

    Returns
    -------
    distance : ndarray of shape (n_points,)
    index : ndarray of shape (n_points,)
        Only when ``return_index`` is True.

    See Also
    --------
    load_bunny : The vertices.

    Examples
    --------
    >>> from skvdae.datasets import bunny_distance, load_bunny
    >>> X = load_bunny(10, random_state=0)
    >>> float(bunny_distance(X).max())
    0.0
    >>> float(bunny_distance([[0.0, 0.0, 100.0]])[0]) > 40
    True
    """
    X = check_points(X, 3)
    distance, index = _bunny_tree(bool(normalize)).query(X)
    if return_index:
        return distance, index
    return distance


def _vertex_normals(vertices, faces):
    """Unit vertex normals, area-weighted averages of the adjacent faces'."""
    if len(faces) == 0:
        return _pca_normals(vertices)
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    face_normals = np.cross(b - a, c - a)
    normals = np.empty_like(vertices)
    for axis in range(3):
        weights = np.repeat(face_normals[:, axis], 3)
        normals[:, axis] = np.bincount(
            faces.ravel(), weights=weights, minlength=len(vertices)
        )
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    missing = norm[:, 0] == 0
    normals[~missing] /= norm[~missing]
    if np.any(missing):
        normals[missing] = _pca_normals(vertices)[missing]
    return normals


def _pca_normals(vertices, k=12):
    """Normals as the least-variance direction of each point's k neighbours."""
    _, neighbours = cKDTree(vertices).query(vertices, k=min(k, len(vertices)))
    local = vertices[neighbours] - vertices[neighbours].mean(axis=1, keepdims=True)
    _, vectors = np.linalg.eigh(np.einsum("nki,nkj->nij", local, local))
    return vectors[:, :, 0]


def make_rotating_bunny(
    n_frames=200,
    *,
    height=80,
    width=100,
    angles=None,
    elevation=15.0,
    color=(0.95, 0.8, 0.6),
    background=0.0,
):
    """A video of the Stanford bunny turning once about its vertical axis.

    Each frame is rendered with numpy alone: the 50,000 vertices of
    :func:`load_bunny` are turned by the frame's angle about the vertical
    (``z``) axis, tilted towards a camera that looks down at ``elevation``
    degrees, projected orthographically and splatted one pixel each with a
    z-buffer; each pixel gets the Lambert shading of its nearest vertex's
    normal (area-weighted mesh normals) under a fixed light at the viewer's
    upper left, plus ambient light. The image scale is fixed across frames so
    the whole bunny fits every frame.

    The frames are a function of the angle alone, so the data set is a real
    high-dimensional point cloud whose latent manifold is exactly a circle.
    Rendering the default 200 frames takes about a second.

    Parameters
    ----------
    n_frames : int, default=200
        Number of frames, at angles ``2 pi k / n_frames`` (ignored when
        ``angles`` is given).
    height : int, default=80
        Image height in pixels (rows).
    width : int, default=100
        Image width in pixels (columns).
    angles : array-like of shape (n_frames,) or None, default=None
        Rotation angles in radians, instead of the evenly spaced ones.
    elevation : float, default=15.0
        Angle of the camera above the horizontal, in degrees.
    color : tuple of 3 floats, default=(0.95, 0.8, 0.6)
        RGB colour of a fully lit surface, in ``[0, 1]``.
    background : float, default=0.0
        Grey level of the background, in ``[0, 1]``.

    Returns
    -------
    X : ndarray of shape (n_frames, height * width * 3), dtype float32
        The frames, each an image of shape ``(height, width, 3)`` (rows from
        top to bottom, columns from left to right, RGB last) flattened in C
        order; values in ``[0, 1]``.
    angles : ndarray of shape (n_frames,)
        The rotation angle of each frame, in radians.

    Raises
    ------
    ImportError
        When ``pymeshfix`` (the ``datasets`` extra) is not installed.

    See Also
    --------
    load_bunny : The point cloud.

    Examples
    --------
    >>> from skvdae.datasets import make_rotating_bunny
    >>> X, angles = make_rotating_bunny(4)
    >>> X.shape
    (4, 24000)
    """
    height = check_n_samples(height, "height")
    width = check_n_samples(width, "width")
    if angles is None:
        n_frames = check_n_samples(n_frames, "n_frames")
        angles = 2.0 * np.pi * np.arange(n_frames) / n_frames
    else:
        angles = np.asarray(angles, dtype=float).reshape(-1)
        if len(angles) == 0 or not np.all(np.isfinite(angles)):
            raise ValueError("angles must be a non-empty array of finite numbers.")
    color = np.asarray(color, dtype=float)
    if color.shape != (3,) or np.any((color < 0) | (color > 1)):
        raise ValueError(f"color must be 3 numbers in [0, 1], got {color!r}.")
    background = check_positive(background, "background", allow_zero=True)
    if background > 1:
        raise ValueError(f"background must be in [0, 1], got {background}.")
    elevation = np.deg2rad(float(elevation))

    vertices, faces = _bunny_mesh()
    normals = _vertex_normals(vertices, faces)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    points = vertices - (lo + hi) / 2.0
    # Bound of the horizontal and vertical image extent over all angles.
    rho = np.hypot(points[:, 0], points[:, 1])
    half_width = rho.max()
    half_height = np.max(
        np.abs(points[:, 2]) * np.cos(elevation) + rho * abs(np.sin(elevation))
    )
    pixel = 0.92 * min(width / (2 * half_width), height / (2 * half_height))
    light = np.array([-0.4, 0.6, -1.0])
    light /= np.linalg.norm(light)
    ce, se = np.cos(elevation), np.sin(elevation)

    frames = np.empty((len(angles), height * width, 3), dtype=np.float32)
    for k, angle in enumerate(angles):
        ca, sa = np.cos(angle), np.sin(angle)
        # Turn about z, then tilt about the horizontal image axis. Camera
        # coordinates: (right, up, depth away from the camera).
        turned = np.c_[
            ca * points[:, 0] - sa * points[:, 1], sa * points[:, 0] + ca * points[:, 1]
        ]
        right = turned[:, 0]
        up = ce * points[:, 2] - se * turned[:, 1]
        depth = se * points[:, 2] + ce * turned[:, 1]
        n_turned = np.c_[
            ca * normals[:, 0] - sa * normals[:, 1],
            sa * normals[:, 0] + ca * normals[:, 1],
        ]
        n_cam = np.c_[
            n_turned[:, 0],
            ce * normals[:, 2] - se * n_turned[:, 1],
            se * normals[:, 2] + ce * n_turned[:, 1],
        ]
        n_cam *= np.where(n_cam[:, 2] > 0, -1.0, 1.0)[:, None]  # two-sided
        shade = 0.2 + 0.8 * np.clip(n_cam @ light, 0.0, None)

        col = np.floor(width / 2 + right * pixel).astype(np.intp)
        row = np.floor(height / 2 - up * pixel).astype(np.intp)
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        flat = row[inside] * width + col[inside]
        d = depth[inside]
        d = (d - d.min()) / (np.ptp(d) + 1e-12) * 0.5
        order = np.argsort(flat + d)
        first = np.r_[True, flat[order][1:] != flat[order][:-1]]
        winners = order[first]
        frames[k] = background
        frames[k, flat[winners]] = shade[inside][winners, None] * color
    return frames.reshape(len(angles), -1), angles
