"""A trained policy restored from a run directory: raw observations in, raw-unit actions out.

    policy = h2r.load_policy("runs/tiny")              # latest step; step=N for another
    obs = {"image": uint8[B,R,R,3], "wrist_image": uint8[B,R,R,3],   # wrist optional
           "state": f32[B, state_dim],                                 # raw units; absent for human
           "instruction": policy.tokenize(["put the red egg in the carton", ...])}
    actions = policy.act(obs, jax.random.key(0), "franka")             # f32[B, H, action_dim], raw

A Policy is a pytree (its children are the params and the normalization arrays), so a rollout
can pass it into its own jit/vmap: `jax.jit(lambda pol, o, k: pol.act(o, k, "franka"))(policy, o, k)`.
The embodiment name is static (python): it selects the normalization statistics the pipeline
used for that embodiment's dataset. Normalization mirrors h2r.data.stats (same formulas, in jnp).
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from h2r.errors import CheckpointError

_EPS = 1e-6  # as h2r.data.stats


def _normalize(x, s, mode):
    if mode == "quantile":
        span = s["q99"] - s["q01"]
        out = 2.0 * (x - s["q01"]) / jnp.maximum(span, _EPS) - 1.0
        return jnp.where(span > _EPS, jnp.clip(out, -1.0, 1.0), 0.0)
    return jnp.where(s["std"] > _EPS, (x - s["mean"]) / jnp.maximum(s["std"], _EPS), 0.0)


def _unnormalize(x, s, mode):
    if mode == "quantile":
        span = s["q99"] - s["q01"]
        return jnp.where(span > _EPS, (x + 1.0) / 2.0 * span + s["q01"], s["q01"])
    return jnp.where(s["std"] > _EPS, x * s["std"] + s["mean"], s["mean"])


class _Static:
    """Non-array parts of a Policy (pytree aux data: compared by identity)."""

    def __init__(self, graphdef, rest, config, tokenizer, norm_mode, workdir, step):
        self.graphdef, self.rest, self.config = graphdef, rest, config
        self.tokenizer, self.norm_mode, self.workdir, self.step = tokenizer, norm_mode, workdir, step


@jax.tree_util.register_pytree_node_class
class Policy:
    def __init__(self, params, stats, static: _Static):
        self.params = params      # nested dict of arrays (the checkpoint's `params` or EMA)
        self.stats = stats        # {dataset: {"action"|"state": {"mean","std","q01","q99"}: f32[D]}}
        self.static = static

    def tree_flatten(self):
        return (self.params, self.stats), self.static

    @classmethod
    def tree_unflatten(cls, static, children):
        return cls(*children, static)

    # ------------------------------------------------------------------ info
    @property
    def config(self):
        return self.static.config

    @property
    def step(self) -> int:
        return self.static.step

    @property
    def embodiments(self) -> list[str]:
        return sorted(self.stats)

    def model(self):
        from h2r.train.trainer import merge_model  # noqa: PLC0415
        return merge_model(self.static.graphdef, self.params, self.static.rest)

    # ------------------------------------------------------------------ text
    def tokenize(self, texts: list[str]) -> np.ndarray:
        """Instructions -> int32 [B, max_instruction_len] with the run's tokenizer."""
        if self.static.tokenizer is None:
            raise CheckpointError(f"{self.static.workdir} has no tokenizer.json (trained on synthetic data?)")
        return self.static.tokenizer.encode_batch(list(texts), int(self.config.model.max_instruction_len))

    def decode(self, ids) -> list[str]:
        return [self.static.tokenizer.decode(row) for row in np.asarray(ids)]

    # ------------------------------------------------------------------ observations
    def dataset_of(self, embodiment: str) -> str:
        for name in (embodiment, f"h2r_{embodiment}"):
            if name in self.stats:
                return name
        raise CheckpointError(f"no normalization statistics for embodiment {embodiment!r} in "
                              f"{self.static.workdir} (known datasets: {self.embodiments})")

    def model_obs(self, obs, embodiment: str | None) -> dict:
        """Raw observations -> the model's input layout (normalized, padded, masked).
        embodiment=None: the state is left out (state_mask all False)."""
        c = self.config.model
        stats = self.stats[self.dataset_of(embodiment)] if embodiment is not None else None
        image = jnp.asarray(obs["image"])
        batch = image.shape[0]
        size = int(c.image_size)

        def resize(im):
            if im.shape[1:3] == (size, size):
                return im
            out = jax.image.resize(im.astype(jnp.float32), (batch, size, size, 3), "bilinear")
            return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)

        has_wrist = obs.get("wrist_image") is not None and bool(self.config.data.get("use_wrist", True))
        wrist = resize(jnp.asarray(obs["wrist_image"])) if has_wrist else jnp.zeros((batch, size, size, 3), jnp.uint8)
        state_dim = stats["state"]["mean"].shape[0] if stats is not None else 0  # no embodiment: no proprio
        max_state = int(c.max_state_dim)
        if state_dim:
            state = _normalize(jnp.asarray(obs["state"], jnp.float32)[:, :state_dim], stats["state"], self.static.norm_mode)
            state = jnp.pad(state, ((0, 0), (0, max_state - state_dim)))
        else:
            state = jnp.zeros((batch, max_state), jnp.float32)
        return {
            "image": resize(image),
            "wrist_image": wrist,
            "image_mask": jnp.broadcast_to(jnp.array([True, has_wrist]), (batch, 2)),
            "state": state,
            "state_mask": jnp.broadcast_to(jnp.arange(max_state) < state_dim, (batch, max_state)),
            "instruction": jnp.asarray(obs["instruction"], jnp.int32),
        }

    # ------------------------------------------------------------------ actions, embeddings
    def act(self, obs, rng, embodiment: str):
        """Raw observations -> f32 [B, H, action_dim] action chunk in the embodiment's raw units."""
        return _act(self, obs, rng, embodiment)

    def sample_normalized(self, obs, rng):
        """Model-layout obs (a pipeline batch without actions) -> f32 [B, H, max_action_dim] in
        normalized units (offline action error)."""
        return _sample_normalized(self, obs, rng)

    def embed(self, obs, embodiment: str | None = None):
        """Pooled prefix embedding f32 [B, D].

        `obs` in the model layout (has "state_mask", e.g. a pipeline batch) is used as is. Raw
        observations are prepared with `embodiment`'s statistics; raw observations without an
        embodiment are embedded from the images and instruction only (no proprio token input).
        """
        return _embed(self, obs, embodiment)


