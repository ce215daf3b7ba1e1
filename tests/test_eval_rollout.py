"""Closed-loop rollouts in the world: the scripted expert succeeds, a random policy does not."""
import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest


from h2r.eval import rollout, success  # noqa: E402
from h2r.world.config import ACTION_PAD, TINY  # noqa: E402

# Short horizons keep the test fast; the expert finishes the in-distribution tasks well within them.
ENV = dataclasses.replace(TINY, horizon=48)
N = 32  # episodes per call; tests share batch shapes so each rollout program compiles once


@pytest.fixture(scope="module")
def expert_run():
    es = success.parse_setting("sort_eggs:target-robot")  # trident_arm, eggs_in_carton: trained combos
    return success.evaluate(success.expert_controller(ENV), None, es, N, env_config=ENV, seed=0,
                            execute_steps=1, record=2)


def test_scripted_expert_reaches_its_known_success(expert_run):
    result, outcome = expert_run
    assert result["success_rate"] >= 0.9, result
    assert result["ci95"][0] <= result["success_rate"] <= result["ci95"][1]
    assert len(result["successes"]) == result["episodes"] == N
    # Every subtask phase completed about as often as the task; successful episodes end early.
    assert min(result["phase_completion"]) >= result["success_rate"] - 1e-9
    assert np.all(outcome.length[outcome.success] < ENV.horizon)
    assert np.all(outcome.num_phases >= 2)


def test_random_policy_scores_near_zero():
    es = success.parse_setting("sort_eggs:target-robot")
    result, outcome = _random(es, seed=0)
    assert result["success_rate"] <= 0.05, result
    assert result["phase_completion"][-1] <= 0.05
    assert np.all(outcome.length == ENV.horizon)  # nobody finishes: every episode runs to the limit


def _random(es, seed):
    return success.evaluate(success.random_controller(ACTION_PAD), None, es, N, env_config=ENV,
                            seed=seed, execute_steps=4, record=0)


def test_same_seed_same_episodes_other_seed_differs():
    es = success.parse_setting("tidy_new_scenes")
    (a, _), (b, _), (c, _) = _random(es, 3), _random(es, 3), _random(es, 4)
    strip = lambda r: {k: v for k, v in r.items() if k not in ("wall_s", "episodes_per_s")}  # noqa: E731
    assert strip(a) == strip(b)
    assert a["instructions"] != c["instructions"] or a["max_phase"] != c["max_phase"]


def test_batched_evaluation_keeps_every_episode(expert_run):
    """Splitting episodes into fixed-size batches (last one padded) keeps every episode's spec."""
    es = success.parse_setting("sort_eggs:target-robot")
    result, outcome = success.evaluate(success.expert_controller(ENV), None, es, N + 8, env_config=ENV,
                                       seed=0, execute_steps=1, batch_size=N, record=2)
    assert result["episodes"] == N + 8 and outcome.success.shape == (N + 8,)
    assert len(result["lengths"]) == N + 8 and result["success_rate"] >= 0.85
    # The first N episodes are the same episodes as in a single call of N (same specs).
    assert result["instructions"] == expert_run[0]["instructions"]


def test_rollout_strips_are_written(expert_run, tmp_path):
    _, outcome = expert_run
    paths = rollout.save_strips(outcome.frames, outcome.length, str(tmp_path))
    assert len(paths) == 4
    for p in paths:
        with open(p, "rb") as f:
            head = f.read(8)
        assert head.startswith(b"\x89PNG") or head.startswith(b"GIF8")
    assert outcome.frames.dtype == np.uint8 and outcome.frames.shape[1] == ENV.horizon + 1


def test_unknown_setting_is_a_clear_error():
    from h2r.errors import DataError
    with pytest.raises(DataError, match="unknown eval setting 'sort_egg'"):
        success.parse_setting("sort_egg")
    with pytest.raises(DataError, match="target-robot"):
        success.parse_setting("sort_eggs:pretrain")


@pytest.mark.parametrize("m", [0.0, 0.5, -40.0])
def test_temporal_ensembling_executes_the_weighted_mean_of_every_prediction_for_the_step(m):
    """Chunk s predicts 10 s + j for step s + j: the action executed at step t must be the mean of
    the predictions made for t at steps t-H+1..t, weighted exp(m * age); -40 is plain replanning."""
    H, B = 3, 2
    c = dict(pending=jnp.zeros((B, H, 1)), pending_weight=jnp.zeros(H))
    for t in range(6):
        chunk = jnp.broadcast_to((10.0 * t + jnp.arange(H, dtype=jnp.float32))[None, :, None], (B, H, 1))
        now, c = rollout._ensembled(chunk, c, m)
        made = np.arange(max(0, t - H + 1), t + 1)            # the steps whose chunk predicts step t
        age = t - made
        expected = np.sum(np.exp(m * age) * (10.0 * made + age)) / np.sum(np.exp(m * age))
        assert now.shape == (B, 1, 1)
        np.testing.assert_allclose(np.asarray(now)[:, 0, 0], expected, rtol=1e-5)
    if m == -40.0:
        np.testing.assert_allclose(np.asarray(now)[:, 0, 0], 50.0, rtol=1e-5)


def test_temporal_ensembling_needs_one_executed_step_per_plan():
    env = rollout.world_env(ENV)
    with pytest.raises(ValueError, match="execute_steps must be 1"):
        rollout.make_rollout(env, lambda *a: None, max_steps=4, execute_steps=2, ensemble=0.0)


@pytest.mark.parametrize("episode_noise", [False, True])
def test_episode_noise_reuses_one_key_for_every_replan(episode_noise):
    """With episode_noise every replan of a rollout sees the key it started with; without, each
    replan gets a fresh one."""
    import jax  # noqa: PLC0415

    seen = []

    def control(params, obs, env_state, rng):
        jax.debug.callback(lambda k: seen.append(np.asarray(k)), jax.random.key_data(rng))
        return jnp.zeros((obs["image"].shape[0], 2, ACTION_PAD))

    es = success.parse_setting("sort_eggs:target-robot")
    specs, _ = success.episode_specs(es, 2, 0, frozenset())
    env = rollout.world_env(ENV)
    run = rollout.make_rollout(env, control, max_steps=5, execute_steps=1, record=0, episode_noise=episode_noise)
    jax.block_until_ready(run(None, rollout.reset_states(env, specs), {}, jax.random.key(7)))
    assert len(seen) == 5
    distinct = {k.tobytes() for k in seen}
    assert len(distinct) == (1 if episode_noise else 5)
