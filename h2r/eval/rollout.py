"""Closed-loop rollouts: a policy drives the world, all episodes stepping together.

One `jax.jit` holds the whole rollout: a `lax.while_loop` over action chunks (it stops as soon as
every episode is done), and inside it a `lax.fori_loop` executing the first `execute_steps`
actions of each predicted chunk (receding horizon, as pi0 does). The world functions are
vmapped over episodes; the policy sees a batch of observations.

A controller is `controller(params, obs, env_state, rng) -> f32[B, H, A]` (raw-unit action
chunks). `params` is a pytree passed through the jit as an argument (e.g. an h2r.policy.Policy),
so weights are not baked into the compiled program as constants. Learned policies ignore
`env_state`; the scripted expert reads it (it is privileged), which lets the same loop measure
the expert's known success as a check of this code and of the success predicate.
An episode ends at its first success (its state is then frozen) or after `max_steps`.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from h2r.files import atomic_write

Controller = Callable[[Any, dict, Any, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Env:
    """The world's pure functions for one episode each, closed over an env config."""
    reset: Callable      # spec -> state
    step: Callable       # state, action -> state
    observe: Callable    # state -> {"image", "wrist_image", "state"}
    success: Callable    # state -> bool
    phase: Callable      # state -> int32
    num_phases: Callable  # state -> int32: subtask phases of the episode (phase == num_phases: done)


@functools.lru_cache(maxsize=None)
def world_env(env_config) -> Env:
    """The procedural world (h2r.world.env) as an Env."""
    from h2r.world import env as world  # noqa: PLC0415

    return Env(
        reset=lambda spec: world.reset(spec, env_config),
        step=lambda state, action: world.step(state, action, env_config),
        observe=lambda state: world.observe(state, env_config),
        success=world.success,
        phase=world.phase,
        # Phases before "done" (phase 2 * moves means every move is done), as a traced int.
        num_phases=lambda state: 2 * jnp.sum(state.move_active).astype(jnp.int32),
    )


@dataclasses.dataclass(frozen=True)
class RolloutOutcome:
    """Per-episode results, numpy arrays over episodes (frames: the first `record` episodes)."""
    success: np.ndarray        # bool [N]
    length: np.ndarray         # int32 [N]: steps until success, or max_steps
    max_phase: np.ndarray      # int32 [N]: highest phase index reached
    num_phases: np.ndarray     # int32 [N]: phases of the episode's task
    frames: np.ndarray         # uint8 [R, T, H, 2W, 3]: head | wrist view, frozen after the end
    finite: bool = True        # every action chunk the controller returned was finite


def _select(done, old, new):
    """Per-episode `where` over a state pytree: done episodes keep their old state."""
    def pick(o, n):
        mask = done.reshape(done.shape + (1,) * (n.ndim - 1))
        return jnp.where(mask, o, n)
    return jax.tree.map(pick, old, new)


def _ensembled(chunk, c, m: float):
    """Adds `chunk` [B, H, A] to the running sums (its j-th action will be j steps old when executed:
    weight exp(m j)); returns the mean for this step as a one-action chunk, and the sums moved on a step."""
    weight = jnp.exp(m * jnp.arange(chunk.shape[1], dtype=jnp.float32))
    pending = c["pending"] + weight[None, :, None] * chunk
    pending_weight = c["pending_weight"] + weight
    now = pending[:, :1] / pending_weight[0]

    def shift(x, axis):   # drop step t, open an empty slot for step t+H
        return jnp.concatenate([jax.lax.slice_in_dim(x, 1, None, axis=axis),
                                jnp.zeros_like(jax.lax.slice_in_dim(x, 0, 1, axis=axis))], axis)

    return now, dict(c, pending=shift(pending, 1), pending_weight=shift(pending_weight, 0))


def _head(state, n):
    """The first n episodes of a batched state."""
    return jax.tree.map(lambda x: x[:n], state)


def _frame(obs, record):
    return jnp.concatenate([obs["image"][:record], obs["wrist_image"][:record]], axis=2)


