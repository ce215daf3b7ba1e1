"""The VLA model: losses, masks, sampling, embeddings, presets (tiny sizes, random batches)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from h2r.errors import DataError
from h2r.model import VLA, model_config
from h2r.model import vla as vla_module
from h2r.model.example_batch import example_batch


def _config(**overrides):
    """The tiny preset with one prefix and one expert block: every layer type, half the compile time."""
    c = model_config("tiny")
    c.update(dict(depth=1, expert_depth=1), **overrides)
    return c


def _batch(config, batch_size=8, seed=0):
    return {k: jnp.asarray(v) for k, v in example_batch(config, batch_size, seed).items()}


@pytest.fixture(scope="module")
def model_and_batch():
    config = _config()
    return VLA(config, rngs=nnx.Rngs(0)), _batch(config)


_loss = nnx.jit(lambda model, batch, rng: model.compute_loss(batch, rng))


def test_overfitting_a_fixed_batch_drives_both_losses_down():
    config = _config()
    model = VLA(config, rngs=nnx.Rngs(0))
    batch = _batch(config)
    optimizer = nnx.Optimizer(model, optax.adamw(3e-3), wrt=nnx.Param)
    rng = jax.random.key(1)  # fixed noise and time: a fixed objective to overfit

    @nnx.jit
    def train_step(model, optimizer, batch):
        (_, metrics), grads = nnx.value_and_grad(lambda m: m.compute_loss(batch, rng), has_aux=True)(model)
        optimizer.update(model, grads)
        return metrics

    history = [train_step(model, optimizer, batch) for _ in range(40)]
    first, last = history[0], history[-1]
    assert all(np.isfinite(float(m["loss"])) for m in history)
    assert float(last["action_loss"]) < 0.5 * float(first["action_loss"])
    assert float(last["subtask_loss"]) < 0.3 * float(first["subtask_loss"])
    assert float(last["subtask_accuracy"]) > 0.9


def test_masked_action_steps_and_dims_contribute_nothing(model_and_batch):
    model, batch = model_and_batch
    rng = jax.random.key(3)
    mask = batch["action_valid"][:, :, None] & batch["action_dim_mask"][:, None, :]
    assert not bool(mask.all()) and bool(mask.any())  # the batch has both kinds of elements
    junk = jax.random.normal(jax.random.key(9), batch["actions"].shape) * 100.0
    changed = dict(batch, actions=jnp.where(mask, batch["actions"], junk))
    loss, metrics = _loss(model, batch, rng)
    loss2, metrics2 = _loss(model, changed, rng)
    assert float(metrics2["action_loss"]) == float(metrics["action_loss"])
    assert float(loss2) == float(loss)

    # A valid element does change the loss (the test above can fail).
    poked = dict(batch, actions=batch["actions"].at[0, 0, 0].add(5.0))
    assert float(_loss(model, poked, rng)[1]["action_loss"]) != float(metrics["action_loss"])


def test_zero_loss_weight_removes_a_sample(model_and_batch):
    model, batch = model_and_batch
    rng = jax.random.key(4)
    weighted = dict(batch, action_loss_weight=batch["action_loss_weight"].at[0].set(0.0),
                    subtask_loss_weight=batch["subtask_loss_weight"].at[0].set(0.0))
    changed = dict(weighted, actions=batch["actions"].at[0].add(7.0))
    _, m1 = _loss(model, weighted, rng)
    _, m2 = _loss(model, changed, rng)
    assert float(m1["action_loss"]) == float(m2["action_loss"])
    # With every subtask weight zero the subtask loss is exactly zero (no NaN from 0/0).
    none = dict(batch, subtask_loss_weight=jnp.zeros_like(batch["subtask_loss_weight"]))
    assert float(_loss(model, none, rng)[1]["subtask_loss"]) == 0.0


# The losses each `data.human_loss` channel is made of: every loss weighted by a sample's
# action_loss_weight is the action channel (the subgoal head's too), subtask_loss the other.
_CHANNELS = {"action": ("action_loss", "subgoal_loss", "action_query_loss"), "subtask": ("subtask_loss",)}


@nnx.jit
def _channel_grads(model, batch, rng):
    """{channel: d(sum of that channel's losses)/d(params)}."""
    def channel(m, names):
        metrics = m.compute_loss(batch, rng)[1]
        return sum(metrics[n] for n in names if n in metrics)

    return {name: nnx.grad(lambda m: channel(m, names))(model) for name, names in _CHANNELS.items()}


def test_human_loss_setting_trains_exactly_the_named_loss(model_and_batch):
    """Issue 12's channel ablation: for human samples weighted as the pipeline weights them
    (mixture.HUMAN_LOSS), the loss a setting turns off has a gradient of exactly zero w.r.t.
    every parameter, and the one it keeps has not."""
    from h2r.data.mixture import HUMAN_LOSS
    from h2r.world.catalogue import index_of

    model, batch = model_and_batch
    human = np.asarray(batch["embodiment_id"]) == index_of("embodiment", "human")
    assert human.any() and (~human).any()
    rng = jax.random.key(5)
    for mode, (action_w, subtask_w) in HUMAN_LOSS.items():
        # The pipeline's weights (pipeline.ReadBatch: robots 1, humans HUMAN_LOSS[mode]), then
        # the human samples alone: the robot samples' weights zeroed.
        only_human = dict(batch, action_loss_weight=jnp.asarray(np.where(human, action_w, 0.0), jnp.float32),
                          subtask_loss_weight=jnp.asarray(np.where(human, subtask_w, 0.0), jnp.float32))
        grads = _channel_grads(model, only_human, rng)
        for channel, weight in (("action", action_w), ("subtask", subtask_w)):
            largest = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads[channel]))
            if weight == 0:
                assert largest == 0.0, (mode, channel, largest)   # exactly: no human signal at all
            else:
                assert largest > 1e-6, (mode, channel, largest)

    # In the trainer's mixed batch, with human data training only the subtask: the human samples'
    # actions do not reach the total loss's gradient at all (bit for bit).
    action_w, subtask_w = HUMAN_LOSS["subtask"]
    mixed = dict(batch, action_loss_weight=jnp.asarray(np.where(human, action_w, 1.0), jnp.float32),
                 subtask_loss_weight=jnp.asarray(np.where(human, subtask_w, 1.0), jnp.float32))
    junk = dict(mixed, actions=jnp.where(human[:, None, None], mixed["actions"] + 3.0, mixed["actions"]))
    total = nnx.jit(lambda m, b: nnx.grad(lambda m: m.compute_loss(b, rng)[0])(m))
    jax.tree.map(np.testing.assert_array_equal, total(model, mixed), total(model, junk))
    # ... while with "both" they do (the comparison above can fail).
    both = {k: jnp.ones_like(mixed[k]) for k in ("action_loss_weight", "subtask_loss_weight")}
    changed = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), total(model, dict(mixed, **both)),
                                           total(model, dict(junk, **both))))
    assert any(changed)


