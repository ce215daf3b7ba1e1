"""A study config -> the grid of its cells, validated before anything runs.

A study config (experiments/study/*.py) starts from `base_config()` and changes values. The
grid is diversity level x seed (pretraining), then x target setting x human-data weight
(co-training and evaluation). Every mistake we can see without running anything — an unknown
setting, a level outside [0, 1], a typo'd key, a train override the train config lacks — is a
`StudyError` raised here, before a single job starts.

Level syntax (one string per level, in the order the report shows them):
  "0.5"            fraction of the target robot's scene x task pretraining catalogue
  "1.0+other"      the same, plus the other robot embodiments' data
  "scenes:0.5"     factorial axes: vary one factor alone (see AXIS_DATA_KEYS)
  "0"              no robot pretraining: co-training starts from initialization
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from typing import Any

import ml_collections

from h2r.errors import StudyError

# Level axis -> the data config key (config.data.<key>) the pretraining mixture reads.
# "diversity" is the paper's joint scenes x tasks fraction; the others are the factorial axes.
AXIS_DATA_KEYS = {
    "diversity": "diversity",
    "scenes": "scene_diversity",
    "tasks": "task_diversity",
    "embodiments": "embodiment_diversity",
}
OTHER_SUFFIX = "+other"
HUMAN_LOSSES = ("both", "subtask", "action")


def resources(cpus: int = 1, gpus: int = 0, nodes: int = 1, mem: str = "", time: str = "02:00:00",
              partition: str = "") -> ml_collections.ConfigDict:
    """SLURM resources of one kind of job (per node when nodes > 1)."""
    return ml_collections.ConfigDict(dict(
        cpus_per_task=cpus, gpus_per_node=gpus, nodes=nodes, mem=mem, time=time, partition=partition,
        # Extra `#SBATCH` lines, verbatim (e.g. "--account=abc", "--qos=high").
        extra=()))


def base_config() -> ml_collections.ConfigDict:
    """Every key a study config may set, with the paper's defaults; see experiments/study/paper.py."""
    c = ml_collections.ConfigDict()
    c.name = "study"
    c.data = ml_collections.ConfigDict(dict(
        dir="",                                # existing RLDS directory; "" = generate one in the study
        config="experiments/data/tiny.py",     # data config used when generating
        overrides=(),                          # e.g. ("episodes_per_combination=2",)
    ))
    c.train = ml_collections.ConfigDict(dict(
        config="experiments/train/tiny.py",
        pretrain_steps=1000,
        cotrain_steps=500,
        overrides=(),                          # applied to every training run, e.g. ("model.width=64",)
        pretrain_overrides=(),
        cotrain_overrides=(),
        seed_keys=("train.seed", "data.seed"),  # train config keys that take the cell's seed
    ))
    c.levels = ("0", "0.25", "0.5", "0.75", "1.0", "1.0+other")
    c.seeds = (0, 1, 2)
    c.targets = ("sort_eggs", "tidy_new_scenes", "bussing_new_objects")
    # Human-data weight in the co-training mixture; 0.0 = without human data. The gain is
    # success(w) - success(0) for every w > 0.
    c.human_weights = (0.0, 0.5)
    c.human_loss = "both"
    c.use_wrist = True
    c.eval = ml_collections.ConfigDict(dict(
        episodes=64,
        embeddings=True,                       # `h2r eval embeddings` on every cell with human data
        extra_args=(),                         # appended to `h2r eval ...`
    ))
    c.report = ml_collections.ConfigDict(dict(bootstrap_samples=2000, bootstrap_seed=0))
    c.executor = ml_collections.ConfigDict(dict(
        jobs=2,                                # local executor: cells run at once
        h2r=(),                                # the h2r command; () = this Python's `-m h2r.cli`
        env=(),                                # extra "KEY=VALUE" for every cell
    ))
    c.resources = ml_collections.ConfigDict(dict(
        data=resources(cpus=2), pretrain=resources(cpus=2), cotrain=resources(cpus=2),
        eval=resources(cpus=2), report=resources(cpus=1, time="00:20:00")))
    return c


def paper_config() -> ml_collections.ConfigDict:
    """The paper's grid (experiments/study/paper.py; factorial.py and human_scaling.py vary it)."""
    config = base_config()
    config.update_from_flattened_dict({
        "name": "paper", "data.config": "experiments/data/base.py", "train.config": "experiments/train/base.py",
        "train.pretrain_steps": 20000, "train.cotrain_steps": 5000,
        "levels": ("0", "0.25", "0.5", "0.75", "1.0", "1.0+other"), "seeds": (0, 1, 2),
        "targets": ("sort_eggs", "tidy_new_scenes", "bussing_new_objects"), "human_weights": (0.0, 0.5),
        "eval.episodes": 200, "report.bootstrap_samples": 5000})
    config.resources.data = resources(cpus=16, time="04:00:00")
    config.resources.pretrain = resources(cpus=8, gpus=1, mem="64G", time="12:00:00")
    config.resources.cotrain = resources(cpus=8, gpus=1, mem="64G", time="06:00:00")
    config.resources.eval = resources(cpus=8, gpus=1, mem="32G", time="02:00:00")
    return config


