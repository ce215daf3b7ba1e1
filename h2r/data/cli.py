"""`h2r data ...`: the world catalogue, dataset generation, contact sheets, stats, peeking.

This file declares the arguments and prints; the work is done by library functions taking plain
values, imported inside the handlers so `h2r --help` stays instant.
"""
from __future__ import annotations


def _catalogue(args) -> int:
    import json  # noqa: PLC0415

    from h2r.world import catalogue  # noqa: PLC0415

    print(json.dumps(catalogue.catalogue_dict(), indent=2) if args.json else catalogue.catalogue_text())
    return 0


def _generate(args) -> int:
    from h2r.config import load_config  # noqa: PLC0415
    from h2r.data import generate  # noqa: PLC0415

    summary = generate.generate(load_config(args.config, args.config_overrides), args.out,
                                overwrite=args.overwrite)
    print(f"wrote {summary['episodes']} episodes in {summary['wall_time_s']:.1f} s "
          f"({summary['episodes_per_s']:.1f} episodes/s) to {args.out}")
    for embodiment, by_setting in summary["counts"].items():
        print(f"  h2r_{embodiment}: " + ", ".join(
            f"{setting} {sum(splits.values())}" for setting, splits in by_setting.items()))
    return 0


def _dagger(args) -> int:
    from h2r.data import dagger  # noqa: PLC0415

    block = dagger.aggregate(args.run, args.out, episodes=args.episodes, execute_steps=args.execute_steps,
                             batch_size=args.batch_size, step=args.step, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {args.out}: h2r_{block['embodiment']} + {block['added_episodes']} policy rollouts labelled by "
          f"the expert (the policy succeeded in {block['rollout_success']:.3f} of them)")
    return 0


def _show(args) -> int:
    from h2r.data import show  # noqa: PLC0415

    path = show.draw_contact_sheet(args.dir, args.out, episodes=args.episodes, frames=args.frames)
    print(f"wrote {path}")
    return 0


def _stats(args) -> int:
    from h2r.data import stats  # noqa: PLC0415

    stats.prepare(args.dir, refresh=args.refresh)
    return 0


def _peek(args) -> int:
    from h2r.config import load_config  # noqa: PLC0415
    from h2r.data import peek  # noqa: PLC0415

    batch, tok = peek.first_batch(load_config(args.config, args.config_overrides))
    print(peek.describe(batch))
    print("\n".join(peek.sample_lines(batch, tok)))
    peek.draw(batch, tok, args.out)
    print(f"wrote {args.out}")
    return 0


def register(subparsers) -> None:
    data = subparsers.add_parser(
        "data", help="generate, inspect and summarize RLDS datasets",
        description="Robot and human demonstrations as RLDS datasets (tfds, array_record).")
    sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    p = sub.add_parser("catalogue", help="list the world's scenes, task families, embodiments, settings",
                       description="Lists the procedural world's catalogue. With --json, prints one JSON "
                                   "object with keys scenes, task_families, embodiments, settings.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_catalogue)

    p = sub.add_parser("generate", help="generate robot and human RLDS datasets from the world",
                       description="Runs scripted experts in the world and writes one RLDS dataset per "
                                   "embodiment (tfds, array_record) under --out. Override any config key "
                                   "with --config.key=value.")
    p.add_argument("--config", required=True, help="data config file, e.g. experiments/data/tiny.py")
    p.add_argument("--out", required=True, help="output directory (refused if it holds datasets)")
    p.add_argument("--overwrite", action="store_true", help="replace datasets already in --out")
    p.set_defaults(func=_generate, accepts_config_overrides=True)

    p = sub.add_parser("dagger", help="add the expert's labels of a policy's own rollouts to its data",
                       description="DAgger, one round: rolls run --run's policy out from each planned "
                                   "training layout of its co-training role, labels every visited state with "
                                   "the scripted expert's noise-free action, and writes --out: the run's data "
                                   "with those episodes added to the robot's dataset (the other datasets "
                                   "linked). Train on --out (e.g. --config.train.init_from=RUN).")
    p.add_argument("--run", required=True, help="a co-training run directory (h2r train --workdir)")
    p.add_argument("--out", required=True, help="output data directory (refused if it holds datasets)")
    p.add_argument("--episodes", type=int, default=None,
                   help="rollouts to add (default: one per planned training episode of the role)")
    p.add_argument("--execute-steps", type=int, default=1,
                   help="actions executed per predicted chunk before replanning (default 1, as h2r eval)")
    p.add_argument("--batch-size", type=int, default=128, help="rollouts stepped together (default 128)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    p.add_argument("--seed", type=int, default=0, help="the policy's sampling seed")
    p.add_argument("--overwrite", action="store_true", help="replace datasets already in --out")
    p.set_defaults(func=_dagger)

    p = sub.add_parser("show", help="draw a contact sheet of a dataset directory",
                       description="Draws frames of a few episodes per embodiment (both views, captioned "
                                   "with the instruction) into one PNG.")
    p.add_argument("dir", help="directory written by `h2r data generate`")
    p.add_argument("--out", default="sheet.png", help="PNG to write (default: sheet.png)")
    p.add_argument("--episodes", type=int, default=2, help="episodes per embodiment (default: 2)")
    p.add_argument("--frames", type=int, default=4, help="frames per episode (default: 4)")
    p.set_defaults(func=_show)

    p = sub.add_parser("stats", help="compute (or refresh) normalization statistics and the tokenizer",
                       description="Computes per-dataset action/state statistics (mean, std, 1st/99th "
                                   "quantiles) and fits the text tokenizer; saves JSON beside the data.")
    p.add_argument("dir", help="directory of RLDS datasets")
    p.add_argument("--refresh", action="store_true", help="recompute even if the files exist")
    p.set_defaults(func=_stats)

    p = sub.add_parser("peek", help="print one batch's shapes and draw a few samples",
                       description="Builds the input pipeline from a training config, prints the shapes, "
                                   "dtypes and ranges of one batch, and draws a few samples to a PNG.")
    p.add_argument("--config", required=True, help="training config file, e.g. experiments/train/tiny.py")
    p.add_argument("--out", default="peek.png", help="PNG of a few samples (default: peek.png)")
    p.set_defaults(func=_peek, accepts_config_overrides=True)
