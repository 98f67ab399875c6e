"""Command line: ``python -m skvdae`` or ``skvdae`` (see ``__main__.py``).

Subcommands
-----------
``demo``
    Fit a VDAESampler on a built-in loop, walk from one seed, write the samples
    and a figure.
``fit DATA --out MODEL``
    Fit a VDAESampler (``--model embedder``: a DiffusionMapEmbedder) on DATA
    (``.npy``, or ``.csv`` with an optional header row) and save it in the safe
    model format (:func:`skvdae.save_model`). Its flags are generated from the
    estimators' parameters: ``--name-of-parameter VALUE``; the sampler's
    diffusion map takes ``--embedder-...`` for the parameters both have.
    Under ``torchrun --nproc_per_node=N -m skvdae fit ...`` the N processes
    fit data-parallel (:mod:`skvdae.distributed`) and rank 0 alone writes
    the model.
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
One table, :data:`skvdae.cli.EXIT_CODES`, printed by ``skvdae --help``: 0
success, 1 a bug, 2 usage, 3 bad data, 4 bad model file, 5 a missing optional
dependency, 130 interrupted.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from skvdae.cli import main
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
import os
import sys
import time
import traceback

import numpy as np

from ._errors import (
    EXIT_INTERRUPTED,
    EXIT_MISSING_DEPENDENCY,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    CommandError,
    DataError,
    ModelError,
    UsageError,
    exit_codes_text,
)
from ._files import check_output_suffix, read_data, suffix, write_array
from ._flags import (
    add_parameter_flags,
    count,
    flag_name,
    flag_parameters,
    seed,
)

_EPILOG = f"""\
exit codes:
{exit_codes_text()}

data files: .npy (a 2-D numeric array) or .csv (comma, semicolon, tab or
whitespace separated; a first row that does not parse as numbers is a header).
model files: the safe skvdae format (skvdae.save_model / skvdae.load_model),
which loads without running code from the file.
"""

# Parameters given to both estimators of a sampler from one flag.
_BOTH = ("device", "random_state")


def _load(path, kind=None):
    from .. import DiffusionMapEmbedder, ModelFileError, VDAESampler, load_model

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


@contextlib.contextmanager
def _rejected_as_bad_data(what):
    """Report what the estimator rejects as bad data (exit 3), in one line.

    scikit-learn's ``InvalidParameterError`` is a ``ValueError``; a
    ``FloatingPointError`` is a computation that diverged on the data.
    """
    try:
        yield
    except (ValueError, FloatingPointError) as error:
        message = " ".join(str(error).split())
        raise DataError(f"cannot {what}: {message}") from error


def _check_finite(values, what):
    """Refuse to write NaN or infinity: exit 3 instead."""
    finite = np.isfinite(values)
    if finite.all():
        return
    rows = np.flatnonzero(~finite.reshape(finite.shape[0], -1).all(axis=1))
    raise DataError(
        f"cannot {what}: the result is NaN or infinite for {rows.size} of "
        f"{finite.shape[0]} points (the first at index {rows[0]}), so nothing was "
        "written; points far from the training data can do this."
    )


# --------------------------------------------------------------------- progress


@contextlib.contextmanager
def _progress(args, model):
    """Verbose: the estimators print; on a terminal: a bar; otherwise quiet."""
    if args.verbose or args.quiet or not sys.stderr.isatty():
        yield
        return
    if not hasattr(model, "set_callbacks"):  # scikit-learn before 1.9
        yield
        return
    from ._progress import ProgressBar

    model.set_callbacks(ProgressBar(sys.stderr))
    try:
        yield
    finally:
        model.set_callbacks()


# --------------------------------------------------------------------- commands


def _message(args, text):
    if not args.quiet:
        print(text, file=sys.stderr)


def _estimator_params(args, model):
    """The parameters of the model to fit (and its embedder) from the flags."""
    from .. import DiffusionMapEmbedder, VDAESampler

    given = {
        name: value
        for name, value in vars(args).items()
        if name.startswith("param_") and value is not None
    }
    sampler_names = set(flag_parameters(VDAESampler, exclude=("embedder",)))
    embedder_names = set(flag_parameters(DiffusionMapEmbedder))

    def value(name, prefix=""):
        return given.get(f"param_{prefix}{name}")

    if model == "embedder":
        for name in sampler_names - embedder_names:
            if value(name) is not None:
                raise UsageError(f"{flag_name(name)} needs --model sampler.")
        params = {}
        for name in embedder_names:
            chosen = value(name, "embedder_")
            params[name] = value(name) if chosen is None else chosen
        return {k: v for k, v in params.items() if v is not None}, None
    sampler = {name: value(name) for name in sampler_names}
    embedder = {}
    for name in embedder_names:
        shared = name in sampler_names and name not in _BOTH
        embedder[name] = value(name, "embedder_" if shared else "")
    return (
        {k: v for k, v in sampler.items() if v is not None},
        {k: v for k, v in embedder.items() if v is not None},
    )


def _command_fit(args):
    from ..distributed import init_from_environment

    # Under torchrun: every process fits data-parallel, rank 0 writes the model.
    started = init_from_environment()
    try:
        _fit_and_save(args)
        if started:
            import torch

            # Leave together: a process that tears its group down while rank 0
            # still writes the model could abort in gloo's teardown.
            torch.distributed.barrier()
    finally:
        if started:
            import torch

            torch.distributed.destroy_process_group()


def _fit_and_save(args):
    from .. import DiffusionMapEmbedder, VDAESampler
    from ..distributed import Communicator

    communicator = Communicator.current()
    if communicator is not None and communicator.rank > 0:
        args.quiet, args.verbose = True, 0
    X = read_data(args.data)
    params, embedder_params = _estimator_params(args, args.model)
    verbose = int(args.verbose)
    if args.model == "embedder":
        model = DiffusionMapEmbedder(**params, verbose=verbose)
    else:
        embedder = DiffusionMapEmbedder(**embedder_params, verbose=verbose)
        model = VDAESampler(embedder, **params, verbose=verbose)
    start = time.monotonic()
    _message(args, f"fitting a {args.model} on {X.shape[0]} x {X.shape[1]} data ...")
    with _progress(args, model), _rejected_as_bad_data(f"fit {args.data!r}"):
        model.fit(X)
    # The saved model stays quiet when used later.
    model.set_params(verbose=0)
    if args.model == "sampler":
        model.embedder.set_params(verbose=0)
        model.embedder_.set_params(verbose=0)
    if communicator is None or communicator.rank == 0:
        try:
            model.save(args.out)
        except OSError as error:
            raise DataError(f"{args.out!r}: cannot write ({error}).") from error
    processes = (
        "" if communicator is None else f" on {communicator.world_size} processes"
    )
    _message(
        args,
        f"fitted in {time.monotonic() - start:.1f} s{processes}; wrote {args.out}",
    )


def _command_sample(args):
    check_output_suffix(args.out)
    model = _load(args.model_file, "sampler")
    seeds = None
    if args.seeds is not None:
        seeds = read_data(args.seeds)
        _check_features(model, seeds, args.seeds)
    with _rejected_as_bad_data("sample"):
        samples = model.sample(
            args.n, n_steps=args.steps, random_state=args.random_state, seeds=seeds
        )
    _check_finite(samples, "sample")
    write_array(args.out, samples)
    _message(args, f"wrote {samples.shape[0]} samples to {args.out}")


def _command_embed(args):
    check_output_suffix(args.out)
    model = _load(args.model_file)
    X = read_data(args.data)
    _check_features(model, X, args.data)
    with _rejected_as_bad_data(f"embed {args.data!r}"):
        Z = model.transform(X)
    _check_finite(Z, f"embed {args.data!r}")
    write_array(args.out, Z)
    _message(
        args, f"wrote the diffusion coordinates of {X.shape[0]} points to {args.out}"
    )


def _command_score(args):
    model = _load(args.model_file, "sampler")
    X = read_data(args.data)
    _check_features(model, X, args.data)
    with _rejected_as_bad_data(f"score {args.data!r}"):
        score = model.score(X)
    if np.isnan(score):
        raise DataError(f"cannot score {args.data!r}: the mean local ELBO is NaN.")
    print(f"{score:.10g}")


def _pyplot(command):
    """matplotlib.pyplot (non-interactive), or exit 5 with the install hint."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CommandError(
            f"{command} needs matplotlib: pip install matplotlib (or 'skvdae[demo]').",
            EXIT_MISSING_DEPENDENCY,
        ) from None
    return plt


