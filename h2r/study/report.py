"""The study report: S/report/{index.html, results.json, results.csv, emergence.png}.

The emergence curve is the gain from human data, success(with) - success(without), against
the pretraining level, per target setting and averaged over targets. Its 95% intervals come
from a two-level bootstrap: resample seeds, then each seed's evaluation episodes, so both the
training-seed variance and the finite number of episodes widen the interval. Every number the
HTML shows is also in results.json and results.csv; index.html is self-contained (pictures
inlined as base64 PNG, no scripts, styles or fonts from anywhere else).
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import sys
from typing import Any

import numpy as np

from h2r.errors import StudyError
from h2r.study import dag

ALL_TARGETS = "all"  # the aggregate over target settings in tables and results
# The overlap measures shown against diversity (embeddings.json keys, flattened); every other
# number of embeddings.json still goes to results.json/csv with its cell.
OVERLAP_METRICS = ("probe_accuracy.accuracy", "phase_retrieval.above_chance",
                   "phase_retrieval_robot_to_human.above_chance")


# ------------------------------------------------------------------------------------ data

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


# ------------------------------------------------------------------------------------ statistics

def _episode_means(successes: np.ndarray, rng: np.random.Generator, samples: int) -> np.ndarray:
    """[samples] means of the episodes resampled with replacement."""
    idx = rng.integers(0, successes.size, size=(samples, successes.size))
    return successes[idx].mean(axis=1)


def bootstrap_gain(per_seed: list[tuple[np.ndarray, np.ndarray | None]], rng: np.random.Generator,
                   samples: int) -> np.ndarray:
    """[samples] bootstrap replicates of mean over seeds of (mean(with) - mean(without)).

    per_seed: for each seed, (episodes with human data, episodes without) — or (episodes, None)
    for a plain success rate. Seeds are resampled, then episodes within each seed.
    """
    values = np.stack([_episode_means(a, rng, samples) - (0.0 if b is None else _episode_means(b, rng, samples))
                       for a, b in per_seed], axis=1)                       # [samples, seeds]
    pick = rng.integers(0, len(per_seed), size=(samples, len(per_seed)))
    return np.take_along_axis(values, pick, axis=1).mean(axis=1)


def point_gain(per_seed: list[tuple[np.ndarray, np.ndarray | None]]) -> float:
    return float(np.mean([a.mean() - (0.0 if b is None else b.mean()) for a, b in per_seed]))


def _interval(replicates: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(replicates, [2.5, 97.5])
    return float(lo), float(hi)


def compute(collected: dict[str, Any], samples: int, seed: int) -> dict[str, Any]:
    """Success per (level, target, weight), gain per (level, target | all, weight), overlap per
    level; the same success/gain tables for task progress (partial credit)."""
    rng = np.random.default_rng(seed)
    success, gain = _rates_and_gains(collected, "successes", rng, samples)
    progress, progress_gain = _rates_and_gains(collected, "progress", rng, samples)
    return dict(success=success, gain=gain, overlap=_overlap(collected, rng, samples),
                progress=progress, progress_gain=progress_gain)


def _rates_and_gains(collected: dict[str, Any], outcome: str, rng, samples: int) -> tuple[list, list]:
    """Mean per-episode `outcome` per (level, target, weight) and its gain over weight 0."""
    rows = collected["rows"]
    index = {(r["level"], r["target"], r["human_weight"], r["seed"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    success, gain = [], []
    for level in collected["levels"]:
        for weight in collected["weights"]:
            per_target_reps = []
            for target in collected["targets"]:
                cells = [index.get((level, target, weight, s)) for s in seeds]
                have = [c for c in cells if c is not None]
                if have:
                    per_seed = [(c[outcome], None) for c in have]
                    lo, hi = _interval(bootstrap_gain(per_seed, rng, samples))
                    success.append(dict(level=level, target=target, human_weight=weight,
                                        mean=point_gain(per_seed), lo=lo, hi=hi, seeds=len(have),
                                        episodes=int(sum(c["episodes"] for c in have))))
                if weight == 0.0:
                    continue
                pairs = [(index[(level, target, weight, s)][outcome], index[(level, target, 0.0, s)][outcome])
                         for s in seeds if (level, target, weight, s) in index and (level, target, 0.0, s) in index]
                if not pairs:
                    continue
                reps = bootstrap_gain(pairs, rng, samples)
                per_target_reps.append((point_gain(pairs), reps))
                lo, hi = _interval(reps)
                gain.append(dict(level=level, target=target, human_weight=weight, mean=point_gain(pairs),
                                 lo=lo, hi=hi, seeds=len(pairs)))
            if per_target_reps and len(per_target_reps) == len(collected["targets"]):
                lo, hi = _interval(np.mean([reps for _, reps in per_target_reps], axis=0))
                gain.append(dict(level=level, target=ALL_TARGETS, human_weight=weight,
                                 mean=float(np.mean([m for m, _ in per_target_reps])), lo=lo, hi=hi,
                                 seeds=len(seeds)))
    return success, gain


def _overlap(collected: dict[str, Any], rng, samples: int) -> list[dict]:
    """Overlap measures: every number embeddings.json holds, mean over the level's cells."""
    overlap = []
    for level in collected["levels"]:
        cells = [r for r in collected["rows"] if r["level"] == level and r["overlap"]]
        present = {k for r in cells for k in r["overlap"]}
        for metric in [m for m in OVERLAP_METRICS if m in present] or sorted(present):
            values = np.array([r["overlap"][metric] for r in cells if metric in r["overlap"]])
            reps = values[rng.integers(0, values.size, size=(samples, values.size))].mean(axis=1)
            lo, hi = _interval(reps)
            overlap.append(dict(level=level, metric=metric, mean=float(values.mean()), lo=lo, hi=hi,
                                cells=int(values.size)))
    return overlap


