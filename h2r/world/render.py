"""One rasterizer for both views: signed-distance shapes painted in order over a pixel grid.

Every drawable thing is a list of `parts` (rounded boxes: center, angle, half sizes, corner
radius, optional outline, color, visible). A view is a camera (center, half extent, angle) that
maps each pixel to table coordinates; the table texture is painted first, then the parts in
order (fixtures, objects, the arm or forearm, the held object, the gripper or hand), each
anti-aliased over one pixel, then the scene's lighting. Row 0 of an image is the far side.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from h2r.world import dynamics as dyn
from h2r.world import tables as tb
from h2r.world.config import EnvConfig
from h2r.world.state import State


class Parts(NamedTuple):
    center: jnp.ndarray   # [P,2]
    angle: jnp.ndarray    # [P]
    half: jnp.ndarray     # [P,2]
    r: jnp.ndarray        # [P]
    ring: jnp.ndarray     # [P]
    rgb: jnp.ndarray      # [P,3]
    on: jnp.ndarray       # [P] bool


def _cat(*parts: Parts) -> Parts:
    return Parts(*(jnp.concatenate(xs, 0) for xs in zip(*parts)))


def _capsule(a, b, r, rgb, on=True) -> Parts:
    """[1] part: a capsule from point a to point b."""
    d = b - a
    return Parts((a + b)[None] / 2, jnp.arctan2(d[1], d[0])[None],
                 jnp.stack([jnp.linalg.norm(d) / 2, 0.0])[None], jnp.atleast_1d(r),
                 jnp.zeros(1), jnp.asarray(rgb, jnp.float32)[None], jnp.atleast_1d(jnp.asarray(on)))


def _circle(c, r, rgb, on=True, ring=0.0) -> Parts:
    return Parts(c[None], jnp.zeros(1), jnp.zeros((1, 2)), jnp.atleast_1d(r), jnp.atleast_1d(ring),
                 jnp.asarray(rgb, jnp.float32)[None], jnp.atleast_1d(jnp.asarray(on)))


def _local_parts(fields, rgb, origin, angle, on) -> Parts:
    """Parts given in an owner's local frame (tables.PART_FIELDS rows) placed at origin/angle."""
    offset = fields[..., 0:2] @ dyn.rot(angle).T
    return Parts(origin + offset, fields[..., 6] + angle, fields[..., 2:4], fields[..., 4], fields[..., 5],
                 rgb, on)


def _shade(base_rgb, fields, fixed_rgb, has_fixed):
    shade, mix = fields[..., 7:8], fields[..., 8:9]
    own = jnp.clip(base_rgb * shade, 0, 1) * (1 - mix) + mix
    return jnp.where(has_fixed[..., None], fixed_rgb, own)


# ------------------------------------------------------------------------ scene contents
def _fixture_parts(s: State) -> Parts:
    def one(ftype, color, pos, active):
        fields = jnp.asarray(tb.FIX_PARTS)[ftype]
        rgb = _shade(jnp.asarray(tb.COLOR_RGB)[color], fields, jnp.asarray(tb.FIX_RGB)[ftype],
                     jnp.asarray(tb.FIX_HAS_RGB)[ftype])
        return _local_parts(fields, rgb, pos, 0.0, jnp.asarray(tb.FIX_VALID)[ftype] & active)
    p = jax.vmap(one)(s.fix_type, s.fix_color, s.fix_pos, s.fix_active)
    return Parts(*(x.reshape((-1,) + x.shape[2:]) for x in p))


OUTLINE = 0.03       # table units (~0.8 px at 32 px): the rim drawn around every object (see _outline_rgb)


def _outline_rgb(s: State):
    """A rim that contrasts with the table: dark on light tables, light on dark ones.

    Why: objects are a few pixels wide at CPU resolutions, and some share the table's colour
    (a white egg on the white lab table differed by ~0.05 RGB); a contrasting rim, like a
    shadow, keeps every object findable in every scene without changing its colour.
    """
    table = jnp.asarray(tb.SCENE_TABLE_RGB)[s.spec.scene]
    light = jnp.dot(table, jnp.array([0.299, 0.587, 0.114])) > 0.45
    return jnp.where(light, jnp.full(3, 0.12), jnp.full(3, 0.92))


STOWED_SHADE = 0.5   # an object put away inside a container is drawn this much darker, without its rim


