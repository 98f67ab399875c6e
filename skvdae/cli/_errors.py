"""Exit codes and the errors that end a command with one of them."""

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_BAD_DATA = 3
EXIT_BAD_MODEL = 4
EXIT_MISSING_DEPENDENCY = 5
EXIT_INTERRUPTED = 130

#: The one list of exit codes: ``--help`` prints it, the docs point to it.
EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_UNEXPECTED, "unexpected error (a bug; --debug shows the traceback)"),
    (
        EXIT_USAGE,
        "usage error (unknown option, missing argument, an option value out of "
        "range, unsupported suffix)",
    ),
    (
        EXIT_BAD_DATA,
        "bad input data (missing or unreadable file, non-numeric CSV, wrong shape "
        "or feature count, data or parameters the estimator rejects, a fit that "
        "diverges, a result that is NaN or infinite, output that cannot be "
        "written)",
    ),
    (
        EXIT_BAD_MODEL,
        "bad model file (missing, not a skvdae model file, truncated, corrupt or "
        "invalid, newer format version, wrong kind of model for the command)",
    ),
    (
        EXIT_MISSING_DEPENDENCY,
        "missing optional dependency (matplotlib for plot and demo)",
    ),
    (EXIT_INTERRUPTED, "interrupted"),
)


def exit_codes_text(indent="  "):
    """The exit codes as lines ``code  meaning`` for help texts."""
    import textwrap

    lines = []
    for code, meaning in EXIT_CODES:
        wrapped = textwrap.wrap(meaning, width=70)
        lines.append(f"{indent}{code:<4} {wrapped[0]}")
        lines += [f"{indent}     {line}" for line in wrapped[1:]]
    return "\n".join(lines)


class CommandError(Exception):
    """An error reported as one line, with an exit code and no traceback."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


class DataError(CommandError):
    def __init__(self, message):
        super().__init__(message, EXIT_BAD_DATA)


class ModelError(CommandError):
    def __init__(self, message):
        super().__init__(message, EXIT_BAD_MODEL)


class UsageError(CommandError):
    def __init__(self, message):
        super().__init__(message, EXIT_USAGE)
