"""The smallest training config the input pipeline needs (`h2r data peek`, pipeline tests and
benchmarks): the contract's `data` block, `train.batch_size` and `model.image_size` only.

    h2r data peek --config experiments/train/pipeline_only.py --config.data.dir=DIR
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.train = ml_collections.ConfigDict({"batch_size": 8})
    config.model = ml_collections.ConfigDict({"image_size": 32})
    config.data = ml_collections.ConfigDict({
        "dir": "data/tiny",
        "kind": "cotrain",          # pretrain | cotrain | mixture
        "target": "sort_eggs",      # held-out setting name
        "diversity": 1.0,
        "other_embodiments": False,
        "sample_budget": 0,         # 0: every selected episode
        "human": True,
        "human_weight": 0.5,
        "human_loss": "both",       # both | subtask | action
        "use_wrist": True,
        "max_state_dim": 8,
        "max_action_dim": 8,
        "action_horizon": 4,
        "max_instruction_len": 16,
        "max_subtask_len": 8,
        "worker_count": 0,
        "seed": 0,
        # Beyond the contract (h2r/data/pipeline.py DEFAULTS):
        "norm": "quantile",         # quantile | mean_std
        "augment": False,
        "subset_seed": 0,
        "mixture": "",              # kind=mixture: "name:weight,name:weight"
    })
    return config
