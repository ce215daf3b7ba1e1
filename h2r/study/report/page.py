"""The report's index.html: self-contained (pictures inlined as base64 PNG, no scripts, styles
or fonts from anywhere else), so it can be mailed or opened from a copied study. Every number it
shows is also in results.json and results.csv (h2r.study.report.results).
"""
from __future__ import annotations

import base64
import html
import os
from typing import Any

from h2r.study.report.stats import ALL_TARGETS


def index_html(study_dir: str, collected: dict[str, Any], stats: dict[str, Any],
               pictures: dict[str, bytes | None]) -> str:
    """The page: the competence table, emergence curves and tables, progress, overlap, t-SNE
    panels and training curves (pictures from h2r.study.report.figures.render)."""
    config = collected["config"]
    levels, targets, weights = collected["levels"], collected["targets"], collected["weights"]
    missing = collected["missing"]
    warn = (f'<p class="warn">Incomplete study: {len(missing)} of {len(missing) + len(collected["rows"])} eval cells '
            f'have no result yet; their numbers are left out.</p>') if missing else ""
    return f"""<!DOCTYPE html>
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
{_img(pictures['curve'], 'emergence curve', '900px')}
{_power_note(stats.get('power'))}
{_gain_table(levels, targets, stats['gain'], show_power=True)}
<h2>Target-robot success with and without human data</h2>
{_success_table(levels, targets, weights, stats['success'])}
<h2>Partial credit: task progress</h2>
<p>Per episode, the fraction of the task's subtask phases the robot completed (1 on success), so the
comparison still says something when success rates are near zero. Gain from human data, then the
progress with and without it.</p>
{_img(pictures['progress_curve'], 'task progress gain curve', '900px')}
{_gain_table(levels, targets, stats['progress_gain'])}
{_success_table(levels, targets, weights, stats['progress'])}
<h2>Human/robot representation overlap vs diversity</h2>
<p>From <code>h2r eval embeddings</code> on the co-trained models with human data: a linear probe's accuracy at
telling human from robot (0.5 = indistinguishable) and cross-embodiment phase retrieval.</p>
{_img(pictures['overlap'], 'overlap measures') if pictures['overlap'] else ''}
{_overlap_table(levels, stats['overlap'])}
<h3>Does overlap predict the gain?</h3>
<p>Across cells with human data (level × target × seed), Spearman's rank correlation between each
overlap measure and the cell's gain over its robot-only twin (same level, target and seed), with a 95%
bootstrap interval over cells. A probe accuracy that <em>falls</em> as the gain rises (rho &lt; 0) is
what more overlap predicting transfer looks like; retrieval above chance should rise (rho &gt; 0).</p>
{_overlap_gain_table(stats.get('overlap_gain', []))}
<h2>t-SNE of human and robot embeddings, per level</h2>
{_tsne_panels(levels, targets, collected['rows'])}
<h2>Training curves of every cell</h2>
{_img(pictures['training_curves'], 'training curves', '1280px')}
<p>All numbers: results.json, results.csv. Cells: {html.escape(os.path.join(study_dir, 'cells'))}</p>
</body></html>
"""


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


def _gain_table(levels, targets, gain, show_power: bool = False) -> str:
    """Gain [95% interval] per level and target; * marks an interval that excludes 0; with
    `show_power`, each point's power line: the smallest gain it could have detected."""
    cols = [*targets, ALL_TARGETS]
    weights = sorted({g["human_weight"] for g in gain})
    index = {(g["level"], g["target"], g["human_weight"]): g for g in gain}
    head = "".join(f"<th>{html.escape(t)}" + (f" (w {w:g})" if len(weights) > 1 else "") + "</th>"
                   for w in weights for t in cols)
    body = []
    for level in levels:
        cells = [_gain_cell(g, show_power) if (g := index.get((level, t, w))) else "<td>—</td>"
                 for w in weights for t in cols]
        body.append(f"<tr><th>{html.escape(level)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>level</th>{head}</tr>{''.join(body)}</table>"


def _gain_cell(g: dict, show_power: bool) -> str:
    mark = "*" if g.get("excludes_zero") else ""
    text = f"{_fmt(g['mean'])} [{_fmt(g['lo'])}, {_fmt(g['hi'])}]{mark}"
    if mark:
        text = f'<span class="sig">{text}</span>'
    if show_power and "mde" in g:
        mde = "no gain up to success 1" if g["mde"] is None else f"{g['mde']:.3f}"
        text += f'<br><span class="power">power: detects ≥ {mde} (baseline {g["baseline"]:.2f})</span>'
    return f"<td>{text}</td>"


def _power_note(settings: dict | None) -> str:
    """What the * and the power lines mean, and the episodes this design needs for +-0.10."""
    if not settings:
        return ""
    need = settings["episodes_for_half_width_0_10"]
    return (f"<p>* marks a gain whose 95% interval excludes 0. <b>Power</b> line under each gain: the smallest "
            f"true gain its interval would exclude 0 for with probability {settings['power']:g} (minimum detectable "
            "effect), given the seeds, the episodes per cell, the observed robot-only success and the between-seed "
            "spread of the gains; a gain smaller than it can hide behind “no gain”. On the curve: the dotted "
            "line, and a star on each gain whose interval excludes 0. "
            f"For a 95% interval of ±0.10 at success 0.5 with {need['seeds']} seeds and no between-seed spread, "
            f"a cell needs {_count(need['all_targets'])} episodes (gain averaged over {need['targets']} targets) or "
            f"{_count(need['one_target'])} (one target); this study uses {need['episodes_per_cell']}.</p>")


def _count(n: int | None) -> str:
    return "—" if n is None else str(n)


def _num(v: float | None) -> str:
    return "—" if v is None else _fmt(v)


def _overlap_gain_table(rows: list[dict]) -> str:
    if not rows:
        return "<p>Not enough cells with both overlap measures and a robot-only twin (3 needed).</p>"
    body = "".join(
        f"<tr><th>{html.escape(r['metric'])}</th><td>{html.escape(r['gain'])}</td><td>{r['cells']}</td>"
        f"<td>{_num(r['rho'])} [{_num(r['lo'])}, {_num(r['hi'])}]{'*' if r['excludes_zero'] else ''}</td></tr>"
        for r in rows)
    return ("<table><tr><th>overlap measure</th><th>gain in</th><th>cells</th><th>Spearman rho [95%]</th></tr>"
            f"{body}</table>")


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
margin:6px}figcaption{font-size:12px}.warn{color:#a40}.sig{font-weight:bold}.power{font-size:11px;color:#555}"""
