"""Paired comparison of two learning-benchmark rows evaluated on the same episodes.

Each argument is a learning-benchmark JSON line (`benchmarks/learning.py` output, its points
carry per-episode `outcomes`) or an `h2r eval --out` JSON (its `successes`). Two rows of one
setting and step count see the same unseen episodes (their `episodes_digest` checks it; rows
written before it existed are trusted), so an exact McNemar test on the episodes
where they disagree (`h2r.eval.intervals.paired_test`) is far more sensitive than comparing the
two success rates.

    .venv/bin/python benchmarks/paired.py benchmarks/learning_X.json benchmarks/learning_Y.json
    .venv/bin/python benchmarks/paired.py A.json B.json --setting tidy_new_scenes --step 6000
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from h2r.eval import intervals, success  # noqa: E402


def outcomes(path: str, setting: str | None, step: int | None) -> tuple[list[int], str | None]:
    """(per-episode 0/1 outcomes, episodes digest or None) of one file; `setting`/`step` pick a
    benchmark point."""
    with open(path) as f:
        row = json.loads(f.read().strip().splitlines()[-1])
    if "successes" in row:                                   # an `h2r eval --out` JSON
        return [int(s) for s in row["successes"]], success.episodes_digest(row["episodes_detail"])
    if "a" not in row:
        raise SystemExit(f"{path}: neither a learning-benchmark JSON line (key 'a') nor an eval JSON "
                         f"(key 'successes')")
    settings = [setting] if setting else list(row["a"])
    if len(settings) != 1 or settings[0] not in row["a"]:
        raise SystemExit(f"{path}: pick one of the settings {sorted(row['a'])} with --setting")
    points = [p for p in row["a"][settings[0]]["points"] if step is None or p["steps"] == step]
    if len(points) != 1:
        raise SystemExit(f"{path}: pick one of the steps {[p['steps'] for p in row['a'][settings[0]]['points']]}"
                         f" with --step")
    if "outcomes" not in points[0]:
        raise SystemExit(f"{path}: this point has no per-episode 'outcomes' (written before session 23); "
                         f"rerun its evaluation to compare it paired")
    return [int(c) for c in points[0]["outcomes"]], points[0].get("episodes_digest")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="first JSON (benchmark line or eval output)")
    p.add_argument("b", help="second JSON, evaluated on the same episodes")
    p.add_argument("--setting", help="benchmark setting, when a line holds several")
    p.add_argument("--step", type=int, help="benchmark step, when a setting has several points")
    args = p.parse_args()
    (a, digest_a), (b, digest_b) = (outcomes(x, args.setting, args.step) for x in (args.a, args.b))
    if digest_a and digest_b and digest_a != digest_b:
        raise SystemExit(f"{args.a} and {args.b} ran different episodes (digests {digest_a} and {digest_b}): "
                         f"a paired test needs the same setting, episode count and excluded training seeds")
    result = intervals.paired_test(a, b)
    print(json.dumps({"a": args.a, "b": args.b, "episodes": len(a), "success_a": round(sum(a) / len(a), 3),
                      "success_b": round(sum(b) / len(b), 3), **result, "p": round(result["p"], 4)}))


if __name__ == "__main__":
    main()
