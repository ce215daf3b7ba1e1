"""The paper's grid (arXiv 2512.22414): 0, 25, 50, 75, 100% of the target robot's scene x task
pretraining catalogue, and 100% plus the other robots; 3 seeds; the three held-out target
settings; co-training with and without human data. Sized for GPUs (train preset `base`),
e.g. on a SLURM cluster:

    h2r study run --config experiments/study/paper.py --workdir study/paper --executor slurm
"""
from h2r.study.grid import base_config, resources


def get_config():
    config = base_config()
    config.name = "paper"
    config.data.config = "experiments/data/base.py"
    config.train.config = "experiments/train/base.py"
    config.train.pretrain_steps = 20000
    config.train.cotrain_steps = 5000
    config.levels = ("0", "0.25", "0.5", "0.75", "1.0", "1.0+other")
    config.seeds = (0, 1, 2)
    config.targets = ("sort_eggs", "tidy_new_scenes", "bussing_new_objects")
    config.human_weights = (0.0, 0.5)
    config.eval.episodes = 200
    config.report.bootstrap_samples = 5000
    config.resources.data = resources(cpus=16, time="04:00:00")
    config.resources.pretrain = resources(cpus=8, gpus=1, mem="64G", time="12:00:00")
    config.resources.cotrain = resources(cpus=8, gpus=1, mem="64G", time="06:00:00")
    config.resources.eval = resources(cpus=8, gpus=1, mem="32G", time="02:00:00")
    return config
