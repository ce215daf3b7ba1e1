"""Orbax checkpoints of a run: W/checkpoints is one orbax CheckpointManager directory.

Each saved step holds five items:
  params      plain nested dict of arrays (restorable by orbax alone, without h2r)
  ema         the exponential moving average of the params, the same structure (a policy
              restores it alone, without the optimizer's state)
  train_state {"opt_state", "step", "rng"}  (checkpoints before the `ema` item: also "ema")
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

A step damaged after it was written (a truncated tensor file, a corrupt `_METADATA`) is found
when it is read: `restore_newest` then falls back to the newest step that reads, with a warning
naming the bad one, and resuming moves the bad step aside to W/checkpoints.corrupt/ (kept, never
deleted) so the run can save that step again. `verify` reads every array of a step.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies_lib  # the public preservation policies

from h2r.errors import CheckpointError, H2RError

ITEMS = ("params", "ema", "train_state", "data_iter", "extra")
PARAM_ITEMS = ("params", "ema")   # the two items shaped like the model's params


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def make_manager(workdir: str, *, keep: int = 3, keep_period: int | None = None,
                 read_only: bool = False, asynchronous: bool = True) -> ocp.CheckpointManager:
    """The run's CheckpointManager; keeps last `keep`, every `keep_period`-th, and the best-loss step."""
    policies = [policies_lib.LatestN(n=max(1, keep)),
                # The best by training loss; a step saved without metrics is never deleted by it.
                policies_lib.BestN(get_metric_fn=lambda m: m["loss"], reverse=True, n=1,
                                   keep_checkpoints_without_metrics=False)]
    if keep_period:
        policies.append(policies_lib.EveryNSteps(interval_steps=keep_period))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policies_lib.AnyPreservationPolicy(policies),
        enable_async_checkpointing=asynchronous, read_only=read_only, create=not read_only,
        # A save cut short (a full disk, a kill) leaves `<step>.orbax-checkpoint-tmp`: never a step,
        # and removed when the run starts again.
        cleanup_tmp_directories=not read_only)
    directory = checkpoint_dir(workdir)
    if read_only and not os.path.isdir(directory):
        raise CheckpointError(f"{directory} does not exist: {workdir!r} is not a training run directory")
    # Handlers named up front so item_metadata() works before any save/restore in this process.
    handlers = {"params": ocp.StandardCheckpointHandler(), "ema": ocp.StandardCheckpointHandler(),
                "train_state": ocp.StandardCheckpointHandler(),
                "data_iter": grain.checkpoint.CheckpointHandler(), "extra": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, item_handlers=handlers, options=options)


def save(manager: ocp.CheckpointManager, step: int, *, params, train_state, data_iter,
         extra: dict, metrics: dict | None = None, force: bool = False) -> bool:
    """Starts an (asynchronous) save of all items at `step`; the train state's "ema" is its own item."""
    items = {}
    if "ema" in train_state:
        items["ema"] = ocp.args.StandardSave(train_state["ema"])
        train_state = {k: v for k, v in train_state.items() if k != "ema"}
    args = ocp.args.Composite(
        params=ocp.args.StandardSave(params),
        train_state=ocp.args.StandardSave(train_state),
        data_iter=grain.checkpoint.CheckpointSave(data_iter),
        extra=ocp.args.JsonSave(extra), **items)
    return manager.save(step, args=args, metrics=metrics, force=force)


def has_item(workdir: str, step: int, item: str) -> bool:
    return os.path.isdir(os.path.join(checkpoint_dir(workdir), str(step), item))


def read_item_as_numpy(workdir: str, step: int, item: str):
    """An array item of a step as numpy arrays, read with orbax alone (any device count, no
    restore target needed)."""
    path = os.path.join(checkpoint_dir(workdir), str(step), item)
    ckptr = ocp.PyTreeCheckpointer()
    tree = ckptr.metadata(path).item_metadata.tree
    return ckptr.restore(path, restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree))


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


