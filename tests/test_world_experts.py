"""Scripted experts: every robot embodiment succeeds on >= 95% of >= 100 episodes of every task
family (vectorized, no drawing), in the tiny world the tiny data config uses (32 px, 48 steps)."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from h2r.world import catalogue as cat
from h2r.world import env, experts
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


def _tidy_state():
    spec = jax.tree.map(lambda a: a[0], make_specs("white_lab", "tidy", "jaw_arm", seed=[3], variant=[0]))
    return env.reset(spec, TINY)


def test_nearest_move_follows_the_object_nearest_the_gripper_now():
    from h2r.world import tasks

    s = _tidy_state()
    first, second = (np.asarray(s.obj_pos[int(s.move_obj[k])]) for k in (0, 1))
    assert int(tasks.expert_move(s)) == int(tasks.expert_move(s, nearest=True)) == 0   # at reset: slot order
    beside_second = s._replace(ee=jnp.asarray(second + 0.02), ee_prev=jnp.asarray(second + 0.02))
    assert int(tasks.expert_move(beside_second)) == 0                 # slot order: still the first
    assert int(tasks.expert_move(beside_second, nearest=True)) == 1   # nearest now: the second
    goal = np.asarray(experts.plan(beside_second, True)[0])
    np.testing.assert_allclose(goal, second, atol=1e-6)
    # Holding the first object keeps its move, wherever the gripper is.
    holding = beside_second._replace(held=s.move_obj[0])
    assert int(tasks.expert_move(holding, nearest=True)) == 0
    # The second object, taken first, goes where the first placed object goes (slot 0 of the bin),
    # as in every demonstration; with slot order it would go to slot 1.
    carrying_second = beside_second._replace(held=s.move_obj[1], grip=jnp.float32(1.0))
    assert int(tasks.placement_slot(carrying_second, 1)) == 0
    targets = np.asarray(tasks.move_target(s))
    assert not np.allclose(targets[0], targets[1])
    np.testing.assert_allclose(experts.plan(carrying_second, True)[0], targets[0] - np.asarray(s.held_offset), atol=1e-6)
    assert tasks.subtask_of_move(jax.device_get(s), 1, 0) == tasks.subtasks_from_state(jax.device_get(s))[2]


def test_nearest_move_keeps_slot_order_where_a_move_pushes_or_stacks():
    from h2r.world import tasks

    s = _tidy_state()
    second = s.obj_pos[int(s.move_obj[1])] + 0.02
    beside_second = s._replace(ee=second, ee_prev=second)
    assert int(tasks.expert_move(beside_second, nearest=True)) == 1
    for changed in (beside_second._replace(move_push=s.move_push.at[1].set(True)),
                    beside_second._replace(move_anchor=s.move_anchor.at[0].set(int(s.move_obj[1])))):
        assert int(tasks.expert_move(changed, nearest=True)) == int(tasks.expert_move(changed)) == 0
