"""The report's input: every complete eval cell of a study with its per-episode outcomes.

Per-episode outcomes (not just rates) are kept because the intervals resample episodes. Every
number of the report is computed from these records (eval.json's `episodes_detail`: success,
phases reached, episode seed), never from a rate a cell wrote, so anyone can recompute the
report from the cells alone (tests/test_study_power.py does).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from h2r.errors import StudyError
from h2r.eval import intervals
from h2r.study import dag


def episode_successes(evaluation: dict[str, Any], cell_id: str) -> np.ndarray:
    """Per-episode 0/1 outcomes from an `h2r eval` result (needed for the episode bootstrap):
    from its per-episode records (`episodes_detail`: success, phases reached, episode seed)
    when it has them, else from its `successes` list (older results)."""
    detail = evaluation.get("episodes_detail")
    if detail:
        successes = np.array([float(bool(e["success"])) for e in detail])
        if "successes" in evaluation and not np.array_equal(successes, np.asarray(evaluation["successes"], np.float64)):
            raise StudyError(f"eval cell {cell_id}: its eval.json's episodes_detail and successes disagree "
                             "(edited or damaged; rerun the cell's eval)")
        return successes
    if "successes" in evaluation:
        return np.asarray(evaluation["successes"], dtype=np.float64)
    raise StudyError(f"eval cell {cell_id}: its eval.json has no per-episode 'successes' "
                     f"(keys: {sorted(evaluation)})")


def episode_progress(evaluation: dict[str, Any], successes: np.ndarray) -> np.ndarray:
    """Per-episode fraction of the task's subtask phases completed (1 on success): partial credit,
    which still moves when success rates are all zero (small models, short training)."""
    detail = evaluation.get("episodes_detail")
    if detail and all("max_phase" in e and "num_phases" in e for e in detail):
        max_phase = [e["max_phase"] for e in detail]
        num_phases = [e["num_phases"] for e in detail]
    elif "max_phase" in evaluation and "num_phases" in evaluation:
        max_phase, num_phases = evaluation["max_phase"], evaluation["num_phases"]
    else:
        return successes.copy()
    done = np.asarray(max_phase, np.float64) / np.maximum(np.asarray(num_phases, np.float64), 1)
    return np.where(successes > 0, 1.0, np.clip(done, 0.0, 1.0))


def episode_interval(evaluation: dict[str, Any], successes: np.ndarray) -> list[float]:
    """The 95% interval of one cell's success rate, recomputed from its episodes with the
    method `h2r eval` used (ci_method, Wilson by default)."""
    return list(intervals.success_interval(successes, evaluation.get("ci_method", "wilson")))


def _success_of(evaluation: dict[str, Any] | None, cell_id: str) -> dict[str, Any] | None:
    """{success_rate, ci95, episodes} of an eval.json, from its episodes; None when there is none."""
    if not evaluation:
        return None
    successes = episode_successes(evaluation, cell_id)
    return dict(success_rate=float(successes.mean()), ci95=episode_interval(evaluation, successes),
                episodes=int(successes.size))


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
                         ci95=episode_interval(result["eval"], successes),
                         in_distribution=_success_of(result.get("eval_target_robot"), cell.id),
                         overlap=_flatten_numbers(result.get("embeddings") or {}),
                         tsne=os.path.join(dag.cell_dir(study_dir, cell.id), result["tsne"])
                         if result.get("tsne") else None))
    levels = sorted({(c.params["level_index"], c.params["level"]) for c in cells if "level" in c.params})
    return dict(config=config, cells=cells, rows=rows, missing=missing,
                levels=[label for _, label in levels], targets=list(config.targets),
                weights=[float(w) for w in config.human_weights])
