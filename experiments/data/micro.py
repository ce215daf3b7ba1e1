"""The smallest useful data, for tests: a few seconds. Two robots and the human, two scenes,
two task families, one held-out setting.

    h2r data generate --config experiments/data/micro.py --out /tmp/micro
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.resolution = 32
    config.horizon = 32
    config.num_scenes = 2
    config.num_task_families = 2
    config.task_families = ""         # comma-separated names: overrides num_task_families
    config.episodes_per_combination = 1
    config.embodiments = ""           # filled in below once the catalogue is known
    config.settings = ""
    config.target_robot_episodes = 1
    config.target_human_episodes = 1
    config.heldout_eval_episodes = 1
    config.val_fraction = 0.2
    # World options (h2r.world.config.EnvConfig fields): fewer objects so short episodes finish.
    config.env = ml_collections.ConfigDict(dict(max_task_objects=1, max_distractors=1))
    config.rollout_batch_size = 16
    return config
