"""Data for one GPU: every scene, task family and embodiment of the catalogue, 64x64 images
(h2r.data.config.generation_config: the base every data preset changes).

    h2r data generate --config experiments/data/base.py --out data/base
"""
from h2r.data.config import generation_config


def get_config():
    return generation_config()
