"""Which episodes of which datasets a run trains on, and with what weight.

A mixture is a list of `Component`s: one dataset, the episodes selected from it, its sampling
weight, and the per-sample loss weights. pipeline.py turns each into a shuffled grain source
and mixes them with `grain.MapDataset.mix`. Three kinds (config.data.kind):

pretrain  the target robot's pretraining data at a diversity level: a fraction `diversity` of
          its (scene, task family) combinations, chosen by a fixed permutation so the 25% set is
          inside the 50% set (nested), optionally plus every other robot's pretraining data
          (`other_embodiments`, the "100% + other robots" level). Exactly `sample_budget`
          unique episodes are drawn, spread round-robin over the selected combinations, so
          every level trains on the same amount of data.
          The factorial study varies one factor at a time: `scene_diversity` / `task_diversity`
          keep a nested fraction of the robot's scenes / task families (all of the other), and
          `embodiment_diversity` adds a nested fraction of the other robots. The three default
          to 1.0, 1.0 and 0.0, so a plain `diversity` level is unchanged by them.
cotrain   the target robot's data for the held-out setting `target`, plus (if `human`) the
          human data that covers it, mixed (1 - human_weight) : human_weight. `human_loss`
          (both | subtask | action) zeroes the human samples' other loss (the ablations).
mixture   `mixture = "name:weight,name:weight"`: all train episodes of the named datasets
          (any kind in the standardize registry, e.g. Open X-Embodiment datasets).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from h2r.data import config as data_config
from h2r.errors import DataError

HUMAN = "human"
HUMAN_LOSS = {"both": (1.0, 1.0), "subtask": (0.0, 1.0), "action": (1.0, 0.0)}


@dataclasses.dataclass(frozen=True)
class Component:
    dataset: str                  # dataset name (directory under config.data.dir)
    episodes: np.ndarray          # int64 episode ids in that dataset's train split
    weight: float
    action_loss_weight: float = 1.0
    subtask_loss_weight: float = 1.0


def steps_of(dataset, episodes: np.ndarray) -> np.ndarray:
    """Flat step ids (into dataset.index) of the given episodes, in episode order."""
    index = dataset.index
    return np.concatenate([np.arange(index.episode_start[e], index.episode_start[e] + index.episode_length[e])
                           for e in episodes]) if len(episodes) else np.zeros(0, np.int64)


def _meta(dataset, key: str) -> np.ndarray:
    if key not in dataset.index.metadata:
        raise DataError(f"dataset {dataset.name!r} has no episode_metadata/{key}, which "
                        f"diversity subsets and co-training mixtures select by")
    return dataset.index.metadata[key]


def _by_embodiment(datasets: dict) -> dict:
    """Embodiment name -> dataset, for datasets that carry episode_metadata (ours)."""
    out = {}
    for dataset in datasets.values():
        if "embodiment" in dataset.index.metadata:
            out[dataset.embodiment()] = dataset
    return out


def target_embodiment(datasets: dict, target: str) -> str:
    """The robot whose co-training data is for held-out setting `target` (from the metadata)."""
    found = set()
    for name, dataset in _by_embodiment(datasets).items():
        if name == HUMAN or "target" not in dataset.index.metadata:
            continue
        selected = (_meta(dataset, "setting") == "target-robot") & (_meta(dataset, "target") == target)
        if selected.any():
            found.add(name)
    if len(found) != 1:
        raise DataError(f"held-out setting {target!r}: expected exactly one robot with 'target-robot' "
                        f"episodes for it, found {sorted(found) or 'none'} in {sorted(datasets)}")
    return found.pop()


def diversity_combinations(dataset, fraction: float, subset_seed: int = 0) -> list[tuple[str, str]]:
    """The first round(fraction * C) of the robot's C pretraining (scene, task) combinations in a
    fixed permutation: a smaller fraction's set is always inside a larger one's."""
    pretrain = _meta(dataset, "setting") == "pretrain"
    return nested_fraction(zip(_meta(dataset, "scene")[pretrain].tolist(),
                               _meta(dataset, "task_family")[pretrain].tolist()), fraction, subset_seed)


def nested_fraction(items, fraction: float, subset_seed: int = 0, salt: str = "") -> list:
    """The first round(fraction * N) of the sorted unique `items` in a fixed permutation (seeded
    by subset_seed and `salt`, one per axis): a smaller fraction's set is inside a larger one's."""
    items = sorted(set(items))
    order = np.random.default_rng([subset_seed, *salt.encode()]).permutation(len(items))
    return [items[i] for i in order[:int(round(fraction * len(items)))]]


def factor_filter(data, combos: list[tuple[str, str]], subset_seed: int) -> list[tuple[str, str]]:
    """`combos` restricted to the factorial axes' scene and task fractions (default: all)."""
    scenes = set(nested_fraction([s for s, _ in combos], float(data_config.get(data, "scene_diversity")),
                                 subset_seed, "scenes"))
    tasks = set(nested_fraction([t for _, t in combos], float(data_config.get(data, "task_diversity")),
                                subset_seed, "tasks"))
    return [(s, t) for s, t in combos if s in scenes and t in tasks]


