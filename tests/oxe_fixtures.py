"""Tiny RLDS datasets written with real tfds builders, for the input-pipeline tests.

Three schemas: ours (`h2r_<embodiment>`, the RLDS contract of BUILD_NOTES.md) and two real
Open X-Embodiment ones, reproduced with their true feature names, dtypes and shapes (only the
images are tiny): `bridge` (OXE bridge 0.1.0) and `fractal20220817_data` (RT-1).

`write_dataset(root, name, features, episodes)` writes `root/name/1.0.0/` through a
`tfds.core.GeneratorBasedBuilder` (array_record by default, tfrecord on request), exactly the
way any RLDS dataset is laid out on disk.
"""
from __future__ import annotations

import io

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

F = tfds.features


def _png(array: np.ndarray, format="PNG") -> bytes:
    # Encoded bytes (not raw arrays) so that writing needs no TensorFlow (STACK_NOTES).
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


def write_dataset(root, name, features, episodes_by_split, file_format="array_record"):
    """Writes a tfds dataset `root/name/1.0.0` with the given FeaturesDict and episodes."""

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {split: _generate(eps) for split, eps in episodes_by_split.items()}

    def _generate(episodes):
        yield from enumerate(episodes)

    def _generate_examples(self):  # required by the abstract base, unused
        raise NotImplementedError

    # Not registered: tests write the same dataset name many times per session.
    with tfds.core.registered.skip_registration():
        Builder = type(f"Fixture_{name}", (tfds.core.GeneratorBasedBuilder,), {
            "name": name, "VERSION": tfds.core.Version("1.0.0"),
            "_info": _info, "_split_generators": _split_generators,
            "_generate_examples": _generate_examples})
    builder = Builder(data_dir=str(root), file_format=file_format)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
    return builder.data_dir


# ----------------------------------------------------------------------------- h2r schema

def h2r_features(image_size=16, state_dim=4, action_dim=3):
    observation = {
        "image": F.Image(shape=(image_size, image_size, 3), encoding_format="png"),
        "wrist_image": F.Image(shape=(image_size, image_size, 3), encoding_format="png"),
    }
    if state_dim:  # the human has no proprio: no state feature at all (as h2r/data/rlds_writer.py)
        observation["state"] = F.Tensor(shape=(state_dim,), dtype=np.float32)
    return F.FeaturesDict({
        "steps": tfds.features.Dataset({
            "observation": observation,
            "action": F.Tensor(shape=(action_dim,), dtype=np.float32),
            "language_instruction": F.Text(),
            "subtask_instruction": F.Text(),
            "phase": F.Scalar(dtype=np.int32),
            "reward": F.Scalar(dtype=np.float32),
            "discount": F.Scalar(dtype=np.float32),
            "is_first": F.Scalar(dtype=np.bool_),
            "is_last": F.Scalar(dtype=np.bool_),
            "is_terminal": F.Scalar(dtype=np.bool_),
        }),
        "episode_metadata": {
            "scene": F.Text(),
            "task_family": F.Text(),
            "embodiment": F.Text(),
            "setting": F.Text(),
            "target": F.Text(),
            "seed": F.Scalar(dtype=np.int64),
            "expert_success": F.Scalar(dtype=np.bool_),
        },
    })


