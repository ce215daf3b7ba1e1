"""The report's statistics: success, task progress and the gain from human data per (level,
target, human weight), and the overlap measures per level, each with a 95% bootstrap interval.

Intervals come from h2r.eval.intervals: `hierarchical_bootstrap` resamples seeds, then each
seed's evaluation episodes, so both the training-seed variance and the finite number of
episodes widen them. One generator (seeded by config.report.bootstrap_seed) serves every table
in a fixed order, so the same cells always give the same report.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from h2r.eval import intervals

ALL_TARGETS = "all"  # the aggregate over target settings in tables and results
# The overlap measures shown against diversity (embeddings.json keys, flattened); every other
# number of embeddings.json still goes to results.json/csv with its cell.
OVERLAP_METRICS = ("probe_accuracy.accuracy", "phase_retrieval.above_chance",
                   "phase_retrieval_robot_to_human.above_chance")


def point_gain(per_seed: list[tuple[np.ndarray, np.ndarray | None]]) -> float:
    """Mean over seeds of (mean(with) - mean(without)); (episodes, None) for a plain rate."""
    return float(np.mean([a.mean() - (0.0 if b is None else b.mean()) for a, b in per_seed]))


def compute(collected: dict[str, Any], samples: int, seed: int) -> dict[str, Any]:
    """Success per (level, target, weight), gain per (level, target | all, weight), overlap per
    level; the same success/gain tables for task progress (partial credit)."""
    rng = np.random.default_rng(seed)
    success, gain = _rates_and_gains(collected, "successes", rng, samples)
    progress, progress_gain = _rates_and_gains(collected, "progress", rng, samples)
    return dict(success=success, gain=gain, overlap=_overlap(collected, rng, samples),
                progress=progress, progress_gain=progress_gain)


def _rates_and_gains(collected: dict[str, Any], outcome: str, rng, samples: int) -> tuple[list, list]:
    """Mean per-episode `outcome` per (level, target, weight) and its gain over weight 0.
    The loop order fixes the order of draws from `rng`, hence the report's exact numbers."""
    index = {(r["level"], r["target"], r["human_weight"], r["seed"]): r for r in collected["rows"]}
    seeds = sorted({r["seed"] for r in collected["rows"]})
    success, gain = [], []
    for level in collected["levels"]:
        for weight in collected["weights"]:
            per_target = []
            for target in collected["targets"]:
                have = [index[(level, target, weight, s)] for s in seeds if (level, target, weight, s) in index]
                if have:
                    success.append(_rate(have, outcome, rng, samples, level=level, target=target,
                                         human_weight=weight))
                if weight == 0.0:  # the baseline: no gain over itself
                    continue
                pairs = [(index[(level, target, weight, s)][outcome], index[(level, target, 0.0, s)][outcome])
                         for s in seeds if (level, target, weight, s) in index and (level, target, 0.0, s) in index]
                if pairs:
                    row, reps = _gain(pairs, rng, samples, level=level, target=target, human_weight=weight)
                    gain.append(row)
                    per_target.append((row["mean"], reps))
            if per_target and len(per_target) == len(collected["targets"]):
                gain.append(_all_targets(per_target, level=level, human_weight=weight, seeds=len(seeds)))
    return success, gain


def _rate(cells: list[dict], outcome: str, rng, samples: int, **key) -> dict:
    per_seed = [(c[outcome], None) for c in cells]
    lo, hi = intervals.percentile_interval(intervals.hierarchical_bootstrap(per_seed, rng, samples))
    return dict(**key, mean=point_gain(per_seed), lo=lo, hi=hi, seeds=len(cells),
                episodes=int(sum(c["episodes"] for c in cells)))


def _gain(pairs: list[tuple[np.ndarray, np.ndarray]], rng, samples: int, **key) -> tuple[dict, np.ndarray]:
    """The gain row of one target, and its replicates (the all-targets row averages them)."""
    reps = intervals.hierarchical_bootstrap(pairs, rng, samples)
    lo, hi = intervals.percentile_interval(reps)
    return dict(**key, mean=point_gain(pairs), lo=lo, hi=hi, seeds=len(pairs)), reps


def _all_targets(per_target: list[tuple[float, np.ndarray]], *, level, human_weight, seeds: int) -> dict:
    """Gain averaged over targets; its interval from the per-target replicates averaged."""
    lo, hi = intervals.percentile_interval(np.mean([reps for _, reps in per_target], axis=0))
    return dict(level=level, target=ALL_TARGETS, human_weight=human_weight,
                mean=float(np.mean([m for m, _ in per_target])), lo=lo, hi=hi, seeds=seeds)


def _overlap(collected: dict[str, Any], rng, samples: int) -> list[dict]:
    """Overlap measures: every number embeddings.json holds, mean over the level's cells."""
    overlap = []
    for level in collected["levels"]:
        cells = [r for r in collected["rows"] if r["level"] == level and r["overlap"]]
        present = {k for r in cells for k in r["overlap"]}
        for metric in [m for m in OVERLAP_METRICS if m in present] or sorted(present):
            values = np.array([r["overlap"][metric] for r in cells if metric in r["overlap"]])
            lo, hi = intervals.percentile_interval(intervals.resampled_means(values, rng, samples))
            overlap.append(dict(level=level, metric=metric, mean=float(values.mean()), lo=lo, hi=hi,
                                cells=int(values.size)))
    return overlap
