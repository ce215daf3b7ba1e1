"""The model's parameters as the plain nested dict a checkpoint holds, for training and loading.

The trainer (h2r/train/trainer.py) and the served policy (h2r/policy.py) both build the model's
abstract params from its config, restore a checkpoint's `params` (or `ema`) item into them and
merge the dict back into the nnx model; this module is the one place that knows how.
"""
from __future__ import annotations

import jax
from flax import nnx

from h2r.model.vla import VLA


def str_keys(tree):
    """Nested dict with every key a string (orbax stores dict keys as strings anyway)."""
    if isinstance(tree, dict):
        return {str(k): str_keys(v) for k, v in tree.items()}
    return tree


def merge_model(graphdef, params, rest) -> VLA:
    """The nnx model for a params dict (inside jit: a pure function of the arrays)."""
    return nnx.merge(graphdef, nnx.State(nnx.restore_int_paths(params)), rest)


def abstract_model(model_config, seed: int):
    """(graphdef, abstract params state, rest state) without allocating any parameter."""
    model = nnx.eval_shape(lambda: VLA(model_config, rngs=nnx.Rngs(seed)))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, params, rest


def abstract_params(params_state, shardings):
    """The params dict's ShapeDtypeStructs (the restore target of a checkpoint's `params` or `ema`):
    `shardings` one Sharding for every array, or a dict of them shaped like the params."""
    params = str_keys(nnx.to_pure_dict(params_state))
    if isinstance(shardings, jax.sharding.Sharding):
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=shardings), params)
    return jax.tree.map(lambda a, sh: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sh), params, shardings)
