"""Sphinx configuration of the skvdae documentation.

Build (from the repository root)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html
"""

import os
import re
import sys

import skvdae

project = "skvdae"
author = "skvdae developers"
copyright = "skvdae developers"
version = release = skvdae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "examples/README.rst", "**/*.ipynb", "**/*.py.md5"]
root_doc = "index"

# -- API reference ---------------------------------------------------------
# The top-level names are listed from ``skvdae.__all__`` at build time, so that
# every public name gets a page (names re-exported from ``skvdae.metrics`` are
# documented there, ``__version__`` in api.rst).
_HERE = os.path.dirname(os.path.abspath(__file__))
# The gallery compares against the generative benchmark's baselines, which live
# in the repository's benchmarks/ package (not installed with skvdae).
sys.path.insert(0, os.path.dirname(_HERE))


def _write_top_level_autosummary():
    names = [
        name
        for name in skvdae.__all__
        if name != "__version__"
        and not getattr(skvdae, name).__module__.startswith("skvdae.metrics")
    ]
    lines = [
        ".. currentmodule:: skvdae",
        "",
        ".. autosummary::",
        "   :toctree: api/generated",
        "   :nosignatures:",
        "",
        *(f"   {name}" for name in names),
        "",
    ]
    # Next to api.rst, so that the toctree path means the same to autosummary's
    # stub generation and to the include.
    path = os.path.join(_HERE, "api_top_level.rst")
    text = "\n".join(lines)
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)


_write_top_level_autosummary()

# The generated list is included by api.rst, not a page of its own.
exclude_patterns.append("api_top_level.rst")
autosummary_generate = ["api.rst", "api_top_level.rst"]
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Parameter types are prose ("int, default=10"), not cross-references.
numpydoc_xref_param_type = False
default_role = "literal"

intersphinx_mapping = {}  # offline build: no inventories are downloaded
nitpicky = False

# -- Gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "doc_module": ("skvdae",),
    "backreferences_dir": "api/generated/backreferences",
    "reference_url": {"skvdae": None},
    "min_reported_time": 1,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    # Examples whose source is unchanged since the last build in this checkout
    # are not rerun (sphinx-gallery compares checksums); SKVDAE_DOC_RERUN=1
    # reruns them all, e.g. after a change to the library itself.
    "run_stale_examples": os.environ.get("SKVDAE_DOC_RERUN", "0") == "1",
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skvdae {release}"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc"],
    "show_prev_next": False,
}
html_static_path = []
html_show_sourcelink = False


# -- Docstring fix-ups ---------------------------------------------------------
# Shapes such as ``(n_iter_,)`` name fitted attributes; in reStructuredText a
# word ending in "_" is a link, so escape it inside parentheses before numpydoc
# parses the docstring.
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\\\w])([A-Za-z]\w*?)_(?=[,)])")


def _escape_shape_names(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "shape (" in line and "``" not in line:
            lines[i] = _TRAILING_UNDERSCORE.sub(r"\1\\_", line)


def setup(app):
    app.connect("autodoc-process-docstring", _escape_shape_names, priority=100)
