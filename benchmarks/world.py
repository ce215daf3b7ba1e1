"""World benchmark: vectorized env steps/s WITH rendering against a one-episode-at-a-time loop.

One env step here = observe (both views drawn) + scripted expert action + step, i.e. what a
data-generation or evaluation loop does per step. Same world, same jitted functions; only the
batching differs:
  vectorized   N episodes vmapped, T steps in one jitted lax.scan (one call);
  sequential   a python loop over episodes and steps calling the jitted single-env function
               (observe + expert + step) once per step: the usual one-env loop.
Also times `episodes.rollout_expert` (simulate, cut at success, draw kept steps) in episodes/s.
Compile time is excluded (each path runs once before timing). Prints one JSON line.

    .venv/bin/python benchmarks/world.py [--envs 256] [--steps 48] [--size 32] [--sequential-episodes 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np


def _specs(n: int):
    from h2r.world import catalogue as cat
    from h2r.world.config import make_specs
    return make_specs([i % 24 for i in range(n)], [i % len(cat.TASK_FAMILIES) for i in range(n)],
                      [i % len(cat.EMBODIMENTS) for i in range(n)], seed=np.arange(n))


def _env_step(state, key, cfg):
    from h2r.world import env
    obs = env.observe(state, cfg)
    action = env.expert_action(state, key, cfg)
    return env.step(state, action, cfg), obs["image"][0, 0, 0].astype(jnp.int32) + obs["wrist_image"][0, 0, 0]


@functools.partial(jax.jit, static_argnums=(1,))
def _vectorized(specs, cfg):
    from h2r.world import env

    def one(spec):
        def body(s, t):
            s, pixel = _env_step(s, jax.random.fold_in(jax.random.PRNGKey(spec.seed), t), cfg)
            return s, pixel
        _, pixels = jax.lax.scan(body, env.reset(spec, cfg), jnp.arange(cfg.horizon))
        return pixels.sum()
    return jax.vmap(one)(specs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--sequential-episodes", type=int, default=2)
    parser.add_argument("--rollout-episodes", type=int, default=128)
    args = parser.parse_args()

    from h2r.world import env, episodes
    from h2r.world.config import TINY
    cfg = dataclasses.replace(TINY, image_size=args.size, horizon=args.steps)
    specs = _specs(args.envs)

    t = time.perf_counter()
    _vectorized(specs, cfg).block_until_ready()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    _vectorized(specs, cfg).block_until_ready()
    vec_s = time.perf_counter() - t
    vec_steps = args.envs * args.steps / vec_s

    reset = jax.jit(env.reset, static_argnums=1)
    one_step = jax.jit(_env_step, static_argnums=2)
    single = jax.tree.map(lambda x: x[0], specs)
    state, _ = one_step(reset(single, cfg), jax.random.PRNGKey(0), cfg)      # compile
    jax.block_until_ready(state)
    t = time.perf_counter()
    for e in range(args.sequential_episodes):
        spec = jax.tree.map(lambda x: x[e], specs)
        state = reset(spec, cfg)
        for step in range(args.steps):
            state, pixel = one_step(state, jax.random.fold_in(jax.random.PRNGKey(e), step), cfg)
        jax.block_until_ready(pixel)
    seq_s = time.perf_counter() - t
    seq_steps = args.sequential_episodes * args.steps / seq_s

    rollout_specs = _specs(args.rollout_episodes)
    episodes.rollout_expert(rollout_specs, cfg, batch_size=64)                 # compile
    t = time.perf_counter()
    eps = episodes.rollout_expert(rollout_specs, cfg, batch_size=64)
    rollout_s = time.perf_counter() - t

    print(json.dumps({
        "benchmark": "world", "envs": args.envs, "steps": args.steps, "image_size": args.size,
        "vectorized_steps_per_s": round(vec_steps, 1), "sequential_steps_per_s": round(seq_steps, 1),
        "speedup": round(vec_steps / seq_steps, 1), "vectorized_compile_s": round(compile_s, 1),
        "rollout_expert_episodes_per_s": round(len(eps) / rollout_s, 2),
        "rollout_expert_mean_length": round(float(np.mean([e["length"] for e in eps])), 1),
        "devices": str(jax.devices()[0].platform), "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
