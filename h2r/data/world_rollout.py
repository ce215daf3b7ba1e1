"""The world's scripted-expert episodes as RLDS writer records (`rlds_writer.Episode`).

`h2r data generate` asks for one embodiment at a time:

    spec, source = spec_and_source(config, "jaw_arm")
    for planned, episode in source(planned_episodes): ...

The source rolls planned episodes out in chunks of `config.rollout_batch_size` (one jitted,
vmapped batch each; every chunk reuses one compilation) and yields them in the planner's order.
The planner's seed is what episode_metadata records: it fits in 31 bits, so the world (which
keys on the low 32 bits) and the dataset agree on it.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator


from h2r.data import plan as plan_lib
from h2r.data import rlds_writer
from h2r.world import catalogue
from h2r.world import episodes as world_episodes
from h2r.world.config import EnvConfig

EpisodeStream = Callable[[list[plan_lib.PlannedEpisode]],
                         Iterator[tuple[plan_lib.PlannedEpisode, rlds_writer.Episode]]]


def dataset_spec(embodiment: str, env_config: EnvConfig) -> rlds_writer.DatasetSpec:
    """Feature shapes of one embodiment's dataset, with the meaning of each dimension."""
    emb = catalogue.embodiment(embodiment)
    return rlds_writer.DatasetSpec(
        embodiment=emb.name, image_size=env_config.image_size,
        state_dim=emb.state_dim, action_dim=emb.action_dim,
        extra_metadata={
            "embodiment": emb.name, "is_human": emb.is_human,
            "action_space": emb.action_space, "action_names": list(emb.action_names),
            "state_names": list(emb.state_names), "grip_dim": emb.grip_dim,
            "image_size": env_config.image_size, "horizon": env_config.horizon,
            "tracking_noise": env_config.tracking_noise if emb.is_human else 0.0,
        })


def spec_and_source(config, embodiment: str) -> tuple[rlds_writer.DatasetSpec, EpisodeStream]:
    """(DatasetSpec, function from planned episodes to (planned, Episode) pairs) for one embodiment."""
    env_config = EnvConfig.from_config(config)
    batch_size = int(config.get("rollout_batch_size", 64))
    spec = dataset_spec(embodiment, env_config)

    def source(planned: list[plan_lib.PlannedEpisode]):
        for chunk in _chunks(planned, batch_size):
            _check_embodiment(chunk, embodiment)
            specs = world_episodes.make_specs(
                [e.scene for e in chunk], [e.task_family for e in chunk],
                [e.embodiment for e in chunk], [e.seed for e in chunk], [e.variant for e in chunk])
            rolled = world_episodes.rollout_expert(specs, env_config, batch_size=batch_size)
            for item, rollout in zip(chunk, rolled):
                yield item, to_writer_episode(item, rollout)

    return spec, source


def to_writer_episode(item: plan_lib.PlannedEpisode, rollout: dict) -> rlds_writer.Episode:
    """One `rollout_expert` result (numpy dict) as the writer's record, labelled by its plan."""
    return rlds_writer.Episode(
        image=rollout["image"], wrist_image=rollout["wrist_image"],
        state=rollout["state"], action=rollout["action"],
        phase=rollout["phase"], reward=rollout["reward"],
        is_terminal=bool(rollout["success"]),
        instruction=rollout["instruction"], subtasks=list(rollout["subtask"]),
        metadata={
            "scene": item.scene, "task_family": item.task_family, "embodiment": item.embodiment,
            "setting": item.setting, "target": item.target,
            "seed": item.seed, "expert_success": bool(rollout["success"]),
        })


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _check_embodiment(chunk: list[plan_lib.PlannedEpisode], embodiment: str) -> None:
    others = sorted({e.embodiment for e in chunk} - {embodiment})
    if others:
        raise ValueError(f"the {embodiment!r} source was given episodes of {others}")
