"""Transformer building blocks whose every parameter and activation carries logical axis names.

Parameters are created with `out_sharding=<logical names>` metadata; activations go through
`constrain(x, names)`. Which mesh axis a logical name lands on is decided in ONE place,
h2r/train/sharding.py, which activates a mesh plus its rules (`sharding.use_mesh`). Without an
active mesh (plain one-device use) the names are kept as metadata and `constrain` is a no-op.

Parameter names: embed (model width), mlp, heads, kv (head dim), vocab, and unsharded helpers
(patch, state, action, seq, qkv). Activation names carry an `act_` prefix (act_batch, act_seq,
act_embed, act_mlp, act_heads, act_kv, act_vocab) because a parameter's `embed` is sharded on
fsdp while the batch of an activation already is.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from flax.core import spmd as flax_spmd

Names = Sequence[str | None]

# Logical names of the common activation layouts.
BTD = ("act_batch", "act_seq", "act_embed")
BTM = ("act_batch", "act_seq", "act_mlp")
BTHK = ("act_batch", "act_seq", "act_heads", "act_kv")


def sharding_active() -> bool:
    """True under h2r.train.sharding.use_mesh: a mesh and logical-axis rules are both set."""
    return bool(flax_spmd.get_logical_axis_rules()) and not jax.sharding.get_abstract_mesh().empty


def constrain(x: jax.Array, names: Names) -> jax.Array:
    """Sharding constraint by logical names; a no-op unless a mesh and logical rules are active."""
    if not sharding_active():
        return x
    return jax.lax.with_sharding_constraint(x, flax_spmd.get_pspec(tuple(names)))


def param(rngs: nnx.Rngs, init, shape: Sequence[int], names: Names) -> nnx.Param:
    """A float32 parameter annotated with logical axis names (placed on the mesh if one is active)."""
    if len(shape) != len(names):
        raise ValueError(f"parameter shape {tuple(shape)} and logical names {tuple(names)} differ in rank")
    return nnx.Param(init(rngs.params(), tuple(shape), jnp.float32), out_sharding=tuple(names))


class Dense(nnx.Module):
    """y = x . W + b contracting the last len(in_shape) dims of x; W has shape in_shape + out_shape."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], names: Names, *,
                 rngs: nnx.Rngs, dtype=jnp.float32, use_bias: bool = True, init_scale: float = 1.0):
        in_shape, out_shape = tuple(in_shape), tuple(out_shape)
        n_in = len(in_shape)
        init = nnx.initializers.variance_scaling(
            init_scale, "fan_in", "truncated_normal",
            in_axis=tuple(range(n_in)), out_axis=tuple(range(n_in, n_in + len(out_shape))))
        self.kernel = param(rngs, init, in_shape + out_shape, names)
        self.bias = (param(rngs, nnx.initializers.zeros, out_shape, tuple(names)[n_in:])
                     if use_bias else None)
        self.n_in = n_in
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jnp.tensordot(x.astype(self.dtype), self.kernel[...].astype(self.dtype), axes=self.n_in)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return y


class RMSNorm(nnx.Module):
    """RMS normalization computed in float32 (as Gemma/pi0), output in the compute dtype."""

    def __init__(self, width: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.scale = param(rngs, nnx.initializers.zeros, (width,), ("embed",))
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + 1e-6)
        return (x32 * (1.0 + self.scale[...])).astype(self.dtype)


class MLP(nnx.Module):
    def __init__(self, width: int, hidden: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.up = Dense((width,), (hidden,), ("embed", "mlp"), rngs=rngs, dtype=dtype)
        self.down = Dense((hidden,), (width,), ("mlp", "embed"), rngs=rngs, dtype=dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = constrain(jax.nn.gelu(self.up(x)), BTM)
        return self.down(h)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Multi-head attention on [B, T, H, K] arrays; mask [B, T, S] bool (True = may attend)."""
    return jax.nn.dot_product_attention(q, k, v, mask=mask[:, None, :, :])


class SelfAttention(nnx.Module):
    """Self-attention with one fused q/k/v projection (one large matmul instead of three)."""

    def __init__(self, width: int, num_heads: int, head_dim: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.qkv = Dense((width,), (3, num_heads, head_dim), ("embed", "qkv", "heads", "kv"),
                         rngs=rngs, dtype=dtype, use_bias=False)
        self.out = Dense((num_heads, head_dim), (width,), ("heads", "kv", "embed"),
                         rngs=rngs, dtype=dtype, use_bias=False)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        qkv = self.qkv(x)
        q, k, v = (constrain(qkv[:, :, i], BTHK) for i in range(3))
        return self.out(constrain(attend(q, k, v, mask), BTHK))


class CrossAttention(nnx.Module):
    """Attention from x (width) to a source sequence (source_width), e.g. the action expert
    reading the prefix. `project_source` is separate so inference computes it once per chunk."""

    def __init__(self, width: int, source_width: int, num_heads: int, head_dim: int, *,
                 rngs: nnx.Rngs, dtype=jnp.float32):
        self.q = Dense((width,), (num_heads, head_dim), ("embed", "heads", "kv"),
                       rngs=rngs, dtype=dtype, use_bias=False)
        self.kv = Dense((source_width,), (2, num_heads, head_dim), ("embed", "qkv", "heads", "kv"),
                        rngs=rngs, dtype=dtype, use_bias=False)
        self.out = Dense((num_heads, head_dim), (width,), ("heads", "kv", "embed"),
                         rngs=rngs, dtype=dtype, use_bias=False)

    def project_source(self, source: jax.Array) -> tuple[jax.Array, jax.Array]:
        kv = self.kv(source)
        return constrain(kv[:, :, 0], BTHK), constrain(kv[:, :, 1], BTHK)

    def __call__(self, x: jax.Array, source_kv: tuple[jax.Array, jax.Array], mask: jax.Array) -> jax.Array:
        q = constrain(self.q(x), BTHK)
        k, v = source_kv
        return self.out(constrain(attend(q, k, v, mask), BTHK))


class Block(nnx.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP."""

    def __init__(self, width: int, num_heads: int, head_dim: int, mlp_dim: int, *,
                 source_width: int | None = None, rngs: nnx.Rngs, dtype=jnp.float32):
        self.attn_norm = RMSNorm(width, rngs=rngs, dtype=dtype)
        self.attn = SelfAttention(width, num_heads, head_dim, rngs=rngs, dtype=dtype)
        if source_width is not None:
            self.cross_norm = RMSNorm(width, rngs=rngs, dtype=dtype)
            self.cross = CrossAttention(width, source_width, num_heads, head_dim, rngs=rngs, dtype=dtype)
        else:
            self.cross_norm = self.cross = None
        self.mlp_norm = RMSNorm(width, rngs=rngs, dtype=dtype)
        self.mlp = MLP(width, mlp_dim, rngs=rngs, dtype=dtype)

    def __call__(self, x: jax.Array, mask: jax.Array, source_kv=None, source_mask=None) -> jax.Array:
        x = constrain(x + self.attn(self.attn_norm(x), mask), BTD)
        if self.cross is not None:
            x = constrain(x + self.cross(self.cross_norm(x), source_kv, source_mask), BTD)
        return constrain(x + self.mlp(self.mlp_norm(x)), BTD)
