"""Static sizes of the world, the env config, and episode specs.

Everything that varies per episode (scene, task, embodiment, objects) is an int in an
`EpisodeSpec`, so one jitted function serves every combination and batches vmap over it.
Array shapes are fixed by the constants below (inactive object/fixture/move slots are masked).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np

from h2r.world import catalogue as cat

NUM_OBJECTS = 8        # object slots: 0..4 task objects, 5..7 distractors
NUM_TASK_OBJECTS = 5
NUM_FIXTURES = 2
MAX_MOVES = 4
ACTION_PAD = 3         # step() takes f32[ACTION_PAD]: the embodiment's action, zero-padded
STATE_PAD = 8          # observe()["state"] is f32[STATE_PAD]: the embodiment's proprio, zero-padded
# The human's step() command is [dx_cam, dy_cam, hand_closed]: its recorded action is the first two
# (plus tracking noise); the hand closing is part of the world, not of the action.


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Static (hashable) world options; pass as a static argument to jit."""
    image_size: int = 64            # both views are image_size x image_size RGB
    horizon: int = 72               # max control steps of an episode (3 objects need ~45-60)
    max_task_objects: int = 3       # caps the objects moved by multi-object families (>= 2)
    max_distractors: int = 3        # caps a scene's distractor count (<= 3)
    # A demonstration ends this many steps after its first success. 0: it ends with the step that
    # completes the task. Why not 3 (the default until session 24): the steps after success show the
    # gripper standing still and open over the object it just released, which is how an arriving
    # gripper looks over the object it is to grasp next; policies learned to stand over objects
    # without closing (88 of 93 second-reach failures came within the grasp radius) and tidy rose
    # from 0.324 to 0.559 without those steps (BUILD_NOTES.md, "Learning", session 24). Evaluation
    # stops at success, so nothing a policy is measured on needs them.
    steps_after_success: int = 0
    expert_noise: float = 1.0       # scale of the scripted experts' motion noise
    # DART (Laskey et al. 2017), robots only, 0 = off: robot episodes execute the expert's motion
    # noise at this scale (instead of expert_noise) but record the noise-free action the expert
    # intended in the state it reached. The data then covers the states a slightly-off policy
    # visits, labelled with how to correct, and the labels are a function of the state (noisy
    # labels teach a policy to imitate noise). The human keeps expert_noise: its tracked wrist
    # is its real motion. Data collection only (`for_evaluation` sets 0).
    dart_noise: float = 0.0
    # DART for the grip, robots only, 0 = off: the per-step probability that a robot reaching with
    # an open, empty gripper closes it on nothing (executed only where closing grasps nothing).
    # The recorded label stays the expert's intended action, and the next step records how to
    # recover (open, go on): states a policy that closes too early visits and no plain
    # demonstration shows. Measured harmful (BUILD_NOTES, session 12, g1). Data collection only.
    dart_grip: float = 0.0
    # Data collection only (evaluation resets with 0, `for_evaluation`): the fraction of robot
    # episodes that start anywhere on the table instead of near the robot's base.
    start_anywhere: float = 0.0
    # Data collection only: the fraction of episodes whose first two moves swap objects, so the
    # expert takes the farther object first. Why: a policy that took the farther object first fails
    # the second reach far more often (0.65 against 0.81 from the expert's own states at that point,
    # policy_probes.py handover --swap-order; BUILD_NOTES, session 20), and nearest-first
    # demonstrations never show that second reach.
    swap_order: float = 0.0
    tracking_noise: float = 0.05    # human action: uniform noise in [-b, b] per dim (action units)
    ego_motion: float = 1.0         # scale of the human head camera's per-step jitter
    # Half width of the wrist view (table units) for every embodiment; None: each embodiment's own
    # (`Embodiment.wrist_view` in the catalogue). A float is for experiments on the view itself.
    wrist_half_extent: float | None = None

    def __post_init__(self):
        if self.image_size < 16:
            raise ValueError(f"EnvConfig.image_size={self.image_size}: expected >= 16")
        if not 1 <= self.max_task_objects <= MAX_MOVES:
            raise ValueError(f"EnvConfig.max_task_objects={self.max_task_objects}: expected 1..{MAX_MOVES}")
        if not 0 <= self.max_distractors <= NUM_OBJECTS - NUM_TASK_OBJECTS:
            raise ValueError(f"EnvConfig.max_distractors={self.max_distractors}: expected 0..3")
        if self.wrist_half_extent is not None and not self.wrist_half_extent > 0.0:
            raise ValueError(f"EnvConfig.wrist_half_extent={self.wrist_half_extent}: expected > 0 (table units)")
        if not 0.0 <= self.dart_grip <= 1.0:
            raise ValueError(f"EnvConfig.dart_grip={self.dart_grip}: expected a probability in [0, 1]")
        if not 0.0 <= self.start_anywhere <= 1.0:
            raise ValueError(f"EnvConfig.start_anywhere={self.start_anywhere}: expected a probability in [0, 1]")
        if not 0.0 <= self.swap_order <= 1.0:
            raise ValueError(f"EnvConfig.swap_order={self.swap_order}: expected a probability in [0, 1]")

    def for_evaluation(self) -> "EnvConfig":
        """The world a policy is evaluated in: data-collection options (start_anywhere, DART, swap_order) off."""
        return dataclasses.replace(self, start_anywhere=0.0, dart_noise=0.0, dart_grip=0.0, swap_order=0.0)

    @classmethod
    def from_config(cls, config) -> "EnvConfig":
        """From a data config: `resolution`, `horizon`, and any field under `config.env`."""
        get = config.get if hasattr(config, "get") else (lambda k, d=None: getattr(config, k, d))
        values = {}
        if get("resolution", None) is not None:
            values["image_size"] = int(get("resolution"))
        if get("horizon", None) is not None:
            values["horizon"] = int(get("horizon"))
        env = get("env", None) or {}
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in dict(env).items():
            if key not in names:
                raise ValueError(f"config.env.{key}: unknown world option; expected one of {sorted(names)}")
            values[key] = value
        return cls(**values)


