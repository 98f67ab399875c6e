"""Command line: ``python -m skvdae`` or ``skvdae`` (see ``__main__.py``).

Subcommands
-----------
``demo``
    Fit a VDAESampler on a built-in loop, walk from one seed, write the samples
    and a figure.
``fit DATA --out MODEL``
    Fit a VDAESampler (``--model embedder``: a DiffusionMapEmbedder) on DATA
    (``.npy``, or ``.csv`` with an optional header row) and save it in the safe
    model format (:func:`skvdae.save_model`).
``sample MODEL --n N --steps T --out FILE``
    Draw N samples, each the end of a walk of T steps, from the training data or
    from ``--seeds FILE``; write them as ``.npy`` or ``.csv``.
``embed MODEL DATA --out FILE``
    Write the diffusion coordinates of DATA.
``score MODEL DATA``
    Print the mean local ELBO of DATA under a VDAESampler.
``plot DATA [--samples FILE] --out PNG``
    Draw 2-D or 3-D data, and samples over it (needs matplotlib).

Exit codes
----------
0
    Success.
1
    Unexpected error (a bug: please report it with the traceback, which
    ``--debug`` shows).
2
    Usage error: unknown option, missing argument, unsupported output suffix.
3
    Bad input data: a data file that is missing or unreadable, not numeric,
    of the wrong shape, or with a feature count the model was not fitted on;
    parameters the estimator rejects for this data; an output that cannot be
    written.
4
    Bad model file: missing, not a skvdae model file, truncated or corrupt,
    written by a newer format version, or of the wrong kind for the command.
5
    A missing optional dependency (matplotlib for ``plot``).
130
    Interrupted (Ctrl-C).

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from skvdae._cli import main
>>> folder = tempfile.mkdtemp()
>>> theta = np.linspace(0, 2 * np.pi, 100, endpoint=False)
>>> np.save(os.path.join(folder, "circle.npy"), np.c_[np.cos(theta), np.sin(theta)])
>>> main([
...     "fit", os.path.join(folder, "circle.npy"), "--out",
...     os.path.join(folder, "model.skvdae"), "--solver", "exact",
...     "--max-iter", "20", "--random-state", "0", "--quiet",
... ])
0
>>> main([
...     "sample", os.path.join(folder, "model.skvdae"), "--n", "5", "--steps", "2",
...     "--out", os.path.join(folder, "samples.csv"), "--quiet",
... ])
0
>>> np.loadtxt(os.path.join(folder, "samples.csv"), delimiter=",").shape
(5, 2)
>>> main(["embed", os.path.join(folder, "model.skvdae"), "missing.npy", "--out",
...       os.path.join(folder, "z.npy"), "--quiet"])
3
"""

import argparse
import contextlib
import csv
import io
import os
import sys
import time
import traceback

import numpy as np

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_BAD_DATA = 3
EXIT_BAD_MODEL = 4
EXIT_MISSING_DEPENDENCY = 5
EXIT_INTERRUPTED = 130

_EPILOG = """\
exit codes:
  0    success
  1    unexpected error (a bug; --debug shows the traceback)
  2    usage error (unknown option, missing argument, unsupported suffix)
  3    bad input data (missing or unreadable file, non-numeric CSV, wrong
       shape or feature count, parameters rejected for this data, output
       that cannot be written)
  4    bad model file (missing, not a skvdae model file, truncated or
       corrupt, newer format version, wrong kind of model for the command)
  5    missing optional dependency (matplotlib for plot)
  130  interrupted

data files: .npy (a 2-D numeric array) or .csv (comma, semicolon, tab or
whitespace separated; a first row that does not parse as numbers is a header).
model files: the safe skvdae format (skvdae.save_model / skvdae.load_model),
which loads without running code from the file.
"""


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


# --------------------------------------------------------------------- files

_DATA_SUFFIXES = (".npy", ".csv")


def _suffix(path):
    return os.path.splitext(os.fspath(path))[1].lower()


def _check_output_suffix(path, option="--out"):
    if _suffix(path) not in _DATA_SUFFIXES:
        raise UsageError(f"{option} {path!r}: unsupported suffix; use .npy or .csv.")


