"""Training and serving compose the same transforms (h2r/data/transforms.py): for the same
recorded step, the batch the training pipeline builds and the observation `h2r.load_policy(...)`
builds for the model are bitwise identical, at native resolution and with resizing; policy
actions unnormalize with the stats the pipeline normalized with."""
import os

import jax
import numpy as np
import pytest
from PIL import Image

import h2r
import train_utils
from h2r.config import config_from_json
from h2r.data import pipeline, transforms


@pytest.mark.parametrize("shape", [(32, 32), (48, 48), (12, 16), (20, 33), (64, 64)])
@pytest.mark.parametrize("size", [16, 24, 32, 64])
def test_resize_is_pils_bilinear_bitwise_in_numpy_and_in_jit(shape, size):
    rng = np.random.default_rng(size)
    images = rng.integers(0, 256, (2,) + shape + (3,), dtype=np.uint8)
    pil = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])
    np.testing.assert_array_equal(transforms.resize(images, size), pil)
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda x: transforms.resize(x, size))(images)), pil)


def test_sample_spec_is_the_pipelines_and_the_models_layout():
    from h2r.model import model_config
    from h2r.model.example_batch import example_batch
    config = model_config("tiny")
    spec = transforms.SampleSpec.from_config(config)
    batch = example_batch(config, 3)
    assert set(batch) == set(spec.shapes())
    for key, (shape, dtype) in spec.shapes().items():
        assert batch[key].shape == (3,) + shape and batch[key].dtype == dtype, key


@pytest.fixture(scope="module")
def resized_run(tmp_path_factory, micro_dataset):
    """A 1-step run whose model wants 16 px (the micro data is 32 px), mean/std normalization, on
    bussing (suction_arm: an absolute-target arm, whose actions the policy learns as displacements)."""
    return train_utils.train_on_micro_data(str(tmp_path_factory.mktemp("resized_run") / "run"), micro_dataset,
                                           "--config.model.image_size=16", "--config.data.norm=mean_std",
                                           "--config.data.target=bussing_new_objects", steps=1)


def _recorded_steps(prepared, k, count=5):
    dataset = prepared.datasets[prepared.components[k].dataset]
    steps = np.asarray(sorted(set(np.linspace(0, dataset.index.num_steps - 1, count).astype(int))))
    return dataset, steps


def _raw_observation(policy, dataset, steps):
    """What a robot (or a camera on a human) records at those steps, in raw units."""
    index = dataset.index
    views = [dataset.images(index.step_episode[s], index.step_t[s]) for s in steps]
    texts = index.texts[index.instruction[steps]].tolist()
    obs = {"image": np.stack([v[0] for v in views]), "state": index.state[steps],
           "instruction": policy.tokenize(texts)}
    if views[0][1] is not None:
        obs["wrist_image"] = np.stack([v[1] for v in views])
    return obs


@pytest.mark.parametrize("run", ["micro_run", "resized_run"])
def test_pipeline_batch_and_policy_observation_are_bitwise_identical(run, request):
    workdir = request.getfixturevalue(run)
    policy = h2r.load_policy(workdir)
    config = config_from_json(os.path.join(workdir, "config.json"))
    prepared = pipeline.prepare(config)
    assert prepared.spec == policy.spec
    assert (prepared.spec.image_size == 32) == (run == "micro_run")   # native 32 px vs resized to 16
    read = pipeline.ReadBatch(pipeline.make_readers(config, prepared), prepared.spec, None)
    mode = config.data.norm
    seen, relative_seen = set(), False
    for k, component in enumerate(prepared.components):
        if component.dataset in seen:
            continue
        seen.add(component.dataset)
        dataset, steps = _recorded_steps(prepared, k)
        refs = np.stack([np.full(len(steps), k), steps, np.arange(len(steps))], 1)
        batch = read.map(refs)
        embodiment = dataset.embodiment()
        raw = _raw_observation(policy, dataset, steps)
        # The stats travel with the checkpoint: the very arrays the pipeline normalized with.
        for key in ("action", "state"):
            for name, value in transforms.stats_arrays(prepared.norm_stats[component.dataset][key]).items():
                np.testing.assert_array_equal(policy.stats[policy.dataset_of(embodiment)][key][name], value)
        eager = policy.model_obs(raw, embodiment)
        jitted = jax.jit(lambda p, o: p.model_obs(o, embodiment))(policy, jax.device_put(raw))
        assert set(eager) == set(transforms.OBS_KEYS)
        for key in transforms.OBS_KEYS:
            for name, obs in (("eager", eager), ("jit", jitted)):
                got = np.asarray(obs[key])
                assert got.dtype == batch[key].dtype, (embodiment, key, name)
                np.testing.assert_array_equal(got, batch[key], err_msg=f"{embodiment} {key} {name}")
        # Actions: the policy's unnormalization inverts the pipeline's normalization (and, for an
        # arm that learns displacements, adds them up from the proprio the chunk starts at).
        state = dataset.index.state[steps]
        chunk = np.asarray(jax.jit(lambda p, a, s: p.raw_actions(a, embodiment, s))(policy, batch["actions"], state))
        future = np.minimum(steps[:, None] + np.arange(prepared.spec.action_horizon), dataset.index.num_steps - 1)
        recorded = dataset.index.action[future]
        valid = batch["action_valid"]
        relative = prepared.norm_stats[component.dataset].get("relative_action")
        relative_seen |= bool(relative)
        if relative:  # the batch holds each step's target minus the position the arm reports
            m = transforms.relative_matrix(relative, dataset.state_dim, dataset.action_dim)
            displacement = recorded[:, 0] - state @ m
            assert np.abs(displacement[:, :2]).max() < 0.5 * np.abs(recorded[:, 0, :2]).max()
            expected = transforms.normalize(displacement, policy.stats[policy.dataset_of(embodiment)]["action"], mode)
            np.testing.assert_allclose(batch["actions"][:, 0, :dataset.action_dim], expected, rtol=1e-5, atol=1e-5)
            with pytest.raises(ValueError, match="raw state"):
                policy.raw_actions(batch["actions"], embodiment)
        assert chunk.shape == recorded.shape
        if mode == "mean_std":
            np.testing.assert_allclose(chunk[valid], recorded[valid], rtol=1e-5, atol=1e-5)
        else:  # quantile normalization clips outside [q01, q99]: compare inside
            s = policy.stats[policy.dataset_of(embodiment)]["action"]
            inside = valid[..., None] & (recorded >= s["q01"]) & (recorded <= s["q99"])
            assert inside.any()
            np.testing.assert_allclose(chunk[inside], recorded[inside], rtol=1e-5, atol=1e-5)
    assert len(seen) >= 2   # a robot and the human at least
    assert relative_seen == (run == "resized_run")   # suction_arm: absolute targets; trident_arm: deltas