def stowed(s: State):
    """bool [NUM_OBJECTS]: objects lying (not held) inside an active fixture's inner region.

    Why: a real camera sees an item in a drawer, a bin or a carton cell lower down and in the
    container's shadow; the flat renderer drew it exactly like one still on the table, and a policy
    that re-plans from each frame went back to the object it had just put away (BUILD_NOTES,
    "Learning", session 15).
    """
    inside = jnp.all(jnp.abs(s.obj_pos[:, None] - s.fix_pos[None]) < jnp.asarray(tb.FIX_HALF)[s.fix_type][None],
                     -1) & s.fix_active[None]
    return jnp.any(inside, -1) & (s.obj_level < 2) & s.obj_active


def _object_parts(s: State, which) -> Parts:
    """Parts of the objects `which` (int [M] slot indices), each only if active: a rim (the
    first part, grown by OUTLINE) and then the object's own parts, OBJ_DRAWN parts per object.
    A `stowed` object is drawn darker and without its rim."""
    rim_rgb = _outline_rgb(s)
    put_away = stowed(s)

    def one(i):
        t = s.obj_type[i]
        fields = jnp.asarray(tb.OBJ_PARTS)[t]
        rgb = _shade(jnp.asarray(tb.COLOR_RGB)[s.obj_color[i]], fields, jnp.asarray(tb.OBJ_RGB)[t],
                     jnp.asarray(tb.OBJ_HAS_RGB)[t])
        rgb = jnp.where(put_away[i], STOWED_SHADE * rgb, rgb)
        rim = fields[:1].at[:, 4].add(OUTLINE).at[:, 5].set(0.0)
        fields = jnp.concatenate([rim, fields])
        rgb = jnp.concatenate([rim_rgb[None], rgb])
        valid = jnp.asarray(tb.OBJ_VALID)[t]
        valid = jnp.concatenate([valid[:1] & ~put_away[i], valid])
        return _local_parts(fields, rgb, s.obj_pos[i], s.obj_angle[i], valid & s.obj_active[i])
    p = jax.vmap(one)(which)
    return Parts(*(x.reshape((-1,) + x.shape[2:]) for x in p))


OBJ_DRAWN = tb.P_OBJ + 1


def _table_objects(s: State) -> Parts:
    """Objects on the table (not held), lower level first."""
    order = jnp.argsort(s.obj_level * 16 + jnp.arange(s.obj_level.shape[0]))
    p = _object_parts(s, order)
    not_held = jnp.repeat((s.obj_level[order] < 2), OBJ_DRAWN)
    return p._replace(on=p.on & not_held)


def _held_object(s: State) -> Parts:
    p = _object_parts(s, jnp.maximum(s.held, 0)[None])
    return p._replace(on=p.on & (s.held >= 0))


