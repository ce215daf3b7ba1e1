"""Dataset kind -> the common sample layout: a registry, one entry per RLDS schema.

Each entry says where a step keeps its head and wrist views, which features concatenate
into the proprio state and into the action (in that order: the action's per-dimension
meaning), where the instruction and the subtask text are, and which embodiment it is.
A feature is named by its path inside a step ("observation/image"). The expected dtype and
shape of every numeric feature are checked against the dataset's own `features.json` before
anything is read, so a schema mismatch fails at once with the dataset and key named.

To read another RLDS dataset, add an entry (octo's `standardization_transforms` and the
Open X-Embodiment colab are the reference for real schemas) and a name rule in `kind_of`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from h2r.errors import DataError

ANY = None  # a dimension of any size (h2r datasets' action/state dims depend on the embodiment)


@dataclasses.dataclass(frozen=True)
class Part:
    """A numeric step feature that is one slice of the state or action vector."""
    path: str
    dtype: type
    shape: tuple  # per step; () for a scalar (becomes one dimension)
    optional: bool = False  # absent -> contributes no dimensions (the human has no proprio)


@dataclasses.dataclass(frozen=True)
class Layout:
    kind: str
    image: str
    wrist_image: str | None
    state: tuple[Part, ...]
    action: tuple[Part, ...]
    action_names: tuple[str, ...] | None
    instruction: str
    subtask: str | None
    embodiment: str | None  # None: read episode_metadata/embodiment
    metadata: tuple[str, ...] = ()  # episode_metadata keys kept in the index (strings)


H2R_METADATA = ("scene", "task_family", "embodiment", "setting", "target")

KINDS: dict[str, Layout] = {
    # Ours (BUILD_NOTES, "RLDS on disk"): one dataset per embodiment, everything native.
    "h2r": Layout(
        kind="h2r",
        image="observation/image", wrist_image="observation/wrist_image",
        state=(Part("observation/state", np.float32, (ANY,), optional=True),),
        action=(Part("action", np.float32, (ANY,)),),
        action_names=None,  # from the world catalogue's Embodiment.action_names
        instruction="language_instruction", subtask="subtask_instruction",
        embodiment=None, metadata=H2R_METADATA),
    # Open X-Embodiment `bridge` (WidowX): EEF deltas + a binary open-gripper flag.
    "bridge": Layout(
        kind="bridge",
        image="observation/image", wrist_image=None,
        state=(Part("observation/state", np.float32, (7,)),),
        action=(Part("action/world_vector", np.float32, (3,)),
                Part("action/rotation_delta", np.float32, (3,)),
                Part("action/open_gripper", np.bool_, ())),
        action_names=("x", "y", "z", "roll", "pitch", "yaw", "open_gripper"),
        instruction="observation/natural_language_instruction", subtask=None,
        embodiment="widowx"),
    # Open X-Embodiment `fractal20220817_data` (RT-1, Google robot); base motion dropped as octo does.
    "fractal": Layout(
        kind="fractal",
        image="observation/image", wrist_image=None,
        state=(Part("observation/base_pose_tool_reached", np.float32, (7,)),
               Part("observation/gripper_closed", np.float32, (1,))),
        action=(Part("action/world_vector", np.float32, (3,)),
                Part("action/rotation_delta", np.float32, (3,)),
                Part("action/gripper_closedness_action", np.float32, (1,))),
        action_names=("x", "y", "z", "roll", "pitch", "yaw", "gripper_closedness"),
        instruction="observation/natural_language_instruction", subtask=None,
        embodiment="google_robot"),
}

# Dataset directory name -> kind.
_NAMES = {"bridge": "bridge", "bridge_dataset": "bridge", "fractal20220817_data": "fractal"}


def kind_of(dataset_name: str) -> str:
    if dataset_name.startswith("h2r_"):
        return "h2r"
    if dataset_name in _NAMES:
        return _NAMES[dataset_name]
    raise DataError(
        f"dataset {dataset_name!r}: unknown dataset kind; known kinds are {sorted(KINDS)} "
        f"(h2r_* datasets, {sorted(_NAMES)}); add an entry to h2r/data/standardize.py")


def layout(kind: str) -> Layout:
    if kind not in KINDS:
        raise DataError(f"unknown dataset kind {kind!r}; known kinds: {sorted(KINDS)}")
    return KINDS[kind]


def _feature_at(features, path: str):
    node = features
    for key in path.split("/"):
        node = node[key]
    return node


def validate_schema(name: str, layout: Layout, steps_features, metadata_features=None) -> None:
    """Raises DataError if a feature the layout needs is missing or has the wrong dtype/shape."""
    def missing(path, where="steps"):
        return DataError(f"dataset {name!r} (kind {layout.kind}): feature '{where}/{path}' is missing "
                         f"from its features.json; kind {layout.kind!r} needs it")

    for path in (layout.image, layout.wrist_image):
        if path is None:
            continue
        try:
            feature = _feature_at(steps_features, path)
        except KeyError:
            raise missing(path) from None
        if np.dtype(feature.np_dtype) != np.uint8 or len(feature.shape) != 3 or feature.shape[-1] != 3:
            raise DataError(f"dataset {name!r}: feature 'steps/{path}' is {feature.dtype}{list(feature.shape)}, "
                            f"expected an RGB image uint8[H, W, 3]")
    for part in layout.state + layout.action:
        try:
            feature = _feature_at(steps_features, part.path)
        except KeyError:
            if part.optional:
                continue
            raise missing(part.path) from None
        if np.dtype(feature.np_dtype) != np.dtype(part.dtype):
            raise DataError(f"dataset {name!r}: feature 'steps/{part.path}' has dtype "
                            f"{np.dtype(feature.np_dtype).name}, expected {np.dtype(part.dtype).name}")
        shape = tuple(feature.shape)
        if len(shape) != len(part.shape) or any(e is not ANY and e != s for e, s in zip(part.shape, shape)):
            raise DataError(f"dataset {name!r}: feature 'steps/{part.path}' has shape {list(shape)}, "
                            f"expected {['any' if e is ANY else e for e in part.shape]} per step")
    for path in (layout.instruction, layout.subtask):
        if path is not None:
            try:
                _feature_at(steps_features, path)
            except KeyError:
                raise missing(path) from None
    for key in layout.metadata:
        try:
            metadata_features[key]
        except (KeyError, TypeError):
            raise missing(key, "episode_metadata") from None


def _get(step: dict, path: str):
    node = step
    for key in path.split("/"):
        node = node[key]
    return node


def _vector(step: dict, parts: tuple[Part, ...]) -> np.ndarray:
    pieces = []
    for part in parts:
        try:
            value = _get(step, part.path)
        except KeyError:
            if part.optional:
                continue
            raise
        pieces.append(np.asarray(value, np.float32).reshape(-1))
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def step_record(layout: Layout, step: dict) -> dict:
    """The non-image part of one standardized step: state, action, instruction, subtask."""
    return {
        "state": _vector(step, layout.state),
        "action": _vector(step, layout.action),
        "instruction": _text(_get(step, layout.instruction)),
        "subtask": _text(_get(step, layout.subtask)) if layout.subtask else "",
    }


def image_decoders(layout: Layout) -> dict:
    """tfds decoders that keep the views as encoded bytes (decoded only for the sampled step)."""
    import tensorflow_datasets as tfds  # noqa: PLC0415

    decoders: dict = {}
    for path in (layout.image, layout.wrist_image):
        if path is None:
            continue
        node = decoders.setdefault("steps", {})
        *parents, leaf = path.split("/")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = tfds.decode.SkipDecoding()
    return decoders
