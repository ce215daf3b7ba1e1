"""The report's pictures, as PNG bytes: the emergence curves (success and task progress; the
success curve with its power line), the overlap measures against diversity, and every
training cell's loss curves.

matplotlib is imported when a picture is drawn (not at import: `h2r study status` stays quick).
"""
from __future__ import annotations

import io
import json
import os

import numpy as np

from h2r.study import dag
from h2r.study.report.stats import ALL_TARGETS


def render(study_dir: str, levels: list[str], targets: list[str], weights: list[float],
           stats: dict, cells: list[dag.Cell]) -> dict[str, bytes | None]:
    """Every picture of the report: {curve, progress_curve, overlap (None without overlap
    numbers), training_curves}; each figure is closed once drawn (a study has many cells)."""
    plt = _pyplot()
    figures = {
        "curve": lambda: emergence_figure(levels, stats["gain"], targets, weights),
        "progress_curve": lambda: emergence_figure(levels, stats["progress_gain"], targets, weights,
                                                   "task progress"),
        "overlap": (lambda: overlap_figure(levels, stats["overlap"])) if stats["overlap"] else None,
        "training_curves": lambda: training_curves_figure(study_dir, cells),
    }
    pictures = {}
    for name, draw in figures.items():
        pictures[name] = _png(draw()) if draw else None
        plt.close("all")
    return pictures


def _pyplot():
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt  # noqa: PLC0415
    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def emergence_figure(levels: list[str], gain: list[dict], targets: list[str], weights: list[float],
                     quantity: str = "success"):
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    x = np.arange(len(levels))
    positive = [w for w in weights if w > 0]
    for weight in positive:
        for i, target in enumerate([*targets, ALL_TARGETS]):
            points = {g["level"]: g for g in gain if g["target"] == target and g["human_weight"] == weight}
            xs = [x[levels.index(lv)] for lv in levels if lv in points]
            if not xs:
                continue
            shown = [points[lv] for lv in levels if lv in points]
            mean = np.array([p["mean"] for p in shown])
            err = np.array([[p["mean"] - p["lo"], p["hi"] - p["mean"]] for p in shown]).T
            aggregate = target == ALL_TARGETS
            label = ("all targets" if aggregate else target) + (f" (human weight {weight:g})" if len(positive) > 1 else "")
            offset = 0.0 if aggregate else (i - (len(targets) - 1) / 2) * 0.06
            line = ax.errorbar(np.array(xs) + offset, mean, yerr=np.maximum(err, 0), marker="o", capsize=3,
                               linewidth=3 if aggregate else 1.2,
                               color="black" if aggregate and len(positive) == 1 else None,
                               alpha=1.0 if aggregate else 0.8, label=label, zorder=3 if aggregate else 2)
            color = line.lines[0].get_color()
            _mark_significant(ax, np.array(xs) + offset, shown, color)
            if aggregate:
                _power_line(ax, xs, shown, color, f" (human weight {weight:g})" if len(positive) > 1 else "")
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, levels)
    ax.set_xlabel("robot pretraining diversity level")
    ax.set_ylabel(f"gain from human data\n({quantity} with - without)")
    ax.set_title(f"Emergence of human-to-robot transfer in {quantity} (95% bootstrap CI over seeds and episodes;\n"
                 "* interval excludes 0)", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return fig


def _mark_significant(ax, xs, points: list[dict], color) -> None:
    """A star above each point whose 95% interval excludes 0."""
    marked = [(x, p["hi"]) for x, p in zip(xs, points) if p.get("excludes_zero")]
    if marked:
        ax.scatter(*zip(*marked), marker="*", s=90, color=color, zorder=4)


def _power_line(ax, xs, points: list[dict], color, suffix: str) -> None:
    """The smallest gain each level could detect (80% power; h2r.study.report.power), dotted.
    Levels where no gain up to success 1 is detectable have no point on it."""
    if not any("mde" in p for p in points):
        return  # task progress: no power computation
    mde = [np.nan if p.get("mde") is None else p["mde"] for p in points]
    ax.plot(xs, mde, linestyle=":", linewidth=2, marker="_", markersize=12, color=color, zorder=2,
            label="all targets: smallest detectable gain (80% power)" + suffix)


def overlap_figure(levels: list[str], overlap: list[dict]):
    plt = _pyplot()

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
    plt = _pyplot()

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
