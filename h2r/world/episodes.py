"""Expert episodes as numpy: what the RLDS writer records.

`rollout_expert(specs, env_config)` runs the scripted expert for a batch of episodes (vmapped,
jitted, lax.scan over time without drawing), cuts each episode `steps_after_success` steps after
its first success, then draws only the kept steps (both views) in fixed-size jitted chunks.

The recorded action is the embodiment's action as a dataset would hold it: for robots exactly
the action given to `step` (replaying it reproduces the states), or with
`EnvConfig.dart_noise` or `dart_grip` > 0 the expert's noise-free action in that state (DART:
the executed, noisier or fumbled command stays in the episode's `command`); for the human the tracked
wrist motion in the head-camera frame plus uniform tracking noise in
[-env_config.tracking_noise, +tracking_noise] per dim (action units), and no grip.
"""
from __future__ import annotations

import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from h2r.world import catalogue as cat
from h2r.world import dynamics, experts, render, tasks
from h2r.world.config import EnvConfig, EpisodeSpec, make_specs  # noqa: F401  (make_specs re-exported)
from h2r.world.state import State, reset

EXPERT_STREAM, TRACKING_STREAM = 1, 2     # PRNG streams (folded with the episode seed)
FUMBLE_STREAM = 3                         # folded into a step's expert key: DART's grip fumbles


def _keys(stream: int, seed):
    return jax.random.fold_in(jax.random.PRNGKey(stream), seed)


def recorded_action(state: State, command, key, env_config: EnvConfig):
    """The action a dataset records for the command given to step (f32[ACTION_PAD])."""
    human = dynamics.emb(state, dynamics.tb.EMB_IS_HUMAN)
    noise = jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0) * env_config.tracking_noise
    tracked = jnp.concatenate([command[:2] + noise, jnp.zeros(1)])
    return jnp.where(human, tracked, command)


@functools.partial(jax.jit, static_argnums=1)
def _simulate(specs: EpisodeSpec, env_config: EnvConfig):
    """Per-step states (before each action), commands, recorded actions, phases and successes."""
    def one(spec):
        expert_key, tracking_key = _keys(EXPERT_STREAM, spec.seed), _keys(TRACKING_STREAM, spec.seed)

        def body(s, t):
            key = jax.random.fold_in(expert_key, t)
            dart, noise = env_config.dart_noise > 0 or env_config.dart_grip > 0, None
            if dart:  # robots only: a human's tracked wrist is its real motion
                robot = dynamics.emb(s, dynamics.tb.EMB_IS_HUMAN) == 0
                if env_config.dart_noise > 0:
                    noise = jnp.where(robot, env_config.dart_noise, env_config.expert_noise)
            command = experts.expert_action(s, key, env_config, noise_scale=noise)
            if env_config.dart_grip > 0:  # its own stream: the motion noise above is unchanged
                command = experts.fumble_grip(s, command, jax.random.fold_in(key, FUMBLE_STREAM), env_config)
            action = recorded_action(s, command, jax.random.fold_in(tracking_key, t), env_config)
            if dart:
                intended = experts.expert_action(s, key, env_config, noise_scale=0.0)
                action = jnp.where(robot, intended, action)
            s_next = dynamics.step(s, command, env_config)
            out = dict(state=s, command=command, action=action, phase=tasks.phase(s),
                       success=tasks.success(s_next), ee_next=s_next.ee,
                       camera_angle=dynamics.camera_angle(s), proprio=dynamics.proprio(s))
            return s_next, out

        s0 = reset(spec, env_config)
        _, traj = jax.lax.scan(body, s0, jnp.arange(env_config.horizon))
        return s0, traj
    return jax.vmap(one)(specs)


@functools.partial(jax.jit, static_argnums=1)
def _draw(states: State, env_config: EnvConfig):
    return jax.vmap(lambda s: render.render(s, env_config))(states)


def _pad_to(tree, n: int):
    """Pads the leading axis of every leaf to n by repeating the last row."""
    def pad(x):
        x = np.asarray(x)
        return np.concatenate([x, np.repeat(x[-1:], n - len(x), 0)]) if len(x) < n else x
    return jax.tree_util.tree_map(pad, tree)


def episode_lengths(success: np.ndarray, steps_after_success: int) -> np.ndarray:
    """[B] lengths: up to `steps_after_success` steps after the first success, else the horizon."""
    horizon = success.shape[1]
    first = np.where(success.any(1), success.argmax(1), horizon)
    return np.minimum(horizon, first + 1 + steps_after_success)


