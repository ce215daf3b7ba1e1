"""Large: ~1B params, a pod: params and optimizer state sharded over fsdp, MLP/heads over tensor.

    srun -N 4 --ntasks-per-node=1 h2r train --config experiments/train/large.py \
        --workdir runs/large --config.data.dir=data/base
"""
from h2r.train.config import make_config


def get_config():
    # mesh: fsdp takes all devices not used by tensor parallelism (tensor=4 within a host).
    config = make_config("large", steps=200_000, batch_size=256, lr=2e-4, warmup_steps=5000,
                         checkpoint_every=2000, log_every=100, mesh=(1, -1, 4))
    config.data.worker_count = 16
    config.train.keep_period = 20_000
    return config
