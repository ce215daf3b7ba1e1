"""One trainer for pretraining and co-training: `train(config, workdir)`.

The train state is a plain pytree {params, opt_state, ema, step, rng}; params are a nested dict
of arrays (string keys, the same dict orbax saves), merged back into the nnx model inside the
jitted step. The step has explicit in/out shardings from h2r.train.sharding.

Determinism: the step's rng is fold_in(run rng, step) and the data iterator state is saved with
every checkpoint, so a run killed and resumed computes exactly what an uninterrupted run does.
Co-training: config.train.init_from names a finished run; its params initialize this run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from h2r.config import ConfigError, save_config
from h2r import files
from h2r.data.config import LAYOUT_KEYS  # the sample layout: config.model and config.data agree on it
from h2r.errors import DataError, H2RError
from h2r.model import VLA
from h2r.model.params import abstract_model, abstract_params as make_abstract_params, merge_model, str_keys
from h2r.train import checkpoint, metrics, sharding


class TrainingError(H2RError):
    """Training cannot go on (e.g. the loss became NaN/inf); the message says what is kept."""


# ---------------------------------------------------------------------------- params as dicts
# (shared with the served policy: h2r/model/params.py)
def param_shardings(params_state, mesh):
    """NamedShardings (string-keyed dict) of the params from their logical axis names."""
    return str_keys(nnx.to_pure_dict(sharding.state_shardings(params_state, mesh)))


def init_params(model_config, seed: int, shardings):
    """Creates the model's params directly sharded (jit with out_shardings) and its other state."""
    def create():
        model = VLA(model_config, rngs=nnx.Rngs(seed))
        _, params, rest = nnx.split(model, nnx.Param, ...)
        return str_keys(nnx.to_pure_dict(params)), rest
    params, rest = jax.jit(create, out_shardings=(shardings, None))()
    return params, rest


# ---------------------------------------------------------------------------- optimizer
def lr_schedule(train_config) -> optax.Schedule:
    warmup = int(train_config.warmup_steps)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=float(train_config.lr), warmup_steps=warmup,
        decay_steps=max(int(train_config.steps), warmup + 1), end_value=0.1 * float(train_config.lr))


NO_DECAY = ("image_pos", "text_pos", "subtask_pos", "action_pos", "view_embed", "query_slots", "channel_embed",
            "action_queries", "position_bias")


def make_optimizer(train_config) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW. Weight decay only on matrices that transform features:
    not on vectors (norms, biases) nor on learned positions and slot/channel embeddings, which
    decay would pull toward zero where the data gives them little gradient."""
    def decay_mask(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, p: p.ndim >= 2 and not any(str(getattr(k, "key", k)) in NO_DECAY for k in path), params)
    return optax.chain(
        optax.clip_by_global_norm(float(train_config.grad_clip)),
        optax.adamw(lr_schedule(train_config), b1=0.9, b2=0.95,
                    weight_decay=float(train_config.weight_decay), mask=decay_mask))


def train_state_shardings(tx, abstract_params, params_sh, mesh):
    """Shardings of {opt_state, ema, step, rng}: optimizer moments follow their params."""
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    opt_abstract = jax.eval_shape(tx.init, abstract_params)
    opt_sh = optax.tree_map_params(tx, lambda _, sh: sh, opt_abstract, params_sh,
                                   transform_non_params=lambda _: replicated)
    return {"opt_state": opt_sh, "ema": params_sh, "step": replicated, "rng": replicated}


# ---------------------------------------------------------------------------- the step
def make_train_step(graphdef, rest, tx, schedule, ema_decay: float):
    def train_step(params, train_state, batch):
        step = train_state["step"]
        rng = jax.random.fold_in(jax.random.wrap_key_data(train_state["rng"]), step)

        def loss_fn(p):
            return merge_model(graphdef, p, rest).compute_loss(batch, rng)

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, train_state["opt_state"], params)
        params = optax.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, train_state["ema"], params)
        step_metrics = {**aux, "loss": loss, "grad_norm": optax.tree.norm(grads),
                        "param_norm": optax.tree.norm(params), "lr": schedule(step)}
        new_state = {"opt_state": opt_state, "ema": ema, "step": step + 1, "rng": train_state["rng"]}
        return params, new_state, step_metrics
    return train_step


# ---------------------------------------------------------------------------- data
def make_data(config):
    """(this process's iterator of numpy batches (a checkpointable grain DatasetIterator), the
    normalization stats {dataset: stats} it normalizes with, its tokenizer or None). The datasets
    are opened and indexed, the stats and the tokenizer loaded, once (pipeline.prepare)."""
    if config.data.kind == "synthetic":
        from h2r.train import synthetic  # noqa: PLC0415
        return (synthetic.make_iterator(config, jax.process_index(), jax.process_count()),
                synthetic.norm_stats(config), None)
    from h2r.data import pipeline  # noqa: PLC0415
    prepared = pipeline.prepare(config)
    iterator = pipeline.make_iterator(config, jax.process_index(), jax.process_count(), prepared=prepared)
    return iterator, prepared.norm_stats, prepared.tokenizer


def to_global(local_batch, mesh):
    """Per-process numpy batch -> global jax.Arrays split over the mesh's batch axes."""
    from h2r.data import pipeline  # noqa: PLC0415
    return pipeline.to_global_batch(local_batch, sharding.batch_sharding(mesh))


