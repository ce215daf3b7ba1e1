"""The input pipeline: config.data -> a grain iterator of per-process numpy batches.

    it = make_iterator(config)            # this JAX process's shard
    batch = next(it)                      # dict of numpy arrays, the layout of BUILD_NOTES.md
    global_batch = to_global_batch(batch, NamedSharding(mesh, P(("data", "fsdp"))))
    state = it.get_state(); it.set_state(state)   # or orbax: grain.checkpoint.CheckpointSave(it)

Graph (all grain MapDataset until the end, so every element has a fixed global position):
  per mixture component: range(steps) -> shuffle(seed) -> repeat() -> (component, step)
  -> MapDataset.mix(components, weights) -> + global position -> batch(local batch size)
  -> map(ReadBatch: vectorized read, normalize, chunk, pad, [augment]) -> [process :: processes]
  -> to_iter_dataset(ReadOptions) -> [mp_prefetch(worker processes)]
Elements are small (component, step, position) refs until a whole batch is read at once:
numpy gathers over the cached index and decoded-frame cache instead of per-sample Python.
Slicing whole local batches means process p's k-th batch is the p-th block of the
single-process stream's k-th global batch: the processes' batches, concatenated in process order
(which is what make_array_from_process_local_data does), equal the one-process batch exactly.
MapDataset is lazy, so each process reads only its own batches.
"""
from __future__ import annotations

import os

import grain
import numpy as np

from h2r.data import augment, config as data_config, mixture, sources, stats as stats_lib, \
    tokenizer as tokenizer_lib, transforms
from h2r.errors import DataError

MIN_SHUFFLE_DOMAIN = 1 << 16

# config.data's keys and defaults: h2r/data/config.py (DEFAULTS, PIPELINE_DEFAULTS).
_get = data_config.get


def embodiment_names() -> list[str]:
    """The catalogue's embodiments in order (embodiment_id indexes this); [] before it exists."""
    try:
        from h2r.world import catalogue  # noqa: PLC0415
    except ImportError:
        return []
    return [e.name for e in catalogue.EMBODIMENTS]


def action_dim_mask(dataset, max_action_dim: int) -> np.ndarray:
    """True for the dataset's own action dims; False for padding and for a human's grip."""
    if dataset.action_dim > max_action_dim:
        raise DataError(f"dataset {dataset.name!r}: action dim {dataset.action_dim} exceeds "
                        f"config.data.max_action_dim={max_action_dim}")
    mask = np.zeros(max_action_dim, bool)
    mask[:dataset.action_dim] = True
    embodiment = dataset.embodiment()
    names = dataset.info_metadata.get("action_names") or dataset.layout.action_names
    info = dataset.catalogue_embodiment()
    if names is None and info is not None:
        names = info.action_names
    is_human = embodiment == mixture.HUMAN or bool(getattr(info, "is_human", False))
    if is_human and names:  # hand tracking gives no grip signal: never train on it
        for i, name in enumerate(list(names)[:dataset.action_dim]):
            if "grip" in name:
                mask[i] = False
    return mask


SUBGOALS = transforms.SUBGOALS   # hindsight subgoals per sample: the ends of the current and the next 3 subtasks


def subgoal_steps(subtask: np.ndarray, episode_last: np.ndarray, count: int = SUBGOALS) -> np.ndarray:
    """For every step, the steps whose states are its next `count` subgoals, int [N, count]: the
    first step after the current subtask segment ends (the state just after the grasp or the
    release), then after each following segment, capped at the episode's last step.

    Hindsight subgoals: where the robot's own proprio ended up when each remaining subtask was
    done, read from the recorded episode (no world state). Before the first grasp they say where
    every object of the task is. `subtask` int [N] (text ids; a segment is a run of equal ids
    inside one episode), `episode_last` int [N].
    """
    n = len(subtask)
    steps = np.arange(n)
    # A segment ends at step i when the next step has another subtask or another episode.
    ends = (steps == episode_last) | np.r_[subtask[1:] != subtask[:-1], True]
    end_of = np.minimum.accumulate(np.where(ends, steps, n)[::-1])[::-1]   # next segment end at or after i
    out, current = [], steps
    for _ in range(count):
        after = np.minimum(end_of[current] + 1, episode_last)
        out.append(after)
        current = after
    return np.stack(out, 1)