@functools.lru_cache(maxsize=None)
def _reset_one(env: Env) -> Callable:
    return jax.jit(env.reset)


def reset_states(env: Env, specs) -> Any:
    """Reset states (numpy, leading axis = episode) of a batch of specs.

    One episode per call of a jitted unbatched reset: it compiles once for every batch size
    (the world's reset is slow to compile, and eval batch sizes vary), and costs ~ms per episode.
    """
    reset = _reset_one(env)
    num = len(jax.tree.leaves(specs)[0])
    states = [jax.device_get(reset(jax.tree.map(lambda a: a[i], specs))) for i in range(num)]
    return jax.tree.map(lambda *xs: np.stack(xs), *states)


# Cached: the same (env, controller, sizes) reuses its compiled program within a process.
@functools.lru_cache(maxsize=16)
def make_rollout(env: Env, controller: Controller, *, max_steps: int, execute_steps: int,
                 record: int = 4, ensemble: float | None = None, episode_noise: bool = False) -> Callable:
    """Returns a jitted `run(params, states, extra_obs, rng) -> dict of arrays` over a batch of
    episodes starting from `states` (from `reset_states`: the caller needs the reset states to
    write instructions, and the world's reset compiles once, apart from the loop).

    `extra_obs` (e.g. tokenized instructions, one row per episode) is merged into every
    observation the controller sees. `execute_steps` actions of each chunk are executed before
    replanning (clipped to the chunk length the controller returns).

    `ensemble` (temporal ensembling, ACT: Zhao et al. 2023): replan every step and execute, for
    step t, the weighted mean of every prediction made for t by the chunks of steps t-H+1..t, a
    prediction that will be `a` steps old when executed weighted exp(ensemble * a) (ACT's m: 0 is
    a plain mean, > 0 trusts older predictions more, a large negative value is plain replanning).

    `episode_noise`: every replan of an episode gets the same random key (so a sampling policy
    starts its flow from the same noise all episode long: one draw commits to one mode of a
    multimodal action distribution) instead of a fresh key per replan.
    """
    if max_steps < 1 or execute_steps < 1:
        raise ValueError(f"max_steps ({max_steps}) and execute_steps ({execute_steps}) must be >= 1")
    if ensemble is not None and execute_steps != 1:
        raise ValueError(f"temporal ensembling replans every step: execute_steps must be 1, got {execute_steps}")
    step = jax.vmap(env.step)
    observe, success, phase = jax.vmap(env.observe), jax.vmap(env.success), jax.vmap(env.phase)
    num_phases = jax.vmap(env.num_phases)

    def run(params, state, extra_obs, rng):
        num = success(state).shape[0]
        rec = min(record, num)
        carry = dict(state=state, rng=rng, t=jnp.zeros((), jnp.int32), done=success(state),
                     succeeded=success(state), length=jnp.zeros((num,), jnp.int32), max_phase=phase(state),
                     finite=jnp.ones((), bool))
        if ensemble is not None:  # running weighted sums of the predictions for steps t..t+H-1
            shape = jax.eval_shape(controller, params, {**observe(state), **extra_obs}, state, rng).shape
            carry.update(pending=jnp.zeros(shape), pending_weight=jnp.zeros(shape[1]))
        if rec:  # frames of the first `rec` episodes, rendered only for those
            first = _frame(observe(_head(state, rec)), rec)
            frames = jnp.zeros((rec, max_steps + 1) + first.shape[1:], jnp.uint8)
            carry["frames"] = frames.at[:, 0].set(first)

        def plan_and_execute(c):
            rng, key = (c["rng"], c["rng"]) if episode_noise else jax.random.split(c["rng"])
            obs = {**observe(c["state"]), **extra_obs}
            chunk = controller(params, obs, c["state"], key)
            k = min(execute_steps, chunk.shape[1])
            c = dict(c, finite=c["finite"] & jnp.all(jnp.isfinite(chunk)))  # NaN/inf: refused by evaluate
            if ensemble is not None:
                chunk, c = _ensembled(chunk, c, ensemble)

            def one_step(j, c):
                state = _select(c["done"], c["state"], step(c["state"], chunk[:, j]))
                t = c["t"] + 1
                now_success = success(state)
                active = ~c["done"]
                new = dict(c, state=state, t=t,
                           done=c["done"] | now_success | (t >= max_steps),
                           succeeded=c["succeeded"] | (active & now_success),
                           length=c["length"] + active.astype(jnp.int32),
                           max_phase=jnp.maximum(c["max_phase"], phase(state)))
                if rec:
                    new["frames"] = jax.lax.dynamic_update_index_in_dim(
                        c["frames"], _frame(observe(_head(state, rec)), rec), jnp.minimum(t, max_steps), axis=1)
                return new

            return jax.lax.fori_loop(0, k, one_step, {**c, "rng": rng})

        def not_finished(c):
            return (c["t"] < max_steps) & ~jnp.all(c["done"])

        c = jax.lax.while_loop(not_finished, plan_and_execute, carry)
        out = dict(success=c["succeeded"], length=c["length"], max_phase=c["max_phase"],
                   num_phases=num_phases(state), finite=c["finite"])
        if rec:
            # The loop stops when every episode is done: frames after an episode's end repeat
            # its last frame (it is frozen), so GIFs end cleanly.
            last = jnp.clip(c["length"][:rec], 0, max_steps)
            idx = jnp.minimum(jnp.arange(max_steps + 1)[None, :], last[:, None])
            out["frames"] = jnp.take_along_axis(c["frames"], idx[:, :, None, None, None], axis=1)
        return out

    return jax.jit(run)


