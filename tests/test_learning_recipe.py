"""What the learning recipe relies on (BUILD_NOTES.md, "Learning: what mattered"): demonstrations
a policy can read (nearest object first, eggs of a pair look different), progress that does not
depend on the order, statistics that never see evaluation episodes, weight decay that leaves
positions alone, and the keypoint / conv stems."""
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from h2r.data import sources, stats
from h2r.model import VLA, model_config
from h2r.model.example_batch import example_batch
from h2r.train import trainer
from h2r.world import catalogue, dynamics, tasks
from h2r.world.config import TINY, make_specs
from h2r.world.state import reset

FAMILIES = ("eggs_in_carton", "sort_eggs_by_color", "bussing", "tidy")


_reset_batch = jax.jit(jax.vmap(lambda spec: reset(spec, TINY)))   # one compilation, not op by op


def _resets(family, n=24, embodiment="trident_arm"):
    return _reset_batch(make_specs("oak_kitchen", family, embodiment, list(range(100, 100 + n))))


def test_the_nearest_object_is_moved_first():
    for family in FAMILIES:
        s = _resets(family)
        gp = np.asarray(jax.vmap(dynamics.grasp_point)(s))
        for i in range(len(gp)):
            moved = np.flatnonzero(np.asarray(s.move_active[i]))
            objects = np.asarray(s.obj_pos[i])[np.asarray(s.move_obj[i])[moved]]
            dist = np.linalg.norm(objects - np.asarray(s.ee[i]), axis=-1)
            assert dist[0] == dist.min(), (family, i, dist)
            assert len(moved) >= 2, family   # the target tasks keep two or more objects


def test_the_eggs_of_a_pair_differ_in_colour():
    s = _resets("eggs_in_carton", n=32)
    colours = np.asarray(s.obj_color)[:, :2]
    assert np.all(colours[:, 0] != colours[:, 1])
    names = {catalogue.COLOR_NAMES[c] for c in colours.ravel()}
    assert names == {"white", "brown"}


def test_progress_counts_moves_done_in_any_order():
    s = jax.tree.map(lambda x: x[0], _resets("eggs_in_carton", n=1))
    assert int(tasks.phase(s)) == 0
    center, _ = tasks.move_region(s)
    # The second egg placed first: one move done, the expert's current move is still the first.
    placed = s._replace(obj_pos=s.obj_pos.at[s.move_obj[1]].set(center[1]))
    assert int(tasks.current_move(placed)) == 0
    assert int(tasks.phase(placed)) == 2
    # Holding the first egg after that: carrying phase of the second move.
    holding = placed._replace(held=s.move_obj[0])
    assert int(tasks.phase(holding)) == 3


def test_stats_leave_out_heldout_eval_episodes(micro_dataset):
    setting = catalogue.SETTINGS[0]
    dataset = sources.RLDSDataset(sources.find_version_dir(str(micro_dataset / f"h2r_{setting.target_embodiment}")),
                                  "train")
    index = dataset.index
    heldout = np.asarray(index.metadata["setting"]) == "heldout-eval"
    assert heldout.any(), "micro data has held-out evaluation episodes of the target robot"
    computed = stats.dataset_stats(dataset)
    keep = ~heldout[index.step_episode]
    assert computed["num_steps_used"] == int(keep.sum()) < index.num_steps
    np.testing.assert_allclose(computed["action"]["mean"], index.action[keep].mean(0), rtol=1e-6)


def test_weight_decay_spares_positions_and_embeddings():
    config = model_config("tiny")
    params = nnx.state(VLA(config, rngs=nnx.Rngs(0)), nnx.Param).to_pure_dict()
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    tx = trainer.make_optimizer(ml_collections.ConfigDict(dict(lr=1e-2, warmup_steps=0, steps=10,
                                                               weight_decay=0.5, grad_clip=1.0)))
    updates = jax.jit(lambda g, p: tx.update(g, tx.init(p), p)[0])(zero_grads, params)   # jitted: faster
    # With zero gradients only weight decay moves a parameter.
    assert float(jnp.abs(updates["image_pos"]).max()) == 0.0
    assert float(jnp.abs(updates["keypoint_stem"]["channel_embed"]).max()) == 0.0
    assert float(jnp.abs(updates["blocks"][0]["mlp"]["up"]["kernel"]).max()) > 0.0


def test_keypoint_and_conv_stems_train():
    for overrides in (dict(keypoints=8), dict(keypoints=4, stem="conv", patch_size=4)):
        config = model_config("tiny")
        config.update(depth=1, expert_depth=1, **overrides)
        model = VLA(config, rngs=nnx.Rngs(0))
        batch = {k: jnp.asarray(v) for k, v in example_batch(config, 4).items()}
        kp = model.keypoint_stem.keypoints(batch["image"])
        assert kp.shape == (4, config.keypoints, 2) and float(jnp.abs(kp).max()) <= 1.0
        # Jitted: op-by-op (eager) gradients of the whole VLA take about a minute on 2 cores.
        grads = nnx.jit(lambda m, b: nnx.grad(lambda m: m.compute_loss(b, jax.random.key(0))[0])(m))(model, batch)
        assert float(jnp.abs(grads.to_pure_dict()["keypoint_stem"]["kernel1"]).sum()) > 0.0
        actions = nnx.jit(lambda m, b: m.sample_actions(b, jax.random.key(1)))(model, batch)
        assert actions.shape == (4, config.action_horizon, config.max_action_dim)


