"""Per-dataset normalization statistics, and `h2r data stats DIR`.

`DIR/<dataset>/norm_stats.json`: `{"action": {"mean", "std", "q01", "q99"}, "state": {...}}`,
lists per dimension, computed on the train split from the cached step index (sources.py), so
only the first run reads the episodes (with a progress line). The trainer copies the stats it
used into its run directory; `normalize`/`unnormalize` are the two directions of one mode:
  quantile: q01 -> -1, q99 -> +1, clipped to [-1, 1] (pi0/octo's choice for actions);
  mean_std: (x - mean) / std.
A dimension that never varies maps to 0 (and back to its constant).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from h2r import files
from h2r.data import transforms
from h2r.errors import DataError

FILENAME = "norm_stats.json"
MODES = transforms.NORM_MODES


def compute(values: np.ndarray) -> dict:
    """float [N, D] -> per-dimension mean, std, q01, q99 (lists, JSON-ready)."""
    values = np.asarray(values, np.float64).reshape(len(values), -1)
    if len(values) == 0:
        empty = [0.0] * values.shape[1]
        return {"mean": empty, "std": empty, "q01": empty, "q99": empty}
    return {"mean": values.mean(0).tolist(), "std": values.std(0).tolist(),
            "q01": np.quantile(values, 0.01, axis=0).tolist(),
            "q99": np.quantile(values, 0.99, axis=0).tolist()}


EXCLUDED_SETTINGS = ("heldout-eval",)   # evaluation episodes: no training input may depend on them


def training_steps(index) -> np.ndarray:
    """bool [N]: the steps statistics may see. Held-out evaluation episodes are excluded (the
    robot is evaluated on those settings; even their action range must not leak into training)."""
    setting = index.metadata.get("setting")
    if setting is None:
        return np.ones(index.num_steps, bool)
    excluded = np.isin(np.asarray(setting), EXCLUDED_SETTINGS)
    return ~excluded[index.step_episode]


def check_finite(values, what: str, key: str, hint: str = "") -> None:
    """A DataError naming `what`, `key` and the first non-finite dimension of a vector."""
    bad = ~np.isfinite(np.asarray(values, np.float64))
    if bad.any():
        raise DataError(f"{what}: '{key}' has a non-finite value (NaN/inf) at dimension "
                        f"{int(np.flatnonzero(bad)[0])}; h2r refuses to train or normalize with it{hint}")


def relative_reference(dataset) -> dict | None:
    """Which action dims the policy learns relative to the proprio (transforms, "action frames"):
    an arm of the catalogue commanded with absolute base-frame targets (action_space "absolute",
    actions x, y = position / action_scale) that reports its base-frame position (ee_x_base,
    ee_y_base). None for every other dataset (delta actions, the human, real datasets)."""
    meta = dataset.info_metadata
    actions, states = list(meta.get("action_names") or ()), list(meta.get("state_names") or ())
    robot = dataset.catalogue_embodiment()   # its action_scale: the units of x, y
    if (meta.get("action_space") != "absolute" or robot is None
            or not {"x", "y"} <= set(actions) or not {"ee_x_base", "ee_y_base"} <= set(states)):
        return None
    return {"action_dims": [actions.index("x"), actions.index("y")],
            "state_dims": [states.index("ee_x_base"), states.index("ee_y_base")],
            "scale": 1.0 / float(robot.action_scale)}


def policy_actions(dataset, relative: dict | None) -> np.ndarray:
    """f32 [N, A]: the dataset's actions in the frame the policy learns them in."""
    index = dataset.index
    m = transforms.relative_matrix(relative, dataset.state_dim, dataset.action_dim)
    return transforms.to_relative(index.action, index.state, m) if relative else index.action


def dataset_stats(dataset) -> dict:
    index = dataset.index
    keep = training_steps(index)
    for key in ("action", "state"):  # NaN/inf data would give NaN stats: name the step instead
        values = getattr(index, key)
        bad = ~np.all(np.isfinite(values), axis=1)
        if bad.any():
            step = int(np.flatnonzero(bad)[0])
            check_finite(values[step], f"dataset {dataset.name!r} ({dataset.version_dir}) episode "
                         f"{int(index.step_episode[step])} step {int(index.step_t[step])}", f"steps/{key}")
    relative = relative_reference(dataset)
    stats = {"dataset": dataset.name, "kind": dataset.kind, "split": dataset.split,
             "num_episodes": int(index.num_episodes), "num_steps": int(index.num_steps),
             "num_steps_used": int(keep.sum()),
             "action": compute(policy_actions(dataset, relative)[keep]), "state": compute(index.state[keep])}
    if relative:
        stats["relative_action"] = relative
    return stats


