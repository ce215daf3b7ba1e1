"""The world's functional API (the contract in BUILD_NOTES.md): reset, step, observe, render,
success, phase, expert_action. All are pure jax functions of a State pytree; they jit (pass
`env_config` as a static argument) and vmap over batched EpisodeSpecs/States.

    import functools, jax
    from h2r.world import env
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)), static_argnums=1)
    states = reset(env.make_specs("oak_kitchen", "stack", "jaw_arm", seed=[0, 1, 2]), env.EnvConfig())

Actions are f32[ACTION_PAD] (the embodiment's action zero-padded: `pad_action`), state vectors
f32[STATE_PAD] (slice to the catalogue's state_dim: `unpad_state`).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from h2r.world import catalogue as cat
from h2r.world import dynamics
from h2r.world import render as _render
from h2r.world import tasks
from h2r.world.config import ACTION_PAD, STATE_PAD, TINY, EnvConfig, EpisodeSpec, make_specs  # noqa: F401
from h2r.world.experts import expert_action  # noqa: F401
from h2r.world.state import State, reset  # noqa: F401

step = dynamics.step
success = tasks.success
phase = tasks.phase
render = _render.render


def observe(state: State, env_config: EnvConfig = EnvConfig()):
    """{"image": uint8[R,R,3], "wrist_image": uint8[R,R,3], "state": f32[STATE_PAD]}."""
    views = _render.render(state, env_config)
    return {**views, "state": dynamics.proprio(state)}


def pad_action(action, embodiment: str | None = None):
    """Zero-pads an embodiment's action (last axis) to ACTION_PAD for `step`."""
    action = jnp.asarray(action, jnp.float32)
    if embodiment is not None and action.shape[-1] != cat.embodiment(embodiment).action_dim:
        raise ValueError(f"action for {embodiment!r} has {action.shape[-1]} dims; expected "
                         f"{cat.embodiment(embodiment).action_dim} ({cat.embodiment(embodiment).action_names})")
    pad = [(0, 0)] * (action.ndim - 1) + [(0, ACTION_PAD - action.shape[-1])]
    return jnp.pad(action, pad)


def unpad_state(state_vector, embodiment: str):
    return np.asarray(state_vector)[..., :cat.embodiment(embodiment).state_dim]


def instruction(spec: EpisodeSpec, env_config: EnvConfig = EnvConfig()) -> str:
    """The instruction of one episode (unbatched spec); resets the world to read its objects."""
    return tasks.instruction_from_state(_reset_np(spec, env_config))


def subtask_text(spec: EpisodeSpec, phase_index: int, env_config: EnvConfig = EnvConfig()) -> str:
    texts = tasks.subtasks_from_state(_reset_np(spec, env_config))
    return texts[min(int(phase_index), len(texts) - 1)]


def _reset_np(spec, env_config):
    spec = EpisodeSpec(*(np.asarray(x).reshape(()) for x in spec))
    return jax.tree_util.tree_map(np.asarray, _jitted_reset()(spec, env_config))


@functools.lru_cache(maxsize=None)
def _jitted_reset():
    return jax.jit(reset, static_argnums=1)
