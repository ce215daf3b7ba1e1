"""Learning benchmark: does the policy work? Closed-loop success vs training steps and wall time.

Everything goes through the commands users run: `h2r data generate`, `h2r train` (checkpoints
kept at every evaluation step) and `h2r eval --step N` on episode seeds never trained on.

(a) target  for each held-out setting, a model trained from scratch on the setting's target-robot
            co-training data alone (no human data), evaluated in distribution on that task
            (`NAME:target-robot`);
(b) pretrain a model pretrained on the 1.0+other mixture (every robot's pretraining data),
            evaluated on the pretraining tasks of each robot (`pretrain:ROBOT`).
Beside them, the same episodes under the scripted expert (the ceiling: it reads the world state)
and under uniformly random actions (the floor).

Rerunning resumes: finished training runs and evaluations are reused. Prints one JSON line: {"a": {setting: {"points": [{"steps", "success", "ci95", "train_s",
"breakdown", "outcomes", "episodes_digest"}...],
"expert", "random"}}, "b": {...}, "config": {...}}. `train_s` is the trainer's own wall clock at
that step (compilation excluded, checkpointing included); `wall_s` per run adds start-up and
compilation.

    .venv/bin/python benchmarks/learning.py                       # (a) and (b), about 50 minutes
    .venv/bin/python benchmarks/learning.py --parts a --settings sort_eggs --steps 2000,4000
    .venv/bin/python benchmarks/learning.py --parts a --settings tidy_new_scenes --steps 6000 --dagger 3000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H2R = [sys.executable, "-m", "h2r.cli"]


def run(cmd: list[str], log: str) -> float:
    """Runs one h2r command with its output in `log`; returns its wall time. Fails loudly."""
    start = time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if code:
        raise SystemExit(f"benchmark: `{' '.join(cmd)}` failed with exit code {code}; see {log}")
    return time.time() - start


def train(workdir: str, data_dir: str, steps: list[int], overrides: list[str], args, log: str) -> dict:
    """Trains to max(steps), keeping a checkpoint at each; returns {step: train_s} and wall_s."""
    last = max(steps)
    period = _gcd(steps)
    cmd = H2R + ["train", "--config", args.train_config, "--workdir", workdir,
                 f"--config.data.dir={data_dir}", f"--config.train.steps={last}",
                 f"--config.train.checkpoint_every={period}", f"--config.train.keep_period={period}",
                 f"--config.train.log_every={min(50, period)}"] + overrides + args.override
    train_s = _train_seconds(workdir)
    wall = None if last in train_s else run(cmd, log)   # a finished run is reused as it is
    train_s = _train_seconds(workdir)
    return {"train_s": {s: round(train_s[s], 1) for s in steps}, "wall_s": wall and round(wall, 1)}


def _train_seconds(workdir: str) -> dict[int, float]:
    """{step: train_s} from the run's metrics.jsonl (empty if there is none yet); the trainer sums
    train_s over the processes of a resumed run."""
    from h2r.train.metrics import read_jsonl

    return {int(r["step"]): float(r["train_s"]) for r in read_jsonl(workdir) if "train_s" in r}


def _gcd(values: list[int]) -> int:
    import math
    out = 0
    for v in values:
        out = math.gcd(out, v)
    return out


def evaluate(workdir: str, setting: str, step: int, args, log: str) -> dict:
    out = os.path.join(workdir, "eval", f"{setting.replace(':', '_')}_step{step}.json")
    if not os.path.exists(out):  # a rerun of the benchmark reuses finished evaluations
        run(H2R + ["eval", "--workdir", workdir, "--setting", setting, "--step", str(step),
                   "--episodes", str(args.episodes), "--record", "0", "--out", out], log)
    from h2r.eval import success

    with open(out) as f:
        result = json.load(f)
    # Per-episode outcomes as one "0"/"1" string in episode order: two rows evaluated on the same
    # episodes can then be compared paired (`benchmarks/paired.py`) from their JSON lines alone.
    return {"success": result["success_rate"], "ci95": [round(x, 3) for x in result["ci95"]],
            "breakdown": {k: v["count"] for k, v in result.get("failure_breakdown", {}).items()},
            "outcomes": "".join(str(int(s)) for s in result["successes"]),
            "episodes_digest": success.episodes_digest(result["episodes_detail"])}


def reference(workdir: str, setting: str, args) -> dict:
    """Expert (ceiling) and random (floor) success on the same episodes as `h2r eval`."""
    from h2r.config import config_from_json
    from h2r.eval import success
    from h2r.world.config import ACTION_PAD

    config = config_from_json(os.path.join(workdir, "config.json"))   # no parameters needed
    env_config = success.env_config_of_run(config)
    es = success.parse_setting(setting, data_config=success.data_config_of_run(config))
    out = {}
    for name, controller in (("expert", success.expert_controller(env_config)),
                             ("random", success.random_controller(ACTION_PAD))):
        result, _ = success.evaluate(controller, None, es, args.episodes, env_config=env_config,
                                     seed=0, execute_steps=1, record=0,
                                     excluded_seeds=success.trained_seeds(config, es.embodiment))
        out[name] = result["success_rate"]
    return out


def part_a(data_dir: str, args, log: str) -> dict:
    results = {}
    for setting in args.settings.split(","):
        workdir = os.path.join(args.workdir, f"a_{setting}")
        overrides = ["--config.data.kind=cotrain", f"--config.data.target={setting}", "--config.data.human=False"]
        if args.dagger:
            points, wall = _dagger_points(setting, workdir, data_dir, overrides, args, log)
        else:
            timing = train(workdir, data_dir, args.steps, overrides, args, log)
            points = [dict(steps=s, train_s=timing["train_s"][s],
                           **evaluate(workdir, f"{setting}:target-robot", s, args, log)) for s in args.steps]
            wall = timing["wall_s"]
        results[setting] = {"points": points, "wall_s": wall, **reference(workdir, f"{setting}:target-robot", args)}
        print(f"benchmark (a) {setting}: " + ", ".join(f"{p['steps']} steps {p['success']:.2f}" for p in points),
              file=sys.stderr, flush=True)
    return results


def _dagger_points(setting: str, workdir: str, data_dir: str, overrides: list[str], args, log: str):
    """--dagger N: behaviour cloning for N steps (W/a_S_bc), one DAgger round with that policy
    (`h2r data dagger`, W/dagger_S), then training on the aggregated data from the cloned
    params to each point of --steps (total steps, both stages). A point's train_s counts both
    stages' training and the collection's wall time (it is part of the recipe's cost)."""
    first = os.path.join(args.workdir, f"a_{setting}_bc")
    timing = train(first, data_dir, [args.dagger], overrides, args, log)
    aggregated = os.path.join(args.workdir, f"dagger_{setting}", "data")
    collect_s = 0.0
    if not os.path.exists(os.path.join(aggregated, "generation.json")):
        collect_s = run(H2R + ["data", "dagger", "--run", first, "--out", aggregated], log)
        with open(os.path.join(os.path.dirname(aggregated), "collect_s.json"), "w") as f:
            json.dump({"collect_s": collect_s}, f)
    with open(os.path.join(os.path.dirname(aggregated), "collect_s.json")) as f:
        collect_s = json.load(f)["collect_s"]
    rest = [s - args.dagger for s in args.steps if s > args.dagger]
    if not rest:
        raise SystemExit(f"benchmark: --dagger {args.dagger} leaves no training steps before {max(args.steps)}")
    second = train(workdir, aggregated, rest, overrides + [f"--config.train.init_from={first}"], args, log)
    before = timing["train_s"][args.dagger] + collect_s
    points = [dict(steps=args.dagger + s, train_s=round(before + second["train_s"][s], 1),
                   stages={"bc_train_s": timing["train_s"][args.dagger], "collect_s": round(collect_s, 1),
                           "dagger_train_s": second["train_s"][s]},
                   **evaluate(workdir, f"{setting}:target-robot", s, args, log)) for s in rest]
    return points, (timing["wall_s"] or 0) + collect_s + (second["wall_s"] or 0)


def part_b(data_dir: str, args, log: str) -> dict:
    from h2r.world import catalogue

    workdir = os.path.join(args.workdir, "b_pretrain")
    overrides = ["--config.data.kind=pretrain", "--config.data.diversity=1.0", "--config.data.other_embodiments=True",
                 f"--config.data.target={args.settings.split(',')[0]}"]
    timing = train(workdir, data_dir, args.steps, overrides, args, log)
    results = {"wall_s": timing["wall_s"], "robots": {}}
    b_steps = [s for s in args.steps if s in args.b_steps] or args.steps[-1:]
    for robot in catalogue.ROBOTS:
        setting = f"pretrain:{robot}"
        points = [dict(steps=s, train_s=timing["train_s"][s], **evaluate(workdir, setting, s, args, log))
                  for s in b_steps]
        results["robots"][robot] = {"points": points, **reference(workdir, setting, args)}
    results["mean_success"] = {s: round(sum(r["points"][i]["success"] for r in results["robots"].values())
                                        / len(results["robots"]), 3) for i, s in enumerate(b_steps)}
    print(f"benchmark (b): mean over robots {results['mean_success']}", file=sys.stderr, flush=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="a,b", help="which parts: a (target tasks), b (pretraining tasks)")
    p.add_argument("--settings", default="sort_eggs,tidy_new_scenes,bussing_new_objects",
                   help="held-out settings whose target-robot task part (a) trains on")
    p.add_argument("--steps", default="2000,4000,6000,8000", help="evaluation points (training steps)")
    p.add_argument("--episodes", type=int, default=128, help="evaluation episodes per point")
    p.add_argument("--b-steps", default="4000,8000",
                   help="the training steps part (b) evaluates at (six robots each: evaluation dominates)")
    p.add_argument("--data-config", default="experiments/data/learning.py",
                   help="data preset (160 target demos per co-training combination: BUILD_NOTES.md, Learning)")
    p.add_argument("--train-config", default="experiments/train/tiny.py")
    p.add_argument("--workdir", default="runs/benchmark-learning", help="data, runs and the log go here")
    p.add_argument("--dagger", type=int, default=0,
                   help="(a) only: behaviour-clone this many steps, add one DAgger round of that policy's "
                        "rollouts (h2r data dagger), then train on the result to --steps (total)")
    p.add_argument("--override", action="append", default=[],
                   help="extra --config.key=value for every `h2r train` (repeatable)")
    args = p.parse_args()
    args.steps = sorted(int(s) for s in args.steps.split(","))
    args.b_steps = sorted(int(s) for s in args.b_steps.split(","))
    os.makedirs(args.workdir, exist_ok=True)
    log = os.path.join(args.workdir, "benchmark.log")
    data_dir = os.path.join(args.workdir, "data")
    start = time.time()
    if not os.path.exists(os.path.join(data_dir, "generation.json")):
        run(H2R + ["data", "generate", "--config", args.data_config, "--out", data_dir], log)
    out = {"config": {"data": args.data_config, "train": args.train_config, "episodes": args.episodes,
                      "steps": args.steps, "overrides": args.override, "dagger": args.dagger}}
    parts = set(args.parts.split(","))
    if "a" in parts:
        out["a"] = part_a(data_dir, args, log)
    if "b" in parts:
        out["b"] = part_b(data_dir, args, log)
    out["total_s"] = round(time.time() - start, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
