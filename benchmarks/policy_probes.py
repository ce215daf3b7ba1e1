"""Why does a policy fail? Probes of a trained run (BUILD_NOTES.md, "Learning: what mattered").

closed-loop  Drives the world with the policy (replanning every step) and, at every visited state,
             compares the policy's first action with the scripted expert's noise-free action in
             the same state: direction cosine, speed and grip agreement, by phase and by distance
             to the expert's goal. Both actions are read as what they command in the table frame
             (dynamics.commanded_point, grip_closed), so delta and absolute arms compare alike;
             speed is the commanded step over the arm's top speed. A policy that localizes its
             target has cosine near 1 while far from it; one that does not drifts (cosine near 0)
             and closes its gripper anywhere.
             Three summaries beside it: `far_reach` (reach phases > 0.4 from the object: where does
             the policy head, toward its object, the other one, the fixture, or into the table's
             edge?), `near_reach` (reach phases within 0.4: is the gripper closed on nothing
             there?) and `carry` (carry phases, while holding: does it release where the expert does,
             and is the object already inside its success region?), and `first_reach_other_nearer`.
             With --drive expert the expert moves the arm and the policy is only asked (open loop):
             agreement there and not in closed loop is covariate shift.
train-seeds  Generalization gap: success on N of the run's own *training* layouts (the planned
             episodes of the setting's role and robot: same scene, variant and world seed, so
             the same reset state) against N unseen ones (`h2r eval`'s episodes), same rollout.
             Equal rates: the policy is not short of data but of closed-loop execution/fit;
             training >> unseen: more demonstrations per variation would help.
subtask      The high level in closed loop: at every visited state, the subtask the policy predicts
             against the true one of the state's phase, by phase, as fractions of the phase's
             steps: exact match; the object's colour and type words right and the named object on
             the table at all (counted where both are "pick up" subtasks); "done" called while the
             task is not done. With --oracle the action expert acts on the true subtask instead
             (a perfect high level): success with and without it says which level loses episodes.
keypoints    Linear probe from the head/wrist keypoints (model.keypoints > 0) to where things are
             on reset states of the scenes named (--scene, comma-separated) and --family: R^2 of the
             best single keypoint and of all of them, for the first two task objects (eggs by
             colour, white then brown; other families in the order the expert moves them), their
             midpoint and difference, and the effector. R^2 near 0: the stem does not track it; the
             midpoint far above either object: channels fire on both alike objects.
first-move   At the reset state only: the policy's first commanded move against the expert's on many
             layouts (--layouts unseen or train), by the angle between the first two task objects
             and by the number of distractors, with where the policy heads on the arc from the
             first object (0) to the second (1). Wrong first moves on the run's own training
             layouts are not covariate shift (nothing has drifted yet); a median near 0.5 is a
             policy averaging two targets (BUILD_NOTES.md, "Learning", session 19).
grasp        Where reaches fail (h2r eval's unseen episodes, the policy driving): at every reach step
             with an open, empty gripper, by distance to the nearest unfinished task object, how
             often the policy closes against the noise-free expert in the same state; and for each
             episode that ends in a reach, how close it came to an unfinished object (did it stand
             within the grasp radius and not close?) and whether it ever held a distractor. A policy
             that reaches its object but closes there far less often than the expert does fails
             the grasp decision, not the reach (BUILD_NOTES.md, "Learning", session 24).
handover     The expert drives until phase --phase (2: the second reach), then the policy: its
             success from the expert's states there against from its own (the same episodes, the
             policy driving throughout, counted from its arrival at the phase).

    .venv/bin/python benchmarks/policy_probes.py closed-loop --workdir RUN --setting sort_eggs:target-robot
    .venv/bin/python benchmarks/policy_probes.py train-seeds --workdir RUN --setting sort_eggs:target-robot --episodes 128
    .venv/bin/python benchmarks/policy_probes.py subtask --workdir RUN --setting tidy_new_scenes:target-robot [--oracle]
    .venv/bin/python benchmarks/policy_probes.py keypoints --workdir RUN --scene green_felt
    .venv/bin/python benchmarks/policy_probes.py grasp --workdir RUN --setting tidy_new_scenes:target-robot --episodes 256
    .venv/bin/python benchmarks/policy_probes.py handover --workdir RUN --setting tidy_new_scenes:target-robot --phase 2
    .venv/bin/python benchmarks/policy_probes.py first-move --workdir RUN --setting tidy_new_scenes:target-robot --layouts train
    .venv/bin/python benchmarks/policy_probes.py keypoints --workdir RUN --family tidy --embodiment jaw_arm \
        --scene oak_kitchen,white_lab,green_felt,checker_cafe,steel_bench,pine_workshop
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import h2r
from h2r.config import config_from_json
from h2r.eval import rollout
from h2r.eval import success as evaluation
from h2r.world import catalogue, dynamics, experts, tasks
from h2r.world import env as world
from h2r.world.config import ACTION_PAD, NUM_TASK_OBJECTS, make_specs

DISTANCE_BINS = (0.0, 0.05, 0.1, 0.2, 0.4, 2.0)


def _run(workdir: str, step: int | None):
    config = config_from_json(f"{workdir}/config.json")
    return config, evaluation.env_config_of_run(config), h2r.load_policy(workdir, step=step)


class _Episodes(NamedTuple):
    config: Any
    env_config: Any
    policy: Any
    es: Any               # the evaluation setting
    env: rollout.Env
    state: Any            # batched reset states (jax arrays)
    instruction: Any      # tokenized instructions, one row per episode
    expert: Any           # jitted: batched state -> the expert's noise-free action


def _episodes(args, layouts: str = "unseen") -> _Episodes:
    """The run, its setting and `args.episodes` reset states: unseen layouts (`h2r eval`'s episodes)
    or the run's own training layouts; and the noise-free expert to compare with."""
    config, env_config, policy = _run(args.workdir, args.step)
    es = evaluation.parse_setting(args.setting, data_config=evaluation.data_config_of_run(config))
    if layouts == "train":
        specs = _specs_of(_training_episodes(config, es, args.episodes), es.embodiment)
    else:
        specs, _ = evaluation.episode_specs(es, args.episodes, args.seed,
                                            evaluation.trained_seeds(config, es.embodiment))
    env = rollout.world_env(env_config)
    state = jax.tree.map(jnp.asarray, rollout.reset_states(env, specs))
    instruction = policy.tokenize(evaluation.instructions(jax.device_get(state)))
    clean = dataclasses.replace(env_config, expert_noise=0.0)
    expert = jax.jit(jax.vmap(lambda s: world.expert_action(s, jax.random.key(0), clean)))
    return _Episodes(config, env_config, policy, es, env, state, instruction, expert)


def _policy_action(e: _Episodes, obs: dict, key) -> jax.Array:
    """The policy's first action of its chunk, padded to the world's ACTION_PAD."""
    act = e.policy.act({**obs, "instruction": e.instruction}, key, e.es.embodiment)[:, 0]
    return jnp.pad(act, ((0, 0), (0, ACTION_PAD - act.shape[-1])))


def closed_loop(args) -> dict:
    e = _episodes(args)
    env_config, es, env, state, expert = e.env_config, e.es, e.env, e.state, e.expert
    observe, step, done_fn = jax.jit(jax.vmap(env.observe)), jax.jit(jax.vmap(env.step)), jax.jit(jax.vmap(tasks.success))
    goal_of = jax.jit(jax.vmap(lambda s: experts.plan(s)[0] - dynamics.grasp_point(s)))
    phase_of = jax.jit(jax.vmap(tasks.phase))
    geometry = jax.jit(jax.vmap(_geometry))
    command = jax.jit(jax.vmap(_command))
    max_speed = catalogue.embodiment(es.embodiment).max_speed
    rows, extra, done, key = [], [], np.zeros(args.episodes, bool), jax.random.key(args.seed)
    for _ in range(env_config.horizon):
        key, sub = jax.random.split(key)
        act = _policy_action(e, observe(state), sub)
        # Both actions as what they command in the table frame (any action space: delta, absolute).
        (move, closes), (ref_move, ref_closes) = (jax.tree.map(np.asarray, command(state, a))
                                                  for a in (act, expert(state)))
        dist = np.linalg.norm(np.asarray(goal_of(state)), axis=-1)
        phase = np.asarray(phase_of(state))
        g = jax.tree.map(np.asarray, geometry(state))
        for i in np.flatnonzero(~done):
            cos = move[i] @ ref_move[i] / (np.linalg.norm(move[i]) * np.linalg.norm(ref_move[i]) + 1e-9)
            rows.append((int(phase[i]), float(dist[i]), float(cos), float(np.linalg.norm(move[i]) / max_speed),
                         bool(closes[i]), bool(ref_closes[i])))
            u = move[i] / (np.linalg.norm(move[i]) + 1e-9)
            to = {name: float(u @ v[i] / (np.linalg.norm(v[i]) + 1e-9)) for name, v in g["toward"].items()}
            extra.append(dict(phase=int(phase[i]), closed=bool(g["closed"][i]), holding=bool(g["holding"][i]),
                              object_distance=float(np.linalg.norm(g["toward"]["object"][i])),
                              other_distance=float(np.linalg.norm(g["toward"]["other"][i])),
                              place_distance=float(np.linalg.norm(g["toward"]["place"][i])),
                              inside=bool(g["inside"][i]), edge=float(g["edge"][i]), cos=to,
                              policy_closes=bool(closes[i]), expert_closes=bool(ref_closes[i])))
        state = step(state, act if args.drive == "policy" else expert(state))
        done |= np.asarray(done_fn(state))
    table = []
    for phase in sorted({r[0] for r in rows}):
        for lo, hi in zip(DISTANCE_BINS[:-1], DISTANCE_BINS[1:]):
            sel = np.array([r[1:] for r in rows if r[0] == phase and lo <= r[1] < hi])
            if len(sel):
                table.append(dict(phase=phase, distance=[lo, hi], steps=len(sel), cos_mean=round(sel[:, 1].mean(), 2),
                                  cos_median=round(float(np.median(sel[:, 1])), 2), speed=round(sel[:, 2].mean(), 2),
                                  policy_closes=round(sel[:, 3].mean(), 2), expert_closes=round(sel[:, 4].mean(), 2)))
    return {"success": float(done.mean()), "episodes": args.episodes, "by_phase_and_distance": table,
            "far_reach": _far_reach(extra), "near_reach": _near_reach(extra), "carry": _carry(extra),
            "first_reach_other_nearer": _other_nearer(extra)}


GRASP_BINS = (0.0, 0.05, 0.09, 0.15, 0.3, 2.0)


def _reach_geometry(s):
    """One state: its phase, the distance from the grasp point to the nearest unfinished task object,
    whether the gripper is open and empty in a reach phase (a grasp is possible), and whether it
    holds a distractor."""
    gp = dynamics.grasp_point(s)
    unfinished = s.move_active & ~tasks.moves_done(s)
    dist = jnp.where(unfinished, jnp.linalg.norm(s.obj_pos[s.move_obj] - gp, axis=-1), jnp.inf).min()
    phase = tasks.phase(s)
    can_grasp = (phase % 2 == 0) & (s.grip < 0.5) & (s.held < 0) & ~tasks.success(s)
    return phase, dist, can_grasp, s.held >= NUM_TASK_OBJECTS


def grasp_probe(args) -> dict:
    e = _episodes(args)
    observe, step = jax.jit(jax.vmap(e.env.observe)), jax.jit(jax.vmap(e.env.step))
    done_fn = jax.jit(jax.vmap(tasks.success))
    geometry, command = jax.jit(jax.vmap(_reach_geometry)), jax.jit(jax.vmap(_command))
    # The reference closes at whichever unfinished object is nearest now (tasks.expert_move), as
    # the bins measure distance to it: taking either object first is progress.
    clean = dataclasses.replace(e.env_config, expert_noise=0.0)
    nearest_expert = jax.jit(jax.vmap(lambda s: experts.expert_action(s, jax.random.key(0), clean, noise_scale=0.0,
                                                                      nearest_move=True)))
    n, state, key = args.episodes, e.state, jax.random.key(args.seed)
    done, max_phase = np.zeros(n, bool), np.zeros(n, int)
    closest, held_distractor = np.full(n, np.inf), np.zeros(n, bool)
    nbins = len(GRASP_BINS) - 1
    steps, policy_closes, expert_closes = (np.zeros(nbins, int) for _ in range(3))
    for _ in range(e.env_config.horizon):
        key, sub = jax.random.split(key)
        act = _policy_action(e, observe(state), sub)
        phase, dist, can_grasp, distractor = (np.asarray(x) for x in geometry(state))
        closes, ref_closes = (np.asarray(command(state, a)[1]) for a in (act, nearest_expert(state)))
        live = ~done
        max_phase[live] = np.maximum(max_phase[live], phase[live])
        held_distractor |= live & distractor
        reaching = live & can_grasp
        closest[reaching] = np.minimum(closest[reaching], dist[reaching])
        b = np.searchsorted(GRASP_BINS, dist[reaching], side="right") - 1
        steps += np.bincount(b, minlength=nbins)
        policy_closes += np.bincount(b, closes[reaching], minlength=nbins).astype(int)
        expert_closes += np.bincount(b, ref_closes[reaching], minlength=nbins).astype(int)
        state = step(state, act)
        done |= np.asarray(done_fn(state))
    table = [dict(distance=[GRASP_BINS[b], GRASP_BINS[b + 1]], steps=int(steps[b]),
                  policy_closes=round(policy_closes[b] / max(steps[b], 1), 3),
                  expert_closes=round(expert_closes[b] / max(steps[b], 1), 3)) for b in range(nbins)]
    failed_reach = ~done & (max_phase % 2 == 0)
    reach_failures = {}
    for phase in sorted(set(max_phase[failed_reach].tolist())):
        sel = failed_reach & (max_phase == phase)
        reach_failures[f"reach {phase // 2 + 1}"] = dict(
            episodes=int(sel.sum()),
            closest_quantiles_10_50_90=[round(float(q), 3) for q in np.quantile(closest[sel], [0.1, 0.5, 0.9])],
            came_within_grasp_radius=int((closest[sel] < dynamics.GRASP_RADIUS).sum()),
            held_a_distractor=int(held_distractor[sel].sum()))
    return {"success": float(done.mean()), "episodes": n, "grasp_radius": dynamics.GRASP_RADIUS,
            "open_empty_reach_steps_by_distance": table, "reach_failures": reach_failures}


def subtask_probe(args) -> dict:
    config, env_config, policy = _run(args.workdir, args.step)
    es = evaluation.parse_setting(args.setting, data_config=evaluation.data_config_of_run(config))
    specs, _ = evaluation.episode_specs(es, args.episodes, args.seed, evaluation.trained_seeds(config, es.embodiment))
    env = rollout.world_env(env_config)
    reset = rollout.reset_states(env, specs)
    episodes = [tasks.unbatch(reset, i) for i in range(args.episodes)]
    texts = [tasks.subtasks_from_state(e) for e in episodes]
    # What a pick subtask says before the object's name ("pick up the "), per episode's family.
    pick_prefix = [catalogue.TASK_FAMILIES[int(e.spec.task_family)].pick.split("{obj}")[0] for e in episodes]
    instruction = policy.tokenize(evaluation.instructions(reset))
    model, ls = policy.model(), int(policy.config.model.max_subtask_len)
    observe, step, done_fn = jax.jit(jax.vmap(env.observe)), jax.jit(jax.vmap(env.step)), jax.jit(jax.vmap(tasks.success))
    phase_of = jax.jit(jax.vmap(tasks.phase))
    predict = jax.jit(lambda obs: model.predict_subtask(policy.model_obs(obs, es.embodiment)))

    @jax.jit
    def act_on(obs, key, subtask):   # Policy.act, with the subtask given instead of predicted again
        actions = model.sample_actions(policy.model_obs(obs, es.embodiment), key, subtask=subtask)
        return policy.raw_actions(actions, es.embodiment, obs["state"])

    state, key = jax.tree.map(jnp.asarray, reset), jax.random.key(args.seed)
    counts, done = {}, np.zeros(args.episodes, bool)
    for _ in range(env_config.horizon):
        key, sub = jax.random.split(key)
        obs = {**observe(state), "instruction": instruction}
        phase, s = np.asarray(phase_of(state)), jax.tree.map(np.asarray, state)
        predicted_tokens = predict(obs)
        predicted = policy.decode(np.asarray(predicted_tokens))
        true = [texts[i][min(phase[i], len(texts[i]) - 1)] for i in range(args.episodes)]
        for i in np.flatnonzero(~done):
            c = counts.setdefault(int(phase[i]), dict(steps=0, exact=0, colour=0, type=0, named_present=0, done_called=0))
            c["steps"] += 1
            c["exact"] += predicted[i] == true[i]
            c["done_called"] += predicted[i] == tasks.DONE_TEXT and true[i] != tasks.DONE_TEXT
            prefix = pick_prefix[i]
            if phase[i] % 2 == 0 and true[i] != tasks.DONE_TEXT and predicted[i].startswith(prefix):
                t, p = true[i][len(prefix):].split(), predicted[i][len(prefix):].split()   # colour, type
                c["colour"] += t[:1] == p[:1]
                c["type"] += t[1:] == p[1:]
                now = tasks.unbatch(s, i)
                on_table = {tasks.object_name(now, o) for o in np.flatnonzero(now.obj_active)}
                c["named_present"] += " ".join(p) in on_table
        subtask = jnp.asarray(policy.tokenize(true)[:, :ls]) if args.oracle else predicted_tokens
        state = step(state, act_on(obs, sub, subtask)[:, 0])
        done |= np.asarray(done_fn(state))
    by_phase = {p: {k: (v if k == "steps" else round(v / c["steps"], 3)) for k, v in c.items()}
                for p, c in sorted(counts.items())}
    return {"success": float(done.mean()), "episodes": args.episodes, "oracle_subtask": args.oracle,
            "by_phase": by_phase}


def _training_episodes(config, es, n: int) -> list:
    """n of the run's planned training episodes of the setting's role and robot, evenly spaced (the
    plan lists episodes combination by combination: one scene first)."""
    role, target = ("pretrain", "") if es.role == evaluation.PRETRAIN else (es.role, es.setting)
    trained = [e for e in evaluation.planned_episodes(evaluation.data_config_of_run(config))
               if e.embodiment == es.embodiment and e.setting == role and e.target == target and e.split == "train"]
    if not trained:
        raise SystemExit(f"the run's data planned no training episodes of {es.embodiment} for {es.name}")
    return [trained[i] for i in np.linspace(0, len(trained) - 1, min(n, len(trained))).astype(int)]


def _specs_of(episodes: list, embodiment: str):
    return make_specs([e.scene for e in episodes], [e.task_family for e in episodes], embodiment,
                      np.array([e.seed for e in episodes], np.int64), [e.variant for e in episodes])


def handover(args) -> dict:
    """The expert drives until the episode first reaches phase --phase, then the policy drives to the
    end: the policy's competence from the expert's states at that point, against its own closed loop
    (the policy drives throughout; the same episodes, counted from its own arrival at the phase).
    Far better from the expert's states: what the policy did before the phase spoils what follows."""
    e = _episodes(args)
    env_config, reset, expert = e.env_config, e.state, e.expert
    observe, step = jax.jit(jax.vmap(e.env.observe)), jax.jit(jax.vmap(e.env.step))
    done_fn, phase_of = jax.jit(jax.vmap(tasks.success)), jax.jit(jax.vmap(tasks.phase))
    at_arrival = jax.jit(jax.vmap(_arrival))
    results = {}
    for driver in ("policy", "expert"):
        state, key = reset, jax.random.key(args.seed)
        if driver == "expert" and args.swap_order:   # the expert takes the farther object first
            two = state.move_active[:, 1:2]
            state = state._replace(move_obj=state.move_obj.at[:, :2].set(
                jnp.where(two, state.move_obj[:, 1::-1], state.move_obj[:, :2])))
        arrived = np.zeros(args.episodes, bool)          # reached --phase (then the policy drives)
        arrival_step = np.full(args.episodes, -1)
        max_phase, done = np.asarray(phase_of(state)), np.zeros(args.episodes, bool)
        where = jax.tree.map(np.zeros_like, jax.device_get(at_arrival(state)))   # the state at arrival
        for t in range(env_config.horizon):
            phase = np.asarray(phase_of(state))
            now = ~arrived & (phase >= args.phase)
            if now.any():
                arrival_step[now] = t
                if driver == "expert" and args.displace:
                    state = _displace_placed(state, jnp.asarray(now), args.displace, jax.random.fold_in(key, 7))
                where = jax.tree.map(lambda w, v: np.where(now, v, w), where, jax.device_get(at_arrival(state)))
                arrived |= now
            key, sub = jax.random.split(key)
            act = _policy_action(e, observe(state), sub)
            if driver == "expert":
                act = jnp.where(jnp.asarray(arrived)[:, None], act, expert(state))
            state = step(state, act)
            max_phase = np.maximum(max_phase, np.asarray(phase_of(state)))
            done |= np.asarray(done_fn(state))
        n = int(arrived.sum())
        results[f"{driver} drives to phase {args.phase}"] = {
            "arrived": n, "mean_arrival_step": round(float(arrival_step[arrived].mean()), 1) if n else None,
            "then_next_phase": round(float(np.mean(max_phase[arrived] > args.phase)), 3) if n else None,
            "then_success": round(float(np.mean(done[arrived])), 3) if n else None,
            "at_arrival_median": {k: round(float(np.median(v[arrived])), 3) for k, v in where.items()} if n else None,
            "next_phase_by_placed_offset": _split_rate(where["placed_offset"][arrived], max_phase[arrived] > args.phase),
            "next_phase_by_arrival_step": _split_rate(arrival_step[arrived], max_phase[arrived] > args.phase,
                                                      (0, 10, 14, 20, 30, 64)),
            "next_phase_if_placed_in_slot_order": _split_rate(where["placed_in_slot_order"][arrived],
                                                              max_phase[arrived] > args.phase, (0.0, 0.5, 2.0))}
    return {"episodes": args.episodes, "horizon": int(env_config.horizon), **results}


def _arrival(s):
    """What the state holds when a reach phase begins (one state): how far the last placed object
    lies from where the expert puts it, and where the gripper is."""
    done = tasks.moves_done(s) & s.move_active
    placed = jnp.argmax(done)   # the first finished move (phase 2: the only one)
    target = tasks.move_target(s)
    nxt = tasks.current_move(s)
    gp = dynamics.grasp_point(s)
    nxt_obj = s.move_obj[jnp.minimum(nxt, s.move_obj.shape[0] - 1)]
    return {"placed_offset": jnp.linalg.norm(s.obj_pos[s.move_obj[placed]] - target[placed]),
            "gripper_to_placed": jnp.linalg.norm(gp - s.obj_pos[s.move_obj[placed]]),
            "gripper_to_next": jnp.linalg.norm(gp - s.obj_pos[nxt_obj]),
            "gripper_closed": (s.grip > 0.5).astype(jnp.float32),
            "placed_in_slot_order": (placed == 0).astype(jnp.float32)}


def _displace_placed(state, which, distance: float, key):
    """Moves the placed object of the episodes `which` by `distance` in a random direction, kept
    inside its success region (within 0.9 of its half extent), as a policy's imprecise place leaves it."""
    def one(s, k):
        placed = jnp.argmax(tasks.moves_done(s) & s.move_active)
        center, half = tasks.move_region(s)
        angle = jax.random.uniform(k, (), maxval=2 * jnp.pi)
        pos = s.obj_pos[s.move_obj[placed]] + distance * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        pos = jnp.clip(pos, center[placed] - 0.9 * half[placed], center[placed] + 0.9 * half[placed])
        return s._replace(obj_pos=s.obj_pos.at[s.move_obj[placed]].set(pos))
    moved = jax.vmap(one)(state, jax.random.split(key, which.shape[0]))
    return jax.tree.map(lambda m, o: jnp.where(which.reshape((-1,) + (1,) * (m.ndim - 1)), m, o), moved, state)


def _split_rate(x: np.ndarray, ok: np.ndarray, edges=(0.0, 0.02, 0.04, 0.08, 10.0)) -> dict:
    return {f"{lo}-{hi}": [int(((x >= lo) & (x < hi)).sum()), round(float(ok[(x >= lo) & (x < hi)].mean()), 3)]
            for lo, hi in zip(edges[:-1], edges[1:]) if ((x >= lo) & (x < hi)).any()}


def train_seeds(args) -> dict:
    config, _, policy = _run(args.workdir, args.step)
    data_config = evaluation.data_config_of_run(config)
    es = evaluation.parse_setting(args.setting, data_config=data_config)
    trained = _training_episodes(config, es, args.episodes)
    specs = _specs_of(trained, es.embodiment)
    combos = [(e.scene, e.task_family, e.variant) for e in trained]
    options = dict(env_config=evaluation.evaluation_world(data_config), seed=args.seed, record=0,
                   tokenize=policy.tokenize)
    controller = evaluation.policy_controller(es.embodiment, ACTION_PAD)
    results = {"training layouts": evaluation.evaluate_episodes(controller, policy, es, specs, combos, **options)[0],
               "unseen layouts": evaluation.evaluate(controller, policy, es, len(trained), **options,
                                                     excluded_seeds=evaluation.trained_seeds(config, es.embodiment))[0]}
    return {name: {"success": r["success_rate"], "episodes": r["episodes"], "ci95": r["ci95"],
                   "breakdown": evaluation.format_breakdown(r["failure_breakdown"])} for name, r in results.items()}


def first_move(args) -> dict:
    """The policy's first commanded move at the reset state against the expert's, over many layouts
    (one observation each: cheap), split by what the layout holds: the number of distractors and the
    angle, seen from the gripper, between the first two task objects. `toward_second` places the
    policy's direction on the arc from the first object (0) to the second (1): a policy that averages
    the two targets sits near 0.5."""
    e = _episodes(args, args.layouts)
    state = e.state
    act = _policy_action(e, jax.vmap(e.env.observe)(state), jax.random.key(args.seed))
    command = jax.jit(jax.vmap(_command))
    move, ref = (np.asarray(command(state, a)[0]) for a in (act, e.expert(state)))
    s = jax.device_get(state)
    gp = np.asarray(jax.vmap(dynamics.grasp_point)(state))
    first = s.obj_pos[np.arange(len(gp)), s.move_obj[:, 0]] - gp
    second = s.obj_pos[np.arange(len(gp)), s.move_obj[:, 1]] - gp
    cos = _cos(move, ref)
    heading = np.arctan2(move[:, 1], move[:, 0])
    a1, a2 = np.arctan2(first[:, 1], first[:, 0]), np.arctan2(second[:, 1], second[:, 0])
    between = _wrap(a2 - a1)                                  # signed angle first -> second
    toward_second = _wrap(heading - a1) / np.where(np.abs(between) > 1e-6, between, 1e-6)
    separation = np.degrees(np.abs(between))
    distractors = np.sum(s.obj_active[:, NUM_TASK_OBJECTS:], axis=1)

    def stats(sel):
        c = cos[sel]
        return {"layouts": int(sel.sum()), "cos_below_0.9": round(float(np.mean(c < 0.9)), 3),
                "cos_below_0": round(float(np.mean(c < 0)), 3), "cos_median": round(float(np.median(c)), 2),
                "toward_second_median": round(float(np.median(toward_second[sel])), 2)} if sel.any() else {"layouts": 0}

    return {"layouts": args.layouts, "all": stats(np.ones(len(cos), bool)),
            "by_separation_deg": {f"{lo}-{hi}": stats((separation >= lo) & (separation < hi))
                                  for lo, hi in ((0, 30), (30, 60), (60, 120), (120, 181))},
            "by_distractors": {int(n): stats(distractors == n) for n in np.unique(distractors)}}


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-9)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _command(s, action):
    """What an action (f32[ACTION_PAD]) asks of the arm in state s, whatever its action space: the
    table-frame step toward the commanded point, and whether it closes the gripper."""
    return dynamics.commanded_point(s, action) - s.ee, dynamics.grip_closed(s, action)


