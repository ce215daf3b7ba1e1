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


def _expected_position(logits: jax.Array) -> jax.Array:
    """logits [B, R, R, K] -> each channel's softmax-expected (row, col), [B, K, 2] in [-1, 1]."""
    B, R, _, K = logits.shape
    prob = jax.nn.softmax(logits.reshape(B, R * R, K), axis=1)
    return jnp.einsum("bnk,nc->bkc", prob, _pixel_grid(R))


def two_peaks(logits: jax.Array, radius: int = 2) -> jax.Array:
    """logits [B, R, R, K] -> per channel its two strongest peaks, f32 [B, K, 5]: (row, col) of
    the first, (row, col) of the second, and the second's share of the two peaks' mass.

    A peak is the softmax-expected position within the (2 radius + 1)^2 pixels around the
    channel's argmax; the second peak's argmax excludes the first's window. The argmax is not
    differentiated (the window's softmax is), so the global softmax keypoints keep teaching the stem
    where to fire; these read out two places where one global softmax gives their midpoint.
    """
    B, R, _, K = logits.shape
    flat = logits.reshape(B, R * R, K)
    pixel = jnp.asarray(np.indices((R, R)).reshape(2, -1).T)                                # (row, col) per pixel
    grid = _pixel_grid(R)
    masked, peaks, strengths = flat, [], []
    for _ in range(2):
        center = pixel[jnp.argmax(jax.lax.stop_gradient(masked), axis=1)]                  # [B, K, 2]
        near = jnp.max(jnp.abs(pixel[None, :, None] - center[:, None]), -1) <= radius      # [B, R*R, K]
        window = jnp.where(near, flat, -1e9)
        peaks.append(jnp.einsum("bnk,nc->bkc", jax.nn.softmax(window, axis=1), grid))
        strengths.append(jax.nn.logsumexp(window, axis=1))
        masked = jnp.where(near, -1e9, masked)
    share = jax.nn.sigmoid(strengths[1] - strengths[0])[..., None]
    return jnp.concatenate([peaks[0], peaks[1], share], -1)


def readout(logits: jax.Array, windows: int, peaks: bool = False) -> tuple[jax.Array, jax.Array]:
    """logits [B, R, R, K] -> (keypoints [B, K, 2], features [B, F]); see KeypointStem.readout."""
    points = _expected_position(logits)
    features = _window_features(logits, points, windows)
    if peaks:
        features = jnp.concatenate([features, two_peaks(logits).reshape(len(features), -1)], -1)
    return points, features


def _window_features(logits: jax.Array, points: jax.Array, windows: int) -> jax.Array:
    """The keypoints flattened and, with windows W > 1, each W x W window's (row, col, mass)."""
    B, R, _, K = logits.shape
    if windows == 1:
        return points.reshape(B, -1)
    W = windows
    if R % W:
        raise ValueError(f"model.keypoint_windows={W} does not divide the image size {R}")
    n = R // W
    # [B, W, W, n*n, K]: each window's pixels together.
    win = logits.reshape(B, W, n, W, n, K).transpose(0, 1, 3, 2, 4, 5).reshape(B, W, W, n * n, K)
    grid = _pixel_grid(R).reshape(W, n, W, n, 2).transpose(0, 2, 1, 3, 4).reshape(W, W, n * n, 2)
    where = jnp.einsum("bijnk,ijnc->bijkc", jax.nn.softmax(win, axis=3), grid)   # [B, W, W, K, 2]
    lse = jax.nn.logsumexp(win, axis=3)                                            # [B, W, W, K]
    mass = jnp.exp(lse - jax.nn.logsumexp(lse, axis=(1, 2), keepdims=True))       # the window's share
    windowed = jnp.concatenate([where, mass[..., None]], -1).reshape(B, -1)
    return jnp.concatenate([points.reshape(B, -1), windowed], -1)


def _pixel_grid(size: int) -> np.ndarray:
    """(row, col) of each pixel center in [-1, 1], f32 [size * size, 2] (a trace-time constant)."""
    u = (np.arange(size) + 0.5) / size * 2 - 1
    return np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)


