"""Command line: ``python -m skvdae demo``."""

import argparse
import sys

from ._demo import run_demo


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m skvdae",
        description="Variational diffusion autoencoders for scikit-learn.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="fit a VDAESampler on a built-in loop, walk from one seed, write the "
        "samples and a figure",
    )
    demo.add_argument("--out", default="demo_output", help="output folder")
    demo.add_argument("--n-samples", type=int, default=2000)
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--n-walkers", type=int, default=300)
    demo.add_argument("--n-steps", type=int, default=30)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        for path in run_demo(
            args.out,
            args.n_samples,
            args.random_state,
            n_walkers=args.n_walkers,
            n_steps=args.n_steps,
        ):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
