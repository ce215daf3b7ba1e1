"""`h2r eval offline`: action error on held-out episodes, in normalized units.

The run's own input pipeline (h2r.data.pipeline, grain) reads the `val` split of every dataset in
the run's mixture, with augmentation off; the model samples action chunks (flow integration,
predicted subtask) and we average the squared error against the recorded chunks over valid
steps (`action_valid`) and valid dimensions (`action_dim_mask`: padding and the human's absent
grip excluded). Normalized units make embodiments with different action scales comparable.
Results are split by dataset through the batch's `embodiment_id`.
"""
from __future__ import annotations

import os
import time

import numpy as np

from h2r import files
from h2r.errors import DataError


def masked_squared_error(pred: np.ndarray, actions: np.ndarray, action_valid: np.ndarray,
                         action_dim_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (sum of squared errors, number of valid entries) over the chunk."""
    mask = action_valid[:, :, None] & action_dim_mask[:, None, :]
    return np.sum(np.square(pred - actions) * mask, axis=(1, 2)), np.sum(mask, axis=(1, 2))


def eval_config(config, split: str):
    """The run's config with the pipeline in eval mode: no augmentation, single process."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.data.augment = False
        config.data.worker_count = 0
        config.data.split = split
    return config


def offline_error(policy, config, *, batches: int, split: str = "val", seed: int = 0) -> dict:
    """{dataset: {"mse", "samples"}} over `batches` batches of the run's mixture on `split`."""
    import jax  # noqa: PLC0415
    from h2r.data import pipeline  # noqa: PLC0415

    config = eval_config(config, split)
    try:
        iterator = pipeline.make_iterator(config, process_index=0, process_count=1, split=split)
    except DataError as e:
        raise DataError(f"offline eval: cannot read split {split!r} of the run's datasets: {e}") from e
    names = pipeline.embodiment_names()
    sums: dict[int, list[float]] = {}
    start = time.time()
    for b in range(batches):
        batch = next(iterator)
        obs = {k: v for k, v in batch.items() if k not in ("actions", "action_valid")}
        pred = np.asarray(policy.sample_normalized(obs, jax.random.fold_in(jax.random.key(seed), b)))
        err, count = masked_squared_error(pred, batch["actions"], batch["action_valid"], batch["action_dim_mask"])
        for e in np.unique(batch["embodiment_id"]):
            rows = batch["embodiment_id"] == e
            acc = sums.setdefault(int(e), [0.0, 0.0, 0])
            acc[0] += float(err[rows].sum())
            acc[1] += float(count[rows].sum())
            acc[2] += int(rows.sum())
        print(f"eval offline: batch {b + 1}/{batches} ({time.time() - start:.1f}s)", flush=True)
    per_dataset = {}
    for e, (err_sum, count, samples) in sorted(sums.items()):
        name = f"h2r_{names[e]}" if 0 <= e < len(names) else f"embodiment_{e}"
        per_dataset[name] = {"mse": err_sum / max(count, 1.0), "samples": samples}
    total_err = sum(v[0] for v in sums.values())
    total_count = sum(v[1] for v in sums.values())
    return {"mse": total_err / max(total_count, 1.0), "per_dataset": per_dataset, "split": split,
            "batches": batches, "batch_size": int(config.train.batch_size)}


def evaluate_run(workdir: str, out: str, *, step: int | None = None, batches: int = 8, split: str = "val",
                 seed: int = 0) -> dict:
    """`h2r eval offline`: `offline_error` of run `workdir`, written to the JSON `out` and returned."""
    import h2r  # noqa: PLC0415
    from h2r.config import config_from_json  # noqa: PLC0415

    config = config_from_json(os.path.join(workdir, "config.json"))
    policy = h2r.load_policy(workdir, step=step)
    files.check_writable(out)
    with files.output_lock(out, f"eval output {out}"):
        result = offline_error(policy, config, batches=batches, split=split, seed=seed)
        result.update(step=int(policy.step), workdir=os.path.abspath(workdir))
        files.write_json(out, result)
    return result
