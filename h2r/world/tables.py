"""The catalogue as numpy tables the jax world indexes by scene/task/embodiment id.

Built once at import from h2r.world.catalogue; jit embeds them as constants.
"""
from __future__ import annotations

import numpy as np

from h2r.world import catalogue as cat

PART_FIELDS = ("dx", "dy", "bx", "by", "r", "ring", "angle", "shade", "mix")
P_OBJ = max(len(t.parts) for t in cat.OBJECT_TYPES)
P_FIX = max(len(f.parts) for f in cat.FIXTURE_TYPES)
MAX_SLOTS = max(len(f.slots) for f in cat.FIXTURE_TYPES)


def _hex(color: str) -> tuple[float, float, float]:
    color = color.lstrip("#")
    return tuple(int(color[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


def _parts_table(groups, width):
    """[n, width, 9] fields, [n, width, 3] fixed rgb, [n, width] has_rgb, [n, width] valid."""
    n = len(groups)
    fields = np.zeros((n, width, len(PART_FIELDS)), np.float32)
    rgb = np.zeros((n, width, 3), np.float32)
    has_rgb = np.zeros((n, width), bool)
    valid = np.zeros((n, width), bool)
    for i, parts in enumerate(groups):
        for j, p in enumerate(parts):
            fields[i, j] = [getattr(p, f) for f in PART_FIELDS]
            if p.rgb is not None:
                rgb[i, j], has_rgb[i, j] = p.rgb, True
            valid[i, j] = True
    return fields, rgb, has_rgb, valid


COLOR_RGB = np.array([cat.COLORS[c] for c in cat.COLOR_NAMES], np.float32)
COLOR_ID = {c: i for i, c in enumerate(cat.COLOR_NAMES)}
OBJ_ID = {t.name: i for i, t in enumerate(cat.OBJECT_TYPES)}
FIX_ID = {f.name: i for i, f in enumerate(cat.FIXTURE_TYPES)}

OBJ_PARTS, OBJ_RGB, OBJ_HAS_RGB, OBJ_VALID = _parts_table([t.parts for t in cat.OBJECT_TYPES], P_OBJ)
OBJECT_SCALE = 1.5    # objects are drawn this much larger than their catalogue sizes (readability at 32-64 px)
OBJ_PARTS[..., :6] *= OBJECT_SCALE
FIX_PARTS, FIX_RGB, FIX_HAS_RGB, FIX_VALID = _parts_table([f.parts for f in cat.FIXTURE_TYPES], P_FIX)
# Which colors each object / fixture type may take: [types, colors] masks.
OBJ_COLOR_OK = np.array([[c in t.colors for c in cat.COLOR_NAMES] for t in cat.OBJECT_TYPES])
FIX_COLOR_OK = np.array([[c in f.colors for c in cat.COLOR_NAMES] for f in cat.FIXTURE_TYPES])
FIX_HALF = np.array([f.half for f in cat.FIXTURE_TYPES], np.float32)          # success region
# [families, object types]: the kinds each family's instruction names only as a kind (no distractor is one).
FAMILY_CATEGORY = np.array([[t.name in f.category for t in cat.OBJECT_TYPES] for f in cat.TASK_FAMILIES])
FIX_OUTER = np.array([[f.parts[0].bx + f.parts[0].r, f.parts[0].by + f.parts[0].r]
                      for f in cat.FIXTURE_TYPES], np.float32)                  # drawn extent
FIX_SLOTS = np.zeros((len(cat.FIXTURE_TYPES), MAX_SLOTS, 2), np.float32)
for _i, _f in enumerate(cat.FIXTURE_TYPES):
    FIX_SLOTS[_i, :len(_f.slots)] = _f.slots
# Round fixtures (bowl, plate) draw their extent with r only.
for _i, _f in enumerate(cat.FIXTURE_TYPES):
    if _f.parts[0].bx == 0 and _f.parts[0].by == 0:
        FIX_OUTER[_i] = _f.parts[0].r

# --- scenes
TEXTURE_ID = {t: i for i, t in enumerate(cat.TEXTURES)}
SCENE_TABLE_RGB = np.array([_hex(s.table) for s in cat.SCENES], np.float32)
SCENE_BG_RGB = np.array([_hex(s.background) for s in cat.SCENES], np.float32)
SCENE_TEXTURE = np.array([TEXTURE_ID[s.texture] for s in cat.SCENES], np.int32)
SCENE_TEXTURE_SCALE = np.array([s.texture_scale for s in cat.SCENES], np.float32)
SCENE_BRIGHTNESS = np.array([s.brightness for s in cat.SCENES], np.float32)
SCENE_TINT = np.array([s.tint for s in cat.SCENES], np.float32)
SCENE_LIGHT_DIR = np.array([s.light_dir for s in cat.SCENES], np.float32)
SCENE_DISTRACTORS = np.array([s.distractors for s in cat.SCENES], np.int32)
SCENE_FIXTURE_RANGE = np.array([s.fixture_x + s.fixture_y for s in cat.SCENES], np.float32)  # x0 x1 y0 y1
SCENE_CAMERA = np.array([s.camera for s in cat.SCENES], np.float32)

# --- embodiments
ACTION_MODES = ("delta_base_frame", "absolute", "delta_camera_frame")
GRIPPERS = ("parallel", "three_finger", "suction", "hook", "pincer", "wide_jaw", "hand")
EMB_IS_HUMAN = np.array([e.is_human for e in cat.EMBODIMENTS])
EMB_BASE = np.array([e.base for e in cat.EMBODIMENTS], np.float32)
EMB_BASE_ANGLE = np.array([e.base_angle for e in cat.EMBODIMENTS], np.float32)
EMB_LINKS = np.array([e.links for e in cat.EMBODIMENTS], np.float32)
EMB_ELBOW = np.array([e.elbow for e in cat.EMBODIMENTS], np.float32)
EMB_COLORS = np.array([[_hex(c) for c in e.colors] for e in cat.EMBODIMENTS], np.float32)
EMB_GRIPPER = np.array([GRIPPERS.index(e.gripper) for e in cat.EMBODIMENTS], np.int32)
EMB_ACTION_MODE = np.array([ACTION_MODES.index(e.action_space) for e in cat.EMBODIMENTS], np.int32)
EMB_ACTION_SCALE = np.array([e.action_scale for e in cat.EMBODIMENTS], np.float32)
EMB_MAX_SPEED = np.array([e.max_speed for e in cat.EMBODIMENTS], np.float32)
EMB_WRIST_VIEW = np.array([e.wrist_view for e in cat.EMBODIMENTS], np.float32)
EMB_GRIP_VALUES = np.array([(e.grip_open, e.grip_closed) for e in cat.EMBODIMENTS], np.float32)
EMB_ACTION_DIM = np.array([e.action_dim for e in cat.EMBODIMENTS], np.int32)
EMB_STATE_DIM = np.array([e.state_dim for e in cat.EMBODIMENTS], np.int32)
HUMAN_GRASP_OFFSET = 0.085    # the human's grasp point sits this far past the wrist (under the fingers)
SKIN_RGB = np.array(cat.SKIN_TONES, np.float32)
SLEEVE_RGB = np.array(cat.SLEEVE_COLORS, np.float32)

# Proprio: every embodiment's state is a selection from one feature vector (see dynamics.features).
FEATURE_NAMES = ("ee_x_base", "ee_y_base", "shoulder", "elbow", "sin_shoulder", "cos_shoulder",
                 "sin_elbow", "cos_elbow", "ee_x", "ee_y", "ee_vx", "ee_vy", "grip")
EMB_STATE_INDEX = np.full((len(cat.EMBODIMENTS), 8), -1, np.int32)
for _i, _e in enumerate(cat.EMBODIMENTS):
    EMB_STATE_INDEX[_i, :_e.state_dim] = [FEATURE_NAMES.index(n) for n in _e.state_names]
