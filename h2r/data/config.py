"""The one definition of the data configs: `config.data` of training (defaults in DEFAULTS, built
by `data_config`) and the data-generation presets' base (`generation_config`).

Readers of config.data take a key's value with `get(data, key)`: the config's value when it has
the key (hand-built configs and old run directories may lack keys added since), else its default
here. The sample-layout fields are linked to config.model's (`data_config(model=...)`: ml_collections
field references), so overriding one overrides both.
"""
from __future__ import annotations

import dataclasses

import ml_collections

from h2r.world.config import EnvConfig

# The sample-layout fields config.data shares with config.model.
LAYOUT_KEYS = ("max_state_dim", "max_action_dim", "action_horizon", "max_instruction_len", "max_subtask_len")

# Every key of config.data, with its default (BUILD_NOTES.md, "Data config").
DEFAULTS = dict(
    dir="",                    # directory written by `h2r data generate` (or kind=synthetic)
    kind="pretrain",           # pretrain | cotrain | mixture | synthetic (trainer benchmarks)
    target="sort_eggs",        # held-out setting name (cotrain: whose target data)
    diversity=1.0,             # fraction of the target robot's scene x task pretraining combos
    other_embodiments=False,   # the "100% + other robots" level
    # The factorial study's axes (one varied at a time; h2r/data/mixture.py):
    scene_diversity=1.0,       # nested fraction of the robot's pretraining scenes
    task_diversity=1.0,        # nested fraction of its pretraining task families
    embodiment_diversity=0.0,  # nested fraction of the other robots added
    sample_budget=0,           # unique episodes drawn, equal across levels (0 = all)
    human=False,               # co-train with the human data of the target setting
    human_weight=0.5,
    human_loss="both",         # both | subtask | action
    use_wrist=True,
    worker_count=0,            # grain worker processes (0 = read in the training process)
    seed=0,
    # mean_std: quantile (q01 -> -1, q99 -> +1, clipped) cut the table's edges out of absolute
    # actions and joint angles out of proprio; mean/std measured better (BUILD_NOTES, session 12-13).
    norm="mean_std",           # mean_std | quantile
    augment=False,             # random crop + brightness/contrast (h2r/data/augment.py)
    # The first `early_steps` steps of every episode (where the policy decides which object to
    # take first) weigh `early_weight` times as much in the action and subgoal losses.
    early_steps=0,
    early_weight=1.0,
    subset_seed=0,             # permutation behind the nested diversity subsets (fixed across levels)
    mixture="",                # kind=mixture: "name:weight,name:weight"
    # Sample layout (linked to config.model's in training configs).
    max_state_dim=16,
    max_action_dim=8,
    action_horizon=8,
    max_instruction_len=16,
    max_subtask_len=8,
)

# Pipeline settings a config may set but the presets leave out (their defaults are right for
# every run; `frame_cache` takes True, False or "auto", which one typed config field cannot).
PIPELINE_DEFAULTS = dict(
    read_threads=4,            # grain ReadOptions.num_threads
    prefetch_buffer_size=8,    # grain ReadOptions.prefetch_buffer_size (elements = batches)
    image_size=0,              # used when config.model.image_size is absent
    split="train",
    # Decode every step's views once into DIR/<dataset>/frames_*.npy (memory-mapped): True,
    # False, or "auto" = when the file would be under frame_cache_max_gb.
    frame_cache="auto",
    frame_cache_max_gb=4.0,
)


def get(data, key: str):
    """config.data[key], or its default when the config has no such key."""
    if key in data:
        return data[key]
    if key in DEFAULTS:
        return DEFAULTS[key]
    return PIPELINE_DEFAULTS[key]


def data_config(model: ml_collections.ConfigDict | None = None, **overrides) -> ml_collections.ConfigDict:
    """config.data with every default; with `model`, the layout fields are references to its."""
    config = ml_collections.ConfigDict(dict(DEFAULTS, **overrides))
    if model is not None:
        for key in LAYOUT_KEYS:
            config[key] = model.get_ref(key)
    return config


def generation_config(**overrides) -> ml_collections.ConfigDict:
    """`h2r data generate` presets (experiments/data/*.py): the base, then each preset's changes.
    `env` holds every world option (h2r.world.config.EnvConfig fields but the image size and
    horizon, which are `resolution` and `horizon`) at its default, so any of them can be set
    from the command line (`--config.env.start_anywhere=0.5`)."""
    config = ml_collections.ConfigDict(dict(
        seed=0,
        resolution=64,                # image side (both views)
        horizon=96,                   # steps per episode at most
        # Pretraining data: every embodiment x every pretrain-allowed (scene, task family) pair of
        # the first `num_scenes` scenes and `num_task_families` task families (0 = all of them).
        num_scenes=0,
        num_task_families=0,
        task_families="",             # comma-separated names: overrides num_task_families
        episodes_per_combination=8,
        embodiments="",               # comma-separated names; "" = all (robots and the human)
        # Held-out target settings: "" = all of the catalogue's, else comma-separated names.
        settings="",
        target_robot_episodes=64,     # per target-robot combination of a setting
        target_human_episodes=64,     # per target-human combination
        heldout_eval_episodes=16,     # per heldout-eval combination
        val_fraction=0.05,            # of each (embodiment, setting) group, at least one episode
        rollout_batch_size=256,       # episodes simulated together (vmap)
    ))
    env = overrides.pop("env", None)
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise KeyError(f"generation_config: unknown keys {unknown}")
    config.update(overrides)
    # A None default (wrist_half_extent: each embodiment's own) is a float placeholder, so that the
    # command line can still set it (ml_collections refuses to override a plain None).
    world = {f.name: getattr(EnvConfig(), f.name) for f in dataclasses.fields(EnvConfig)
             if f.name not in ("image_size", "horizon")}
    world = {k: ml_collections.config_dict.placeholder(float) if v is None else v for k, v in world.items()}
    unknown = sorted(set(env or {}) - set(world))
    if unknown:
        raise KeyError(f"generation_config: unknown world options env={unknown}; expected some of {sorted(world)}")
    config.env = ml_collections.ConfigDict(dict(world, **(env or {})))
    return config