def other_robots(data, by_embodiment: dict, robot: str, subset_seed: int) -> list[str]:
    """The other robot embodiments in the pretraining mixture: all with `other_embodiments`,
    else a nested `embodiment_diversity` fraction of them (default none)."""
    others = sorted(e for e in by_embodiment if e not in (robot, HUMAN))
    if data_config.get(data, "other_embodiments"):
        return others
    return sorted(nested_fraction(others, float(data_config.get(data, "embodiment_diversity")), subset_seed, "robots"))


def _round_robin(groups: list[np.ndarray], budget: int, rng) -> list[np.ndarray]:
    """Takes `budget` items spread evenly over groups (each shuffled): group g gets items
    1, 2, ... in turn while it has any. Returns the taken items per group."""
    groups = [rng.permutation(g) for g in groups]
    order = rng.permutation(len(groups))  # who gets the last, partial round's items
    taken = [0] * len(groups)
    remaining = budget
    while remaining > 0:
        progressed = False
        for g in order:
            items = groups[g]
            if remaining and taken[g] < len(items):
                taken[g] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    return [np.sort(items[:n]) for items, n in zip(groups, taken)]


def pretrain_components(data, datasets: dict) -> list[Component]:
    by_embodiment = _by_embodiment(datasets)
    robot = target_embodiment(datasets, data.target)
    subset_seed = int(data_config.get(data, "subset_seed"))
    combos = factor_filter(data, diversity_combinations(by_embodiment[robot], float(data.diversity), subset_seed),
                           subset_seed)
    if not combos:
        raise DataError(f"diversity {data.diversity} (scene_diversity {data_config.get(data, 'scene_diversity')}, "
                        f"task_diversity {data_config.get(data, 'task_diversity')}) of robot {robot!r} selects no "
                        f"(scene, task) combination: the subset is empty (diversity 0 means no robot pretraining)")
    # Groups for the round-robin: (dataset, combination) -> its pretraining episodes.
    groups: list[tuple[str, np.ndarray]] = []
    members = [robot] + other_robots(data, by_embodiment, robot, subset_seed)
    for embodiment in members:
        dataset = by_embodiment[embodiment]
        setting, scene, task = (_meta(dataset, k) for k in ("setting", "scene", "task_family"))
        wanted = combos if embodiment == robot else sorted(
            set(zip(scene[setting == "pretrain"].tolist(), task[setting == "pretrain"].tolist())))
        for s, t in wanted:
            episodes = np.flatnonzero((setting == "pretrain") & (scene == s) & (task == t))
            if len(episodes):
                groups.append((dataset.name, episodes))
    pool = sum(len(e) for _, e in groups)
    budget = int(data_config.get(data, "sample_budget") or 0) or pool
    if budget > pool:
        raise DataError(f"pretraining subset (robot {robot!r}, diversity {data.diversity}, other robots "
                        f"{members[1:]}) has {pool} episodes, fewer than "
                        f"sample_budget={budget}; lower the budget or generate more episodes per combination")
    rng = np.random.default_rng(subset_seed)
    taken = _round_robin([e for _, e in groups], budget, rng)
    per_dataset: dict[str, list] = {}
    for (name, _), episodes in zip(groups, taken):
        per_dataset.setdefault(name, []).append(episodes)
    components = []
    for name, parts in per_dataset.items():
        episodes = np.sort(np.concatenate(parts))
        if not len(episodes):  # a small budget may leave a dataset's groups all empty
            continue
        steps = int(datasets[name].index.episode_length[episodes].sum())
        components.append(Component(name, episodes, weight=float(steps)))  # uniform over steps
    return components


