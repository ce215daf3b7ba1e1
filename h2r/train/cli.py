"""`h2r train`: pretrain or co-train a VLA; resumes automatically from the run directory."""
from __future__ import annotations

import argparse

DESCRIPTION = """\
Trains the VLA of --config in --workdir W (checkpoints in W/checkpoints, metrics in
W/metrics.jsonl and W/tb, the resolved config in W/config.json). If W already holds checkpoints,
training resumes from the latest one (params, optimizer, EMA, rng and data iterator), so
rerunning the same command after a crash or preemption continues exactly. SIGTERM saves a
checkpoint and stops (exit code 143). A damaged newest checkpoint is skipped with a warning (moved
to W/checkpoints.corrupt/) and training resumes from the newest one that reads. One `h2r train`
per W at a time: a second is refused, naming the first's host and pid (W/train.lock). Nothing in
W is written until the config and checkpoints are checked, so a refused run changes nothing.

Override any config key with --config.key=value, e.g.
  h2r train --config experiments/train/tiny.py --workdir runs/tiny \\
      --config.data.dir=data/tiny --config.train.steps=500
Co-training from a pretrained run: --config.data.kind=cotrain --config.train.init_from=runs/pretrain

Multi-host: one process per host with --coordinator HOST:PORT --num-processes N --process-id I,
or under SLURM (srun with one task per host) with no flags: the SLURM variables are read.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train (or resume) a VLA run in a workdir",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training config, e.g. experiments/train/tiny.py")
    p.add_argument("--workdir", required=True, help="run directory (created; resumed if it has checkpoints)")
    p.add_argument("--coordinator", default=None, help="multi-host: coordinator address HOST:PORT")
    p.add_argument("--num-processes", type=int, default=None, help="multi-host: number of processes")
    p.add_argument("--process-id", type=int, default=None, help="multi-host: this process's index")
    p.set_defaults(func=main, accepts_config_overrides=True)


def main(args) -> int:
    # Distributed init must come before anything touches jax devices.
    from h2r.train import distributed  # noqa: PLC0415
    how = distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    from h2r.config import load_config  # noqa: PLC0415
    from h2r.train import trainer  # noqa: PLC0415
    config = load_config(args.config, args.config_overrides)
    import jax  # noqa: PLC0415
    print(f"h2r train: {how}; {jax.device_count()} devices ({jax.local_device_count()} local, "
          f"{jax.devices()[0].platform})", flush=True)
    result = trainer.train(config, args.workdir)
    if result["preempted"]:
        return 143
    print(f"done: step {result['step']} in {args.workdir}", flush=True)
    return 0
