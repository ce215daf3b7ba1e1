"""Bad input to the input pipeline gets a DataError naming the dataset, episode and key."""
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import oxe_fixtures
from h2r.data import pipeline, sources, stats
from h2r.errors import DataError

F = tfds.features


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors") / "data"
    oxe_fixtures.write_h2r_world(root, scenes=2, tasks=1, episodes_per_combo=1)
    stats.prepare(str(root))
    return root


def _episodes(n=2, **kwargs):
    rng = np.random.default_rng(0)
    return [oxe_fixtures.h2r_episode(rng, scene="s", task_family="t", embodiment="bot", **kwargs) for _ in range(n)]


def test_missing_feature_names_dataset_and_key(tmp_path):
    rng = np.random.default_rng(0)
    features = oxe_fixtures.h2r_features()
    observation = dict(features["steps"].feature["observation"].items())
    del observation["wrist_image"]
    step = dict(features["steps"].feature.items())
    step["observation"] = F.FeaturesDict(observation)
    broken = F.FeaturesDict({"steps": F.Dataset(step), "episode_metadata": features["episode_metadata"]})
    episode = oxe_fixtures.h2r_episode(rng, scene="s", task_family="t", embodiment="bot")
    for s in episode["steps"]:
        del s["observation"]["wrist_image"]
    oxe_fixtures.write_dataset(tmp_path, "h2r_bot", broken, {"train": [episode]})
    with pytest.raises(DataError, match=r"'h2r_bot'.*'steps/observation/wrist_image' is missing"):
        sources.RLDSDataset(str(tmp_path / "h2r_bot"))


def test_wrong_dtype_names_the_key(tmp_path):
    features = oxe_fixtures.h2r_features()
    step = dict(features["steps"].feature.items())
    step["action"] = F.Tensor(shape=(3,), dtype=np.float64)
    broken = F.FeaturesDict({"steps": F.Dataset(step), "episode_metadata": features["episode_metadata"]})
    episodes = _episodes(1)
    for s in episodes[0]["steps"]:
        s["action"] = s["action"].astype(np.float64)
    oxe_fixtures.write_dataset(tmp_path, "h2r_bot", broken, {"train": episodes})
    with pytest.raises(DataError, match=r"'h2r_bot'.*'steps/action' has dtype float64, expected float32"):
        sources.RLDSDataset(str(tmp_path / "h2r_bot"))


def test_wrong_shape_of_a_real_schema(tmp_path):
    features = oxe_fixtures.bridge_features()
    step = dict(features["steps"].feature.items())
    observation = dict(step["observation"].items())
    observation["state"] = F.Tensor(shape=(6,), dtype=np.float32)
    step["observation"] = F.FeaturesDict(observation)
    episode = oxe_fixtures.bridge_episode(np.random.default_rng(0))
    for s in episode["steps"]:
        s["observation"]["state"] = s["observation"]["state"][:6]
    oxe_fixtures.write_dataset(tmp_path, "bridge", F.FeaturesDict({"steps": F.Dataset(step)}), {"train": [episode]})
    with pytest.raises(DataError, match=r"'bridge'.*'steps/observation/state' has shape \[6\], expected \[7\]"):
        sources.RLDSDataset(str(tmp_path / "bridge"))


def test_undecodable_image_names_episode_step_and_key(tmp_path):
    episodes = _episodes(2)
    episodes[1]["steps"][2]["observation"]["wrist_image"] = b"\x89PNG not really"
    oxe_fixtures.write_dataset(tmp_path, "h2r_bot", oxe_fixtures.h2r_features(), {"train": episodes})
    dataset = sources.RLDSDataset(str(tmp_path / "h2r_bot"))
    dataset.images(1, 1)  # fine
    with pytest.raises(DataError, match=r"'h2r_bot': episode 1 step 2: cannot decode 'steps/observation/wrist_image'"):
        dataset.images(1, 2)


def _copy(world, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(world, copy)
    for name in os.listdir(copy / "h2r_robot_a"):
        if name.startswith("index_"):
            os.remove(copy / "h2r_robot_a" / name)  # force re-reading the shards
    shard = copy / "h2r_robot_a" / "1.0.0" / "h2r_robot_a-train.array_record-00000-of-00001"
    return copy, shard


def test_truncated_shard_names_the_shard(world, tmp_path):
    copy, shard = _copy(world, tmp_path)
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)
    with pytest.raises(DataError, match=r"'h2r_robot_a': cannot read episode \d+ from shard .*h2r_robot_a-train"):
        sources.RLDSDataset(str(copy / "h2r_robot_a"))


def test_corrupt_shard_names_the_shard(world, tmp_path):
    copy, shard = _copy(world, tmp_path)
    with open(shard, "r+b") as f:
        f.seek(300)  # inside the first chunk (the file is padded to 64 KiB blocks)
        f.write(b"\x13" * 64)
    with pytest.raises(DataError, match=r"'h2r_robot_a': cannot read episode 0 from shard .*Corrupted"):
        sources.RLDSDataset(str(copy / "h2r_robot_a"))


def test_empty_mixture(world):
    config = oxe_fixtures.pipeline_config(world, kind="mixture", mixture="")
    with pytest.raises(DataError, match="empty mixture"):
        pipeline.make_iterator(config, 0, 1)
    config = oxe_fixtures.pipeline_config(world, kind="mixture", mixture="h2r_robot_a:0")
    with pytest.raises(DataError, match="empty mixture"):
        pipeline.make_iterator(config, 0, 1)


def test_empty_diversity_subset(world):
    config = oxe_fixtures.pipeline_config(world, kind="pretrain", diversity=0.0, human=False)
    with pytest.raises(DataError, match="subset is empty"):
        pipeline.make_iterator(config, 0, 1)


def test_budget_larger_than_the_subset(world):
    config = oxe_fixtures.pipeline_config(world, kind="pretrain", diversity=0.5, sample_budget=50, human=False)
    with pytest.raises(DataError, match=r"has 1 episodes, fewer than sample_budget=50"):
        pipeline.make_iterator(config, 0, 1)


def test_unknown_target_setting(world):
    config = oxe_fixtures.pipeline_config(world, target="no_such_setting")
    with pytest.raises(DataError, match="'no_such_setting'.*found none"):
        pipeline.make_iterator(config, 0, 1)


def test_unknown_dataset_kind(tmp_path):
    oxe_fixtures.write_dataset(tmp_path, "mystery_robot", oxe_fixtures.h2r_features(), {"train": _episodes(1)})
    with pytest.raises(DataError, match=r"'mystery_robot': unknown dataset kind"):
        sources.RLDSDataset(str(tmp_path / "mystery_robot"))
    with pytest.raises(DataError, match="unknown dataset kind 'lerobot'"):
        sources.RLDSDataset(str(tmp_path / "mystery_robot"), kind="lerobot")


def test_unknown_dataset_in_mixture(world):
    config = oxe_fixtures.pipeline_config(world, kind="mixture", mixture="h2r_robot_a:1,bridge:1")
    with pytest.raises(DataError, match=r"datasets \['bridge'\] not found"):
        pipeline.make_iterator(config, 0, 1)
