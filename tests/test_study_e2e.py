"""The micro study end to end on the real stack (data -> train -> eval -> report), the report's
numbers recomputed from the cells' result files, and the report opened in headless Chromium."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from h2r.study import dag
from test_study import MICRO, ROOT, h2r_study


def real_stack_overrides(data_dir) -> list[str]:
    # One device per cell process: the tests' 8 forced CPU devices only slow tiny cells down.
    return [f"--config.data.dir={data_dir}",
            '--config.executor.env=("XLA_FLAGS=--xla_force_host_platform_device_count=1",)']


def assert_report_matches_cells(study_dir: str) -> dict:
    """Recomputes the report's numbers from cells/*/result.json, independently of h2r.study.report."""
    config, cells = dag.load_study(study_dir)
    results = json.load(open(os.path.join(study_dir, "report", "results.json")))
    evals = [c for c in cells if c.kind == "eval"]
    assert not results["missing"]
    assert sorted(c["id"] for c in results["cells"]) == sorted(c.id for c in evals)  # complete, unduplicated
    rate, progress = {}, {}
    for cell in evals:
        result = json.load(open(dag.result_path(study_dir, cell.id)))
        on_disk = json.load(open(os.path.join(dag.cell_dir(study_dir, cell.id), "eval.json")))
        assert result["eval"] == on_disk
        p = cell.params
        key = (p["level"], p["target"], p["human_weight"], p["seed"])
        rate[key] = float(on_disk["success_rate"])
        # Partial credit, recomputed from the per-episode phases: 1 on success, else phases done / phases.
        done = np.array(on_disk["max_phase"]) / np.array(on_disk["num_phases"])
        progress[key] = float(np.mean(np.where(np.array(on_disk["successes"]) > 0, 1.0, done)))
        reported = next(c for c in results["cells"] if c["id"] == cell.id)
        assert reported["success_rate"] == pytest.approx(on_disk["success_rate"])
        assert reported["episodes"] == on_disk["episodes"] == config.eval.episodes
    for s in results["success"]:
        expected = np.mean([v for (lv, t, w, _), v in rate.items() if (lv, t, w) == (s["level"], s["target"], s["human_weight"])])
        assert s["mean"] == pytest.approx(expected)
        assert s["lo"] <= s["mean"] + 1e-9 and s["mean"] - 1e-9 <= s["hi"]
    gains = [g for g in results["gain"] if g["target"] != "all"]
    assert len(gains) == len(config.levels) * len(config.targets)
    for g in gains:
        seeds = config.seeds
        expected = np.mean([rate[(g["level"], g["target"], g["human_weight"], s)] - rate[(g["level"], g["target"], 0.0, s)]
                            for s in seeds])
        assert g["mean"] == pytest.approx(expected)
        assert g["lo"] <= g["mean"] + 1e-9 <= g["hi"] + 2e-9
    for g in (g for g in results["gain"] if g["target"] == "all"):
        per_target = [x["mean"] for x in gains if x["level"] == g["level"] and x["human_weight"] == g["human_weight"]]
        assert g["mean"] == pytest.approx(np.mean(per_target))
    for s in results["progress"]:
        expected = np.mean([v for (lv, t, w, _), v in progress.items() if (lv, t, w) == (s["level"], s["target"], s["human_weight"])])
        assert s["mean"] == pytest.approx(expected)
    for g in (g for g in results["progress_gain"] if g["target"] != "all"):
        expected = np.mean([progress[(g["level"], g["target"], g["human_weight"], s)] - progress[(g["level"], g["target"], 0.0, s)]
                            for s in config.seeds])
        assert g["mean"] == pytest.approx(expected)
    assert len(results["progress_gain"]) == len(results["gain"])
    with open(os.path.join(study_dir, "report", "results.csv")) as f:
        rows = list(csv.DictReader(f))
    csv_gains = {(r["level"], r["target"]): float(r["value"]) for r in rows if r["table"] == "gain"}
    for g in results["gain"]:
        assert csv_gains[(g["level"], g["target"])] == pytest.approx(g["mean"])
    assert os.path.getsize(os.path.join(study_dir, "report", "emergence.png")) > 1000
    return results


