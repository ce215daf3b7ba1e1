"""`h2r eval --workdir W --setting NAME`: closed-loop success of a robot in the world.

A setting name is one of
- `NAME`: a held-out setting of the catalogue, on its `heldout-eval` combinations (what only the
  human data showed) with its target robot (`NAME:heldout-eval` is the same);
- `NAME:target-robot`: the target robot's own co-training combinations (in distribution);
- `pretrain:ROBOT`: ROBOT on the pretraining (scene, task family, variant) combinations the run's
  data was generated with (as h2r.data.plan plans them; needs the data config).
Episodes cycle over the setting's combinations with seeds hashed from (--seed, setting, episode
index), so the same command gives the same episodes; a seed that the run's data planned for the
same embodiment is redrawn (never evaluate on a training episode). The same `evaluate` runs any
controller: the trained policy, and in tests the scripted expert and a random policy.

The result keeps per-episode outcomes (`episodes_detail`) and where failed episodes stopped
(`failure_breakdown`: by the furthest subtask phase reached).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from h2r import files
from h2r.config import config_from_json
from h2r.data import plan
from h2r.errors import CheckpointError, DataError
from h2r.eval import intervals, rollout
from h2r.eval.rollout import phase_completion
from h2r.world import catalogue, tasks
from h2r.world import env as world
from h2r.world.config import ACTION_PAD, EnvConfig, make_specs

ROLES = ("heldout-eval", "target-robot")   # NAME:ROLE of a held-out setting
PRETRAIN = "pretrain"                      # pretrain:ROBOT


@dataclasses.dataclass(frozen=True)
class EvalSetting:
    name: str                                 # as given: "sort_eggs", "sort_eggs:target-robot", "pretrain:jaw_arm"
    setting: str                              # the held-out setting's name ("pretrain" for pretrain:ROBOT)
    role: str                                 # heldout-eval | target-robot | pretrain
    embodiment: str
    combos: tuple[tuple[str, str, int], ...]  # (scene, task_family, variant)


def _forms() -> str:
    return (f"expected NAME, NAME:target-robot or NAME:heldout-eval with NAME one of "
            f"{[s.name for s in catalogue.SETTINGS]}, or {PRETRAIN}:ROBOT with ROBOT one of {list(catalogue.ROBOTS)}")


def parse_setting(name: str, data_config=None) -> EvalSetting:
    """The setting `name` names. `data_config` (the run's data config, see `data_config_of_run`)
    is needed only by `pretrain:ROBOT`, whose combinations are those of the run's data."""
    base, _, role = name.partition(":")
    if base == PRETRAIN:
        robot = check_robot(role, name)
        if data_config is None:
            raise DataError(f"eval setting {name!r}: {PRETRAIN}:ROBOT evaluates on the pretraining combinations "
                            f"of the run's data, so it needs the run's data config (generation.json)")
        return EvalSetting(name, PRETRAIN, PRETRAIN, robot, pretrain_combinations(data_config))
    role = role or "heldout-eval"
    known = [s.name for s in catalogue.SETTINGS]
    if base not in known or role not in ROLES:
        raise DataError(f"unknown eval setting {name!r}: {_forms()}")
    setting = catalogue.setting(base)
    return EvalSetting(name, base, role, setting.target_embodiment,
                       tuple(catalogue.setting_combinations(setting, role)))


def check_robot(robot: str, name: str) -> str:

    if robot in catalogue.ROBOTS:
        return robot
    if not robot:
        why = "names no robot"
    elif robot == catalogue.HUMAN:
        why = f"{robot!r} is the human, not a robot"
    else:
        why = f"unknown robot {robot!r}"
    raise DataError(f"eval setting {name!r}: {why}; {PRETRAIN}:ROBOT takes ROBOT one of {list(catalogue.ROBOTS)}")


# ------------------------------------------------------------------- the run's data (plan.py)
def _as_config(data_config):
    return data_config if isinstance(data_config, ml_collections.ConfigDict) else ml_collections.ConfigDict(data_config)


@functools.lru_cache(maxsize=4)
def _plan_of(config_json: str):
    try:
        return tuple(plan.plan_episodes(_as_config(json.loads(config_json))))
    except (AttributeError, KeyError) as e:
        raise DataError(f"the run's data config cannot be planned ({e}): was it written by `h2r data generate`?") from e


def planned_episodes(data_config):
    """h2r.data.plan.plan_episodes(data_config), cached (eval asks for it more than once)."""
    config = _as_config(data_config).to_dict()
    return _plan_of(json.dumps(config, sort_keys=True, default=str))


def pretrain_combinations(data_config) -> tuple[tuple[str, str, int], ...]:
    """The (scene, task_family, variant) combinations the data pretrained on
    (h2r.data.plan.pretrain_combinations); an error when it generated no pretraining episodes."""
    config = _as_config(data_config)
    combos = tuple(plan.pretrain_combinations(config)) if config.get("episodes_per_combination", 0) > 0 else ()
    if not combos:
        raise DataError("the run's data has no pretraining episodes (episodes_per_combination="
                        f"{config.get('episodes_per_combination')}), so {PRETRAIN}:ROBOT has no "
                        "combinations to evaluate")
    return combos


def planned_seeds(data_config, embodiment: str) -> frozenset[int]:
    """World seeds (mod 2**32, as the world takes them) of every episode the data planned for
    `embodiment` (train and val)."""
    return frozenset(int(e.seed) % 2 ** 32 for e in planned_episodes(data_config) if e.embodiment == embodiment)


def trained_seeds(config, embodiment: str) -> frozenset[int]:
    """`planned_seeds` of the data of run config `config` (config.data.dir/generation.json)."""
    return planned_seeds(data_config_of_run(config), embodiment)


def settings_lines(workdir: str | None = None) -> list[str]:
    """`h2r eval settings`: one line per setting name; pretrain:ROBOT combinations are counted
    from the data of run `workdir` when given."""
    data_config = None
    if workdir:
        data_config = data_config_of_run(config_from_json(_config_path(workdir)))
    lines = []
    for name in all_settings():
        es = parse_setting(name)
        lines.append(f"{name:36s} {es.embodiment:14s} {len(es.combos)} combinations, e.g. {'/'.join(map(str, es.combos[0]))}")
    for robot in catalogue.ROBOTS:
        name = f"{PRETRAIN}:{robot}"
        if data_config is None:
            lines.append(f"{name:36s} {robot:14s} the pretraining combinations of the run's data (--workdir W to count them)")
        else:
            combos = parse_setting(name, data_config).combos
            lines.append(f"{name:36s} {robot:14s} {len(combos)} combinations, e.g. {'/'.join(map(str, combos[0]))}")
    return lines


def all_settings() -> list[str]:
    """Held-out settings and their :target-robot forms (pretrain:ROBOT needs a run's data)."""
    return [f"{s.name}{suffix}" for s in catalogue.SETTINGS for suffix in ("", ":target-robot")]


def episode_seeds(name: str, episodes: int, seed: int, excluded_seeds: Iterable[int] = ()) -> np.ndarray:
    """uint32 [episodes]: seeds hashed from (seed, name, i); a seed in `excluded_seeds` (compared
    mod 2**32) is replaced by the next unused draw of the same stream, so the other episodes keep
    their seeds and the result is deterministic."""
    sequence = np.random.SeedSequence([seed, *map(ord, name)])
    seeds = sequence.generate_state(episodes, np.uint32)   # the stream is prefix-stable
    excluded = np.fromiter((int(s) % 2 ** 32 for s in excluded_seeds), np.uint64)
    bad = np.flatnonzero(np.isin(seeds.astype(np.uint64), excluded))
    if bad.size == 0:
        return seeds
    seeds, used, drawn = seeds.copy(), set(seeds.tolist()), episodes
    spares: list[int] = []
    while len(spares) < bad.size:
        more = max(2 * bad.size, 16)
        extra = sequence.generate_state(drawn + more, np.uint32)[drawn:]
        drawn += more
        for s in extra[~np.isin(extra.astype(np.uint64), excluded)].tolist():
            if s not in used:
                used.add(s)
                spares.append(s)
    seeds[bad] = spares[: bad.size]
    return seeds


def episode_specs(es: EvalSetting, episodes: int, seed: int, excluded_seeds: Iterable[int] = ()):
    """EpisodeSpecs cycling over the setting's combos; seeds from `episode_seeds`."""
    combos = [es.combos[i % len(es.combos)] for i in range(episodes)]
    seeds = episode_seeds(es.name, episodes, seed, excluded_seeds)
    scene, task, variant = zip(*combos)
    return make_specs(list(scene), list(task), es.embodiment, seeds.astype(np.int64), list(variant)), combos


# ------------------------------------------------------------------------------ controllers
@functools.lru_cache(maxsize=None)  # one closure per key: compiled rollouts are reused
def policy_controller(embodiment: str, action_pad: int) -> Callable:
    """The trained policy (passed as `params`) for `embodiment`, actions zero-padded for step()."""

    def control(policy, obs, env_state, rng):
        chunk = policy.act(obs, rng, embodiment)
        return jnp.pad(chunk, ((0, 0), (0, 0), (0, action_pad - chunk.shape[-1])))
    return control


@functools.lru_cache(maxsize=None)
def expert_controller(env_config) -> Callable:
    """The world's scripted expert as a one-step chunk (privileged: it reads the state)."""
    def control(params, obs, env_state, rng):
        keys = jax.random.split(rng, obs["image"].shape[0])
        return jax.vmap(lambda s, k: world.expert_action(s, k, env_config))(env_state, keys)[:, None, :]
    return control


@functools.lru_cache(maxsize=None)
def random_controller(action_pad: int, horizon: int = 8) -> Callable:
    """Uniform actions in [-1, 1] in every dimension (a floor for the success predicate)."""

    def control(params, obs, env_state, rng):
        return jax.random.uniform(rng, (obs["image"].shape[0], horizon, action_pad), minval=-1.0, maxval=1.0)
    return control


# ------------------------------------------------------------------------------ evaluation
def evaluate(controller: Callable, params: Any, es: EvalSetting, episodes: int, *, env_config,
             seed: int = 0, execute_steps: int = 1, max_steps: int | None = None,
             batch_size: int | None = None, record: int = 4, tokenize: Callable | None = None,
             interval: str = "wilson", progress: bool = False, excluded_seeds: Iterable[int] = (),
             ensemble: float | None = None, episode_noise: bool = False):
    """Runs `episodes` episodes of `es` and returns (result dict, RolloutOutcome of all episodes).

    `excluded_seeds`: world seeds no episode may use (the run's planned episodes of the same
    embodiment, `planned_seeds` / `trained_seeds`); colliding draws are redrawn (`episode_seeds`).
    """
    if episodes < 1:
        raise DataError(f"--episodes must be >= 1, got {episodes}")
    excluded_seeds = frozenset(int(s) % 2 ** 32 for s in excluded_seeds)
    specs, combos = episode_specs(es, episodes, seed, excluded_seeds)
    result, outcome = evaluate_episodes(
        controller, params, es, specs, combos, env_config=env_config, seed=seed, execute_steps=execute_steps,
        max_steps=max_steps, batch_size=batch_size, record=record, tokenize=tokenize, interval=interval,
        progress=progress, ensemble=ensemble, episode_noise=episode_noise)
    seeds = np.asarray(specs.seed).view(np.uint32)   # the world's int32 seeds, as unsigned
    result.update(excluded_seeds=len(excluded_seeds),
                  redrawn_seeds=int(np.sum(seeds != episode_seeds(es.name, episodes, seed))))
    return result, outcome


def evaluate_episodes(controller: Callable, params: Any, es: EvalSetting, specs, combos, *, env_config,
                      seed: int = 0, execute_steps: int = 1, max_steps: int | None = None,
                      batch_size: int | None = None, record: int = 4, tokenize: Callable | None = None,
                      interval: str = "wilson", progress: bool = False, ensemble: float | None = None,
                      episode_noise: bool = False):
    """`evaluate` on given episodes: `specs` (EpisodeSpecs) and their (scene, task_family, variant)
    `combos`, e.g. a run's own training layouts (benchmarks/policy_probes.py train-seeds)."""
    episodes = len(combos)
    max_steps = int(max_steps or env_config.horizon)
    batch_size = min(int(batch_size or episodes), episodes)
    seeds = np.asarray(specs.seed).view(np.uint32)   # the world's int32 seeds, as unsigned
    env = rollout.world_env(env_config)
    states = rollout.reset_states(env, specs)
    texts = instructions(states)
    run = rollout.make_rollout(env, controller, max_steps=max_steps, execute_steps=execute_steps, record=record,
                               ensemble=ensemble, episode_noise=episode_noise)
    parts, start = [], time.time()
    num_batches = -(-episodes // batch_size)
    for b in range(num_batches):
        # Fixed batch shape (the last batch is padded by repetition): one compilation.
        idx = np.arange(b * batch_size, (b + 1) * batch_size).clip(max=episodes - 1)
        batch_states = jax.tree.map(lambda a: a[idx], states)
        extra = {"instruction": tokenize([texts[i] for i in idx])} if tokenize else {}
        out = rollout.outcome(run(params, batch_states, extra, jax.random.fold_in(jax.random.key(seed), b)))
        if not out.finite:  # a policy that emits NaN/inf is broken: it gets no score
            raise CheckpointError(f"eval {es.name}: the policy emitted non-finite (NaN/inf) actions in batch "
                                  f"{b + 1}/{num_batches}; refusing to score it (check the run's "
                                  "norm_stats.json and its training loss)")
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
    result = summarize(outcome, es, combos, texts, interval=interval, seed=seed, execute_steps=execute_steps,
                       max_steps=max_steps, wall=wall, seeds=seeds)
    result.update(horizon=int(env_config.horizon), ensemble=ensemble, episode_noise=episode_noise)
    return result, outcome


def stage_names(num_phases: int) -> list[str]:
    """Names of the stages an episode with `num_phases` phases (the rollout's convention: 2 per
    move, phase == num_phases is done) can stop in, by phase index: phase 2k is reaching/grasping
    object k+1, phase 2k+1 carrying (or pushing) it to its place."""
    names = []
    for k in range(num_phases // 2):
        names += [f"reach/grasp object {k + 1}", f"carry/place object {k + 1}"]
    return names


SUCCESS, FINISHED_NO_SUCCESS = "success", "finished, no success"


def episode_stage(max_phase: int, success: bool, num_phases: int) -> str:
    """Where an episode stopped: "success", else the stage of the furthest phase it reached."""
    if success:
        return SUCCESS
    if max_phase >= num_phases:   # the done phase reached without counting as a success
        return FINISHED_NO_SUCCESS
    return stage_names(num_phases)[max(int(max_phase), 0)]


def failure_breakdown(max_phase, success, num_phases) -> dict[str, dict]:
    """Where episodes stop: {stage: {"count", "fraction"}}, fractions of all episodes (summing to
    1). Failed episodes count at the furthest phase they reached ("reach/grasp object k": k-1
    objects placed, the k-th never held; "carry/place object k": the k-th held or pushed, never
    placed), then "success". Every stage of the longest task is listed, zeros included."""
    max_phase, num_phases = np.asarray(max_phase, np.int64), np.asarray(num_phases, np.int64)
    success = np.asarray(success, bool)
    total = len(success)
    stages = [episode_stage(int(p), bool(s), int(n)) for p, s, n in zip(max_phase, success, num_phases)]
    order = stage_names(int(num_phases.max(initial=0)))
    order += [FINISHED_NO_SUCCESS] * (FINISHED_NO_SUCCESS in stages) + [SUCCESS]
    return {name: {"count": stages.count(name), "fraction": round(stages.count(name) / total, 4) if total else 0.0}
            for name in order}


def format_breakdown(breakdown: dict[str, dict]) -> str:
    """One line: `reach/grasp object 1 12 (38%) | ... | success 17 (53%)`."""
    return " | ".join(f"{name} {v['count']} ({100 * v['fraction']:.0f}%)" for name, v in breakdown.items())


def instructions(states) -> list[str]:
    """Each episode's instruction, made in python from its (numpy) reset state, as the data
    generator does."""
    return [tasks.instruction_from_state(tasks.unbatch(states, i)) for i in range(len(states.t))]


def episodes_digest(details: list[dict]) -> str:
    """A short digest of which episodes were run (scene, task, variant, seed per episode, in order).

    Two evaluations with the same digest ran the same episodes, so their per-episode outcomes can
    be compared paired (`intervals.paired_test`, `benchmarks/paired.py`)."""
    text = ";".join(f"{d['scene']}/{d['task_family']}/{d['variant']}/{d['seed']}" for d in details)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def summarize(outcome, es: EvalSetting, combos, texts, *, interval, seed, execute_steps, max_steps,
              wall, seeds=None) -> dict:
    successes = outcome.success.astype(int)
    lo, hi = intervals.success_interval(successes, interval)
    per_combo = {}
    for (scene, task, variant), s in zip(combos, successes):
        key = f"{scene}/{task}/{variant}"
        per_combo.setdefault(key, []).append(int(s))
    seeds = [None] * len(successes) if seeds is None else [int(s) for s in np.asarray(seeds)]
    details = [dict(index=i, scene=scene, task_family=task, variant=int(variant), seed=seeds[i],
                    success=bool(outcome.success[i]), length=int(outcome.length[i]),
                    max_phase=int(outcome.max_phase[i]), num_phases=int(outcome.num_phases[i]),
                    stage=episode_stage(int(outcome.max_phase[i]), bool(outcome.success[i]),
                                        int(outcome.num_phases[i])))
               for i, (scene, task, variant) in enumerate(combos)]
    breakdown = failure_breakdown(outcome.max_phase, outcome.success, outcome.num_phases)
    return {
        "setting": es.name, "role": es.role, "embodiment": es.embodiment,
        "episodes": int(len(successes)),
        "combinations": len(es.combos),
        "success_rate": float(successes.mean()),
        "ci95": [lo, hi], "ci_method": interval,
        "successes": successes.tolist(),
        "lengths": outcome.length.tolist(),
        "mean_length": float(outcome.length.mean()),
        "mean_length_success": float(outcome.length[outcome.success].mean()) if outcome.success.any() else None,
        "phase_completion": phase_completion(outcome.max_phase, outcome.success, outcome.num_phases),
        "max_phase": outcome.max_phase.tolist(),
        "num_phases": outcome.num_phases.tolist(),
        "failure_breakdown": breakdown,
        "failure_stages": list(breakdown),   # the breakdown's stages in task order (JSON keys get sorted)
        "per_combination": {k: float(np.mean(v)) for k, v in per_combo.items()},
        "episodes_detail": details,
        "episodes_digest": episodes_digest(details),
        "instructions": texts[: min(len(texts), 8)],
        "seed": seed, "execute_steps": execute_steps, "max_steps": max_steps,
        "wall_s": round(wall, 3), "episodes_per_s": round(len(successes) / max(wall, 1e-9), 3),
    }


def _config_path(workdir: str) -> str:
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise CheckpointError(f"{path} does not exist: {workdir!r} is not a training run directory")
    return path


def data_config_of_run(config):
    """The data config (a ConfigDict) the run's data was generated with (DIR/generation.json)."""
    path = os.path.join(str(config.data.dir), "generation.json")
    if not os.path.exists(path):
        raise DataError(f"{path} does not exist: the run's config.data.dir must be a directory written by "
                        f"`h2r data generate` (its world options set the evaluation's resolution and horizon, "
                        f"its plan the pretraining combinations and the seeds evaluation avoids)")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f)["config"])


def evaluation_world(data_config) -> EnvConfig:
    """The world a run is evaluated in: the options its data was generated with, less the
    data-collection-only ones (`EnvConfig.for_evaluation`)."""
    return EnvConfig.from_config(data_config).for_evaluation()


def env_config_of_run(config):
    """`evaluation_world` of a run (its data's DIR/generation.json)."""
    return evaluation_world(data_config_of_run(config))


def evaluate_run(workdir: str, setting: str, *, out: str | None = None, episodes: int = 64, seed: int = 0,
                 step: int | None = None, batch_size: int | None = None, execute_steps: int | None = None,
                 max_steps: int | None = None, record: int = 4, interval: str = "wilson",
                 ema: bool = False, ensemble: float | None = None,
                 episode_noise: bool = False) -> tuple[dict, str]:
    """`h2r eval`: evaluates run `workdir` on `setting` and writes the result JSON (default
    W/eval/<setting>.json) with rollout strips beside it; returns (result, its path). `ema`: the
    checkpoint's exponential moving average of the params instead of the params. `ensemble`:
    temporal ensembling of the predicted chunks; `episode_noise`: one flow noise per episode
    (both: rollout.make_rollout)."""
    import h2r  # noqa: PLC0415

    es, data_config = _setting_of_run(workdir, setting)
    out = out or os.path.join(workdir, "eval", f"{es.name.replace(':', '_')}.json")
    files.check_writable(out)  # before the episodes, not after them
    with files.output_lock(out, f"eval output {out}"):
        excluded = planned_seeds(data_config, es.embodiment)
        if es.role == PRETRAIN and not excluded:
            print(f"eval {es.name}: note: the run's data has no episodes of {es.embodiment}", flush=True)
        policy = h2r.load_policy(workdir, step=step, ema=ema)
        execute_steps = execute_steps or 1
        horizon = int(policy.config.model.action_horizon)
        if execute_steps > horizon:
            raise CheckpointError(f"--execute-steps={execute_steps} exceeds the model's action horizon {horizon}")
        if ensemble is not None and execute_steps != 1:
            raise DataError(f"--ensemble replans every step: it takes no --execute-steps (got {execute_steps})")
        result, outcome = evaluate(
            policy_controller(es.embodiment, ACTION_PAD), policy, es, episodes,
            env_config=evaluation_world(data_config), seed=seed, execute_steps=execute_steps,
            max_steps=max_steps, batch_size=batch_size, record=record, tokenize=policy.tokenize,
            interval=interval, progress=True, excluded_seeds=excluded, ensemble=ensemble,
            episode_noise=episode_noise)
        media = _save_media(outcome, out) if record > 0 else []
        result.update(step=int(policy.step), workdir=os.path.abspath(workdir), media=media,
                      params=policy.params_item)
        files.write_json(out, result)
    return result, out


def _setting_of_run(workdir: str, setting: str) -> tuple[EvalSetting, Any]:
    """(the setting, the run's data config); a bad name is reported before anything loads."""
    if setting.partition(":")[0] == PRETRAIN:
        check_robot(setting.partition(":")[2], setting)
    else:
        parse_setting(setting)
    data_config = data_config_of_run(config_from_json(_config_path(workdir)))
    return parse_setting(setting, data_config), data_config


def _save_media(outcome, out: str) -> list[str]:
    """The recorded rollouts as GIF/PNG strips in OUT_rollouts/; paths relative to the JSON's folder."""
    media = rollout.save_strips(outcome.frames, outcome.length, os.path.splitext(out)[0] + "_rollouts")
    return [os.path.relpath(p, os.path.dirname(os.path.abspath(out))) for p in media]
