"""The transforms between a recorded step and the model's sample, shared by training and serving.

openpi's idea: the training pipeline (h2r/data/pipeline.py) and the served policy
(`h2r.load_policy`, h2r/policy.py) compose the *same* functions in the same order, so what the
model sees at inference is bitwise what it saw in training:

    raw step / raw observation
      -> resize(views, spec.image_size)            uint8, PIL's bilinear in exact integer arithmetic
      -> views(...)                                image, wrist_image (zeros when absent), image_mask
      -> state(normalize -> pad -> mask)           float32 [S] + bool [S]
      -> instruction ids (the run's Tokenizer)     int32 [Li]
    model actions (normalized, padded) -> raw_actions(...): slice to the embodiment's dims -> unnormalize

Every function works on numpy arrays (the pipeline, on the host) and on jax arrays (the policy,
inside jit): the array module follows the inputs. The normalization statistics and the tokenizer
are loaded once when training starts and saved with the run (W/norm_stats.json, W/tokenizer.json,
the checkpoint's `extra`); the policy reads them from there.

`SampleSpec` is the one description of the sample layout (BUILD_NOTES.md, "The sample layout"):
the pipeline allocates its batches from it, the synthetic data and the model's example batch
follow it, and the model checks its inputs against it.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from h2r.errors import DataError

SUBGOALS = 4      # hindsight subgoals per sample: the ends of the current and the next 3 subtasks
NORM_MODES = ("quantile", "mean_std")
_EPS = 1e-6

# The model's observation (a sample without its training targets).
OBS_KEYS = ("image", "wrist_image", "image_mask", "state", "state_mask", "instruction")


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    """Shapes and dtypes of one sample (without the batch axis)."""
    image_size: int
    max_state_dim: int
    max_action_dim: int
    action_horizon: int
    max_instruction_len: int
    max_subtask_len: int
    subgoals: int = SUBGOALS

    @classmethod
    def from_config(cls, config, image_size: int | None = None) -> "SampleSpec":
        """From a model config (config.model) or a data config (config.data; then `image_size`)."""
        size = image_size if image_size is not None else config.get("image_size", 0)
        return cls(int(size), int(config.max_state_dim), int(config.max_action_dim), int(config.action_horizon),
                   int(config.max_instruction_len), int(config.max_subtask_len))

    def shapes(self) -> dict[str, tuple[tuple[int, ...], type]]:
        R, S, A, H = self.image_size, self.max_state_dim, self.max_action_dim, self.action_horizon
        return {
            "image": ((R, R, 3), np.uint8), "wrist_image": ((R, R, 3), np.uint8),
            "image_mask": ((2,), np.bool_), "state": ((S,), np.float32), "state_mask": ((S,), np.bool_),
            "subgoal": ((self.subgoals, S), np.float32),
            "instruction": ((self.max_instruction_len,), np.int32), "subtask": ((self.max_subtask_len,), np.int32),
            "actions": ((H, A), np.float32), "action_valid": ((H,), np.bool_),
            "action_dim_mask": ((A,), np.bool_), "embodiment_id": ((), np.int32),
            "action_loss_weight": ((), np.float32), "subtask_loss_weight": ((), np.float32),
        }

    def zeros(self, batch_size: int) -> dict[str, np.ndarray]:
        return {k: np.zeros((batch_size,) + shape, dtype) for k, (shape, dtype) in self.shapes().items()}

    def check(self, batch, keys, what: str = "observation") -> None:
        """A DataError naming the first key of `keys` missing from `batch` or of another shape."""
        shapes = self.shapes()
        for key in keys:
            if key not in batch:
                raise DataError(f"{what} batch has no {key!r} (keys: {sorted(batch)})")
            shape = shapes[key][0]
            if tuple(batch[key].shape[1:]) != shape:
                raise DataError(f"{what} {key!r} has shape {tuple(batch[key].shape)}, expected [B, "
                                f"{', '.join(map(str, shape))}] from the model config")


def _xp(*arrays):
    """numpy for numpy inputs, jax.numpy as soon as one input is a jax array (or a tracer)."""
    if all(isinstance(a, (np.ndarray, np.generic, int, float)) for a in arrays):
        return np
    import jax.numpy as jnp  # noqa: PLC0415
    return jnp


# ---------------------------------------------------------------------------- images
_PRECISION_BITS = 22   # PIL's fixed point for 8-bit images (32 - 8 - 2)


@functools.lru_cache(maxsize=64)
def _bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
    """int32 [out, in]: PIL's bilinear resampling coefficients (with its antialiasing support when
    shrinking), in its fixed point (Pillow src/libImaging/Resample.c, precompute_coeffs and
    normalize_coeffs_8bpc)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    weights = np.zeros((out_size, in_size), np.int32)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)          # C casts truncate toward zero
        xmax = min(int(center + support + 0.5), in_size)
        w = np.array([max(0.0, 1.0 - abs((x - center + 0.5) / filterscale)) for x in range(xmin, xmax)])
        total = w.sum()
        if total != 0.0:
            w = w / total
        fixed = np.where(w < 0, -0.5 + w * (1 << _PRECISION_BITS), 0.5 + w * (1 << _PRECISION_BITS))
        weights[xx, xmin:xmax] = np.trunc(fixed).astype(np.int32)
    return weights


