"""`h2r checkpoint info W`: what a run directory holds (steps, config, last metrics)."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    ckpt = subparsers.add_parser("checkpoint", help="inspect a training run's checkpoints",
                                 description="Inspect the orbax checkpoints of a run directory.")
    sub = ckpt.add_subparsers(dest="checkpoint_command", metavar="CHECKPOINT_COMMAND", required=True)
    p = sub.add_parser("info", help="list saved steps, the config and the latest metrics of a run",
                       description="Prints the saved steps of W/checkpoints, the run's config "
                                   "(model size, data, train settings) and its latest logged metrics. "
                                   "With --json, one JSON object with keys workdir, steps, "
                                   "latest_step, config, metrics, params.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdir", help="run directory written by `h2r train`")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=main)


def info(workdir: str) -> dict:
    """Steps, config, last metrics and parameter count of a run directory."""
    import os  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from h2r.config import config_from_json  # noqa: PLC0415
    from h2r.errors import CheckpointError  # noqa: PLC0415
    from h2r.train import checkpoint, metrics  # noqa: PLC0415
    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        raise CheckpointError(f"{config_path} does not exist: {workdir!r} is not a training run directory")
    manager = checkpoint.make_manager(workdir, read_only=True)
    try:
        steps = sorted(manager.all_steps())
        params = None
        if steps:
            import jax  # noqa: PLC0415
            shapes = [leaf.shape for leaf in jax.tree.leaves(manager.item_metadata(steps[-1])["params"])]
            params = {"tensors": len(shapes), "count": int(sum(np.prod(s) for s in shapes))}
    finally:
        manager.close()
    rows = metrics.read_jsonl(workdir)
    return {"workdir": os.path.abspath(workdir), "steps": steps, "latest_step": steps[-1] if steps else None,
            "config": config_from_json(config_path).to_dict(), "metrics": rows[-1] if rows else {},
            "params": params}


def main(args) -> int:
    import json  # noqa: PLC0415
    result = info(args.workdir)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
        return 0
    c = result["config"]
    print(f"run        {result['workdir']}")
    print(f"steps      {result['steps'] or 'none saved'}")
    if result["params"]:
        print(f"params     {result['params']['count']:,} in {result['params']['tensors']} tensors")
    print(f"model      {c.get('model', {}).get('size')}  data {c.get('data', {}).get('kind')} "
          f"dir={c.get('data', {}).get('dir')!r}  init_from={c.get('train', {}).get('init_from')!r}")
    t = c.get("train", {})
    print("train      " + " ".join(f"{k}={t[k]}" for k in sorted(t)))
    m = result["metrics"]
    if m:
        print(f"metrics @ step {m.get('step')}: " + " ".join(
            f"{k}={v:.4g}" for k, v in sorted(m.items()) if k != "step"))
    return 0