def draw_states(states: State, env_config: EnvConfig, chunk: int = 256):
    """Both views of a flat batch of states, drawn in fixed-size chunks (one compilation)."""
    n = len(np.asarray(states.t))
    images, wrists = [], []
    for start in range(0, n, chunk):
        part = jax.tree_util.tree_map(lambda x: np.asarray(x)[start:start + chunk], states)
        views = _draw(_pad_to(part, chunk), env_config)
        m = min(chunk, n - start)
        images.append(np.asarray(views["image"])[:m])
        wrists.append(np.asarray(views["wrist_image"])[:m])
    return np.concatenate(images), np.concatenate(wrists)


def _rollout_batch(specs: EpisodeSpec, env_config: EnvConfig, render_chunk: int, n: int) -> list[dict]:
    """The first n episodes of a (padded) batch of specs."""
    s0, traj = _simulate(specs, env_config)
    traj = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], traj)
    s0 = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], s0)
    return episodes_of_trajectories(s0, traj, env_config, render_chunk)


def episodes_of_trajectories(s0, traj: dict, env_config: EnvConfig, render_chunk: int = 256) -> list[dict]:
    """Episode dicts of a batch of simulated trajectories (numpy, [B, T] leaves: `state` before
    each action, `command`, recorded `action`, `phase`, `success` after it, `ee_next`,
    `camera_angle`, `proprio`; optionally `move`, the move each label works on, which then names
    the subtask: tasks.subtask_of_move), cut `steps_after_success` after the first success; only the kept
    steps are drawn. Expert rollouts and DAgger's policy rollouts (h2r.data.dagger) both end here."""
    lengths = episode_lengths(traj["success"], env_config.steps_after_success)
    # Draw only the kept steps.
    b_idx = np.concatenate([np.full(n, b) for b, n in enumerate(lengths)])
    t_idx = np.concatenate([np.arange(n) for n in lengths])
    flat = jax.tree_util.tree_map(lambda x: x[b_idx, t_idx], traj["state"])
    images, wrists = draw_states(flat, env_config, render_chunk)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return [_episode(b, s0, traj, int(lengths[b]), images[offsets[b]:offsets[b + 1]],
                     wrists[offsets[b]:offsets[b + 1]]) for b in range(len(lengths))]


def _episode(b: int, s0, traj, length: int, images, wrists) -> dict:
    first = jax.tree_util.tree_map(lambda x: x[b], s0)
    spec = first.spec
    embodiment = cat.EMBODIMENTS[int(spec.embodiment)]
    phase = traj["phase"][b, :length].astype(np.int32)
    # The move each label works on: the expert's in slot order (phase // 2) unless recorded (DAgger).
    move = traj["move"][b, :length] if "move" in traj else phase // 2
    success = bool(traj["success"][b, length - 1])
    is_last = np.arange(length) == length - 1
    return {
        "image": images, "wrist_image": wrists,
        "state": traj["proprio"][b, :length, :embodiment.state_dim].astype(np.float32),
        "action": traj["action"][b, :length, :embodiment.action_dim].astype(np.float32),
        "phase": phase,
        "subtask": [tasks.subtask_of_move(first, int(m), int(p)) for m, p in zip(move, phase)],
        "reward": (is_last & success).astype(np.float32),
        "discount": np.ones(length, np.float32),
        "is_first": np.arange(length) == 0, "is_last": is_last, "is_terminal": is_last & success,
        "instruction": tasks.instruction_from_state(first),
        "length": length, "success": success,
        "scene": cat.SCENES[int(spec.scene)].name,
        "task_family": cat.TASK_FAMILIES[int(spec.task_family)].name,
        "embodiment": embodiment.name, "variant": int(spec.variant),
        "seed": int(np.uint32(np.int32(spec.seed))),
        # World internals (tests and analysis; not part of the RLDS schema):
        "command": traj["command"][b, :length], "ee": traj["state"].ee[b, :length],
        "ee_next": traj["ee_next"][b, :length], "camera_angle": traj["camera_angle"][b, :length],
    }


def rollout_expert(specs: EpisodeSpec, env_config: EnvConfig = EnvConfig(), batch_size: int = 64,
                   render_chunk: int = 256, progress: Callable[[int, int, float], None] | None = None
                   ) -> list[dict]:
    """Expert episodes of `specs` (batched, from make_specs), in order, as numpy dicts.

    Batches are padded to `batch_size` so every batch reuses one compilation. `progress`
    (done, total, seconds) is called after each batch.
    """
    specs = EpisodeSpec(*(np.asarray(x) for x in specs))
    total = len(specs.seed)
    episodes, start_time = [], time.time()
    for start in range(0, total, batch_size):
        part = EpisodeSpec(*(x[start:start + batch_size] for x in specs))
        n = len(part.seed)
        episodes.extend(_rollout_batch(_pad_to(part, batch_size), env_config, render_chunk, n))
        if progress is not None:
            progress(len(episodes), total, time.time() - start_time)
    return episodes