def _resample(xp, images, axis: int, out_size: int):
    """One pass of PIL's separable resampling along `axis` (-3 rows, -2 columns) of uint8 images."""
    in_size = images.shape[axis]
    if in_size == out_size:
        return images
    weights = xp.asarray(_bilinear_weights(in_size, out_size))
    x = images.astype(xp.int32)
    if axis == -2:
        acc = xp.einsum("...hwc,ow->...hoc", x, weights)
    else:
        acc = xp.einsum("...hwc,oh->...owc", x, weights)
    acc = acc + (1 << (_PRECISION_BITS - 1))
    return xp.clip(acc >> _PRECISION_BITS, 0, 255).astype(xp.uint8)


def resize(images, size: int):
    """uint8 [..., H, W, 3] -> uint8 [..., size, size, 3], bilinear; unchanged if already that size.

    Bitwise PIL's `Image.resize((size, size), Image.BILINEAR)` (horizontal pass, then vertical,
    integer fixed point), in integer arithmetic so numpy (the training pipeline) and XLA (the
    policy, inside jit) give identical pixels.
    """
    if images.shape[-3] == size and images.shape[-2] == size:
        return images
    xp = _xp(images)
    return _resample(xp, _resample(xp, images, -2, size), -3, size)


def views(spec: SampleSpec, image, wrist_image=None, use_wrist: bool = True) -> dict:
    """Head view, wrist view (zeros when absent or not used) and image_mask, at the spec's size.
    `image` uint8 [B, H, W, 3] (any size)."""
    xp = _xp(image)
    batch, size = image.shape[0], spec.image_size
    has_wrist = wrist_image is not None and bool(use_wrist)
    wrist = resize(wrist_image, size) if has_wrist else xp.zeros((batch, size, size, 3), xp.uint8)
    return {"image": resize(image, size), "wrist_image": wrist,
            "image_mask": xp.broadcast_to(xp.asarray([True, has_wrist]), (batch, 2))}


# ---------------------------------------------------------------------------- vectors
def stats_arrays(stats: dict) -> dict:
    """{"mean","std","q01","q99"} of one key of a norm_stats.json as float32 arrays."""
    return {k: np.asarray(stats[k], np.float32) for k in ("mean", "std", "q01", "q99")}


def _check_mode(mode: str) -> None:
    if mode not in NORM_MODES:
        raise DataError(f"unknown normalization {mode!r}; expected one of {NORM_MODES}")


def _normalize_np(x, q01, q99, mean, std, mode):
    x = np.asarray(x, np.float32)
    if mode == "quantile":
        span = q99 - q01
        out = 2.0 * (x - q01) / np.maximum(span, _EPS) - 1.0
        return np.where(span > _EPS, np.clip(out, -1.0, 1.0), 0.0).astype(np.float32)
    return np.where(std > _EPS, (x - mean) / np.maximum(std, _EPS), 0.0).astype(np.float32)


def _unnormalize_np(x, q01, q99, mean, std, mode):
    x = np.asarray(x, np.float32)
    if mode == "quantile":
        span = q99 - q01
        return np.where(span > _EPS, (x + 1.0) / 2.0 * span + q01, q01).astype(np.float32)
    return np.where(std > _EPS, x * std + mean, mean).astype(np.float32)


def _on_host(fn, x, s: dict, mode: str):
    """fn (numpy, elementwise over the last axis) on x with stats s. For jax arrays and tracers
    it runs on the host through jax.pure_callback: XLA's float32 division is not correctly rounded
    on CPU and it fuses multiply-adds, so computing the formula in XLA would differ from the
    pipeline's numpy in the last bit; the callback makes the policy's numbers the pipeline's."""
    args = [s[k] for k in ("q01", "q99", "mean", "std")]
    if _xp(x, *args) is np:
        return fn(x, *args, mode)
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    def host(x, *stats):  # the callback gets jax arrays: numpy's arithmetic needs numpy arrays
        x = np.asarray(x)  # under vmap: stats [*batch, D] against x [*batch, ..., D]
        stats = [np.asarray(a).reshape(a.shape[:-1] + (1,) * (x.ndim - a.ndim) + a.shape[-1:]) for a in stats]
        return fn(x, *stats, mode)
    x = jnp.asarray(x, jnp.float32)
    return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, jnp.float32),
                             x, *[jnp.asarray(a, jnp.float32) for a in args], vmap_method="expand_dims")


def normalize(x, s: dict, mode: str):
    """Normalizes the last axis of x with float32 stats arrays `s` (one key of norm_stats):
    quantile: q01 -> -1, q99 -> +1, clipped to [-1, 1]; mean_std: (x - mean) / std.
    A dimension that never varies maps to 0."""
    _check_mode(mode)
    return _on_host(_normalize_np, x, s, mode)


def unnormalize(x, s: dict, mode: str):
    """The inverse of `normalize` (a constant dimension maps back to its constant)."""
    _check_mode(mode)
    return _on_host(_unnormalize_np, x, s, mode)