def reason(error: BaseException) -> str:
    """The first line of an orbax/tensorstore error (they run to hundreds of lines)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"


def restore_newest(manager: ocp.CheckpointManager, workdir: str, restore: Callable[[int], Any],
                   step: int | None = None, stream=None) -> tuple[Any, int, list[int]]:
    """(`restore(s)`, s, unreadable steps) for `step`, or by default the newest step that reads:
    each unreadable newer step is named in a warning on `stream` (stderr). An H2RError (e.g. a
    checkpoint of another model) is not damage: it is raised as it is."""
    where = checkpoint_dir(workdir)
    steps = [resolve_step(manager, step, workdir)] if step is not None else \
        sorted(manager.all_steps(), reverse=True)
    if not steps:
        raise CheckpointError(f"no complete checkpoint in {where}")
    bad: list[int] = []
    reasons: list[str] = []
    for s in steps:
        try:
            return restore(s), s, bad
        except H2RError:
            raise
        except Exception as e:  # noqa: BLE001  (tensorstore raises plain Exception)
            bad.append(s)
            reasons.append(reason(e))
            if step is not None:
                raise CheckpointError(f"checkpoint step {s} in {where} is unreadable ({reason(e)}); "
                                      f"`h2r checkpoint info {workdir} --verify` lists the intact steps") from None
            print(f"h2r: warning: checkpoint step {s} in {where} is unreadable ({reason(e)}); "
                  "trying the previous step", file=stream or sys.stderr, flush=True)
    raise CheckpointError(f"no readable checkpoint in {where}: steps {bad} are all unreadable "
                          f"(step {bad[0]}: {reasons[0]})")


def move_aside(manager: ocp.CheckpointManager, workdir: str, steps: list[int], stream=None) -> None:
    """Moves unreadable steps to W/checkpoints.corrupt/<step> (kept for inspection), so the
    resumed run saves those steps again; the manager rereads its directory."""
    if steps and jax.process_index() == 0:
        aside = checkpoint_dir(workdir) + ".corrupt"
        os.makedirs(aside, exist_ok=True)
        for s in steps:
            target = os.path.join(aside, str(s))
            n = 1
            while os.path.exists(target):
                target, n = os.path.join(aside, f"{s}.{n}"), n + 1
            os.rename(os.path.join(checkpoint_dir(workdir), str(s)), target)
            print(f"h2r: warning: moved unreadable checkpoint step {s} to {target}",
                  file=stream or sys.stderr, flush=True)
    if steps and jax.process_count() > 1:
        from jax.experimental import multihost_utils  # noqa: PLC0415
        multihost_utils.sync_global_devices("h2r: unreadable checkpoints moved aside")
    if steps:
        manager.reload()


def restore_params(workdir: str, abstract_params, step: int | None = None) -> tuple[Any, int]:
    """Restores only `params` of run `workdir` into the structure/shardings of `abstract_params`
    (the newest readable step unless `step` is given)."""
    manager = make_manager(workdir, read_only=True)
    where = checkpoint_dir(workdir)

    def restore(s):
        check_params_match(manager, s, abstract_params, where)
        return manager.restore(s, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params)))["params"]
    try:
        params, step, _ = restore_newest(manager, workdir, restore, step)
        return params, step
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


def restore_for_training(manager: ocp.CheckpointManager, *, abstract_params, abstract_train_state,
                         data_iter, workdir: str, stream=None):
    """Restores params, train state and the data iterator (in place) of the newest readable step
    for resuming; unreadable newer steps are moved aside. Returns (params, train_state, step)."""
    where = checkpoint_dir(workdir)

    def restore(step):
        check_params_match(manager, step, abstract_params, where)
        items = {"train_state": ocp.args.StandardRestore(abstract_train_state)}
        if "ema" in abstract_train_state and has_item(workdir, step, "ema"):  # else a checkpoint from before
            items = {"ema": ocp.args.StandardRestore(abstract_train_state["ema"]),
                     "train_state": ocp.args.StandardRestore(
                         {k: v for k, v in abstract_train_state.items() if k != "ema"})}
        restored = manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params),
            data_iter=grain.checkpoint.CheckpointRestore(data_iter), **items))
        train_state = dict(restored["train_state"])
        if "ema" in items:
            train_state["ema"] = restored["ema"]
        return restored["params"], train_state
    (params, train_state), step, bad = restore_newest(manager, workdir, restore, stream=stream)
    move_aside(manager, workdir, bad, stream)
    return params, train_state, step


def verify(workdir: str, step: int) -> str | None:
    """Reads every array and JSON item of `step` (as numpy, any device count); None when all
    read, else the first problem."""
    path = os.path.join(checkpoint_dir(workdir), str(step))
    try:
        for item in ("params", "ema", "train_state"):
            if item != "ema" or has_item(workdir, step, item):
                read_item_as_numpy(workdir, step, item)
        for item in ("extra", "data_iter"):
            for name in os.listdir(os.path.join(path, item)):
                if name.endswith(".json") or name == "metadata":
                    with open(os.path.join(path, item, name)) as f:
                        json.load(f)
    except Exception as e:  # noqa: BLE001
        return reason(e)
    return None


def abstract_like(tree):
    """ShapeDtypeStructs (with shardings) of a tree of jax arrays: the restore target."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=getattr(x, "sharding", None)), tree)
