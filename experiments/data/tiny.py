"""The laptop preset: about a minute on 2 CPU cores, 32x32 images, 4 scenes.

Sized for learning (benchmarks/learning.py): 40 target-robot demonstrations per co-training
combination (240 per setting: a policy trained on 24 memorized them and generalized to none),
2 pretraining episodes per (embodiment, scene, task family), episodes up to 64 steps (the expert
needs ~30 for two objects; learned policies are slower and evaluation uses the same limit).

    h2r data generate --config experiments/data/tiny.py --out data/tiny
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.resolution = 32
    config.horizon = 64
    config.num_scenes = 4
    config.num_task_families = 0      # all
    config.task_families = ""         # comma-separated names: overrides num_task_families
    config.episodes_per_combination = 2
    config.embodiments = ""
    config.settings = ""
    config.target_robot_episodes = 40
    config.target_human_episodes = 4
    config.heldout_eval_episodes = 2
    config.val_fraction = 0.1
    # World options (h2r.world.config.EnvConfig fields): fewer objects so short episodes finish.
    config.env = ml_collections.ConfigDict(dict(max_task_objects=2, max_distractors=2))
    config.rollout_batch_size = 64
    return config