# ---------------------------------------------------------------------- robots and human
DARK, STEEL, RED = (0.15, 0.15, 0.17), (0.72, 0.74, 0.77), (0.92, 0.15, 0.1)
# Gripper parts in the gripper frame (x along the last link, the grasp point at 0):
# (dx, dy, bx, by, r, ring, angle) open, the same closed, and a color role
# (0 base, 1 link 1, 2 link 2 color, 3 dark, 4 steel, 5 red when closed / steel when open).
_G = {
    "parallel": [((-0.045, 0, 0.010, 0.060, 0.004, 0, 0), (-0.045, 0, 0.010, 0.040, 0.004, 0, 0), 3),
                 ((-0.002, 0.052, 0.036, 0.008, 0.003, 0, 0), (-0.002, 0.034, 0.036, 0.008, 0.003, 0, 0), 4),
                 ((-0.002, -0.052, 0.036, 0.008, 0.003, 0, 0), (-0.002, -0.034, 0.036, 0.008, 0.003, 0, 0), 4)],
    "three_finger": [((-0.075, 0, 0, 0, 0.024, 0, 0),) * 2 + (2,),
                     ((0.026, 0.045, 0.017, 0, 0.009, 0, 1.05), (0.017, 0.029, 0.017, 0, 0.009, 0, 1.05), 3),
                     ((0.026, -0.045, 0.017, 0, 0.009, 0, -1.05), (0.017, -0.029, 0.017, 0, 0.009, 0, -1.05), 3),
                     ((-0.052, 0, 0.017, 0, 0.009, 0, 0), (-0.034, 0, 0.017, 0, 0.009, 0, 0), 3)],
    "suction": [((-0.045, 0, 0.024, 0, 0.009, 0, 0),) * 2 + (4,),
                ((0, 0, 0, 0, 0.024, 0, 0),) * 2 + (3,),
                ((0, 0, 0, 0, 0.024, 0.004, 0),) * 2 + (4,),
                ((0, 0, 0, 0, 0.010, 0, 0),) * 2 + (5,)],
    "hook": [((-0.055, 0, 0, 0, 0.018, 0, 0),) * 2 + (2,),
             ((-0.012, -0.01, 0.042, 0, 0.008, 0, 0),) * 2 + (4,),
             ((0.03, 0.012, 0.024, 0, 0.007, 0, 1.57), (0.026, 0.014, 0.024, 0, 0.007, 0, 2.1), 4),
             ((0.012, 0.036, 0.014, 0, 0.006, 0, 3.14), (0.0, 0.03, 0.014, 0, 0.006, 0, 3.9), 4)],
    "pincer": [((-0.06, 0, 0.008, 0.034, 0.004, 0, 0),) * 2 + (1,),
               ((-0.012, 0.032, 0.05, 0, 0.005, 0, -0.35), (-0.012, 0.018, 0.05, 0, 0.005, 0, -0.15), 3),
               ((-0.012, -0.032, 0.05, 0, 0.005, 0, 0.35), (-0.012, -0.018, 0.05, 0, 0.005, 0, 0.15), 3)],
    "wide_jaw": [((-0.05, 0, 0.012, 0.085, 0.004, 0, 0), (-0.05, 0, 0.012, 0.05, 0.004, 0, 0), 1),
                 ((-0.008, 0.074, 0.032, 0.013, 0.004, 0, 0), (-0.008, 0.040, 0.032, 0.013, 0.004, 0, 0), 3),
                 ((-0.008, -0.074, 0.032, 0.013, 0.004, 0, 0), (-0.008, -0.040, 0.032, 0.013, 0.004, 0, 0), 3)],
}
G_PARTS = max(len(v) for v in _G.values())


def _gripper_tables():
    n = len(tb.GRIPPERS)
    open_, closed = np.zeros((n, G_PARTS, 7), np.float32), np.zeros((n, G_PARTS, 7), np.float32)
    role, valid = np.zeros((n, G_PARTS), np.int32), np.zeros((n, G_PARTS), bool)
    for name, parts in _G.items():
        g = tb.GRIPPERS.index(name)
        for j, (o, c, ro) in enumerate(parts):
            open_[g, j], closed[g, j], role[g, j], valid[g, j] = o, c, ro, True
    return open_, closed, role, valid


G_OPEN, G_CLOSED, G_ROLE, G_VALID = _gripper_tables()


def _robot_arm(s: State, on) -> Parts:
    colors = dyn.emb(s, tb.EMB_COLORS)
    base, elbow = dyn.arm_points(s)
    direction = dyn.tool_direction(s)
    wrist = s.ee - 0.05 * direction
    return _cat(_circle(base, 0.07, colors[0], on), _circle(base, 0.045, colors[1] * 0.8, on),
                _capsule(base, elbow, 0.03, colors[1], on), _circle(elbow, 0.034, colors[0], on),
                _capsule(elbow, wrist, 0.022, colors[2], on), _circle(wrist, 0.024, colors[0], on))


def _gripper(s: State, on) -> Parts:
    g = dyn.emb(s, tb.EMB_GRIPPER)
    f = jnp.asarray(G_OPEN)[g] + (jnp.asarray(G_CLOSED)[g] - jnp.asarray(G_OPEN)[g]) * s.grip
    colors = dyn.emb(s, tb.EMB_COLORS)
    closed_rgb = jnp.where(s.grip > 0.5, jnp.asarray(RED), jnp.asarray(STEEL))
    palette = jnp.concatenate([colors, jnp.asarray([DARK, STEEL]), closed_rgb[None]])
    rgb = palette[jnp.asarray(G_ROLE)[g]]
    d = dyn.tool_direction(s)
    angle = jnp.arctan2(d[1], d[0])
    fields = jnp.concatenate([f, jnp.ones((G_PARTS, 1)), jnp.zeros((G_PARTS, 1))], -1)   # shade 1, mix 0
    return _local_parts(fields, rgb, s.ee, angle, jnp.asarray(G_VALID)[g] & on)


