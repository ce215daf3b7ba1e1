"""DAgger: the policy drives, the scripted expert labels, the labels join the training data.

    h2r data dagger --run W --out D2 [--episodes N] [--execute-steps 1]
    h2r train ... --config.data.dir=D2 [--config.train.init_from=W]

Why (BUILD_NOTES.md, "Learning", session 18): on the states the expert visits, a trained tidy policy
agrees with the expert almost everywhere (reach direction cosine 0.94-0.99 at every distance); on
the states it visits itself it does not (cosine below 0, drifting to the table's edge). That is
covariate shift (Ross et al. 2011): behaviour cloning never saw the states its own mistakes lead
to. DAgger rolls the policy out, asks the expert what it would do in every state the policy
reached, and trains on those labels too.

The labelling expert picks its next object by what the policy can see: the unfinished object
nearest the gripper now, put at the next free slot of its region (`tasks.expert_move(nearest=True)`,
`tasks.placement_slot`). The world's expert takes objects in slot order, fixed at reset; along its
own path that is the same choice, but off it (in 43 % of a cloned policy's first-reach steps) a
slot-order label says "go to the farther object", contradicts the demonstrations, and training on
it cost tidy 0.16 success; with the nearest-now labels one round changed tidy by +0.06 / +0.02 on
two training seeds and bussing by -0.05: no gain (session 18, m2, m6-m8).

What it writes: OUT is the run's data directory with the run's robot dataset rewritten to hold,
besides every planned episode, one policy rollout per planned training episode of the run's
co-training role (the same layouts: same scene, variant and world seed, so evaluation, which
avoids the planned seeds, stays on unseen layouts). A rollout episode is recorded like a DART
episode: observations of the visited states, the expert's noise-free action as the label, the
policy's action as the executed `command`, the subtask of the move the label works on; it ends as
a demonstration does (`EnvConfig.steps_after_success` after success: with the step that
completes the task) or at the horizon. Every other dataset is
linked, not copied. OUT/generation.json is the source's plus a `dagger` block (run, step, added
episodes, the rollouts' success). One round: a source that already holds DAgger episodes is refused
(the robot's dataset is regenerated from the plan, which would drop them).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from h2r.data import plan as plan_lib
from h2r.errors import DataError

INDEX_OFFSET = 1_000_000     # added episodes' `index` (their keys must differ from the planned ones')


def rollout_labelled(policy, planned: list[plan_lib.PlannedEpisode], env_config, *, execute_steps: int = 1,
                     batch_size: int = 128, seed: int = 0, progress=None) -> list[dict]:
    """The policy's rollouts from `planned`'s reset states, each step labelled by the expert.

    Returns episode dicts in `h2r.world.episodes.rollout_expert`'s format (so the RLDS writer takes
    them as they are): `action` is the expert's noise-free action in the visited state, `command`
    the policy's executed action.
    """
    from h2r.world import episodes as world_episodes  # noqa: PLC0415

    out, start = [], time.time()
    for first in range(0, len(planned), batch_size):
        part = planned[first:first + batch_size]
        n = len(part)
        part = part + [part[-1]] * (batch_size - n)   # one batch shape: one compilation
        specs = world_episodes.make_specs([e.scene for e in part], [e.task_family for e in part],
                                          [e.embodiment for e in part], [e.seed for e in part],
                                          [e.variant for e in part])
        s0, traj = _drive(policy, specs, env_config, execute_steps,
                          jax.random.fold_in(jax.random.key(seed), first))
        traj = jax.tree.map(lambda x: np.asarray(x)[:n], traj)
        s0 = jax.tree.map(lambda x: np.asarray(x)[:n], s0)
        out += world_episodes.episodes_of_trajectories(s0, traj, env_config)
        if progress is not None:
            progress(len(out), len(planned), time.time() - start)
    return out


def _drive(policy, specs, env_config, execute_steps: int, key):
    """Per-step states (before each action) and labels of one batch, [B, T] leaves."""
    from h2r.eval import rollout, success as evaluation  # noqa: PLC0415
    from h2r.world.config import ACTION_PAD  # noqa: PLC0415

    embodiment = _one_robot(specs)
    env = rollout.world_env(env_config)
    state = jax.tree.map(jnp.asarray, rollout.reset_states(env, specs))
    s0 = state
    instruction = policy.tokenize(evaluation.instructions(jax.device_get(state)))
    fns = _jitted(env_config)
    rows, chunk = [], None
    for t in range(env_config.horizon):
        if t % execute_steps == 0:
            key, sub = jax.random.split(key)
            chunk = policy.act({**fns["observe"](state), "instruction": instruction}, sub, embodiment)
        executed = jnp.pad(chunk[:, t % execute_steps], ((0, 0), (0, ACTION_PAD - chunk.shape[-1])))
        label, move = fns["expert"](state), fns["move"](state)
        nxt = fns["step"](state, executed)
        rows.append(dict(state=state, command=executed, action=label, move=move, phase=fns["phase"](state),
                         success=fns["success"](nxt), ee_next=nxt.ee, camera_angle=fns["camera"](state),
                         proprio=fns["proprio"](state)))
        state = nxt
    return s0, jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *rows)


def _one_robot(specs) -> str:
    """The robot of a batch of specs (a policy acts for one embodiment at a time)."""
    from h2r.world import catalogue  # noqa: PLC0415

    names = {catalogue.EMBODIMENTS[int(i)].name for i in np.asarray(specs.embodiment)}
    if len(names) != 1:
        raise DataError(f"DAgger rollouts take one robot at a time, got {sorted(names)}")
    return names.pop()


@functools.lru_cache(maxsize=None)
def _jitted(env_config) -> dict:
    """The world's batched functions for `env_config` (compiled once per process)."""
    from h2r.world import dynamics, experts, tasks  # noqa: PLC0415
    from h2r.world import env as world  # noqa: PLC0415

    clean = dataclasses.replace(env_config, expert_noise=0.0)
    vm = lambda f: jax.jit(jax.vmap(f))  # noqa: E731
    return dict(
        observe=vm(lambda s: world.observe(s, env_config)),
        step=vm(lambda s, a: world.step(s, a, env_config)),
        # The expert's noise-free action (as DART records it; its key draws nothing at noise 0), on
        # the move whose object is nearest now: slot order is invisible to a policy off the
        # expert's path (tasks.expert_move).
        expert=vm(lambda s: experts.expert_action(s, jax.random.PRNGKey(0), clean, noise_scale=0.0,
                                                  nearest_move=True)),
        move=vm(lambda s: tasks.expert_move(s, nearest=True)),
        phase=vm(tasks.phase), success=vm(tasks.success), camera=vm(dynamics.camera_angle),
        proprio=vm(dynamics.proprio))