@functools.partial(jax.jit)
def _sample_normalized(policy: Policy, obs, rng):
    return policy.model().sample_actions(obs, rng)


@functools.partial(jax.jit, static_argnames="embodiment")
def _act(policy: Policy, obs, rng, embodiment: str):
    actions = policy.model().sample_actions(policy.model_obs(obs, embodiment), rng)
    stats = policy.stats[policy.dataset_of(embodiment)]["action"]
    action_dim = stats["mean"].shape[0]
    return _unnormalize(actions[..., :action_dim], stats, policy.static.norm_mode)


@functools.partial(jax.jit, static_argnames="embodiment")
def _embed(policy: Policy, obs, embodiment):
    if "state_mask" not in obs:
        obs = policy.model_obs(obs, embodiment)
    return policy.model().embed(obs)


def _stats_arrays(norm_stats: dict) -> dict:
    return {name: {key: {k: np.asarray(v, np.float32) for k, v in s[key].items()
                         if k in ("mean", "std", "q01", "q99")}
                   for key in ("action", "state")}
            for name, s in norm_stats.items()}


def load_policy(workdir: str, step: int | None = None, *, ema: bool = False) -> Policy:
    """Restores the policy of run `workdir` at `step` onto the local device; by default the newest
    step that reads (a damaged newer step is named in a warning on stderr).

    ema=True uses the exponential moving average of the params instead of the raw params.
    """
    import orbax.checkpoint as ocp  # noqa: PLC0415

    from h2r.config import config_from_json  # noqa: PLC0415
    from h2r.train import checkpoint, trainer  # noqa: PLC0415

    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        raise CheckpointError(f"{config_path} does not exist: {workdir!r} is not a training run directory")
    config = config_from_json(config_path)
    graphdef, abstract_state, rest = trainer.abstract_model(config.model, int(config.train.seed))
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract_params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
                                   trainer.str_keys(nnx.to_pure_dict(abstract_state)))
    manager = checkpoint.make_manager(workdir, read_only=True)

    def restore(step):
        checkpoint.check_params_match(manager, step, abstract_params, checkpoint.checkpoint_dir(workdir))
        if ema:
            # The EMA lives in train_state: restore that item whole (its structure needs the optimizer).
            tx = trainer.make_optimizer(config.train)
            abstract_train_state = {"opt_state": jax.eval_shape(tx.init, abstract_params), "ema": abstract_params,
                                    "step": jax.ShapeDtypeStruct((), np.int32, sharding=device),
                                    "rng": jax.ShapeDtypeStruct((2,), np.uint32, sharding=device)}
            abstract_train_state = jax.tree.map(
                lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), abstract_train_state)
            restored = manager.restore(step, args=ocp.args.Composite(
                train_state=ocp.args.StandardRestore(abstract_train_state), extra=ocp.args.JsonRestore()))
            return restored["train_state"]["ema"], restored["extra"]
        restored = manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params), extra=ocp.args.JsonRestore()))
        return restored["params"], restored["extra"]
    try:  # the newest readable step unless `step` is given (a damaged newer one is named)
        (params, extra), step, _ = checkpoint.restore_newest(manager, workdir, restore, step)
    finally:
        manager.close()
    norm_stats = extra["norm_stats"]
    tokenizer = None
    tok_path = os.path.join(workdir, "tokenizer.json")
    if os.path.exists(tok_path):
        from h2r.data.tokenizer import Tokenizer  # noqa: PLC0415
        tokenizer = Tokenizer.load(tok_path)
    norm_mode = config.data.get("norm", "quantile")
    static = _Static(graphdef, rest, config, tokenizer, norm_mode, os.path.abspath(workdir), step)
    return Policy(params, _stats_arrays(norm_stats), static)

