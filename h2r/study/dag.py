"""The study as a DAG of cells: data -> pretrain(level, seed) -> cotrain(level, seed, target,
human weight) -> eval. Each cell is a run directory `S/cells/<id>/` holding

  cell.json    what the cell is: its kind, parameters, dependencies and exact commands
  state.json   the last attempt: running (pid, host) or failed (exit code); advisory only
  log.txt      the commands' output, appended by every attempt
  result.json  written last, atomically: the cell is complete iff this file exists

plus whatever its commands write (a training run directory, eval outputs). Cell ids are
stable: they are made of the cell's parameters, never of positions in a list, so a rerun (or
a changed grid) finds every finished cell again.

Commands name everything inside the study relative to S (`cells/<id>/...`) and run with S as
their working directory, so a study copied or moved elsewhere reruns and reports there and
never writes into the original.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, Iterable

import ml_collections

from h2r import files
from h2r.errors import DataError, StudyError
from h2r.study import grid

STUDY_FILE = "study.json"
STATUS_FILE = "status.json"


@dataclasses.dataclass(frozen=True)
class Cell:
    id: str
    kind: str                  # data | pretrain | cotrain | eval
    deps: tuple[str, ...]
    commands: tuple[tuple[str, ...], ...]
    params: dict[str, Any]     # level, seed, target, human_weight (what the report groups by)

    def to_json(self) -> dict[str, Any]:
        return dict(id=self.id, kind=self.kind, deps=list(self.deps),
                    commands=[list(c) for c in self.commands], params=self.params)


# ------------------------------------------------------------------------------------ files

def read_json(path: str, default: Any = None, hint: str = "restore it, or delete it to plan it again") -> Any:
    """Parsed JSON; `default` when the file is missing; a StudyError naming a file that does not parse."""
    if not os.path.exists(path):
        return default
    try:
        return files.read_json(path, "study file", hint)
    except DataError as e:
        raise StudyError(str(e)) from None


def cell_dir(study_dir: str, cell_id: str) -> str:
    return os.path.join(study_dir, "cells", cell_id)


def in_study(cell_id: str, *parts: str) -> str:
    """A path inside the study as its commands name it: relative to S (their working directory)."""
    return os.path.join("cells", cell_id, *parts)


def result_path(study_dir: str, cell_id: str) -> str:
    return os.path.join(cell_dir(study_dir, cell_id), "result.json")


def read_result(study_dir: str, cell_id: str) -> dict | None:
    """The cell's result, or None while it has none that parses (a truncated result.json, e.g.
    from a full disk, means the cell is not done: it runs again)."""
    try:
        return read_json(result_path(study_dir, cell_id))
    except StudyError:
        return None


def is_complete(study_dir: str, cell_id: str) -> bool:
    return read_result(study_dir, cell_id) is not None


# ------------------------------------------------------------------------------------ the plan

def h2r_command(config: ml_collections.ConfigDict) -> list[str]:
    # `python -m h2r.cli` with this interpreter: works under sbatch without PATH set-up.
    return list(config.executor.h2r) or [sys.executable, "-m", "h2r.cli"]


def _overrides(items: dict[str, Any] | Iterable[str]) -> list[str]:
    if isinstance(items, dict):
        return [f"--config.{k}={_format(v)}" for k, v in items.items()]
    return [f"--config.{item}" for item in items]


def _format(value: Any) -> str:
    return str(value) if not isinstance(value, str) else value


def _weight_slug(w: float) -> str:
    return f"h{float(w):.2f}"


def data_dir(config: ml_collections.ConfigDict, root: str) -> str:
    if config.data.dir:
        return os.path.abspath(os.path.join(root, config.data.dir))
    return in_study("data", "rlds")


def pretrain_overrides(config, level: grid.Level, seed: int, data: str, target: str) -> list[str]:
    """`target` only names the target robot (the pipeline looks the robot up by setting)."""
    data_keys = {f"data.{k}": v for k, v in level.data_overrides().items()}
    return _overrides({"train.steps": config.train.pretrain_steps, "data.dir": data, "data.kind": "pretrain",
                       "data.target": target,
                       **{k: seed for k in config.train.seed_keys}, "data.use_wrist": config.use_wrist, **data_keys}) + \
        _overrides(config.train.overrides) + _overrides(config.train.pretrain_overrides)


def cotrain_overrides(config, target: str, weight: float, seed: int, data: str, init_from: str) -> list[str]:
    keys = {"train.steps": config.train.cotrain_steps, "data.dir": data, "data.kind": "cotrain",
            "data.target": target, "data.human": float(weight) > 0, **{k: seed for k in config.train.seed_keys},
            "data.human_loss": config.human_loss, "data.use_wrist": config.use_wrist,
            "train.init_from": init_from}
    if float(weight) > 0:
        keys["data.human_weight"] = float(weight)
    return _overrides(keys) + _overrides(config.train.overrides) + _overrides(config.train.cotrain_overrides)


# Robot-only eval cells also evaluate the target robot on its own co-training task (in
# distribution): the report shows it beside the held-out result, so a reader sees whether the
# baseline works before reading a gain.
IN_DISTRIBUTION = "eval_target_robot.json"


def _cotrain_and_eval(config, h2r, train_config, data, level, seed, target, pre_id, base,
                      data_deps) -> list[Cell]:
    cells = []
    for weight in config.human_weights:
        suffix = f"{level.slug}-s{seed}-{target}-{_weight_slug(weight)}"
        co_id, ev_id = f"cotrain-{suffix}", f"eval-{suffix}"
        co_dir = in_study(co_id)
        params = dict(base, target=target, human_weight=float(weight))
        init_from = in_study(pre_id) if level.pretrains else ""
        cells.append(Cell(co_id, "cotrain", (pre_id,) if level.pretrains else data_deps, (
            (*h2r, "train", "--config", train_config, "--workdir", co_dir,
             *cotrain_overrides(config, target, weight, seed, data, init_from)),), params))
        commands = [(*h2r, "eval", "--workdir", co_dir, "--setting", target, "--episodes",
                     str(config.eval.episodes), "--out", in_study(ev_id, "eval.json"), *config.eval.extra_args)]
        if float(weight) == 0:  # robot-only: is the policy competent at its own task at all?
            commands.append((*h2r, "eval", "--workdir", co_dir, "--setting", f"{target}:target-robot",
                             "--episodes", str(config.eval.episodes), "--record", "0",
                             "--out", in_study(ev_id, IN_DISTRIBUTION), *config.eval.extra_args))
        if config.eval.embeddings and float(weight) > 0:
            commands.append((*h2r, "eval", "embeddings", "--workdir", co_dir, "--out", in_study(ev_id, "embeddings")))
        cells.append(Cell(ev_id, "eval", (co_id,), tuple(commands), params))
    return cells


def plan(config: ml_collections.ConfigDict, root: str = ".") -> list[Cell]:
    """All cells of the study in dependency order (every cell after its dependencies); paths
    inside the study are relative to it (see `in_study`), so the plan does not depend on where
    the study lives."""
    h2r = h2r_command(config)
    train_config = os.path.abspath(os.path.join(root, config.train.config))
    data = data_dir(config, root)
    cells: list[Cell] = []
    data_deps: tuple[str, ...] = ()
    if not config.data.dir:
        cells.append(Cell("data", "data", (), (
            (*h2r, "data", "generate", "--config", os.path.abspath(os.path.join(root, config.data.config)),
             "--out", data, "--overwrite", *_overrides(config.data.overrides)),), {}))
        data_deps = ("data",)
    levels = [grid.parse_level(s) for s in config.levels]
    # Pretraining is the target robot's mixture at a level: shared by the targets of one robot.
    robots = grid.target_robots(config.targets)
    for level in levels:
        for seed in config.seeds:
            base = dict(level=level.label, level_index=levels.index(level), seed=int(seed))
            for robot, robot_targets in robots.items():
                pre_id = f"pretrain-{level.slug}-s{seed}-{robot}"
                if level.pretrains:
                    cells.append(Cell(pre_id, "pretrain", data_deps, (
                        (*h2r, "train", "--config", train_config, "--workdir", in_study(pre_id),
                         *pretrain_overrides(config, level, int(seed), data, robot_targets[0])),),
                        dict(base, robot=robot)))
                for target in robot_targets:
                    cells.extend(_cotrain_and_eval(config, h2r, train_config, data, level, int(seed),
                                                   target, pre_id, dict(base, robot=robot), data_deps))
    return cells


def check_train_overrides(config: ml_collections.ConfigDict, cells: list[Cell], root: str = ".") -> None:
    """Loads the train config with each kind of cell's overrides: a key the trainer does not
    know (e.g. a factorial axis the pipeline lacks) fails here, not an hour into the study."""
    from h2r.config import ConfigError  # noqa: PLC0415
    from h2r.study.run import load_config  # noqa: PLC0415

    seen: set[tuple[str, ...]] = set()
    for cell in cells:
        if cell.kind not in ("pretrain", "cotrain"):
            continue
        argv = cell.commands[0]
        overrides = tuple(sorted(a.split("=", 1)[0] for a in argv if a.startswith("--config.")))
        if overrides in seen:
            continue
        seen.add(overrides)
        path = argv[argv.index("--config") + 1]
        try:
            load_config(path, [a for a in argv if a.startswith("--config.")])
        except ConfigError as e:
            raise StudyError(f"study config: the {cell.kind} runs (e.g. cell {cell.id}) cannot use train "
                             f"config {path}: {e}") from None


def load_study(study_dir: str) -> tuple[ml_collections.ConfigDict, list[Cell]]:
    """The study written by `h2r study run` into S/study.json."""
    study = read_json(os.path.join(study_dir, STUDY_FILE), hint="rerun `h2r study run --config ... "
                      f"--workdir {study_dir}` with the study's config to write it again")
    if study is None:
        raise StudyError(f"{study_dir!r} is not a study directory: {STUDY_FILE} is missing "
                         "(create it with `h2r study run --config ... --workdir ...`)")
    cells = [Cell(c["id"], c["kind"], tuple(c["deps"]), tuple(tuple(x) for x in c["commands"]), c["params"])
             for c in study["cells"]]
    return ml_collections.ConfigDict(study["config"]), cells


def save_study(study_dir: str, config: ml_collections.ConfigDict, cells: list[Cell]) -> None:
    """Writes S/study.json and each cell's cell.json. A cell already on disk must be the same
    cell (same commands): otherwise the directory belongs to another study and we stop."""
    os.makedirs(os.path.join(study_dir, "cells"), exist_ok=True)
    for cell in cells:
        path = os.path.join(cell_dir(study_dir, cell.id), "cell.json")
        old = read_json(path)
        if old is not None and old != cell.to_json():
            raise StudyError(f"cell {cell.id} in {study_dir} was planned with different commands "
                             f"({path}); use a new --workdir for a changed study, or delete that cell")
    for cell in cells:
        os.makedirs(cell_dir(study_dir, cell.id), exist_ok=True)
        files.write_json(os.path.join(cell_dir(study_dir, cell.id), "cell.json"), cell.to_json())
    files.write_json(os.path.join(study_dir, STUDY_FILE),
                      dict(config=config.to_dict(), cells=[c.to_json() for c in cells]))


# ------------------------------------------------------------------------------------ states

def cell_state(study_dir: str, cell: Cell) -> str:
    """done | running | failed | pending, from the files (result.json is the only truth for done)."""
    if is_complete(study_dir, cell.id):
        return "done"
    try:  # advisory only: an unreadable state.json means nothing
        state = read_json(os.path.join(cell_dir(study_dir, cell.id), "state.json"), {})
    except StudyError:
        state = {}
    if state.get("state") == "running" and _attempt_alive(study_dir, cell.id):
        return "running"
    if state.get("state") == "failed":
        return "failed"
    return "pending"


def _attempt_alive(study_dir: str, cell_id: str) -> bool:
    """A running attempt holds the cell's lock; a dead one (killed runner) no longer does."""
    return files.is_locked(os.path.join(cell_dir(study_dir, cell_id), "lock"))


def summarize(study_dir: str, cells: list[Cell]) -> dict[str, Any]:
    states = {c.id: cell_state(study_dir, c) for c in cells}
    counts = {s: sum(1 for v in states.values() if v == s) for s in ("done", "running", "failed", "pending")}
    return dict(time=time.time(), total=len(cells), counts=counts, cells=states)


def write_status(study_dir: str, cells: list[Cell], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    status = summarize(study_dir, cells)
    status.update(extra or {})
    files.write_json(os.path.join(study_dir, STATUS_FILE), status)
    return status