def path_for(dataset) -> str:
    return os.path.join(dataset.dataset_dir, FILENAME)


def save(stats: dict, path: str) -> None:
    files.write_json(path, stats, indent=1)


def load(path: str) -> dict:
    """Loads a norm_stats.json (a file, or a dataset directory holding one)."""
    if os.path.isdir(path):
        path = os.path.join(path, FILENAME)
    refresh = f"recompute them with `h2r data stats {os.path.dirname(os.path.dirname(os.path.abspath(path)))} --refresh`"
    stats = files.read_json(path, "normalization stats", refresh)
    for key in ("action", "state"):
        if key not in stats or any(k not in stats[key] for k in ("mean", "std", "q01", "q99")):
            raise DataError(f"normalization stats {path}: '{key}' needs mean, std, q01, q99; {refresh}")
        for k in ("mean", "std", "q01", "q99"):
            check_finite(stats[key][k], f"normalization stats {path}", f"{key}.{k}", f"; {refresh}")
    return stats


def load_by_name(data_dir: str, dataset_name: str) -> dict:
    return load(os.path.join(data_dir, dataset_name, FILENAME))


def ensure(dataset, refresh: bool = False) -> dict:
    """The dataset's stats, computed and saved beside it if missing (or if refresh)."""
    path = path_for(dataset)
    if not refresh and os.path.exists(path):
        stats = load(path)
        # Stats written before held-out episodes were excluded lack num_steps_used, and stats of
        # another action frame describe other numbers: recompute.
        if (stats.get("num_steps") == dataset.index.num_steps and "num_steps_used" in stats
                and stats.get("relative_action") == relative_reference(dataset)):
            return stats
    stats = dataset_stats(dataset)
    save(stats, path)
    return stats


def normalize(x: np.ndarray, stats: dict, key: str, mode: str) -> np.ndarray:
    """Normalizes the last axis of x with stats[key] ('action' or 'state') (transforms.normalize)."""
    return transforms.normalize(np.asarray(x), transforms.stats_arrays(stats[key]), mode)


def unnormalize(x: np.ndarray, stats: dict, key: str, mode: str) -> np.ndarray:
    return transforms.unnormalize(np.asarray(x), transforms.stats_arrays(stats[key]), mode)


def prepare(data_dir: str, refresh: bool = False, split: str = "train") -> tuple[dict, object]:
    """Indexes every dataset under data_dir, saves its stats, fits and saves the tokenizer.
    Returns ({dataset name: stats}, tokenizer)."""
    from h2r.data import sources, tokenizer  # noqa: PLC0415

    found = sources.list_datasets(data_dir)
    if not found:
        raise DataError(f"no tfds datasets under {data_dir!r}")
    all_stats, texts = {}, set()
    for name, version_dir in found.items():
        start = time.time()
        dataset = sources.RLDSDataset(version_dir, split, refresh=refresh)
        all_stats[name] = ensure(dataset, refresh)
        texts.update(dataset.index.texts.tolist())
        print(f"{name}: {dataset.index.num_episodes} episodes, {dataset.index.num_steps} steps, "
              f"action dim {dataset.action_dim}, state dim {dataset.state_dim} "
              f"-> {path_for(dataset)} ({time.time() - start:.1f}s)", file=sys.stderr)
    tok_path = tokenizer.path_for(data_dir)
    if refresh or not os.path.exists(tok_path):
        tok = tokenizer.Tokenizer.fit(sorted(texts))
        tok.save(tok_path)
    else:
        tok = tokenizer.Tokenizer.load(tok_path)
        unseen = {w for t in texts for w in tokenizer.words(t)} - set(tok.vocab)
        if unseen:  # a dataset was added since: refit so no word of the data becomes unk
            tok = tokenizer.Tokenizer.fit(sorted(texts))
            tok.save(tok_path)
    print(f"tokenizer: {tok.vocab_size} words -> {tok_path}", file=sys.stderr)
    return all_stats, tok
