"""The laptop preset: about a minute on 2 CPU cores, 32x32 images, 4 scenes.

Sized for learning (benchmarks/learning.py): 40 target-robot demonstrations per co-training
combination (240 per setting: a policy trained on 24 memorized them and generalized to none),
2 pretraining episodes per (embodiment, scene, task family), episodes up to 64 steps (the expert
needs ~30 for two objects; learned policies are slower and evaluation uses the same limit).

    h2r data generate --config experiments/data/tiny.py --out data/tiny
"""
from h2r.data.config import generation_config


def get_config():
    return generation_config(
        resolution=32, horizon=64, num_scenes=4, episodes_per_combination=2, target_robot_episodes=40,
        target_human_episodes=4, heldout_eval_episodes=2, val_fraction=0.1, rollout_batch_size=64,
        # World options (h2r.world.config.EnvConfig fields): fewer objects so short episodes finish.
        env=dict(max_task_objects=2, max_distractors=2))