# The human hand in its own frame (x along the forearm, wrist at 0, thumb on the +y side:
# a right hand seen from above). Fingers: base (x, y), length open/closed, splay open.
_FINGERS = ((0.072, 0.027, 0.050, 0.020, 0.20), (0.078, 0.009, 0.058, 0.022, 0.06),
            (0.078, -0.009, 0.055, 0.021, -0.06), (0.072, -0.026, 0.044, 0.018, -0.20))


def _human_arm(s: State, on) -> Parts:
    entry = dyn.human_entry(s)
    d = dyn.tool_direction(s)
    sleeve_end = s.ee - 0.17 * d
    return _cat(_capsule(entry, s.ee, 0.042, s.skin * 0.96, on),
                _capsule(entry - 0.2 * d, sleeve_end, 0.052, s.sleeve, on))


def _hand(s: State, on) -> Parts:
    d = dyn.tool_direction(s)
    side = jnp.stack([-d[1], d[0]])
    at = lambda x, y: s.ee + x * d + y * side  # noqa: E731
    grip = s.grip
    skin = s.skin
    parts = [Parts(at(0.042, 0.0)[None], jnp.arctan2(d[1], d[0])[None], jnp.array([[0.028, 0.026]]),
                   jnp.array([0.016]), jnp.zeros(1), skin[None], jnp.atleast_1d(on))]
    for x, y, l_open, l_closed, splay in _FINGERS:
        length = l_open + (l_closed - l_open) * grip
        a = splay * (1 - grip)
        tip_dir = d * jnp.cos(a) + side * jnp.sin(a)
        base = at(x, y)
        parts.append(_capsule(base, base + tip_dir * length, 0.0095, skin * 0.9, on))
    thumb_angle = 1.0 - 0.65 * grip
    thumb_dir = d * jnp.cos(thumb_angle) + side * jnp.sin(thumb_angle)
    thumb_base = at(0.03, 0.03)
    parts.append(_capsule(thumb_base, thumb_base + thumb_dir * (0.048 - 0.015 * grip), 0.011, skin * 0.88, on))
    # Knuckle line: a slightly darker band across the back of the hand.
    parts.append(_capsule(at(0.064, 0.027), at(0.064, -0.026), 0.004, skin * 0.8, on))
    return _cat(*parts)


def scene_parts(s: State) -> Parts:
    human = dyn.emb(s, tb.EMB_IS_HUMAN)
    return _cat(_fixture_parts(s), _table_objects(s), _robot_arm(s, ~human), _human_arm(s, human),
                _held_object(s), _gripper(s, ~human), _hand(s, human))


# ------------------------------------------------------------------------- rasterizing
def _texture(s: State, xy):
    scene = s.spec.scene
    x, y = xy[..., 0], xy[..., 1]
    f = jnp.asarray(tb.SCENE_TEXTURE_SCALE)[scene]
    two_pi = 2 * jnp.pi
    frac = lambda v: v - jnp.floor(v)  # noqa: E731
    patterns = jnp.stack([
        jnp.zeros_like(x),
        jnp.sin(two_pi * f * x),
        jnp.sign(jnp.sin(jnp.pi * f * x) * jnp.sin(jnp.pi * f * y)),
        jnp.sin(two_pi * f * (y + 0.04 * jnp.sin(9 * x) + 0.015 * jnp.sin(23 * x + 3 * y))),
        jnp.where((frac(f * x) < 0.07) | (frac(f * y) < 0.07), -1.5, 0.2),
        jnp.where(jnp.hypot(frac(f * x) - 0.5, frac(f * y) - 0.5) < 0.22, 1.0, -0.1),
    ])
    pattern = patterns[jnp.asarray(tb.SCENE_TEXTURE)[scene]]
    table = jnp.asarray(tb.SCENE_TABLE_RGB)[scene] * (1 + 0.12 * pattern[..., None])
    background = jnp.asarray(tb.SCENE_BG_RGB)[scene] * (1 + 0.04 * jnp.sin(two_pi * 3 * (x + y)))[..., None]
    edge = jnp.maximum(jnp.abs(x - 0.5), jnp.abs(y - 0.5))
    table = jnp.where((edge > 0.49)[..., None], table * 0.7, table)
    return jnp.where((edge <= 0.5)[..., None], table, background)


