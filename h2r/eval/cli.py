"""`h2r eval ...`: closed-loop success, offline action error, representation overlap.

`h2r eval --workdir W --setting NAME ...` (no subcommand) runs closed-loop rollouts; the
subcommands `embeddings` and `offline` run the other two evaluations. argparse allows both
forms because the subcommand is optional; the handler checks what the direct form requires.
The handlers turn arguments into calls of the library functions (plain values) and print the
outcome; heavy imports happen inside them so `h2r --help` stays instant.
"""
from __future__ import annotations

import argparse

DESCRIPTION = """\
Evaluate a trained run directory.

  h2r eval --workdir W --setting NAME --episodes N --out result.json [--seed S] [--step K] [--ema]
      closed-loop success of the setting's robot in the world, all episodes stepping
      together: success rate with a 95% interval, per-phase completion, episode lengths,
      per-episode outcomes, and a few rollouts as GIF/PNG strips next to the JSON.
      NAME is a held-out setting (e.g. sort_eggs: evaluated on its heldout-eval combinations),
      NAME:target-robot (the target robot's own co-training task, in distribution), or
      pretrain:ROBOT (ROBOT on the pretraining combinations the run's data was generated with).
      Episode seeds never coincide with one the run's data holds. eval.json keeps per-episode
      outcomes (episodes_detail) and where failed episodes stop (failure_breakdown: reach/grasp
      or carry/place of which object). `h2r eval settings` lists the settings.
  h2r eval embeddings --workdir W --out DIR
      human vs robot embedding overlap at matched (scene, task, phase) states.
  h2r eval offline --workdir W --out F
      normalized action MSE on each dataset's held-out episodes (split val).
"""


def _add_common(p: argparse.ArgumentParser, out_help: str, required: bool = True) -> None:
    p.add_argument("--workdir", required=required,
                   help="run directory written by `h2r train` (config.json, checkpoints/)")
    p.add_argument("--out", required=required, help=out_help)
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed (default: 0)")


def _closed_loop(args) -> int:
    if args.workdir is None or args.setting is None:
        args.eval_parser.error("the closed-loop form needs --workdir and --setting "
                               "(or use a subcommand: embeddings, offline, settings)")
    from h2r.eval import success  # noqa: PLC0415

    result, out = success.evaluate_run(
        args.workdir, args.setting, out=args.out, episodes=args.episodes, seed=args.seed, step=args.step,
        batch_size=args.batch_size, execute_steps=args.execute_steps, max_steps=args.max_steps,
        record=args.record, interval=args.interval, ema=args.ema, ensemble=args.ensemble,
        episode_noise=args.episode_noise)
    print(f"eval {result['setting']}: success {result['success_rate']:.3f} "
          f"[{result['ci95'][0]:.3f}, {result['ci95'][1]:.3f}] over {result['episodes']} episodes, "
          f"mean length {result['mean_length']:.1f} -> {out}", flush=True)
    print(f"  where episodes stop: {success.format_breakdown(result['failure_breakdown'])}", flush=True)
    return 0


def _embeddings(args) -> int:
    from h2r.eval import embeddings  # noqa: PLC0415

    report = embeddings.evaluate_run(args.workdir, args.out, setting=args.setting, step=args.step,
                                     seed=args.seed, per_state=args.per_state, max_frames=args.max_frames)
    print(f"eval embeddings: probe accuracy {report['probe_accuracy']['accuracy']:.3f} (0.5 = overlap), "
          f"phase retrieval {report['phase_retrieval']['accuracy']:.3f} "
          f"(chance {report['phase_retrieval']['chance']:.3f}) -> {args.out}", flush=True)
    return 0


def _offline(args) -> int:
    from h2r.eval import offline  # noqa: PLC0415

    result = offline.evaluate_run(args.workdir, args.out, step=args.step, batches=args.batches,
                                  split=args.split, seed=args.seed)
    print(f"eval offline: normalized action MSE {result['mse']:.4f} "
          + ", ".join(f"{k} {v['mse']:.4f}" for k, v in result["per_dataset"].items()) + f" -> {args.out}")
    return 0


