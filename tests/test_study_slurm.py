"""The SLURM executor against a real single-node SLURM (slurmctld + slurmd + munge on localhost,
tests/slurm_cluster.py): the micro study's DAG as sbatch jobs and arrays chained with
afterok/aftercorr dependencies, then the report."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from h2r.launch import slurm as slurm_executor
from h2r.study import dag, grid
from h2r.study.run import load_study_config
from slurm_cluster import slurm_cluster  # noqa: F401  (fixture)
from test_study import MICRO, ROOT, fake_overrides, h2r_study, invocations
from test_study_e2e import assert_report_matches_cells, real_stack_overrides


def test_job_scripts_carry_resources_and_multi_node_training_uses_srun(tmp_path):
    config = load_study_config(MICRO)
    config.resources.pretrain = grid.resources(cpus=8, gpus=4, nodes=2, mem="64G", time="01:00:00", partition="gpu")
    script = slurm_executor.job_script(str(tmp_path), "h2r-x-pretrain", "pretrain", {0: "a", 3: "b"},
                                       ["python", "-m", "h2r.cli", "study", "cell", "--workdir", "S"],
                                       config.resources.pretrain, {"XLA_FLAGS": "--x=1"})
    for line in ("#SBATCH --array=0,3", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gres=gpu:4",
                 "#SBATCH --mem=64G", "#SBATCH --partition=gpu", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --kill-on-invalid-dep=yes", "declare -a CELLS=([0]=a [3]=b)", "export XLA_FLAGS=--x=1"):
        assert line in script, line
    # One task per node, so the trainer's jax.distributed start-up finds SLURM_NTASKS > 1.
    assert 'srun --ntasks-per-node=1 python -m h2r.cli study cell --workdir S --id ${CELLS[$SLURM_ARRAY_TASK_ID]}' \
        in script
    proc = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr


def _run_on_slurm(study_dir: str, overrides: list[str], timeout: int) -> subprocess.CompletedProcess:
    return h2r_study("run", "--config", MICRO, "--workdir", study_dir, "--executor", "slurm", "--wait",
                     *overrides, timeout=timeout)


def test_micro_study_on_slurm_executor(slurm_cluster, tmp_path):  # noqa: F811
    """Executor path with trivial stage commands: arrays, dependencies, resume by resubmission."""
    study_dir = str(tmp_path / "S")
    proc = _run_on_slurm(study_dir, fake_overrides(), timeout=180)
    assert proc.returncode == 0, proc.stderr
    _, cells = dag.load_study(study_dir)
    assert all(dag.is_complete(study_dir, c.id) for c in cells)
    scripts = sorted(os.listdir(os.path.join(study_dir, "slurm", "scripts")))
    kinds = [name.split("-")[-1][:-3] for name in scripts]
    assert kinds.count("data") == 1 and kinds.count("report") == 1
    eval_scripts = [open(os.path.join(study_dir, "slurm", "scripts", s)).read() for s in scripts if s.endswith("eval.sh")]
    assert all("#SBATCH --array=" in s for s in eval_scripts)  # eval cells go as arrays
    results = json.load(open(os.path.join(study_dir, "report", "results.json")))
    assert not results["missing"] and len(results["cells"]) == 4
    before = invocations(study_dir)
    # Resubmitting a complete study submits no cell, only the report, and runs nothing again.
    proc = _run_on_slurm(study_dir, fake_overrides(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert invocations(study_dir) == before
    assert proc.stderr.count("[slurm] ") >= 1 and "data x1" not in proc.stderr


def test_micro_study_on_real_slurm_real_stack(slurm_cluster, micro_dataset, tmp_path):  # noqa: F811
    # One level (pretrain -> two co-trainings -> two evals -> report): every stage runs as a SLURM
    # job on the real stack; the whole micro grid on the real stack is tests/test_study_e2e.py's.
    study_dir = str(tmp_path / "S")
    proc = _run_on_slurm(study_dir, [*real_stack_overrides(micro_dataset), '--config.levels=("1.0",)'], timeout=600)
    assert proc.returncode == 0, proc.stderr + "\n".join(
        open(os.path.join(dag.cell_dir(study_dir, c), "log.txt")).read()[-3000:]
        for c in os.listdir(os.path.join(study_dir, "cells")) if not dag.is_complete(study_dir, c))
    assert_report_matches_cells(study_dir)
    assert sys.executable  # the jobs ran this interpreter (python -m h2r.cli)
