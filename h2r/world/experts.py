"""Scripted experts: one closed-loop script for every task family and embodiment, with noise.

The script decides a desired grasp-point displacement and a grip (open/closed) from the state;
`to_action` turns that into the embodiment's own action space. Noise is Gaussian on the
displacement, proportional to the distance still to go (so the expert stays accurate at the goal).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from h2r.world import dynamics as dyn
from h2r.world import tables as tb
from h2r.world import tasks
from h2r.world.config import MAX_MOVES, EnvConfig
from h2r.world.state import State

NOISE = 0.25            # motion noise std, relative to the step length
RELEASE_INSIDE = 0.6    # release once the carried object is within this fraction of the region's half extent


def _pick_place_plan(state: State, obj, target, region_center, region_half, max_speed):
    """(goal of the grasp point, close the gripper?) for carrying object `obj` to `target`.

    The gripper closes (or opens) in the same step that reaches the object (or the target):
    step() moves first and grasps/releases after, and the noise shrinks near the goal.
    It also opens as soon as the carried object is well inside the move's success region
    (RELEASE_INSIDE of its half extent), on the way to the slot: a policy can tell "over the
    carton" from the image, not "within 0.06 of this egg cell" (BUILD_NOTES, e11).
    """
    gp = dyn.grasp_point(state)
    holding_other = (state.held >= 0) & (state.held != obj)
    holding = state.held == obj
    reach = 0.7 * max_speed
    at_object = jnp.linalg.norm(gp - state.obj_pos[obj]) < reach
    place_goal = target - state.held_offset
    at_target = jnp.linalg.norm(gp - place_goal) < jnp.minimum(reach, 1.2 * jnp.min(region_half))
    goal = jnp.where(holding, place_goal, state.obj_pos[obj])
    goal = jnp.where(holding_other, gp, goal)
    # An empty closed gripper must open before it can grasp again.
    empty_closed = (state.grip > 0.5) & (state.held < 0)
    well_inside = jnp.all(jnp.abs(state.obj_pos[obj] - region_center) <= RELEASE_INSIDE * region_half)
    close = jnp.where(holding, ~at_target & ~well_inside, at_object & ~holding_other & ~empty_closed)
    return goal, close


def _push_plan(state: State, obj, target):
    """Goal of the grasp point for pushing `obj` to `target` (the gripper stays open)."""
    gp = dyn.grasp_point(state)
    p = state.obj_pos[obj]
    u = target - p
    u = u / (jnp.linalg.norm(u) + 1e-6)
    perp = jnp.stack([-u[1], u[0]])
    rel = gp - p
    behind = jnp.clip(p - u * (dyn.PUSH_RADIUS + 0.02), 0.03, 0.97)   # near an edge: as far behind as fits
    lateral = jnp.abs(rel @ perp)
    in_position = (((rel @ u < -0.5 * dyn.PUSH_RADIUS) & (lateral < 0.03)
                    & (jnp.linalg.norm(rel) < dyn.PUSH_RADIUS + 0.04))
                   | (jnp.linalg.norm(gp - behind) < 0.015))
    # Going behind the object: detour around its side if the straight path would touch it.
    seg = behind - gp
    tt = jnp.clip(((p - gp) @ seg) / (seg @ seg + 1e-9), 0.0, 1.0)
    blocked = jnp.linalg.norm(gp + tt * seg - p) < dyn.PUSH_RADIUS + 0.012
    side = jnp.where(rel @ perp >= 0, 1.0, -1.0)
    near, far = (p + sgn * side * perp * (dyn.PUSH_RADIUS + 0.07) - u * 0.02 for sgn in (1.0, -1.0))
    on_table = jnp.all((near > 0.03) & (near < 0.97))
    detour = jnp.where(on_table, near, far)      # go round the side that has room
    approach = jnp.where(blocked, detour, behind)
    # Aim just behind the object's center: pushes it toward the target and corrects drift.
    push_goal = p - u * (dyn.PUSH_RADIUS - jnp.minimum(jnp.linalg.norm(target - p) + 0.005, 0.04))
    return jnp.where(in_position, push_goal, approach), in_position


def plan(state: State, nearest_move: bool = False):
    """(desired grasp-point goal, close?, noise scale) of the scripted expert (`nearest_move`:
    tasks.expert_move)."""
    k = jnp.minimum(tasks.expert_move(state, nearest_move), MAX_MOVES - 1)
    obj = state.move_obj[k]
    target = tasks.move_target(state)[tasks.placement_slot(state, k) if nearest_move else k]
    max_speed = dyn.emb(state, tb.EMB_MAX_SPEED)
    center, half = tasks.move_region(state)
    goal, close = _pick_place_plan(state, obj, target, center[k], half[k], max_speed)
    push_goal, pushing = _push_plan(state, obj, target)
    goal = jnp.where(state.move_push[k], push_goal, goal)
    close = jnp.where(state.move_push[k], False, close)
    finished = tasks.success(state)
    gp = dyn.grasp_point(state)
    goal = jnp.where(finished, gp, goal)
    close = jnp.where(finished, False, close)
    # Pushing with a round pusher is unstable sideways: push carefully (a third of the noise).
    noise_scale = jnp.where(state.move_push[k] & pushing, 0.3, 1.0)
    return goal, close, noise_scale


def to_action(state: State, displacement, close):
    """The embodiment's action (f32[ACTION_PAD]) that moves the grasp point by `displacement`."""
    mode = dyn.emb(state, tb.EMB_ACTION_MODE)
    scale = dyn.emb(state, tb.EMB_ACTION_SCALE)
    base_rot = dyn.rot(dyn.emb(state, tb.EMB_BASE_ANGLE))
    delta_base = base_rot.T @ displacement / scale
    absolute = base_rot.T @ (state.ee + displacement - dyn.emb(state, tb.EMB_BASE)) / scale
    delta_cam = dyn.rot(dyn.camera_angle(state)).T @ displacement / scale
    xy = jnp.select([mode == 0, mode == 1], [delta_base, absolute], delta_cam)
    open_value, closed_value = dyn.emb(state, tb.EMB_GRIP_VALUES)[0], dyn.emb(state, tb.EMB_GRIP_VALUES)[1]
    grip = jnp.where(close, closed_value, open_value)
    return jnp.concatenate([xy, grip[None]]).astype(jnp.float32)


