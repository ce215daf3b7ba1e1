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
    """A 1-step run whose model wants 16 px (the micro data is 32 px), mean/std normalization."""
    return train_utils.train_on_micro_data(str(tmp_path_factory.mktemp("resized_run") / "run"), micro_dataset,
                                           "--config.model.image_size=16", "--config.data.norm=mean_std", steps=1)


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
    seen = set()
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
        # Actions: the policy's unnormalization inverts the pipeline's normalization.
        chunk = np.asarray(jax.jit(lambda p, a: p.raw_actions(a, embodiment))(policy, batch["actions"]))
        future = np.minimum(steps[:, None] + np.arange(prepared.spec.action_horizon), dataset.index.num_steps - 1)
        recorded = dataset.index.action[future]
        valid = batch["action_valid"]
        assert chunk.shape == recorded.shape
        if mode == "mean_std":
            np.testing.assert_allclose(chunk[valid], recorded[valid], rtol=1e-5, atol=1e-5)
        else:  # quantile normalization clips outside [q01, q99]: compare inside
            s = policy.stats[policy.dataset_of(embodiment)]["action"]
            inside = valid[..., None] & (recorded >= s["q01"]) & (recorded <= s["q99"])
            assert inside.any()
            np.testing.assert_allclose(chunk[inside], recorded[inside], rtol=1e-5, atol=1e-5)
    assert len(seen) >= 2   # a robot and the human at least
