"""Writing episodes as an RLDS dataset: one tfds GeneratorBasedBuilder per embodiment, array_record.

The result reads like any RLDS dataset:
`tfds.builder_from_directory(DIR/h2r_<embodiment>/1.0.0).as_data_source("train")[i]` is one
episode, `{"steps": [...], "episode_metadata": {...}}` (schema: BUILD_NOTES.md, "RLDS on disk").

An episode handed to the writer is a plain dict of numpy arrays (`Episode` below); this module
turns it into the RLDS step layout, encodes images as PNG bytes with PIL (tfds would otherwise
need TensorFlow's encoder) and leaves sharding, shuffling and the dataset_info.json to tfds.

The human dataset has no `observation/state`: tfds 4.9.10 writes a zero-size Tensor but cannot
read it back (`reshape` with -1 and 0 in example_parser), and real egocentric human datasets have
no proprio either. Readers treat a missing state as state_dim 0.
"""
from __future__ import annotations

import dataclasses
import functools
import io
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

VERSION = "1.0.0"
SPLITS = ("train", "val")
METADATA_TEXT_KEYS = ("scene", "task_family", "embodiment", "setting", "target")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What fixes one embodiment's feature shapes (and what readers find in metadata.json)."""
    embodiment: str
    image_size: int
    state_dim: int
    action_dim: int
    # Written to the dataset's metadata.json so readers know what each dimension means.
    extra_metadata: Mapping[str, object] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return dataset_name(self.embodiment)


def dataset_name(embodiment: str) -> str:
    return f"h2r_{embodiment}"


def features(spec: DatasetSpec) -> tfds.features.FeaturesDict:
    image = tfds.features.Image(shape=(spec.image_size, spec.image_size, 3), encoding_format="png")
    observation = {"image": image, "wrist_image": image}
    if spec.state_dim > 0:  # see the module docstring: no zero-size state for the human
        observation["state"] = tfds.features.Tensor(shape=(spec.state_dim,), dtype=np.float32)
    step = {
        "observation": observation,
        "action": tfds.features.Tensor(shape=(spec.action_dim,), dtype=np.float32),
        "language_instruction": tfds.features.Text(),
        "subtask_instruction": tfds.features.Text(),
        "phase": tfds.features.Scalar(dtype=np.int32),
        "reward": tfds.features.Scalar(dtype=np.float32),
        "discount": tfds.features.Scalar(dtype=np.float32),
        "is_first": tfds.features.Scalar(dtype=np.bool_),
        "is_last": tfds.features.Scalar(dtype=np.bool_),
        "is_terminal": tfds.features.Scalar(dtype=np.bool_),
    }
    metadata = {key: tfds.features.Text() for key in METADATA_TEXT_KEYS}
    metadata["seed"] = tfds.features.Scalar(dtype=np.int64)
    metadata["expert_success"] = tfds.features.Scalar(dtype=np.bool_)
    return tfds.features.FeaturesDict({
        "steps": tfds.features.Dataset(step),
        "episode_metadata": metadata,
    })


