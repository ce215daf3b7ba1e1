"""Data for one GPU: every scene, task family and embodiment of the catalogue, 64x64 images.

    h2r data generate --config experiments/data/base.py --out data/base
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.resolution = 64            # image side (both views)
    config.horizon = 96               # steps per episode at most
    # Pretraining data: every embodiment x every pretrain-allowed (scene, task family) pair of
    # the first `num_scenes` scenes and `num_task_families` task families (0 = all of them).
    config.num_scenes = 0
    config.num_task_families = 0
    config.task_families = ""         # comma-separated names: overrides num_task_families
    config.episodes_per_combination = 8
    config.embodiments = ""           # comma-separated names; "" = all (robots and the human)
    # Held-out target settings: "" = all of the catalogue's, else comma-separated names.
    config.settings = ""
    config.target_robot_episodes = 64    # per target-robot combination of a setting
    config.target_human_episodes = 64    # per target-human combination
    config.heldout_eval_episodes = 16    # per heldout-eval combination
    config.val_fraction = 0.05        # of each (embodiment, setting) group, at least one episode
    config.rollout_batch_size = 256   # episodes simulated together (vmap)
    return config