def test_sample_actions_shapes_and_determinism(model_and_batch):
    model, batch = model_and_batch
    obs = {k: v for k, v in batch.items() if k not in ("actions", "action_valid")}
    sample = nnx.jit(lambda m, o, r: m.sample_actions(o, r))
    a1 = sample(model, obs, jax.random.key(0))
    a2 = sample(model, obs, jax.random.key(0))
    a3 = sample(model, obs, jax.random.key(1))
    c = model.config
    assert a1.shape == (8, c.action_horizon, c.max_action_dim) and a1.dtype == jnp.float32
    assert np.all(np.isfinite(a1))
    np.testing.assert_array_equal(a1, a2)
    # The tiny preset samples deterministically (model.sample_noise 0): the key does not matter;
    # with the flow's full starting noise (sample_noise 1) another key gives another chunk.
    assert c.sample_noise == 0.0
    np.testing.assert_array_equal(a1, a3)
    noisy = VLA(_config(sample_noise=1.0), rngs=nnx.Rngs(0))
    n1, n3 = sample(noisy, obs, jax.random.key(0)), sample(noisy, obs, jax.random.key(1))
    assert not np.allclose(n1, n3)
    # A given subtask replaces the predicted one and changes the chunk.
    given = nnx.jit(lambda m, o, r: m.sample_actions(o, r, subtask=o["subtask"]))(model, obs, jax.random.key(0))
    assert given.shape == a1.shape and not np.allclose(given, a1)


