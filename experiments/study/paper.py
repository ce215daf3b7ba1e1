"""The paper's grid (arXiv 2512.22414): 0, 25, 50, 75, 100% of the target robot's scene x task
pretraining catalogue, and 100% plus the other robots; 3 seeds; the three held-out target
settings; co-training with and without human data. Sized for GPUs (train preset `base`),
e.g. on a SLURM cluster:

    h2r study run --config experiments/study/paper.py --workdir study/paper --executor slurm
"""
from h2r.study.grid import paper_config


def get_config():
    return paper_config()
