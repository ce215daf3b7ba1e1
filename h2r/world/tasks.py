"""Success predicates, phases, and the language of tasks (instruction and per-phase subtasks).

Move k is done when its object lies inside its target region and is not held. The phase is
2d while reaching/picking the next object (d = moves done so far), 2d+1 while carrying (or
pushing) one, and 2*num_moves once every move is done. Success: every move done.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from h2r.world import catalogue as cat
from h2r.world import dynamics
from h2r.world import state as st
from h2r.world.config import MAX_MOVES


def move_region(state: st.State):
    """[K,2] centers (following the anchor object when stacking) and [K,2] half extents."""
    anchored = state.move_anchor >= 0
    center = jnp.where(anchored[:, None], state.obj_pos[jnp.maximum(state.move_anchor, 0)], state.move_center)
    return center, state.move_half


def move_target(state: st.State):
    """[K,2] where the expert puts each move's object."""
    anchored = state.move_anchor >= 0
    return jnp.where(anchored[:, None], state.obj_pos[jnp.maximum(state.move_anchor, 0)], state.move_target)


def moves_done(state: st.State):
    center, half = move_region(state)
    pos = state.obj_pos[state.move_obj]
    inside = jnp.all(jnp.abs(pos - center) <= half, -1) & (state.held != state.move_obj)
    return inside | ~state.move_active


def success(state: st.State):
    return jnp.all(moves_done(state))


def current_move(state: st.State):
    """Index of the first unfinished move (num_moves when all are done)."""
    done = moves_done(state)
    return jnp.where(jnp.all(done), jnp.sum(state.move_active), jnp.argmin(done)).astype(jnp.int32)


def expert_move(state: st.State, nearest: bool = False):
    """The move the scripted expert works on: the first unfinished one (slot order: the nearest
    object at reset goes first: h2r.world.state._nearest_first). With `nearest`, while no moved object is
    held, the unfinished move whose object is nearest the grasp point *now*, for tasks of
    independent pick-and-place moves (stacking and pushing keep their order).

    Why `nearest` (DAgger's labels, h2r.data.dagger): slot order is fixed at reset and a policy that
    has wandered cannot see it; in 43 % of a tidy policy's own empty-handed first-reach steps the
    other object was nearer (BUILD_NOTES, "Learning", session 18). The nearest-now rule is a
    function of what the policy sees, and along the expert's own path it picks what slot order does.
    """
    k = current_move(state)
    if not nearest:
        return k
    unfinished = state.move_active & ~moves_done(state)
    holding = unfinished & (state.move_obj == state.held)
    independent = jnp.all(~state.move_active | ((state.move_anchor < 0) & ~state.move_push))
    dist = jnp.linalg.norm(state.obj_pos[state.move_obj] - dynamics.grasp_point(state), axis=-1)
    pick = jnp.where(jnp.any(holding), jnp.argmax(holding), jnp.argmin(jnp.where(unfinished, dist, jnp.inf)))
    return jnp.where(independent & jnp.any(unfinished), pick, k).astype(jnp.int32)


def placement_slot(state: st.State, k):
    """The move whose target the object of move k is put at under the nearest-move rule: the
    n-th object placed in a region takes the n-th target of the moves sharing that region (slot
    order), so the target, like the pick, is a function of what the policy sees (how many objects
    already lie there), not of which slot the object was given at reset. Along the expert's own
    path (moves in slot order) this is k itself."""
    same = (state.move_active & jnp.all(state.move_center == state.move_center[k], -1)
            & jnp.all(state.move_half == state.move_half[k], -1) & (state.move_anchor == state.move_anchor[k]))
    placed = jnp.sum(same & moves_done(state))
    rank = jnp.cumsum(same) - 1
    return jnp.where(jnp.any(same & (rank == placed)), jnp.argmax(same & (rank == placed)), k).astype(jnp.int32)