def _paint(img, xy, parts: Parts, pixel):
    """Paints the parts in order over img, each anti-aliased over one pixel.

    All parts' coverage is computed at once ([P,H,W]); the compositing is a static unroll over
    parts (a lax.scan over parts was ~4x slower on CPU; closed forms with cumprod or a
    log-space matmul were slower too).
    """
    n = parts.angle.shape[0]
    c, s = jnp.cos(parts.angle)[:, None, None], jnp.sin(parts.angle)[:, None, None]
    dx = xy[None, :, :, 0] - parts.center[:, 0, None, None]
    dy = xy[None, :, :, 1] - parts.center[:, 1, None, None]
    qx = jnp.abs(dx * c + dy * s) - parts.half[:, 0, None, None]
    qy = jnp.abs(dy * c - dx * s) - parts.half[:, 1, None, None]
    outside = jnp.sqrt(jnp.maximum(qx, 0.0) ** 2 + jnp.maximum(qy, 0.0) ** 2)
    d = outside + jnp.minimum(jnp.maximum(qx, qy), 0.0) - parts.r[:, None, None]
    ring = parts.ring[:, None, None]
    d = jnp.where(ring > 0, jnp.abs(d + ring) - ring, d)
    alpha = jnp.clip(0.5 - d / pixel, 0.0, 1.0) * parts.on[:, None, None]     # [P,H,W]
    for i in range(n):        # static unroll: XLA fuses these into one pass over the pixels
        img = img + (parts.rgb[i] - img) * alpha[i, :, :, None]
    return img


def _lighting(s: State, img, xy):
    scene = s.spec.scene
    a = jnp.asarray(tb.SCENE_LIGHT_DIR)[scene]
    gradient = 1 + 0.15 * ((xy - 0.5) @ jnp.stack([jnp.cos(a), jnp.sin(a)]))
    light = jnp.asarray(tb.SCENE_BRIGHTNESS)[scene] * (1 + s.light) * gradient
    return img * light[..., None] * jnp.asarray(tb.SCENE_TINT)[scene]


def pixel_coords(center, half_extent, angle, size: int):
    """Table coordinates of each pixel center of a size x size view: f32[size, size, 2]."""
    u = (np.arange(size) + 0.5) / size * 2 - 1
    grid = jnp.asarray(np.stack(np.meshgrid(u, -u), -1), jnp.float32)    # [row, col, (u, v)]
    return center + half_extent * grid @ dyn.rot(angle).T


def head_camera(s: State):
    """(center, half extent, angle) of the head/overhead camera."""
    cam = jnp.asarray(tb.SCENE_CAMERA)[s.spec.scene]
    human = dyn.emb(s, tb.EMB_IS_HUMAN)
    robot_center = jnp.array([0.5, 0.5]) + cam[:2]
    human_center = jnp.array(dyn.HUMAN_CAMERA[:2]) + s.cam[:2]
    center = jnp.where(human, human_center, robot_center)
    half = jnp.where(human, dyn.HUMAN_CAMERA[2], cam[2])
    return center, half, dyn.camera_angle(s)


def wrist_camera(s: State, env_config: EnvConfig):
    d = dyn.tool_direction(s)
    center = dyn.grasp_point(s) + 0.03 * d
    half = (dyn.emb(s, tb.EMB_WRIST_VIEW) if env_config.wrist_half_extent is None
            else jnp.float32(env_config.wrist_half_extent))
    return center, half, jnp.arctan2(d[1], d[0]) - jnp.pi / 2


def render_view(s: State, camera, size: int, parts: Parts | None = None):
    center, half, angle = camera
    xy = pixel_coords(center, half, angle, size)
    parts = scene_parts(s) if parts is None else parts
    img = _paint(_texture(s, xy), xy, parts, 2 * half / size)
    img = _lighting(s, img, xy)
    return jnp.clip(jnp.round(img * 255), 0, 255).astype(jnp.uint8)


def render(s: State, env_config: EnvConfig = EnvConfig()):
    """{"image": uint8[R,R,3] head view, "wrist_image": uint8[R,R,3]}."""
    parts = scene_parts(s)
    size = env_config.image_size
    return {"image": render_view(s, head_camera(s), size, parts),
            "wrist_image": render_view(s, wrist_camera(s, env_config), size, parts)}
