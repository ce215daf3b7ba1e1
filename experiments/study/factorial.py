"""The factorial variant: which kind of diversity makes transfer emerge? Scenes, tasks and
robot embodiments are varied one at a time, at a fixed pretraining sample budget (every level
draws the same number of unique episodes), against no pretraining.

Each axis sets its own data key (h2r.study.grid.AXIS_DATA_KEYS: data.scene_diversity,
data.task_diversity, data.embodiment_diversity). `h2r study run` checks that the train config
has those keys before starting anything, and stops with a clear error if it does not.

    h2r study run --config experiments/study/factorial.py --workdir study/factorial --executor slurm
"""
from h2r.study.grid import paper_config


def get_config():
    config = paper_config()
    config.name = "factorial"
    config.levels = ("0",
                     "scenes:0.25", "scenes:0.5", "scenes:1.0",
                     "tasks:0.25", "tasks:0.5", "tasks:1.0",
                     "embodiments:0.25", "embodiments:0.5", "embodiments:1.0")
    # The same number of unique pretraining episodes at every level.
    config.train.pretrain_overrides = ("data.sample_budget=4096",)
    return config
