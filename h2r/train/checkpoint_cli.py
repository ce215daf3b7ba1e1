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
                                   "Every step's metadata is read; with --verify every array too. A "
                                   "damaged step is listed (exit code 1) and never counted as latest. "
                                   "With --json, one JSON object with keys workdir, steps, "
                                   "latest_step, damaged, verified, config, metrics, params.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdir", help="run directory written by `h2r train`")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--verify", action="store_true", help="read every array of every step (slower)")
    p.set_defaults(func=main)


def info(workdir: str, verify: bool = False) -> dict:
    """Steps, damaged steps ({step: reason}), config, last metrics and parameter count of a run
    directory. Each step's metadata is read; with `verify`, every array (checkpoint.verify)."""
    import os  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from h2r.config import config_from_json  # noqa: PLC0415
    from h2r.errors import CheckpointError  # noqa: PLC0415
    from h2r.train import checkpoint, metrics  # noqa: PLC0415
    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        raise CheckpointError(f"{config_path} does not exist: {workdir!r} is not a training run directory")
    import jax  # noqa: PLC0415

    manager = checkpoint.make_manager(workdir, read_only=True)
    steps, damaged, shapes = sorted(manager.all_steps()), {}, None
    try:
        for step in steps:
            try:
                leaves = jax.tree.leaves(manager.item_metadata(step)["params"])
            except Exception as e:  # noqa: BLE001  (a corrupt _METADATA: orbax raises JSON errors)
                damaged[step] = checkpoint.reason(e)
                continue
            problem = checkpoint.verify(workdir, step) if verify else None
            if problem:
                damaged[step] = problem
            else:
                shapes = [leaf.shape for leaf in leaves]
    finally:
        manager.close()
    intact = [s for s in steps if s not in damaged]
    params = {"tensors": len(shapes), "count": int(sum(np.prod(s) for s in shapes))} if shapes else None
    rows = metrics.read_jsonl(workdir)
    return {"workdir": os.path.abspath(workdir), "steps": steps, "latest_step": intact[-1] if intact else None,
            "damaged": damaged, "verified": verify,
            "config": config_from_json(config_path).to_dict(), "metrics": rows[-1] if rows else {},
            "params": params}


def main(args) -> int:
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415
    result = info(args.workdir, verify=args.verify)
    for step, problem in result["damaged"].items():
        print(f"h2r: checkpoint step {step} of {result['workdir']} is damaged: {problem}", file=sys.stderr)
    code = 1 if result["damaged"] else 0
    if args.json:
        print(json.dumps(result, indent=1, default=str))
        return code
    c = result["config"]
    print(f"run        {result['workdir']}")
    print(f"steps      {result['steps'] or 'none saved'}"
          + (f"  (damaged: {sorted(result['damaged'])}; latest intact: {result['latest_step']})"
             if result["damaged"] else "  (every array read)" if args.verify else ""))
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
    return code