def test_candidates_are_the_chunks_of_the_observation_repeated_k_times():
    """sample_actions(candidates=k) encodes each observation once and draws k flows: candidate i of
    observation b is the chunk of row b * k + i of the observation batch repeated k times."""
    model = VLA(_config(sample_noise=1.0), rngs=nnx.Rngs(0))
    obs = {k: v for k, v in _batch(model.config, 4).items() if k not in ("actions", "action_valid")}
    k = 3
    many = nnx.jit(lambda m, o, r: m.sample_actions(o, r, candidates=k))(model, obs, jax.random.key(5))
    tiled = {name: jnp.repeat(v, k, axis=0) for name, v in obs.items()}
    one_by_one = nnx.jit(lambda m, o, r: m.sample_actions(o, r))(model, tiled, jax.random.key(5))
    c = model.config
    assert many.shape == (4, k, c.action_horizon, c.max_action_dim)
    np.testing.assert_allclose(many.reshape(one_by_one.shape), one_by_one, atol=1e-4)
    assert not np.allclose(many[:, 0], many[:, 1])    # independent noise per candidate
    # The action queries' direct regression (inference=queries) has one answer: k copies of it.
    queries = VLA(_config(action_queries_weight=1.0, inference="queries"), rngs=nnx.Rngs(0))
    direct = nnx.jit(lambda m, o, r: m.sample_actions(o, r))(queries, obs, jax.random.key(5))
    copies = nnx.jit(lambda m, o, r: m.sample_actions(o, r, candidates=k))(queries, obs, jax.random.key(5))
    assert copies.shape == many.shape
    np.testing.assert_array_equal(copies, jnp.repeat(direct[:, None], k, axis=1))


def test_predict_subtask_pads_after_the_first_pad(model_and_batch):
    model, batch = model_and_batch
    tokens = np.asarray(model.predict_subtask(batch))
    assert tokens.shape == (8, model.config.max_subtask_len) and tokens.dtype == np.int32
    for row in tokens:
        first_pad = np.flatnonzero(row == 0)
        if first_pad.size:
            assert np.all(row[first_pad[0]:] == 0)


def test_observation_outputs_do_not_see_the_subtask(model_and_batch):
    """The subtask head and embed must not read the teacher-forced subtask (no leakage)."""
    model, batch = model_and_batch
    other = jnp.roll(batch["subtask"], 1, axis=0)
    p1, _, groups = model._encode(batch, batch["subtask"])
    p2, _, _ = model._encode(batch, other)
    blind = groups != 2  # observation and query-slot groups
    np.testing.assert_allclose(p1[:, blind], p2[:, blind], atol=1e-6)
    assert not np.allclose(p1[:, ~blind], p2[:, ~blind])


def test_embed_shape_and_dropped_wrist_view(model_and_batch):
    model, batch = model_and_batch
    emb = model.embed(batch)
    assert emb.shape == (8, model.config.width) and np.all(np.isfinite(emb))
    no_wrist = dict(batch, image_mask=batch["image_mask"].at[:, 1].set(False))
    other_wrist = dict(no_wrist, wrist_image=255 - batch["wrist_image"])
    np.testing.assert_allclose(model.embed(no_wrist), model.embed(other_wrist), atol=1e-6)
    assert not np.allclose(model.embed(batch), model.embed(dict(batch, wrist_image=255 - batch["wrist_image"])))