def aggregate(run: str, out: str, *, episodes: int | None = None, execute_steps: int = 1,
              batch_size: int = 128, step: int | None = None, seed: int = 0, overwrite: bool = False) -> dict:
    """Writes OUT: run `run`'s data with one labelled policy rollout per planned training episode of
    its co-training role added to its robot's dataset (module docstring). Returns the `dagger` block."""
    import tensorflow_datasets as tfds  # noqa: PLC0415

    import h2r  # noqa: PLC0415
    from h2r.config import config_from_json  # noqa: PLC0415
    from h2r.data import atomic_dir, generate, rlds_writer, world_rollout  # noqa: PLC0415
    from h2r.eval import success as evaluation  # noqa: PLC0415
    from h2r.world import catalogue  # noqa: PLC0415

    config = config_from_json(os.path.join(run, "config.json"))
    if config.data.kind != "cotrain" or not config.data.target:
        raise DataError(f"{run}: DAgger needs a co-training run (config.data.kind=cotrain and a data.target); "
                        f"got kind={config.data.kind!r}, target={config.data.target!r}")
    source_dir = Path(str(config.data.dir)).absolute()
    if "dagger" in json.loads((source_dir / generate.GENERATION_FILE).read_text()):
        raise DataError(f"{source_dir} already holds DAgger episodes; one round is what this writes (the "
                        f"robot's dataset is regenerated from the plan, which would drop them)")
    data_config = evaluation.data_config_of_run(config)
    robot = catalogue.setting(config.data.target).target_embodiment
    planned = [e for e in evaluation.planned_episodes(data_config) if e.embodiment == robot]
    trained = [e for e in planned if e.setting == "target-robot" and e.target == config.data.target
               and e.split == "train"]
    if episodes is not None and episodes < 1:
        raise DataError(f"--episodes must be >= 1, got {episodes}")
    if not trained:
        raise DataError(f"{source_dir}: its plan has no training episodes of {robot} for "
                        f"{config.data.target}:target-robot to start rollouts from")
    if episodes is not None:   # evenly spaced: the plan lists episodes combination by combination
        trained = [trained[i] for i in np.linspace(0, len(trained) - 1, min(episodes, len(trained))).astype(int)]
    tfds.disable_progress_bar()   # the Progress line has the ETA
    policy = h2r.load_policy(run, step=step)
    env_config = evaluation.evaluation_world(data_config)
    progress, counted = generate.Progress(len(trained) + len(planned)), [0]

    def rolled(done, total, seconds):
        for item in trained[counted[0]:done]:
            progress.update(item)
        counted[0] = done
    labelled = rollout_labelled(policy, trained, env_config, execute_steps=execute_steps, batch_size=batch_size,
                                seed=seed, progress=rolled)
    added = [dataclasses.replace(e, index=e.index + INDEX_OFFSET) for e in trained]
    block = {"run": os.path.abspath(run), "step": policy.step, "embodiment": robot, "target": config.data.target,
             "added_episodes": len(added), "execute_steps": execute_steps,
             "rollout_success": float(np.mean([r["success"] for r in labelled]))}

    spec, source = world_rollout.spec_and_source(data_config, robot)

    def split(name):
        def episodes_of():
            for item, episode in source([e for e in planned if e.split == name]):
                progress.update(item)
                yield item.key, episode
            if name == "train":
                for item, rollout in zip(added, labelled):
                    yield item.key, world_rollout.to_writer_episode(item, rollout)
        return episodes_of

    with atomic_dir.staging(out, overwrite=overwrite, is_ours=generate.looks_like_h2r_data) as tmp:
        rlds_writer.write_dataset(str(tmp), spec, {s: split(s) for s in sorted({e.split for e in planned})})
        shutil.rmtree(tmp / ".downloads", ignore_errors=True)
        for entry in source_dir.iterdir():   # the other datasets, the tokenizer: linked
            if entry.name not in (rlds_writer.dataset_name(robot), generate.GENERATION_FILE) \
                    and not entry.name.startswith("."):
                os.symlink(entry.resolve(), tmp / entry.name)
        summary = json.loads((source_dir / generate.GENERATION_FILE).read_text())
        summary["dagger"] = block
        (tmp / generate.GENERATION_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    progress.done()
    return block