class ComponentReader:
    """Reads batches of steps of one mixture component, vectorized over the batch.

    Everything but the images is precomputed once per component with h2r.data.transforms (the
    functions the served policy composes too: normalize, pad, mask, tokenize, over every step at
    once); the views come from the decoded-frame cache (a memory-mapped slice, resized with
    transforms.resize when it was built) or, without it, from the step's episode record (two PNG
    decodes per sample).
    """

    def __init__(self, dataset, norm_stats: dict, tok, data, spec: transforms.SampleSpec,
                 component: mixture.Component, embodiment_id: int):
        index = dataset.index
        mode = _get(data, "norm")
        where = f"dataset {dataset.name!r}"
        self.dataset = dataset
        # An absolute-target arm's actions become displacements first (transforms, "action frames").
        raw_actions = stats_lib.policy_actions(dataset, norm_stats.get("relative_action"))
        self.actions = transforms.actions(spec, raw_actions, transforms.stats_arrays(norm_stats["action"]),
                                          mode, where)
        state = transforms.state(spec, index.state, transforms.stats_arrays(norm_stats["state"]), mode, where)
        self.state = state["state"]
        self.state_mask = transforms.dim_mask(dataset.state_dim, spec.max_state_dim)
        self.action_dim_mask = action_dim_mask(dataset, spec.max_action_dim)
        texts = index.texts.tolist()
        self.instruction_ids = tok.encode_batch(texts, spec.max_instruction_len)[index.instruction]
        self.subtask_ids = tok.encode_batch(texts, spec.max_subtask_len)[index.subtask]
        self.episode_last = (index.episode_start + index.episode_length - 1)[index.step_episode]
        self.subgoal = self.state[subgoal_steps(index.subtask, self.episode_last)]
        self.horizon = spec.action_horizon
        image_size = self.image_size = spec.image_size
        self.frames_path = dataset.frame_cache(image_size) if _use_frame_cache(data, dataset, image_size) else None
        self._frames = None
        self.wrist = dataset.layout.wrist_image is not None and bool(_get(data, "use_wrist"))
        self.embodiment_id = embodiment_id
        self.loss_weights = (component.action_loss_weight, component.subtask_loss_weight)
        early = index.step_t < int(_get(data, "early_steps"))
        self.step_weight = np.where(early, float(_get(data, "early_weight")), 1.0).astype(np.float32)

    def __getstate__(self):  # worker processes reopen the memory map instead of copying it
        state = dict(self.__dict__)
        state["_frames"] = None
        return state

    def _views(self, steps: np.ndarray) -> np.ndarray:
        """uint8 [n, 2, R, R, 3]: head and wrist views of the given steps."""
        if self.frames_path is not None:
            if self._frames is None:
                self._frames = np.load(self.frames_path, mmap_mode="r")
            order = np.argsort(steps)  # sorted reads from the map; same result
            views = np.empty((len(steps),) + self._frames.shape[1:], np.uint8)
            views[order] = self._frames[steps[order]]
            return views
        index, size = self.dataset.index, self.image_size
        views = np.zeros((len(steps), 2, size, size, 3), np.uint8)
        for i, step in enumerate(steps):
            head, wrist = self.dataset.images(index.step_episode[step], index.step_t[step])
            views[i, 0] = transforms.resize(head, size)
            if wrist is not None:
                views[i, 1] = transforms.resize(wrist, size)
        return views

    def fill(self, batch: dict, rows: np.ndarray, steps: np.ndarray) -> None:
        """Writes the samples of `steps` into `batch` at `rows`."""
        last = self.episode_last[steps][:, None]
        future = steps[:, None] + np.arange(self.horizon)[None, :]
        valid = future <= last
        batch["actions"][rows] = self.actions[np.minimum(future, last)] * valid[..., None]
        batch["action_valid"][rows] = valid
        batch["action_dim_mask"][rows] = self.action_dim_mask
        batch["state"][rows] = self.state[steps]
        batch["subgoal"][rows] = self.subgoal[steps]
        batch["state_mask"][rows] = self.state_mask
        batch["instruction"][rows] = self.instruction_ids[steps]
        batch["subtask"][rows] = self.subtask_ids[steps]
        views = self._views(steps)
        batch["image"][rows] = views[:, 0]
        batch["wrist_image"][rows] = views[:, 1] if self.wrist else 0
        batch["image_mask"][rows] = (True, self.wrist)
        batch["embodiment_id"][rows] = self.embodiment_id
        batch["action_loss_weight"][rows] = self.loss_weights[0] * self.step_weight[steps]
        batch["subtask_loss_weight"][rows] = self.loss_weights[1]


class ReadBatch(grain.transforms.Map):
    """[B, 3] int64 refs (component, step, global position) -> one batch in the sample layout.

    Augmentation happens here, per sample, with a Generator seeded by (seed, global position):
    the same sample is augmented the same way whatever the batch size, process count or worker
    count (grain's random_map seeds by the index in its own, already sharded, dataset).
    """

    def __init__(self, readers: list[ComponentReader], spec: transforms.SampleSpec, augment_seed: int | None):
        self.readers = readers
        self.spec = spec
        self.augment_seed = augment_seed

    def map(self, refs: np.ndarray) -> dict:
        refs = np.asarray(refs, np.int64)
        batch = self.spec.zeros(len(refs))
        for k, reader in enumerate(self.readers):
            rows = np.flatnonzero(refs[:, 0] == k)
            if len(rows):
                reader.fill(batch, rows, refs[rows, 1])
        if self.augment_seed is not None:
            for i, position in enumerate(refs[:, 2]):
                rng = np.random.default_rng([self.augment_seed, int(position)])
                batch["image"][i], batch["wrist_image"][i] = augment.jitter(
                    (batch["image"][i], batch["wrist_image"][i]), rng)
        return batch


