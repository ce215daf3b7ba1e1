"""The smallest useful data, for tests: a few seconds. Two robots and the human, two scenes,
two task families, one held-out setting.

    h2r data generate --config experiments/data/micro.py --out /tmp/micro
"""
from h2r.data.config import generation_config


def get_config():
    return generation_config(
        resolution=32, horizon=32, num_scenes=2, num_task_families=2, episodes_per_combination=1,
        target_robot_episodes=1, target_human_episodes=1, heldout_eval_episodes=1, val_fraction=0.2,
        rollout_batch_size=16,
        # World options (h2r.world.config.EnvConfig fields): fewer objects so short episodes finish.
        env=dict(max_task_objects=1, max_distractors=1))
