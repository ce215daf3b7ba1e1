"""Input-pipeline throughput: this grain pipeline (0 and 2 worker processes) against an
octo-style tf.data RLDS pipeline doing the same work on the same data.

    .venv/bin/python benchmarks/pipeline.py --data data/tiny [--target sort_eggs]

Same work per sample on both sides: pick a step of the co-training mixture (target robot +
human, 50/50), decode its head and wrist PNGs, resize to the model's size if needed, normalize
state and the H-step action chunk with the saved quantile stats, mask the chunk at the episode
end, pad to the common dims, look up the instruction/subtask token ids; then batch.
tf.data reads a TFRecord copy of the same datasets (written with h2r.data.convert), octo's way:
whole trajectories -> trajectory-level chunking -> frames -> shuffle buffer -> decode -> batch.
grain runs with its decoded-frame cache (the default for small datasets: views decoded once
into a memory-mapped .npy beside the data) and without it (two PNG decodes per sample, the same
decode work as tf.data). Prints one JSON line; record it in benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def training_config(args):
    from h2r.config import load_config  # noqa: PLC0415

    config = load_config(os.path.join(ROOT, "experiments", "train", f"{args.preset}.py"))
    config.unlock()
    config.data.dir = args.data
    config.data.kind = "cotrain"
    config.data.human = True
    config.data.target = args.target
    config.train.batch_size = args.batch_size
    config.data.norm = "quantile"  # the same normalization as the tf.data side below
    config.data.frame_cache = True  # a key beyond the trainer's contract (h2r/data/config.py PIPELINE_DEFAULTS)
    return config


def measure(iterator, batches: int, warmup: int, batch_size: int) -> float:
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def grain_rate(config, workers: int, args, frame_cache=True) -> float:
    from h2r.data import pipeline  # noqa: PLC0415

    config.data.worker_count = workers
    config.data.frame_cache = frame_cache
    iterator = pipeline.make_iterator(config, 0, 1)
    return measure(iterator, args.batches, args.warmup + (10 if workers else 0), args.batch_size)


# ------------------------------------------------------------------------------- tf.data

def tfdata_pipeline(config, tfrecord_root: str):
    """Octo/dlimp-style RLDS pipeline over the same components, weights and stats."""
    import tensorflow as tf  # noqa: PLC0415
    import tensorflow_datasets as tfds  # noqa: PLC0415

    from h2r.data import mixture, pipeline  # noqa: PLC0415

    data = config.data
    datasets = pipeline.open_datasets(data)
    tok = pipeline.load_tokenizer(data.dir)
    components = mixture.components(data, datasets)
    size, horizon = int(config.model.image_size), int(data.action_horizon)
    max_a, max_s = int(data.max_action_dim), int(data.max_state_dim)
    all_stats = pipeline.norm_stats(config)
    parts, weights = [], []
    for k, component in enumerate(components):
        dataset = datasets[component.dataset]
        norm = all_stats[component.dataset]
        texts = dataset.index.texts.tolist()
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(texts), tf.range(len(texts), dtype=tf.int64)), default_value=0)
        instr_ids = tf.constant(tok.encode_batch(texts, int(data.max_instruction_len)))
        sub_ids = tf.constant(tok.encode_batch(texts, int(data.max_subtask_len)))
        a_lo, a_hi = (tf.constant(norm["action"][q], tf.float32) for q in ("q01", "q99"))
        s_lo, s_hi = (tf.constant(norm["state"][q], tf.float32) for q in ("q01", "q99"))
        dim_mask = tf.constant(pipeline.action_dim_mask(dataset, max_a))
        state_dim = dataset.state_dim
        keep = tf.constant(np.isin(np.arange(dataset.index.num_episodes), component.episodes))
        # Episode ids are needed to select the mixture's episodes: tfds orders records as written.
        builder = tfds.builder_from_directory(os.path.join(tfrecord_root, dataset.name, dataset.version))
        decoders = {"steps": {"observation": {"image": tfds.decode.SkipDecoding(),
                                              "wrist_image": tfds.decode.SkipDecoding()}}}
        episodes = builder.as_dataset(split="train", decoders=decoders, shuffle_files=False)
        episodes = episodes.enumerate().filter(lambda i, ep: tf.gather(keep, i)).map(lambda i, ep: ep)

        def quantile(x, lo, hi):
            span = hi - lo
            return tf.where(span > 1e-6, tf.clip_by_value(2.0 * (x - lo) / tf.maximum(span, 1e-6) - 1.0, -1, 1), 0.0)

        def trajectory(ep, a_lo=a_lo, a_hi=a_hi, s_lo=s_lo, s_hi=s_hi, table=table, instr_ids=instr_ids,
                       sub_ids=sub_ids, dim_mask=dim_mask, state_dim=state_dim):
            steps = ep["steps"].batch(1 << 20).get_single_element()  # dlimp: whole trajectory as tensors
            length = tf.shape(steps["action"])[0]
            actions = quantile(steps["action"], a_lo, a_hi)
            actions = tf.pad(actions, [[0, 0], [0, max_a - tf.shape(actions)[1]]])
            future = tf.range(length)[:, None] + tf.range(horizon)[None, :]
            valid = future < length
            chunk = tf.gather(actions, tf.minimum(future, length - 1)) * tf.cast(valid, tf.float32)[..., None]
            if state_dim:
                state = quantile(steps["observation"]["state"], s_lo, s_hi)
            else:
                state = tf.zeros([length, 0])
            state = tf.pad(state, [[0, 0], [0, max_s - state_dim]])
            return {
                "image": steps["observation"]["image"], "wrist_image": steps["observation"]["wrist_image"],
                "state": state, "state_mask": tf.tile((tf.range(max_s) < state_dim)[None], [length, 1]),
                "instruction": tf.gather(instr_ids, table.lookup(steps["language_instruction"])),
                "subtask": tf.gather(sub_ids, table.lookup(steps["subtask_instruction"])),
                "actions": chunk, "action_valid": valid,
                "action_dim_mask": tf.tile(dim_mask[None], [length, 1]),
            }

        def frame(f):
            out = dict(f)
            for key in ("image", "wrist_image"):
                image = tf.io.decode_png(f[key], channels=3)
                image.set_shape([None, None, 3])
                if dataset._image_features[dataset.layout.image].shape[0] != size:
                    image = tf.cast(tf.image.resize(image, [size, size]), tf.uint8)
                out[key] = image
            return out

        frames = (episodes.repeat().map(trajectory, num_parallel_calls=tf.data.AUTOTUNE)
                  .flat_map(tf.data.Dataset.from_tensor_slices)
                  .shuffle(2000, seed=k)
                  .map(frame, num_parallel_calls=tf.data.AUTOTUNE))
        parts.append(frames)
        weights.append(component.weight)
    total = sum(weights)
    mixed = tf.data.Dataset.sample_from_datasets(parts, [w / total for w in weights], seed=0)
    return mixed.batch(int(config.train.batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def tfdata_rate(config, args, tfrecord_root: str) -> float:
    ds = tfdata_pipeline(config, tfrecord_root)
    return measure(ds.as_numpy_iterator(), args.batches, args.warmup + 10, args.batch_size)


def tfrecord_copy(config, out_root: str) -> None:
    from h2r.data import convert, pipeline  # noqa: PLC0415

    for name, dataset in pipeline.open_datasets(config.data).items():
        convert.convert(dataset.version_dir, os.path.join(out_root, name, dataset.version), "tfrecord")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="directory written by `h2r data generate`")
    parser.add_argument("--target", default="sort_eggs", help="held-out setting of the co-training mixture")
    parser.add_argument("--preset", default="tiny", help="training preset in experiments/train (image size, dims)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    from absl import flags  # noqa: PLC0415
    flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags (grain#1355)

    from h2r.data import stats  # noqa: PLC0415
    stats.prepare(args.data)  # index, stats and tokenizer once, outside the timings
    config = training_config(args)
    result = {"data": args.data, "preset": args.preset, "batch_size": args.batch_size,
              "image_size": int(config.model.image_size), "action_horizon": int(config.data.action_horizon),
              "cpus": os.cpu_count()}
    for workers in (0, 2):
        result[f"grain_samples_per_s_workers{workers}"] = round(grain_rate(config, workers, args), 1)
    for workers in (0, 2):  # without the decoded-frame cache: two PNG decodes per sample, like tf.data
        result[f"grain_nocache_samples_per_s_workers{workers}"] = round(
            grain_rate(config, workers, args, frame_cache=False), 1)
    with tempfile.TemporaryDirectory() as tmp:
        tfrecord_copy(config, tmp)
        result["tfdata_samples_per_s"] = round(tfdata_rate(config, args, tmp), 1)
    result["grain_samples_per_s"] = max(result["grain_samples_per_s_workers0"], result["grain_samples_per_s_workers2"])
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