class _Refs(grain.transforms.Map):
    """Position in a component's step list -> (component, step id)."""

    def __init__(self, component: int, steps: np.ndarray):
        self.component, self.steps = component, steps

    def map(self, i):
        return np.array([self.component, self.steps[i % len(self.steps)]], np.int64)


def _with_position(position, ref):
    return np.array([ref[0], ref[1], position], np.int64)


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


class Prepared:
    """What a pipeline needs before it reads a sample, opened and loaded once: the datasets of
    `split` (indexed), the normalization stats of the train split, the tokenizer and the sample
    spec. The trainer saves `norm_stats` and the tokenizer with its run (the policy's copies)."""

    def __init__(self, config, split: str | None = None):
        data = config.data
        self.split = split or _get(data, "split")
        self.datasets = open_datasets(data, self.split)
        train = self.datasets if self.split == "train" else open_datasets(data, "train")
        self.tokenizer = load_tokenizer(data.dir)   # also makes the stats of a fresh directory
        self.norm_stats = {name: stats_lib.ensure(dataset) for name, dataset in train.items()}
        self.components = mixture.components(data, self.datasets)
        size = image_size_of(config, [self.datasets[c.dataset] for c in self.components])
        self.spec = transforms.SampleSpec.from_config(data, image_size=size)


def prepare(config, split: str | None = None) -> Prepared:
    return Prepared(config, split)


def norm_stats(config) -> dict:
    """{dataset name: stats} the pipeline normalizes with (the trainer saves them with its run)."""
    return prepare(config, "train").norm_stats


def _component_seed(seed: int, k: int) -> int:
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def make_readers(config, prepared: Prepared) -> list[ComponentReader]:
    """One reader per mixture component (precomputed normalized vectors, token ids, frames)."""
    catalogue = embodiment_names()
    readers = []
    for component in prepared.components:
        dataset = prepared.datasets[component.dataset]
        embodiment = dataset.embodiment()
        readers.append(ComponentReader(dataset, prepared.norm_stats[component.dataset], prepared.tokenizer,
                                       config.data, prepared.spec, component,
                                       catalogue.index(embodiment) if embodiment in catalogue else -1))
    return readers


def make_dataset(config, process_index: int | None = None, process_count: int | None = None,
                 split: str | None = None, prepared: Prepared | None = None) -> grain.IterDataset:
    """The grain dataset behind make_iterator (exposed for benchmarks and inspection).
    `prepared`: the datasets, stats and tokenizer already opened (else opened here)."""
    data = config.data
    prepared = prepared or prepare(config, split)
    if process_index is None or process_count is None:
        shard = grain.sharding.ShardByJaxProcess(drop_remainder=True)
        process_index, process_count = shard.shard_index, shard.shard_count
    global_batch = int(config.train.batch_size)
    if global_batch % process_count:
        raise DataError(f"config.train.batch_size={global_batch} is not divisible by {process_count} processes")
    local_batch = global_batch // process_count

    readers = make_readers(config, prepared)
    seed = int(data.seed)
    parts, weights = [], []
    for k, component in enumerate(prepared.components):
        steps = mixture.steps_of(prepared.datasets[component.dataset], component.episodes)
        # grain 0.2.18's index_shuffle cycle-walks a domain of >= 2**16: a call costs ~3.5 ms for
        # 10 elements, 0.5 ms for 100, 4 us for 1e5. Shuffling several copies of a small component
        # at once (each step still appears equally often) keeps it fast.
        copies = -(-MIN_SHUFFLE_DOMAIN // len(steps))
        refs = grain.MapDataset.range(len(steps) * copies).shuffle(seed=_component_seed(seed, k)).repeat()
        parts.append(refs.map(_Refs(k, steps)))
        weights.append(component.weight)
    ds = parts[0] if len(parts) == 1 else grain.MapDataset.mix(parts, weights=weights)
    ds = ds.map_with_index(_with_position).batch(local_batch, drop_remainder=True)
    augment_seed = _component_seed(seed, 10_000) if _get(data, "augment") else None
    ds = ds.map(ReadBatch(readers, prepared.spec, augment_seed))[process_index::process_count]
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=int(_get(data, "read_threads")),
                                              prefetch_buffer_size=int(_get(data, "prefetch_buffer_size"))))
    workers = int(_get(data, "worker_count"))
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
                  split: str | None = None, prepared: Prepared | None = None) -> grain.DatasetIterator:
    """An endless iterator of this process's batches (numpy), with get_state/set_state."""
    return iter(make_dataset(config, process_index, process_count, split, prepared))


def to_global_batch(local_batch: dict, sharding) -> dict:
    """Per-process numpy batches -> global jax.Arrays (leading axis split over `sharding`).

    `sharding` is one jax.sharding.Sharding for every key (e.g. NamedSharding(mesh, P('data'))),
    or a dict of them with the batch's keys.
    """
    import jax  # noqa: PLC0415

    if isinstance(sharding, dict):
        return {k: jax.make_array_from_process_local_data(sharding[k], v) for k, v in local_batch.items()}
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}
