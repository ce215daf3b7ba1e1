"""RLDS datasets on disk -> random access by (episode, step).

A tfds array_record data source returns one whole episode per record. Global shuffling at the
step level needs to know every episode's length, so the first time a dataset is opened we read
it once and cache, next to it (`DIR/<name>/index_<version>_<split>.npz`), a flat step index
together with everything small about each step, already standardized (state, action, text ids
into a table of unique strings) and the episode metadata. Sampling a step later reads only its
episode's record and decodes just that step's images; stats and the tokenizer come from the
cache without touching the images again.

The cache is keyed by the shard files' names, sizes and mtimes: rewriting a dataset rebuilds it.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
import time
import zipfile

import numpy as np

from h2r import files
from h2r.data import standardize
from h2r.errors import DataError

INDEX_FORMAT = 1


_last_progress: dict[str, float] = {}


def progress(label: str, done: int, total: int, start: float, *, every: float = 2.0) -> None:
    """Prints `label: done/total, rate, ETA` to stderr at most every `every` seconds, and at the end."""
    now = time.time()
    if done < total and now - _last_progress.get(label, 0.0) < every:
        return
    _last_progress[label] = now
    rate = done / max(now - start, 1e-9)
    eta = (total - done) / rate if rate > 0 else float("inf")
    print(f"{label}: {done}/{total} episodes, {rate:.1f}/s, ETA {eta:.0f}s", file=sys.stderr, flush=True)


def find_version_dir(path: str) -> str:
    """`path` is a version dir (has dataset_info.json) or a dataset dir holding versions."""
    if os.path.isfile(os.path.join(path, "dataset_info.json")):
        return path
    if os.path.isdir(path):
        versions = [v for v in os.listdir(path)
                    if os.path.isfile(os.path.join(path, v, "dataset_info.json"))]
        if versions:
            best = max(versions, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))
            return os.path.join(path, best)
    raise DataError(f"{path!r} is not a tfds dataset: no dataset_info.json in it or in a version folder")


def open_builder(version_dir: str):
    """tfds.builder_from_directory, with a DataError naming the metadata file that does not parse
    (tfds raises a protobuf/JSON error that names no file)."""
    import tensorflow_datasets as tfds  # noqa: PLC0415

    try:
        return tfds.builder_from_directory(version_dir)
    except Exception as e:  # noqa: BLE001  (protobuf ParseError, JSONDecodeError, ...)
        bad = []
        for name in ("dataset_info.json", "features.json"):
            try:
                with open(os.path.join(version_dir, name)) as f:
                    json.load(f)
            except (OSError, ValueError) as err:
                bad.append(f"{os.path.join(version_dir, name)} ({type(err).__name__}: {err})")
        what = "; ".join(bad) or f"{version_dir} ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        raise DataError(f"cannot read the tfds metadata of dataset {version_dir}: {what}; regenerate or "
                        "restore the dataset") from None


def list_datasets(root: str) -> dict[str, str]:
    """Dataset name -> version dir for every tfds dataset directly under `root`."""
    if not os.path.isdir(root):
        raise DataError(f"data directory {root!r} does not exist")
    found = {}
    for name in sorted(os.listdir(root)):
        try:
            found[name] = find_version_dir(os.path.join(root, name))
        except DataError:
            continue  # tokenizer.json, downloads/, ...
    return found


@dataclasses.dataclass
class StepIndex:
    """Per-step arrays (N steps) and per-episode arrays (E episodes) of one dataset split."""
    step_episode: np.ndarray     # int32 [N] episode of each step
    step_t: np.ndarray           # int32 [N] position in its episode
    episode_start: np.ndarray    # int64 [E] first step of each episode
    episode_length: np.ndarray   # int32 [E]
    state: np.ndarray            # float32 [N, S] standardized
    action: np.ndarray           # float32 [N, A] standardized
    instruction: np.ndarray      # int32 [N] into texts
    subtask: np.ndarray          # int32 [N] into texts
    texts: np.ndarray            # str [U] unique strings
    metadata: dict               # key -> str [E] (h2r: scene, task_family, embodiment, setting, target)

    @property
    def num_steps(self) -> int:
        return len(self.step_t)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_start)


class RLDSDataset:
    """One RLDS dataset split: its layout, its step index, and image reads by (episode, step).

    Picklable (grain worker processes): the tfds data source is reopened lazily in each process.
    """

    def __init__(self, path: str, split: str = "train", kind: str | None = None, *, refresh: bool = False):
        import tensorflow_datasets as tfds  # noqa: PLC0415

        self.version_dir = find_version_dir(path)
        self.dataset_dir = os.path.dirname(self.version_dir)
        self.version = os.path.basename(self.version_dir)
        self.split = split
        builder = open_builder(self.version_dir)
        self.name = builder.info.name
        self.kind = kind or standardize.kind_of(self.name)
        self.layout = standardize.layout(self.kind)
        if split not in builder.info.splits:
            raise DataError(f"dataset {self.name!r} ({self.version_dir}) has no split {split!r}; "
                            f"it has {sorted(builder.info.splits)}")
        self.shard_files = [os.path.join(self.version_dir, f) for f in builder.info.splits[split].filenames]
        self.shard_lengths = list(builder.info.splits[split].shard_lengths)
        self.info_metadata = dict(builder.info.metadata or {})
        features = builder.info.features
        standardize.validate_schema(
            self.name, self.layout, features["steps"].feature,
            features["episode_metadata"] if "episode_metadata" in features else None)
        image_paths = [p for p in (self.layout.image, self.layout.wrist_image) if p]
        self._image_features = {p: standardize._feature_at(features["steps"].feature, p) for p in image_paths}
        # Reading = raw record bytes + tfds deserialization with a FeaturesDict of only the
        # features needed: the images of a step (sampling), or everything else (indexing).
        # tfds.decode.PartialDecoding would be the tool, but in tfds 4.9.10 it does not descend
        # into the RLDS `steps` Dataset feature. Parsing the subset is 2-3x faster per record.
        self._views_features = _subset(features, lambda path: path in {f"steps/{p}" for p in image_paths})
        self._numbers_features = _subset(features, lambda path: path not in {f"steps/{p}" for p in image_paths})
        self._view_decoders = standardize.image_decoders(self.layout)
        self._source = None
        self.index = self._load_or_build_index(refresh)

    # -- raw access -------------------------------------------------------------------------
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_source"] = None
        return state

    @property
    def source(self):
        """The split's tfds data source, returning raw record bytes."""
        if self._source is None:
            import tensorflow_datasets as tfds  # noqa: PLC0415
            builder = tfds.builder_from_directory(self.version_dir)
            try:
                self._source = builder.as_data_source(
                    self.split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
            except Exception as e:  # array_record raises plain RuntimeError/ValueError on bad files
                raise DataError(f"dataset {self.name!r}: cannot open split {self.split!r} "
                                f"({', '.join(self.shard_files)}): {e}") from e
        return self._source

    def shard_of(self, episode: int) -> str:
        bounds = np.cumsum(self.shard_lengths)
        return self.shard_files[int(np.searchsorted(bounds, episode, side="right"))]

    def read_episode(self, episode: int, views: bool = False) -> dict:
        """Episode `episode` as tfds decodes it: the views only (encoded) or everything but them."""
        features = self._views_features if views else self._numbers_features
        try:
            return features.deserialize_example_np(
                self.source[int(episode)], decoders=self._view_decoders if views else None)
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"dataset {self.name!r}: cannot read episode {episode} from shard "
                            f"{self.shard_of(episode)} (is the array_record shard truncated or corrupt, "
                            f"or does it not match features.json?): {type(e).__name__}: {e}") from e

    def images(self, episode: int, t: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Head and wrist views (uint8 [H, W, 3]; wrist None if the dataset has none) of one step."""
        step = self.read_episode(episode, views=True)["steps"][int(t)]
        return self._decode_views(step, episode, t)

    def _decode_views(self, step: dict, episode: int, t: int):
        views = []
        for path in (self.layout.image, self.layout.wrist_image):
            if path is None:
                views.append(None)
                continue
            data = standardize._get(step, path)
            try:
                image = self._image_features[path].decode_example_np(data)
            except Exception as e:
                raise DataError(f"dataset {self.name!r}: episode {episode} step {t}: cannot decode "
                                f"'steps/{path}': {e}") from e
            views.append(np.asarray(image))
        return views[0], views[1]

    # -- the cached index -------------------------------------------------------------------
    @property
    def index_path(self) -> str:
        return os.path.join(self.dataset_dir, f"index_{self.version}_{self.split}.npz")

    def _fingerprint(self) -> str:
        parts = [f"format={INDEX_FORMAT}", f"kind={self.kind}"]
        for f in self.shard_files:
            if not os.path.exists(f):
                raise DataError(f"dataset {self.name!r}: shard file {f} listed in dataset_info.json is missing")
            st = os.stat(f)
            parts.append(f"{os.path.basename(f)}:{st.st_size}:{st.st_mtime_ns}")
        return "|".join(parts)

    def _load_or_build_index(self, refresh: bool) -> StepIndex:
        fingerprint = self._fingerprint()
        if not refresh and os.path.exists(self.index_path):
            try:
                with np.load(self.index_path, allow_pickle=False) as f:
                    if str(f["fingerprint"]) == fingerprint:
                        meta_keys = json.loads(str(f["metadata_keys"]))
                        return StepIndex(**{k: f[k] for k in _ARRAY_FIELDS},
                                         metadata={k: f[f"metadata/{k}"] for k in meta_keys})
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:  # unreadable cache: rebuild
                print(f"{self.index_path}: unreadable ({e}); rebuilding the step index", file=sys.stderr)
        index = self._build_index()
        arrays = {k: getattr(index, k) for k in _ARRAY_FIELDS}
        arrays.update({f"metadata/{k}": v for k, v in index.metadata.items()})
        try:
            with files.atomic_write(self.index_path, "wb") as f:
                np.savez(f, fingerprint=np.array(fingerprint),
                         metadata_keys=np.array(json.dumps(list(index.metadata))), **arrays)
        except OSError as e:
            raise DataError(f"dataset {self.name!r}: cannot write its step index {self.index_path}: {e}") from e
        return index

    def _build_index(self) -> StepIndex:
        total = sum(self.shard_lengths)
        texts: dict[str, int] = {}
        columns = {k: [] for k in ("state", "action", "instruction", "subtask")}
        lengths, metadata = [], {k: [] for k in self.layout.metadata}
        start = time.time()
        for e in range(total):
            episode = self.read_episode(e)
            steps = episode["steps"]
            n = len(steps)
            if n == 0:
                raise DataError(f"dataset {self.name!r}: episode {e} has no steps")
            for t in range(n):
                try:
                    record = standardize.step_record(self.layout, steps[t])
                except DataError:
                    raise
                except Exception as err:
                    raise DataError(f"dataset {self.name!r}: episode {e} step {t}: cannot read the "
                                    f"step ({type(err).__name__}: {err})") from err
                for key in ("state", "action"):
                    columns[key].append(record[key])
                for key in ("instruction", "subtask"):
                    columns[key].append(texts.setdefault(record[key], len(texts)))
            lengths.append(n)
            for key in self.layout.metadata:
                value = episode["episode_metadata"][key]
                metadata[key].append(value.decode() if isinstance(value, bytes) else str(value))
            progress(f"indexing {self.name}/{self.split}", e + 1, total, start)
        self._check_consistent(columns)
        lengths = np.asarray(lengths, np.int32)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return StepIndex(
            step_episode=np.repeat(np.arange(total, dtype=np.int32), lengths),
            step_t=np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
            episode_start=starts, episode_length=lengths,
            state=np.stack(columns["state"]).astype(np.float32),
            action=np.stack(columns["action"]).astype(np.float32),
            instruction=np.asarray(columns["instruction"], np.int32),
            subtask=np.asarray(columns["subtask"], np.int32),
            texts=np.asarray(list(texts), dtype=str),
            metadata={k: np.asarray(v, dtype=str) for k, v in metadata.items()})

    def _check_consistent(self, columns) -> None:
        for key in ("state", "action"):
            sizes = {len(v) for v in columns[key]}
            if len(sizes) > 1:
                raise DataError(f"dataset {self.name!r}: '{key}' has varying sizes {sorted(sizes)} across steps")

    # -- the decoded-frame cache -------------------------------------------------------------
    def frames_path(self, size: int) -> str:
        return os.path.join(self.dataset_dir, f"frames_{self.version}_{self.split}_{size}px.npy")

    def frame_cache(self, size: int) -> str:
        """Path of a uint8 [N, 2, size, size, 3] .npy of every step's views (head, wrist; a missing
        wrist view is zeros), decoded and resized once, so sampling a step is a memory-mapped
        slice instead of a record parse and two PNG decodes. Built on first use (progress line),
        written to a temp file then renamed; rebuilt when the index is."""
        from h2r.data import transforms  # noqa: PLC0415

        path = self.frames_path(size)
        if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(self.index_path):
            try:  # a truncated or foreign file (e.g. a copy cut short) is rebuilt, never read
                shape = np.load(path, mmap_mode="r").shape
                if shape == (self.index.num_steps, 2, size, size, 3):
                    return path
                problem = f"shape {shape}, expected {(self.index.num_steps, 2, size, size, 3)}"
            except (OSError, ValueError) as e:
                problem = f"{type(e).__name__}: {e}"
            print(f"{path}: unreadable ({problem}); rebuilding the frame cache", file=sys.stderr, flush=True)
        start = time.time()
        with files.atomic_path(path) as tmp:
            frames = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                               shape=(self.index.num_steps, 2, size, size, 3))
            for e in range(self.index.num_episodes):
                steps = self.read_episode(e, views=True)["steps"]
                first = int(self.index.episode_start[e])
                for t in range(int(self.index.episode_length[e])):
                    head, wrist = self._decode_views(steps[t], e, t)
                    frames[first + t, 0] = transforms.resize(head, size)
                    if wrist is not None:
                        frames[first + t, 1] = transforms.resize(wrist, size)
                progress(f"decoding frames of {self.name}/{self.split} at {size}px", e + 1,
                         self.index.num_episodes, start)
            frames.flush()
            del frames  # closes the map before the rename
        return path

    # -- conveniences -----------------------------------------------------------------------
    @property
    def action_dim(self) -> int:
        return self.index.action.shape[1]

    @property
    def state_dim(self) -> int:
        return self.index.state.shape[1]

    def catalogue_embodiment(self):
        """The world catalogue's Embodiment of this dataset's robot, or None (a real dataset's robot)."""
        try:
            from h2r.world import catalogue  # noqa: PLC0415
            return catalogue.embodiment(self.embodiment())
        except Exception:  # not in the catalogue, or no catalogue
            return None

    def embodiment(self) -> str:
        if self.layout.embodiment:
            return self.layout.embodiment
        names = set(self.index.metadata.get("embodiment", ()))
        if len(names) != 1:
            raise DataError(f"dataset {self.name!r}: expected one embodiment in episode_metadata, found {sorted(names)}")
        return names.pop()


def _subset(features, keep, prefix=""):
    """The FeaturesDict of the features whose path `keep(path)` accepts (recursing into the
    nested FeaturesDicts and the RLDS `steps` Dataset)."""
    import tensorflow_datasets as tfds  # noqa: PLC0415

    out = {}
    for key, feature in features.items():
        path = f"{prefix}{key}"
        if type(feature) is tfds.features.Dataset:
            inner = _subset(feature.feature, keep, f"{path}/")
            if inner:
                out[key] = tfds.features.Dataset(inner)
        elif type(feature) is tfds.features.FeaturesDict:
            inner = _subset(feature, keep, f"{path}/")
            if inner:
                out[key] = inner
        elif keep(path):
            out[key] = feature
    return tfds.features.FeaturesDict(out) if prefix == "" else dict(out)


_ARRAY_FIELDS = ("step_episode", "step_t", "episode_start", "episode_length", "state", "action",
                 "instruction", "subtask", "texts")


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image  # noqa: PLC0415
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
