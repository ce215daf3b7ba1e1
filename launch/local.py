"""The local executor: the study's cells as bounded parallel subprocesses on this machine.

Each cell runs as `h2r study cell --workdir S --id ID` (h2r.study.cell), which owns the cell's
lock, log and result file. This module only decides what runs when: a cell starts when all its
dependencies are complete and fewer than `jobs` cells are running; a failed cell blocks its
dependents and the rest of the grid goes on. Complete cells are skipped, so rerunning the same
command resumes the study; killing this process kills its cells (they die with their parent,
the trainer checkpointing on SIGTERM) and loses nothing complete.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

from h2r.study import dag
from h2r.study.cell import spawn


# Start order among ready cells: pretraining is on every path to a result, evaluation is cheap.
KIND_ORDER = {"data": 0, "pretrain": 1, "cotrain": 2, "eval": 3}


def cell_command(study_dir: str, cell_id: str) -> list[str]:
    return [sys.executable, "-m", "h2r.cli", "study", "cell", "--workdir", study_dir, "--id", cell_id]


def _fmt(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def _eta(pending: list[dag.Cell], running: dict, durations: dict[str, list[float]], jobs: int) -> str:
    """Mean observed duration per kind (or over all kinds) x remaining cells / parallelism."""
    all_durations = [d for ds in durations.values() for d in ds]
    if not all_durations:
        return "?"
    mean = lambda kind: (sum(durations[kind]) / len(durations[kind])) if durations.get(kind) else \
        sum(all_durations) / len(all_durations)  # noqa: E731
    now = time.time()
    work = sum(mean(c.kind) for c in pending)
    work += sum(max(0.0, mean(cell.kind) - (now - start)) for cell, _, start in running.values())
    return _fmt(work / max(1, min(jobs, len(pending) + len(running))))


def run(study_dir: str, cells: list[dag.Cell], jobs: int = 2, env: dict[str, str] | None = None,
        poll_seconds: float = 0.5, out=sys.stderr) -> bool:
    """Runs every incomplete cell; returns True when all cells are complete."""
    study_dir = os.path.abspath(study_dir)
    by_id = {c.id: c for c in cells}
    done = {c.id for c in cells if dag.is_complete(study_dir, c.id)}
    skipped = len(done)
    failed: set[str] = set()
    running: dict[str, tuple[dag.Cell, subprocess.Popen, float]] = {}
    durations: dict[str, list[float]] = {}
    started_at = time.time()
    last_status = last_line = 0.0
    interactive = bool(getattr(out, "isatty", lambda: False)())

    def blocked(cell: dag.Cell) -> bool:
        return any(d in failed or (d in by_id and blocked(by_id[d])) for d in cell.deps)

    try:
        while True:
            waiting = sorted((c for c in cells if c.id not in done and c.id not in failed
                              and c.id not in running and not blocked(c)), key=lambda c: KIND_ORDER[c.kind])
            for cell in waiting:
                if len(running) >= jobs:
                    break
                if all(d in done for d in cell.deps):
                    log = os.path.join(dag.cell_dir(study_dir, cell.id), "log.txt")
                    running[cell.id] = (cell, spawn(cell_command(study_dir, cell.id), log, env), time.time())
            if not running:
                break
            time.sleep(poll_seconds)
            for cell_id, (cell, proc, start) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[cell_id]
                if proc.returncode == 0 and dag.is_complete(study_dir, cell_id):
                    done.add(cell_id)
                    durations.setdefault(cell.kind, []).append(time.time() - start)
                else:
                    failed.add(cell_id)
                    print(f"\ncell {cell_id} failed (exit {proc.returncode}); log: "
                          f"{dag.cell_dir(study_dir, cell_id)}/log.txt", file=out)
            if time.time() - last_status > 2.0 or not running:
                last_status = time.time()
                pending = [c for c in cells if c.id not in done and c.id not in failed and c.id not in running
                           and not blocked(c)]
                dag.write_status(study_dir, cells, dict(executor="local", runner_pid=os.getpid()))
                line = (f"[study] {len(done)}/{len(cells)} cells done ({skipped} before this run), "
                        f"{len(running)} running, {len(failed)} failed | elapsed "
                        f"{_fmt(time.time() - started_at)} ETA {_eta(pending, running, durations, jobs)}")
                # A terminal gets one line redrawn in place; a log file gets a line every 30 s.
                if interactive:
                    print(f"\r{line}   ", end="", file=out, flush=True)
                elif time.time() - last_line > 30.0 or not running:
                    last_line = time.time()
                    print(line, file=out, flush=True)
    finally:
        for cell, proc, _ in running.values():  # stopped early (Ctrl-C, an exception): stop our cells
            proc.terminate()
        for cell, proc, _ in running.values():
            proc.wait()
        dag.write_status(study_dir, cells, dict(executor="local"))
        if interactive:
            print(file=out)  # end the line redrawn in place
    stuck = [c.id for c in cells if c.id not in done]
    if stuck:
        print(f"[study] incomplete: {len(stuck)} cells ({len(failed)} failed, the rest blocked by them); "
              "rerun the same command to retry", file=out)
    return not stuck
