"""The `h2r` command: one subcommand per stage of the pipeline.

Each stage owns a small `cli.py` with `register(subparsers)` and its handlers: the command line
is parsed and results are printed there, and the library functions they call take plain values.
Heavy imports (jax, tfds, grain) happen inside the handlers so `h2r --help` stays instant. A
stage whose cli module fails to import is an error naming it, not a missing command.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from h2r.errors import H2RError  # a light module: `h2r --help` stays instant

# name -> module with `register(subparsers)`. Order is the order of `h2r --help`.
STAGES = {
    "data": "h2r.data.cli",
    "train": "h2r.train.cli",
    "checkpoint": "h2r.train.checkpoint_cli",
    "eval": "h2r.eval.cli",
    "study": "h2r.study.cli",
}

DESCRIPTION = """\
h2r measures when human-to-robot transfer emerges in vision-language-action policies:
generate robot and human RLDS data from a procedural world, pretrain a VLA at increasing
diversity, co-train with and without human data, evaluate, and report the emergence curve.

Typical flow:
  h2r data generate --config experiments/data/tiny.py --out data/tiny
  h2r train --config experiments/train/tiny.py --workdir runs/pretrain --config.data.dir=data/tiny
  h2r eval --workdir runs/pretrain --setting sort_eggs --episodes 64 --out result.json
  h2r study run --config experiments/study/tiny.py --workdir study/tiny
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="h2r", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in STAGES.items():
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # a broken stage is an error, never a command that silently disappears
            raise H2RError(f"the `h2r {name}` command cannot be loaded: importing {module_name} failed "
                           f"({type(e).__name__}: {e})") from e
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser()
    except H2RError as e:
        print(f"h2r: error: {e}", file=sys.stderr)
        return 1
    # `--config.a.b=v` overrides are not argparse options: collect them for the config loader.
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    overrides = [a for a in extra if a.startswith("--config.")]
    unknown = [a for a in extra if not a.startswith("--config.")]
    if unknown or (overrides and not getattr(args, "accepts_config_overrides", False)):
        parser.error(f"unrecognized arguments: {' '.join(unknown or overrides)}")
    args.config_overrides = overrides
    try:
        return args.func(args) or 0
    except H2RError as e:
        print(f"h2r: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