def h2r_episode(rng, *, scene, task_family, embodiment, setting="pretrain", target="", seed=0,
                length=6, image_size=16, state_dim=4, action_dim=3, episode_code=0.0):
    """One episode. Every action's first dim is `episode_code + t/100` so tests can tell
    exactly which episode and step a sample came from."""
    steps = []
    instruction = f"do {task_family} in {scene}"
    for t in range(length):
        action = rng.normal(size=action_dim).astype(np.float32)
        action[0] = episode_code + t / 100.0
        phase = min(t * 2 // length, 1)
        image = np.full((image_size, image_size, 3), (t * 20) % 256, np.uint8)
        image[..., 1] = int(episode_code) % 256
        observation = {"image": _png(image), "wrist_image": _png(255 - image)}
        if state_dim:
            observation["state"] = rng.normal(size=state_dim).astype(np.float32)
        steps.append({
            "observation": observation,
            "action": action,
            "language_instruction": instruction,
            "subtask_instruction": ["reach the thing", "place the thing"][phase],
            "phase": np.int32(phase),
            "reward": np.float32(t == length - 1),
            "discount": np.float32(1.0),
            "is_first": t == 0,
            "is_last": t == length - 1,
            "is_terminal": t == length - 1,
        })
    return {"steps": steps, "episode_metadata": {
        "scene": scene, "task_family": task_family, "embodiment": embodiment, "setting": setting,
        "target": target, "seed": np.int64(seed), "expert_success": True}}


def write_h2r_world(root, *, robot="robot_a", other_robot="robot_b", scenes=4, tasks=2,
                    episodes_per_combo=2, length=6, image_size=16, human=True):
    """A miniature h2r dataset directory: the target robot's pretraining grid (scenes x tasks),
    another robot, the target-robot co-training data and the human data for setting `sort`."""
    rng = np.random.default_rng(0)
    code = iter(range(1, 100000))

    def episodes(embodiment, setting, target, combos, action_dim):
        out = []
        for scene, task in combos:
            for k in range(episodes_per_combo):
                out.append(h2r_episode(
                    rng, scene=scene, task_family=task, embodiment=embodiment, setting=setting,
                    target=target, seed=k, length=length + k % 3, image_size=image_size,
                    state_dim=0 if embodiment == "human" else 4, action_dim=action_dim,
                    episode_code=float(next(code))))
        return out

    grid = [(f"scene{s}", f"task{t}") for s in range(scenes) for t in range(tasks)]
    target_combo = [("scene0", "sort")]
    robot_eps = episodes(robot, "pretrain", "", grid, 3) + episodes(
        robot, "target-robot", "sort", target_combo, 3)
    write_dataset(root, f"h2r_{robot}", h2r_features(image_size, 4, 3),
                  {"train": robot_eps, "val": robot_eps[:2]})
    other_eps = episodes(other_robot, "pretrain", "", grid[:2], 4)
    write_dataset(root, f"h2r_{other_robot}", h2r_features(image_size, 4, 4),
                  {"train": other_eps, "val": other_eps[:1]})
    if human:
        human_eps = episodes("human", "target-human", "sort", target_combo * 3, 2)
        write_dataset(root, "h2r_human", h2r_features(image_size, 0, 2),
                      {"train": human_eps, "val": human_eps[:1]})
    return root


# ------------------------------------------------------------- Open X-Embodiment schemas

def bridge_features(height=12, width=16):
    """OXE `bridge` 0.1.0 (real image 480x640)."""
    return F.FeaturesDict({"steps": tfds.features.Dataset({
        "action": {
            "open_gripper": F.Scalar(dtype=np.bool_),
            "rotation_delta": F.Tensor(shape=(3,), dtype=np.float32),
            "terminate_episode": F.Scalar(dtype=np.float32),
            "world_vector": F.Tensor(shape=(3,), dtype=np.float32),
        },
        "is_first": F.Scalar(dtype=np.bool_),
        "is_last": F.Scalar(dtype=np.bool_),
        "is_terminal": F.Scalar(dtype=np.bool_),
        "observation": {
            "image": F.Image(shape=(height, width, 3), encoding_format="jpeg"),
            "natural_language_embedding": F.Tensor(shape=(512,), dtype=np.float32),
            "natural_language_instruction": F.Text(),
            "state": F.Tensor(shape=(7,), dtype=np.float32),
        },
        "reward": F.Scalar(dtype=np.float32),
    })})


def bridge_episode(rng, length=5, height=12, width=16, instruction="put the spoon in the pot"):
    steps = []
    for t in range(length):
        steps.append({
            "action": {"open_gripper": bool(t % 2), "rotation_delta": rng.normal(size=3).astype(np.float32),
                       "terminate_episode": np.float32(t == length - 1),
                       "world_vector": rng.normal(size=3).astype(np.float32)},
            "is_first": t == 0, "is_last": t == length - 1, "is_terminal": t == length - 1,
            "observation": {
                "image": _png(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), "JPEG"),
                "natural_language_embedding": np.zeros(512, np.float32),
                "natural_language_instruction": instruction,
                "state": rng.normal(size=7).astype(np.float32)},
            "reward": np.float32(t == length - 1)})
    return {"steps": steps}


