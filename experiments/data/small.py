"""A few minutes on a CPU: all task families, 8 scenes, 48x48 images.

    h2r data generate --config experiments/data/small.py --out data/small
"""
from h2r.data.config import generation_config


def get_config():
    return generation_config(
        resolution=48, horizon=72, num_scenes=8, episodes_per_combination=2, target_robot_episodes=16,
        target_human_episodes=16, heldout_eval_episodes=4, val_fraction=0.1, rollout_batch_size=128)