def check_tokenizer(config, tok):
    """The data's tokenizer must fit the model's embedding table."""
    if tok is None:
        return
    if tok.vocab_size > config.model.vocab_size:
        raise ConfigError(f"the tokenizer of {config.data.dir} has {tok.vocab_size} words but "
                          f"config.model.vocab_size={config.model.vocab_size}: raise model.vocab_size")


def _check_layout(config):
    diff = {k: (config.model.get(k), config.data.get(k)) for k in LAYOUT_KEYS
            if config.model.get(k) != config.data.get(k)}
    if diff:
        raise ConfigError("config.model and config.data disagree on the sample layout: " + ", ".join(
            f"{k}: model {m} vs data {d}" for k, (m, d) in diff.items()))


# ---------------------------------------------------------------------------- run directory
def write_run_files(config, workdir: str, norm_stats: dict, tok=None):
    """config.json, norm_stats.json and tokenizer.json (the stats and tokenizer the pipeline
    loaded) next to the checkpoints (main process): what `h2r.load_policy` reads."""
    if jax.process_index() != 0:
        return
    os.makedirs(workdir, exist_ok=True)
    save_config(config, os.path.join(workdir, "config.json"))
    files.write_json(os.path.join(workdir, "norm_stats.json"), norm_stats, indent=1)
    if tok is not None:
        tok.save(os.path.join(workdir, "tokenizer.json"))


class _StopSignal:
    """Records SIGTERM (preemption) so the loop can save and stop at a step boundary."""

    def __init__(self):
        self.received = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, no preemption saves
            self._previous = None
        return self

    def _handle(self, signum, frame):
        self.received = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def agreed(self) -> bool:
        """True on every process once any process received the signal (a collective)."""
        if jax.process_count() == 1:
            return self.received
        from jax.experimental import multihost_utils  # noqa: PLC0415
        flags = multihost_utils.process_allgather(np.array([self.received]))
        return bool(np.any(flags))


# ---------------------------------------------------------------------------- train
@dataclasses.dataclass
class Setup:
    """Everything the step needs that does not change during a run (built under the mesh)."""
    graphdef: Any
    rest: Any                  # the model's non-Param state (none for the VLA)
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    params_sh: Any             # NamedShardings of the params dict
    state_sh: Any              # NamedShardings of {opt_state, ema, step, rng}
    abstract_params: Any       # ShapeDtypeStructs with shardings: restore targets
    abstract_train_state: Any


def make_setup(config, mesh) -> Setup:
    """Abstract model, shardings and optimizer (call under `sharding.use_mesh(mesh)`)."""
    tc = config.train
    tx = make_optimizer(tc)
    graphdef, abstract_params_state, rest = abstract_model(config.model, tc.seed)
    # Before anything compiles: a ConfigError naming config.mesh, not jax's IndivisibleError.
    sharding.check_divisible(abstract_params_state, mesh)
    params_sh = param_shardings(abstract_params_state, mesh)
    abstract_params = make_abstract_params(abstract_params_state, params_sh)
    state_sh = train_state_shardings(tx, abstract_params, params_sh, mesh)
    return Setup(graphdef, rest, tx, lr_schedule(tc), params_sh, state_sh, abstract_params,
                 _abstract_train_state(tx, abstract_params, tc, state_sh))


