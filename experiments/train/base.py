"""Base: ~100M+ params, one GPU (bf16 compute via model.dtype, params float32).

    h2r train --config experiments/train/base.py --workdir runs/base --config.data.dir=data/base
"""
from h2r.train.config import make_config


def get_config():
    config = make_config("base", steps=100_000, batch_size=128, lr=3e-4, warmup_steps=2000,
                         checkpoint_every=2000, log_every=100)
    config.model.dtype = "bfloat16"
    config.data.worker_count = 8
    config.train.keep_period = 20_000
    return config
