"""The world's catalogue: named scenes, task families, embodiments and held-out settings.

Plain data (no jax) so `h2r data catalogue` and the data planner stay light. The jax world
(h2r/world/tables.py) turns these records into index-able arrays; an episode names its scene,
task family and embodiment by index into the tuples below.

Held-out things (the generalization the human data must carry) are marked here once and the
rest of the project asks `is_pretrain_allowed(...)`:
- the task family `sort_eggs_by_color` (setting `sort_eggs`),
- the scenes with `heldout=True` (setting `tidy_new_scenes`), kept at the END of SCENES so the
  first N scenes are always pretraining scenes,
- the object variant 1 of `bussing` (new dish types: mug, teapot, glass; `bussing_new_objects`).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

# ----------------------------------------------------------------------------------- colors
# Named colors (object colors and the words used for them in instructions).
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.16, 0.14), "green": (0.20, 0.68, 0.25), "blue": (0.18, 0.36, 0.86),
    "yellow": (0.96, 0.84, 0.18), "orange": (0.96, 0.54, 0.12), "purple": (0.58, 0.28, 0.76),
    "pink": (0.96, 0.56, 0.72), "teal": (0.12, 0.64, 0.64), "white": (0.97, 0.96, 0.91),
    "brown": (0.42, 0.23, 0.10), "black": (0.12, 0.12, 0.13), "gray": (0.55, 0.56, 0.58),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
BRIGHT = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "teal")

SKIN_TONES = ((0.96, 0.80, 0.69), (0.91, 0.72, 0.57), (0.80, 0.59, 0.43), (0.65, 0.45, 0.30),
              (0.47, 0.31, 0.20), (0.36, 0.23, 0.15))
SLEEVE_COLORS = ((0.20, 0.25, 0.45), (0.55, 0.15, 0.15), (0.25, 0.45, 0.30), (0.30, 0.30, 0.32),
                 (0.85, 0.85, 0.80), (0.55, 0.45, 0.25))


# ---------------------------------------------------------------------------------- objects
@dataclasses.dataclass(frozen=True)
class Part:
    """One painted shape of an object or fixture, in its local frame (x right, y up).

    The shape is a rounded box: center (dx, dy), rotation `angle`, half sizes (bx, by), corner
    radius r (bx=by=0 gives a circle, by=0 a capsule). ring > 0 paints only an outline of that
    half-thickness. Color: the owner's color times `shade`, mixed toward white by `mix`, unless
    `rgb` fixes it.
    """
    dx: float = 0.0
    dy: float = 0.0
    bx: float = 0.0
    by: float = 0.0
    r: float = 0.0
    ring: float = 0.0
    angle: float = 0.0
    shade: float = 1.0
    mix: float = 0.0
    rgb: tuple[float, float, float] | None = None


@dataclasses.dataclass(frozen=True)
class ObjectType:
    name: str
    parts: tuple[Part, ...]
    colors: tuple[str, ...]          # colors an instance may take
    heldout: bool = False            # only ever used by the bussing_new_objects setting


OBJECT_TYPES: tuple[ObjectType, ...] = (
    ObjectType("egg", (Part(0, -0.008, r=0.030), Part(0, 0.012, r=0.024),
                       Part(-0.009, 0.010, r=0.007, mix=0.6)), ("white", "brown")),
    ObjectType("jar", (Part(0, -0.004, 0.022, 0.026, 0.008), Part(0, 0.030, 0.025, 0.008, 0.003, shade=0.45),
                       Part(0, -0.006, 0.017, 0.010, 0.002, mix=0.75)), BRIGHT),
    ObjectType("cup", (Part(r=0.032), Part(r=0.022, shade=0.55), Part(0.040, 0, 0.008, 0, 0.006)),
               BRIGHT + ("white",)),
    ObjectType("plate", (Part(r=0.044, mix=0.45), Part(r=0.044, ring=0.005, shade=0.8),
                         Part(r=0.026, mix=0.7)), BRIGHT + ("white",)),
    ObjectType("bowl", (Part(r=0.044, shade=0.8), Part(r=0.034, shade=1.1, mix=0.2),
                        Part(0.007, -0.007, r=0.018, shade=0.7)), BRIGHT + ("white",)),
    ObjectType("block", (Part(bx=0.028, by=0.028, r=0.004), Part(-0.004, 0.004, 0.018, 0.018, 0.002, mix=0.3)),
               BRIGHT),
    ObjectType("spoon", (Part(-0.018, 0, 0.030, 0, 0.006), Part(0.030, 0, 0.008, 0, 0.014)),
               ("gray", "white", "black") + BRIGHT[:4]),
    ObjectType("apple", (Part(r=0.030), Part(0, 0.031, 0, 0.006, 0.003, rgb=(0.35, 0.22, 0.1)),
                         Part(0.013, 0.034, 0.006, 0, 0.005, angle=0.5, rgb=(0.2, 0.6, 0.2))),
               ("red", "green", "yellow")),
    ObjectType("can", (Part(r=0.028), Part(r=0.028, ring=0.004, mix=0.7), Part(0, 0.006, 0.008, 0.004, 0.002,
                                                                             rgb=(0.7, 0.7, 0.72))),
               BRIGHT),
    # Held-out dish types (bussing_new_objects only).
    ObjectType("mug", (Part(bx=0.026, by=0.026, r=0.008), Part(r=0.018, shade=0.45),
                       Part(0.043, 0, r=0.013, ring=0.005)), BRIGHT, heldout=True),
    ObjectType("teapot", (Part(r=0.034), Part(r=0.013, shade=1.2, mix=0.3),
                          Part(0.044, 0.010, 0.016, 0, 0.007, angle=0.5), Part(-0.042, 0, r=0.013, ring=0.005)),
               BRIGHT + ("white",), heldout=True),
    ObjectType("glass", (Part(r=0.027, mix=0.65), Part(r=0.027, ring=0.003, shade=0.6, mix=0.3),
                         Part(-0.008, 0.008, 0.003, 0.010, 0.002, angle=0.6, rgb=(1.0, 1.0, 1.0))),
               ("blue", "teal", "green"), heldout=True),
)
OBJECT_NAMES = tuple(t.name for t in OBJECT_TYPES)
HELDOUT_OBJECT_TYPES = tuple(t.name for t in OBJECT_TYPES if t.heldout)
DISHES = ("cup", "plate", "bowl")
NEW_DISHES = ("mug", "teapot", "glass")
DISTRACTOR_TYPES = ("apple", "can", "spoon", "block", "jar")
TIDY_ITEMS = ("spoon", "block", "cup", "can", "apple")


# --------------------------------------------------------------------------------- fixtures
@dataclasses.dataclass(frozen=True)
class FixtureType:
    """A container or zone: drawn parts, its inner half extents, and target slots in it."""
    name: str
    phrase: str                                   # "the carton", "the bin"
    parts: tuple[Part, ...]
    half: tuple[float, float]                     # inner half extents (success region)
    slots: tuple[tuple[float, float], ...]        # local target positions, in fill order
    colors: tuple[str, ...] = ("gray",)


_CARTON_RGB, _CELL_RGB = (0.80, 0.73, 0.60), (0.58, 0.52, 0.42)
# Carton: 4 columns x 2 rows. Cells 0-3 top row left->right, 4-7 bottom row.
_CARTON_CELLS = tuple((-0.165 + 0.11 * c, 0.055 - 0.11 * r) for r in range(2) for c in range(4))
FIXTURE_TYPES: tuple[FixtureType, ...] = (
    FixtureType("carton", "the carton",
                (Part(bx=0.215, by=0.105, r=0.012, rgb=_CARTON_RGB),)
                + tuple(Part(x, y, r=0.038, rgb=_CELL_RGB) for x, y in _CARTON_CELLS)
                + (Part(0, 0, 0.003, 0.105, rgb=(0.5, 0.44, 0.35)),),
                (0.21, 0.10), _CARTON_CELLS),
    FixtureType("bin", "the bin", (Part(bx=0.14, by=0.11, r=0.015), Part(bx=0.12, by=0.09, r=0.01, shade=0.55)),
                (0.12, 0.09), ((-0.06, 0.04), (0.06, 0.04), (-0.06, -0.04), (0.06, -0.04)),
                ("gray", "blue", "green", "black")),
    FixtureType("bowl", "the bowl", (Part(r=0.095, shade=0.8), Part(r=0.078, shade=1.1, mix=0.25)),
                (0.06, 0.06), ((0.0, 0.0),), ("white", "blue", "orange", "teal")),
    FixtureType("plate", "the plate", (Part(r=0.095, mix=0.6), Part(r=0.095, ring=0.008, shade=0.8),
                                       Part(r=0.06, mix=0.8)),
                (0.065, 0.065), ((0.0, 0.0),), ("white", "yellow", "blue")),
    FixtureType("stove", "the stove",
                (Part(bx=0.17, by=0.10, r=0.01, rgb=(0.18, 0.18, 0.2)),
                 Part(-0.08, 0.01, r=0.05, ring=0.007, rgb=(0.8, 0.25, 0.1)),
                 Part(0.08, 0.01, r=0.05, ring=0.007, rgb=(0.8, 0.25, 0.1)),
                 Part(-0.08, 0.01, r=0.022, ring=0.006, rgb=(0.6, 0.2, 0.1)),
                 Part(0.08, 0.01, r=0.022, ring=0.006, rgb=(0.6, 0.2, 0.1)),
                 Part(-0.08, -0.082, r=0.011, rgb=(0.75, 0.75, 0.75)),
                 Part(0.08, -0.082, r=0.011, rgb=(0.75, 0.75, 0.75))),
                (0.045, 0.045), ((-0.08, 0.01), (0.08, 0.01))),
    FixtureType("drawer", "the drawer",
                (Part(bx=0.20, by=0.11, r=0.01), Part(0, 0.005, 0.185, 0.095, 0.006, shade=0.55),
                 Part(0, -0.122, 0.05, 0.007, 0.004, rgb=(0.7, 0.7, 0.72))),
                (0.18, 0.09), ((-0.12, 0.0), (0.0, 0.0), (0.12, 0.0), (-0.06, 0.0)),
                ("brown", "white", "gray")),
    FixtureType("shelf", "the shelf",
                (Part(bx=0.20, by=0.11, r=0.004, shade=0.9), Part(0, 0.06, 0.2, 0.006, rgb=(0.3, 0.25, 0.2)),
                 Part(0, -0.06, 0.2, 0.006, rgb=(0.3, 0.25, 0.2)), Part(0, 0.105, 0.2, 0.008, shade=0.5)),
                (0.18, 0.09), ((-0.12, 0.0), (0.0, 0.0), (0.12, 0.0), (-0.06, 0.0)),
                ("brown", "white", "teal")),
    FixtureType("zone", "the zone", (Part(bx=0.095, by=0.095, mix=0.6), Part(bx=0.095, by=0.095, ring=0.007)),
                (0.075, 0.075), ((0.0, 0.0),), ("green", "blue", "red", "yellow", "purple")),
)
FIXTURE_NAMES = tuple(f.name for f in FIXTURE_TYPES)


# ----------------------------------------------------------------------------------- scenes
@dataclasses.dataclass(frozen=True)
class Scene:
    """A named look and layout. Textures: plain | stripes | checker | wood | tiles | dots."""
    name: str
    table: str                       # hex colors
    background: str
    texture: str
    texture_scale: float             # pattern frequency (cycles per table width)
    brightness: float
    tint: tuple[float, float, float]
    light_dir: float                 # angle of the light gradient (radians)
    distractors: tuple[int, int]     # min, max distractor objects
    fixture_x: tuple[float, float]   # range of the main fixture's center (table coords)
    fixture_y: tuple[float, float]
    camera: tuple[float, float, float, float]   # center dx, dy, half extent, angle (radians)
    heldout: bool = False            # only in the tidy_new_scenes setting


TEXTURES = ("plain", "stripes", "checker", "wood", "tiles", "dots")
_L, _R = (0.24, 0.34), (0.66, 0.76)   # fixture on the left or the right half


def _s(name, table, bg, tex, scale, bright, tint, light, dis, fx, fy, cam, heldout=False):
    return Scene(name, table, bg, tex, scale, bright, tint, light, dis, fx, fy, cam, heldout)


SCENES: tuple[Scene, ...] = (
    _s("oak_kitchen", "#b58352", "#5b4636", "wood", 5, 1.00, (1.0, 0.97, 0.9), 0.3, (0, 2), _L, (0.6, 0.8), (0, 0, 0.58, 0.0)),
    _s("white_lab", "#e6e8ea", "#9aa3ad", "plain", 1, 1.05, (0.97, 1.0, 1.03), 1.2, (0, 1), _R, (0.6, 0.8), (0.01, 0, 0.57, 0.05)),
    _s("green_felt", "#3f7f4f", "#2b2b2b", "dots", 14, 0.95, (1.0, 1.0, 1.0), 2.0, (1, 2), _L, (0.2, 0.4), (0, 0.02, 0.6, -0.05)),
    _s("checker_cafe", "#c9c2b0", "#6d5d4b", "checker", 6, 1.0, (1.02, 1.0, 0.95), 0.8, (0, 2), _R, (0.2, 0.4), (-0.01, 0, 0.58, 0.08)),
    _s("steel_bench", "#8d949c", "#3d4248", "stripes", 12, 0.98, (0.95, 0.98, 1.05), 2.6, (1, 3), _L, (0.5, 0.75), (0, -0.01, 0.59, 0.0)),
    _s("pine_workshop", "#d4a86a", "#7a5230", "wood", 8, 1.03, (1.05, 1.0, 0.9), 4.0, (0, 2), _R, (0.5, 0.75), (0.02, 0, 0.6, -0.1)),
    _s("blue_tiles", "#8fb2cf", "#40556b", "tiles", 5, 1.0, (0.97, 1.0, 1.05), 1.6, (0, 1), _L, (0.25, 0.5), (0, 0, 0.57, 0.12)),
    _s("red_diner", "#c0504d", "#e9e0c8", "checker", 4, 1.0, (1.03, 1.0, 0.97), 5.0, (1, 2), _R, (0.25, 0.5), (0, 0.01, 0.58, -0.04)),
    _s("marble_counter", "#ece9e2", "#7c7266", "wood", 2.5, 1.04, (1.0, 1.0, 1.0), 0.6, (0, 2), _L, (0.55, 0.8), (-0.02, 0, 0.59, 0.03)),
    _s("walnut_desk", "#6b4a32", "#c8b79a", "wood", 6, 0.95, (1.05, 0.98, 0.9), 3.3, (0, 1), _R, (0.55, 0.8), (0, 0, 0.58, 0.0)),
    _s("mint_studio", "#a9dcc6", "#e4f2ec", "plain", 1, 1.02, (0.98, 1.02, 1.0), 5.5, (1, 3), _L, (0.2, 0.45), (0.01, 0.01, 0.6, -0.08)),
    _s("slate_garage", "#5b6066", "#2a2c2f", "dots", 10, 0.92, (1.0, 1.0, 1.05), 0.2, (1, 2), _R, (0.2, 0.45), (0, 0, 0.57, 0.1)),
    _s("yellow_nursery", "#f1dc8c", "#b8a06a", "stripes", 6, 1.05, (1.05, 1.02, 0.92), 1.0, (0, 2), _L, (0.6, 0.8), (0, 0, 0.58, -0.02)),
    _s("concrete_loft", "#a8a49c", "#5a5650", "dots", 20, 0.97, (1.0, 0.98, 0.96), 2.2, (0, 2), _R, (0.6, 0.8), (0.01, -0.01, 0.59, 0.04)),
    _s("cherry_bar", "#8c3b2a", "#2d1a14", "wood", 4, 0.93, (1.05, 0.95, 0.9), 4.4, (1, 2), _L, (0.3, 0.55), (0, 0, 0.6, 0.0)),
    _s("lavender_room", "#b7a6d4", "#5e4f7a", "tiles", 4, 1.0, (1.0, 0.98, 1.05), 3.0, (0, 1), _R, (0.3, 0.55), (-0.01, 0, 0.58, -0.12)),
    _s("birch_table", "#e2cfa8", "#95805c", "wood", 10, 1.02, (1.0, 1.0, 0.97), 0.9, (0, 2), _L, (0.5, 0.7), (0, 0.01, 0.57, 0.06)),
    _s("navy_office", "#2f4266", "#9fa8b8", "stripes", 8, 0.97, (0.97, 0.98, 1.05), 1.9, (1, 2), _R, (0.5, 0.7), (0, 0, 0.59, -0.06)),
    _s("terracotta_patio", "#c9764f", "#8e9a6b", "tiles", 3, 1.04, (1.05, 1.0, 0.93), 2.8, (0, 3), _L, (0.2, 0.4), (0.02, 0, 0.6, 0.0)),
    _s("ivory_gallery", "#f4f1e6", "#333333", "plain", 1, 1.0, (1.0, 1.0, 0.98), 0.4, (0, 1), _R, (0.2, 0.4), (0, -0.02, 0.58, 0.09)),
    _s("olive_canteen", "#8a8a4a", "#4d4a2e", "checker", 8, 0.96, (1.02, 1.0, 0.94), 5.2, (1, 3), _L, (0.55, 0.8), (0, 0, 0.59, -0.09)),
    _s("teal_bistro", "#3e8c8a", "#d9cbb0", "dots", 8, 1.0, (0.98, 1.02, 1.02), 3.6, (0, 2), _R, (0.55, 0.8), (-0.01, 0.01, 0.58, 0.02)),
    _s("rose_bakery", "#e3a9a9", "#7d4b4b", "stripes", 4, 1.03, (1.04, 0.98, 0.98), 1.4, (0, 2), _L, (0.3, 0.6), (0, 0, 0.6, 0.11)),
    _s("graphite_lab", "#3b3d42", "#b5b9c0", "tiles", 6, 0.95, (0.97, 1.0, 1.04), 4.8, (1, 2), _R, (0.3, 0.6), (0.01, 0, 0.57, -0.03)),
    # Held-out scenes (tidy_new_scenes only): looks no pretraining scene has.
    _s("night_kitchen", "#4d5a7a", "#12141c", "wood", 7, 0.78, (0.85, 0.92, 1.15), 2.4, (0, 2), _L, (0.5, 0.75), (0, 0, 0.58, 0.07), True),
    _s("sunny_picnic", "#e85d5d", "#7fb069", "checker", 10, 1.12, (1.1, 1.05, 0.85), 0.7, (1, 2), _R, (0.5, 0.75), (0.01, 0, 0.6, -0.07), True),
    _s("orange_playroom", "#f08a24", "#3a6ea5", "dots", 6, 1.05, (1.05, 1.0, 0.95), 3.9, (0, 2), _L, (0.25, 0.5), (0, 0.01, 0.59, 0.1), True),
    _s("zebra_studio", "#f2f2f2", "#1d1d1d", "stripes", 16, 1.0, (1.0, 1.0, 1.0), 1.1, (1, 3), _R, (0.25, 0.5), (-0.01, 0, 0.58, -0.11), True),
)
HELDOUT_SCENES = tuple(s.name for s in SCENES if s.heldout)


# ----------------------------------------------------------------------------- task families
@dataclasses.dataclass(frozen=True)
class TaskFamily:
    """A family of tasks: instruction templates, per-phase subtask templates, success rule.

    Every task is a sequence of `moves` (an object to a target region). Each move has two
    phases, 2k (reach/pick) and 2k+1 (carry/place or push); phase 2*num_moves means done.
    Templates use {obj} (e.g. "red block"), {dest} (e.g. "the left side of the carton"),
    {objs} (plural noun, e.g. "eggs") and {fixture} (e.g. "the carton").
    """
    name: str
    instructions: tuple[str, ...]
    pick: str                      # subtask of phase 2k
    place: str                     # subtask of phase 2k+1
    success: str                   # the success predicate, in words
    max_moves: int                 # objects moved at most (fewer under a small env config)
    num_variants: int = 1          # object variants (bussing: 0 known dishes, 1 new dish types)
    push: bool = False
    # Object types the instruction names only as a kind ("the items", "the dishes", "the eggs"):
    # every such object on the table belongs to the task, so no distractor is of these types.
    # Without it a tidy table held a spoon to put away and a spoon to leave, and nothing the
    # policy sees (its subtask text is its own prediction) says which (BUILD_NOTES, session 15).
    category: tuple[str, ...] = ()


TASK_FAMILIES: tuple[TaskFamily, ...] = (
    TaskFamily("pick_place", ("put the {obj} in {fixture}", "place the {obj} into {fixture}",
                              "move the {obj} to {fixture}"),
               "pick up the {obj}", "place it in {dest}", "the object lies inside the container", 1),
    TaskFamily("eggs_in_carton", ("put the eggs in the carton", "place the eggs into the egg carton",
                                  "pack the eggs in the carton"),
               "pick up the {obj}", "place it in {dest}", "every egg lies inside the carton", 3, category=("egg",)),
    TaskFamily("sort_eggs_by_color", ("sort the eggs by color: white on the left, brown on the right",
                                      "put the white eggs in the left side and the brown eggs in the right side"),
               "pick up the {obj}", "place it in {dest}",
               "white eggs in the carton's left half, brown eggs in its right half", 4, category=("egg",)),
    TaskFamily("bussing", ("put the dishes in the bin", "clear the dishes into the bin", "bus the table"),
               "pick up the {obj}", "place it in {dest}", "every dish lies inside the bin", 3, num_variants=2,
               category=DISHES + NEW_DISHES),
    TaskFamily("jar_to_stove", ("bring the {obj} to the stove", "put the {obj} on the stove"),
               "pick up the {obj}", "place it on {dest}", "the jar stands on the named burner", 1),
    TaskFamily("tidy", ("tidy the items into {fixture}", "put the items away in {fixture}", "clean up the table"),
               "pick up the {obj}", "put it in {dest}", "every item lies inside the drawer/shelf", 3,
               category=TIDY_ITEMS),
    TaskFamily("stack", ("stack the {obj} on {dest}", "put the {obj} on top of {dest}"),
               "pick up the {obj}", "place it on {dest}", "the block rests on the other block", 1),
    TaskFamily("push_to_zone", ("push the {obj} into {dest}", "slide the {obj} to {dest}"),
               "move behind the {obj}", "push it into {dest}", "the block's center is inside the zone", 1,
               push=True),
)


# ------------------------------------------------------------------------------ embodiments
@dataclasses.dataclass(frozen=True)
class Embodiment:
    """A robot (2-link arm drawn by IK to its effector) or the human (forearm + hand).

    action_space: delta_base_frame (displacement in the robot's rotated base frame, times
    action_scale), absolute (target in the base frame, in units of `reach`), or
    delta_camera_frame (the human's tracked wrist motion in the moving head-camera frame).
    max_speed (table units per control step) models the control rate. wrist_view is the half
    width (table units) of the table patch the wrist camera shows: a camera choice per robot, as
    real arms carry different wrist cameras (measured per setting: BUILD_NOTES.md, "Learning").
    """
    name: str
    is_human: bool
    base: tuple[float, float]        # base position (robots) / forearm entry (human: x ignored)
    base_angle: float                # the base frame's x axis, radians, table frame
    links: tuple[float, float]
    elbow: float                     # +1 / -1: which IK solution is drawn
    colors: tuple[str, str, str]     # base, link 1, link 2 (hex)
    gripper: str                     # parallel | three_finger | suction | hook | pincer | wide_jaw | hand
    action_space: str
    action_scale: float
    max_speed: float
    grip_open: float                 # the grip action's values for open / closed
    grip_closed: float
    action_names: tuple[str, ...]
    state_names: tuple[str, ...]
    wrist_view: float = 0.17

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    @property
    def grip_dim(self) -> int | None:
        return None if self.is_human else self.action_dim - 1   # robots: the last action dim


_XY_BASE = ("ee_x_base", "ee_y_base")
_JOINTS = ("shoulder", "elbow")
_SINCOS = ("sin_shoulder", "cos_shoulder", "sin_elbow", "cos_elbow")
_XY_TABLE = ("ee_x", "ee_y")
_VEL = ("ee_vx", "ee_vy")
EMBODIMENTS: tuple[Embodiment, ...] = (
    Embodiment("jaw_arm", False, (0.5, -0.10), 1.5708, (0.62, 0.58), 1, ("#333333", "#f07c1a", "#f2f2f2"),
               "parallel", "delta_base_frame", 0.10, 0.10, 0.0, 1.0, ("dx", "dy", "grip"), _XY_BASE + ("grip",)),
    Embodiment("trident_arm", False, (-0.10, 0.5), 0.0, (0.64, 0.62), -1, ("#2b3a55", "#3c6fd1", "#9fb4d8"),
               "three_finger", "delta_base_frame", 0.09, 0.09, -1.0, 1.0, ("dx", "dy", "grip"), _JOINTS + ("grip",),
               wrist_view=0.3),
    Embodiment("suction_arm", False, (0.5, 1.10), -1.5708, (0.66, 0.6), 1, ("#444444", "#d9d9d9", "#6abf69"),
               "suction", "absolute", 1.25, 0.09, 0.0, 1.0, ("x", "y", "suction"), _SINCOS + _XY_BASE + ("grip",)),
    Embodiment("hook_arm", False, (1.10, 0.5), 3.1416, (0.63, 0.62), 1, ("#5a2d0c", "#c0392b", "#e6b0aa"),
               "hook", "delta_base_frame", 0.12, 0.11, 0.0, 1.0, ("dx", "dy", "grip"), _XY_TABLE + _VEL + ("grip",)),
    Embodiment("pincer_arm", False, (-0.06, -0.06), 0.7854, (0.8, 0.75), -1, ("#1f1f1f", "#8e44ad", "#f1c40f"),
               "pincer", "absolute", 1.55, 0.09, 0.0, 1.0, ("x", "y", "grip"), _JOINTS + _XY_BASE + ("grip",)),
    Embodiment("wide_jaw_arm", False, (1.06, -0.06), 2.3562, (0.8, 0.76), 1, ("#0b3d2e", "#16a085", "#2c3e50"),
               "wide_jaw", "delta_base_frame", 0.09, 0.09, 0.0, 1.0, ("dx", "dy", "grip"),
               _XY_BASE + _VEL + _JOINTS + ("grip",)),
    Embodiment("human", True, (0.5, -0.35), 1.5708, (0.0, 0.0), 1, ("#000000", "#000000", "#000000"),
               "hand", "delta_camera_frame", 0.12, 0.12, 0.0, 1.0, ("dx_cam", "dy_cam"), ()),
)


# --------------------------------------------------------------------------------- settings
TARGET_ROBOT, TARGET_HUMAN, HELDOUT_EVAL = "target-robot", "target-human", "heldout-eval"
ROLES = (TARGET_ROBOT, TARGET_HUMAN, HELDOUT_EVAL)
_TRAIN_SCENES = tuple(s.name for s in SCENES if not s.heldout)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One held-out generalization. combos[role] = ((scene, task_family, variant), ...)."""
    name: str
    kind: str                         # task | scenes | objects
    target_embodiment: str
    description: str
    target_robot: tuple[tuple[str, str, int], ...]
    target_human: tuple[tuple[str, str, int], ...]
    heldout_eval: tuple[tuple[str, str, int], ...]

    def combinations(self, role: str) -> tuple[tuple[str, str, int], ...]:
        return {TARGET_ROBOT: self.target_robot, TARGET_HUMAN: self.target_human,
                HELDOUT_EVAL: self.heldout_eval}[role]


def _combos(scenes: Sequence[str], task: str, variant: int = 0):
    return tuple((s, task, variant) for s in scenes)


SETTINGS: tuple[Setting, ...] = (
    Setting("sort_eggs", "task", "trident_arm",
            "new task: the robot only has eggs_in_carton; the human sorts eggs by color",
            _combos(_TRAIN_SCENES[:6], "eggs_in_carton"), _combos(_TRAIN_SCENES[:6], "sort_eggs_by_color"),
            _combos(_TRAIN_SCENES[:6], "sort_eggs_by_color")),
    Setting("tidy_new_scenes", "scenes", "jaw_arm",
            "new scenes: the robot tidies in known scenes; the human in the held-out scenes",
            _combos(_TRAIN_SCENES[:6], "tidy"), _combos(HELDOUT_SCENES, "tidy"), _combos(HELDOUT_SCENES, "tidy")),
    Setting("bussing_new_objects", "objects", "suction_arm",
            "new objects: the robot busses known dishes; the human busses new dish types",
            _combos(_TRAIN_SCENES[:6], "bussing", 0), _combos(_TRAIN_SCENES[:6], "bussing", 1),
            _combos(_TRAIN_SCENES[:6], "bussing", 1)),
)
HELDOUT_TASK_FAMILIES = ("sort_eggs_by_color",)


def is_pretrain_allowed(scene: str, task_family: str, variant: int = 0) -> bool:
    """Whether (scene, task family, object variant) may appear in any pretraining data."""
    if task_family in HELDOUT_TASK_FAMILIES or scene in HELDOUT_SCENES:
        return False
    return not uses_heldout_objects(task_family, variant)


def uses_heldout_objects(task_family: str, variant: int) -> bool:
    return task_family == "bussing" and variant == 1


def setting_combinations(setting_or_name, role: str) -> tuple[tuple[str, str, int], ...]:
    s = setting(setting_or_name) if isinstance(setting_or_name, str) else setting_or_name
    if role not in ROLES:
        raise KeyError(f"unknown setting role {role!r}; expected one of {ROLES}")
    return s.combinations(role)


# ---------------------------------------------------------------------------------- lookups
_TABLES = {"scene": SCENES, "task_family": TASK_FAMILIES, "embodiment": EMBODIMENTS, "setting": SETTINGS}


def index_of(kind: str, name: str) -> int:
    table = _TABLES[kind]
    for i, item in enumerate(table):
        if item.name == name:
            return i
    raise KeyError(f"unknown {kind} {name!r}; the catalogue has {[t.name for t in table]}")


def scene(name: str) -> Scene:
    return SCENES[index_of("scene", name)]


def task_family(name: str) -> TaskFamily:
    return TASK_FAMILIES[index_of("task_family", name)]


def embodiment(name: str) -> Embodiment:
    return EMBODIMENTS[index_of("embodiment", name)]


def setting(name: str) -> Setting:
    return SETTINGS[index_of("setting", name)]


ROBOTS = tuple(e.name for e in EMBODIMENTS if not e.is_human)
HUMAN = next(e.name for e in EMBODIMENTS if e.is_human)


# ---------------------------------------------------------------------- h2r data catalogue
def catalogue_dict() -> dict:
    """The JSON of `h2r data catalogue --json`."""
    def combos(c):
        return [{"scene": s, "task_family": t, "variant": v} for s, t, v in c]
    return {
        "scenes": [{"name": s.name, "texture": s.texture, "table": s.table, "background": s.background,
                    "brightness": s.brightness, "distractors": list(s.distractors), "heldout": s.heldout}
                   for s in SCENES],
        "task_families": [{"name": t.name, "instructions": list(t.instructions), "subtasks": [t.pick, t.place],
                           "success": t.success, "max_moves": t.max_moves, "num_variants": t.num_variants,
                           "category": list(t.category), "heldout": t.name in HELDOUT_TASK_FAMILIES}
                          for t in TASK_FAMILIES],
        "embodiments": [{"name": e.name, "is_human": e.is_human, "gripper": e.gripper,
                         "action_space": e.action_space, "action_dim": e.action_dim,
                         "action_names": list(e.action_names), "state_dim": e.state_dim,
                         "state_names": list(e.state_names), "grip_dim": e.grip_dim,
                         "max_speed": e.max_speed, "wrist_view": e.wrist_view} for e in EMBODIMENTS],
        "settings": [{"name": s.name, "kind": s.kind, "target_embodiment": s.target_embodiment,
                      "description": s.description, **{role: combos(s.combinations(role)) for role in ROLES}}
                     for s in SETTINGS],
        "object_types": [{"name": o.name, "heldout": o.heldout} for o in OBJECT_TYPES],
    }


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence]) -> str:
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([f"{title} ({len(rows)})", line(header), line(["-" * w for w in widths]),
                      *map(line, rows)])


def catalogue_text() -> str:
    """The catalogue as four text tables (`h2r data catalogue`)."""
    return "\n\n".join([
        _table("scenes", ("name", "texture", "table", "distractors", "held-out"),
               [(s.name, s.texture, s.table, "%d-%d" % s.distractors, "yes" if s.heldout else "")
                for s in SCENES]),
        _table("task families", ("name", "moves", "variants", "moves every", "example instruction"),
               [(t.name, t.max_moves, t.num_variants, ",".join(t.category) or "-", t.instructions[0])
                for t in TASK_FAMILIES]),
        _table("embodiments", ("name", "gripper", "action space", "action", "state", "wrist view"),
               [(e.name, e.gripper, e.action_space, ",".join(e.action_names), ",".join(e.state_names) or "-",
                 e.wrist_view) for e in EMBODIMENTS]),
        _table("settings", ("name", "kind", "target robot", "robot/human/eval combos", "description"),
               [(s.name, s.kind, s.target_embodiment,
                 "/".join(str(len(s.combinations(r))) for r in ROLES), s.description) for s in SETTINGS]),
    ])