def read_data(path):
    """A 2-D float64 array from a ``.npy`` or ``.csv`` file.

    Parameters
    ----------
    path : str
        The file. A CSV file may start with a header row (any first row that does
        not parse as numbers); its separator is a comma, semicolon, tab or
        whitespace.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)

    Raises
    ------
    DataError
        For a missing or unreadable file, non-numeric values, a ragged CSV, an
        array that is not 2-D or has no rows, or non-finite values.
    """
    suffix = _suffix(path)
    if suffix not in _DATA_SUFFIXES:
        raise DataError(f"{path!r}: unsupported data file; use .npy or .csv.")
    if not os.path.isfile(path):
        raise DataError(f"{path!r}: no such file.")
    if suffix == ".npy":
        try:
            X = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise DataError(
                f"{path!r}: not a readable .npy array ({error})."
            ) from error
        if not isinstance(X, np.ndarray) or X.dtype.kind not in "biuf":
            raise DataError(
                f"{path!r}: expected a numeric array, got dtype "
                f"{getattr(X, 'dtype', type(X).__name__)}."
            )
    else:
        X = _read_csv(path)
    if X.ndim != 2:
        raise DataError(
            f"{path!r}: expected a 2-D array (n_samples, n_features), got shape "
            f"{X.shape}."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path!r}: no data (shape {X.shape}).")
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise DataError(f"{path!r}: contains NaN or infinite values.")
    return X


def _read_csv(path):
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path!r}: cannot read the CSV file ({error}).") from error
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise DataError(f"{path!r}: the CSV file is empty.")
    first = numbered[0][1]
    delimiter = next((d for d in (",", ";", "\t") if d in first), None)

    def split(line):
        if delimiter is None:
            return line.split()
        return [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter))]

    rows = [(n, split(line)) for n, line in numbered]
    if not _all_numbers(rows[0][1]):
        rows = rows[1:]  # a header
        if not rows:
            raise DataError(f"{path!r}: the CSV file has a header but no data.")
    width = len(rows[0][1])
    values = np.empty((len(rows), width))
    for i, (n, cells) in enumerate(rows):
        if len(cells) != width:
            raise DataError(
                f"{path!r}, line {n}: {len(cells)} values, expected {width}."
            )
        for j, cell in enumerate(cells):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise DataError(
                    f"{path!r}, line {n}, column {j + 1}: {cell!r} is not a number."
                ) from None
    return values


def _all_numbers(cells):
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return True


def write_array(path, array):
    """Write ``array`` as ``.npy`` or comma-separated ``.csv`` (full precision)."""
    try:
        if _suffix(path) == ".npy":
            np.save(path, array)
        else:
            np.savetxt(path, np.atleast_2d(array), delimiter=",", fmt="%.17g")
    except OSError as error:
        raise DataError(f"{path!r}: cannot write ({error}).") from error
    return path


def _load(path, kind=None):
    from . import DiffusionMapEmbedder, ModelFileError, VDAESampler, load_model

    if not os.path.isfile(path):
        raise ModelError(f"{path!r}: no such model file.")
    try:
        model = load_model(path)
    except ModelFileError as error:
        raise ModelError(str(error)) from error
    except OSError as error:
        raise ModelError(f"{path!r}: cannot read the model file ({error}).") from error
    wanted = {"sampler": VDAESampler, "embedder": DiffusionMapEmbedder}.get(kind)
    if wanted is not None and not isinstance(model, wanted):
        raise ModelError(
            f"{path!r} holds a {type(model).__name__}; this command needs a "
            f"{wanted.__name__} (fit one with 'fit' without '--model embedder')."
        )
    return model


def _check_features(model, X, path):
    if X.shape[1] != model.n_features_in_:
        raise DataError(
            f"{path!r} has {X.shape[1]} features, but the model was fitted on "
            f"{model.n_features_in_}."
        )


# --------------------------------------------------------------------- progress