def fractal_features(height=12, width=15):
    """OXE `fractal20220817_data` 0.1.0, RT-1 (real image 256x320)."""
    vec = lambda *shape: F.Tensor(shape=shape, dtype=np.float32)  # noqa: E731
    return F.FeaturesDict({"steps": tfds.features.Dataset({
        "action": {
            "base_displacement_vector": vec(2),
            "base_displacement_vertical_rotation": vec(1),
            "gripper_closedness_action": vec(1),
            "rotation_delta": vec(3),
            "terminate_episode": F.Tensor(shape=(3,), dtype=np.int32),
            "world_vector": vec(3),
        },
        "is_first": F.Scalar(dtype=np.bool_),
        "is_last": F.Scalar(dtype=np.bool_),
        "is_terminal": F.Scalar(dtype=np.bool_),
        "observation": {
            "base_pose_tool_reached": vec(7),
            "gripper_closed": vec(1),
            "gripper_closedness_commanded": vec(1),
            "height_to_bottom": vec(1),
            "image": F.Image(shape=(height, width, 3), encoding_format="jpeg"),
            "natural_language_embedding": vec(512),
            "natural_language_instruction": F.Text(),
            "orientation_box": vec(2, 3),
            "orientation_start": vec(4),
            "robot_orientation_positions_box": vec(3, 3),
            "rotation_delta_to_go": vec(3),
            "src_rotation": vec(4),
            "vector_to_go": vec(3),
            "workspace_bounds": vec(3, 3),
        },
        "reward": F.Scalar(dtype=np.float32),
    })})


def fractal_episode(rng, length=5, height=12, width=15, instruction="pick coke can"):
    vec = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    steps = []
    for t in range(length):
        steps.append({
            "action": {"base_displacement_vector": vec(2), "base_displacement_vertical_rotation": vec(1),
                       "gripper_closedness_action": vec(1), "rotation_delta": vec(3),
                       "terminate_episode": np.array([0, int(t < length - 1), int(t == length - 1)], np.int32),
                       "world_vector": vec(3)},
            "is_first": t == 0, "is_last": t == length - 1, "is_terminal": t == length - 1,
            "observation": {
                "base_pose_tool_reached": vec(7), "gripper_closed": vec(1),
                "gripper_closedness_commanded": vec(1), "height_to_bottom": vec(1),
                "image": _png(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), "JPEG"),
                "natural_language_embedding": vec(512), "natural_language_instruction": instruction,
                "orientation_box": vec(2, 3), "orientation_start": vec(4),
                "robot_orientation_positions_box": vec(3, 3), "rotation_delta_to_go": vec(3),
                "src_rotation": vec(4), "vector_to_go": vec(3), "workspace_bounds": vec(3, 3)},
            "reward": np.float32(t == length - 1)})
    return {"steps": steps}


def write_oxe(root, file_format="array_record", episodes=3):
    rng = np.random.default_rng(1)
    write_dataset(root, "bridge", bridge_features(),
                  {"train": [bridge_episode(rng, length=4 + i) for i in range(episodes)]}, file_format)
    write_dataset(root, "fractal20220817_data", fractal_features(),
                  {"train": [fractal_episode(rng, length=4 + i) for i in range(episodes)]}, file_format)
    return root


def pipeline_config(data_dir, **data_overrides):
    """experiments/train/pipeline_only.py pointed at `data_dir`, for the fixture world (16 px)."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "experiments", "train", "pipeline_only.py")
    spec = importlib.util.spec_from_file_location("pipeline_only", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.model.image_size = 16
    config.data.dir = str(data_dir)
    config.data.target = "sort"
    for key, value in data_overrides.items():
        config.data[key] = value
    return config
