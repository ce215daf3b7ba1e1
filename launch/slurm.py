"""The SLURM executor: the study's DAG as sbatch jobs chained with dependencies.

Every cell runs as `h2r study cell --workdir S --id ID` inside a job, exactly as locally, so
locks, logs and result files are the same. Incomplete cells become jobs, grouped into arrays:

  data                          one job
  pretrain(level, seed)         one array, afterok:<data>
  cotrain(level, seed, ...)     one array per pretraining run, afterok:<pretrain array>_<task>
  eval(...)                     one array per co-training array, aftercorr:<that array> (task i
                                of the eval array starts when task i of the co-training array
                                succeeded; both use the same task ids)
  report                        one job, afterany:<everything>

Complete cells are not submitted and dependencies on them are dropped, so submitting the same
study again resumes it. Every job carries --kill-on-invalid-dep=yes: a job whose dependency
failed is cancelled instead of pending forever. Resources come from config.resources.<kind>;
a training job with nodes > 1 runs one task per node under srun, and the trainer starts
jax.distributed from SLURM's variables (h2r/train/distributed.py).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from typing import Any

import ml_collections

from h2r.errors import StudyError
from h2r.study import dag

KINDS = ("data", "pretrain", "cotrain", "eval")


def _sbatch_lines(res: ml_collections.ConfigDict, kind: str) -> list[str]:
    lines = [f"--cpus-per-task={res.cpus_per_task}", f"--time={res.time}"]
    if res.nodes > 1:
        lines += [f"--nodes={res.nodes}", "--ntasks-per-node=1"]
    else:
        lines += ["--nodes=1", "--ntasks=1"]
    if res.gpus_per_node:
        lines.append(f"--gres=gpu:{res.gpus_per_node}")
    if res.mem:
        lines.append(f"--mem={res.mem}")
    if res.partition:
        lines.append(f"--partition={res.partition}")
    return lines + list(res.extra)


def job_script(study_dir: str, name: str, kind: str, tasks: dict[int, str] | None, command: list[str],
               res: ml_collections.ConfigDict, env: dict[str, str]) -> str:
    """The sbatch script of one job (tasks=None) or one array (task id -> cell id)."""
    logs = os.path.join(study_dir, "slurm", "logs")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}",
             f"#SBATCH --output={logs}/%x-%A_%a.out" if tasks else f"#SBATCH --output={logs}/%x-%j.out",
             "#SBATCH --kill-on-invalid-dep=yes"]
    if tasks:
        lines.append(f"#SBATCH --array={','.join(str(i) for i in sorted(tasks))}")
    lines += [f"#SBATCH {line}" for line in _sbatch_lines(res, kind)]
    lines += ["set -euo pipefail"] + [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    if tasks:
        lines.append("declare -a CELLS=(" + " ".join(f"[{i}]={shlex.quote(c)}" for i, c in sorted(tasks.items())) + ")")
        command = [*command, "--id", "${CELLS[$SLURM_ARRAY_TASK_ID]}"]
    line = " ".join(a if a.startswith("${") else shlex.quote(a) for a in command)
    # One task per node under srun for multi-node training; jax.distributed reads SLURM_* there.
    lines.append(f"srun --ntasks-per-node=1 {line}" if res.nodes > 1 else f"exec {line}")
    return "\n".join(lines) + "\n"


def sbatch(script_path: str, dependency: str = "") -> str:
    argv = ["sbatch", "--parsable"] + ([f"--dependency={dependency}"] if dependency else []) + [script_path]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StudyError(f"sbatch {script_path} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip().split(";")[0]


def plan_jobs(study_dir: str, cells: list[dag.Cell]) -> list[dict[str, Any]]:
    """Groups incomplete cells into jobs: [{kind, tasks: {task id: cell id} | None (single job),
    deps: [(dep_kind, job_index, task id | None)], corr: job_index | None}] in submission order.
    Jobs refer to each other by their index in the returned list."""
    jobs: list[dict[str, Any]] = []
    where: dict[str, tuple[int, int | None]] = {}  # cell id -> (job index, task id or None)
    todo = [c for c in cells if not dag.is_complete(study_dir, c.id)]
    for kind in KINDS:
        groups: dict[tuple, list[dag.Cell]] = {}
        for cell in (c for c in todo if c.kind == kind):
            deps = tuple(sorted(where[d] for d in cell.deps if d in where))
            groups.setdefault(deps, []).append(cell)
        corr: dict[int, dict[int, str]] = {}  # parent job -> {task id: cell}: aftercorr arrays
        for deps, members in groups.items():
            if len(members) == 1 and len(deps) == 1 and deps[0][1] is not None and kind == "eval":
                corr.setdefault(deps[0][0], {})[deps[0][1]] = members[0].id
                continue
            if kind == "data":
                jobs.append(dict(kind=kind, tasks=None, deps=list(deps), corr=None))
                where[members[0].id] = (len(jobs) - 1, None)
                continue
            jobs.append(dict(kind=kind, tasks={i: c.id for i, c in enumerate(members)}, deps=list(deps), corr=None))
            for i, c in enumerate(members):
                where[c.id] = (len(jobs) - 1, i)
        for parent, tasks in corr.items():
            jobs.append(dict(kind=kind, tasks=tasks, deps=[], corr=parent))
            for i, cell_id in tasks.items():
                where[cell_id] = (len(jobs) - 1, i)
    return jobs


def submit(study_dir: str, cells: list[dag.Cell], config: ml_collections.ConfigDict,
           env: dict[str, str] | None = None, out=sys.stderr) -> list[str]:
    """Submits every incomplete cell and the report; returns the job ids."""
    study_dir = os.path.abspath(study_dir)
    for d in ("scripts", "logs"):
        os.makedirs(os.path.join(study_dir, "slurm", d), exist_ok=True)
    env = dict(env or {})
    cell_cmd = [sys.executable, "-m", "h2r.cli", "study", "cell", "--workdir", study_dir]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ids: list[str] = []
    for n, job in enumerate(plan_jobs(study_dir, cells)):
        name = f"h2r-{config.name}-{job['kind']}"
        command = cell_cmd + ([] if job["tasks"] else ["--id", "data"])
        script = job_script(study_dir, name, job["kind"], job["tasks"], command, config.resources[job["kind"]], env)
        path = os.path.join(study_dir, "slurm", "scripts", f"{stamp}-{n:03d}-{job['kind']}.sh")
        with open(path, "w") as f:
            f.write(script)
        if job["corr"] is not None:
            dependency = f"aftercorr:{ids[job['corr']]}"
        else:
            dependency = ":".join(["afterok"] + [ids[j] if t is None else f"{ids[j]}_{t}" for j, t in job["deps"]])
            dependency = "" if dependency == "afterok" else dependency
        ids.append(sbatch(path, dependency))
        count = len(job["tasks"]) if job["tasks"] else 1
        print(f"[slurm] {ids[-1]}: {job['kind']} x{count} {dependency}", file=out)
    report_script = job_script(study_dir, f"h2r-{config.name}-report", "report", None,
                               [sys.executable, "-m", "h2r.cli", "study", "report", "--workdir", study_dir],
                               config.resources.report, env)
    path = os.path.join(study_dir, "slurm", "scripts", f"{stamp}-report.sh")
    with open(path, "w") as f:
        f.write(report_script)
    ids.append(sbatch(path, "afterany:" + ":".join(ids) if ids else ""))
    print(f"[slurm] {ids[-1]}: report", file=out)
    with open(os.path.join(study_dir, "slurm", "submissions.txt"), "a") as f:
        f.write(f"{stamp} {' '.join(ids)}\n")
    return ids


def queued(job_ids: list[str]) -> list[str]:
    """Our jobs (or array tasks) still pending or running, per squeue."""
    proc = subprocess.run(["squeue", "-h", "-o", "%i %T", "-j", ",".join(job_ids)], capture_output=True, text=True)
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
        raise StudyError(f"squeue failed: {proc.stderr.strip()}")
    return [line for line in proc.stdout.splitlines() if line.strip()]


def run(study_dir: str, cells: list[dag.Cell], config: ml_collections.ConfigDict,
        env: dict[str, str] | None = None, wait: bool = False, poll_seconds: float = 2.0,
        out=sys.stderr) -> bool:
    ids = submit(study_dir, cells, config, env, out)
    if not wait:
        print(f"[slurm] submitted {len(ids)} jobs; follow with `h2r study status --workdir {study_dir}`", file=out)
        return False
    start = time.time()
    while remaining := queued(ids):
        status = dag.write_status(study_dir, cells, dict(executor="slurm", jobs=ids))
        c = status["counts"]
        print(f"\r[slurm] {c['done']}/{status['total']} cells done, {c['running']} running, {c['failed']} failed, "
              f"{len(remaining)} jobs queued | elapsed {int(time.time() - start)}s   ", end="", file=out, flush=True)
        time.sleep(poll_seconds)
    print(file=out)
    return all(dag.is_complete(study_dir, c.id) for c in cells)