def _command_plot(args):
    if suffix(args.out) not in (".png", ".pdf", ".svg"):
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
    plt = _pyplot("plot")
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

    _pyplot("demo")  # before the fit, not after it
    try:
        paths = run_demo(
            args.out,
            args.n_samples,
            args.random_state,
            n_walkers=args.n_walkers,
            n_steps=args.n_steps,
        )
    except OSError as error:
        raise DataError(f"{args.out!r}: cannot write ({error}).") from error
    for path in paths:
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
    from .._version import __version__

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
    demo.add_argument("--n-samples", type=count(10), default=2000)
    demo.add_argument("--random-state", type=seed, default=0)
    demo.add_argument("--n-walkers", type=count(1), default=300)
    demo.add_argument("--n-steps", type=count(0), default=30)

    fit = add("fit", "fit a model on DATA (.npy or .csv) and save it to MODEL")
    fit.add_argument("data", metavar="DATA", help="training data, .npy or .csv")
    fit.add_argument("--out", required=True, metavar="MODEL", help="model file")
    fit.add_argument(
        "--model",
        choices=["sampler", "embedder"],
        default="sampler",
        help="VDAESampler (default) or DiffusionMapEmbedder",
    )
    from .. import DiffusionMapEmbedder, VDAESampler

    sampler_names = flag_parameters(VDAESampler, exclude=("embedder",))
    embedder_names = flag_parameters(DiffusionMapEmbedder, exclude=("n_neighbors",))
    add_parameter_flags(
        fit.add_argument_group("VDAESampler (--model sampler, the default)"),
        VDAESampler,
        sampler_names,
    )
    add_parameter_flags(
        fit.add_argument_group(
            "DiffusionMapEmbedder (--model embedder, or the sampler's diffusion map)"
        ),
        DiffusionMapEmbedder,
        [name for name in embedder_names if name not in sampler_names],
    )
    add_parameter_flags(
        fit.add_argument_group(
            "the sampler's diffusion map, for the parameters both estimators have"
        ),
        DiffusionMapEmbedder,
        [
            name
            for name in embedder_names
            if name in sampler_names and name not in _BOTH
        ],
        prefix="embedder_",
        what="the sampler's DiffusionMapEmbedder",
    )
    fit.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="print training progress (a progress bar is shown on a terminal anyway)",
    )

    sample = add("sample", "draw samples from a VDAESampler model file")
    sample.add_argument("model_file", metavar="MODEL")
    sample.add_argument("--n", type=count(1), default=1, help="number of samples")
    sample.add_argument("--steps", type=count(0), default=10, help="walk steps")
    sample.add_argument(
        "--out", required=True, metavar="FILE", help="samples, .npy or .csv"
    )
    sample.add_argument(
        "--seeds", metavar="FILE", help="starting points (default: training data)"
    )
    sample.add_argument("--random-state", type=seed)

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
    """Run the command line; return the exit code.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    code : int
        One of :data:`skvdae.cli.EXIT_CODES`.
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
