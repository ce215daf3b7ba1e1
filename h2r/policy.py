"""A trained policy restored from a run directory: raw observations in, raw-unit actions out.

    policy = h2r.load_policy("runs/tiny")              # latest step; step=N for another
    obs = {"image": uint8[B,R,R,3], "wrist_image": uint8[B,R,R,3],   # wrist optional
           "state": f32[B, state_dim],                                 # raw units; absent for human
           "instruction": policy.tokenize(["put the red egg in the carton", ...])}
    actions = policy.act(obs, jax.random.key(0), "franka")             # f32[B, H, action_dim], raw

A Policy is a pytree (its children are the params and the normalization arrays), so a rollout
can pass it into its own jit/vmap: `jax.jit(lambda pol, o, k: pol.act(o, k, "franka"))(policy, o, k)`.
The embodiment name is static (python): it selects the normalization statistics the pipeline
used for that embodiment's dataset. Observations and actions go through h2r.data.transforms, the
functions the training pipeline composes (resize, normalize, pad, mask; unnormalize): the model
sees bitwise what it saw in training. The policy depends on the model (h2r.model.params) and the
checkpoint format (h2r.train.checkpoint) only, not on the trainer.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from h2r.data import config as data_config, transforms
from h2r.errors import CheckpointError
from h2r.model import params as params_lib


class _Static:
    """Non-array parts of a Policy (pytree aux data: compared by identity)."""

    def __init__(self, graphdef, rest, config, tokenizer, norm_mode, workdir, step, params_item="params"):
        self.graphdef, self.rest, self.config = graphdef, rest, config
        self.tokenizer, self.norm_mode, self.workdir, self.step = tokenizer, norm_mode, workdir, step
        self.params_item = params_item   # the checkpoint item the params came from: "params" or "ema"


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
    def params_item(self) -> str:
        return self.static.params_item

    @property
    def embodiments(self) -> list[str]:
        return sorted(self.stats)

    @property
    def spec(self) -> transforms.SampleSpec:
        return transforms.SampleSpec.from_config(self.config.model)

    def model(self):
        return params_lib.merge_model(self.static.graphdef, self.params, self.static.rest)

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
        """Raw observations -> the model's input layout (resized, normalized, padded, masked) with
        h2r.data.transforms.observation, as the training pipeline builds a sample.
        embodiment=None: the state is left out (state_mask all False)."""
        stats = self.stats[self.dataset_of(embodiment)]["state"] if embodiment is not None else None
        return transforms.observation(self.spec, obs, stats, self.static.norm_mode,
                                      bool(data_config.get(self.config.data, "use_wrist")))

    def raw_actions(self, actions, embodiment: str, state=None):
        """Normalized, padded model actions [B, H, max_action_dim] -> the embodiment's raw units
        [B, H, action_dim], with the statistics the pipeline normalized its actions with. An arm
        whose actions the model learned as displacements (transforms, "action frames") needs the
        raw proprio the chunk was predicted from, `state` f32 [B, state_dim]."""
        stats = self.stats[self.dataset_of(embodiment)]
        raw = transforms.raw_actions(actions, stats["action"], self.static.norm_mode)
        if "relative_action" not in stats:
            return raw
        if state is None:
            raise ValueError(f"embodiment {embodiment!r} acts relative to its proprio: raw_actions needs the "
                             f"raw state the chunk was predicted from")
        return transforms.from_relative(raw, state, stats["relative_action"])

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
    model, model_obs = policy.model(), policy.model_obs(obs, embodiment)
    k = int(policy.config.model.get("sample_candidates", 1))
    if k == 1:
        actions = model.sample_actions(model_obs, rng)
    else:   # k flows from independent noise, one encoding of the observation; act on their medoid
        action_dim = np.shape(policy.stats[policy.dataset_of(embodiment)]["action"]["mean"])[-1]
        actions = medoid(model.sample_actions(model_obs, rng, candidates=k), action_dim)
    return policy.raw_actions(actions, embodiment, obs.get("state"))


def medoid(chunks, action_dim: int):
    """[B, k, H, A] candidate chunks -> [B, H, A]: per row the candidate with the least summed
    distance to the others over the first `action_dim` dimensions (the embodiment's own; the rest
    is padding the model was never trained on). Where most candidates fall in one mode of the action
    distribution the medoid is one of them (in one dimension it is the median), where the
    deterministic flow (sample_noise 0) can land between the modes."""
    flat = chunks[..., :action_dim].reshape(chunks.shape[0], chunks.shape[1], -1)
    dist = jnp.linalg.norm(flat[:, :, None] - flat[:, None, :], axis=-1)   # [B, k, k]
    best = jnp.argmin(dist.sum(-1), axis=1)
    return jnp.take_along_axis(chunks, best[:, None, None, None], axis=1)[:, 0]


@functools.partial(jax.jit, static_argnames="embodiment")
def _embed(policy: Policy, obs, embodiment):
    if "state_mask" not in obs:
        obs = policy.model_obs(obs, embodiment)
    return policy.model().embed(obs)


def _stats_arrays(norm_stats: dict) -> dict:
    """Per dataset: action and state statistics as arrays, and for an arm that acts relative to
    its proprio the matrix M of transforms.relative_matrix ("relative_action", [state_dim, A])."""
    out = {}
    for name, s in norm_stats.items():
        out[name] = {key: transforms.stats_arrays(s[key]) for key in ("action", "state")}
        if s.get("relative_action"):
            out[name]["relative_action"] = transforms.relative_matrix(
                s["relative_action"], len(s["state"]["mean"]), len(s["action"]["mean"]))
    return out


def load_policy(workdir: str, step: int | None = None, *, ema: bool = False) -> Policy:
    """Restores the policy of run `workdir` at `step` onto the local device; by default the newest
    step that reads (a damaged newer step is named in a warning on stderr).

    ema=True uses the exponential moving average of the params (the checkpoint's `ema` item)
    instead of the raw params.
    """
    import orbax.checkpoint as ocp  # noqa: PLC0415

    from h2r.config import config_from_json  # noqa: PLC0415
    from h2r.train import checkpoint  # noqa: PLC0415

    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        raise CheckpointError(f"{config_path} does not exist: {workdir!r} is not a training run directory")
    config = config_from_json(config_path)
    graphdef, abstract_state, rest = params_lib.abstract_model(config.model, int(config.train.seed))
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract_params = params_lib.abstract_params(abstract_state, device)
    manager = checkpoint.make_manager(workdir, read_only=True)
    where = checkpoint.checkpoint_dir(workdir)

    def restore(step):
        # One check suffices: the `ema` item (or train_state's EMA) has the params' tree.
        checkpoint.check_params_match(manager, step, abstract_params, where)
        if ema and not checkpoint.has_item(workdir, step, "ema"):
            # A checkpoint from before the `ema` item: the EMA is inside train_state (read as numpy).
            state = checkpoint.read_item_as_numpy(workdir, step, "train_state")
            extra = manager.restore(step, args=ocp.args.Composite(extra=ocp.args.JsonRestore()))["extra"]
            return jax.device_put(state["ema"], device), extra
        item = "ema" if ema else "params"
        restored = manager.restore(step, args=ocp.args.Composite(
            extra=ocp.args.JsonRestore(), **{item: ocp.args.StandardRestore(abstract_params)}))
        return restored[item], restored["extra"]
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
    norm_mode = data_config.get(config.data, "norm")
    static = _Static(graphdef, rest, config, tokenizer, norm_mode, os.path.abspath(workdir), step,
                     "ema" if ema else "params")
    return Policy(params, _stats_arrays(norm_stats), static)