TINY = EnvConfig(image_size=32, horizon=48, max_task_objects=2, max_distractors=2)


class EpisodeSpec(NamedTuple):
    """What an episode is: int32 scalars (or [B] arrays for a batch)."""
    scene: np.ndarray
    task_family: np.ndarray
    embodiment: np.ndarray
    variant: np.ndarray
    seed: np.ndarray


def _indices(kind: str, values) -> np.ndarray:
    values = np.atleast_1d(np.asarray(values, dtype=object))
    return np.array([v if isinstance(v, (int, np.integer)) else cat.index_of(kind, str(v)) for v in values],
                    dtype=np.int32)


def _seeds32(seed) -> np.ndarray:
    """Any integer seeds (python ints of any size, numpy ints) -> int32 (the low 32 bits)."""
    flat = [int(x) % 2 ** 32 for x in np.atleast_1d(np.asarray(seed, dtype=object)).ravel()]
    return np.array(flat, np.uint32).view(np.int32)


def make_specs(scene, task_family, embodiment, seed, variant=0) -> EpisodeSpec:
    """A batch of specs; each argument is a name/index or a sequence of them (broadcast)."""
    arrays = [_indices("scene", scene), _indices("task_family", task_family),
              _indices("embodiment", embodiment), np.atleast_1d(np.asarray(variant, np.int32)),
              _seeds32(seed)]
    arrays = np.broadcast_arrays(*arrays)
    return EpisodeSpec(*(np.ascontiguousarray(a) for a in arrays))


def spec_at(specs: EpisodeSpec, i: int) -> EpisodeSpec:
    return EpisodeSpec(*(np.asarray(a)[i] for a in specs))


def spec_names(spec: EpisodeSpec) -> dict:
    return {"scene": cat.SCENES[int(spec.scene)].name,
            "task_family": cat.TASK_FAMILIES[int(spec.task_family)].name,
            "embodiment": cat.EMBODIMENTS[int(spec.embodiment)].name,
            "variant": int(spec.variant), "seed": int(np.uint32(np.int32(spec.seed)))}


def specs_from_combos(combos: Sequence[tuple[str, str, str, int, int]]) -> EpisodeSpec:
    """From (scene, task_family, embodiment, variant, seed) tuples."""
    scene, task, emb, variant, seed = zip(*combos)
    return make_specs(list(scene), list(task), list(emb), list(seed), list(variant))
