"""Running one cell: `h2r study cell --workdir S --id ID` (what every executor launches).

The cell takes an exclusive lock on `S/cells/<id>/lock` for the whole attempt, so two
executors (a rerun while an old job still runs, a SLURM job submitted twice) never run the
same cell at once: the second waits, then finds the result and does nothing. The result file
is written last, atomically, and only after every command succeeded.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from h2r import files
from h2r.errors import StudyError
from h2r.study import dag

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed runner leaves no orphans
    (the trainer saves a checkpoint on SIGTERM; the rerun resumes from it). Linux only."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def spawn(argv: list[str], log_path: str, env: dict[str, str] | None = None,
          cwd: str | None = None) -> subprocess.Popen:
    """Starts argv (in `cwd`) with stdout+stderr appended to log_path; it dies when its parent does."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env={**os.environ, **(env or {})}, preexec_fn=_die_with_parent)
    finally:
        log.close()


def read_cell(study_dir: str, cell_id: str) -> dag.Cell:
    data = dag.read_json(os.path.join(dag.cell_dir(study_dir, cell_id), "cell.json"))
    if data is None:
        raise StudyError(f"no cell {cell_id!r} in study {study_dir!r} (missing cells/{cell_id}/cell.json)")
    return dag.Cell(data["id"], data["kind"], tuple(data["deps"]), tuple(tuple(c) for c in data["commands"]),
                    data["params"])


def _last_json_line(path: str) -> dict[str, Any] | None:
    import json  # noqa: PLC0415

    last = None
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    last = line
    except FileNotFoundError:
        return None
    try:
        return json.loads(last) if last else None
    except ValueError:
        return None


def collect_result(study_dir: str, cell: dag.Cell) -> dict[str, Any]:
    """What the cell's commands produced, gathered into its result.json."""
    here = dag.cell_dir(study_dir, cell.id)
    result: dict[str, Any] = dict(id=cell.id, kind=cell.kind, params=cell.params, finished=time.time())
    if cell.kind in ("pretrain", "cotrain"):
        final = _last_json_line(os.path.join(here, "metrics.jsonl"))
        steps = next((int(a.split("=", 1)[1]) for a in cell.commands[0] if a.startswith("--config.train.steps=")), None)
        # A trainer that exits 0 before its last step must not make the cell look complete.
        if final is None or (steps is not None and final.get("step") != steps):
            raise StudyError(f"cell {cell.id}: training exited 0 but {here}/metrics.jsonl ends at step "
                             f"{None if final is None else final.get('step')}, expected {steps}")
        result["final_metrics"] = final
    elif cell.kind == "eval":
        evaluation = dag.read_json(os.path.join(here, "eval.json"))
        if evaluation is None:
            raise StudyError(f"cell {cell.id}: `h2r eval` succeeded but wrote no {here}/eval.json")
        result["eval"] = evaluation
        result["eval_target_robot"] = dag.read_json(os.path.join(here, dag.IN_DISTRIBUTION))
        emb_dir = os.path.join(here, "embeddings")
        result["embeddings"] = dag.read_json(os.path.join(emb_dir, "embeddings.json"))
        tsne = os.path.join(emb_dir, "tsne.png")
        result["tsne"] = os.path.relpath(tsne, here) if os.path.exists(tsne) else None
    return result


def run_cell(study_dir: str, cell_id: str, env: dict[str, str] | None = None) -> int:
    """Runs the cell's commands unless it is complete; returns the exit code (0 = done)."""
    study_dir = os.path.abspath(study_dir)
    cell = read_cell(study_dir, cell_id)
    here = dag.cell_dir(study_dir, cell.id)
    # Multi-node training under srun: every task runs the trainer; task 0 owns the cell's files.
    rank = int(os.environ.get("SLURM_PROCID", "0"))
    if rank > 0:
        if dag.is_complete(study_dir, cell.id):
            return 0
        return _run_commands(cell, study_dir, os.path.join(here, f"log.rank{rank}.txt"), env)
    with open(os.path.join(here, "lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits for any other attempt at this cell
        if dag.is_complete(study_dir, cell.id):
            return 0
        missing = [d for d in cell.deps if not dag.is_complete(study_dir, d)]
        if missing:
            raise StudyError(f"cell {cell.id}: dependencies not complete: {missing}")
        state_path = os.path.join(here, "state.json")
        started = time.time()
        files.write_json(state_path, dict(state="running", pid=os.getpid(), host=socket.gethostname(),
                                               started=started, job=os.environ.get("SLURM_JOB_ID")))
        log_path = os.path.join(here, "log.txt")
        with open(log_path, "a") as log:
            log.write(f"\n=== attempt at {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}\n")
        code = _run_commands(cell, study_dir, log_path, env)
        try:
            result = collect_result(study_dir, cell) if code == 0 else None
        except StudyError as e:
            with open(log_path, "a") as log:
                log.write(f"h2r study: {e}\n")
            code = 1
        if code != 0:
            files.write_json(state_path, dict(state="failed", returncode=code, started=started,
                                                   finished=time.time(), log=log_path))
            return code
        result["seconds"] = time.time() - started
        files.write_json(dag.result_path(study_dir, cell.id), result)  # last: the cell is complete
        files.write_json(state_path, dict(state="done", started=started, finished=time.time()))
        return 0


def _run_commands(cell: dag.Cell, study_dir: str, log_path: str, env: dict[str, str] | None) -> int:
    """The cell's commands in order, in the study directory (their paths are relative to it)."""
    for argv in cell.commands:
        with open(log_path, "a") as log:
            log.write("$ " + " ".join(argv) + "\n")
        proc = spawn(list(argv), log_path, env, cwd=study_dir)
        # Forward a SIGTERM (scancel, a stopping runner) so the trainer can checkpoint.
        previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        try:
            code = proc.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
        if code != 0:
            with open(log_path, "a") as log:
                log.write(f"exit code {code}\n")
            return code
    return 0


if __name__ == "__main__":
    sys.exit(run_cell(sys.argv[1], sys.argv[2]))
