"""The report's numbers as files: results.json (everything, nested) and results.csv (long
format, one number per row), both written into the report's staging directory.
"""
from __future__ import annotations

import csv
import json
from typing import Any


def cell_rows(collected: dict[str, Any]) -> list[dict]:
    """Per eval cell: its rates, episode count, in-distribution success and overlap numbers."""
    return [dict(id=r["id"], level=r["level"], seed=r["seed"], target=r["target"],
                 human_weight=r["human_weight"], success_rate=r["success_rate"], episodes=r["episodes"],
                 mean_progress=r["mean_progress"], in_distribution=r["in_distribution"],
                 successes=int(r["successes"].sum()), ci95=r["ci95"], overlap=r["overlap"])
            for r in collected["rows"]]


def write_json(path: str, collected: dict[str, Any], cells: list[dict], stats: dict[str, Any]) -> None:
    config = collected["config"]
    results = dict(study=config.name, levels=collected["levels"], targets=collected["targets"],
                   human_weights=collected["weights"], seeds=list(config.seeds),
                   bootstrap=dict(samples=config.report.bootstrap_samples, seed=config.report.bootstrap_seed),
                   cells=cells, missing=collected["missing"], **stats)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)


def write_csv(path: str, cells: list[dict], stats: dict) -> None:
    """Long format, one number per row: table, level, target, human_weight, seed, metric, value, lo, hi.
    Tables: cell, success, gain, progress, progress_gain, overlap (as in results.json), then
    gain_power / progress_gain_power (excludes_zero and the success gain's power) and
    overlap_gain (rank correlation of an overlap measure with the gain across cells)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["table", "level", "target", "human_weight", "seed", "metric", "value", "lo", "hi"])
        w.writerows(_csv_rows(cells, stats))


# results.json table -> the metric name its CSV rows carry
_TABLE_METRIC = (("success", "success_rate"), ("gain", "gain"), ("progress", "mean_progress"),
                 ("progress_gain", "progress_gain"))


def _csv_rows(cells: list[dict], stats: dict):
    for c in cells:
        key = ["cell", c["level"], c["target"], c["human_weight"], c["seed"]]
        lo, hi = (c["ci95"] or [None, None])[:2]
        yield [*key, "success_rate", c["success_rate"], lo, hi]
        yield [*key, "episodes", c["episodes"], "", ""]
        yield [*key, "mean_progress", c["mean_progress"], "", ""]
        for metric, value in c["overlap"].items():
            yield [*key, metric, value, "", ""]
    for table, metric in _TABLE_METRIC:
        for s in stats[table]:
            yield [table, s["level"], s["target"], s["human_weight"], "", metric, s["mean"], s["lo"], s["hi"]]
    for o in stats["overlap"]:
        yield ["overlap", o["level"], "", "", "", o["metric"], o["mean"], o["lo"], o["hi"]]
    yield from _power_rows(stats)
    for o in stats.get("overlap_gain", []):  # Spearman rho of an overlap measure vs the gain in `gain`
        yield ["overlap_gain", "", "", "", "", f"{o['metric']} vs {o['gain']} gain", o["rho"], o["lo"], o["hi"]]


# The power fields of a success gain row (h2r.study.report.power), each a CSV row of its own
# table (not "gain", whose rows are one number each: the gain).
_POWER_FIELDS = ("mde", "baseline", "episodes_per_cell", "between_seed_sd", "false_positive_rate")


def _power_rows(stats: dict):
    """gain_power / progress_gain_power rows: whether the interval excludes 0 (1/0) and, for
    the success gain, its power fields; an undetectable MDE is an empty value."""
    for table in ("gain", "progress_gain"):
        for s in stats[table]:
            key = [f"{table}_power", s["level"], s["target"], s["human_weight"], ""]
            yield [*key, "excludes_zero", int(s["excludes_zero"]), "", ""]
            for field in (f for f in _POWER_FIELDS if f in s):
                yield [*key, field, "" if s[field] is None else s[field], "", ""]
