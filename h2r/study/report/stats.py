"""The report's statistics: success, task progress and the gain from human data per (level,
target, human weight), and the overlap measures per level, each with a 95% bootstrap interval;
the power of each success gain (h2r.study.report.power) and how well each overlap measure
predicts the gain across cells (Spearman rank correlation).

Intervals come from h2r.eval.intervals: `hierarchical_bootstrap` resamples seeds, then each
seed's evaluation episodes, so both the training-seed variance and the finite number of
episodes widen them. One generator (seeded by config.report.bootstrap_seed) serves every table
in a fixed order, so the same cells always give the same report.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from h2r.eval import intervals
from h2r.study.report import power

ALL_TARGETS = "all"  # the aggregate over target settings in tables and results
# The overlap measures shown against diversity (embeddings.json keys, flattened); every other
# number of embeddings.json still goes to results.json/csv with its cell.
OVERLAP_METRICS = ("probe_accuracy.accuracy", "phase_retrieval.above_chance",
                   "phase_retrieval_robot_to_human.above_chance")


def point_gain(per_seed: list[tuple[np.ndarray, np.ndarray | None]]) -> float:
    """Mean over seeds of (mean(with) - mean(without)); (episodes, None) for a plain rate."""
    return float(np.mean([a.mean() - (0.0 if b is None else b.mean()) for a, b in per_seed]))


def compute(collected: dict[str, Any], samples: int, seed: int) -> dict[str, Any]:
    """Success per (level, target, weight), gain per (level, target | all, weight) with its
    power, overlap per level and against the gain across cells; the same success/gain tables
    for task progress (partial credit)."""
    rng = np.random.default_rng(seed)
    success, gain = _rates_and_gains(collected, "successes", rng, samples)
    progress, progress_gain = _rates_and_gains(collected, "progress", rng, samples)
    overlap = _overlap(collected, rng, samples)
    # Drawn last: the numbers above stay what they were before this table existed.
    overlap_gain = overlap_vs_gain(collected, rng, samples)
    return dict(success=success, gain=gain, overlap=overlap, progress=progress, progress_gain=progress_gain,
                overlap_gain=overlap_gain, power=power_settings(collected))


def power_settings(collected: dict[str, Any]) -> dict[str, Any]:
    """What the gain rows' `mde` means, and the episodes per cell this design would need for a
    +-0.10 interval (h2r.study.report.power)."""
    config = collected["config"]
    seeds, targets = len(config.seeds), len(collected["targets"])
    return dict(confidence=power.CONFIDENCE, power=power.POWER,
                mde=("smallest true gain in success whose 95% interval excludes 0 with probability 0.8, "
                     "given the seeds, episodes per cell, the observed robot-only rate and the between-seed "
                     "spread of the gains (normal approximation of the hierarchical bootstrap; "
                     "h2r/study/report/power.py)"),
                episodes_for_half_width_0_10=dict(
                    seeds=seeds, targets=targets,
                    all_targets=power.episodes_for_half_width(seeds, targets),
                    one_target=power.episodes_for_half_width(seeds, 1),
                    episodes_per_cell=int(config.eval.episodes)))


def _rates_and_gains(collected: dict[str, Any], outcome: str, rng, samples: int) -> tuple[list, list]:
    """Mean per-episode `outcome` per (level, target, weight) and its gain over weight 0.
    The loop order fixes the order of draws from `rng`, hence the report's exact numbers."""
    index = {(r["level"], r["target"], r["human_weight"], r["seed"]): r for r in collected["rows"]}
    seeds = sorted({r["seed"] for r in collected["rows"]})
    success, gain = [], []
    for level in collected["levels"]:
        for weight in collected["weights"]:
            per_target, pairs_of = [], {}
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
                    pairs_of[target] = pairs
            if per_target and len(per_target) == len(collected["targets"]):
                gain.append(_all_targets(per_target, level=level, human_weight=weight, seeds=len(seeds)))
            if outcome == "successes" and pairs_of:  # power is about 0/1 outcomes (binomial)
                _add_power([g for g in gain if g["level"] == level and g["human_weight"] == weight], pairs_of)
    return success, gain


def _add_power(rows: list[dict], pairs_of: dict[str, list]) -> None:
    """Each gain row of one (level, weight) gets its minimum detectable effect `mde` (None: no
    gain up to success 1 is detectable), the baseline rate and episodes it rests on, and the
    between-seed sd of the gains (pooled over the targets) that widens it."""
    tau2 = power.pooled_between_seed_variance(list(pairs_of.values()))
    designs = {t: power.design_of(p) for t, p in pairs_of.items()}
    for row in rows:
        used = list(designs.values()) if row["target"] == ALL_TARGETS else [designs[row["target"]]]
        mde = power.minimum_detectable_gain(used, tau2)
        row.update(mde=mde, baseline=float(np.mean([d[0] for d in used])),
                   episodes_per_cell=float(np.mean([d[2] for d in used])), between_seed_sd=float(np.sqrt(tau2)),
                   false_positive_rate=power.false_positive_rate(used, tau2))


