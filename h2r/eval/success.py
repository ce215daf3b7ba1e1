"""`h2r eval --workdir W --setting NAME`: closed-loop success of the target robot in the world.

A setting name is a held-out setting of the catalogue (its `heldout-eval` combinations: what
only the human data showed) or `NAME:target-robot` (the target robot's own co-training
combinations: in distribution). Episodes cycle over the setting's (scene, task, variant)
combinations with seeds hashed from (--seed, setting, episode index), so the same command gives
the same episodes. The same `evaluate` runs any controller: the trained policy, and in tests the
scripted expert and a random policy.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable

import numpy as np

from h2r.errors import CheckpointError, DataError
from h2r.eval import intervals

ROLES = ("heldout-eval", "target-robot")


@dataclasses.dataclass(frozen=True)
class EvalSetting:
    name: str                                 # as given: "sort_eggs" or "sort_eggs:target-robot"
    setting: str
    role: str
    embodiment: str
    combos: tuple[tuple[str, str, int], ...]  # (scene, task_family, variant)


def parse_setting(name: str) -> EvalSetting:
    from h2r.world import catalogue  # noqa: PLC0415

    base, _, role = name.partition(":")
    role = role or "heldout-eval"
    known = [s.name for s in catalogue.SETTINGS]
    if base not in known or role not in ROLES:
        raise DataError(f"unknown eval setting {name!r}: expected one of {known}, optionally "
                        f"suffixed with one of {[':' + r for r in ROLES]} (default :heldout-eval)")
    setting = catalogue.setting(base)
    return EvalSetting(name, base, role, setting.target_embodiment,
                       tuple(catalogue.setting_combinations(setting, role)))


def all_settings() -> list[str]:
    from h2r.world import catalogue  # noqa: PLC0415
    return [f"{s.name}{suffix}" for s in catalogue.SETTINGS for suffix in ("", ":target-robot")]


def list_settings(args) -> int:
    for name in all_settings():
        es = parse_setting(name)
        print(f"{name:36s} {es.embodiment:14s} {len(es.combos)} combinations, e.g. {'/'.join(map(str, es.combos[0]))}")
    return 0


def episode_specs(es: EvalSetting, episodes: int, seed: int):
    """EpisodeSpecs cycling over the setting's combos; seeds hashed from (seed, setting, i)."""
    from h2r.world.config import make_specs  # noqa: PLC0415

    combos = [es.combos[i % len(es.combos)] for i in range(episodes)]
    seeds = np.random.SeedSequence([seed, *map(ord, es.name)]).generate_state(episodes, np.uint32)
    scene, task, variant = zip(*combos)
    return make_specs(list(scene), list(task), es.embodiment, seeds.astype(np.int64), list(variant)), combos


# ------------------------------------------------------------------------------ controllers
@functools.lru_cache(maxsize=None)  # one closure per key: compiled rollouts are reused
def policy_controller(embodiment: str, action_pad: int) -> Callable:
    """The trained policy (passed as `params`) for `embodiment`, actions zero-padded for step()."""
    import jax.numpy as jnp  # noqa: PLC0415

    def control(policy, obs, env_state, rng):
        chunk = policy.act(obs, rng, embodiment)
        return jnp.pad(chunk, ((0, 0), (0, 0), (0, action_pad - chunk.shape[-1])))
    return control


@functools.lru_cache(maxsize=None)
def expert_controller(env_config) -> Callable:
    """The world's scripted expert as a one-step chunk (privileged: it reads the state)."""
    import jax  # noqa: PLC0415
    from h2r.world import env as world  # noqa: PLC0415

    def control(params, obs, env_state, rng):
        keys = jax.random.split(rng, obs["image"].shape[0])
        return jax.vmap(lambda s, k: world.expert_action(s, k, env_config))(env_state, keys)[:, None, :]
    return control


@functools.lru_cache(maxsize=None)
def random_controller(action_pad: int, horizon: int = 8) -> Callable:
    """Uniform actions in [-1, 1] in every dimension (a floor for the success predicate)."""
    import jax  # noqa: PLC0415

    def control(params, obs, env_state, rng):
        return jax.random.uniform(rng, (obs["image"].shape[0], horizon, action_pad), minval=-1.0, maxval=1.0)
    return control