def jit_train_step(setup: Setup, ema_decay: float):
    """The jitted step (params, train_state, batch) -> (params, train_state, metrics), with
    explicit in/out shardings; params and train state are donated (updated in place)."""
    return jax.jit(make_train_step(setup.graphdef, setup.rest, setup.tx, setup.schedule, ema_decay),
                   in_shardings=(setup.params_sh, setup.state_sh, None),
                   out_shardings=(setup.params_sh, setup.state_sh, None), donate_argnums=(0, 1))


LOCK_FILE = "train.lock"   # W/train.lock: one `h2r train` per run directory at a time


def train(config: ml_collections.ConfigDict, workdir: str, *, stream=None) -> dict[str, Any]:
    """Trains (or resumes) the run in `workdir`. Returns {"step", "preempted", "last_metrics"}.

    Resuming uses the config given now (e.g. a larger train.steps extends the run; the cosine
    schedule is then stretched to the new length). Everything is validated (config, lock,
    checkpoint restore) before anything in `workdir` is written, so a refused run changes nothing.
    """
    stream = stream or sys.stdout
    workdir = os.path.abspath(workdir)
    if int(config.train.steps) < 1:
        raise ConfigError(f"train.steps must be >= 1, got {config.train.steps}")
    is_main = jax.process_index() == 0
    # Another `h2r train` on this run directory is refused at once (the holder is named).
    with files.lock(os.path.join(workdir, LOCK_FILE), f"run directory {workdir}") if is_main \
            else contextlib.nullcontext():
        return _train(config, workdir, is_main, stream)


def _train(config, workdir: str, is_main: bool, stream) -> dict[str, Any]:
    tc = config.train
    _check_layout(config)
    mesh = sharding.make_mesh(config.mesh)
    sharding.check_batch_size(tc.batch_size, mesh)
    data_iter, norm_stats, tok = make_data(config)  # prepares stats and tokenizer if missing
    check_tokenizer(config, tok)
    extra = {"config": json.loads(config.to_json_best_effort()), "norm_stats": norm_stats}

    with sharding.use_mesh(mesh):
        setup = make_setup(config, mesh)
        manager = checkpoint.make_manager(workdir, keep=tc.keep, keep_period=tc.get("keep_period") or None)
        try:
            params, train_state, start_step = _initial_state(config, workdir, setup, manager, data_iter,
                                                             is_main, stream)
        except BaseException:
            manager.close()
            raise
        if start_step >= int(tc.steps):  # a finished run: nothing to do, nothing rewritten
            manager.close()
            print(f"{workdir} is already at step {start_step} (train.steps={tc.steps}): nothing to do",
                  file=stream, flush=True)
            return {"step": start_step, "preempted": False, "last_metrics": {}}
        if is_main:
            metrics.truncate_jsonl(workdir, start_step)
        write_run_files(config, workdir, norm_stats, tok)  # only now: the checkpoints beside it fit it
        step_fn = jit_train_step(setup, float(tc.ema_decay))
        with files.disk_full_as_error(checkpoint.checkpoint_dir(workdir)):
            return _loop(config, workdir, mesh, manager, step_fn, params, train_state, data_iter,
                         start_step, extra, is_main, stream)


def _initial_state(config, workdir, setup: Setup, manager, data_iter, is_main, stream):
    """Resume from W's newest readable checkpoint; else init (co-training: params of train.init_from)."""
    tc = config.train
    params = train_state = None
    if manager.all_steps():
        newest = max(manager.all_steps())
        if newest > int(tc.steps):  # refused before anything (even a damaged step) is touched
            raise ConfigError(f"{workdir} holds checkpoints up to step {newest} but train.steps={tc.steps}: "
                              f"a run cannot be shortened (its config.json says train.steps="
                              f"{_saved_steps_setting(workdir)}); use a new --workdir or --config.train.steps>="
                              f"{newest}")
        params, train_state, start_step = checkpoint.restore_for_training(
            manager, abstract_params=setup.abstract_params, abstract_train_state=setup.abstract_train_state,
            data_iter=data_iter, workdir=workdir)
        print(f"resumed {workdir} from step {start_step}", file=stream, flush=True)
    else:
        start_step = 0
        if tc.init_from:  # co-training: the pretrained run's params, a fresh optimizer
            params, from_step = checkpoint.restore_params(tc.init_from, setup.abstract_params)
            print(f"initialized params from {tc.init_from} step {from_step}", file=stream, flush=True)
    if params is None or jax.tree.leaves(setup.rest):  # fresh params (or the model's non-param state)
        fresh_params, setup.rest = init_params(config.model, tc.seed, setup.params_sh)
        params = fresh_params if params is None else params
    if train_state is None:
        train_state = fresh_train_state(setup.tx, params, tc, setup.state_sh)
    return params, train_state, start_step


