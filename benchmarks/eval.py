"""Eval benchmark: episodes/s of the vectorized closed-loop rollout against one episode at a time.

Same policy, same world, same jitted functions; only the batching differs:
  vectorized   `h2r.eval.rollout.make_rollout` on all N episodes in one call (lax.while_loop
               over chunks, episodes vmapped);
  sequential   a python loop over episodes and steps calling the jitted policy (`Policy.act`,
               batch 1) and the jitted world functions (batch 1): the usual one-env eval loop;
  per_episode  the vectorized rollout program called once per episode with batch 1 (isolates
               batching from python-loop overhead).
Prints one JSON line; `speedup` = vectorized / sequential episodes/s.

The policy is the real tiny VLA (experiments/train/tiny.py model), trained for a couple of
steps on the micro data so that load_policy, its norm stats and tokenizer are the real ones
(weights do not change the cost). `--workdir W` benchmarks an existing run instead.

    .venv/bin/python benchmarks/eval.py [--episodes 256] [--sequential-episodes 4] [--workdir W]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_run(tmp: str) -> str:
    """Generates the micro data and trains the tiny model 2 steps on it; returns the run dir."""
    from h2r.config import load_config
    from h2r.data import generate
    from h2r.train.trainer import train

    data = os.path.join(tmp, "data")
    generate.generate(load_config(os.path.join(ROOT, "experiments", "data", "micro.py")), data)
    workdir = os.path.join(tmp, "run")
    config = load_config(os.path.join(ROOT, "experiments", "train", "tiny.py"), [
        f"--config.data.dir={data}", "--config.data.kind=cotrain", "--config.data.target=sort_eggs",
        "--config.data.human=True", "--config.train.steps=2", "--config.train.batch_size=8",
        "--config.train.checkpoint_every=2", "--config.train.log_every=1", "--config.train.warmup_steps=1"])
    with open(os.devnull, "w") as quiet:
        train(config, workdir, stream=quiet)
    return workdir


@functools.lru_cache(maxsize=None)  # built once: the timed run must reuse the warm-up's compilations
def _batch1_functions(env_config, embodiment: str):
    from h2r.eval import rollout, success
    from h2r.world.config import ACTION_PAD

    env = rollout.world_env(env_config)
    control = success.policy_controller(embodiment, ACTION_PAD)
    return (jax.jit(lambda pol, obs, key: control(pol, obs, None, key)), jax.jit(jax.vmap(env.step)),
            jax.jit(jax.vmap(env.observe)), jax.jit(jax.vmap(env.success)))


def sequential(policy, env_config, es, states, texts, *, max_steps, execute_steps, seed):
    """One episode at a time: python loops over steps, jitted batch-1 policy and world calls."""
    act, step, observe, succeeded = _batch1_functions(env_config, es.embodiment)
    results = []
    for i in range(len(texts)):
        state = jax.tree.map(lambda a: a[i:i + 1], states)
        tokens = policy.tokenize([texts[i]])
        rng, t, done = jax.random.fold_in(jax.random.key(seed), i), 0, False
        while t < max_steps and not done:
            rng, key = jax.random.split(rng)
            chunk = act(policy, {**observe(state), "instruction": tokens}, key)
            for j in range(min(execute_steps, chunk.shape[1])):
                state = step(state, chunk[:, j])
                t += 1
                done = bool(succeeded(state)[0])
                if done or t >= max_steps:
                    break
        results.append(done)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=256, help="episodes of the vectorized run")
    parser.add_argument("--sequential-episodes", type=int, default=4, help="episodes of each one-at-a-time loop")
    parser.add_argument("--setting", default="sort_eggs")
    parser.add_argument("--execute-steps", type=int, default=4)
    parser.add_argument("--workdir", default=None, help="an existing run (default: train a tiny one)")
    args = parser.parse_args()

    import h2r
    from h2r.eval import rollout, success
    from h2r.world.config import ACTION_PAD

    with tempfile.TemporaryDirectory() as tmp:
        es = success.parse_setting(args.setting)
        policy_note = f"tiny VLA ({args.workdir})" if args.workdir else "tiny VLA trained 2 steps on micro data"
        policy = h2r.load_policy(args.workdir or tiny_run(tmp))
        env_config = success.env_config_of_run(policy.config)
        max_steps = env_config.horizon
        control = success.policy_controller(es.embodiment, ACTION_PAD)
        env = rollout.world_env(env_config)

        def vectorized_rate(n: int, calls: int) -> tuple[float, float]:
            """episodes/s of `calls` calls of n episodes each (after a compile call), and compile s."""
            specs, _ = success.episode_specs(es, n, seed=0)
            states = rollout.reset_states(env, specs)
            tokens = policy.tokenize(success.instructions(states))
            run = rollout.make_rollout(env, control, max_steps=max_steps,
                                       execute_steps=args.execute_steps, record=0)
            start = time.perf_counter()
            jax.block_until_ready(run(policy, states, {"instruction": tokens}, jax.random.key(0)))
            compile_s = time.perf_counter() - start
            start = time.perf_counter()
            for c in range(calls):
                out = run(policy, states, {"instruction": tokens}, jax.random.key(c + 1))
            jax.block_until_ready(out)
            return n * calls / (time.perf_counter() - start), compile_s

        vec_rate, vec_compile = vectorized_rate(args.episodes, 1)
        per_episode_rate, _ = vectorized_rate(1, args.sequential_episodes)

        specs, _ = success.episode_specs(es, args.sequential_episodes, seed=0)
        states = rollout.reset_states(env, specs)
        texts = success.instructions(states)
        sequential(policy, env_config, es, states, texts, max_steps=max_steps,  # compile
                   execute_steps=args.execute_steps, seed=0)
        start = time.perf_counter()
        sequential(policy, env_config, es, states, texts, max_steps=max_steps,
                   execute_steps=args.execute_steps, seed=1)
        seq_rate = args.sequential_episodes / (time.perf_counter() - start)

    print(json.dumps({
        "benchmark": "eval_rollout",
        "policy": policy_note,
        "setting": es.name, "embodiment": es.embodiment, "max_steps": max_steps,
        "execute_steps": args.execute_steps, "image_size": env_config.image_size,
        "episodes": args.episodes, "sequential_episodes": args.sequential_episodes,
        "vectorized_episodes_per_s": round(vec_rate, 3),
        "sequential_episodes_per_s": round(seq_rate, 3),
        "per_episode_jit_episodes_per_s": round(per_episode_rate, 3),
        "speedup": round(vec_rate / seq_rate, 2),
        "speedup_vs_per_episode_jit": round(vec_rate / per_episode_rate, 2),
        "vectorized_compile_s": round(vec_compile, 2),
        "devices": [str(d) for d in jax.devices()][:1], "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    sys.exit(main())
