"""The report's input: every complete eval cell of a study with its per-episode outcomes.

Per-episode outcomes (not just rates) are kept because the intervals resample episodes.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from h2r.errors import StudyError
from h2r.study import dag


def episode_successes(evaluation: dict[str, Any], cell_id: str) -> np.ndarray:
    """Per-episode 0/1 outcomes from an `h2r eval` result (needed for the episode bootstrap)."""
    if "successes" in evaluation:
        return np.asarray(evaluation["successes"], dtype=np.float64)
    raise StudyError(f"eval cell {cell_id}: its eval.json has no per-episode 'successes' "
                     f"(keys: {sorted(evaluation)})")


def episode_progress(evaluation: dict[str, Any], successes: np.ndarray) -> np.ndarray:
    """Per-episode fraction of the task's subtask phases completed (1 on success): partial credit,
    which still moves when success rates are all zero (small models, short training)."""
    if "max_phase" not in evaluation or "num_phases" not in evaluation:
        return successes.copy()
    done = np.asarray(evaluation["max_phase"], np.float64) / np.maximum(np.asarray(evaluation["num_phases"], np.float64), 1)
    return np.where(successes > 0, 1.0, np.clip(done, 0.0, 1.0))


def _success_of(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    """{success_rate, ci95, episodes} of an eval.json, or None when there is none."""
    if not evaluation:
        return None
    return {k: evaluation.get(k) for k in ("success_rate", "ci95", "episodes")}


def _flatten_numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    """{'probe_accuracy': {'accuracy': .6}} -> {'probe_accuracy.accuracy': .6}; numbers only."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten_numbers(v, f"{prefix}{k}."))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix[:-1]] = float(obj)
    return out


def collect(study_dir: str) -> dict[str, Any]:
    """Every complete eval cell's numbers, plus the study's axes and what is still missing."""
    config, cells = dag.load_study(study_dir)
    rows, missing = [], []
    for cell in cells:
        if cell.kind != "eval":
            continue
        result = dag.read_result(study_dir, cell.id)
        if result is None:
            missing.append(cell.id)
            continue
        successes = episode_successes(result["eval"], cell.id)
        progress = episode_progress(result["eval"], successes)
        rows.append(dict(id=cell.id, **cell.params, successes=successes, progress=progress,
                         success_rate=float(successes.mean()), mean_progress=float(progress.mean()),
                         episodes=int(successes.size),
                         ci95=result["eval"].get("ci95"),
                         in_distribution=_success_of(result.get("eval_target_robot")),
                         overlap=_flatten_numbers(result.get("embeddings") or {}),
                         tsne=os.path.join(dag.cell_dir(study_dir, cell.id), result["tsne"])
                         if result.get("tsne") else None))
    levels = sorted({(c.params["level_index"], c.params["level"]) for c in cells if "level" in c.params})
    return dict(config=config, cells=cells, rows=rows, missing=missing,
                levels=[label for _, label in levels], targets=list(config.targets),
                weights=[float(w) for w in config.human_weights])
