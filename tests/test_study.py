"""The study's grid validation, DAG and local executor (resume, kill, failure).

The executor tests run the real `h2r study run` command with the real scheduler, locks and
result files, but the cells' stage commands are tests/study_fake_h2r.py (trivial processes
writing the files the real stages write): these tests are about the executor. The real stack
runs end to end in tests/test_study_e2e.py and tests/test_study_slurm.py.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from h2r.study import dag, grid
from h2r.study.run import load_study_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICRO = os.path.join(ROOT, "experiments", "study", "micro.py")
FAKE = os.path.join(ROOT, "tests", "study_fake_h2r.py")


def fake_overrides(**extra) -> list[str]:
    overrides = [f'--config.executor.h2r=("{sys.executable}","{FAKE}")']
    return overrides + [f"--config.{k}={v}" for k, v in extra.items()]


def h2r_study(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "h2r.cli", "study", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def invocations(study_dir: str) -> dict[str, list[str]]:
    out = {}
    for cell_id in os.listdir(os.path.join(study_dir, "cells")):
        path = os.path.join(study_dir, "cells", cell_id, "invocations.txt")
        for sub in ("", "rlds", "embeddings"):
            p = os.path.join(study_dir, "cells", cell_id, sub, "invocations.txt")
            if os.path.exists(p):
                out.setdefault(cell_id, []).extend(open(p).read().splitlines())
        del path
    return out


# ------------------------------------------------------------------------------ grid and DAG

def test_levels_parse_and_reject_out_of_range():
    assert grid.parse_level("0.5") == grid.Level("0.5", "diversity", 0.5, False)
    assert grid.parse_level("1.0+other").other_embodiments
    assert grid.parse_level("scenes:0.25").data_overrides() == {"scene_diversity": 0.25, "other_embodiments": False}
    assert not grid.parse_level("0").pretrains
    for bad in ("1.5", "-0.1", "half", "colors:0.5"):
        with pytest.raises(grid.StudyError, match=repr(bad)):
            grid.parse_level(bad)


def test_every_shipped_study_config_is_valid_and_ids_are_stable(tmp_path):
    for name in ("tiny", "micro", "paper", "human_scaling", "factorial"):
        config = load_study_config(os.path.join(ROOT, "experiments", "study", f"{name}.py"))
        grid.validate(config, ROOT)
        cells = dag.plan(config, ROOT)
        ids = [c.id for c in cells]
        assert len(ids) == len(set(ids))
        assert ids == [c.id for c in dag.plan(config, ROOT)]
        seen = set()
        for cell in cells:  # dependency order, and pretrain -> cotrain -> eval
            assert all(d in seen for d in cell.deps), cell.id
            seen.add(cell.id)
        evals = [c for c in cells if c.kind == "eval"]
        assert len(evals) == len(config.levels) * len(config.seeds) * len(config.targets) * len(config.human_weights)
    paper = load_study_config(os.path.join(ROOT, "experiments", "study", "paper.py"))
    assert list(paper.levels) == ["0", "0.25", "0.5", "0.75", "1.0", "1.0+other"]
    # Level 0 has no pretraining: its co-training starts from scratch, straight after the data.
    cells = {c.id: c for c in dag.plan(paper, ROOT)}
    assert cells["cotrain-d0.00-s0-sort_eggs-h0.00"].deps == ("data",)
    assert cells["cotrain-d0.50-s1-sort_eggs-h0.50"].deps == ("pretrain-d0.50-s1-trident_arm",)
    assert "--config.train.init_from=" + dag.in_study("pretrain-d0.50-s1-trident_arm") in \
        cells["cotrain-d0.50-s1-sort_eggs-h0.50"].commands[0]


@pytest.mark.parametrize("overrides, message", [
    (['--config.targets=("sort_eggs","sort_egs")'], "unknown target setting 'sort_egs'"),
    (['--config.levels=("0","0.5","1.5")'], "outside [0, 1]"),
    (["--config.levles=(0,)"], "config.levles"),
    (["--config.eval.episods=3"], "config.eval.episods"),
    (['--config.train.overrides=("train.stepz=3",)'], "train.stepz"),
    (['--config.human_weights=(0.5,)'], "must contain 0.0"),
])
def test_bad_study_config_fails_before_any_job_starts(tmp_path, overrides, message):
    study_dir = tmp_path / "S"
    proc = h2r_study("run", "--config", MICRO, "--workdir", str(study_dir), *fake_overrides(), *overrides)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (study_dir / "cells").exists()  # nothing planned, nothing ran


def test_typo_inside_a_config_file_is_named(tmp_path):
    path = tmp_path / "typo.py"
    path.write_text("from h2r.study.grid import base_config\n\n"
                    "def get_config():\n    c = base_config()\n    c.seeeds = (0,)\n    return c\n")
    proc = h2r_study("run", "--config", str(path), "--workdir", str(tmp_path / "S"))
    assert proc.returncode == 1
    assert "unknown key 'seeeds' (did you mean 'seeds'?)" in proc.stderr
    assert not (tmp_path / "S" / "cells").exists()


# ------------------------------------------------------------------------------ local executor

def test_failed_cell_blocks_its_dependents_and_a_rerun_finishes(tmp_path):
    study_dir = str(tmp_path / "S")
    proc = h2r_study("run", "--config", MICRO, "--workdir", study_dir, *fake_overrides(),
                     env={"FAKE_FAIL": "pretrain-"})
    assert proc.returncode == 1, proc.stderr
    _, cells = dag.load_study(study_dir)
    status = dag.summarize(study_dir, cells)["cells"]
    assert status["pretrain-d1.00-s0-trident_arm"] == "failed"
    assert status["eval-d0.00-s0-sort_eggs-h0.50"] == "done"          # the level-0 branch went on
    assert status["cotrain-d1.00-s0-sort_eggs-h0.50"] == "pending"    # blocked by the failure
    assert "failed" in h2r_study("status", "--workdir", study_dir).stdout
    before = invocations(study_dir)
    proc = h2r_study("run", "--workdir", study_dir)  # resume: the workdir remembers its config
    assert proc.returncode == 0, proc.stderr
    after = invocations(study_dir)
    assert all(after[c] == before[c] for c in before if c.startswith(("data", "eval-d0.00", "cotrain-d0.00")))
    assert len(after["pretrain-d1.00-s0-trident_arm"]) == 2  # the failed attempt and the retry
    assert all(dag.is_complete(study_dir, c.id) for c in cells)


def test_kill_the_runner_mid_study_then_rerun_runs_only_missing_cells(tmp_path):
    study_dir = str(tmp_path / "S")
    env = {"FAKE_STEP_SECONDS": "0.15"}
    runner = subprocess.Popen(
        [sys.executable, "-m", "h2r.cli", "study", "run", "--config", MICRO, "--workdir", study_dir, "--jobs", "2",
         *fake_overrides(**{"train.pretrain_steps": 100, "train.cotrain_steps": 10})],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pretrain = os.path.join(dag.cell_dir(study_dir, "pretrain-d1.00-s0-trident_arm"), "fake_step")
    deadline = time.time() + 60
    # Kill once the level-0 branch has a result and the pretraining run is half-way.
    while time.time() < deadline and not (dag.is_complete(study_dir, "eval-d0.00-s0-sort_eggs-h0.00")
                                          and os.path.exists(pretrain) and int(open(pretrain).read() or 0) >= 3):
        time.sleep(0.1)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    time.sleep(1.0)  # the cells die with the runner (SIGTERM from the kernel); let them finish dying
    _, cells = dag.load_study(study_dir)
    complete = {c.id for c in cells if dag.is_complete(study_dir, c.id)}
    assert "eval-d0.00-s0-sort_eggs-h0.00" in complete and len(complete) < len(cells)
    interrupted_at = int(open(pretrain).read())
    assert 0 < interrupted_at < 100
    assert dag.summarize(study_dir, cells)["counts"]["running"] == 0  # no orphan holds a cell
    before = invocations(study_dir)

    proc = h2r_study("run", "--workdir", study_dir, env=env)
    assert proc.returncode == 0, proc.stderr
    after = invocations(study_dir)
    for cell_id in complete:                       # complete cells did not run again
        assert after[cell_id] == before[cell_id], cell_id
    for cell in cells:                             # missing cells ran exactly once more
        if cell.id not in complete:
            assert len(after[cell.id]) - len(before.get(cell.id, [])) == len(cell.commands), cell.id
    log = open(os.path.join(dag.cell_dir(study_dir, "pretrain-d1.00-s0-trident_arm"), "log.txt")).read()
    assert f"resuming at step {interrupted_at} of 100" in log  # the trainer resumed its run
    results = json.load(open(os.path.join(study_dir, "report", "results.json")))
    ids = [c["id"] for c in results["cells"]]
    assert sorted(ids) == sorted(c.id for c in cells if c.kind == "eval") and not results["missing"]
    metrics = open(os.path.join(dag.cell_dir(study_dir, "pretrain-d1.00-s0-trident_arm"), "metrics.jsonl")).read()
    assert [json.loads(line)["step"] for line in metrics.splitlines()] == list(range(1, 101))


def test_changed_study_in_the_same_workdir_is_refused(tmp_path):
    study_dir = str(tmp_path / "S")
    assert h2r_study("run", "--config", MICRO, "--workdir", study_dir, "--no-report", *fake_overrides()).returncode == 0
    proc = h2r_study("run", "--config", MICRO, "--workdir", study_dir, *fake_overrides(**{"eval.episodes": 7}))
    assert proc.returncode == 1 and "planned with different commands" in proc.stderr


# ------------------------------------------------------------------------------ statistics

def test_gain_bootstrap_is_deterministic_covers_the_estimate_and_narrows_with_data():
    import numpy as np

    from h2r.eval import intervals
    from h2r.study.report import stats

    def interval(episodes, seeds, seed=0):
        data = np.random.default_rng(1)
        per_seed = [((data.random(episodes) < 0.7).astype(float), (data.random(episodes) < 0.4).astype(float))
                    for _ in range(seeds)]
        reps = intervals.hierarchical_bootstrap(per_seed, np.random.default_rng(seed), 2000)
        return stats.point_gain(per_seed), intervals.percentile_interval(reps)

    gain, (lo, hi) = interval(32, 3)
    assert lo <= gain <= hi and (lo, hi) == interval(32, 3)[1]
    assert interval(32, 3, seed=1)[1] != (lo, hi)
    _, (lo_big, hi_big) = interval(512, 3)
    assert hi_big - lo_big < (hi - lo) / 2
    gain_big, (lo_big, hi_big) = interval(512, 8)
    assert lo_big < 0.3 < hi_big  # the true gain, 0.7 - 0.4


def test_cells_share_the_studys_compilation_cache_unless_one_is_named(tmp_path, monkeypatch):
    from h2r.study.run import cell_env
    config = load_study_config(MICRO, ['--config.executor.env=("XLA_FLAGS=--x=1",)'])
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    env = cell_env(str(tmp_path), config)
    assert env == {"XLA_FLAGS": "--x=1", "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache")}
    # The user's own cache (in the environment or in executor.env) wins.
    named = load_study_config(MICRO, ['--config.executor.env=("JAX_COMPILATION_CACHE_DIR=/c",)'])
    assert cell_env(str(tmp_path), named)["JAX_COMPILATION_CACHE_DIR"] == "/c"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/mine")
    assert "JAX_COMPILATION_CACHE_DIR" not in cell_env(str(tmp_path), config)  # inherited as it is
