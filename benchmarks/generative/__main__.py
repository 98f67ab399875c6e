"""Command line of the generative benchmark.

Usage::

    python -m benchmarks.generative --quick     # one seed, small sizes, < 5 min
    python -m benchmarks.generative             # the full run, 3 seeds, < 60 min
    python -m benchmarks.generative --datasets loop grid --models vdae gan gan_drs
    python -m benchmarks.generative --render doc/benchmarks/generative.json

The full run writes ``doc/benchmarks/generative.json`` (raw records) and
``doc/benchmarks/generative_results.inc`` (the tables that
``doc/benchmarks/generative.rst`` includes), both committed; other runs write
``benchmarks/results/generative_<profile>.json`` and ``.rst`` unless ``--out``
and ``--table`` say where.
"""

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path

from .models import MODELS
from .report import render_report
from .run import run_benchmark
from .tasks import PROFILES, TASKS, get_profile

RESULTS = Path("benchmarks/results")
FULL_JSON = Path("doc/benchmarks/generative.json")
FULL_TABLE = Path("doc/benchmarks/generative_results.inc")


def _json_safe(value):
    """Non-finite floats become ``null``; tuples become lists."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generative",
        description="VDAE against VAE, hyperspherical VAE, WGAN-GP and GAN+DRS.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the 'quick' profile")
    size.add_argument("--profile", choices=sorted(PROFILES), default=None)
    parser.add_argument(
        "--datasets", nargs="+", choices=list(TASKS), default=list(TASKS)
    )
    parser.add_argument(
        "--models", nargs="+", choices=list(MODELS), default=list(MODELS)
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument(
        "--video-shape",
        nargs=3,
        type=int,
        default=None,
        metavar=("FRAMES", "HEIGHT", "WIDTH"),
        help="the video's frames and size (the profile's: 200 40 50)",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="(data set, seed) cells run in parallel, one torch thread each "
        "(default: 2, or 1 on a single core)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON of raw records")
    parser.add_argument("--table", type=Path, default=None, help="reST tables")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only rewrite the tables from the raw records of an earlier run",
    )
    return parser


def _render(path, table):
    results = json.loads(path.read_text())
    full = results["profile"]["name"] == "full" and path == FULL_JSON
    table = table or (FULL_TABLE if full else path.with_suffix(".rst"))
    table.write_text(render_report(results, results["command"]))
    print(f"wrote {table}")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.render:
        return _render(args.render, args.table)
    name = "quick" if args.quick else (args.profile or "full")
    overrides = {"seeds": tuple(args.seeds)} if args.seeds else {}
    if args.video_shape:
        overrides["video_shape"] = tuple(args.video_shape)
    profile = get_profile(name, **overrides)
    full = name == "full" and not overrides
    out = args.out or (FULL_JSON if full else RESULTS / f"generative_{name}.json")
    table = args.table or (FULL_TABLE if full else out.with_suffix(".rst"))

    command = shlex.join(
        ["python", "-m", "benchmarks.generative", *(argv or sys.argv[1:])]
    )
    results = run_benchmark(
        profile, args.datasets, args.models, n_jobs=args.n_jobs, verbose=not args.quiet
    )
    results["command"] = command
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_json_safe(results), indent=1, allow_nan=False))
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(render_report(results, command))
    print(f"wrote {out} and {table} in {results['wall_time'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