class KeypointStem(nnx.Module):
    """images uint8 [B, R, R, 3] -> `num_keypoints` tokens [B, K, width], one (x, y) each."""

    def __init__(self, channels: int, num_keypoints: int, width: int, *, temperature: float = 10.0,
                 hidden_layers: int = 1, windows: int = 1, position_prior: bool = False,
                 peaks: bool = False, image_size: int = 32, rngs: nnx.Rngs, dtype=jnp.float32):
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
        self.windows = windows
        self.peaks = peaks
        # Further hidden convs (model.keypoint_layers > 1) widen the receptive field (5 px with one):
        # an egg with its rim is 3-4 px, a checker corner or a wood grain looks alike at 5 px.
        # Made last so a one-layer stem draws exactly the initialization it always drew.
        self.hidden = nnx.List([nnx.Dict(zip(("kernel", "bias"), conv_params(rngs, channels, channels)))
                                for _ in range(hidden_layers - 1)])
        # Optional learned position prior: a logit per view, pixel and channel added before the
        # softmax (zero at init, so the stem starts as without it; it draws no randomness).
        # Why: the expert takes the nearest of two alike objects first, and a local conv fires on
        # both alike, so a whole-image softmax lands between them (BUILD_NOTES, n4). A logit that
        # rises toward where the arm starts lets a channel's softmax pick the nearer one. Measured:
        # tidy 0.383 against 0.410 (BUILD_NOTES, "Learning", q2): off by default.
        self.position_bias = (nnx.Param(jnp.zeros((2, image_size, image_size, num_keypoints)),
                                        out_sharding=(None, None, None, "conv"))
                              if position_prior else None)

    def hidden_features(self, images: jax.Array) -> jax.Array:
        """The last hidden conv's full-resolution features, f32 [B, R, R, channels]."""
        x = images.astype(jnp.float32) / 127.5 - 1.0
        h = jax.nn.relu(conv2d(x, self.kernel1[...], self.bias1[...]))
        for layer in self.hidden:
            h = jax.nn.relu(conv2d(h, layer["kernel"][...], layer["bias"][...]))
        return h

    def _logits(self, images: jax.Array, view: int = 0) -> jax.Array:
        """Per-pixel keypoint logits, f32 [B, R, R, K] (temperature applied); `view` 0 head, 1 wrist
        picks the position prior."""
        return self._logits_of(self.hidden_features(images), view)

    def _logits_of(self, hidden: jax.Array, view: int) -> jax.Array:
        logits = conv2d(hidden, self.kernel2[...], None) * jnp.exp(self.log_temperature[...])
        if self.position_bias is not None:
            logits = logits + self.position_bias[...][view]
        return logits

    def keypoints(self, images: jax.Array, view: int = 0) -> jax.Array:
        """Expected (row, col) of each channel's softmax, f32 [B, K, 2] in [-1, 1]."""
        return _expected_position(self._logits(images, view))

    def readout_with_features(self, images: jax.Array, view: int = 0):
        """(keypoints, features, hidden): `readout` and the `hidden_features` it was computed from
        (the stem runs once: the model's patch tokens may read them, model.stem_patch_features)."""
        hidden = self.hidden_features(images)
        return (*readout(self._logits_of(hidden, view), self.windows, self.peaks), hidden)

    def readout(self, images: jax.Array, view: int = 0) -> tuple[jax.Array, jax.Array]:
        """(keypoints [B, K, 2], features [B, F]): the features are the keypoints flattened and, with
        `windows` W > 1, each channel's softmax taken again within each of W x W image windows:
        its expected position there and the share of the channel's mass the window holds
        (F = 2K + 3 W^2 K).

        Why: one softmax over the whole image puts a channel that fires on two alike objects (two
        items to put away) at their midpoint. The tidy policy's first move pointed halfway between
        the two items (median fraction 0.5 of the angle between them; off by more than 25 degrees
        in half its own training layouts), while with one item left it was precise (BUILD_NOTES.md,
        "Learning", session 19). Per window the two objects get a position each. Measured: W = 2
        made tidy worse (0.289 against 0.410) and the heading still averaged the two items (n7), so
        the midpoint is not the softmax's; kept as an option for experiments, off by default.
        """
        return self.readout_with_features(images, view)[:2]

    def feature_dim(self) -> int:
        """F of `readout`'s features."""
        K = self.kernel2[...].shape[-1]
        return 2 * K + (3 * self.windows ** 2 * K if self.windows > 1 else 0) + (5 * K if self.peaks else 0)

    def tokens(self, keypoints: jax.Array) -> jax.Array:
        """[B, K, 2] keypoints -> [B, K, width] tokens."""
        return self.proj(keypoints) + self.channel_embed[...].astype(self.dtype)

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.tokens(self.keypoints(images))
