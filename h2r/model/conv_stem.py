"""A convolutional patch embedding: image -> a grid of tokens through a few small convolutions.

Why: a ViT's linear patch embedding is data-hungry; at CPU scale an object is a fraction of one
patch and the linear embedding takes thousands of steps to localize it. A few convolutions
before the transformer ("Early convolutions help transformers see better", Xiao et al. 2021)
give every token local, nonlinear features (edges, blobs, colours) and where inside its patch
they lie. Total stride = config.patch_size, so the token grid is the same as the linear
embedding's: (image_size / patch_size)^2 tokens per view.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from h2r.model.layers import param


def conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, stride: int = 1) -> jax.Array:
    """3x3 'SAME' convolution on NHWC inputs (bias None: none)."""
    y = jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (stride, stride), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y if bias is None else y + bias.astype(x.dtype)


def conv_params(rngs: nnx.Rngs, c_in: int, c_out: int, gain: float = 2.0):
    init = nnx.initializers.variance_scaling(gain, "fan_in", "truncated_normal", in_axis=(0, 1, 2), out_axis=3)
    return (param(rngs, init, (3, 3, c_in, c_out), ("conv", "conv", "conv", "conv")),
            param(rngs, nnx.initializers.zeros, (c_out,), ("conv",)))


class ConvStem(nnx.Module):
    """uint8 images [B, R, R, 3] -> tokens [B, (R/P)^2, width]: one stride-1 conv, then log2(P)
    stride-2 convs (channels doubling from `channels`), the last one to `width` (no ReLU)."""

    def __init__(self, patch_size: int, channels: int, width: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"model.stem='conv' needs model.patch_size a power of two >= 2, got {patch_size}")
        downs = int(math.log2(patch_size))
        widths = [channels * 2 ** i for i in range(downs)] + [width]
        self.first = nnx.List(conv_params(rngs, 3, widths[0]))
        self.downs = nnx.List([nnx.List(conv_params(rngs, widths[i], widths[i + 1], 1.0 if i == downs - 1 else 2.0))
                               for i in range(downs)])
        self.dtype = dtype

    def __call__(self, images: jax.Array) -> jax.Array:
        x = images.astype(jnp.float32) / 127.5 - 1.0
        x = jax.nn.relu(conv2d(x, self.first[0][...], self.first[1][...]))
        for i, (kernel, bias) in enumerate(self.downs):
            x = conv2d(x, kernel[...], bias[...], stride=2)
            if i < len(self.downs) - 1:
                x = jax.nn.relu(x)
        B, n, _, D = x.shape
        return x.reshape(B, n * n, D).astype(self.dtype)