def cotrain_components(data, datasets: dict) -> list[Component]:
    by_embodiment = _by_embodiment(datasets)
    robot = target_embodiment(datasets, data.target)
    robot_ds = by_embodiment[robot]
    robot_eps = np.flatnonzero((_meta(robot_ds, "setting") == "target-robot") & (_meta(robot_ds, "target") == data.target))
    components = [Component(robot_ds.name, robot_eps, weight=1.0)]
    if data_config.get(data, "human"):
        if HUMAN not in by_embodiment:
            raise DataError(f"config.data.human is set but {data.dir!r} has no human dataset (h2r_human)")
        human_ds = by_embodiment[HUMAN]
        human_eps = np.flatnonzero((_meta(human_ds, "setting") == "target-human") & (_meta(human_ds, "target") == data.target))
        if not len(human_eps):
            raise DataError(f"dataset {human_ds.name!r} has no 'target-human' episodes for setting "
                            f"{data.target!r}: the human part of the co-training mixture is empty")
        loss = data_config.get(data, "human_loss")
        if loss not in HUMAN_LOSS:
            raise DataError(f"config.data.human_loss={loss!r}; expected one of {sorted(HUMAN_LOSS)}")
        weight = float(data_config.get(data, "human_weight"))
        if not 0.0 < weight < 1.0:
            raise DataError(f"config.data.human_weight={weight} must be in (0, 1)")
        components = [Component(robot_ds.name, robot_eps, weight=1.0 - weight),
                      Component(human_ds.name, human_eps, weight, *HUMAN_LOSS[loss])]
    if not len(robot_eps):
        raise DataError(f"dataset {robot_ds.name!r} has no 'target-robot' episodes for setting "
                        f"{data.target!r}: the co-training mixture's robot part is empty")
    return components


def parse_mixture(spec: str) -> list[tuple[str, float]]:
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, weight = item.partition(":")
        try:
            out.append((name, float(weight) if weight else 1.0))
        except ValueError:
            raise DataError(f"config.data.mixture item {item!r}: expected name:weight") from None
    return out


def weighted_components(data, datasets: dict) -> list[Component]:
    components = []
    for name, weight in parse_mixture(data_config.get(data, "mixture")):
        if name not in datasets:
            raise DataError(f"config.data.mixture names {name!r}, not a dataset in {data.dir!r} "
                            f"(found {sorted(datasets)})")
        if weight > 0:
            components.append(Component(name, np.arange(datasets[name].index.num_episodes), weight))
    return components


KINDS = {"pretrain": pretrain_components, "cotrain": cotrain_components, "mixture": weighted_components}


def components(data, datasets: dict) -> list[Component]:
    if data.kind not in KINDS:
        raise DataError(f"config.data.kind={data.kind!r}; expected one of {sorted(KINDS)}")
    result = KINDS[data.kind](data, datasets)
    if not result or all(c.weight <= 0 or not len(c.episodes) for c in result):
        raise DataError(f"config.data (kind {data.kind!r}, dir {data.get('dir')!r}) gives an empty mixture: "
                        f"no dataset with episodes and a positive weight")
    for c in result:
        if not len(c.episodes):
            raise DataError(f"mixture component {c.dataset!r} selects no episodes (empty subset)")
    return result


def required_datasets(data, available: list[str]) -> list[str]:
    """Dataset names a config's mixture may read (all of ours; the named ones for `mixture`)."""
    if data.kind == "mixture":
        return [name for name, _ in parse_mixture(data_config.get(data, "mixture"))]
    return [name for name in available if name.startswith("h2r_")]