def _rate(cells: list[dict], outcome: str, rng, samples: int, **key) -> dict:
    per_seed = [(c[outcome], None) for c in cells]
    lo, hi = intervals.percentile_interval(intervals.hierarchical_bootstrap(per_seed, rng, samples))
    return dict(**key, mean=point_gain(per_seed), lo=lo, hi=hi, seeds=len(cells),
                episodes=int(sum(c["episodes"] for c in cells)))


def _gain(pairs: list[tuple[np.ndarray, np.ndarray]], rng, samples: int, **key) -> tuple[dict, np.ndarray]:
    """The gain row of one target, and its replicates (the all-targets row averages them)."""
    reps = intervals.hierarchical_bootstrap(pairs, rng, samples)
    lo, hi = intervals.percentile_interval(reps)
    return dict(**key, mean=point_gain(pairs), lo=lo, hi=hi, excludes_zero=excludes_zero(lo, hi),
                seeds=len(pairs)), reps


def excludes_zero(lo: float, hi: float) -> bool:
    """The point the report marks: its 95% interval lies entirely above or below 0."""
    return bool(lo > 0 or hi < 0)


def _all_targets(per_target: list[tuple[float, np.ndarray]], *, level, human_weight, seeds: int) -> dict:
    """Gain averaged over targets; its interval from the per-target replicates averaged."""
    lo, hi = intervals.percentile_interval(np.mean([reps for _, reps in per_target], axis=0))
    return dict(level=level, target=ALL_TARGETS, human_weight=human_weight,
                mean=float(np.mean([m for m, _ in per_target])), lo=lo, hi=hi,
                excludes_zero=excludes_zero(lo, hi), seeds=seeds)


def _overlap(collected: dict[str, Any], rng, samples: int) -> list[dict]:
    """Overlap measures: every number embeddings.json holds, mean over the level's cells."""
    overlap = []
    for level in collected["levels"]:
        cells = [r for r in collected["rows"] if r["level"] == level and r["overlap"]]
        for metric in _shown_metrics(cells):
            values = np.array([r["overlap"][metric] for r in cells if metric in r["overlap"]])
            lo, hi = intervals.percentile_interval(intervals.resampled_means(values, rng, samples))
            overlap.append(dict(level=level, metric=metric, mean=float(values.mean()), lo=lo, hi=hi,
                                cells=int(values.size)))
    return overlap


def _shown_metrics(cells: list[dict]) -> list[str]:
    """OVERLAP_METRICS present in these cells, or (none of them) every number they hold."""
    present = {k for r in cells for k in r["overlap"]}
    return [m for m in OVERLAP_METRICS if m in present] or sorted(present)


def overlap_vs_gain(collected: dict[str, Any], rng, samples: int) -> list[dict]:
    """Does more human/robot overlap go with more gain? Across cells with human data (level x
    target x seed x weight), the Spearman rank correlation between each overlap measure and the
    cell's gain over its robot-only twin (same level, target, seed), in success and in task
    progress, with a bootstrap 95% interval over cells. Rank, not linear: the measures'
    scales (accuracy, above-chance retrieval) need not be linear in the gain."""
    index = {(r["level"], r["target"], r["human_weight"], r["seed"]): r for r in collected["rows"]}
    cells = [(r, index[(r["level"], r["target"], 0.0, r["seed"])]) for r in collected["rows"]
             if r["human_weight"] > 0 and r["overlap"] and (r["level"], r["target"], 0.0, r["seed"]) in index]
    out = []
    for quantity, rate in (("success", "success_rate"), ("progress", "mean_progress")):
        for metric in _shown_metrics([c for c, _ in cells]):
            pairs = [(c["overlap"][metric], c[rate] - base[rate]) for c, base in cells if metric in c["overlap"]]
            if len(pairs) < 3:  # a rank correlation of 2 points is always +-1
                continue
            x, y = map(np.array, zip(*pairs))
            rho, lo, hi = intervals.rank_correlation_interval(x, y, rng, samples)
            out.append(dict(metric=metric, gain=quantity, rho=rho, lo=lo, hi=hi, cells=len(pairs),
                            excludes_zero=lo is not None and excludes_zero(lo, hi)))
    return out
