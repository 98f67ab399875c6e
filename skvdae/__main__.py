"""Command line: ``python -m skvdae`` or the ``skvdae`` console script.

Subcommands ``demo``, ``fit``, ``sample``, ``embed``, ``score`` and ``plot``;
``python -m skvdae --help`` lists them. Exit codes, which scripts can rely on:

- 0: success;
- 1: unexpected error (a bug; ``--debug`` shows the traceback);
- 2: usage error (unknown option, missing argument, unsupported suffix);
- 3: bad input data (missing or unreadable file, non-numeric CSV, wrong shape
  or feature count, parameters rejected for this data, unwritable output);
- 4: bad model file (missing, not a skvdae model file, truncated or corrupt,
  newer format version, wrong kind of model for the command);
- 5: missing optional dependency (matplotlib for ``plot``);
- 130: interrupted.

The implementation lives in :mod:`skvdae._cli`.
"""

import sys

from ._cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