@dataclasses.dataclass(frozen=True)
class Level:
    """One pretraining level: an axis, a fraction, and whether other robots are added."""
    spec: str
    axis: str
    fraction: float
    other_embodiments: bool

    @property
    def label(self) -> str:
        """As the config wrote it: the report's x-axis tick."""
        return self.spec.strip()

    @property
    def slug(self) -> str:
        """Filesystem-safe, stable: 'd0.50', 'd1.00+other', 'scenes0.50'."""
        axis = "d" if self.axis == "diversity" else self.axis
        return f"{axis}{self.fraction:.2f}{OTHER_SUFFIX if self.other_embodiments else ''}"

    @property
    def pretrains(self) -> bool:
        """Level 0 of the diversity axis means no robot pretraining at all."""
        return self.fraction > 0 or self.other_embodiments or self.axis != "diversity"

    def data_overrides(self) -> dict[str, Any]:
        return {AXIS_DATA_KEYS[self.axis]: self.fraction, "other_embodiments": self.other_embodiments}


def parse_level(spec: str) -> Level:
    text = str(spec).strip()
    other = text.endswith(OTHER_SUFFIX)
    if other:
        text = text[: -len(OTHER_SUFFIX)]
    axis, _, value = text.rpartition(":")
    axis = axis or "diversity"
    if axis not in AXIS_DATA_KEYS:
        raise StudyError(f"level {spec!r}: unknown axis {axis!r}; expected one of {sorted(AXIS_DATA_KEYS)}")
    try:
        fraction = float(value)
    except ValueError:
        raise StudyError(f"level {spec!r}: {value!r} is not a number; levels look like '0.5', "
                         f"'1.0+other' or 'scenes:0.5'") from None
    if not 0.0 <= fraction <= 1.0:
        raise StudyError(f"level {spec!r}: fraction {fraction:g} is outside [0, 1]")
    return Level(spec=str(spec), axis=axis, fraction=fraction, other_embodiments=other)


def known_settings() -> list[str]:
    from h2r.world import catalogue  # noqa: PLC0415  (light: no jax)
    return [s.name for s in catalogue.SETTINGS]


def target_robots(targets) -> dict[str, list[str]]:
    """Target robot -> its target settings, in config order (from the world's catalogue)."""
    from h2r.world import catalogue  # noqa: PLC0415

    robots: dict[str, list[str]] = {}
    for target in targets:
        robots.setdefault(catalogue.setting(target).target_embodiment, []).append(target)
    return robots


def _check_keys(config: ml_collections.ConfigDict, schema: ml_collections.ConfigDict, prefix: str = "") -> None:
    """A key the schema does not know is a typo: name it and suggest the closest key."""
    for key in config.keys():
        path = f"{prefix}{key}"
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema.keys()), n=1)
            hint = f" (did you mean {prefix}{close[0]!r}?)" if close else ""
            raise StudyError(f"study config: unknown key {path!r}{hint}; known keys at this level: "
                             f"{sorted(schema.keys())}")
        value, expected = config[key], schema[key]
        if isinstance(expected, ml_collections.ConfigDict):
            if not isinstance(value, ml_collections.ConfigDict):
                raise StudyError(f"study config: {path!r} must be a group of keys, got {value!r}")
            if key != "resources":  # resources may name any job kind's keys; checked below
                _check_keys(value, expected, prefix=f"{path}.")


def validate(config: ml_collections.ConfigDict, root: str = ".") -> None:
    """Raises StudyError naming the first problem; returns quietly when the study can run."""
    _check_keys(config, base_config())
    for kind, res in config.resources.items():
        _check_keys(res, resources(), prefix=f"resources.{kind}.")
        if res.nodes < 1:
            raise StudyError(f"study config: resources.{kind}.nodes must be >= 1, got {res.nodes}")
        if res.nodes > 1 and kind not in ("pretrain", "cotrain"):
            raise StudyError(f"study config: resources.{kind}.nodes={res.nodes}: only training jobs "
                             "(pretrain, cotrain) run on several nodes")
    levels = [parse_level(s) for s in config.levels]
    slugs = [lv.slug for lv in levels]
    if not levels:
        raise StudyError("study config: 'levels' is empty")
    if len(set(slugs)) != len(slugs):
        raise StudyError(f"study config: duplicate levels in {list(config.levels)}")
    if not config.seeds or len(set(config.seeds)) != len(config.seeds):
        raise StudyError(f"study config: 'seeds' must be distinct and non-empty, got {list(config.seeds)}")
    if not config.targets:
        raise StudyError("study config: 'targets' is empty")
    settings = known_settings()
    for target in config.targets:
        if target not in settings:
            raise StudyError(f"study config: unknown target setting {target!r}; the world's settings "
                             f"are {settings}")
    weights = list(config.human_weights)
    for w in weights:
        if not 0.0 <= float(w) <= 1.0:
            raise StudyError(f"study config: human weight {w} is outside [0, 1]")
    if 0.0 not in [float(w) for w in weights] or len(weights) < 2:
        raise StudyError(f"study config: human_weights {weights} must contain 0.0 (without human "
                         "data) and at least one weight > 0, to measure a gain")
    if config.human_loss not in HUMAN_LOSSES:
        raise StudyError(f"study config: human_loss {config.human_loss!r} is not one of {HUMAN_LOSSES}")
    if config.eval.episodes < 1 or config.train.pretrain_steps < 1 or config.train.cotrain_steps < 1:
        raise StudyError("study config: eval.episodes, train.pretrain_steps and train.cotrain_steps "
                         "must be >= 1")
    for name in ("data.config", "train.config"):
        path = config.data.config if name == "data.config" else config.train.config
        if not (name == "data.config" and config.data.dir) and not os.path.isfile(os.path.join(root, path)):
            raise StudyError(f"study config: {name} {path!r} does not exist")
    if config.data.dir and not os.path.isdir(os.path.join(root, config.data.dir)):
        raise StudyError(f"study config: data.dir {config.data.dir!r} is not a directory")
