"""The command line: ``python -m skvdae`` or the ``skvdae`` console script.

Subcommands ``demo``, ``fit``, ``sample``, ``embed``, ``score`` and ``plot``;
``skvdae --help`` lists them and :data:`EXIT_CODES` (which ``--help`` prints)
the exit codes scripts can rely on.
"""

from ._errors import (
    EXIT_BAD_DATA,
    EXIT_BAD_MODEL,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_MISSING_DEPENDENCY,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
)
from ._files import read_data, write_array
from ._main import build_parser, main

__all__ = [
    "EXIT_BAD_DATA",
    "EXIT_BAD_MODEL",
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "EXIT_MISSING_DEPENDENCY",
    "EXIT_OK",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "read_data",
    "write_array",
]
