"""Tiny: a laptop CPU trains it in minutes (the tiny study trains many of these).

    h2r train --config experiments/train/tiny.py --workdir runs/tiny --config.data.dir=data/tiny

lr 3e-3 (was 1e-3, session 14): on 6000-step schedules tidy 0.19 vs 0.12, bussing 0.33 vs
0.32 / 0.15, sort_eggs 0.70 / 0.61 vs 0.61 / 0.63 (two seeds each); on short schedules far better
(sort_eggs after 1500 steps 28/128 vs 8/128; the CI test 62/64 vs 57/64). BUILD_NOTES.md, "Learning",
sessions 13-14.
"""
from h2r.train.config import make_config


def get_config():
    return make_config("tiny", steps=2000, batch_size=32, lr=3e-3, warmup_steps=100,
                       checkpoint_every=500, log_every=50)
