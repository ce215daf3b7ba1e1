"""The VLA policy model (flax.nnx): `VLA(config.model, rngs=nnx.Rngs(seed))`, `model_config(size)`."""
from h2r.model.config import PRESET_BATCH_SIZE, model_config
from h2r.model.vla import VLA

__all__ = ["VLA", "model_config", "PRESET_BATCH_SIZE"]
