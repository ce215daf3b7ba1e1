"""The input pipeline: config.data -> a grain iterator of per-process numpy batches.

    it = make_iterator(config)            # this JAX process's shard
    batch = next(it)                      # dict of numpy arrays, the layout of BUILD_NOTES.md
    global_batch = to_global_batch(batch, NamedSharding(mesh, P(("data", "fsdp"))))
    state = it.get_state(); it.set_state(state)   # or orbax: grain.checkpoint.CheckpointSave(it)

Graph (all grain MapDataset, so every element has a fixed global position):
  per mixture component: source(StepSamples) -> shuffle(seed) -> repeat()   (epochs reshuffled)
  -> MapDataset.mix(components, weights)   -> [random_map(Augment)]   -> batch(local batch)
  -> [process_index :: process_count]      -> to_iter_dataset()       -> [mp_prefetch(workers)]
Slicing whole local batches after batching means process p's k-th batch is the p-th block of the
single-process stream's k-th global batch: the processes' batches, concatenated in process order
(which is what make_array_from_process_local_data does), equal the one-process batch exactly.
"""
from __future__ import annotations

import os

import grain
import numpy as np

from h2r.data import augment, mixture, sources, stats as stats_lib, tokenizer as tokenizer_lib
from h2r.errors import DataError

# config.data keys beyond the contract's, with their defaults.
DEFAULTS = {
    "norm": "quantile",          # quantile | mean_std
    "augment": False,
    "subset_seed": 0,            # the nested diversity subsets' permutation (fixed across levels)
    "read_threads": 4,           # grain ReadOptions.num_threads
    "prefetch_buffer_size": 64,  # grain ReadOptions.prefetch_buffer_size (elements = batches)
    "mixture": "",
    "image_size": 0,             # used when config.model.image_size is absent
    "split": "train",
    # Decode every step's views once into DIR/<dataset>/frames_*.npy (memory-mapped): True,
    # False, or "auto" = when the file would be under frame_cache_max_gb.
    "frame_cache": "auto",
    "frame_cache_max_gb": 4.0,
}


def _get(data, key, default=None):
    if key in data:
        return data[key]
    return DEFAULTS.get(key, default)


def embodiment_names() -> list[str]:
    """The catalogue's embodiments in order (embodiment_id indexes this); [] before it exists."""
    try:
        from h2r.world import catalogue  # noqa: PLC0415
    except ImportError:
        return []
    return [e.name for e in catalogue.EMBODIMENTS]


def _catalogue_embodiment(name: str):
    try:
        from h2r.world import catalogue  # noqa: PLC0415
        return catalogue.embodiment(name)
    except Exception:  # not in the catalogue (a real dataset's robot), or no catalogue yet
        return None


def action_dim_mask(dataset, max_action_dim: int) -> np.ndarray:
    """True for the dataset's own action dims; False for padding and for a human's grip."""
    if dataset.action_dim > max_action_dim:
        raise DataError(f"dataset {dataset.name!r}: action dim {dataset.action_dim} exceeds "
                        f"config.data.max_action_dim={max_action_dim}")
    mask = np.zeros(max_action_dim, bool)
    mask[:dataset.action_dim] = True
    embodiment = dataset.embodiment()
    names = dataset.info_metadata.get("action_names") or dataset.layout.action_names
    info = _catalogue_embodiment(embodiment)
    if names is None and info is not None:
        names = info.action_names
    is_human = embodiment == mixture.HUMAN or bool(getattr(info, "is_human", False))
    if is_human and names:  # hand tracking gives no grip signal: never train on it
        for i, name in enumerate(list(names)[:dataset.action_dim]):
            if "grip" in name:
                mask[i] = False
    return mask


def _pad(x: np.ndarray, width: int, what: str, dataset) -> np.ndarray:
    if x.shape[-1] > width:
        raise DataError(f"dataset {dataset.name!r}: {what} dim {x.shape[-1]} exceeds config.data.max_{what}_dim={width}")
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, width - x.shape[-1])]).astype(np.float32)