def _geometry(s):
    """Where things are for the current move, seen from the grasp point (one state)."""
    k = jnp.minimum(tasks.current_move(s), 1)
    obj, other = s.move_obj[k], s.move_obj[1 - k]
    gp = dynamics.grasp_point(s)
    center, half = tasks.move_region(s)
    place = tasks.move_target(s)[k] - s.held_offset
    return {"toward": {"object": s.obj_pos[obj] - gp, "other": s.obj_pos[other] - gp,
                       "fixture": s.fix_pos[0] - gp, "place": place - gp},
            "closed": s.grip > 0.5, "holding": s.held >= 0,
            "inside": jnp.all(jnp.abs(s.obj_pos[obj] - center[k]) <= half[k]),
            "edge": jnp.minimum(gp.min(), 1.0 - gp.max())}


def _summary(rows: list[dict]) -> dict:
    cos = {name: round(float(np.median([r["cos"][name] for r in rows])), 2) for name in rows[0]["cos"]}
    return {"steps": len(rows), "median_cos_toward": cos,
            "near_edge": round(float(np.mean([r["edge"] < 0.06 for r in rows])), 2),
            "policy_closes": round(float(np.mean([r["policy_closes"] for r in rows])), 2),
            "expert_closes": round(float(np.mean([r["expert_closes"] for r in rows])), 2)}


