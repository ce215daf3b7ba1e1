"""`h2r study run` and `h2r study status`: validate, plan, hand the cells to an executor.

Everything that can be checked without running (config keys, levels, settings, the train
config accepting every override) is checked before the first cell starts.
"""
from __future__ import annotations

import importlib
import os
import sys

import ml_collections

from h2r.errors import StudyError
from h2r.study import dag, grid

# executor name -> module with `run(study_dir, cells, ...)` (installed as h2r.launch, from launch/).
EXECUTORS = {"local": "h2r.launch.local", "slurm": "h2r.launch.slurm"}


def load_config(path: str, overrides=()) -> ml_collections.ConfigDict:
    """h2r.config.load_config, with sys.argv holding the overrides while it parses: ml_collections
    1.1.0's config flag reads overrides from sys.argv unless given `sys_argv` (see
    /tmp/h2r_notes/CONTRACT_CHANGES.md); harmless once h2r.config passes them itself."""
    from h2r import config as h2r_config  # noqa: PLC0415

    saved = sys.argv
    sys.argv = ["h2r", f"--config={path}", *overrides]
    try:
        return h2r_config.load_config(path, overrides)
    finally:
        sys.argv = saved


def load_study_config(path: str, overrides=()) -> ml_collections.ConfigDict:
    from h2r.config import ConfigError  # noqa: PLC0415

    try:
        return load_config(path, overrides)
    except ConfigError as e:
        raise StudyError(str(e)) from None


def prepare(config_path: str | None, overrides, study_dir: str, root: str = ".") -> tuple[
        ml_collections.ConfigDict, list[dag.Cell]]:
    """Validates the study and writes S/study.json + cells/*/cell.json; nothing runs yet."""
    if config_path is None:
        if overrides:
            raise StudyError("config overrides need --config (the study's config file)")
        return dag.load_study(study_dir)
    config = load_study_config(config_path, overrides)
    grid.validate(config, root)
    cells = dag.plan(config, root)
    dag.check_train_overrides(config, cells, root)
    dag.save_study(study_dir, config, cells)
    return config, cells


def run_study(workdir: str, config_path: str | None = None, overrides=(), *, executor: str = "local",
              jobs: int = 0, wait: bool = False, report: bool = True) -> int:
    """`h2r study run`: plans (or reloads) the study in `workdir` and hands its cells to the
    executor; writes the report at the end unless `report` is False. Returns the exit code
    (0 when every cell is complete; a slurm run that does not wait returns 0 once submitted)."""
    study_dir = os.path.abspath(workdir)
    if config_path is None and not os.path.exists(os.path.join(study_dir, dag.STUDY_FILE)):
        raise StudyError(f"{study_dir} holds no study yet: pass --config experiments/study/<name>.py")
    config, cells = prepare(config_path, overrides, study_dir)
    counts = dag.summarize(study_dir, cells)["counts"]
    print(f"[study] {config.name}: {len(cells)} cells in {study_dir} ({counts['done']} already complete)",
          file=sys.stderr)
    module = importlib.import_module(EXECUTORS[executor])
    env = cell_env(study_dir, config)
    if executor == "local":
        complete = module.run(study_dir, cells, jobs=jobs or config.executor.jobs, env=env)
    else:
        complete = module.run(study_dir, cells, config, env=env, wait=wait)
        if not wait:
            return 0
    if report:
        from h2r.study import report as report_lib  # noqa: PLC0415

        path = report_lib.write_report(study_dir)
        print(f"[study] report: {path}", file=sys.stderr)
    return 0 if complete else 1


# Every cell compiles the same programs (one train step per preset, one rollout): a study-wide
# persistent compilation cache compiles each once. The cache key holds the program, the backend
# and the device kind, so mixed nodes and GPUs never share an executable.
COMPILATION_CACHE = "jax_cache"


def cell_env(study_dir: str, config: ml_collections.ConfigDict) -> dict[str, str]:
    """Environment every cell gets on top of the executor's: `executor.env`, and the study's
    compilation cache unless the caller (or executor.env) already names one."""
    env = dict(item.split("=", 1) for item in config.executor.env)
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(study_dir, COMPILATION_CACHE))
    return env


def status(workdir: str) -> tuple[ml_collections.ConfigDict, list[dag.Cell], dict]:
    """`h2r study status`: (config, cells, dag.summarize of the study in `workdir`)."""
    study_dir = os.path.abspath(workdir)
    config, cells = dag.load_study(study_dir)
    return config, cells, dag.summarize(study_dir, cells)