class _ProgressBar(io.TextIOBase):
    """Turns the estimators' verbose lines into a progress bar on a terminal."""

    def __init__(self, stream, width=30):
        self.stream = stream
        self.width = width
        self.start = time.monotonic()
        self._buffer = ""

    def writable(self):
        return True

    def write(self, text):
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._show(line)
        return len(text)

    def _show(self, line):
        # "[SpectralNet] step 40/200  loss 1.2e-01"
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "step" and "/" in parts[2]:
            try:
                done, total = (int(v) for v in parts[2].split("/"))
            except ValueError:
                return
            filled = int(self.width * done / max(total, 1))
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(
                f"\r{parts[0]:<15} [{bar}] {done}/{total} "
                f"{time.monotonic() - self.start:6.1f} s"
            )
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()


@contextlib.contextmanager
def _progress(args):
    """Verbose: the estimators print; on a terminal: a bar; otherwise quiet."""
    if args.verbose or args.quiet or not sys.stderr.isatty():
        yield args.verbose
        return
    bar = _ProgressBar(sys.stderr)
    with contextlib.redirect_stdout(bar):
        yield 1


# --------------------------------------------------------------------- commands


def _layer_sizes(text):
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return sizes


def _count(minimum):
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

    return parse


def _auto_or(kind, what):
    def parse(text):
        if text == "auto":
            return text
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected 'auto' or {what}, got {text!r}"
            ) from None

    return parse


_auto_or_float = _auto_or(float, "a number")
_auto_or_int = _auto_or(int, "an integer")


def _message(args, text):
    if not args.quiet:
        print(text, file=sys.stderr)


def _command_fit(args):
    from . import DiffusionMapEmbedder, VDAESampler

    X = read_data(args.data)
    embedder_params = {
        "n_components": args.n_components,
        "bandwidth": args.bandwidth,
        "alpha": args.alpha,
        "diffusion_time": args.diffusion_time,
        "solver": args.solver,
        "hidden_layer_sizes": args.hidden_layer_sizes,
        "device": args.device,
        "random_state": args.random_state,
    }
    sampler_params = {
        "n_neighbors": args.n_neighbors,
        "covariance_scale": args.covariance_scale,
        "noise_variance": args.noise_variance,
        "decoder_variance": args.decoder_variance,
        "decoder_hidden_layer_sizes": args.decoder_hidden_layer_sizes,
        "covariance_hidden_layer_sizes": args.covariance_hidden_layer_sizes,
        "batch_size": args.batch_size,
        "max_iter": args.max_iter,
        "learning_rate": args.learning_rate,
        "device": args.device,
        "random_state": args.random_state,
    }
    if args.model == "embedder":
        embedder_params.update(
            n_neighbors=args.n_neighbors,
            batch_size=args.batch_size,
            max_iter=args.max_iter,
            learning_rate=args.learning_rate,
        )
        for name in ("covariance_scale", "noise_variance", "decoder_variance"):
            if sampler_params[name] is not None:
                raise UsageError(f"--{name.replace('_', '-')} needs --model sampler.")
    else:
        embedder_params.update(
            n_neighbors=args.bandwidth_neighbors, max_iter=args.embedder_max_iter
        )
    embedder_params = {k: v for k, v in embedder_params.items() if v is not None}
    sampler_params = {k: v for k, v in sampler_params.items() if v is not None}
    start = time.monotonic()
    _message(args, f"fitting a {args.model} on {X.shape[0]} x {X.shape[1]} data ...")
    with _progress(args) as verbose:
        try:
            if args.model == "embedder":
                model = DiffusionMapEmbedder(**embedder_params, verbose=verbose)
                model.fit(X)
            else:
                embedder = DiffusionMapEmbedder(**embedder_params, verbose=verbose)
                model = VDAESampler(embedder, **sampler_params, verbose=verbose)
                model.fit(X)
        except ValueError as error:
            raise DataError(f"cannot fit {args.data!r}: {error}") from error
    # The saved model stays quiet when used later.
    model.set_params(verbose=0)
    if args.model == "sampler":
        model.embedder.set_params(verbose=0)
        model.embedder_.set_params(verbose=0)
    try:
        model.save(args.out)
    except OSError as error:
        raise DataError(f"{args.out!r}: cannot write ({error}).") from error
    _message(args, f"fitted in {time.monotonic() - start:.1f} s; wrote {args.out}")