def test_bfloat16_compute_keeps_float32_params():
    config = _config(dtype="bfloat16")
    model = VLA(config, rngs=nnx.Rngs(0))
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert all(p.dtype == jnp.float32 for p in params)
    loss, _ = _loss(model, _batch(config), jax.random.key(0))
    assert loss.dtype == jnp.float32 and np.isfinite(float(loss))


def test_wrong_batch_shape_is_a_clear_error(model_and_batch):
    model, batch = model_and_batch
    bad = dict(batch, image=jnp.zeros((8, 16, 16, 3), jnp.uint8))
    with pytest.raises(DataError, match="'image'.*expected"):
        model.compute_loss(bad, jax.random.key(0))


def test_same_seed_same_params():
    config = _config()
    a = nnx.state(VLA(config, rngs=nnx.Rngs(5)), nnx.Param)
    b = nnx.state(VLA(config, rngs=nnx.Rngs(5)), nnx.Param)
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("size,low,high", [("tiny", 1e5, 2e6), ("small", 5e6, 5e7),
                                            ("base", 1e8, 3e8), ("large", 8e8, 2e9)])
def test_preset_parameter_counts(size, low, high):
    abstract = nnx.eval_shape(lambda: VLA(model_config(size), rngs=nnx.Rngs(0)))
    count = sum(p.size for p in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
    assert low <= count <= high, count


def test_unknown_size_is_an_error():
    with pytest.raises(ValueError, match="unknown model size 'huge'"):
        model_config("huge")


def test_remat_gives_the_same_loss_and_gradients():
    config = _config()
    batch = _batch(config)
    grad = nnx.jit(lambda m, b: nnx.grad(lambda m: m.compute_loss(b, jax.random.key(0))[0])(m))
    plain = grad(VLA(config, rngs=nnx.Rngs(0)), batch)
    remat = grad(VLA(_config(remat=True), rngs=nnx.Rngs(0)), batch)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), plain, remat)


def test_summary_token_is_one_more_observation_token_and_needs_keypoints():
    with_summary, without = _config(), _config(summary_mlp_dim=0)
    assert with_summary.summary_mlp_dim > 0   # the tiny preset uses it (BUILD_NOTES.md, "Learning", session 7)
    batch = _batch(with_summary)
    empty = jnp.zeros((8, with_summary.max_subtask_len), jnp.int32)
    prefix_with = VLA(with_summary, rngs=nnx.Rngs(0))._encode(batch, empty)[0]
    prefix_without = VLA(without, rngs=nnx.Rngs(0))._encode(batch, empty)[0]
    assert prefix_with.shape[1] == prefix_without.shape[1] + 1
    with pytest.raises(ValueError, match="summary_mlp_dim > 0 needs keypoint tokens"):
        VLA(_config(keypoints=0, subgoal_loss_weight=0.0), rngs=nnx.Rngs(0))


def test_windowed_keypoints_keep_two_alike_objects_apart():
    """One softmax over the image puts a channel that fires on two alike objects at their midpoint;
    per window each object keeps its own position, with the window's share of the mass."""
    from h2r.model import keypoints
    R = 32
    logits = np.full((1, R, R, 1), -30.0, np.float32)
    logits[0, 4, 6, 0] = logits[0, 25, 20, 0] = 0.0            # top-left and bottom-right windows
    grid = keypoints._pixel_grid(R).reshape(R, R, 2)
    points, whole = keypoints.readout(jnp.asarray(logits), 1)
    np.testing.assert_allclose(points[0, 0], (grid[4, 6] + grid[25, 20]) / 2, atol=1e-5)   # the midpoint
    np.testing.assert_allclose(whole, points.reshape(1, -1))
    _, features = keypoints.readout(jnp.asarray(logits), 2)
    assert features.shape == (1, 2 + 3 * 4)
    windows = np.asarray(features[0, 2:]).reshape(2, 2, 3)      # (row window, col window, (row, col, mass))
    np.testing.assert_allclose(windows[0, 0], [*grid[4, 6], 0.5], atol=1e-5)
    np.testing.assert_allclose(windows[1, 1], [*grid[25, 20], 0.5], atol=1e-5)
    np.testing.assert_allclose(windows[0, 1, 2] + windows[1, 0, 2], 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="keypoint_windows=3 does not divide the image size 32"):
        keypoints.readout(jnp.asarray(logits), 3)


