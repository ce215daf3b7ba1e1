"""The world state pytree and `reset`: lay out a scene's fixtures and objects for a task.

A task is a list of up to MAX_MOVES moves: "object `move_obj[k]` into the region
(`move_center[k]` +- `move_half[k]`)", or onto another object (`move_anchor[k]` >= 0, stacking),
or pushed there (`move_push[k]`). Each task family below only decides which objects, colors,
fixtures and targets; placement, physics and success are shared.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from h2r.world import catalogue as cat
from h2r.world import tables as tb
from h2r.world.config import (MAX_MOVES, NUM_FIXTURES, NUM_OBJECTS, NUM_TASK_OBJECTS, EnvConfig,
                              EpisodeSpec)

# Destination phrases (see tasks.dest_text): what subtask language says about move k's target.
DEST_FIXTURE, DEST_LEFT_SIDE, DEST_RIGHT_SIDE, DEST_LEFT_BURNER, DEST_RIGHT_BURNER, DEST_BLOCK, DEST_ZONE = range(7)
SIDE_HALF = (0.10, 0.095)      # a carton side's success region
STACK_HALF = (0.022, 0.022)    # stacking: within this of the lower block's center


class State(NamedTuple):
    spec: EpisodeSpec
    t: jnp.ndarray                 # int32 control steps taken
    key: jnp.ndarray               # PRNG key of the world's own randomness (head-camera ego motion)
    ee: jnp.ndarray                # f32[2] effector (robots: gripper center; human: wrist), table frame
    ee_prev: jnp.ndarray           # f32[2] effector one step ago (velocity proprio)
    grip: jnp.ndarray              # f32 0 open / 1 closed
    held: jnp.ndarray              # int32 object slot held, -1 none
    held_offset: jnp.ndarray       # f32[2] held object center minus grasp point
    obj_pos: jnp.ndarray           # f32[N,2]
    obj_angle: jnp.ndarray         # f32[N]
    obj_type: jnp.ndarray          # int32[N] index into catalogue.OBJECT_TYPES
    obj_color: jnp.ndarray         # int32[N] index into catalogue.COLOR_NAMES
    obj_active: jnp.ndarray        # bool[N]
    obj_level: jnp.ndarray         # int32[N] 0 on the table, 1 stacked on another object
    obj_pushable: jnp.ndarray      # bool[N] pushed by the open effector, never grasped
    fix_pos: jnp.ndarray           # f32[F,2]
    fix_type: jnp.ndarray          # int32[F] index into catalogue.FIXTURE_TYPES
    fix_color: jnp.ndarray         # int32[F]
    fix_active: jnp.ndarray        # bool[F]
    move_active: jnp.ndarray       # bool[K]
    move_obj: jnp.ndarray          # int32[K]
    move_target: jnp.ndarray       # f32[K,2] where the expert puts the object (static targets)
    move_center: jnp.ndarray       # f32[K,2] success region center (static targets)
    move_half: jnp.ndarray         # f32[K,2] success region half extents
    move_anchor: jnp.ndarray       # int32[K] object to stack on (region follows it), -1 none
    move_push: jnp.ndarray         # bool[K]
    move_dest: jnp.ndarray         # int32[K] DEST_* phrase kind
    move_fix: jnp.ndarray          # int32[K] fixture of the move (phrases), -1 none
    cam: jnp.ndarray               # f32[3] head-camera ego motion (dx, dy, angle); zero for robots
    skin: jnp.ndarray              # f32[3] human skin tone
    sleeve: jnp.ndarray            # f32[3] human sleeve color
    entry_x: jnp.ndarray           # f32 where the human forearm enters the bottom edge
    light: jnp.ndarray             # f32 per-episode brightness jitter


# ------------------------------------------------------------------------------- helpers
class Draws:
    """Hands out slices of ONE uniform draw: every random choice of reset comes from a single
    threefry call (dozens of small jax.random calls made reset slow to compile)."""

    def __init__(self, key, size: int = 512):
        self.u = jax.random.uniform(key, (size,), minval=1e-6, maxval=1.0 - 1e-6)
        self.used = 0

    def uniform(self, shape=()):
        n = int(np.prod(shape))
        if self.used + n > self.u.shape[0]:
            raise ValueError("Draws: out of random numbers; raise its size")
        out = self.u[self.used:self.used + n].reshape(shape)
        self.used += n
        return out

    def gumbel(self, shape):
        return -jnp.log(-jnp.log(self.uniform(shape)))

    def randint(self, n, shape=()):
        return jnp.minimum(jnp.floor(self.uniform(shape) * n), n - 1).astype(jnp.int32)


def _argmax_allowed(draws, ok):
    return jnp.argmax(jnp.where(ok, draws.gumbel(ok.shape), -jnp.inf)).astype(jnp.int32)


def _color(draws, obj_type, exclude=None):
    """A random allowed color of `obj_type`, avoiding the bool[colors] `exclude`."""
    ok = jnp.asarray(tb.OBJ_COLOR_OK)[obj_type]
    return _argmax_allowed(draws, ok if exclude is None else ok & ~exclude)


def _fix_color(draws, fix_type, exclude=None):
    ok = jnp.asarray(tb.FIX_COLOR_OK)[fix_type]
    return _argmax_allowed(draws, ok if exclude is None else ok & ~exclude)


def _choice(draws, names):
    ids = jnp.array([tb.OBJ_ID.get(n, tb.FIX_ID.get(n)) for n in names], jnp.int32)
    return ids[draws.randint(len(names))]


def _distinct(draws, names, n):
    ids = jnp.array([tb.OBJ_ID[x] for x in names], jnp.int32)
    return ids[jnp.argsort(draws.uniform((len(names),)))[:n]]


def _task(n_objects, n_moves):
    """An empty task description: fields every family fills."""
    z = lambda shape, dtype=jnp.int32: jnp.zeros(shape, dtype)  # noqa: E731
    return dict(
        obj_type=z(NUM_TASK_OBJECTS), obj_color=z(NUM_TASK_OBJECTS),
        obj_active=jnp.arange(NUM_TASK_OBJECTS) < n_objects, obj_pushable=z(NUM_TASK_OBJECTS, bool),
        fix_type=z(NUM_FIXTURES), fix_color=z(NUM_FIXTURES), fix_active=z(NUM_FIXTURES, bool),
        move_active=jnp.arange(MAX_MOVES) < n_moves, move_obj=jnp.arange(MAX_MOVES, dtype=jnp.int32),
        move_fix=z(MAX_MOVES), move_slot=jnp.arange(MAX_MOVES, dtype=jnp.int32),
        move_side=z(MAX_MOVES, bool), move_anchor=jnp.full(MAX_MOVES, -1, jnp.int32),
        move_push=z(MAX_MOVES, bool), move_dest=z(MAX_MOVES))


def _set(a, i, v):
    return a.at[i].set(v)


# ------------------------------------------------------------------------- task families
def _pick_place(draws, variant, cap):
    d = _task(1, 1)
    obj = _choice(draws, ("block", "jar", "cup", "apple", "can"))
    fix = jnp.array([tb.FIX_ID[n] for n in ("bowl", "plate", "bin")])[jnp.argsort(draws.uniform((3,)))[:2]]
    d["obj_type"] = _set(d["obj_type"], 0, obj)
    d["obj_color"] = _set(d["obj_color"], 0, _color(draws, obj))
    d["fix_type"], d["fix_active"] = fix, jnp.ones(NUM_FIXTURES, bool)
    c0 = _fix_color(draws, fix[0])
    d["fix_color"] = jnp.stack([c0, _fix_color(draws, fix[1])])
    return d


def _eggs(draws, n):
    d = _task(n, n)
    d["obj_type"] = jnp.full(NUM_TASK_OBJECTS, tb.OBJ_ID["egg"], jnp.int32)
    d["obj_color"] = jnp.stack([_color(draws, tb.OBJ_ID["egg"]) for i in range(n)]
                               + [jnp.int32(0)] * (NUM_TASK_OBJECTS - n))
    d["fix_type"] = jnp.full(NUM_FIXTURES, tb.FIX_ID["carton"], jnp.int32)
    d["fix_active"] = jnp.array([True, False])
    d["fix_color"] = jnp.full(NUM_FIXTURES, tb.COLOR_ID["gray"], jnp.int32)
    return d


def _eggs_in_carton(draws, variant, cap):
    """Eggs alternate white and brown (random start): no two eggs of a pair look alike, so the
    subtask text ("pick up the brown egg") always names one egg the image can point to."""
    n = min(3, cap)
    d = _eggs(draws, n)
    start = draws.randint(2)
    white = (jnp.arange(NUM_TASK_OBJECTS) + start) % 2 == 0
    d["obj_color"] = jnp.where(white, tb.COLOR_ID["white"], tb.COLOR_ID["brown"]).astype(jnp.int32)
    return d


# Sorting: white eggs fill the left side's cells (0, 4, 1, 5), brown eggs the right side's (3, 7, 2, 6).
_LEFT_CELLS, _RIGHT_CELLS = jnp.array([0, 4, 1, 5]), jnp.array([3, 7, 2, 6])


def _sort_eggs(draws, variant, cap):
    n = max(2, min(4, cap))
    d = _eggs(draws, n)
    white = d["obj_color"] == tb.COLOR_ID["white"]
    white = white.at[0].set(True).at[1].set(False)          # at least one egg of each color
    d["obj_color"] = jnp.where(white, tb.COLOR_ID["white"], tb.COLOR_ID["brown"]).astype(jnp.int32)
    w, b = white[:MAX_MOVES], ~white[:MAX_MOVES]
    rank_w, rank_b = jnp.cumsum(w) - 1, jnp.cumsum(b) - 1
    d["move_slot"] = jnp.where(w, _LEFT_CELLS[rank_w], _RIGHT_CELLS[rank_b]).astype(jnp.int32)
    d["move_side"] = jnp.ones(MAX_MOVES, bool)
    d["move_dest"] = jnp.where(w, DEST_LEFT_SIDE, DEST_RIGHT_SIDE).astype(jnp.int32)
    return d


def _bussing(draws, variant, cap):
    n = min(3, cap)
    d = _task(n, n)
    order = jnp.argsort(draws.uniform((3,)))
    types = jnp.where(variant == 1, jnp.array([tb.OBJ_ID[x] for x in cat.NEW_DISHES])[order],
                      jnp.array([tb.OBJ_ID[x] for x in cat.DISHES])[order])
    d["obj_type"] = d["obj_type"].at[:3].set(types)
    d["obj_color"] = d["obj_color"].at[:3].set(jnp.stack([_color(draws, types[i]) for i in range(3)]))
    d["fix_type"] = jnp.full(NUM_FIXTURES, tb.FIX_ID["bin"], jnp.int32)
    d["fix_active"] = jnp.array([True, False])
    d["fix_color"] = jnp.full(NUM_FIXTURES, _fix_color(draws, tb.FIX_ID["bin"]), jnp.int32)
    return d


def _jar_to_stove(draws, variant, cap):
    d = _task(2, 1)                       # the second jar is a distractor the instruction rules out
    jar = tb.OBJ_ID["jar"]
    c0 = _color(draws, jar)
    c1 = _color(draws, jar, jnp.arange(len(cat.COLOR_NAMES)) == c0)
    d["obj_type"] = d["obj_type"].at[:2].set(jar)
    d["obj_color"] = d["obj_color"].at[:2].set(jnp.stack([c0, c1]))
    d["fix_type"] = jnp.full(NUM_FIXTURES, tb.FIX_ID["stove"], jnp.int32)
    d["fix_active"] = jnp.array([True, False])
    d["fix_color"] = jnp.full(NUM_FIXTURES, tb.COLOR_ID["black"], jnp.int32)
    burner = draws.randint(2)
    d["move_slot"] = d["move_slot"].at[0].set(burner)
    d["move_dest"] = d["move_dest"].at[0].set(jnp.where(burner == 0, DEST_LEFT_BURNER, DEST_RIGHT_BURNER))
    return d


def _tidy(draws, variant, cap):
    n = min(3, cap)
    d = _task(n, n)
    types = _distinct(draws, cat.TIDY_ITEMS, 3)
    d["obj_type"] = d["obj_type"].at[:3].set(types)
    d["obj_color"] = d["obj_color"].at[:3].set(jnp.stack([_color(draws, types[i]) for i in range(3)]))
    fix = jnp.where(draws.uniform() < 0.5, tb.FIX_ID["drawer"], tb.FIX_ID["shelf"]).astype(jnp.int32)
    d["fix_type"] = jnp.full(NUM_FIXTURES, fix, jnp.int32)
    d["fix_active"] = jnp.array([True, False])
    d["fix_color"] = jnp.full(NUM_FIXTURES, _fix_color(draws, fix), jnp.int32)
    return d


def _stack(draws, variant, cap):
    d = _task(2, 1)
    block = tb.OBJ_ID["block"]
    c0 = _color(draws, block)
    c1 = _color(draws, block, jnp.arange(len(cat.COLOR_NAMES)) == c0)
    d["obj_type"] = d["obj_type"].at[:2].set(block)
    d["obj_color"] = d["obj_color"].at[:2].set(jnp.stack([c0, c1]))
    d["move_anchor"] = d["move_anchor"].at[0].set(1)
    d["move_fix"] = jnp.full(MAX_MOVES, -1, jnp.int32)
    d["move_dest"] = d["move_dest"].at[0].set(DEST_BLOCK)
    return d


def _push(draws, variant, cap):
    d = _task(1, 1)
    block = tb.OBJ_ID["block"]
    zone = tb.FIX_ID["zone"]
    c_zone = _fix_color(draws, zone)
    d["obj_type"] = d["obj_type"].at[0].set(block)
    d["obj_color"] = d["obj_color"].at[0].set(_color(draws, block, jnp.arange(len(cat.COLOR_NAMES)) == c_zone))
    d["obj_pushable"] = d["obj_pushable"].at[0].set(True)
    d["fix_type"] = jnp.full(NUM_FIXTURES, zone, jnp.int32)
    d["fix_active"] = jnp.array([True, False])
    d["fix_color"] = jnp.full(NUM_FIXTURES, c_zone, jnp.int32)
    d["move_push"] = d["move_push"].at[0].set(True)
    d["move_dest"] = d["move_dest"].at[0].set(DEST_ZONE)
    return d


FAMILY_BUILDERS = {"pick_place": _pick_place, "eggs_in_carton": _eggs_in_carton,
                   "sort_eggs_by_color": _sort_eggs, "bussing": _bussing, "jar_to_stove": _jar_to_stove,
                   "tidy": _tidy, "stack": _stack, "push_to_zone": _push}
assert tuple(FAMILY_BUILDERS) == tuple(t.name for t in cat.TASK_FAMILIES), "one builder per family, in order"


# ------------------------------------------------------------------------------ placement
_GRID = np.stack(np.meshgrid(np.linspace(0.1, 0.9, 6), np.linspace(0.1, 0.9, 6)), -1).reshape(-1, 2)


def _place_fixtures(draws, scene, fix_type):
    rng = jnp.asarray(tb.SCENE_FIXTURE_RANGE)[scene]
    u = draws.uniform((3,))
    p0 = jnp.stack([rng[0] + (rng[1] - rng[0]) * u[0], rng[2] + (rng[3] - rng[2]) * u[1]])
    p1 = jnp.stack([1.0 - p0[0], p0[1] + 0.1 * (u[2] - 0.5)])        # a second fixture mirrors the first
    pos = jnp.stack([p0, p1])
    half = jnp.asarray(tb.FIX_OUTER)[fix_type]
    return jnp.clip(pos, half + 0.01, 1.0 - half - 0.01)


def _place_objects(draws, fix_pos, fix_type, fix_active, prefer_inner):
    """NUM_OBJECTS positions on a jittered grid, clear of the active fixtures (slot 0 first;
    with prefer_inner, away from the table edges so a pushed object has room behind it)."""
    cand = jnp.asarray(_GRID, jnp.float32) + 0.05 * (draws.uniform(_GRID.shape) - 0.5)
    half = jnp.asarray(tb.FIX_OUTER)[fix_type] + 0.055
    inside = jnp.all(jnp.abs(cand[:, None] - fix_pos[None]) < half[None], -1) & fix_active[None]
    edge = jnp.any(jnp.abs(cand - 0.5) > 0.3, -1) & prefer_inner
    score = draws.uniform((len(_GRID),)) + 10.0 * jnp.any(inside, -1) + 2.0 * edge
    return cand[jnp.argsort(score)[:NUM_OBJECTS]]


def _distractors(draws, scene, task_family, task_types, task_active, env_config: EnvConfig):
    """Extra objects of types the task does not move: neither this episode's task objects' types
    nor its family's `category` (a kind its instruction names: every object of it is the task's)."""
    lo, hi = jnp.asarray(tb.SCENE_DISTRACTORS)[scene]
    count = jnp.minimum(lo + draws.randint(hi - lo + 1), env_config.max_distractors)
    allowed = jnp.array([tb.OBJ_ID[n] for n in cat.DISTRACTOR_TYPES], jnp.int32)
    clash = (jnp.any((allowed[:, None] == task_types[None]) & task_active[None], -1)
             | jnp.asarray(tb.FAMILY_CATEGORY)[task_family][allowed])
    n_extra = NUM_OBJECTS - NUM_TASK_OBJECTS
    scores = draws.gumbel((n_extra, len(allowed))) + jnp.where(clash, -1e9, 0.0)
    types = allowed[jnp.argmax(scores, -1)]
    colors = jnp.stack([_color(draws, types[i]) for i in range(n_extra)])
    return types, colors, jnp.arange(n_extra) < count


# ---------------------------------------------------------------------------------- reset
def reset(spec: EpisodeSpec, env_config: EnvConfig = EnvConfig()) -> State:
    """The initial state of the episode `spec` (int32 scalars). Deterministic in spec."""
    spec = EpisodeSpec(*(jnp.asarray(x, jnp.int32) for x in spec))
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(0), spec.seed), spec.task_family)
    task_key, layout_key, world_key = jax.random.split(key, 3)
    cap = env_config.max_task_objects
    branches = [lambda k, v, f=f: f(Draws(k, 64), v, cap) for f in FAMILY_BUILDERS.values()]
    task = jax.lax.switch(spec.task_family, branches, task_key, spec.variant)

    draws = Draws(layout_key)
    fix_pos = _place_fixtures(draws, spec.scene, task["fix_type"])
    pos = _place_objects(draws, fix_pos, task["fix_type"], task["fix_active"], jnp.any(task["obj_pushable"]))
    d_types, d_colors, d_active = _distractors(draws, spec.scene, spec.task_family, task["obj_type"],
                                               task["obj_active"], env_config)
    obj_type = jnp.concatenate([task["obj_type"], d_types])
    angle = 0.8 * (draws.uniform((NUM_OBJECTS,)) - 0.5)
    angle = jnp.where(obj_type == tb.OBJ_ID["spoon"], angle * 7.0, angle)

    # Move targets: a fixture slot (its whole fixture, one carton side, or one burner as region).
    fix_of_move = jnp.where(task["move_fix"] < 0, 0, task["move_fix"])
    ftype = task["fix_type"][fix_of_move]
    slot = jnp.asarray(tb.FIX_SLOTS)[ftype, task["move_slot"]]
    target = fix_pos[fix_of_move] + slot
    whole = jnp.asarray(tb.FIX_HALF)[ftype]
    is_stove = ftype == tb.FIX_ID["stove"]
    side_center = fix_pos[fix_of_move] + jnp.stack([jnp.sign(slot[:, 0]) * 0.11, jnp.zeros(MAX_MOVES)], -1)
    center = jnp.where(task["move_side"][:, None], side_center,
                       jnp.where(is_stove[:, None], target, fix_pos[fix_of_move]))
    half = jnp.where(task["move_side"][:, None], jnp.asarray(SIDE_HALF), whole)
    half = jnp.where((task["move_anchor"] >= 0)[:, None], jnp.asarray(STACK_HALF), half)

    human = jnp.asarray(tb.EMB_IS_HUMAN)[spec.embodiment]
    u = draws.uniform((4,))
    entry_x = 0.3 + 0.4 * u[0]
    # The start-anywhere draws come after every older draw, so worlds generated before the
    # option existed (start_anywhere 0) are reproduced bit for bit.
    skin = jnp.asarray(tb.SKIN_RGB)[draws.randint(len(tb.SKIN_RGB))]
    sleeve = jnp.asarray(tb.SLEEVE_RGB)[draws.randint(len(tb.SLEEVE_RGB))]
    ee = _start_effector(spec.embodiment, u[1:3], entry_x, draws.uniform((3,)), env_config.start_anywhere)
    num_moves = jnp.sum(task["move_active"])
    pos = _nearest_first(pos, ee, num_moves)
    # Drawn last, so worlds without it are reproduced bit for bit.
    swap = (draws.uniform(()) < env_config.swap_order) & (num_moves >= 2)
    pos = jnp.where(swap, pos.at[jnp.array([0, 1])].set(pos[jnp.array([1, 0])]), pos)
    return State(
        spec=spec, t=jnp.int32(0), key=world_key, ee=ee, ee_prev=ee, grip=jnp.float32(0), held=jnp.int32(-1),
        held_offset=jnp.zeros(2), obj_pos=pos, obj_angle=angle, obj_type=obj_type,
        obj_color=jnp.concatenate([task["obj_color"], d_colors]),
        obj_active=jnp.concatenate([task["obj_active"], d_active]),
        obj_level=jnp.zeros(NUM_OBJECTS, jnp.int32),
        obj_pushable=jnp.concatenate([task["obj_pushable"], jnp.zeros(NUM_OBJECTS - NUM_TASK_OBJECTS, bool)]),
        fix_pos=fix_pos, fix_type=task["fix_type"], fix_color=task["fix_color"], fix_active=task["fix_active"],
        move_active=task["move_active"], move_obj=task["move_obj"], move_target=target, move_center=center,
        move_half=half, move_anchor=task["move_anchor"], move_push=task["move_push"], move_dest=task["move_dest"],
        move_fix=task["move_fix"], cam=jnp.zeros(3),
        skin=skin, sleeve=sleeve,
        entry_x=jnp.where(human, entry_x, 0.5), light=0.06 * (u[3] - 0.5))


def _nearest_first(pos, ee, num_moves):
    """Reorders the moved objects' positions (slots 0..num_moves-1, moved in slot order) so the
    one nearest the effector's start goes first.

    Why: with a random order, two equivalent objects (two eggs, possibly of one colour) are taken
    in an order that neither the image nor the subtask text reveals, so the demonstrations are
    multimodal and a policy that replans switches between targets. Nearest-first is a rule a
    policy can read from the first frame, and it is what a person does.
    """
    slot = jnp.arange(pos.shape[0])
    dist = jnp.linalg.norm(pos - ee[None], axis=-1)
    order = jnp.argsort(jnp.where(slot < num_moves, dist, 10.0 + slot))   # the others keep their slots
    return pos[order]


def _start_effector(embodiment, u, entry_x, u_anywhere, start_anywhere):
    """Robots start near their base, inside the table; the human's hand starts low on the table.

    With probability `start_anywhere` (EnvConfig; data collection only) a robot starts anywhere
    on the table instead: a policy trained only on starts near the base has never seen how to
    come back from the table's far side, and once it drifts there it stays (BUILD_NOTES, e10).
    """
    base = jnp.asarray(tb.EMB_BASE)[embodiment]
    toward = jnp.clip(base, 0.0, 1.0) * 0.7 + 0.15          # 30% of the way from the base side to the center
    robot = toward + 0.08 * (u - 0.5)
    robot = jnp.where(u_anywhere[0] < start_anywhere, 0.05 + 0.9 * u_anywhere[1:], robot)
    human = jnp.stack([entry_x + 0.1 * (u[0] - 0.5), 0.12 + 0.06 * u[1]])
    return jnp.where(jnp.asarray(tb.EMB_IS_HUMAN)[embodiment], human, robot).astype(jnp.float32)
