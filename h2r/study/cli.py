"""`h2r study ...`: run the emergence grid, see where it stands, write its report.

This file declares the arguments and prints; the study functions take plain values and are
imported inside the handlers so `h2r --help` stays instant.
"""
from __future__ import annotations

import os


def _run(args) -> int:
    from h2r.study import run  # noqa: PLC0415

    return run.run_study(args.workdir, args.config, args.config_overrides, executor=args.executor,
                         jobs=args.jobs, wait=args.wait, report=not args.no_report)


def _status(args) -> int:
    from h2r.study import dag, run  # noqa: PLC0415
    from h2r.study.report import power  # noqa: PLC0415

    config, cells, status = run.status(args.workdir)
    study_dir = os.path.abspath(args.workdir)
    print(f"study {config.name} in {study_dir}: {status['total']} cells, " +
          ", ".join(f"{n} {k}" for k, n in status["counts"].items()))
    for kind in ("data", "pretrain", "cotrain", "eval"):
        ids = [c.id for c in cells if c.kind == kind]
        if ids:
            done = sum(status["cells"][i] == "done" for i in ids)
            print(f"  {kind:9s} {done}/{len(ids)} done")
    for cell_id, state in status["cells"].items():
        if state in ("running", "failed") or args.verbose:
            print(f"  {state:8s} {cell_id}  ({dag.cell_dir(study_dir, cell_id)}/log.txt)")
    print("  " + power.sizing_line(len(config.seeds), len(config.targets), int(config.eval.episodes)))
    return 0


def _report(args) -> int:
    from h2r.study import report  # noqa: PLC0415

    print(report.write_report(args.workdir))
    return 0


def _cell(args) -> int:
    from h2r.study import cell  # noqa: PLC0415

    return cell.run_cell(args.workdir, args.id)


RUN_HELP = """\
Runs a study: data generation (unless data.dir is given), robot pretraining at each diversity
level and seed, co-training on each target setting with and without human data, closed-loop
evaluation, and the report (S/report/index.html). Each cell is a run directory under
S/cells/; rerunning the same command skips complete cells, resumes interrupted training from
its checkpoints and retries failed cells. Override config keys with --config.key=value, e.g.
--config.seeds='(0,1)' --config.eval.episodes=16.
"""


def register(subparsers) -> None:
    study = subparsers.add_parser(
        "study", help="run the emergence grid and report the emergence curve",
        description="The study: diversity levels x seeds x target settings x human data on/off.")
    sub = study.add_subparsers(dest="study_command", metavar="STUDY_COMMAND", required=True)

    p = sub.add_parser("run", help="run (or resume) a study", description=RUN_HELP)
    p.add_argument("--config", help="study config, e.g. experiments/study/tiny.py (optional when "
                                    "resuming: the workdir remembers it)")
    p.add_argument("--workdir", required=True, help="study directory S")
    p.add_argument("--executor", choices=["local", "slurm"], default="local",
                   help="local: parallel processes on this machine; slurm: sbatch jobs with dependencies")
    p.add_argument("--jobs", type=int, default=0, help="local executor: cells at once (default: config)")
    p.add_argument("--wait", action="store_true",
                   help="slurm: wait for the jobs to finish, then write the report here")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.set_defaults(func=_run, accepts_config_overrides=True)

    p = sub.add_parser("status", help="cells done / running / failed / pending",
                       description="Reads the study directory (result files are the truth) and prints "
                                   "how many cells of each kind are complete, and which failed.")
    p.add_argument("--workdir", required=True, help="study directory S")
    p.add_argument("-v", "--verbose", action="store_true", help="list every cell")
    p.set_defaults(func=_status)

    p = sub.add_parser("report", help="write S/report (index.html, results.json/csv, curve PNG)",
                       description="Collects every complete eval cell, computes the emergence curve "
                                   "(gain from human data vs diversity, bootstrap intervals over seeds and "
                                   "episodes), and writes a self-contained HTML report with the numbers.")
    p.add_argument("--workdir", required=True, help="study directory S")
    p.set_defaults(func=_report)

    p = sub.add_parser("cell", help="run one cell (what the executors launch)",
                       description="Runs one cell's commands under its lock and writes its result file. "
                                   "Executors call this; a user rarely needs it.")
    p.add_argument("--workdir", required=True, help="study directory S")
    p.add_argument("--id", required=True, help="cell id, e.g. pretrain-d0.50-s0")
    p.set_defaults(func=_cell)
