"""The one definition of the training config: `make_config(size, ...)` builds config.model (the
model preset), config.data (h2r.data.config: every default, the layout fields linked to the
model's), config.train and config.mesh. The presets in experiments/train/ call it:

    from h2r.train.config import make_config
    def get_config():
        return make_config("tiny", steps=2000, batch_size=32, lr=1e-3, warmup_steps=100,
                           checkpoint_every=500, log_every=50)

Keys scripts rely on: train.steps, data.dir, train.init_from, mesh.{data,fsdp,tensor}.
"""
from __future__ import annotations

import ml_collections

from h2r.data.config import data_config


def train_config(*, steps: int, batch_size: int, lr: float, warmup_steps: int, checkpoint_every: int,
                 log_every: int) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=1e-4,
        grad_clip=1.0,
        ema_decay=0.999,
        checkpoint_every=checkpoint_every,
        keep=3,                    # last N checkpoints kept ...
        keep_period=0,             # ... plus every keep_period-th step (0 = none) and the best
        log_every=log_every,
        seed=0,
        init_from="",              # run directory of a pretrained run (co-training)
    ))


def make_config(size: str, *, steps: int, batch_size: int, lr: float, warmup_steps: int,
                checkpoint_every: int, log_every: int, mesh=(-1, 1, 1)) -> ml_collections.ConfigDict:
    from h2r.model.config import model_config  # noqa: PLC0415

    config = ml_collections.ConfigDict()
    config.model = model_config(size)
    config.data = data_config(config.model)
    config.train = train_config(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps,
                                checkpoint_every=checkpoint_every, log_every=log_every)
    config.mesh = ml_collections.ConfigDict(dict(zip(("data", "fsdp", "tensor"), mesh)))
    return config
