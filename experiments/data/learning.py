"""The learning benchmark's data (benchmarks/learning.py): the tiny preset with 160 target-robot
demonstrations per co-training combination (960 per setting) instead of 40, and DART labels on
robot episodes.

Why: with 240 demonstrations over six scenes, random layouts and distractors the tiny policy
memorizes its data; with 960 the same steps generalize to unseen layouts (BUILD_NOTES.md,
"Learning", sessions 4 and 7). DART (robots execute the expert's motion noise doubled and record
the noise-free action it intended; the human is untouched): in the learning benchmark, paired on
the same episodes, bussing 0.23 vs 0.11 and tidy 0.14 vs 0.08 at 8000 steps, sort_eggs unchanged
(0.46 vs 0.45; +0.12 in session 9's 6000-step schedules). About 3 minutes on 2 CPU cores.

    h2r data generate --config experiments/data/learning.py --out data/learning
"""
import os

from h2r.config import load_config


def get_config():
    config = load_config(os.path.join(os.path.dirname(__file__), "tiny.py"))
    config.target_robot_episodes = 160
    config.env.dart_noise = 2.0
    return config
