"""Small: a CPU trains it in hours, a GPU in minutes (~20M params).

    h2r train --config experiments/train/small.py --workdir runs/small --config.data.dir=data/small
"""
from h2r.train.config import make_config


def get_config():
    return make_config("small", steps=20_000, batch_size=32, lr=5e-4, warmup_steps=500,
                       checkpoint_every=1000, log_every=100)