def test_position_prior_starts_neutral_and_picks_one_of_two_alike_objects_per_view():
    """Zero at init (the keypoints are those of a stem without it); a prior that rises toward one
    of two alike objects moves that view's keypoint onto it, the other view's stays between them."""
    config = _config()
    batch = _batch(config)
    plain = VLA(config, rngs=nnx.Rngs(0)).keypoint_stem
    stem = VLA(_config(keypoint_position_prior=True), rngs=nnx.Rngs(0)).keypoint_stem
    assert plain.position_bias is None
    for view in (0, 1):
        np.testing.assert_array_equal(stem.keypoints(batch["image"], view), plain.keypoints(batch["image"]))
    # Two white 2x2 blobs on black, mirror images about the center, and a stem whose every
    # channel detects brightness: every channel fires alike on both (its keypoint: the center).
    R = config.image_size
    image = np.zeros((1, R, R, 3), np.uint8)
    image[0, 4:6, 4:6] = image[0, 26:28, 26:28] = 255
    for name in ("kernel1", "kernel2"):
        getattr(stem, name)[...] = jnp.full_like(getattr(stem, name)[...], 0.1)
    stem.bias1[...] = jnp.zeros_like(stem.bias1[...])
    stem.log_temperature[...] = jnp.full_like(stem.log_temperature[...], np.log(200.0))
    midpoint = np.asarray(stem.keypoints(jnp.asarray(image), 0))
    np.testing.assert_allclose(midpoint, 0.0, atol=1e-4)
    prior = np.zeros((2, R, R, config.keypoints), np.float32)
    prior[0, 20:, 20:] = 30.0                                   # head view: prefer the lower right
    stem.position_bias[...] = jnp.asarray(prior)
    from h2r.model import keypoints
    grid = keypoints._pixel_grid(R).reshape(R, R, 2)
    head, wrist = (np.asarray(stem.keypoints(jnp.asarray(image), view)) for view in (0, 1))
    lower_right = grid[26:28, 26:28].reshape(-1, 2).mean(0)
    moved = np.linalg.norm(head - lower_right, axis=-1) < 0.1
    assert moved.mean() > 0.9, moved                           # onto the preferred blob
    np.testing.assert_allclose(wrist, midpoint, atol=1e-5)     # the wrist view has its own prior


