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
    """Long format, one number per row: table, level, target, human_weight, seed, metric, value, lo, hi."""
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
