"""The laptop preset: under 2 minutes on 2 CPU cores, 32x32 images, 4 scenes.

    h2r data generate --config experiments/data/tiny.py --out data/tiny
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.resolution = 32
    config.horizon = 48
    config.num_scenes = 4
    config.num_task_families = 0      # all
    config.episodes_per_combination = 1
    config.embodiments = ""
    config.settings = ""
    config.target_robot_episodes = 4
    config.target_human_episodes = 4
    config.heldout_eval_episodes = 2
    config.val_fraction = 0.1
    # World options (h2r.world.config.EnvConfig fields): fewer objects so short episodes finish.
    config.env = ml_collections.ConfigDict(dict(max_task_objects=2, max_distractors=2))
    config.rollout_batch_size = 64
    return config