def test_dart_records_the_intended_action_for_robots_only():
    from h2r.world import episodes
    specs = make_specs("oak_kitchen", "eggs_in_carton", ["trident_arm", "human"], [7, 7])
    plain_robot, plain_human = episodes.rollout_expert(specs, TINY, batch_size=2)
    env = dataclasses.replace(TINY, dart_noise=2.0)
    robot, human = episodes.rollout_expert(specs, env, batch_size=2)
    # The robot executed noisier commands but records noise-free ones, and still succeeds.
    assert not np.allclose(robot["action"], robot["command"][:, :robot["action"].shape[1]])
    n = min(len(robot["command"]), len(plain_robot["command"]))
    assert not np.allclose(robot["command"][:n], plain_robot["command"][:n])
    assert robot["success"]
    assert not np.any((robot["command"][:, 2] > 0) != (robot["action"][:, 2] > 0))   # the grip is the expert's
    # The human is untouched: same motion, and it records that motion (plus tracking noise).
    # (to float rounding: the two programs fuse differently)
    np.testing.assert_allclose(human["command"], plain_human["command"], atol=1e-6)
    np.testing.assert_allclose(human["action"], plain_human["action"], atol=1e-6)
    noise = np.abs(human["action"] - human["command"][:, :2])
    assert noise.max() <= env.tracking_noise + 1e-6
    assert env.for_evaluation().dart_noise == 0.0


def test_grip_fumbles_close_on_nothing_and_record_how_to_recover():
    from h2r.world import episodes
    specs = make_specs("oak_kitchen", "eggs_in_carton", "trident_arm", list(range(8)))
    env = dataclasses.replace(TINY, dart_grip=0.2)
    fumbles = 0
    for ep in episodes.rollout_expert(specs, env, batch_size=8):
        closed_command, closed_label = ep["command"][:, 2] > 0, ep["action"][:, 2] > 0   # trident: -1 open
        for t in np.flatnonzero(closed_command & ~closed_label):
            fumbles += 1
            assert ep["phase"][t] % 2 == 0                      # only while reaching
            assert ep["phase"][t + 1] == ep["phase"][t]         # closed on nothing: nothing grasped
            assert ep["state"][t + 1, -1] > 0.5 and not closed_label[t + 1]   # closed, told to open
        assert ep["success"]
    assert fumbles >= 8   # (DART's motion noise alone never changes the grip: the test above)
    assert env.for_evaluation().dart_grip == 0.0


def test_subgoal_steps_point_just_past_each_subtask_segment():
    from h2r.data.pipeline import subgoal_steps
    # Two episodes: subtasks a a b b b | b c c (the second starts with the first's last subtask).
    subtask = np.array([1, 1, 2, 2, 2, 2, 3, 3])
    episode_last = np.array([4, 4, 4, 4, 4, 7, 7, 7])
    # Segment ends: step 1 (a), 4 (b, episode end), 5 (b), 7 (c, episode end); a subgoal is the
    # step after a segment's end, capped at the episode's last step (never in the next episode);
    # the second subgoal is the end of the segment after that.
    steps = subgoal_steps(subtask, episode_last, count=2)
    assert steps[:, 0].tolist() == [2, 2, 4, 4, 4, 6, 7, 7]
    assert steps[:, 1].tolist() == [4, 4, 4, 4, 4, 7, 7, 7]


def test_subgoal_loss_trains_only_on_samples_with_a_proprio():
    config = model_config("tiny")
    config.subgoal_loss_weight = 1.0
    with nnx.use_eager_sharding(False):
        model = VLA(config, rngs=nnx.Rngs(0))
    batch = {k: jnp.asarray(v) for k, v in example_batch(config, 4).items()}
    human = ~np.asarray(batch["state_mask"]).any(-1)
    assert human.any() and (~human).any()
    _, metrics = model.compute_loss(batch, jax.random.key(0))
    assert float(metrics["subgoal_loss"]) > 0

    def subgoal_loss(subgoal):
        return model.compute_loss(dict(batch, subgoal=subgoal), jax.random.key(0))[1]["subgoal_loss"]
    grad = np.asarray(jax.grad(subgoal_loss)(batch["subgoal"]))
    assert np.all(grad[human] == 0) and np.any(grad[~human] != 0)
    # Off (weight 0): no subgoal head, no such loss.
    config.subgoal_loss_weight = 0.0
    with nnx.use_eager_sharding(False):
        plain = VLA(config, rngs=nnx.Rngs(0))
    assert "subgoal_loss" not in plain.compute_loss(batch, jax.random.key(0))[1]

