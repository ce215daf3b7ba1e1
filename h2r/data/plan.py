"""Which episodes a data config asks for: a list of `PlannedEpisode`, each with its seed and split.

- pretrain: every embodiment (robots and the human) x every pretrain-allowed (scene, task family,
  object variant) combination among the config's first `num_scenes` scenes and
  `num_task_families` task families, `episodes_per_combination` each;
- for each held-out target setting: `target-robot` episodes of its target robot, `target-human`
  episodes of the human, and `heldout-eval` episodes of the target robot, on the combinations the
  catalogue's `Setting` names for each role.

An episode's seed is a hash of the config seed and the episode's identity (never of its position
in the list), so adding embodiments or scenes does not change the episodes already planned. Its
split (train/val) is decided the same way within its (embodiment, setting) group.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib

from h2r.errors import DataError

PRETRAIN, TARGET_ROBOT, TARGET_HUMAN, HELDOUT_EVAL = "pretrain", "target-robot", "target-human", "heldout-eval"
SETTING_ROLES = (TARGET_ROBOT, TARGET_HUMAN, HELDOUT_EVAL)


@dataclasses.dataclass(frozen=True)
class PlannedEpisode:
    embodiment: str
    setting: str        # pretrain | target-robot | target-human | heldout-eval
    target: str         # the held-out setting's name; "" for pretrain
    scene: str
    task_family: str
    variant: int        # object variant of the task family
    index: int          # repetition within the combination
    seed: int = 0
    split: str = "train"

    @property
    def key(self) -> str:
        """Unique within an embodiment's dataset; tfds orders records by its hash."""
        return "/".join(map(str, (self.setting, self.target or "-", self.scene, self.task_family,
                                  self.variant, self.index)))


def stable_hash(*parts, bits: int = 31) -> int:
    """A hash of `parts` that is the same in every process (python's hash() is salted)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> (64 - bits)


def _names(items, count: int) -> list[str]:
    names = [item.name for item in items]
    return names if count <= 0 else names[:count]


def _pick(kind: str, available: list[str], wanted: str) -> list[str]:
    """The comma-separated `wanted` names (all of `available` when empty), checked."""
    if not wanted:
        return available
    chosen = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise DataError(f"config: unknown {kind} {unknown}; the catalogue has {available}")
    return chosen


def pretrain_combinations(config) -> list[tuple[str, str, int]]:
    """The (scene, task family, variant) combinations a data config pretrains every embodiment
    on: its first `num_scenes` scenes x its task families (the first `num_task_families`, or the
    named `task_families`), minus what the held-out settings reserve. `h2r eval --setting
    pretrain:ROBOT` evaluates on the same list."""
    from h2r.world import catalogue  # noqa: PLC0415

    scenes = _names(catalogue.SCENES, config.num_scenes)
    task_families = _names(catalogue.TASK_FAMILIES, config.num_task_families)
    if config.get("task_families", ""):  # an explicit list wins over the first-N count
        task_families = _pick("task families", _names(catalogue.TASK_FAMILIES, 0), config.task_families)
    return [(scene, task, variant)
            for scene in scenes for task in task_families
            for variant in range(catalogue.task_family(task).num_variants)
            if catalogue.is_pretrain_allowed(scene, task, variant)]


def plan_episodes(config) -> list[PlannedEpisode]:
    """Every episode the data config asks for, with seeds and splits assigned."""
    from h2r.world import catalogue  # noqa: PLC0415  (jax-free, but keep `h2r --help` instant)

    embodiments = _pick("embodiments", _names(catalogue.EMBODIMENTS, 0), config.embodiments)
    settings = _pick("settings", _names(catalogue.SETTINGS, 0), config.settings)

    episodes = []
    pretrain_combos = pretrain_combinations(config)
    for embodiment in embodiments:
        for scene, task, variant in pretrain_combos:
            for index in range(config.episodes_per_combination):
                episodes.append(PlannedEpisode(embodiment, PRETRAIN, "", scene, task, variant, index))

    counts = {TARGET_ROBOT: config.target_robot_episodes, TARGET_HUMAN: config.target_human_episodes,
              HELDOUT_EVAL: config.heldout_eval_episodes}
    human = next(e.name for e in catalogue.EMBODIMENTS if e.is_human)
    for name in settings:
        setting = catalogue.setting(name)
        for role in SETTING_ROLES:
            embodiment = human if role == TARGET_HUMAN else setting.target_embodiment
            if embodiment not in embodiments:
                continue
            for scene, task, variant in catalogue.setting_combinations(setting, role):
                for index in range(counts[role]):
                    episodes.append(PlannedEpisode(embodiment, role, name, scene, task, variant, index))

    return _assign_splits(_assign_seeds(episodes, config.seed), config.val_fraction)


def _assign_seeds(episodes: list[PlannedEpisode], seed: int) -> list[PlannedEpisode]:
    return [dataclasses.replace(e, seed=stable_hash(seed, e.embodiment, e.key)) for e in episodes]


def _assign_splits(episodes: list[PlannedEpisode], val_fraction: float) -> list[PlannedEpisode]:
    """In each (embodiment, setting, target) group, the `val_fraction` with the lowest split hash
    (at least one when the group has two or more episodes and val_fraction > 0) go to val."""
    groups = collections.defaultdict(list)
    for e in episodes:
        groups[(e.embodiment, e.setting, e.target)].append(e)
    val_keys = set()
    for group in groups.values():
        num_val = round(len(group) * val_fraction)
        if val_fraction > 0 and len(group) >= 2:
            num_val = min(max(num_val, 1), len(group) - 1)
        ranked = sorted(group, key=lambda e: stable_hash("split", e.seed, e.key))
        val_keys.update((e.embodiment, e.key) for e in ranked[:num_val])
    return [dataclasses.replace(e, split="val") if (e.embodiment, e.key) in val_keys else e
            for e in episodes]


def counts(episodes: list[PlannedEpisode]) -> dict:
    """{embodiment: {setting: {split: n}}} for generation.json and the progress line."""
    table = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    for e in episodes:
        table[e.embodiment][e.setting][e.split] += 1
    return {emb: {setting: dict(splits) for setting, splits in by_setting.items()}
            for emb, by_setting in table.items()}