def _attempts(study_dir: str, cell_id: str) -> int:
    path = os.path.join(dag.cell_dir(study_dir, cell_id), "log.txt")
    return open(path).read().count("=== attempt") if os.path.exists(path) else 0


def _logs(study_dir: str) -> str:
    return "\n".join(f"--- {c}\n" + open(os.path.join(dag.cell_dir(study_dir, c), "log.txt")).read()[-3000:]
                     for c in sorted(os.listdir(os.path.join(study_dir, "cells")))
                     if not dag.is_complete(study_dir, c) and os.path.exists(os.path.join(dag.cell_dir(study_dir, c), "log.txt")))


@pytest.fixture(scope="module")
def micro_study(micro_dataset, tmp_path_factory):
    """The micro study on the real stack, killed (SIGKILL) once its first training cell is
    complete, then rerun to the end with the same command."""
    study_dir = str(tmp_path_factory.mktemp("micro_study") / "S")
    argv = [sys.executable, "-m", "h2r.cli", "study", "run", "--config", MICRO, "--workdir", study_dir,
            *real_stack_overrides(micro_dataset)]
    runner = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    train_ids = []
    while time.time() < deadline and runner.poll() is None:
        if os.path.exists(os.path.join(study_dir, dag.STUDY_FILE)):
            train_ids = [c.id for c in dag.load_study(study_dir)[1] if c.kind in ("pretrain", "cotrain")]
            if any(dag.is_complete(study_dir, c) for c in train_ids):
                break
        time.sleep(0.2)
    assert runner.poll() is None, runner.stderr.read()[-3000:] + _logs(study_dir)
    runner.kill()
    runner.wait()
    time.sleep(2.0)  # the killed runner's cells get SIGTERM from the kernel; the trainer checkpoints
    _, cells = dag.load_study(study_dir)
    complete = [c.id for c in cells if dag.is_complete(study_dir, c.id)]
    assert 0 < len(complete) < len(cells)
    assert dag.summarize(study_dir, cells)["counts"]["running"] == 0
    proc = h2r_study("run", "--workdir", study_dir, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + _logs(study_dir)
    for cell_id in complete:  # nothing complete ran again
        assert _attempts(study_dir, cell_id) == 1, cell_id
    assert all(dag.is_complete(study_dir, c.id) for c in cells)
    return study_dir


def test_micro_study_report_numbers_equal_the_cells(micro_study):
    results = assert_report_matches_cells(micro_study)
    assert {o["metric"] for o in results["overlap"]}, "embedding overlap measures missing from the report"
    # Training curves came from the run directories' metrics.jsonl.
    for cell in os.listdir(os.path.join(micro_study, "cells")):
        if cell.startswith(("pretrain", "cotrain")):
            assert os.path.getsize(os.path.join(micro_study, "cells", cell, "metrics.jsonl")) > 0


def test_report_is_self_contained_and_renders_in_chromium(micro_study, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (run .ci/install-system.sh)")
    index = os.path.join(micro_study, "report", "index.html")
    page = open(index).read()
    # Nothing external: every src/href is inline data, and no url(...) outside data: URIs.
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs), refs[:3]
    assert not re.search(r"url\((?!data:)", page)
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*flags, "--dump-dom", f"file://{index}"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Emergence curve" in dom.stdout and dom.stdout.count("<img") == page.count("<img")
    assert "ERR_FILE_NOT_FOUND" not in dom.stderr and "Failed to load resource" not in dom.stderr
    shot = tmp_path / "report.png"
    proc = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1300,1800", f"file://{index}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    # The curve is drawn: the top of the screenshot (where the curve sits) is not blank.
    from PIL import Image
    pixels = np.asarray(Image.open(shot).convert("L"))[150:700, :900]
    assert (pixels < 128).mean() > 0.005
    keep = os.environ.get("H2R_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


# ------------------------------------------------------------------ issue 11: copied, moved, damaged studies
def _eval_cell(study_dir: str, human: bool) -> str:
    return next(c.id for c in dag.load_study(study_dir)[1]
                if c.kind == "eval" and (c.params["human_weight"] > 0) == human)


def test_copied_study_reruns_there_and_leaves_the_original_untouched(micro_study, tmp_path):
    from test_faults import hashes
    before = hashes(micro_study)
    study = shutil.copytree(micro_study, tmp_path / "S2", symlinks=True)
    cell = _eval_cell(study, human=True)  # its commands: closed-loop eval and embeddings
    for name in ("result.json", "eval.json", "embeddings"):
        path = os.path.join(dag.cell_dir(study, cell), name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    proc = h2r_study("run", "--workdir", study, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + _logs(study)
    assert _attempts(study, cell) == 2  # the original's attempt (copied) and this one
    evaluation = json.load(open(os.path.join(dag.cell_dir(study, cell), "eval.json")))
    assert evaluation["workdir"].startswith(str(study))  # the copy's own model was evaluated
    assert os.path.exists(os.path.join(dag.cell_dir(study, cell), "embeddings", "embeddings.json"))
    assert_report_matches_cells(study)
    assert hashes(micro_study) == before


def test_moved_study_reruns_and_reports(micro_study, tmp_path, micro_dataset):
    from test_faults import hashes
    before = hashes(micro_study)
    study = str(tmp_path / "moved")
    os.rename(shutil.copytree(micro_study, tmp_path / "S2", symlinks=True), study)
    cell = next(c.id for c in dag.load_study(study)[1] if c.kind == "cotrain")
    os.remove(dag.result_path(study, cell))
    # The same command as the original's (with its config): the plan is the same wherever it lives.
    proc = h2r_study("run", "--config", MICRO, "--workdir", study, *real_stack_overrides(micro_dataset), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + _logs(study)
    # Exactly one new attempt (the original may hold two: the fixture's kill can land mid-cell).
    assert dag.is_complete(study, cell) and _attempts(study, cell) == _attempts(micro_study, cell) + 1
    assert "nothing to do" in open(os.path.join(dag.cell_dir(study, cell), "log.txt")).read()
    assert_report_matches_cells(study)
    assert hashes(micro_study) == before


def test_truncated_result_is_not_done_and_the_report_leaves_it_out(micro_study, tmp_path, capsys):
    from h2r import cli
    study = str(shutil.copytree(micro_study, tmp_path / "S2", symlinks=True))
    cell = _eval_cell(study, human=False)
    path = dag.result_path(study, cell)
    os.truncate(path, os.path.getsize(path) // 2)  # e.g. a full disk before atomic writes
    assert cli.main(["study", "status", "--workdir", study, "-v"]) == 0
    assert f"pending  {cell}" in capsys.readouterr().out
    assert cli.main(["study", "report", "--workdir", study]) == 0
    results = json.load(open(os.path.join(study, "report", "results.json")))
    assert results["missing"] == [cell] and cell not in [c["id"] for c in results["cells"]]


def test_corrupt_study_json_is_named(micro_study, tmp_path, capsys):
    from h2r import cli
    study = str(shutil.copytree(micro_study, tmp_path / "S2", symlinks=True))
    path = os.path.join(study, dag.STUDY_FILE)
    os.truncate(path, os.path.getsize(path) // 2)
    for command in (["status"], ["run", "--no-report"], ["report"]):
        capsys.readouterr()
        assert cli.main(["study", *command, "--workdir", study]) == 1
        err = capsys.readouterr().err
        assert f"study file {path} is not valid JSON" in err and "--config" in err, err