def _saved_steps_setting(workdir: str):
    try:
        return files.read_json(os.path.join(workdir, "config.json"), "run config", "")["train"]["steps"]
    except (DataError, KeyError, TypeError):
        return "?"


def _make_train_state(tx, params, seed: int):
    return {"opt_state": tx.init(params), "ema": jax.tree.map(jnp.copy, params),
            "step": jnp.zeros((), jnp.int32), "rng": jax.random.key_data(jax.random.key(seed))}


def fresh_train_state(tx, params, tc, state_sh):
    return jax.jit(lambda p: _make_train_state(tx, p, int(tc.seed)), out_shardings=state_sh)(params)


def _abstract_train_state(tx, abstract_params, tc, state_sh):
    """The train state's shapes/dtypes with its shardings: the restore target."""
    shapes = jax.eval_shape(lambda p: _make_train_state(tx, p, int(tc.seed)), abstract_params)
    return jax.tree.map(lambda a, sh: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sh), shapes, state_sh)


def _loop(config, workdir, mesh, manager, step_fn, params, train_state, data_iter, start_step,
          extra, is_main, stream):
    tc = config.train
    total = int(tc.steps)
    step = start_step
    logger = None
    last_saved = start_step if manager.latest_step() is not None else None
    last_metrics: dict = {}
    try:
        with _StopSignal() as stop:
            while step < total:
                batch = to_global(next(data_iter), mesh)
                if logger is None:  # compile ahead of time: FLOPs per step from XLA's cost analysis
                    compiled = step_fn.lower(params, train_state, batch).compile()
                    flops = metrics.compiled_flops(compiled)
                    flops = flops * mesh.size if flops else None
                    logger = metrics.MetricLogger(workdir, total_steps=total, global_batch_size=tc.batch_size,
                                                  flops_per_step=flops, is_main=is_main, stream=stream)
                    logger.start(step)
                params, train_state, step_metrics = compiled(params, train_state, batch)
                step += 1
                logger.record(step, step_metrics)
                checkpoint_due = step % tc.checkpoint_every == 0 or step == total
                # In multi-process runs the signal is agreed on at log steps only (a collective).
                if jax.process_count() == 1 or step % tc.log_every == 0 or checkpoint_due:
                    preempted = stop.agreed()
                else:
                    preempted = False
                if step % tc.log_every == 0 or step == total or checkpoint_due or preempted:
                    last_metrics = logger.flush(step) or last_metrics
                if checkpoint_due or preempted:
                    checkpoint.save(manager, step, params=params, train_state=train_state,
                                    data_iter=data_iter, extra=extra,
                                    metrics={"loss": last_metrics.get("loss", float("inf"))},
                                    force=True)
                    last_saved = step
                if preempted:
                    print(f"SIGTERM: saved step {step} in {checkpoint.checkpoint_dir(workdir)}; stopping",
                          file=stream, flush=True)
                    return {"step": step, "preempted": True, "last_metrics": last_metrics}
    except metrics.NonFiniteLoss as e:
        manager.wait_until_finished()
        kept = (f"the last good checkpoint, step {last_saved}, is intact in "
                f"{checkpoint.checkpoint_dir(workdir)}" if last_saved is not None else "no checkpoint was saved")
        raise TrainingError(f"training stopped: loss is {e.value} at step {e.step} of {workdir}; {kept}. "
                            f"Lower train.lr or check the data.") from None
    finally:
        manager.wait_until_finished()
        manager.close()
        if logger is not None:
            logger.close()
    return {"step": step, "preempted": False, "last_metrics": last_metrics}