def outcome(arrays: dict) -> RolloutOutcome:
    arrays = jax.device_get(arrays)
    return RolloutOutcome(success=np.asarray(arrays["success"], bool),
                          length=np.asarray(arrays["length"], np.int32),
                          max_phase=np.asarray(arrays["max_phase"], np.int32),
                          num_phases=np.asarray(arrays["num_phases"], np.int32),
                          frames=np.asarray(arrays.get("frames", np.zeros((0, 0, 0, 0, 3))), np.uint8),
                          finite=bool(arrays.get("finite", True)))


def phase_completion(max_phase: np.ndarray, success: np.ndarray, num_phases: np.ndarray) -> list[float]:
    """Per phase index p: the fraction of episodes (among those whose task has phase p) that
    completed it, i.e. reached a later phase or succeeded."""
    max_phase, success, num_phases = np.asarray(max_phase), np.asarray(success, bool), np.asarray(num_phases)
    out = []
    for p in range(int(num_phases.max(initial=0))):
        has = num_phases > p
        out.append(float(np.mean(((max_phase > p) | success)[has])))
    return out


def save_strips(frames: np.ndarray, lengths: np.ndarray, out_dir: str, prefix: str = "episode",
                columns: int = 8) -> list[str]:
    """Writes, per recorded episode, a GIF and a PNG strip of `columns` evenly spaced frames."""
    from PIL import Image  # noqa: PLC0415

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    scale = max(1, 128 // max(frames.shape[2], 1))  # small renders are upscaled (nearest) to be seen
    frames = frames.repeat(scale, axis=2).repeat(scale, axis=3)
    for i, episode in enumerate(frames):
        end = int(lengths[i]) + 1
        shown = episode[:end]
        picks = np.unique(np.linspace(0, end - 1, min(columns, end)).round().astype(int))
        strip = np.concatenate([shown[p] for p in picks], axis=1)
        png = os.path.join(out_dir, f"{prefix}_{i:02d}.png")
        gif = os.path.join(out_dir, f"{prefix}_{i:02d}.gif")
        _atomic_image_write(png, lambda f: Image.fromarray(strip).save(f, format="PNG"))
        images = [Image.fromarray(f) for f in shown]
        _atomic_image_write(gif, lambda f: images[0].save(
            f, format="GIF", save_all=True, append_images=images[1:], duration=80, loop=0))
        paths += [png, gif]
    return paths


def _atomic_image_write(path: str, write: Callable) -> None:
    with atomic_write(path, "wb") as f:
        write(f)