def pad(x, width: int, what: str = "state", where: str = "input"):
    """Zero-pads the last axis of x to `width` (float32)."""
    if x.shape[-1] > width:
        raise DataError(f"{where}: {what} dim {x.shape[-1]} exceeds config.data.max_{what}_dim={width}")
    xp = _xp(x)
    return xp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, width - x.shape[-1])]).astype(xp.float32)


def dim_mask(dim: int, width: int) -> np.ndarray:
    """bool [width]: True for the first `dim` entries (the real dims before padding)."""
    return np.arange(width) < dim


def state(spec: SampleSpec, raw, s: dict | None, mode: str, where: str = "input") -> dict:
    """Raw proprio f32 [..., state_dim] -> normalized, zero-padded `state` and its `state_mask`.
    `s` None (no statistics: no proprio, e.g. the human) gives zeros and an all-False mask."""
    state_dim = 0 if s is None else int(s["mean"].shape[0])
    width = spec.max_state_dim
    if state_dim:
        out = pad(normalize(raw[..., :state_dim], s, mode), width, "state", where)
    else:
        lead = raw.shape[:-1] if raw is not None else ()
        out = _xp(*(() if raw is None else (raw,))).zeros(lead + (width,), np.float32)
    mask = dim_mask(state_dim, width)
    return {"state": out, "state_mask": _xp(out).broadcast_to(mask, out.shape)}


def actions(spec: SampleSpec, raw, s: dict, mode: str, where: str = "input"):
    """Raw actions f32 [..., action_dim] -> normalized, zero-padded to max_action_dim."""
    return pad(normalize(raw, s, mode), spec.max_action_dim, "action", where)


def raw_actions(model_actions, s: dict, mode: str):
    """The model's normalized, padded actions [..., max_action_dim] -> the embodiment's raw units
    [..., action_dim] (the inverse of `actions`)."""
    return unnormalize(model_actions[..., :int(s["mean"].shape[0])], s, mode)


# ---------------------------------------------------------------------------- action frames
# An arm commanded with absolute targets (the next point to go to) is trained on its per-step
# displacement instead: target - the position its proprio reports (openpi's DeltaActions for
# absolute-joint arms). Its absolute actions spread over the whole reachable table while each step
# moves a few centimetres, so at unit scale after normalization a small error in the predicted
# target is a large error in the step; displacements are what the delta-action arms predict too.
# `relative` (a dataset's norm_stats["relative_action"], h2r.data.stats.relative_reference) is
# {"action_dims": [...], "state_dims": [...], "scale": s}: action dim action_dims[i] is relative
# to state dim state_dims[i] times s. Absent for every other dataset (nothing changes).

def relative_matrix(relative: dict | None, state_dim: int, action_dim: int) -> np.ndarray:
    """f32 [state_dim, action_dim]: raw state @ M is the reference each action dim is relative to
    (zeros for a dataset without `relative`)."""
    m = np.zeros((state_dim, action_dim), np.float32)
    if relative:
        for a, s in zip(relative["action_dims"], relative["state_dims"]):
            m[s, a] = relative["scale"]
    return m


def to_relative(raw_actions, raw_state, m):
    """Recorded actions [N, A] -> per-step displacements: action - state @ M (row by row)."""
    state = np.asarray(raw_state, np.float32)[..., :m.shape[0]]
    return (np.asarray(raw_actions, np.float32) - state @ m).astype(np.float32)


def from_relative(chunk, raw_state, m):
    """A predicted chunk of displacements [B, H, A] -> absolute targets from the current raw state
    [B, S]: step k's target is the reference now plus the displacements of steps 0..k (the arm
    reaches each target: the expert's steps are within its speed limit). Dims M does not touch are
    returned as they are."""
    xp = _xp(chunk, raw_state)
    moved = (xp.asarray(m).sum(0) != 0).astype(xp.float32)         # [A]: the relative dims
    state = xp.asarray(raw_state, xp.float32)[..., :m.shape[0]]      # a zero-padded state is fine
    reference = (state @ xp.asarray(m))[..., None, :]
    return chunk + moved * (reference + xp.cumsum(chunk, axis=-2) - chunk)


def observation(spec: SampleSpec, obs: dict, s: dict | None, mode: str, use_wrist: bool = True) -> dict:
    """A raw observation batch -> the model's observation (OBS_KEYS), the way the pipeline builds
    a training sample from a recorded step. `obs`: image uint8 [B, H, W, 3], wrist_image
    (optional), state f32 [B, state_dim] (raw units; ignored when `s` is None), instruction int32
    [B, max_instruction_len] (token ids of the run's tokenizer)."""
    out = views(spec, obs["image"], obs.get("wrist_image"), use_wrist)
    batch = obs["image"].shape[0]
    raw = obs.get("state") if s is not None else None
    if raw is None:
        raw = np.zeros((batch, 0), np.float32)
    out.update(state(spec, raw, s, mode))
    xp = _xp(out["image"])
    out["instruction"] = xp.asarray(obs["instruction"], xp.int32)
    return out

