"""A few minutes on a CPU: all task families, 8 scenes, 48x48 images.

    h2r data generate --config experiments/data/small.py --out data/small
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.resolution = 48
    config.horizon = 72
    config.num_scenes = 8
    config.num_task_families = 0      # all
    config.task_families = ""         # comma-separated names: overrides num_task_families
    config.episodes_per_combination = 2
    config.embodiments = ""
    config.settings = ""
    config.target_robot_episodes = 16
    config.target_human_episodes = 16
    config.heldout_eval_episodes = 4
    config.val_fraction = 0.1
    config.rollout_batch_size = 128
    return config
