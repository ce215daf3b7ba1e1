"""The RLDS writer on hand-made episodes: the schema read back through tfds data sources."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from h2r.data import rlds_writer

SIZE, ACTION_DIM = 16, 4


def _episode(seed: int, state_dim: int, length: int = 5) -> rlds_writer.Episode:
    rng = np.random.default_rng(seed)
    return rlds_writer.Episode(
        image=rng.integers(0, 256, (length, SIZE, SIZE, 3), dtype=np.uint8),
        wrist_image=rng.integers(0, 256, (length, SIZE, SIZE, 3), dtype=np.uint8),
        state=rng.normal(size=(length, state_dim)).astype(np.float32),
        action=rng.normal(size=(length, ACTION_DIM)).astype(np.float32),
        phase=np.minimum(np.arange(length), 2).astype(np.int32),
        reward=np.eye(length, dtype=np.float32)[-1],
        is_terminal=True,
        instruction="put the red egg in the carton",
        subtasks=[f"subtask {min(t, 2)}" for t in range(length)],
        metadata=dict(scene="kitchen", task_family="eggs_in_carton", embodiment="e", setting="pretrain",
                      target="", seed=seed, expert_success=True),
    )


@pytest.mark.parametrize("state_dim", [3, 0], ids=["robot", "human"])
def test_schema_round_trips_through_data_source(tmp_path, state_dim):
    tfds.disable_progress_bar()
    spec = rlds_writer.DatasetSpec(embodiment="e", image_size=SIZE, state_dim=state_dim,
                                   action_dim=ACTION_DIM, extra_metadata={"action_names": list("xyzg")})
    episodes = {f"ep{i}": _episode(i, state_dim) for i in range(3)}
    path = rlds_writer.write_dataset(str(tmp_path), spec, {
        "train": lambda: [(k, episodes[k]) for k in ("ep0", "ep1")],
        "val": lambda: [("ep2", episodes["ep2"])],
    })
    assert path == str(tmp_path / "h2r_e" / "1.0.0")
    builder = tfds.builder_from_directory(path)
    assert builder.info.metadata["action_names"] == list("xyzg")
    assert {s: builder.info.splits[s].num_examples for s in ("train", "val")} == {"train": 2, "val": 1}

    source = builder.as_data_source("val")
    record = source[0]
    original = episodes["ep2"]
    assert record["episode_metadata"] == {
        "scene": b"kitchen", "task_family": b"eggs_in_carton", "embodiment": b"e", "setting": b"pretrain",
        "target": b"", "seed": 2, "expert_success": True}
    steps = record["steps"]
    assert len(steps) == 5
    observation_keys = {"image", "wrist_image"} | ({"state"} if state_dim else set())
    for t in range(5):
        step = steps[t]
        assert set(step) == {"observation", "action", "language_instruction", "subtask_instruction", "phase",
                             "reward", "discount", "is_first", "is_last", "is_terminal"}
        assert set(step["observation"]) == observation_keys
        np.testing.assert_array_equal(step["observation"]["image"], original.image[t])  # PNG is lossless
        np.testing.assert_array_equal(step["observation"]["wrist_image"], original.wrist_image[t])
        assert step["observation"]["image"].dtype == np.uint8
        if state_dim:
            assert step["observation"]["state"].dtype == np.float32
            np.testing.assert_array_equal(step["observation"]["state"], original.state[t])
        assert step["action"].dtype == np.float32 and step["action"].shape == (ACTION_DIM,)
        np.testing.assert_array_equal(step["action"], original.action[t])
        assert step["language_instruction"] == b"put the red egg in the carton"
        assert step["subtask_instruction"] == original.subtasks[t].encode()
        assert step["phase"] == original.phase[t] and step["phase"].dtype == np.int32
        assert step["reward"].dtype == np.float32 and step["discount"].dtype == np.float32
        assert bool(step["is_first"]) == (t == 0)
        assert bool(step["is_last"]) == bool(step["is_terminal"]) == (t == 4)
        assert float(step["discount"]) == (0.0 if t == 4 else 1.0)

    features = builder.info.features["steps"].feature
    assert features["observation"]["image"].shape == (SIZE, SIZE, 3)
    if state_dim:
        assert features["observation"]["state"].shape == (state_dim,)
    else:
        assert "state" not in features["observation"]


def test_wrong_shape_names_the_feature(tmp_path):
    spec = rlds_writer.DatasetSpec(embodiment="e", image_size=SIZE, state_dim=3, action_dim=ACTION_DIM)
    bad = _episode(0, state_dim=2)
    with pytest.raises(ValueError, match="state has shape"):
        rlds_writer.to_rlds_example(bad, spec)
