"""Dataset generation benchmark: `h2r data generate` episodes/s, and where the time goes.

One generation run of a data config into a temporary directory (`generate.generate`, exactly
what the CLI does: world rollouts, PNG encoding, tfds array_record writing, atomic rename), then
the world rollouts alone (`h2r.world.episodes.rollout_expert`) on the same planned episodes,
batched the way generation batches them (per embodiment and split, chunks of
`rollout_batch_size`), so `episodes_per_s` vs `rollout_only_episodes_per_s` separates the world
from the writing. With --packed (default) also times the same rollouts packed into full batches
across embodiments and splits (what padding per embodiment/split costs).

The world is compiled once up front (timed as `compile_s`), so neither timing includes it.
Prints one JSON line.

    .venv/bin/python benchmarks/generate.py [--config experiments/data/tiny.py] [--config.key=value ...]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _rollout(planned, env_config, batch_size: int) -> int:
    """Rolls `planned` out with `rollout_expert`; returns the number of steps produced."""
    from h2r.world import episodes as world_episodes

    specs = world_episodes.make_specs([e.scene for e in planned], [e.task_family for e in planned],
                                      [e.embodiment for e in planned], [e.seed for e in planned],
                                      [e.variant for e in planned])
    return sum(int(ep["length"]) for ep in world_episodes.rollout_expert(specs, env_config, batch_size=batch_size))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Any --config.key=value argument overrides that key of the data config.")
    parser.add_argument("--config", default="experiments/data/tiny.py", help="data config file")
    parser.add_argument("--packed", action=argparse.BooleanOptionalAction, default=True,
                        help="also time rollouts packed into full batches across embodiments/splits")
    parser.add_argument("--keep", default="", help="write the dataset here and keep it (default: a temp dir)")
    args, extra = parser.parse_known_args()
    unknown = [a for a in extra if not a.startswith("--config.")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")

    import jax

    from h2r.config import load_config
    from h2r.data import generate, plan
    from h2r.world.config import EnvConfig

    config = load_config(args.config, extra)
    env_config = EnvConfig.from_config(config)
    batch_size = int(config.get("rollout_batch_size", 64))
    planned = plan.plan_episodes(config)

    # Compile the world once (every batch is padded to batch_size: one compilation for all).
    t = time.perf_counter()
    _rollout(planned[:1], env_config, batch_size)
    compile_s = time.perf_counter() - t

    # 1. The whole generation, as `h2r data generate` runs it.
    parent = tempfile.mkdtemp(prefix="h2r-bench-generate-")
    out = args.keep or os.path.join(parent, "data")
    try:
        t = time.perf_counter()
        summary = generate.generate(config, out, overwrite=bool(args.keep))
        wall = time.perf_counter() - t
    finally:
        shutil.rmtree(parent, ignore_errors=True)

    # 2. The world alone, batched as generation batches it: per embodiment, per split.
    groups = collections.defaultdict(list)
    for e in planned:
        groups[(e.embodiment, e.split)].append(e)
    t = time.perf_counter()
    steps = sum(_rollout(group, env_config, batch_size) for group in groups.values())
    rollout_s = time.perf_counter() - t
    num_batches = sum(-(-len(g) // batch_size) for g in groups.values())

    result = {
        "benchmark": "generate", "config": args.config, "overrides": extra,
        "episodes": len(planned), "steps": steps,
        "wall_time_s": round(wall, 2), "episodes_per_s": round(len(planned) / wall, 2),
        "rollout_only_wall_time_s": round(rollout_s, 2),
        "rollout_only_episodes_per_s": round(len(planned) / rollout_s, 2),
        "rollout_fraction": round(rollout_s / wall, 3),
        "write_overhead_s": round(wall - rollout_s, 2),
        "compile_s": round(compile_s, 2),
        "rollout_batches": num_batches, "rollout_batch_size": batch_size,
        "image_size": env_config.image_size, "horizon": env_config.horizon,
        "expert_success_rate": {k: round(v, 3) for k, v in summary["expert_success_rate"].items()},
    }
    if args.packed:
        # 3. The same episodes in as few full batches as possible (mixed embodiments and splits).
        t = time.perf_counter()
        _rollout(planned, env_config, batch_size)
        packed_s = time.perf_counter() - t
        result.update({"rollout_packed_wall_time_s": round(packed_s, 2),
                       "rollout_packed_episodes_per_s": round(len(planned) / packed_s, 2),
                       "rollout_packed_batches": -(-len(planned) // batch_size)})
    result.update({"devices": str(jax.devices()[0].platform), "cpu_count": os.cpu_count()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