def phase(state: st.State):
    """2 * (moves done) while reaching the next object, + 1 while carrying (or pushing) one.

    Counting done moves rather than the index of the first unfinished one makes progress
    independent of the order: a policy that takes the second egg first has made progress too.
    The expert goes in order, so the recorded phases (and subtask labels) are the same either way.
    """
    k = current_move(state)
    kk = jnp.minimum(k, MAX_MOVES - 1)
    obj = state.move_obj[kk]
    gp = dynamics.grasp_point(state)
    pushing = jnp.linalg.norm(gp - state.obj_pos[obj]) < dynamics.PUSH_RADIUS + 0.03
    done = moves_done(state) & state.move_active
    carrying = jnp.any((state.move_obj == state.held) & state.move_active & ~done)
    second = jnp.where(state.move_push[kk], pushing, carrying)
    num_done = jnp.sum(done).astype(jnp.int32)
    finished = num_done >= jnp.sum(state.move_active)
    return jnp.where(finished, 2 * num_done, 2 * num_done + second.astype(jnp.int32)).astype(jnp.int32)


def num_phases(state) -> int:
    """Phases of an episode, the final 'done' phase included (numpy/python)."""
    return 2 * int(np.sum(np.asarray(state.move_active))) + 1


# ------------------------------------------------------------------------------- language
# Text is made in python from a (numpy) reset state; the jax world only carries indices.
DONE_TEXT = "done"


def object_name(s, i) -> str:
    return f"{cat.COLOR_NAMES[int(s.obj_color[i])]} {cat.OBJECT_TYPES[int(s.obj_type[i])].name}"


def _fixture_phrase(s, f) -> str:
    return cat.FIXTURE_TYPES[int(s.fix_type[f])].phrase


def dest_text(s, k) -> str:
    dest = int(s.move_dest[k])
    if dest == st.DEST_FIXTURE:
        return _fixture_phrase(s, max(int(s.move_fix[k]), 0))
    if dest == st.DEST_BLOCK:
        return f"the {object_name(s, int(s.move_anchor[k]))}"
    if dest == st.DEST_ZONE:
        return f"the {cat.COLOR_NAMES[int(s.fix_color[max(int(s.move_fix[k]), 0)])]} zone"
    return {st.DEST_LEFT_SIDE: "the left side of the carton", st.DEST_RIGHT_SIDE: "the right side of the carton",
            st.DEST_LEFT_BURNER: "the left burner", st.DEST_RIGHT_BURNER: "the right burner"}[dest]


def _template_index(seed: int, n: int) -> int:
    return (int(np.uint32(np.int32(seed))) // 7) % n


def instruction_from_state(s) -> str:
    """The episode's instruction, from its (numpy, unbatched) reset state."""
    family = cat.TASK_FAMILIES[int(s.spec.task_family)]
    template = family.instructions[_template_index(int(s.spec.seed), len(family.instructions))]
    fixture = _fixture_phrase(s, 0)
    return template.format(obj=object_name(s, int(s.move_obj[0])), dest=dest_text(s, 0), fixture=fixture)


def subtasks_from_state(s) -> list[str]:
    """Subtask text of every phase 0 .. 2*num_moves (the last is DONE_TEXT), moves in slot order."""
    return [subtask_of_move(s, p // 2, p) for p in range(num_phases(s))]


def subtask_of_move(s, move: int, phase: int) -> str:
    """Subtask text of move `move` in phase `phase` (reset state `s`, numpy): its pick while
    reaching (even phase), its place while carrying, DONE_TEXT once every move is done. The expert
    in slot order works on move phase // 2 (`subtasks_from_state`); DAgger's nearest-move labels
    (`expert_move`) name the object the label goes to."""
    family = cat.TASK_FAMILIES[int(s.spec.task_family)]
    if phase >= 2 * int(np.sum(np.asarray(s.move_active))):
        return DONE_TEXT
    if phase % 2 == 0:
        return family.pick.format(obj=object_name(s, int(s.move_obj[move])))
    return family.place.format(dest=dest_text(s, move))


def unbatch(state, i: int):
    """Episode i of a batched (numpy) state."""
    import jax  # noqa: PLC0415
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i], state)

