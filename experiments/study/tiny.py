"""The laptop study: the README's main job, at most 15 minutes on 2 CPU cores, data included.

    h2r study run --config experiments/study/tiny.py --workdir study/tiny

Trade-offs made to fit the budget (the paper grid is experiments/study/paper.py):
three levels instead of six (no pretraining, half the catalogue, all of it plus the other
robots), one seed, one target setting (sort_eggs), few training steps and evaluation episodes.
The curve's intervals are therefore wide (episodes only, no seed variance), and a tiny model
trained this briefly may show no gain at all: the job demonstrates the pipeline end to end,
not the paper's finding.
"""
from h2r.study.grid import base_config


def get_config():
    config = base_config()
    config.name = "tiny"
    config.data.config = "experiments/data/tiny.py"
    config.train.config = "experiments/train/tiny.py"
    config.train.pretrain_steps = 300
    config.train.cotrain_steps = 150
    config.levels = ("0", "0.5", "1.0+other")
    config.seeds = (0,)
    config.targets = ("sort_eggs",)
    config.human_weights = (0.0, 0.5)
    config.eval.episodes = 32
    config.report.bootstrap_samples = 2000
    config.executor.jobs = 2
    return config
