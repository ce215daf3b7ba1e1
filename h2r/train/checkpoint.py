"""Orbax checkpoints of a run: W/checkpoints is one orbax CheckpointManager directory.

Each saved step holds four items:
  params      plain nested dict of arrays (restorable by orbax alone, without h2r)
  train_state {"opt_state", "ema", "step", "rng"}
  data_iter   the grain iterator state of every process (grain.checkpoint.CheckpointSave)
  extra       JSON: the resolved config and the normalization statistics

Reading `params` with orbax alone (any device count, no h2r), as numpy arrays:
    ckptr = ocp.PyTreeCheckpointer()
    tree = ckptr.metadata(path).item_metadata.tree          # path = W/checkpoints/<step>/params
    params = ckptr.restore(path, restore_args=jax.tree.map(
        lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree))
(a plain `StandardCheckpointer().restore(path)` only works on the saving run's device topology).

Kept: the last `keep` steps, every `keep_period`-th step, and the best one by training loss.
Saves are asynchronous (orbax writes in a background thread, into a temporary directory that
is renamed when complete), so a run killed mid-save never leaves a half-written step behind.
"""
from __future__ import annotations

import os
from typing import Any

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint._src.checkpoint_managers import preservation_policy as ocp_preservation

from h2r.errors import CheckpointError

ITEMS = ("params", "train_state", "data_iter", "extra")


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def make_manager(workdir: str, *, keep: int = 3, keep_period: int | None = None,
                 read_only: bool = False, asynchronous: bool = True) -> ocp.CheckpointManager:
    """The run's CheckpointManager; keeps last `keep`, every `keep_period`-th, and the best-loss step."""
    policies = [ocp_preservation.LatestN(n=max(1, keep)),
                # The best by training loss; a step saved without metrics is never deleted by it.
                ocp_preservation.BestN(get_metric_fn=lambda m: m["loss"], reverse=True, n=1,
                                       keep_checkpoints_without_metrics=False)]
    if keep_period:
        policies.append(ocp_preservation.EveryNSteps(interval_steps=keep_period))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp_preservation.AnyPreservationPolicy(policies),
        enable_async_checkpointing=asynchronous, read_only=read_only, create=not read_only)
    directory = checkpoint_dir(workdir)
    if read_only and not os.path.isdir(directory):
        raise CheckpointError(f"{directory} does not exist: {workdir!r} is not a training run directory")
    # Handlers named up front so item_metadata() works before any save/restore in this process.
    handlers = {"params": ocp.StandardCheckpointHandler(), "train_state": ocp.StandardCheckpointHandler(),
                "data_iter": grain.checkpoint.CheckpointHandler(), "extra": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, item_handlers=handlers, options=options)


def save(manager: ocp.CheckpointManager, step: int, *, params, train_state, data_iter,
         extra: dict, metrics: dict | None = None, force: bool = False) -> bool:
    """Starts an (asynchronous) save of all items at `step`."""
    args = ocp.args.Composite(
        params=ocp.args.StandardSave(params),
        train_state=ocp.args.StandardSave(train_state),
        data_iter=grain.checkpoint.CheckpointSave(data_iter),
        extra=ocp.args.JsonSave(extra))
    return manager.save(step, args=args, metrics=metrics, force=force)


def _flat_shapes(tree) -> dict[str, tuple]:
    """{"a/b/c": shape} for a tree of arrays, ShapeDtypeStructs or orbax array metadata."""
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = "/".join(str(getattr(p, "key", getattr(p, "idx", getattr(p, "name", p)))) for p in path)
        flat[key] = tuple(getattr(leaf, "shape", ()) or ())
    return flat


def check_params_match(manager: ocp.CheckpointManager, step: int, abstract_params, where: str):
    """Raises CheckpointError listing keys missing/unexpected/mis-shaped against the model's params."""
    saved = _flat_shapes(manager.item_metadata(step)["params"])
    wanted = _flat_shapes(abstract_params)
    missing = sorted(set(wanted) - set(saved))
    unexpected = sorted(set(saved) - set(wanted))
    reshaped = sorted(k for k in set(saved) & set(wanted) if saved[k] != wanted[k])
    if not (missing or unexpected or reshaped):
        return
    lines = [f"checkpoint {where} (step {step}) does not match the model built from this config:"]
    if missing:
        lines.append(f"  missing in checkpoint ({len(missing)}): " + ", ".join(missing[:20]))
    if unexpected:
        lines.append(f"  not in model ({len(unexpected)}): " + ", ".join(unexpected[:20]))
    if reshaped:
        lines.append(f"  shape differs ({len(reshaped)}): " + ", ".join(
            f"{k} checkpoint {saved[k]} vs model {wanted[k]}" for k in reshaped[:20]))
    lines.append("  (was the run trained with another model config? compare its config.json)")
    raise CheckpointError("\n".join(lines))


def resolve_step(manager: ocp.CheckpointManager, step: int | None, workdir: str) -> int:
    steps = manager.all_steps()
    if not steps:
        raise CheckpointError(f"no complete checkpoint in {checkpoint_dir(workdir)}")
    if step is None:
        return max(steps)
    if step not in steps:
        raise CheckpointError(f"step {step} is not in {checkpoint_dir(workdir)} (saved steps: {sorted(steps)})")
    return step


def restore_params(workdir: str, abstract_params, step: int | None = None) -> tuple[Any, int]:
    """Restores only `params` of run `workdir` into the structure/shardings of `abstract_params`."""
    manager = make_manager(workdir, read_only=True)
    try:
        step = resolve_step(manager, step, workdir)
        check_params_match(manager, step, abstract_params, checkpoint_dir(workdir))
        restored = manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params)))
        return restored["params"], step
    finally:
        manager.close()


def restore_extra(workdir: str, step: int | None = None) -> tuple[dict, int]:
    """The `extra` JSON item (config, norm stats) of a step."""
    manager = make_manager(workdir, read_only=True)
    try:
        step = resolve_step(manager, step, workdir)
        restored = manager.restore(step, args=ocp.args.Composite(extra=ocp.args.JsonRestore()))
        return restored["extra"], step
    finally:
        manager.close()


def restore_for_training(manager: ocp.CheckpointManager, step: int, *, abstract_params,
                         abstract_train_state, data_iter, workdir: str):
    """Restores params, train state and the data iterator (in place) for resuming."""
    check_params_match(manager, step, abstract_params, checkpoint_dir(workdir))
    try:
        restored = manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params),
            train_state=ocp.args.StandardRestore(abstract_train_state),
            data_iter=grain.checkpoint.CheckpointRestore(data_iter)))
    except (ValueError, KeyError, FileNotFoundError) as e:
        raise CheckpointError(f"cannot resume from {checkpoint_dir(workdir)} step {step}: {e}") from e
    return restored["params"], restored["train_state"]


def abstract_like(tree):
    """ShapeDtypeStructs (with shardings) of a tree of jax arrays: the restore target."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=getattr(x, "sharding", None)), tree)
