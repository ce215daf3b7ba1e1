"""Scripted experts: every robot embodiment succeeds on >= 95% of >= 100 episodes of every task
family (vectorized, no drawing), in the tiny world the tiny data config uses (32 px, 48 steps)."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from h2r.world import catalogue as cat
from h2r.world import env
from h2r.world.config import TINY, make_specs

EPISODES = 104


@functools.partial(jax.jit, static_argnums=1)
def _successes(specs, cfg):
    def one(spec):
        key = jax.random.fold_in(jax.random.PRNGKey(1), spec.seed)

        def body(s, t):
            s = env.step(s, env.expert_action(s, jax.random.fold_in(key, t), cfg), cfg)
            return s, env.success(s)
        _, succeeded = jax.lax.scan(body, env.reset(spec, cfg), jnp.arange(cfg.horizon))
        return succeeded.any()
    return jax.vmap(one)(specs)


@pytest.mark.parametrize("embodiment", [e.name for e in cat.EMBODIMENTS])
def test_expert_success_rate_per_task_family(embodiment):
    families = [t.name for t in cat.TASK_FAMILIES]
    rows = [(f, i) for f in families for i in range(EPISODES)]
    specs = make_specs([i % 24 for _, i in rows], [f for f, _ in rows], embodiment,
                       seed=[10_000 + k for k in range(len(rows))],
                       variant=[i % 2 if f == "bussing" else 0 for f, i in rows])
    ok = np.asarray(_successes(specs, TINY)).reshape(len(families), EPISODES)
    rates = dict(zip(families, ok.mean(1).round(3)))
    bar = 0.95 if not cat.embodiment(embodiment).is_human else 0.9
    assert min(rates.values()) >= bar, rates


def test_experts_succeed_from_starts_anywhere_on_the_table():
    # Data collection may start robots anywhere (EnvConfig.start_anywhere, the reset-spread recipe):
    # the experts must recover from every such start, and the starts must really cover the table.
    cfg = dataclasses.replace(TINY, start_anywhere=1.0)
    families = [t.name for t in cat.TASK_FAMILIES]
    for embodiment in cat.ROBOTS:
        rows = [(f, i) for f in families for i in range(24)]
        specs = make_specs([i % 24 for _, i in rows], [f for f, _ in rows], embodiment,
                           seed=[20_000 + k for k in range(len(rows))],
                           variant=[i % 2 if f == "bussing" else 0 for f, i in rows])
        assert np.asarray(_successes(specs, cfg)).mean() >= 0.95, embodiment
        starts = np.asarray(jax.vmap(env.reset, in_axes=(0, None))(specs, cfg).ee)
        near_base = np.asarray(jax.vmap(env.reset, in_axes=(0, None))(specs, TINY).ee)
        assert np.ptp(starts, axis=0).min() > 0.8 and np.ptp(near_base, axis=0).max() < 0.1, embodiment
