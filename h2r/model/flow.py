"""Flow matching for action chunks, in the pi0 convention.

x_t = t * noise + (1 - t) * actions, t in (0, 1]; the network predicts the velocity
u = noise - actions; sampling integrates dx/dt = v from t = 1 (pure noise) to t = 0 with
Euler steps. Time is drawn from Beta(1.5, 1) shifted away from 0, which puts more training
signal on the noisy end as pi0 does.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def sample_time(rng: jax.Array, batch_size: int) -> jax.Array:
    return jax.random.beta(rng, 1.5, 1.0, (batch_size,)) * 0.999 + 0.001


def noisy_actions(actions: jax.Array, noise: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (x_t, velocity target) for actions/noise [B, H, A] and t [B]."""
    t = t[:, None, None]
    return t * noise + (1.0 - t) * actions, noise - actions


def masked_weighted_mse(pred: jax.Array, target: jax.Array, mask: jax.Array,
                        weight: jax.Array) -> jax.Array:
    """Mean squared error over the (sample, step, dim) elements where mask is set, each sample's
    elements weighted by weight[b]. Masked elements contribute nothing, to the sum or the count."""
    w = mask.astype(jnp.float32) * weight.astype(jnp.float32)[:, None, None]
    sq = jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32))
    total = jnp.sum(w)
    return jnp.where(total > 0, jnp.sum(w * sq) / jnp.maximum(total, 1e-9), 0.0)


def integrate(velocity_fn: Callable[[jax.Array, jax.Array], jax.Array], noise: jax.Array,
              num_steps: int) -> jax.Array:
    """Euler integration of dx/dt = velocity_fn(x, t) from t=1 to t=0 in num_steps steps.

    velocity_fn takes x [B, H, A] and t [B]."""
    dt = -1.0 / num_steps

    def step(i, x):
        t = jnp.full((x.shape[0],), 1.0 + i * dt, jnp.float32)
        return x + dt * velocity_fn(x, t).astype(jnp.float32)

    return jax.lax.fori_loop(0, num_steps, step, noise.astype(jnp.float32))


def time_embedding(t: jax.Array, width: int, min_period: float = 4e-3, max_period: float = 4.0) -> jax.Array:
    """Sine-cosine embedding of t [B] -> [B, width] (pi0's periods, for t in [0, 1])."""
    fraction = jnp.linspace(0.0, 1.0, width // 2)
    period = min_period * (max_period / min_period) ** fraction
    angle = t[:, None].astype(jnp.float32) * (2 * jnp.pi / period)[None, :]
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)
