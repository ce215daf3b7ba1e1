"""A small conv stem with spatial-softmax keypoints: where things are, as coordinates.

Why: at CPU scale the objects of the world are a few pixels wide, a fraction of one ViT patch.
A linear patch embedding learns to localize them only after thousands of steps (the policy then
ignores the image and imitates the average motion). Two 3x3 convolutions at full resolution
followed by a spatial softmax per channel (Levine et al. 2016, "End-to-end training of deep
visuomotor policies"; robomimic and diffusion policy use the same head) turn "a white blob here"
into an (x, y) pair the action expert can use at once. Each view gets K extra prefix tokens,
one per keypoint; the patch tokens stay (they carry colour and context).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from h2r.model.conv_stem import conv2d, conv_params
from h2r.model.layers import Dense, param


def _pixel_grid(size: int) -> np.ndarray:
    """(row, col) of each pixel center in [-1, 1], f32 [size * size, 2] (a trace-time constant)."""
    u = (np.arange(size) + 0.5) / size * 2 - 1
    return np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)


class KeypointStem(nnx.Module):
    """images uint8 [B, R, R, 3] -> `num_keypoints` tokens [B, K, width], one (x, y) each."""

    def __init__(self, channels: int, num_keypoints: int, width: int, *, temperature: float = 10.0,
                 hidden_layers: int = 1, rngs: nnx.Rngs, dtype=jnp.float32):
        if hidden_layers < 1:
            raise ValueError(f"model.keypoint_layers={hidden_layers}: expected >= 1")
        self.kernel1, self.bias1 = conv_params(rngs, 3, channels)
        # No bias on the last conv: a softmax over pixels ignores a per-channel constant, so its
        # gradient would be rounding noise (and differ between device layouts). The bias
        # conv_params makes is dropped rather than never made: making it draws from `rngs`, and
        # keeping that draw keeps every later initialization (and the measured figures) as they were.
        self.kernel2, _ = conv_params(rngs, channels, num_keypoints)
        # The softmax's sharpness is learned (per channel), from `temperature` at init.
        self.log_temperature = param(rngs, nnx.initializers.constant(np.log(temperature)), (num_keypoints,), ("conv",))
        # Token k = W (x_k, y_k) + e_k: a channel embedding lets attention pick a keypoint by
        # what it tracks (the subtask names one object; its channel can be selected).
        self.proj = Dense((2,), (width,), ("state", "embed"), rngs=rngs, dtype=dtype)
        self.channel_embed = param(rngs, nnx.initializers.normal(0.02), (num_keypoints, width), ("seq", "embed"))
        self.dtype = dtype
        # Further hidden convs (model.keypoint_layers > 1) widen the receptive field (5 px with one):
        # an egg with its rim is 3-4 px, a checker corner or a wood grain looks alike at 5 px.
        # Made last so a one-layer stem draws exactly the initialization it always drew.
        self.hidden = nnx.List([nnx.Dict(zip(("kernel", "bias"), conv_params(rngs, channels, channels)))
                                for _ in range(hidden_layers - 1)])

    def keypoints(self, images: jax.Array) -> jax.Array:
        """Expected (row, col) of each channel's softmax, f32 [B, K, 2] in [-1, 1]."""
        x = images.astype(jnp.float32) / 127.5 - 1.0
        h = jax.nn.relu(conv2d(x, self.kernel1[...], self.bias1[...]))
        for layer in self.hidden:
            h = jax.nn.relu(conv2d(h, layer["kernel"][...], layer["bias"][...]))
        h = conv2d(h, self.kernel2[...], None)
        B, R, _, K = h.shape
        logits = h.reshape(B, R * R, K) * jnp.exp(self.log_temperature[...])
        prob = jax.nn.softmax(logits, axis=1)
        return jnp.einsum("bnk,nc->bkc", prob, _pixel_grid(R))

    def tokens(self, keypoints: jax.Array) -> jax.Array:
        """[B, K, 2] keypoints -> [B, K, width] tokens."""
        return self.proj(keypoints) + self.channel_embed[...].astype(self.dtype)

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.tokens(self.keypoints(images))
