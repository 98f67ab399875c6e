"""Command-line flags generated from the estimators' parameters.

Each flag of ``fit`` is made from one estimator parameter: its name (``_`` to
``-``), its scikit-learn constraints (which give the value's parser, checked at
parse time so that a value out of range is a usage error) and the first
sentence of its docstring entry (the help). No flag is written by hand, so a
new parameter reaches the command line by itself.
"""

import argparse
import re
from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from .._validation import LAYER_SIZES

# Constraints of parameters that have no flag (objects, or --verbose/-q).
_NOT_FLAGS = {"verbose", "boolean"}

_MAX_SEED = 2**32 - 1


def parameter_docs(cls):
    """``{name: first sentence}`` from the numpydoc Parameters section of ``cls``."""
    lines = (cls.__doc__ or "").splitlines()
    docs, name, text, inside = {}, None, [], False
    for line in lines:
        stripped = line.strip()
        if stripped == "Parameters":
            inside = True
            continue
        if not inside:
            continue
        if stripped and set(stripped) == {"-"}:
            continue
        if stripped in ("Attributes", "Returns", "See Also", "Examples", "Notes"):
            break
        match = re.match(r"^    (\w+) : ", line)
        if match:
            if name is not None:
                docs[name] = _first_sentence(text)
            name, text = match.group(1), []
        elif name is not None and stripped:
            text.append(stripped)
    if name is not None:
        docs[name] = _first_sentence(text)
    return docs


def _first_sentence(words):
    text = " ".join(words)
    end = re.search(r"\.(\s|$)", text)
    return text[: end.start() + 1] if end else text


class ValueParser:
    """Parses a flag's text into a value its constraints accept.

    Parameters
    ----------
    constraints : list
        The parameter's scikit-learn constraints.
    name : str
        For messages.
    """

    def __init__(self, constraints, name):
        self.name = name
        self.options = set()
        self.intervals = []
        self.allow_none = False
        self.layer_sizes = False
        self.seed = False
        for constraint in constraints:
            if isinstance(constraint, StrOptions):
                self.options |= set(constraint.options)
            elif isinstance(constraint, Interval):
                self.intervals.append(constraint)
            elif constraint is None:
                self.allow_none = True
            elif constraint == "random_state":
                self.seed = True
            elif constraint == LAYER_SIZES[0]:
                self.layer_sizes = True
        self.__name__ = name  # argparse names the type in its messages

    @property
    def takes_value(self):
        return bool(self.options or self.intervals or self.layer_sizes or self.seed)

    def describe(self):
        """What the flag accepts, for its help."""
        parts = [repr(option) for option in sorted(self.options)]
        if self.layer_sizes:
            parts.append("comma-separated positive integers")
        if self.seed:
            parts.append(f"an integer in [0, {_MAX_SEED}]")
        for interval in self.intervals:
            low = "-inf" if interval.left is None else interval.left
            high = "inf" if interval.right is None else interval.right
            opening = "[" if interval.closed in ("left", "both") else "("
            closing = "]" if interval.closed in ("right", "both") else ")"
            kind = "an integer" if interval.type is Integral else "a number"
            parts.append(f"{kind} in {opening}{low}, {high}{closing}")
        if self.allow_none:
            parts.append("'none'")
        return " or ".join(parts)

    def __call__(self, text):
        if text in self.options:
            return text
        if self.allow_none and text.lower() == "none":
            return None
        if self.layer_sizes:
            try:
                sizes = tuple(int(v) for v in text.split(","))
            except ValueError:
                sizes = ()
            if sizes and min(sizes) >= 1:
                return sizes
        if self.seed:
            try:
                value = int(text)
            except ValueError:
                value = -1
            if 0 <= value <= _MAX_SEED:
                return value
        for interval in self.intervals:
            try:
                value = int(text) if interval.type is Integral else float(text)
            except ValueError:
                continue
            if interval.is_satisfied_by(value):
                return value
        raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")


def flag_name(name, prefix=""):
    return "--" + (prefix + name).replace("_", "-")


def add_parameter_flags(group, cls, names, prefix="", dest_prefix="param_", what=None):
    """Add one flag ``--{prefix}{name}`` per parameter ``names`` of ``cls``.

    The flags default to ``None`` (the estimator's own default); ``dest`` is
    ``dest_prefix + prefix + name``. Returns the ``dest`` names added.
    """
    docs = parameter_docs(cls)
    added = []
    for name in names:
        parser = ValueParser(cls._parameter_constraints[name], name)
        if not parser.takes_value:
            continue
        help_text = docs.get(name, "")
        if what:
            help_text = f"{what}: {help_text}"
        help_text = f"{help_text} Accepts {parser.describe()}."
        help_text = help_text.replace("``", "").replace("%", "%%")
        group.add_argument(
            flag_name(name, prefix),
            dest=dest_prefix + prefix + name,
            type=parser,
            default=None,
            metavar="VALUE",
            help=help_text.strip(),
        )
        added.append(dest_prefix + prefix + name)
    return added


def flag_parameters(cls, exclude=()):
    """The parameters of ``cls`` that get flags, in constructor order."""
    names = cls().get_params(deep=False)
    return [
        name
        for name in names
        if name not in exclude
        and not any(c in _NOT_FLAGS for c in cls._parameter_constraints.get(name, []))
        and ValueParser(cls._parameter_constraints[name], name).takes_value
    ]


def count(minimum):
    """A parser of integers ``>= minimum`` for hand-written flags."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def seed(text):
    """A parser of ``random_state`` seeds: integers in ``[0, 2**32 - 1]``."""
    return ValueParser(["random_state"], "random_state")(text)