def expert_action(state: State, key, env_config: EnvConfig = EnvConfig(), noise_scale=None,
                  nearest_move: bool = False):
    """The noisy scripted expert's action, f32[ACTION_PAD], in the embodiment's action space.
    `noise_scale` (a float or traced scalar) replaces env_config.expert_noise (DART's robots);
    `nearest_move` picks the move by tasks.expert_move's nearest-now rule (DAgger's labels)."""
    expert_noise = env_config.expert_noise if noise_scale is None else noise_scale
    goal, close, plan_noise = plan(state, nearest_move)
    gp = dyn.grasp_point(state)
    max_speed = dyn.emb(state, tb.EMB_MAX_SPEED)
    d = goal - gp
    dist = jnp.linalg.norm(d)
    d = d * jnp.minimum(1.0, 0.95 * max_speed / (dist + 1e-9))
    noise = jax.random.normal(key, (2,)) * NOISE * plan_noise * expert_noise * jnp.minimum(dist, max_speed)
    # Delta actions stay inside [-1, 1]: the noisy step is clipped to the embodiment's speed.
    d = d + noise
    d = d * jnp.minimum(1.0, max_speed / (jnp.linalg.norm(d) + 1e-9))
    # The wrist moves the human's grasp point only approximately (the hand turns as it moves).
    return to_action(state, d, close)


def fumble_grip(state: State, command, key, env_config: EnvConfig):
    """DART for the grip (`EnvConfig.dart_grip`): with that probability per step a robot reaching
    with an open, empty gripper has its executed command close the gripper, but only where the
    close grasps nothing (checked by taking the step). Session 5's fumble, allowed anywhere,
    sometimes grasped the egg while the label said "open" and taught the policy not to close at
    the egg (BUILD_NOTES, e9)."""
    human = dyn.emb(state, tb.EMB_IS_HUMAN) > 0
    k = jnp.minimum(tasks.current_move(state), MAX_MOVES - 1)
    reach = (tasks.phase(state) % 2 == 0) & ~state.move_push[k] & ~tasks.success(state)
    empty_open = (state.grip < 0.5) & (state.held < 0)
    fumbled = command.at[2].set(dyn.emb(state, tb.EMB_GRIP_VALUES)[1])   # robots: the grip is action[2]
    grasps = dyn.step(state, fumbled, env_config).held >= 0
    fumble = ~human & reach & empty_open & ~grasps & (jax.random.uniform(key) < env_config.dart_grip)
    return jnp.where(fumble, fumbled, command)