@dataclasses.dataclass
class Episode:
    """One episode as numpy arrays, T steps (the last step's action is the final no-op/hold)."""
    image: np.ndarray          # uint8 [T, H, W, 3]
    wrist_image: np.ndarray    # uint8 [T, H, W, 3]
    state: np.ndarray          # float32 [T, S] (S may be 0)
    action: np.ndarray         # float32 [T, A]
    phase: np.ndarray          # int32 [T]
    reward: np.ndarray         # float32 [T]
    is_terminal: bool          # the last step is a terminal state (task solved)
    instruction: str
    subtasks: list[str]        # subtask text per step
    metadata: dict             # METADATA_TEXT_KEYS + seed + expert_success


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # compress_level=1: PNG stays lossless, and encoding is several times faster than the default.
    PIL.Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def to_rlds_example(episode: Episode, spec: DatasetSpec) -> dict:
    """An `Episode` in the tfds feature layout (images already PNG-encoded)."""
    length = len(episode.action)
    _check_shapes(episode, spec, length)
    steps = []
    for t in range(length):
        observation = {"image": png_bytes(episode.image[t]), "wrist_image": png_bytes(episode.wrist_image[t])}
        if spec.state_dim > 0:
            observation["state"] = episode.state[t]
        is_last = t == length - 1
        steps.append({
            "observation": observation,
            "action": episode.action[t],
            "language_instruction": episode.instruction,
            "subtask_instruction": episode.subtasks[t],
            "phase": episode.phase[t],
            "reward": episode.reward[t],
            # RLDS: discount 0 only on a terminal step (nothing follows it).
            "discount": np.float32(0.0 if (is_last and episode.is_terminal) else 1.0),
            "is_first": t == 0,
            "is_last": is_last,
            "is_terminal": bool(is_last and episode.is_terminal),
        })
    return {"steps": steps, "episode_metadata": dict(episode.metadata)}


def _check_shapes(episode: Episode, spec: DatasetSpec, length: int) -> None:
    size = spec.image_size
    expected = {
        "image": (length, size, size, 3), "wrist_image": (length, size, size, 3),
        "state": (length, spec.state_dim), "action": (length, spec.action_dim),
        "phase": (length,), "reward": (length,),
    }
    for key, shape in expected.items():
        got = np.shape(getattr(episode, key))
        if got != shape:
            raise ValueError(f"episode {episode.metadata.get('seed')} of {spec.name}: {key} has shape "
                             f"{got}, expected {shape}")
    if len(episode.subtasks) != length:
        raise ValueError(f"episode of {spec.name}: {len(episode.subtasks)} subtask texts for {length} steps")


# A split's episodes: a callable returning (unique key, Episode) pairs. tfds orders records by a
# hash of the key, so the files depend only on the keys and the episodes, not on generation order.
EpisodeSource = Callable[[], Iterable[tuple[str, Episode]]]


class _EpisodeBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Writes the episodes given at construction; one subclass per embodiment (the dataset name)."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {str(VERSION): "Procedural world demonstrations (h2r data generate)."}

    def __init__(self, *, spec: DatasetSpec, sources: Mapping[str, EpisodeSource], **kwargs):
        self._spec = spec
        self._sources = dict(sources)
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo(builder=self, ...) works for a builder outside a registered module
        # (dataset_info_from_configs raises NotADirectoryError there).
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"h2r procedural-world demonstrations of the {self._spec.embodiment!r} embodiment "
                        "(RLDS: steps + episode_metadata).",
            features=features(self._spec),
            metadata=tfds.core.MetadataDict(dict(self._spec.extra_metadata)),
            homepage="https://arxiv.org/abs/2512.22414",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: episodes come from the world
        return {split: self._generate_examples(split) for split in self._sources}

    def _generate_examples(self, split: str) -> Iterator[tuple[str, dict]]:
        for key, episode in self._sources[split]():
            yield key, to_rlds_example(episode, self._spec)


@functools.cache
def _builder_class(name: str) -> type:
    # The class name is irrelevant; `name` fixes the directory DIR/<name>/1.0.0.
    return type(f"Builder_{name}", (_EpisodeBuilder,), {"name": name}, skip_registration=True)


def write_dataset(data_dir: str, spec: DatasetSpec, sources: Mapping[str, EpisodeSource]) -> str:
    """Writes `data_dir/h2r_<embodiment>/1.0.0/` (array_record) and returns that path.

    tfds itself writes into an `incomplete.*` folder and renames it at the end; the caller puts
    `data_dir` in a temporary place as well, so that several datasets appear together.
    """
    builder = _builder_class(spec.name)(
        spec=spec, sources=sources, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(
        download_dir=f"{data_dir}/.downloads",
        download_config=tfds.download.DownloadConfig(try_download_gcs=False),
    )
    return str(builder.data_path)