# ------------------------------------------------------------------------------------ pictures

def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def emergence_figure(levels: list[str], gain: list[dict], targets: list[str], weights: list[float],
                     quantity: str = "success"):
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    x = np.arange(len(levels))
    positive = [w for w in weights if w > 0]
    for weight in positive:
        for i, target in enumerate([*targets, ALL_TARGETS]):
            points = {g["level"]: g for g in gain if g["target"] == target and g["human_weight"] == weight}
            xs = [x[levels.index(lv)] for lv in levels if lv in points]
            if not xs:
                continue
            mean = np.array([points[lv]["mean"] for lv in levels if lv in points])
            err = np.array([[points[lv]["mean"] - points[lv]["lo"], points[lv]["hi"] - points[lv]["mean"]]
                            for lv in levels if lv in points]).T
            aggregate = target == ALL_TARGETS
            label = ("all targets" if aggregate else target) + (f" (human weight {weight:g})" if len(positive) > 1 else "")
            offset = 0.0 if aggregate else (i - (len(targets) - 1) / 2) * 0.06
            ax.errorbar(np.array(xs) + offset, mean, yerr=np.maximum(err, 0), marker="o", capsize=3,
                        linewidth=3 if aggregate else 1.2, color="black" if aggregate and len(positive) == 1 else None,
                        alpha=1.0 if aggregate else 0.8, label=label, zorder=3 if aggregate else 2)
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, levels)
    ax.set_xlabel("robot pretraining diversity level")
    ax.set_ylabel(f"gain from human data\n({quantity} with - without)")
    ax.set_title(f"Emergence of human-to-robot transfer in {quantity} (95% bootstrap CI over seeds and episodes)",
                 fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return fig


def overlap_figure(levels: list[str], overlap: list[dict]):
    import matplotlib.pyplot as plt  # noqa: PLC0415

    metrics = sorted({o["metric"] for o in overlap})
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(3.2 * max(1, len(metrics)), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        points = {o["level"]: o for o in overlap if o["metric"] == metric}
        xs = [i for i, lv in enumerate(levels) if lv in points]
        mean = np.array([points[levels[i]]["mean"] for i in xs])
        err = np.array([[points[levels[i]]["mean"] - points[levels[i]]["lo"],
                         points[levels[i]]["hi"] - points[levels[i]]["mean"]] for i in xs]).T
        ax.errorbar(xs, mean, yerr=np.maximum(err, 0) if len(xs) else None, marker="o", capsize=3)
        ax.set_xticks(range(len(levels)), levels, rotation=30, fontsize=7)
        ax.set_title(metric, fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def _read_metrics(run_dir: str) -> list[dict]:
    """W/metrics.jsonl rows (the trainer's clu JSON-lines writer). Read here rather than through
    h2r.train.metrics, which imports clu.metric_writers and so TensorFlow (seconds per report)."""
    try:
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def training_curves_figure(study_dir: str, cells: list[dag.Cell]):
    import matplotlib.pyplot as plt  # noqa: PLC0415

    train_cells = [c for c in cells if c.kind in ("pretrain", "cotrain")]
    cols = 4
    rows = max(1, -(-len(train_cells) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.flat[len(train_cells):]:
        ax.axis("off")
    for ax, cell in zip(axes.flat, train_cells):
        history = _read_metrics(dag.cell_dir(study_dir, cell.id))
        for key in sorted({k for row in history for k in row if "loss" in k}):
            points = [(row["step"], row[key]) for row in history if key in row]
            ax.plot(*zip(*points), label=key, linewidth=1)
        ax.set_title(cell.id, fontsize=7)
        ax.tick_params(labelsize=6)
        if history:
            ax.set_yscale("log") if all(row.get("loss", 1) > 0 for row in history) else None
            ax.legend(fontsize=5)
        else:
            ax.text(0.5, 0.5, "no metrics yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------ writing

def _img(data: bytes, alt: str, width: str = "") -> str:
    style = f' style="max-width:{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}"{style} src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _fmt(v: float) -> str:
    return f"{v:+.3f}" if v < 0 else f"{v:.3f}"


def _success_table(levels, targets, weights, success) -> str:
    index = {(s["level"], s["target"], s["human_weight"]): s for s in success}
    head = "".join(f"<th>{html.escape(t)}<br>human {w:g}</th>" for t in targets for w in weights)
    body = []
    for level in levels:
        cells = []
        for t in targets:
            for w in weights:
                s = index.get((level, t, w))
                cells.append(f"<td>{s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]</td>" if s else "<td>—</td>")
        body.append(f"<tr><th>{html.escape(level)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>level</th>{head}</tr>{''.join(body)}</table>"


def _competence_table(rows) -> str:
    """Robot-only cells: success on the target robot's own task (in distribution) and on the
    held-out setting, per cell (level, seed, target)."""
    body = []
    for r in sorted(rows, key=lambda r: (r["level_index"], r["seed"], r["target"])):
        own = r.get("in_distribution")
        if float(r["human_weight"]) != 0 or own is None:
            continue
        lo, hi = own["ci95"]
        body.append(f"<tr><th>{html.escape(r['level'])}</th><td>{r['seed']}</td><td>{html.escape(r['target'])}</td>"
                    f"<td>{own['success_rate']:.3f} [{lo:.3f}, {hi:.3f}]</td><td>{r['success_rate']:.3f}</td></tr>")
    if not body:
        return "<p>No robot-only cell has an in-distribution evaluation.</p>"
    return ("<table><tr><th>level</th><th>seed</th><th>target</th><th>own task (in distribution)</th>"
            f"<th>held-out setting</th></tr>{''.join(body)}</table>")


def _gain_table(levels, targets, gain) -> str:
    cols = [*targets, ALL_TARGETS]
    weights = sorted({g["human_weight"] for g in gain})
    index = {(g["level"], g["target"], g["human_weight"]): g for g in gain}
    head = "".join(f"<th>{html.escape(t)}" + (f" (w {w:g})" if len(weights) > 1 else "") + "</th>"
                   for w in weights for t in cols)
    body = []
    for level in levels:
        cells = [f"<td>{_fmt(g['mean'])} [{_fmt(g['lo'])}, {_fmt(g['hi'])}]</td>" if (g := index.get((level, t, w)))
                 else "<td>—</td>" for w in weights for t in cols]
        body.append(f"<tr><th>{html.escape(level)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>level</th>{head}</tr>{''.join(body)}</table>"


def _overlap_table(levels, overlap) -> str:
    metrics = sorted({o["metric"] for o in overlap})
    if not metrics:
        return "<p>No embedding analysis in this study (eval.embeddings is off or no cell finished).</p>"
    index = {(o["level"], o["metric"]): o for o in overlap}
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    body = "".join(
        f"<tr><th>{html.escape(lv)}</th>" + "".join(
            f"<td>{o['mean']:.3f} [{o['lo']:.3f}, {o['hi']:.3f}]</td>" if (o := index.get((lv, m))) else "<td>—</td>"
            for m in metrics) + "</tr>" for lv in levels)
    return f"<table><tr><th>level</th>{head}</tr>{body}</table>"


def _tsne_panels(levels, targets, rows) -> str:
    panels = []
    for level in levels:
        with_picture = sorted((r for r in rows if r["level"] == level and r["tsne"] and os.path.exists(r["tsne"])),
                              key=lambda r: (r["seed"], targets.index(r["target"]), r["human_weight"]))
        if with_picture:
            r = with_picture[0]
            with open(r["tsne"], "rb") as f:
                caption = f"{level} — {r['target']}, seed {r['seed']}, human weight {r['human_weight']:g}"
                panels.append(f"<figure>{_img(f.read(), 't-SNE ' + caption, '420px')}"
                              f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "".join(panels) or "<p>No t-SNE pictures (no embedding analysis finished).</p>"


CSS = """body{font-family:sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse;margin:1em 0;
font-size:13px}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}figure{display:inline-block;
margin:6px}figcaption{font-size:12px}.warn{color:#a40}"""


def write_report(study_dir: str) -> str:
    """Writes S/report/ and returns the path of index.html."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    study_dir = os.path.abspath(study_dir)
    collected = collect(study_dir)
    config = collected["config"]
    stats = compute(collected, config.report.bootstrap_samples, config.report.bootstrap_seed)
    levels, targets, weights = collected["levels"], collected["targets"], collected["weights"]
    out_dir = os.path.join(study_dir, "report")
    tmp_dir = f"{out_dir}.tmp-{os.getpid()}"
    os.makedirs(tmp_dir, exist_ok=True)

    curve = _png(fig := emergence_figure(levels, stats["gain"], targets, weights))
    plt.close(fig)
    progress_curve = _png(fig := emergence_figure(levels, stats["progress_gain"], targets, weights, "task progress"))
    plt.close(fig)
    overlap_png = _png(fig := overlap_figure(levels, stats["overlap"])) if stats["overlap"] else None
    plt.close("all")
    curves_png = _png(fig := training_curves_figure(study_dir, collected["cells"]))
    plt.close(fig)
    with open(os.path.join(tmp_dir, "emergence.png"), "wb") as f:
        f.write(curve)

    cells_out = [dict(id=r["id"], level=r["level"], seed=r["seed"], target=r["target"],
                      human_weight=r["human_weight"], success_rate=r["success_rate"], episodes=r["episodes"],
                      mean_progress=r["mean_progress"], in_distribution=r["in_distribution"],
                      successes=int(r["successes"].sum()), ci95=r["ci95"], overlap=r["overlap"])
                 for r in collected["rows"]]
    results = dict(study=config.name, levels=levels, targets=targets, human_weights=weights,
                   seeds=list(config.seeds), bootstrap=dict(samples=config.report.bootstrap_samples,
                                                            seed=config.report.bootstrap_seed),
                   cells=cells_out, missing=collected["missing"], **stats)
    with open(os.path.join(tmp_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    _write_csv(os.path.join(tmp_dir, "results.csv"), cells_out, stats)

    missing = collected["missing"]
    warn = (f'<p class="warn">Incomplete study: {len(missing)} of {len(missing) + len(cells_out)} eval cells '
            f'have no result yet; their numbers are left out.</p>') if missing else ""
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>h2r study {html.escape(config.name)}</title><style>{CSS}</style></head>
<body>
<h1>Emergence of human-to-robot transfer — study “{html.escape(config.name)}”</h1>
<p>{len(levels)} pretraining levels × {len(config.seeds)} seeds × {len(targets)} target settings ×
human-data weights {', '.join(f'{w:g}' for w in weights)}; {config.eval.episodes} evaluation episodes per cell.
Intervals: 95% bootstrap ({config.report.bootstrap_samples} resamples of seeds, then episodes).</p>{warn}
<h2>Is the robot-only baseline competent?</h2>
<p>Robot-only co-trained policies evaluated closed loop on their own co-training task (episode seeds
never trained on) beside the held-out setting. A gain from human data is only meaningful on top of a
baseline that works.</p>
{_competence_table(collected['rows'])}
<h2>Emergence curve: gain from human data vs pretraining diversity</h2>
{_img(curve, 'emergence curve', '900px')}
{_gain_table(levels, targets, stats['gain'])}
<h2>Target-robot success with and without human data</h2>
{_success_table(levels, targets, weights, stats['success'])}
<h2>Partial credit: task progress</h2>
<p>Per episode, the fraction of the task's subtask phases the robot completed (1 on success), so the
comparison still says something when success rates are near zero. Gain from human data, then the
progress with and without it.</p>
{_img(progress_curve, 'task progress gain curve', '900px')}
{_gain_table(levels, targets, stats['progress_gain'])}
{_success_table(levels, targets, weights, stats['progress'])}
<h2>Human/robot representation overlap vs diversity</h2>
<p>From <code>h2r eval embeddings</code> on the co-trained models with human data: a linear probe's accuracy at
telling human from robot (0.5 = indistinguishable) and cross-embodiment phase retrieval.</p>
{_img(overlap_png, 'overlap measures') if overlap_png else ''}
{_overlap_table(levels, stats['overlap'])}
<h2>t-SNE of human and robot embeddings, per level</h2>
{_tsne_panels(levels, targets, collected['rows'])}
<h2>Training curves of every cell</h2>
{_img(curves_png, 'training curves', '1280px')}
<p>All numbers: results.json, results.csv. Cells: {html.escape(os.path.join(study_dir, 'cells'))}</p>
</body></html>
"""
    with open(os.path.join(tmp_dir, "index.html"), "w") as f:
        f.write(page)
    _replace_dir(tmp_dir, out_dir)
    return os.path.join(out_dir, "index.html")


def _replace_dir(new: str, old: str) -> None:
    """Swap in the finished report: a reader sees the old report or the new one."""
    import shutil  # noqa: PLC0415

    trash = f"{old}.old-{os.getpid()}"
    if os.path.exists(old):
        os.rename(old, trash)
    os.rename(new, old)
    shutil.rmtree(trash, ignore_errors=True)


def _write_csv(path: str, cells: list[dict], stats: dict) -> None:
    """Long format, one number per row: table, level, target, human_weight, seed, metric, value, lo, hi."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["table", "level", "target", "human_weight", "seed", "metric", "value", "lo", "hi"])
        for c in cells:
            lo, hi = (c["ci95"] or [None, None])[:2]
            w.writerow(["cell", c["level"], c["target"], c["human_weight"], c["seed"], "success_rate",
                        c["success_rate"], lo, hi])
            w.writerow(["cell", c["level"], c["target"], c["human_weight"], c["seed"], "episodes", c["episodes"], "", ""])
            w.writerow(["cell", c["level"], c["target"], c["human_weight"], c["seed"], "mean_progress",
                        c["mean_progress"], "", ""])
            for metric, value in c["overlap"].items():
                w.writerow(["cell", c["level"], c["target"], c["human_weight"], c["seed"], metric, value, "", ""])
        for s in stats["success"]:
            w.writerow(["success", s["level"], s["target"], s["human_weight"], "", "success_rate", s["mean"], s["lo"], s["hi"]])
        for g in stats["gain"]:
            w.writerow(["gain", g["level"], g["target"], g["human_weight"], "", "gain", g["mean"], g["lo"], g["hi"]])
        for s in stats["progress"]:
            w.writerow(["progress", s["level"], s["target"], s["human_weight"], "", "mean_progress", s["mean"], s["lo"], s["hi"]])
        for g in stats["progress_gain"]:
            w.writerow(["progress_gain", g["level"], g["target"], g["human_weight"], "", "progress_gain",
                        g["mean"], g["lo"], g["hi"]])
        for o in stats["overlap"]:
            w.writerow(["overlap", o["level"], "", "", "", o["metric"], o["mean"], o["lo"], o["hi"]])


def main(args) -> int:
    path = write_report(args.workdir)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(type("Args", (), {"workdir": sys.argv[1]})))