class StepSamples:
    """A grain random-access source: element i is the sample of the i-th selected step.

    Everything but the images is precomputed once (normalized, padded, tokenized); an element
    read decodes only that step's two images from its episode record.
    """

    def __init__(self, dataset, steps: np.ndarray, norm_stats: dict, tok, data, image_size: int,
                 component: mixture.Component, embodiment_id: int):
        index = dataset.index
        mode = _get(data, "norm")
        self.dataset = dataset
        self.steps = np.asarray(steps, np.int64)
        self.actions = _pad(stats_lib.normalize(index.action, norm_stats, "action", mode),
                            int(data.max_action_dim), "action", dataset)
        self.state = _pad(stats_lib.normalize(index.state, norm_stats, "state", mode),
                          int(data.max_state_dim), "state", dataset)
        self.state_mask = np.arange(int(data.max_state_dim)) < dataset.state_dim
        self.action_dim_mask = action_dim_mask(dataset, int(data.max_action_dim))
        texts = index.texts.tolist()
        self.instruction_ids = tok.encode_batch(texts, int(data.max_instruction_len))
        self.subtask_ids = tok.encode_batch(texts, int(data.max_subtask_len))
        self.horizon = int(data.action_horizon)
        self.image_size = image_size
        self.frames_path = dataset.frame_cache(image_size) if _use_frame_cache(data, dataset, image_size) else None
        self._frames = None
        self.has_wrist_view = dataset.layout.wrist_image is not None
        self.use_wrist = bool(_get(data, "use_wrist", True))
        self.embodiment_id = np.int32(embodiment_id)
        self.loss_weights = (np.float32(component.action_loss_weight), np.float32(component.subtask_loss_weight))

    def __len__(self) -> int:
        return len(self.steps)

    def __getstate__(self):  # worker processes reopen the memory map instead of copying it
        state = dict(self.__dict__)
        state["_frames"] = None
        return state

    def _views(self, episode: int, t: int, step: int):
        if self.frames_path is None:
            image, wrist = self.dataset.images(episode, t)
            image = augment.resize(image, self.image_size)
            return image, (augment.resize(wrist, self.image_size) if wrist is not None else None)
        if self._frames is None:
            self._frames = np.load(self.frames_path, mmap_mode="r")
        views = np.array(self._frames[step])  # copy out of the map
        return views[0], (views[1] if self.has_wrist_view else None)

    def __getitem__(self, i: int) -> dict:
        index = self.dataset.index
        step = int(self.steps[i])
        episode, t = int(index.step_episode[step]), int(index.step_t[step])
        last = int(index.episode_start[episode] + index.episode_length[episode] - 1)
        future = step + np.arange(self.horizon)
        valid = future <= last
        actions = self.actions[np.minimum(future, last)] * valid[:, None]
        image, wrist = self._views(episode, t, step)
        has_wrist = wrist is not None and self.use_wrist
        wrist = wrist if has_wrist else np.zeros_like(image)
        return {
            "image": image,
            "wrist_image": wrist,
            "image_mask": np.array([True, has_wrist]),
            "state": self.state[step],
            "state_mask": self.state_mask,
            "instruction": self.instruction_ids[index.instruction[step]],
            "subtask": self.subtask_ids[index.subtask[step]],
            "actions": actions.astype(np.float32),
            "action_valid": valid,
            "action_dim_mask": self.action_dim_mask,
            "embodiment_id": self.embodiment_id,
            "action_loss_weight": self.loss_weights[0],
            "subtask_loss_weight": self.loss_weights[1],
        }


def _use_frame_cache(data, dataset, image_size: int) -> bool:
    setting = _get(data, "frame_cache")
    if setting == "auto":
        size_gb = dataset.index.num_steps * 2 * image_size * image_size * 3 / 2**30
        return size_gb <= float(_get(data, "frame_cache_max_gb"))
    if setting not in (True, False):
        raise DataError(f"config.data.frame_cache={setting!r}; expected True, False or 'auto'")
    return setting


def image_size_of(config, datasets) -> int:
    size = config.get("model", {}).get("image_size", 0) if hasattr(config, "get") else 0
    size = size or _get(config.data, "image_size")
    if size:
        return int(size)
    native = {d.name: d._image_features[d.layout.image].shape[0] for d in datasets}
    if len(set(native.values())) != 1:
        raise DataError(f"datasets have different image sizes {native}: set config.model.image_size")
    return int(next(iter(native.values())))


