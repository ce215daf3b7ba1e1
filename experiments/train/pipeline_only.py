"""The smallest training config the input pipeline needs (`h2r data peek`, pipeline tests and
benchmarks): the `data` block (h2r.data.config: every default), `train.batch_size` and
`model.image_size` only.

    h2r data peek --config experiments/train/pipeline_only.py --config.data.dir=DIR
"""
import ml_collections

from h2r.data.config import data_config


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.train = ml_collections.ConfigDict({"batch_size": 8})
    config.model = ml_collections.ConfigDict({"image_size": 32})
    config.data = data_config(dir="data/tiny", kind="cotrain", human=True, max_state_dim=8, action_horizon=4)
    return config