def _command_sample(args):
    _check_output_suffix(args.out)
    model = _load(args.model_file, "sampler")
    seeds = None
    if args.seeds is not None:
        seeds = read_data(args.seeds)
        _check_features(model, seeds, args.seeds)
    samples = model.sample(
        args.n, n_steps=args.steps, random_state=args.random_state, seeds=seeds
    )
    write_array(args.out, samples)
    _message(args, f"wrote {samples.shape[0]} samples to {args.out}")


def _command_embed(args):
    _check_output_suffix(args.out)
    model = _load(args.model_file)
    X = read_data(args.data)
    _check_features(model, X, args.data)
    write_array(args.out, model.transform(X))
    _message(
        args, f"wrote the diffusion coordinates of {X.shape[0]} points to {args.out}"
    )


def _command_score(args):
    model = _load(args.model_file, "sampler")
    X = read_data(args.data)
    _check_features(model, X, args.data)
    print(f"{model.score(X):.10g}")


def _command_plot(args):
    if _suffix(args.out) not in (".png", ".pdf", ".svg"):
        raise UsageError(f"--out {args.out!r}: use .png, .pdf or .svg.")
    X = read_data(args.data)
    if X.shape[1] not in (2, 3):
        raise DataError(
            f"{args.data!r} has {X.shape[1]} features; plot draws 2-D or 3-D data."
        )
    samples = None
    if args.samples is not None:
        samples = read_data(args.samples)
        if samples.shape[1] != X.shape[1]:
            raise DataError(
                f"{args.samples!r} has {samples.shape[1]} features, the data "
                f"{X.shape[1]}."
            )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CommandError(
            "plot needs matplotlib: pip install matplotlib (or 'skvdae[demo]').",
            EXIT_MISSING_DEPENDENCY,
        ) from None
    figure = plt.figure(figsize=(6, 5))
    projection = "3d" if X.shape[1] == 3 else None
    axes = figure.add_subplot(1, 1, 1, projection=projection)
    data_colour = "lightgrey" if samples is not None else "tab:blue"
    axes.scatter(*X.T, s=3, c=data_colour, label=f"data ({X.shape[0]})")
    if samples is not None:
        axes.scatter(*samples.T, s=6, c="tab:red", label=f"samples ({len(samples)})")
    if projection is None:
        axes.set_aspect("equal", adjustable="datalim")
    axes.legend(loc="upper right")
    axes.set_title(args.title or os.path.basename(args.data))
    figure.tight_layout()
    try:
        figure.savefig(args.out, dpi=120)
    except OSError as error:
        raise DataError(f"{args.out!r}: cannot write ({error}).") from error
    finally:
        plt.close(figure)
    _message(args, f"wrote {args.out}")


def _command_demo(args):
    from ._demo import run_demo

    for path in run_demo(
        args.out,
        args.n_samples,
        args.random_state,
        n_walkers=args.n_walkers,
        n_steps=args.n_steps,
    ):
        print(f"wrote {path}")


# --------------------------------------------------------------------- parser


def _prog():
    if os.path.basename(sys.argv[0] or "") == "__main__.py":
        return "python -m skvdae"
    return "skvdae"


