"""Real Open X-Embodiment schemas (bridge, fractal/RT-1) through the standardization registry
and the pipeline, and the TFRecord -> array_record conversion of an RLDS dataset."""
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

import oxe_fixtures
from h2r.data import convert, pipeline, sources, stats


@pytest.fixture(scope="module")
def oxe(tmp_path_factory):
    root = tmp_path_factory.mktemp("oxe") / "data"
    oxe_fixtures.write_oxe(root)
    stats.prepare(str(root))
    return root


def _raw_steps(version_dir):
    source = tfds.builder_from_directory(str(version_dir)).as_data_source("train")
    return [step for e in range(len(source)) for step in source[e]["steps"]]


def test_bridge_standardization(oxe):
    dataset = sources.RLDSDataset(str(oxe / "bridge"))
    assert (dataset.kind, dataset.embodiment(), dataset.action_dim, dataset.state_dim) == ("bridge", "widowx", 7, 7)
    steps = _raw_steps(dataset.version_dir)
    expected = np.stack([np.concatenate([s["action"]["world_vector"], s["action"]["rotation_delta"],
                                         [float(s["action"]["open_gripper"])]]) for s in steps])
    np.testing.assert_allclose(dataset.index.action, expected)
    np.testing.assert_allclose(dataset.index.state, np.stack([s["observation"]["state"] for s in steps]))
    assert dataset.index.texts[dataset.index.instruction[0]] == "put the spoon in the pot"
    image, wrist = dataset.images(0, 1)
    assert image.shape == (12, 16, 3) and wrist is None
    np.testing.assert_array_equal(image, steps[1]["observation"]["image"])


def test_fractal_standardization(oxe):
    dataset = sources.RLDSDataset(str(oxe / "fractal20220817_data"))
    assert (dataset.kind, dataset.embodiment(), dataset.action_dim, dataset.state_dim) == ("fractal", "google_robot", 7, 8)
    steps = _raw_steps(dataset.version_dir)
    expected = np.stack([np.concatenate([s["action"]["world_vector"], s["action"]["rotation_delta"],
                                         s["action"]["gripper_closedness_action"]]) for s in steps])
    np.testing.assert_allclose(dataset.index.action, expected)
    expected_state = np.stack([np.concatenate([s["observation"]["base_pose_tool_reached"],
                                               s["observation"]["gripper_closed"]]) for s in steps])
    np.testing.assert_allclose(dataset.index.state, expected_state)


def test_oxe_mixture_batch(oxe):
    config = oxe_fixtures.pipeline_config(oxe, kind="mixture", mixture="bridge:3,fractal20220817_data:1",
                                          human=False, norm="quantile")  # quantile: actions in [-1, 1]
    batches = [b for b, _ in zip(pipeline.make_iterator(config, 0, 1), range(4))]
    batch = batches[0]
    assert batch["image"].shape == (8, 16, 16, 3)  # 12x16 and 12x15 resized to model.image_size
    assert not batch["image_mask"][:, 1].any() and (batch["wrist_image"] == 0).all()
    assert (batch["action_dim_mask"].sum(-1) == 7).all()
    state_dims = np.concatenate([b["state_mask"].sum(-1) for b in batches])
    assert set(state_dims) == {7, 8}
    assert abs((state_dims == 7).mean() - 0.75) < 0.1  # bridge:fractal = 3:1
    assert np.abs(batch["actions"]).max() <= 1.0
    assert (batch["embodiment_id"] == -1).all()  # not in the world's catalogue


def test_tfrecord_to_array_record_conversion(tmp_path):
    oxe_fixtures.write_oxe(tmp_path / "tfrecord", file_format="tfrecord")
    oxe_fixtures.write_oxe(tmp_path / "direct")  # the same episodes, written as array_record
    out = convert.convert(str(tmp_path / "tfrecord" / "bridge" / "1.0.0"),
                          str(tmp_path / "converted" / "bridge" / "1.0.0"))
    assert json.load(open(os.path.join(out, "dataset_info.json")))["fileFormat"] == "array_record"
    assert any(".array_record-" in f for f in os.listdir(out))
    converted = sources.RLDSDataset(str(tmp_path / "converted" / "bridge"))
    direct = sources.RLDSDataset(str(tmp_path / "direct" / "bridge"))
    for key in ("action", "state", "step_t", "episode_length"):
        np.testing.assert_array_equal(getattr(converted.index, key), getattr(direct.index, key))
    np.testing.assert_array_equal(converted.images(2, 3)[0], direct.images(2, 3)[0])
    with pytest.raises(Exception, match="already exists"):
        convert.convert(str(tmp_path / "tfrecord" / "bridge" / "1.0.0"), out)
