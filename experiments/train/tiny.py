"""Tiny: a laptop CPU trains it in minutes (the tiny study trains many of these).

    h2r train --config experiments/train/tiny.py --workdir runs/tiny --config.data.dir=data/tiny
"""
from h2r.train.config import make_config


def get_config():
    return make_config("tiny", steps=2000, batch_size=32, lr=1e-3, warmup_steps=100,
                       checkpoint_every=500, log_every=50)