def _other_nearer(extra: list[dict]) -> float:
    """Of the empty-handed steps reaching the first object, the fraction in which the other task
    object is nearer the gripper: there the slot-order label (go to the first object, fixed at
    reset) contradicts the nearest-first rule the demonstrations show (h2r.world.tasks.expert_move)."""
    rows = [r for r in extra if r["phase"] == 0 and not r["holding"]]
    return round(float(np.mean([r["other_distance"] < r["object_distance"] for r in rows])), 3) if rows else float("nan")


def _far_reach(extra: list[dict]) -> dict:
    """Reach phases farther than 0.4 from the object, split by the gripper's state."""
    far = [r for r in extra if r["phase"] % 2 == 0 and r["object_distance"] > 0.4]
    groups = {"gripper open": [r for r in far if not r["closed"]],
              "gripper closed, empty": [r for r in far if r["closed"] and not r["holding"]]}
    return {name: _summary(rows) for name, rows in groups.items() if rows}


def _near_reach(extra: list[dict]) -> dict:
    """Reach phases within 0.4 of the object (where the policy hovers), by the gripper's state:
    hovering with a closed, empty gripper is a premature close the data never shows a way out of."""
    near = [r for r in extra if r["phase"] % 2 == 0 and r["object_distance"] <= 0.4]
    groups = {"gripper open": [r for r in near if not r["closed"]],
              "gripper closed, empty": [r for r in near if r["closed"] and not r["holding"]]}
    return {name: _summary(rows) for name, rows in groups.items() if rows}