def build_parser():
    """The argument parser of the command line.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no messages on stderr"
    )
    common.add_argument(
        "--debug", action="store_true", help="show tracebacks of unexpected errors"
    )
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Variational diffusion autoencoders for scikit-learn.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, help_text):
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    demo = add(
        "demo",
        "fit a VDAESampler on a built-in loop, walk from one seed, write the "
        "samples and a figure",
    )
    demo.add_argument("--out", default="demo_output", help="output folder")
    demo.add_argument("--n-samples", type=int, default=2000)
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--n-walkers", type=int, default=300)
    demo.add_argument("--n-steps", type=int, default=30)

    fit = add("fit", "fit a model on DATA (.npy or .csv) and save it to MODEL")
    fit.add_argument("data", metavar="DATA", help="training data, .npy or .csv")
    fit.add_argument("--out", required=True, metavar="MODEL", help="model file")
    fit.add_argument(
        "--model",
        choices=["sampler", "embedder"],
        default="sampler",
        help="VDAESampler (default) or DiffusionMapEmbedder",
    )
    fit.add_argument(
        "--n-components",
        type=_auto_or_int,
        help="diffusion coordinates D, or 'auto' (the default: from the spectrum)",
    )
    fit.add_argument(
        "--n-neighbors",
        type=int,
        help="sampler: latent neighbours of the step covariance; embedder: "
        "neighbour rank of the 'auto' bandwidth",
    )
    fit.add_argument(
        "--bandwidth-neighbors",
        type=int,
        help="sampler only: the embedder's neighbour rank of the 'auto' bandwidth",
    )
    fit.add_argument("--bandwidth", type=_auto_or_float, help="'auto' or a number")
    fit.add_argument("--alpha", type=float, help="density normalisation in [0, 1]")
    fit.add_argument("--diffusion-time", type=float)
    fit.add_argument("--solver", choices=["spectralnet", "exact"])
    fit.add_argument(
        "--hidden-layer-sizes",
        type=_layer_sizes,
        metavar="N,N",
        help="SpectralNet hidden layers, e.g. 64,64",
    )
    fit.add_argument("--covariance-scale", type=_auto_or_float)
    fit.add_argument("--decoder-variance", choices=["local", "none"])
    fit.add_argument("--noise-variance", type=_auto_or_float)
    fit.add_argument("--decoder-hidden-layer-sizes", type=_layer_sizes, metavar="N,N")
    fit.add_argument(
        "--covariance-hidden-layer-sizes", type=_layer_sizes, metavar="N,N"
    )
    fit.add_argument("--batch-size", type=int)
    fit.add_argument(
        "--max-iter",
        type=int,
        help="training steps of the model fitted (sampler: decoder and "
        "covariance network; embedder: SpectralNet)",
    )
    fit.add_argument(
        "--embedder-max-iter", type=int, help="sampler only: SpectralNet steps"
    )
    fit.add_argument("--learning-rate", type=float)
    fit.add_argument("--device", choices=["auto", "cpu", "cuda"])
    fit.add_argument("--random-state", type=int)
    fit.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="print training progress (a progress bar is shown on a terminal anyway)",
    )

    sample = add("sample", "draw samples from a VDAESampler model file")
    sample.add_argument("model_file", metavar="MODEL")
    sample.add_argument("--n", type=_count(1), default=1, help="number of samples")
    sample.add_argument("--steps", type=_count(0), default=10, help="walk steps")
    sample.add_argument(
        "--out", required=True, metavar="FILE", help="samples, .npy or .csv"
    )
    sample.add_argument(
        "--seeds", metavar="FILE", help="starting points (default: training data)"
    )
    sample.add_argument("--random-state", type=int)

    embed = add("embed", "write the diffusion coordinates of DATA")
    embed.add_argument("model_file", metavar="MODEL")
    embed.add_argument("data", metavar="DATA")
    embed.add_argument("--out", required=True, metavar="FILE", help=".npy or .csv")

    score = add("score", "print the mean local ELBO of DATA under a VDAESampler")
    score.add_argument("model_file", metavar="MODEL")
    score.add_argument("data", metavar="DATA")

    plot = add("plot", "draw 2-D or 3-D data and samples (needs matplotlib)")
    plot.add_argument("data", metavar="DATA")
    plot.add_argument("--samples", metavar="FILE", help="samples drawn over the data")
    plot.add_argument("--out", required=True, metavar="PNG", help=".png, .pdf or .svg")
    plot.add_argument("--title")
    return parser


_COMMANDS = {
    "demo": _command_demo,
    "fit": _command_fit,
    "sample": _command_sample,
    "embed": _command_embed,
    "score": _command_score,
    "plot": _command_plot,
}


def main(argv=None):
    """Run the command line; return the exit code (see the module docstring).

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    code : int
        0 on success, 1 unexpected error, 2 usage error, 3 bad input data, 4 bad
        model file, 5 missing optional dependency, 130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    for name in ("quiet", "verbose"):
        if not hasattr(args, name):
            setattr(args, name, 0)
    try:
        _COMMANDS[args.command](args)
    except CommandError as error:
        prefix = f"{parser.prog} {args.command}: error: "
        print(prefix + str(error), file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(
            f"{parser.prog} {args.command}: unexpected error: "
            f"{type(error).__name__}: {error} (--debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_UNEXPECTED
    return EXIT_OK
