"""The one place where logical axis names meet the device mesh.

The mesh has three axes from config.mesh {data, fsdp, tensor}: the batch is split over
data x fsdp, parameters are split (ZeRO-3 style) over fsdp along their `embed` dimension and over
tensor along their `mlp`/`heads` dimension (Megatron style). The model (h2r/model/layers.py) only
names axes; LOGICAL_RULES below decides where each name goes.

Usage:
    mesh = make_mesh(config.mesh)
    with use_mesh(mesh):                      # mesh + rules active: params are created sharded
        model = VLA(config.model, rngs=nnx.Rngs(seed))
        shardings = state_shardings(nnx.state(model), mesh)
        batch = jax.device_put(batch, batch_shardings(batch, mesh))
        ... jax.jit(step, in_shardings=..., out_shardings=...) traced inside this context ...
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from h2r.config import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# Logical axis name -> mesh axis (or axes, or None = replicated). Every name the model uses
# must be listed: flax leaves an unlisted name as-is and it would not be a mesh axis.
LOGICAL_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    # Parameters.
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("qkv", None),
    ("vocab", None),      # word-level vocabularies are small and rarely divide the mesh
    ("patch", None),
    ("conv", None),       # the keypoint stem's small conv kernels
    ("state", None),
    ("action", None),
    ("seq", None),
    # Activations.
    ("act_batch", BATCH_AXES),
    ("act_seq", None),
    ("act_embed", None),
    ("act_mlp", "tensor"),
    ("act_heads", "tensor"),
    ("act_kv", None),
    ("act_vocab", None),
)


def make_mesh(mesh_config, devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A (data, fsdp, tensor) mesh over all devices (or `devices`). One entry of mesh_config may
    be -1: it takes the remaining devices. Axis types are Auto so sharding follows annotations."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = [int(mesh_config[name]) for name in MESH_AXES]
    if sizes.count(-1) > 1:
        raise ConfigError(f"config.mesh {dict(zip(MESH_AXES, sizes))}: at most one axis may be -1")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known <= 0 or len(devices) % known:
            raise ConfigError(f"config.mesh {dict(zip(MESH_AXES, sizes))} does not divide the "
                              f"{len(devices)} available devices")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices) or min(sizes) < 1:
        raise ConfigError(f"config.mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} "
                          f"devices, but {len(devices)} are available")
    return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * 3,
                         devices=devices)


@contextlib.contextmanager
def use_mesh(mesh: jax.sharding.Mesh) -> Iterator[jax.sharding.Mesh]:
    """Activates the mesh and the logical rules: model creation places params, and tracing a
    model applies the activation sharding constraints."""
    with jax.set_mesh(mesh), nnx.logical_axis_rules(LOGICAL_RULES):
        yield mesh


def logical_to_spec(names: Sequence[str | None]) -> PartitionSpec:
    """PartitionSpec for a tuple of logical axis names under LOGICAL_RULES."""
    rules = dict(LOGICAL_RULES)
    unknown = [n for n in names if n is not None and n not in rules]
    if unknown:
        raise KeyError(f"logical axis names {unknown} have no rule in h2r.train.sharding.LOGICAL_RULES")
    return PartitionSpec(*(rules[n] if n is not None else None for n in names))


def state_shardings(state, mesh: jax.sharding.Mesh):
    """NamedShardings (same tree as `state`, e.g. nnx.state(model) or an optimizer state) from
    each variable's logical names; variables without names are replicated."""
    with nnx.logical_axis_rules(LOGICAL_RULES):
        return nnx.get_named_sharding(state, mesh)


def check_divisible(state, mesh: jax.sharding.Mesh) -> None:
    """Raises ConfigError listing every variable whose sharded dimension the mesh does not divide
    (jax would fail later with an IndivisibleError that names no config key)."""
    problems = []
    for path, var in nnx.to_flat_state(state):
        names = var.get_metadata().get("out_sharding") if isinstance(var, nnx.Variable) else None
        if not names:
            continue
        for dim, (name, axes) in enumerate(zip(names, logical_to_spec(names))):
            axes = () if axes is None else (axes,) if isinstance(axes, str) else axes
            parts = math.prod(mesh.shape[a] for a in axes)
            if var.shape[dim] % parts:
                problems.append(f"{'/'.join(map(str, path))} {tuple(var.shape)}: dim {dim} ({name}) = "
                                f"{var.shape[dim]} is not divisible by mesh {'x'.join(axes)} = {parts}")
    if problems:
        raise ConfigError(f"the model does not fit config.mesh {dict(mesh.shape)} (change the model's "
                          "width/heads/mlp sizes or the mesh):\n  " + "\n  ".join(problems[:20]))


def abstract_state(init_fn, mesh: jax.sharding.Mesh):
    """(graphdef, state of ShapeDtypeStructs with their NamedShardings) of whatever init_fn builds
    (e.g. the model and optimizer), without allocating: the target for an orbax restore. Checks
    first that the mesh divides every sharded dimension (ConfigError otherwise)."""
    with nnx.use_eager_sharding(False):
        graphdef, state = nnx.split(nnx.eval_shape(init_fn))
    check_divisible(state, mesh)
    shardings = state_shardings(state, mesh)
    return graphdef, jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                  state, shardings)


def batch_sharding(mesh: jax.sharding.Mesh, ndim: int = 1) -> NamedSharding:
    """Leading (batch) dimension split over data x fsdp, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES, *([None] * (ndim - 1))))


def batch_shardings(batch, mesh: jax.sharding.Mesh):
    """NamedSharding for every array of a batch dict (leading dim = batch)."""
    return jax.tree.map(lambda x: batch_sharding(mesh, np.ndim(x)), batch)


def batch_divisor(mesh: jax.sharding.Mesh) -> int:
    """The global batch size must be a multiple of this (devices along data x fsdp)."""
    return mesh.shape["data"] * mesh.shape["fsdp"]


def check_batch_size(batch_size: int, mesh: jax.sharding.Mesh) -> None:
    """Raises ConfigError naming train.batch_size and config.mesh unless the batch splits evenly
    over the mesh's batch axes (jax would fail at the first step, naming neither)."""
    divisor = batch_divisor(mesh)
    if int(batch_size) % divisor:
        raise ConfigError(f"train.batch_size={batch_size} must be a multiple of {divisor}: the batch is "
                          f"split over config.mesh data x fsdp = {mesh.shape['data']} x {mesh.shape['fsdp']} "
                          f"of the {mesh.size} devices; change train.batch_size or config.mesh")
