"""The smallest study, for tests: two levels (none, all), one seed, one target, a few steps.

    h2r study run --config experiments/study/micro.py --workdir /tmp/micro_study
"""
from h2r.study.grid import base_config


def get_config():
    config = base_config()
    config.name = "micro"
    config.data.config = "experiments/data/micro.py"
    config.train.config = "experiments/train/tiny.py"
    config.train.pretrain_steps = 2
    config.train.cotrain_steps = 2
    # The smallest train model and batch, logging every step so the report has curves.
    config.train.overrides = ("train.batch_size=8", "train.log_every=1", "train.checkpoint_every=1",
                              "train.warmup_steps=1")
    config.levels = ("0", "1.0")
    config.seeds = (0,)
    config.targets = ("sort_eggs",)
    config.human_weights = (0.0, 0.5)
    config.eval.episodes = 4
    config.report.bootstrap_samples = 200
    config.executor.jobs = 2
    for kind in ("data", "pretrain", "cotrain", "eval", "report"):
        config.resources[kind].cpus_per_task = 1
        config.resources[kind].time = "00:10:00"
    return config