def _carry(extra: list[dict]) -> dict:
    """Carry phases while holding, by distance to the expert's place goal and inside the region."""
    held = [r for r in extra if r["phase"] % 2 == 1 and r["holding"]]
    groups = {"place > 0.2": [r for r in held if r["place_distance"] > 0.2],
              "place 0.05-0.2": [r for r in held if 0.05 < r["place_distance"] <= 0.2],
              "place <= 0.05": [r for r in held if r["place_distance"] <= 0.05],
              "object inside its region": [r for r in held if r["inside"]]}
    return {name: _summary(rows) for name, rows in groups.items() if rows}


def keypoint_probe(args) -> dict:
    config, env_config, policy = _run(args.workdir, args.step)
    model = policy.model()
    if model.keypoint_stem is None:
        raise SystemExit(f"{args.workdir}: the model has no keypoints (model.keypoints = 0)")
    n, scenes = args.episodes, args.scene.split(",")
    specs = make_specs(np.resize(scenes, n).tolist(), args.family, args.embodiment, np.arange(10**6, 10**6 + n))
    env = rollout.world_env(env_config)
    s = rollout.reset_states(env, specs)
    obs = jax.vmap(env.observe)(jax.tree.map(jnp.asarray, s))
    objects = s.obj_pos[np.arange(n)[:, None], s.move_obj[:, :2]]
    if "egg" in args.family:
        order = np.argsort(s.obj_color[np.arange(n)[:, None], s.move_obj[:, :2]], 1)   # white, then brown
        objects = np.take_along_axis(objects, order[..., None], 1)
        names = ("white egg", "brown egg")
    else:
        names = ("object 1", "object 2")
    # Their midpoint and difference too: keypoints that explain the midpoint far better than either
    # object fire on both (a softmax over two alike objects lands between them; session 22).
    targets = {names[0]: objects[:, 0], names[1]: objects[:, 1], "midpoint": objects.mean(1),
               "difference": objects[:, 0] - objects[:, 1], "effector": s.ee}
    out = {}
    for index, view in enumerate(("image", "wrist_image")):
        kp = np.asarray(model.keypoint_stem.keypoints(obs[view], index))
        for name, y in targets.items():
            single = max(_r2(kp[:, k], y) for k in range(kp.shape[1]))
            out[f"{view} {name}"] = {"best_keypoint_r2": round(single, 3), "all_keypoints_r2": round(_r2(kp.reshape(n, -1), y), 3)}
    return out


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of the least-squares affine map x -> y (y [N, 2])."""
    design = np.c_[x, np.ones(len(x))]
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(1 - (y - design @ coef).var(0).sum() / y.var(0).sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("probe", choices=("closed-loop", "train-seeds", "subtask", "keypoints", "first-move", "grasp",
                                     "handover"))
    p.add_argument("--workdir", required=True, help="a training run directory (h2r train --workdir)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--setting", default="sort_eggs:target-robot",
                   help="closed-loop, train-seeds, subtask, grasp, first-move, handover: an h2r eval setting")
    p.add_argument("--episodes", type=int, default=None,
                   help="episodes (closed-loop, default 32) or reset states (keypoints, default 256: the probe "
                        "fits 2K+1 coefficients)")
    p.add_argument("--scene", default="green_felt", help="keypoints: the scenes of the reset states (comma-separated)")
    p.add_argument("--family", default="eggs_in_carton", help="keypoints: the task family of the reset states")
    p.add_argument("--embodiment", default="trident_arm", help="keypoints: the robot of the reset states")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--oracle", action="store_true", help="subtask: the action expert acts on the true subtask")
    p.add_argument("--drive", choices=("policy", "expert"), default="policy",
                   help="closed-loop: who moves the arm; with 'expert' the policy is only asked, at the "
                        "states the expert visits (open loop: covariate shift shows as the difference)")
    p.add_argument("--phase", type=int, default=2,
                   help="handover: the phase at which the policy takes over from the expert (2: the second reach)")
    p.add_argument("--displace", type=float, default=0.0,
                   help="handover: move the placed object this far (random direction, inside its region) "
                        "when the expert hands over: is an imprecise place what spoils the next reach?")
    p.add_argument("--swap-order", action="store_true",
                   help="handover: the expert takes the first two objects in the other order (the farther first)")
    p.add_argument("--layouts", choices=("unseen", "train"), default="unseen",
                   help="first-move: unseen layouts (h2r eval's episodes) or the run's own training layouts")
    args = p.parse_args()
    args.episodes = args.episodes or {"closed-loop": 32, "train-seeds": 128, "subtask": 64}.get(args.probe, 256)
    probe = {"closed-loop": closed_loop, "train-seeds": train_seeds, "subtask": subtask_probe,
             "keypoints": keypoint_probe, "first-move": first_move, "grasp": grasp_probe,
             "handover": handover}[args.probe]
    print(json.dumps(probe(args), indent=1))


if __name__ == "__main__":
    main()
