"""The human-data scaling variant: how does the gain grow with the share of human data in the
co-training mixture, at low and at high pretraining diversity? The report draws one gain curve
per human weight (gain = success(weight) - success(0)).

    h2r study run --config experiments/study/human_scaling.py --workdir study/human_scaling
"""
from h2r.study.grid import paper_config


def get_config():
    config = paper_config()
    config.name = "human_scaling"
    config.levels = ("0.25", "1.0+other")
    config.human_weights = (0.0, 0.1, 0.25, 0.5, 0.75)
    return config
