"""Kinematics and `step`: actions move the effector, the gripper grasps, carries, releases, pushes.

Action spaces (per embodiment, see catalogue.Embodiment):
- delta_base_frame: a[:2] * action_scale is the displacement in the robot's rotated base frame;
- absolute:         base + R(base_angle) @ (a[:2] * action_scale) is the target position;
- delta_camera_frame (human): a[:2] * action_scale is the wrist displacement in the head
  camera's frame (rotated by the scene camera angle plus the ego motion of that step).
The effector moves toward the commanded point by at most max_speed per control step (the
embodiment's control rate), in PUSH_SUBSTEPS substeps so pushing never tunnels through objects.
Grip: a[2] above the midpoint of the embodiment's (open, closed) values closes the gripper;
closing grasps the nearest graspable object within GRASP_RADIUS of the grasp point.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from h2r.world import tables as tb
from h2r.world.config import EnvConfig
from h2r.world.state import State

GRASP_RADIUS = 0.09        # about three pixels at 32 px: a learned policy reaches about that precisely
PUSH_RADIUS = 0.05          # a pushable object's center is kept this far from the grasp point
PUSH_SUBSTEPS = 4
STACK_DISTANCE = 0.035      # an object released this close to another's center lies on top of it
HUMAN_CAMERA = (0.5, 0.47, 0.5)     # head camera center x, y and half extent (before ego motion)
EGO_STEP = (0.006, 0.006, 0.015)    # per-step ego-motion noise bound (dx, dy, angle)


def rot(angle):
    c, s = jnp.cos(angle), jnp.sin(angle)
    return jnp.array([[c, -s], [s, c]])


def emb(state: State, table):
    return jnp.asarray(table)[state.spec.embodiment]


def camera_angle(state: State):
    """The head camera's rotation: the scene's, plus the human's ego motion."""
    return jnp.asarray(tb.SCENE_CAMERA)[state.spec.scene, 3] + state.cam[2]


def human_entry(state: State):
    return jnp.stack([state.entry_x, jnp.float32(-0.35)])


def tool_direction(state: State, ee=None):
    """Unit vector along the last link (robots) or the forearm (human), table frame."""
    ee = state.ee if ee is None else ee
    _, elbow = arm_points(state, ee)
    robot = ee - elbow
    human = ee - human_entry(state)
    d = jnp.where(emb(state, tb.EMB_IS_HUMAN), human, robot)
    return d / (jnp.linalg.norm(d) + 1e-6)


def grasp_point(state: State, ee=None):
    """Where the effector grasps: the gripper center, or under the human's fingers."""
    ee = state.ee if ee is None else ee
    offset = jnp.where(emb(state, tb.EMB_IS_HUMAN), tb.HUMAN_GRASP_OFFSET, 0.0)
    return ee + offset * tool_direction(state, ee)


def joint_angles(state: State, ee=None):
    """Two-link IK in the base frame: (shoulder, elbow) angles reaching `ee` (clamped to reach)."""
    ee = state.ee if ee is None else ee
    l1, l2 = emb(state, tb.EMB_LINKS)[0], emb(state, tb.EMB_LINKS)[1]
    p = rot(-emb(state, tb.EMB_BASE_ANGLE)) @ (ee - emb(state, tb.EMB_BASE))
    dist = jnp.clip(jnp.linalg.norm(p), jnp.abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3)
    cos_e = jnp.clip((dist ** 2 - l1 ** 2 - l2 ** 2) / (2 * l1 * l2 + 1e-6), -1.0, 1.0)
    elbow = emb(state, tb.EMB_ELBOW) * jnp.arccos(cos_e)
    shoulder = jnp.arctan2(p[1], p[0]) - jnp.arctan2(l2 * jnp.sin(elbow), l1 + l2 * jnp.cos(elbow))
    return shoulder, elbow


def arm_points(state: State, ee=None):
    """Base and elbow positions of the drawn arm (table frame)."""
    ee = state.ee if ee is None else ee
    shoulder, _ = joint_angles(state, ee)
    base = emb(state, tb.EMB_BASE)
    l1 = emb(state, tb.EMB_LINKS)[0]
    a = emb(state, tb.EMB_BASE_ANGLE) + shoulder
    return base, base + l1 * jnp.stack([jnp.cos(a), jnp.sin(a)])


def commanded_point(state: State, action):
    """The table point the action asks the effector to go to (before the speed limit)."""
    a = action[:2] * emb(state, tb.EMB_ACTION_SCALE)
    mode = emb(state, tb.EMB_ACTION_MODE)
    base_rot = rot(emb(state, tb.EMB_BASE_ANGLE))
    delta_base = state.ee + base_rot @ a
    absolute = emb(state, tb.EMB_BASE) + base_rot @ a
    delta_cam = state.ee + rot(camera_angle(state)) @ a
    return jnp.select([mode == 0, mode == 1], [delta_base, absolute], delta_cam)


def grip_closed(state: State, action):
    open_value, closed_value = emb(state, tb.EMB_GRIP_VALUES)[0], emb(state, tb.EMB_GRIP_VALUES)[1]
    return jnp.where(closed_value > open_value, action[2] > 0.5 * (open_value + closed_value),
                     action[2] < 0.5 * (open_value + closed_value))