def open_datasets(data, split: str = "train") -> dict:
    """The datasets a config may read, indexed (built and cached on first use)."""
    available = sources.list_datasets(data.dir)
    if not available:
        raise DataError(f"no tfds datasets under config.data.dir={data.dir!r}")
    names = mixture.required_datasets(data, list(available))
    missing = [n for n in names if n not in available]
    if missing:
        raise DataError(f"datasets {missing} not found under {data.dir!r} (found {sorted(available)})")
    return {name: sources.RLDSDataset(available[name], split) for name in names}


def load_tokenizer(data_dir: str):
    path = tokenizer_lib.path_for(data_dir)
    if not os.path.exists(path):
        stats_lib.prepare(data_dir)  # fits and saves it (and the stats) once
    return tokenizer_lib.Tokenizer.load(path)


def norm_stats(config) -> dict:
    """{dataset name: stats} the pipeline normalizes with (the trainer saves them with its run)."""
    datasets = open_datasets(config.data, "train")
    return {name: stats_lib.ensure(dataset) for name, dataset in datasets.items()}


def _component_seed(seed: int, k: int) -> int:
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def make_dataset(config, process_index: int | None = None, process_count: int | None = None,
                 split: str | None = None) -> grain.IterDataset:
    """The grain dataset behind make_iterator (exposed for benchmarks and inspection)."""
    data = config.data
    split = split or _get(data, "split")
    if process_index is None or process_count is None:
        shard = grain.sharding.ShardByJaxProcess(drop_remainder=True)
        process_index, process_count = shard.shard_index, shard.shard_count
    global_batch = int(config.train.batch_size)
    if global_batch % process_count:
        raise DataError(f"config.train.batch_size={global_batch} is not divisible by {process_count} processes")
    local_batch = global_batch // process_count

    datasets = open_datasets(data, split)
    train_stats = norm_stats(config) if split != "train" else {
        n: stats_lib.ensure(d) for n, d in datasets.items()}
    tok = load_tokenizer(data.dir)
    components = mixture.components(data, datasets)
    size = image_size_of(config, [datasets[c.dataset] for c in components])
    catalogue = embodiment_names()
    seed = int(data.seed)
    parts, weights = [], []
    for k, component in enumerate(components):
        dataset = datasets[component.dataset]
        embodiment = dataset.embodiment()
        source = StepSamples(dataset, mixture.steps_of(dataset, component.episodes), train_stats[component.dataset],
                             tok, data, size, component,
                             catalogue.index(embodiment) if embodiment in catalogue else -1)
        parts.append(grain.MapDataset.source(source).shuffle(seed=_component_seed(seed, k)).repeat())
        weights.append(component.weight)
    ds = parts[0] if len(parts) == 1 else grain.MapDataset.mix(parts, weights=weights)
    if _get(data, "augment"):
        ds = ds.random_map(augment.Augment(), seed=_component_seed(seed, 10_000))
    ds = ds.batch(local_batch, drop_remainder=True)[process_index::process_count]
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=int(_get(data, "read_threads")),
                                              prefetch_buffer_size=int(_get(data, "prefetch_buffer_size"))))
    workers = int(_get(data, "worker_count", 0))
    if workers > 0:
        _absl_flags_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return ds


def _absl_flags_parsed() -> None:
    # grain worker processes read absl flags; outside absl.app.run they are unparsed (grain#1355).
    from absl import flags  # noqa: PLC0415
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def make_iterator(config, process_index: int | None = None, process_count: int | None = None,
                  split: str | None = None) -> grain.DatasetIterator:
    """An endless iterator of this process's batches (numpy), with get_state/set_state."""
    return iter(make_dataset(config, process_index, process_count, split))


def to_global_batch(local_batch: dict, sharding) -> dict:
    """Per-process numpy batches -> global jax.Arrays (leading axis split over `sharding`).

    `sharding` is one jax.sharding.Sharding for every key (e.g. NamedSharding(mesh, P('data'))),
    or a dict of them with the batch's keys.
    """
    import jax  # noqa: PLC0415

    if isinstance(sharding, dict):
        return {k: jax.make_array_from_process_local_data(sharding[k], v) for k, v in local_batch.items()}
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}
