"""The study report: S/report/{index.html, results.json, results.csv, emergence.png}.

The emergence curve is the gain from human data, success(with) - success(without), against
the pretraining level, per target setting and averaged over targets, with 95% intervals from a
two-level bootstrap over seeds and episodes. One module per job:
  collect   every complete eval cell's per-episode outcomes (h2r.study.report.collect)
  stats     rates, gains and overlap with their intervals (h2r.study.report.stats)
  figures   the curves as PNG bytes (h2r.study.report.figures)
  page      the self-contained index.html (h2r.study.report.page)
  results   results.json and results.csv (h2r.study.report.results)
  power     the smallest detectable gain, and the episodes a study needs (h2r.study.report.power)
`write_report` runs them in that order and swaps the finished directory in (h2r.files.atomic_dir),
so a reader sees the old report or the new one, never a mix.
"""
from __future__ import annotations

import os

from h2r import files


def write_report(study_dir: str) -> str:
    """Writes S/report/ and returns the path of index.html."""
    # Imported here, not at the top: `h2r study status` imports report.power (sizes) without scipy.
    from h2r.study.report import collect, figures, page, results, stats  # noqa: PLC0415

    study_dir = os.path.abspath(study_dir)
    collected = collect.collect(study_dir)
    config = collected["config"]
    numbers = stats.compute(collected, config.report.bootstrap_samples, config.report.bootstrap_seed)
    pictures = figures.render(study_dir, collected["levels"], collected["targets"], collected["weights"],
                              numbers, collected["cells"])
    cells = results.cell_rows(collected)
    out_dir = os.path.join(study_dir, "report")
    # Two reports written at once (a runner's and a user's) would swap each other's directory.
    with files.output_lock(out_dir, f"study report {out_dir}"), files.atomic_dir(out_dir) as tmp:
        with open(os.path.join(tmp, "emergence.png"), "wb") as f:
            f.write(pictures["curve"])
        results.write_json(os.path.join(tmp, "results.json"), collected, cells, numbers)
        results.write_csv(os.path.join(tmp, "results.csv"), cells, numbers)
        with open(os.path.join(tmp, "index.html"), "w") as f:
            f.write(page.index_html(study_dir, collected, numbers, pictures))
    return os.path.join(out_dir, "index.html")