def _limit(d, max_norm):
    n = jnp.linalg.norm(d)
    return d * jnp.minimum(1.0, max_norm / (n + 1e-9))


def _push(state: State, gp):
    """Pushable, non-held objects inside PUSH_RADIUS of the grasp point are pushed out to it."""
    v = state.obj_pos - gp[None]
    dist = jnp.linalg.norm(v, axis=-1, keepdims=True)
    contact = (state.obj_pushable & state.obj_active & (state.grip < 0.5))[:, None] & (dist < PUSH_RADIUS)
    pushed = jnp.clip(gp[None] + v / (dist + 1e-9) * PUSH_RADIUS, 0.02, 0.98)
    return state._replace(obj_pos=jnp.where(contact, pushed, state.obj_pos))


def _move(state: State, target, max_speed):
    d = _limit(target - state.ee, max_speed) / PUSH_SUBSTEPS
    # The human's wrist may go below the table edge (its grasp point is ahead of the wrist).
    low = jnp.where(emb(state, tb.EMB_IS_HUMAN), jnp.array([0.02, -0.1]), jnp.array([0.02, 0.02]))
    for _ in range(PUSH_SUBSTEPS):           # static unroll: a handful of cheap vector ops
        ee = jnp.clip(state.ee + d, low, 0.98)
        gp = grasp_point(state, ee)
        carried = jnp.where((jnp.arange(state.obj_pos.shape[0]) == state.held)[:, None],
                            gp + state.held_offset, state.obj_pos)
        state = _push(state._replace(ee=ee, obj_pos=carried), gp)
    return state


def _grasp_and_release(state: State, close):
    gp = grasp_point(state)
    dist = jnp.linalg.norm(state.obj_pos - gp[None], axis=-1)
    graspable = state.obj_active & ~state.obj_pushable
    # Prefer the top of a stack: objects lying on others count as a little closer.
    score = jnp.where(graspable, dist - 0.01 * state.obj_level, jnp.inf)
    nearest = jnp.argmin(score).astype(jnp.int32)
    grasp = close & (state.grip < 0.5) & (state.held < 0) & (score[nearest] < GRASP_RADIUS)
    release = ~close & (state.held >= 0)
    held_idx = jnp.maximum(state.held, 0)
    # A released object lies on another object when dropped close to its center.
    others = jnp.linalg.norm(state.obj_pos - state.obj_pos[held_idx][None], axis=-1)
    others = jnp.where(state.obj_active & (jnp.arange(others.shape[0]) != held_idx), others, jnp.inf)
    on_top = jnp.min(others) < STACK_DISTANCE
    level = state.obj_level.at[held_idx].set(jnp.where(release, on_top.astype(jnp.int32),
                                                       state.obj_level[held_idx]))
    level = level.at[nearest].set(jnp.where(grasp, 2, level[nearest]))   # 2: carried, drawn on top
    held = jnp.where(grasp, nearest, jnp.where(release, -1, state.held))
    offset = jnp.where(grasp, state.obj_pos[nearest] - gp, jnp.where(release, 0.0, state.held_offset))
    return state._replace(held=held, held_offset=offset, obj_level=level,
                          grip=close.astype(jnp.float32))


def _ego_motion(state: State, env_config: EnvConfig):
    key, sub = jax.random.split(state.key)
    noise = jax.random.uniform(sub, (3,), minval=-1.0, maxval=1.0) * jnp.asarray(EGO_STEP)
    cam = 0.85 * state.cam + env_config.ego_motion * noise
    cam = jnp.where(emb(state, tb.EMB_IS_HUMAN), cam, 0.0)
    return state._replace(key=key, cam=cam)


def step(state: State, action, env_config: EnvConfig = EnvConfig()) -> State:
    """One control step. `action` is f32[ACTION_PAD]: the embodiment's action, zero-padded
    (the human's is the command [dx_cam, dy_cam, hand_closed], see config.ACTION_PAD)."""
    action = jnp.asarray(action, jnp.float32)
    ee_before = state.ee
    state = _move(state, commanded_point(state, action), emb(state, tb.EMB_MAX_SPEED))
    state = _grasp_and_release(state, grip_closed(state, action))
    state = _ego_motion(state, env_config)
    return state._replace(ee_prev=ee_before, t=state.t + 1)


def features(state: State):
    """Every proprio feature (tables.FEATURE_NAMES); an embodiment's state selects from these."""
    shoulder, elbow = joint_angles(state)
    ee_base = rot(-emb(state, tb.EMB_BASE_ANGLE)) @ (state.ee - emb(state, tb.EMB_BASE))
    vel = (state.ee - state.ee_prev) / emb(state, tb.EMB_MAX_SPEED)
    return jnp.concatenate([ee_base, jnp.stack([shoulder, elbow, jnp.sin(shoulder), jnp.cos(shoulder),
                                                jnp.sin(elbow), jnp.cos(elbow)]),
                            state.ee, vel, state.grip[None]])


def proprio(state: State):
    """f32[STATE_PAD]: the embodiment's state vector, zero-padded (the human has none)."""
    index = emb(state, tb.EMB_STATE_INDEX)
    return jnp.where(index >= 0, features(state)[jnp.maximum(index, 0)], 0.0).astype(jnp.float32)