def test_stem_patch_features_keep_two_alike_items_in_their_own_tokens():
    """Two alike blobs: each changes its own patch token (the stem's features of that patch), none
    other; the features reach the loss; the option needs the keypoint stem."""
    config = _config(stem_patch_features=True)
    model = VLA(config, rngs=nnx.Rngs(0))
    R, P = config.image_size, config.patch_size
    blank = np.zeros((1, R, R, 3), np.uint8)
    one, two = blank.copy(), blank.copy()
    one[0, 3:5, 3:5] = 255                                    # inside patch 0 (with the 5 px receptive field)
    two[0, 3:5, 3:5] = two[0, R - 5:R - 3, R - 5:R - 3] = 255  # and inside the last patch
    def patches(m, im):
        im = jnp.asarray(im)
        return np.asarray(m._patches(im, 0, m.keypoint_stem.hidden_features(im))[0])

    tokens = {name: patches(model, im) for name, im in (("blank", blank), ("one", one), ("two", two))}
    changed_one = np.abs(tokens["one"] - tokens["blank"]).sum(-1) > 1e-6
    changed_two = np.abs(tokens["two"] - tokens["blank"]).sum(-1) > 1e-6
    assert changed_one.nonzero()[0].tolist() == [0]
    assert changed_two.nonzero()[0].tolist() == [0, (R // P) ** 2 - 1]
    np.testing.assert_allclose(tokens["two"][0], tokens["one"][0], atol=1e-5)   # the same item, the same token
    # Without the option the patch embedding is the linear one: the stem's part is what differs.
    plain = VLA(_config(), rngs=nnx.Rngs(0))
    assert plain.patch_features is None
    stem_part = np.asarray(model.patch_features(vla_module._by_patch(model.keypoint_stem.hidden_features(jnp.asarray(one)), P)))
    np.testing.assert_allclose(tokens["one"] - patches(plain, one), stem_part[0], atol=1e-5)
    batch = _batch(config)
    grads = nnx.jit(lambda m, b: nnx.grad(lambda m: m.compute_loss(b, jax.random.key(0))[0])(m))(model, batch)
    assert np.abs(np.asarray(grads.to_pure_dict()["patch_features"]["kernel"])).sum() > 0.0
    with pytest.raises(ValueError, match="stem_patch_features needs the keypoint stem"):
        VLA(_config(stem_patch_features=True, keypoints=0, subgoal_loss_weight=0.0, summary_mlp_dim=0),
            rngs=nnx.Rngs(0))


def test_two_peaks_find_both_alike_objects_where_the_softmax_gives_their_midpoint():
    from h2r.model import keypoints
    R = 32
    logits = np.full((1, R, R, 1), -30.0, np.float32)
    logits[0, 4, 6, 0] = logits[0, 25, 20, 0] = 0.0
    logits[0, 4, 7, 0] = -1.0                                   # the first item is two pixels wide
    grid = keypoints._pixel_grid(R).reshape(R, R, 2)
    points, features = keypoints.readout(jnp.asarray(logits), 1, peaks=True)
    peaks = np.asarray(features[0, 2:]).reshape(5)
    first = (grid[4, 6] + np.exp(-1.0) * grid[4, 7]) / (1 + np.exp(-1.0))   # the window's softmax
    found = sorted([tuple(peaks[0:2].round(4)), tuple(peaks[2:4].round(4))])
    np.testing.assert_allclose(found, sorted([tuple(first.round(4)), tuple(grid[25, 20].round(4))]), atol=1e-3)
    np.testing.assert_allclose(peaks[4], 1 / (1 + (1 + np.exp(-1.0))), atol=1e-3)   # the second's share
    for peak in found:                                          # the global softmax: between them
        assert np.linalg.norm(np.asarray(points[0, 0]) - np.asarray(peak)) > 0.5
    logits[0, 25, 20, 0] = -30.0                                # one item left: the second peak is noise
    _, features = keypoints.readout(jnp.asarray(logits), 1, peaks=True)
    assert float(features[0, -1]) < 1e-3
    model = VLA(_config(keypoint_peaks=True), rngs=nnx.Rngs(0))
    assert model.keypoint_stem.feature_dim() == 7 * model.config.keypoints


def test_windowed_keypoints_feed_the_summary_token_and_the_subgoal_head():
    config = _config(keypoint_windows=2)
    model = VLA(config, rngs=nnx.Rngs(0))
    features = 2 * config.keypoints + 3 * 4 * config.keypoints
    assert model.summary_in.kernel.shape[0] == 2 * features + config.max_state_dim
    assert model.subgoal_hidden.kernel.shape[0] == 2 * features + config.width
    batch = _batch(config)
    grads = nnx.jit(lambda m, b: nnx.grad(lambda m: m.compute_loss(b, jax.random.key(0))[0])(m))(model, batch)
    grads = grads.to_pure_dict()
    # The rows of both MLPs' input kernels that read the windowed features (after each view's
    # 2K whole-image coordinates) receive gradient: the features reach the losses.
    K = config.keypoints
    for name in ("summary_in", "subgoal_hidden"):
        rows = np.abs(np.asarray(grads[name]["kernel"])).sum(-1)
        for view in range(2):
            assert rows[view * features + 2 * K:(view + 1) * features].sum() > 0.0, (name, view)