def test_displacements_add_up_to_the_absolute_targets_of_an_arm_that_reaches_them():
    """transforms.to_relative / from_relative: an absolute-target arm's recorded actions become
    per-step displacements (target - reported position, scaled); a chunk of them, added up from
    the proprio the chunk starts at, gives back the targets. Dims without a reference (the grip)
    pass through, and under jit the numbers are the same."""
    rng = np.random.default_rng(0)
    scale = 0.8                                       # actions are positions / 1.25
    relative = {"action_dims": [0, 1], "state_dims": [2, 3], "scale": scale}
    m = transforms.relative_matrix(relative, 5, 3)
    # A trajectory: each action's target is where the arm is at the next step.
    positions = np.cumsum(rng.uniform(-0.05, 0.05, (9, 2)), 0).astype(np.float32) + 0.5
    state = np.concatenate([rng.normal(size=(9, 2)), positions, rng.uniform(size=(9, 1))], 1).astype(np.float32)
    actions = np.concatenate([positions[1:] * scale, rng.uniform(size=(8, 1))], 1).astype(np.float32)
    displacement = transforms.to_relative(actions, state[:8], m)
    np.testing.assert_allclose(displacement[:, :2], (positions[1:] - positions[:8]) * scale, atol=1e-6)
    np.testing.assert_array_equal(displacement[:, 2], actions[:, 2])
    chunk = displacement[None]                          # [1, H=8, 3], predicted at step 0
    back = transforms.from_relative(chunk, state[:1], m)
    np.testing.assert_allclose(back[0], actions, atol=1e-5)
    jitted = jax.jit(transforms.from_relative)(chunk, state[:1], m)
    np.testing.assert_allclose(np.asarray(jitted), back, atol=1e-6)
    # No reference: nothing changes.
    none = transforms.relative_matrix(None, 5, 3)
    np.testing.assert_array_equal(transforms.from_relative(chunk, state[:1], none), chunk)


def test_only_an_absolute_target_arm_gets_a_relative_action_frame_and_stale_stats_are_recomputed(
        micro_dataset, tmp_path):
    """stats.relative_reference reads the dataset's metadata and the catalogue: suction_arm (x, y
    targets in its base frame / 1.25, reports ee_x_base, ee_y_base) is relative to its position; a
    delta-action arm and the human are not. Cached stats of the other frame are recomputed."""
    import shutil

    from h2r.data import sources, stats

    def dataset(name, root=micro_dataset):
        return sources.RLDSDataset(os.path.join(str(root), name))
    suction = dataset("h2r_suction_arm")
    ref = stats.relative_reference(suction)
    names = suction.info_metadata["state_names"]
    assert ref == {"action_dims": [0, 1], "state_dims": [names.index("ee_x_base"), names.index("ee_y_base")],
                   "scale": 0.8}
    for name in ("h2r_trident_arm", "h2r_jaw_arm", "h2r_human"):
        assert stats.relative_reference(dataset(name)) is None, name
    # The action statistics are the displacements' (a step is a few centimetres, not the table).
    computed = stats.dataset_stats(suction)
    assert computed["relative_action"] == ref
    raw_std = suction.index.action[:, :2].std(0)
    assert np.all(np.asarray(computed["action"]["std"][:2]) < 0.6 * raw_std)
    # A stats file written without the frame (an older h2r) is recomputed, not trusted.
    copy = tmp_path / "h2r_suction_arm"
    shutil.copytree(os.path.join(str(micro_dataset), "h2r_suction_arm"), copy)
    old = dict(computed, action=stats.compute(suction.index.action))
    del old["relative_action"]
    stats.save(old, os.path.join(str(copy), stats.FILENAME))
    fresh = stats.ensure(sources.RLDSDataset(str(copy)))
    assert fresh["relative_action"] == ref and fresh["action"] == computed["action"]