def _settings(args) -> int:
    from h2r.eval import success  # noqa: PLC0415

    print("\n".join(success.settings_lines(args.workdir)))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="closed-loop success, offline action error, embedding overlap",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(p, "result JSON (default: WORKDIR/eval/<setting>.json)", required=False)
    p.add_argument("--setting", help="setting to evaluate (see `h2r eval settings`)")
    p.add_argument("--episodes", type=int, default=64, help="number of episodes (default: 64)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="episodes stepped together per jitted call (default: all at once)")
    p.add_argument("--execute-steps", type=int, default=None,
                   help="actions executed from each predicted chunk before replanning "
                        "(default: 1, replan every step; measured best, see BUILD_NOTES.md)")
    p.add_argument("--ensemble", type=float, default=None, metavar="M",
                   help="temporal ensembling (ACT): replan every step and execute the mean of every "
                        "chunk's prediction for the step, weighted exp(M * age) (default: off)")
    p.add_argument("--episode-noise", action="store_true",
                   help="one flow starting noise per episode, reused at every replan (commits a "
                        "sampling policy, model.sample_noise > 0, to one mode; default: fresh per replan)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="episode time limit in env steps (default: the world's episode horizon)")
    p.add_argument("--ema", action="store_true",
                   help="evaluate the checkpoint's EMA of the params (train.ema_decay) instead of the params")
    p.add_argument("--record", type=int, default=4, help="rollouts saved as GIF + PNG strip (default: 4)")
    p.add_argument("--interval", choices=("wilson", "bootstrap"), default="wilson",
                   help="95%% interval of the success rate (default: wilson)")
    p.set_defaults(func=_closed_loop, eval_parser=p)

    sub = p.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND", required=False)

    e = sub.add_parser("embeddings", help="human vs robot representation overlap (probe, retrieval, t-SNE)",
                       description="Embeds human and target-robot frames of matched (scene, task, phase) "
                                   "states drawn from the run's generated data (target-human and "
                                   "heldout-eval episodes) and writes DIR/embeddings.json (linear-probe "
                                   "accuracy human vs robot, 0.5 = indistinguishable; cross-embodiment "
                                   "phase retrieval with its chance level) and DIR/tsne.png.")
    _add_common(e, "output directory")
    e.add_argument("--setting", default=None, help="held-out setting (default: the run's data.target)")
    e.add_argument("--per-state", type=int, default=4,
                   help="frames per embodiment per matched (scene, task, phase) state (default: 4)")
    e.add_argument("--max-frames", type=int, default=1024, help="cap on frames per embodiment (default: 1024)")
    e.set_defaults(func=_embeddings)

    o = sub.add_parser("offline", help="normalized action MSE on held-out episodes of each dataset",
                       description="Samples action chunks with the model on each dataset's val split "
                                   "and reports the MSE against the recorded chunks in normalized units, "
                                   "over valid steps and action dimensions, per dataset, as JSON.")
    _add_common(o, "result JSON")
    o.add_argument("--batches", type=int, default=8, help="batches per dataset (default: 8)")
    o.add_argument("--split", default="val", help="split to evaluate (default: val)")
    o.set_defaults(func=_offline)

    s = sub.add_parser("settings", help="list the settings `h2r eval --setting` accepts",
                       description="Lists the held-out settings (NAME: heldout-eval combinations), their "
                                   "in-distribution NAME:target-robot forms, and pretrain:ROBOT for every "
                                   "robot (the pretraining combinations of a run's data: give --workdir "
                                   "to count them).")
    s.add_argument("--workdir", default=None,
                   help="run directory: count pretrain:ROBOT combinations from its data's generation.json")
    s.set_defaults(func=_settings)