# ------------------------------------------------------------------------------ evaluation
def evaluate(controller: Callable, params: Any, es: EvalSetting, episodes: int, *, env_config,
             seed: int = 0, execute_steps: int = 1, max_steps: int | None = None,
             batch_size: int | None = None, record: int = 4, tokenize: Callable | None = None,
             interval: str = "wilson", progress: bool = False):
    """Runs `episodes` episodes of `es` and returns (result dict, RolloutOutcome of all episodes)."""
    import jax  # noqa: PLC0415
    from h2r.eval import rollout  # noqa: PLC0415

    if episodes < 1:
        raise DataError(f"--episodes must be >= 1, got {episodes}")
    max_steps = int(max_steps or env_config.horizon)
    batch_size = min(int(batch_size or episodes), episodes)
    specs, combos = episode_specs(es, episodes, seed)
    env = rollout.world_env(env_config)
    states = rollout.reset_states(env, specs)
    texts = instructions(states)
    run = rollout.make_rollout(env, controller, max_steps=max_steps, execute_steps=execute_steps, record=record)
    parts, start = [], time.time()
    num_batches = -(-episodes // batch_size)
    for b in range(num_batches):
        # Fixed batch shape (the last batch is padded by repetition): one compilation.
        idx = np.arange(b * batch_size, (b + 1) * batch_size).clip(max=episodes - 1)
        batch_states = jax.tree.map(lambda a: a[idx], states)
        extra = {"instruction": tokenize([texts[i] for i in idx])} if tokenize else {}
        out = rollout.outcome(run(params, batch_states, extra, jax.random.fold_in(jax.random.key(seed), b)))
        keep = min(batch_size, episodes - b * batch_size)
        parts.append(out if keep == batch_size else dataclasses.replace(
            out, success=out.success[:keep], length=out.length[:keep], max_phase=out.max_phase[:keep],
            num_phases=out.num_phases[:keep]))
        if progress:
            done, elapsed = (b + 1) * batch_size, time.time() - start
            print(f"eval {es.name}: {min(done, episodes)}/{episodes} episodes, "
                  f"{elapsed:.1f}s, ETA {elapsed / (b + 1) * (num_batches - b - 1):.0f}s", flush=True)
    wall = time.time() - start
    outcome = rollout.RolloutOutcome(
        success=np.concatenate([p.success for p in parts]), length=np.concatenate([p.length for p in parts]),
        max_phase=np.concatenate([p.max_phase for p in parts]),
        num_phases=np.concatenate([p.num_phases for p in parts]),
        frames=parts[0].frames[: min(record, episodes)])
    return summarize(outcome, es, combos, texts, interval=interval, seed=seed, execute_steps=execute_steps,
                     max_steps=max_steps, wall=wall), outcome


def instructions(states) -> list[str]:
    """Each episode's instruction, made in python from its (numpy) reset state, as the data
    generator does."""
    from h2r.world import tasks  # noqa: PLC0415

    return [tasks.instruction_from_state(tasks.unbatch(states, i)) for i in range(len(states.t))]


def summarize(outcome, es: EvalSetting, combos, texts, *, interval, seed, execute_steps, max_steps,
              wall) -> dict:
    from h2r.eval.rollout import phase_completion  # noqa: PLC0415

    successes = outcome.success.astype(int)
    lo, hi = intervals.success_interval(successes, interval)
    per_combo = {}
    for (scene, task, variant), s in zip(combos, successes):
        key = f"{scene}/{task}/{variant}"
        per_combo.setdefault(key, []).append(int(s))
    return {
        "setting": es.name, "role": es.role, "embodiment": es.embodiment,
        "episodes": int(len(successes)),
        "success_rate": float(successes.mean()),
        "ci95": [lo, hi], "ci_method": interval,
        "successes": successes.tolist(),
        "lengths": outcome.length.tolist(),
        "mean_length": float(outcome.length.mean()),
        "mean_length_success": float(outcome.length[outcome.success].mean()) if outcome.success.any() else None,
        "phase_completion": phase_completion(outcome.max_phase, outcome.success, outcome.num_phases),
        "max_phase": outcome.max_phase.tolist(),
        "num_phases": outcome.num_phases.tolist(),
        "per_combination": {k: float(np.mean(v)) for k, v in per_combo.items()},
        "instructions": texts[: min(len(texts), 8)],
        "seed": seed, "execute_steps": execute_steps, "max_steps": max_steps,
        "wall_s": round(wall, 3), "episodes_per_s": round(len(successes) / max(wall, 1e-9), 3),
    }


def env_config_of_run(config):
    """The world options the run's data was generated with (DIR/generation.json)."""
    from h2r.world.config import EnvConfig  # noqa: PLC0415

    path = os.path.join(str(config.data.dir), "generation.json")
    if not os.path.exists(path):
        raise DataError(f"{path} does not exist: the run's config.data.dir must be a directory written by "
                        f"`h2r data generate` (its world options set the evaluation's resolution and horizon)")
    with open(path) as f:
        return EnvConfig.from_config(json.load(f)["config"])


def main(args) -> int:
    import h2r  # noqa: PLC0415
    from h2r.eval import rollout  # noqa: PLC0415
    from h2r.eval.embeddings import write_json  # noqa: PLC0415
    from h2r.world.config import ACTION_PAD  # noqa: PLC0415

    es = parse_setting(args.setting)
    policy = h2r.load_policy(args.workdir, step=args.step)
    env_config = env_config_of_run(policy.config)
    horizon = int(policy.config.model.action_horizon)
    execute_steps = args.execute_steps or max(1, horizon // 2)
    if execute_steps > horizon:
        raise CheckpointError(f"--execute-steps={execute_steps} exceeds the model's action horizon {horizon}")
    out = args.out or os.path.join(args.workdir, "eval", f"{es.name.replace(':', '_')}.json")
    result, outcome = evaluate(
        policy_controller(es.embodiment, ACTION_PAD), policy, es, args.episodes, env_config=env_config,
        seed=args.seed, execute_steps=execute_steps, max_steps=args.max_steps, batch_size=args.batch_size,
        record=args.record, tokenize=policy.tokenize, interval=args.interval, progress=True)
    media_dir = os.path.splitext(out)[0] + "_rollouts"
    media = rollout.save_strips(outcome.frames, outcome.length, media_dir) if args.record > 0 else []
    result.update(step=int(policy.step), workdir=os.path.abspath(args.workdir),
                  media=[os.path.relpath(p, os.path.dirname(os.path.abspath(out))) for p in media])
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_json(result, out)
    print(f"eval {es.name}: success {result['success_rate']:.3f} "
          f"[{result['ci95'][0]:.3f}, {result['ci95'][1]:.3f}] over {result['episodes']} episodes, "
          f"mean length {result['mean_length']:.1f} -> {out}", flush=True)
    return 0
