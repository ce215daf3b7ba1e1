"""The VLA: a pi0.5-style hierarchical policy in flax.nnx.

Prefix (one bidirectional transformer, width D), tokens in three groups:
  observation  head-view patches, wrist-view patches (dropped by image_mask), instruction tokens,
               one proprio token (state * state_mask). Attends only to itself, so its outputs do
               not depend on the subtask: `embed` and the subtask head read it without leakage.
  query slots  Ls learned slots that attend to the observation and each other; a tied linear read-
               out predicts the subtask tokens in parallel (the high-level output).
  subtask      the subtask's tokens (teacher-forced in training, predicted at inference); they
               attend to the observation and to each other.
Why parallel slots rather than an autoregressive decoder: subtask phrases are short templated
text ("pick up the red egg") nearly determined by the scene and the phase, so one parallel pass
fits them, costs one prefix pass at inference instead of Ls, and trains in the same pass as the
action loss (all three groups share one forward pass thanks to the block attention mask).

Action expert (a smaller transformer, width E): one token per action step, built from the noisy
action and the flow time; self-attention over the chunk, cross-attention to the prefix outputs of
the observation and subtask groups, MLP. Trained with flow matching (h2r/model/flow.py);
sampling integrates config.flow_steps Euler steps, reusing the prefix keys/values.

The model never receives the embodiment id: it must read the embodiment from the images.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from h2r.data.transforms import SampleSpec
from h2r.errors import DataError
from h2r.model import flow
from h2r.model.conv_stem import ConvStem
from h2r.model.keypoints import KeypointStem
from h2r.model.layers import BTD, Block, Dense, RMSNorm, constrain, param, sharding_active

OBS, QUERY, SUBTASK, ACTQ = 0, 1, 2, 3
MAX_SUBGOALS = 8
# ALLOWED[query_group, key_group]: which token groups may attend to which.
ALLOWED = np.array([[True, False, False, False],   # observation -> observation only
                    [True, True, False, False],    # query slots -> observation, slots
                    [True, False, True, False],    # subtask -> observation, subtask
                    [True, False, True, True]])    # action queries -> observation, subtask, themselves


def _call_block(block, *args):
    return block(*args)


_remat_block = nnx.remat(_call_block)


def _by_patch(x: jax.Array, P: int) -> jax.Array:
    """[B, R, R, C] -> [B, (R/P)^2, P*P*C]: each P x P patch's values, patches in row-major order."""
    B, R, _, C = x.shape
    n = R // P
    return x.reshape(B, n, P, n, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, n * n, P * P * C)


class VLA(nnx.Module):
    """`VLA(config.model, rngs=nnx.Rngs(seed))`. Under `h2r.train.sharding.use_mesh(mesh)` the
    parameters are created sharded; without a mesh they carry the logical names as metadata."""

    def __init__(self, config: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
        self.config = ml_collections.FrozenConfigDict(config)
        if sharding_active():
            self._build(rngs)
        else:  # no mesh: keep the logical names as metadata, place nothing
            with nnx.use_eager_sharding(False):
                self._build(rngs)

    # ------------------------------------------------------------------ parameters
    def _build(self, rngs: nnx.Rngs) -> None:
        c = self.config
        if c.image_size % c.patch_size:
            raise ValueError(f"model.image_size={c.image_size} is not a multiple of model.patch_size={c.patch_size}")
        dtype = jnp.dtype(c.dtype)
        D, E = c.width, c.expert_width
        self.num_patches = (c.image_size // c.patch_size) ** 2
        pos_init = nnx.initializers.normal(0.02)

        # Prefix embeddings.
        if c.get("stem", "patch") == "conv":
            self.patch_embed = ConvStem(c.patch_size, c.stem_channels, D, rngs=rngs, dtype=dtype)
        elif c.get("stem", "patch") == "patch":
            self.patch_embed = Dense((c.patch_size ** 2 * 3,), (D,), ("patch", "embed"), rngs=rngs, dtype=dtype)
        else:
            raise ValueError(f"model.stem={c.stem!r}: expected 'patch' (linear, ViT) or 'conv'")
        self.image_pos = param(rngs, pos_init, (self.num_patches, D), ("seq", "embed"))
        self.view_embed = param(rngs, pos_init, (2, D), ("seq", "embed"))
        self.token_embed = param(rngs, nnx.initializers.normal(1.0 / math.sqrt(D)), (c.vocab_size, D),
                                 ("vocab", "embed"))
        self.text_pos = param(rngs, pos_init, (c.max_instruction_len, D), ("seq", "embed"))
        self.state_proj = Dense((c.max_state_dim,), (D,), ("state", "embed"), rngs=rngs, dtype=dtype)
        # Optional: keypoint tokens per view (h2r/model/keypoints.py), shared by both views.
        self.keypoint_stem = (KeypointStem(c.keypoint_channels, c.keypoints, D, rngs=rngs, dtype=dtype,
                                           temperature=c.get("keypoint_temperature", 10.0),
                                           hidden_layers=c.get("keypoint_layers", 1),
                                           windows=c.get("keypoint_windows", 1),
                                           position_prior=c.get("keypoint_position_prior", False),
                                           peaks=c.get("keypoint_peaks", False),
                                           image_size=c.image_size)
                              if c.get("keypoints", 0) else None)
        # Per view, what the summary token and the subgoal head read of the keypoint stem.
        features = self.keypoint_stem.feature_dim() if self.keypoint_stem is not None else 0
        # Optional: the observation-summary token (model.summary_mlp_dim > 0), an MLP over every
        # keypoint of both views and the proprio. Why: the keypoints say where the objects are, but
        # a 2-layer, 64-wide transformer did not learn to relate 32 separate keypoint tokens to the
        # gripper in a few thousand steps; one MLP that sees all coordinates at once does. Through
        # h2r train + h2r eval: one egg in one scene 23/64 -> 56/64 (2000 steps); sort_eggs:target-robot
        # 0.11 / 0.18 -> 0.35 / 0.40 on two training seeds (6000 steps; BUILD_NOTES.md, "Learning", sessions 7-8).
        if c.get("summary_mlp_dim", 0):
            if not c.get("keypoints", 0):
                raise ValueError("model.summary_mlp_dim > 0 needs keypoint tokens (model.keypoints > 0)")
            self.summary_in = Dense((2 * features + c.max_state_dim,), (c.summary_mlp_dim,), ("state", "mlp"),
                                    rngs=rngs, dtype=dtype)
            self.summary_out = Dense((c.summary_mlp_dim,), (D,), ("mlp", "embed"), rngs=rngs, dtype=dtype)
        else:
            self.summary_in = self.summary_out = None
        self.query_slots = param(rngs, pos_init, (c.max_subtask_len, D), ("seq", "embed"))
        self.subtask_pos = param(rngs, pos_init, (c.max_subtask_len, D), ("seq", "embed"))
        self.blocks = nnx.List([Block(D, c.num_heads, c.head_dim, c.mlp_dim, rngs=rngs, dtype=dtype)
                                for _ in range(c.depth)])
        self.prefix_norm = RMSNorm(D, rngs=rngs, dtype=dtype)

        # Action queries (optional, model.action_queries_weight > 0): H prefix tokens that read the
        # observation and the subtask and regress the action chunk directly (an auxiliary loss).
        # Why: the flow-matching loss reaches the backbone through a noisy, indirect signal, and a
        # tiny model trained for minutes learns to ignore the image; a direct regression target
        # teaches the backbone where things are (the role FAST tokens play in pi0.5's knowledge
        # insulation). The action expert attends to these tokens too.
        if c.get("action_queries_weight", 0.0) > 0:
            self.action_queries = param(rngs, pos_init, (c.action_horizon, D), ("seq", "embed"))
            self.action_readout = Dense((D,), (c.max_action_dim,), ("embed", "action"), rngs=rngs, dtype=dtype)
        else:
            self.action_queries = self.action_readout = None

        # Subgoal head (optional, model.subgoal_loss_weight > 0): a small MLP from the keypoints of
        # both views and the subtask regresses the proprio the robot will have at the end of the
        # current subtask and of the next ones (hindsight subgoals from the robot's own recorded
        # data: h2r/data/pipeline.py subgoal_steps; before the first grasp they say where every
        # object of the task is). Why: trained by the action loss alone, the keypoints tracked the
        # white egg but not the brown one (linear-probe R2 0.98 vs 0.04 after 6000 steps); with
        # this head 0.99 and 0.87. Reading the keypoints only (not the transformer) makes the stem
        # itself localize the objects. Training only: the policy's inputs do not change.
        if c.get("subgoal_loss_weight", 0.0) > 0:
            if not c.get("keypoints", 0):
                raise ValueError("model.subgoal_loss_weight > 0 needs keypoint tokens (model.keypoints > 0)")
            self.subgoal_hidden = Dense((2 * features + D,), (D,), ("mlp", "embed"), rngs=rngs, dtype=dtype)
            # Which subgoal (0 = the current subtask's end, 1 = the next one's, ...): the pipeline
            # decides how many (h2r/data/pipeline.py SUBGOALS, at most MAX_SUBGOALS).
            self.subgoal_embed = param(rngs, pos_init, (MAX_SUBGOALS, D), ("seq", "embed"))
            self.subgoal_readout = Dense((D,), (c.max_state_dim,), ("embed", "state"), rngs=rngs, dtype=dtype)
        else:
            self.subgoal_hidden = self.subgoal_readout = self.subgoal_embed = None

        # Action expert.
        self.action_in = Dense((c.max_action_dim,), (E,), ("action", "embed"), rngs=rngs, dtype=dtype)
        self.time_mix = Dense((2 * E,), (E,), ("mlp", "embed"), rngs=rngs, dtype=dtype)
        self.time_out = Dense((E,), (E,), ("embed", "mlp"), rngs=rngs, dtype=dtype)
        self.action_pos = param(rngs, pos_init, (c.action_horizon, E), ("seq", "embed"))
        self.expert_blocks = nnx.List([
            Block(E, c.expert_num_heads, c.head_dim, c.expert_mlp_dim, source_width=D, rngs=rngs, dtype=dtype)
            for _ in range(c.expert_depth)])
        self.expert_norm = RMSNorm(E, rngs=rngs, dtype=dtype)
        self.action_out = Dense((E,), (c.max_action_dim,), ("embed", "action"), rngs=rngs, dtype=dtype)
        self.dtype = dtype
        # Optional (model.stem_patch_features): each patch token also reads the keypoint stem's
        # full-resolution features inside its patch. Why: a spatial softmax gives one position per
        # channel, and a channel that fires on two alike items gives their midpoint (on tidy the
        # keypoints explain the items' midpoint, R2 0.69, far better than either item, 0.31 / 0.54:
        # BUILD_NOTES, session 22); per-patch features keep each item in its own token. Measured:
        # tidy 0.250 against 0.410 ("Learning", q4): off by default.
        # Made last so the other parameters draw the initialization they always drew.
        if c.get("stem_patch_features", False):
            if self.keypoint_stem is None:
                raise ValueError("model.stem_patch_features needs the keypoint stem (model.keypoints > 0)")
            self.patch_features = Dense((c.patch_size ** 2 * c.keypoint_channels,), (D,), ("patch", "embed"),
                                        rngs=rngs, dtype=dtype)
        else:
            self.patch_features = None

    # ------------------------------------------------------------------ prefix
    def _check_obs(self, obs) -> None:
        SampleSpec.from_config(self.config).check(obs, ("image", "wrist_image", "state", "instruction"))

    def _patches(self, images: jax.Array, view: int, stem_features: jax.Array | None = None) -> jax.Array:
        """Patch tokens of one view; `stem_features`: the keypoint stem's hidden features of the
        view (read by model.stem_patch_features)."""
        c = self.config
        P = c.patch_size
        if isinstance(self.patch_embed, ConvStem):
            x = self.patch_embed(images)
        else:
            x = images.astype(jnp.float32) / 127.5 - 1.0
            x = self.patch_embed(_by_patch(x, P))
        if self.patch_features is not None:
            x = x + self.patch_features(_by_patch(stem_features, P))
        return x + (self.image_pos[...] + self.view_embed[view]).astype(self.dtype)

    def _keypoint_tokens(self, keypoints: jax.Array, view: int) -> jax.Array:
        return self.keypoint_stem.tokens(keypoints) + self.view_embed[view].astype(self.dtype)

    def _keypoints(self, obs):
        """Per view (head, wrist): (keypoints [B, K, 2], features [B, F], the stem's hidden features)
        (KeypointStem.readout_with_features); None without a keypoint stem."""
        if self.keypoint_stem is None:
            return None
        return (self.keypoint_stem.readout_with_features(obs["image"], 0),
                self.keypoint_stem.readout_with_features(obs["wrist_image"], 1))

    def _summary_token(self, head, wrist, image_mask, state) -> jax.Array:
        """The observation-summary token [B, 1, D]: MLP(keypoint features of both views, proprio); a
        missing view's features are zeroed (they would be the stem's reading of a blank image)."""
        views = [features * image_mask[:, v:v + 1] for v, features in enumerate((head, wrist))]
        features = jnp.concatenate([*views, state.astype(jnp.float32)], -1)
        return self.summary_out(jax.nn.gelu(self.summary_in(features)))[:, None, :]

    def _text(self, tokens: jax.Array, pos: jax.Array) -> jax.Array:
        table = self.token_embed[...]
        x = jnp.take(table, tokens, axis=0) * math.sqrt(table.shape[-1])
        return (x + pos).astype(self.dtype)

    def _encode(self, obs, subtask: jax.Array, keypoints=None):
        """Runs the prefix transformer. Returns (outputs [B, T, D], key_valid [B, T], groups [T]).
        `keypoints`: the views' keypoints when the caller has them already (`_keypoints`)."""
        self._check_obs(obs)
        c = self.config
        B = obs["image"].shape[0]
        image_mask = obs.get("image_mask")
        if image_mask is None:
            image_mask = jnp.ones((B, 2), bool)
        state = obs["state"] * obs.get("state_mask", jnp.ones_like(obs["state"], bool))
        if not c.get("use_proprio", True):  # images and language only (see model config)
            state = jnp.zeros_like(state)
        Ls, Np = c.max_subtask_len, self.num_patches

        keypoints = keypoints or self._keypoints(obs)
        head_stem, wrist_stem = (keypoints[0][2], keypoints[1][2]) if keypoints else (None, None)
        parts = [  # (tokens [B, n, D], valid [B, n], group)
            (self._patches(obs["image"], 0, head_stem), jnp.broadcast_to(image_mask[:, :1], (B, Np)), OBS),
            (self._patches(obs["wrist_image"], 1, wrist_stem), jnp.broadcast_to(image_mask[:, 1:2], (B, Np)), OBS),
        ]
        if self.keypoint_stem is not None:
            K = c.keypoints
            (head, head_features, _), (wrist, wrist_features, _) = keypoints
            parts += [(self._keypoint_tokens(head, 0), jnp.broadcast_to(image_mask[:, :1], (B, K)), OBS),
                      (self._keypoint_tokens(wrist, 1), jnp.broadcast_to(image_mask[:, 1:2], (B, K)), OBS)]
            if self.summary_in is not None:
                parts.append((self._summary_token(head_features, wrist_features, image_mask, state),
                              jnp.ones((B, 1), bool), OBS))
        parts += [
            (self._text(obs["instruction"], self.text_pos[...]), obs["instruction"] != 0, OBS),
            # The proprio token is always a valid key, so no attention row is ever empty.
            (self.state_proj(state.astype(jnp.float32))[:, None, :], jnp.ones((B, 1), bool), OBS),
            (jnp.broadcast_to(self.query_slots[...].astype(self.dtype), (B, Ls, c.width)),
             jnp.ones((B, Ls), bool), QUERY),
            (self._text(subtask, self.subtask_pos[...]), subtask != 0, SUBTASK),
        ]
        if self.action_queries is not None:
            H = c.action_horizon
            parts.append((jnp.broadcast_to(self.action_queries[...].astype(self.dtype), (B, H, c.width)),
                          jnp.ones((B, H), bool), ACTQ))
        x = constrain(jnp.concatenate([p[0] for p in parts], axis=1), BTD)
        key_valid = jnp.concatenate([p[1] for p in parts], axis=1)
        groups = np.concatenate([np.full(p[0].shape[1], p[2]) for p in parts])
        mask = jnp.asarray(ALLOWED[groups[:, None], groups[None, :]])[None] & key_valid[:, None, :]
        for block in self.blocks:
            x = self._run(block, x, mask)
        return self.prefix_norm(x), key_valid, groups

    def _run(self, block, *args):
        return (_remat_block if self.config.remat else _call_block)(block, *args)

    def _subtask_logits(self, prefix: jax.Array, groups: np.ndarray) -> jax.Array:
        slots = prefix[:, groups == QUERY]
        logits = jnp.einsum("btd,vd->btv", slots, self.token_embed[...].astype(self.dtype))
        return constrain(logits.astype(jnp.float32), ("act_batch", "act_seq", "act_vocab"))

    # ------------------------------------------------------------------ action expert
    def _expert_source(self, prefix, key_valid, groups):
        """Per-layer cross-attention keys/values of the prefix, and the source mask [B, 1, S]."""
        kv = [block.cross.project_source(prefix) for block in self.expert_blocks]
        source_mask = (key_valid & jnp.asarray(groups != QUERY)[None])[:, None, :]
        return kv, source_mask

    def _velocity(self, x_t: jax.Array, t: jax.Array, source_kv, source_mask) -> jax.Array:
        c = self.config
        B, H = x_t.shape[:2]
        a = self.action_in(x_t)
        time = jnp.broadcast_to(flow.time_embedding(t, c.expert_width)[:, None, :], a.shape)
        h = self.time_mix(jnp.concatenate([a, time.astype(self.dtype)], axis=-1))
        h = constrain(self.time_out(jax.nn.swish(h)) + self.action_pos[...].astype(self.dtype), BTD)
        self_mask = jnp.ones((B, H, H), bool)
        cross_mask = jnp.broadcast_to(source_mask, (B, H, source_mask.shape[-1]))
        for block, kv in zip(self.expert_blocks, source_kv):
            h = self._run(block, h, self_mask, kv, cross_mask)
        return self.action_out(self.expert_norm(h)).astype(jnp.float32)

    # ------------------------------------------------------------------ public API
    def compute_loss(self, batch, rng: jax.Array):
        """Flow-matching action loss + weighted subtask loss. Returns (loss, metrics dict)."""
        c = self.config
        actions = batch["actions"].astype(jnp.float32)
        B = actions.shape[0]
        if actions.shape[1:] != (c.action_horizon, c.max_action_dim):
            raise DataError(f"batch 'actions' has shape {actions.shape}, expected "
                            f"[B, {c.action_horizon}, {c.max_action_dim}] from the model config")
        if batch["subtask"].shape[1:] != (c.max_subtask_len,):
            raise DataError(f"batch 'subtask' has shape {batch['subtask'].shape}, expected "
                            f"[B, {c.max_subtask_len}] from the model config")

        keypoints = self._keypoints(batch)   # once: the prefix and the subgoal head both read them
        prefix, key_valid, groups = self._encode(batch, batch["subtask"], keypoints)

        # Subtask head: cross-entropy over all Ls slots (pads included: they mark the end), per
        # sample weight; samples without a subtask label (all pad) contribute nothing.
        logits = self._subtask_logits(prefix, groups)
        target = batch["subtask"]
        token_ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), target[..., None], axis=-1)[..., 0]
        has_label = jnp.any(target != 0, axis=-1)
        w_sub = batch["subtask_loss_weight"].astype(jnp.float32) * has_label
        subtask_loss = jnp.sum(w_sub * token_ce.mean(-1)) / jnp.maximum(jnp.sum(w_sub), 1e-9)
        subtask_acc = jnp.sum(w_sub * (jnp.argmax(logits, -1) == target).mean(-1)) / jnp.maximum(
            jnp.sum(w_sub), 1e-9)

        # Action expert: flow matching on the valid (step, dim) elements only. Masked elements
        # are zeroed in the input as well, so they cannot influence the valid ones.
        mask = batch["action_valid"][:, :, None] & batch["action_dim_mask"][:, None, :]
        actions = jnp.where(mask, actions, 0.0)
        noise_rng, time_rng = jax.random.split(rng)
        noise = jax.random.normal(noise_rng, actions.shape, jnp.float32)
        t = flow.sample_time(time_rng, B)
        x_t, target_v = flow.noisy_actions(actions, noise, t)
        source_kv, source_mask = self._expert_source(prefix, key_valid, groups)
        v = self._velocity(x_t, t, source_kv, source_mask)
        action_loss = flow.masked_weighted_mse(v, target_v, mask, batch["action_loss_weight"])

        loss = action_loss + c.subtask_loss_weight * subtask_loss
        metrics = {"loss": loss, "action_loss": action_loss, "subtask_loss": subtask_loss,
                   "subtask_accuracy": subtask_acc}
        if self.action_queries is not None:
            direct = self.action_readout(prefix[:, groups == ACTQ]).astype(jnp.float32)
            query_loss = flow.masked_weighted_mse(direct, actions, mask, batch["action_loss_weight"])
            loss = loss + c.action_queries_weight * query_loss
            metrics.update(loss=loss, action_query_loss=query_loss)
        if self.subgoal_readout is not None:
            loss, metrics = self._add_subgoal_loss(batch, keypoints, loss, metrics)
        return loss, metrics

    def _add_subgoal_loss(self, batch, keypoints, loss, metrics):
        """Masked MSE of the subgoal head against the hindsight subgoal (normalized proprio), on
        samples with a proprio (robots), weighted like their action loss."""
        views = [features for _, features, _ in keypoints]
        tokens = batch["subtask"]
        valid = (tokens != 0).astype(jnp.float32)[..., None]
        subtask = jnp.sum(self._text(tokens, 0.0) * valid, 1) / jnp.maximum(jnp.sum(valid, 1), 1.0)
        h = self.subgoal_hidden(jnp.concatenate([*views, subtask.astype(jnp.float32)], -1))
        target = batch["subgoal"]                       # [B, G, S]: the next G subgoals
        h = jax.nn.gelu(h[:, None] + self.subgoal_embed[: target.shape[1]][None].astype(self.dtype))
        pred = self.subgoal_readout(h).astype(jnp.float32)
        mask = jnp.broadcast_to(batch["state_mask"][:, None], target.shape)
        subgoal_loss = flow.masked_weighted_mse(pred, target, mask, batch["action_loss_weight"])
        loss = loss + self.config.subgoal_loss_weight * subgoal_loss
        return loss, dict(metrics, loss=loss, subgoal_loss=subgoal_loss)

    def predict_subtask(self, obs) -> jax.Array:
        """Greedy parallel prediction of the subtask tokens, int32 [B, Ls]; pad after the first pad."""
        B = obs["image"].shape[0]
        empty = jnp.zeros((B, self.config.max_subtask_len), jnp.int32)
        prefix, _, groups = self._encode(obs, empty)
        tokens = jnp.argmax(self._subtask_logits(prefix, groups), axis=-1).astype(jnp.int32)
        return tokens * jnp.cumprod(tokens != 0, axis=-1).astype(jnp.int32)

    def sample_actions(self, obs, rng: jax.Array, *, subtask: jax.Array | None = None,
                       num_steps: int | None = None, candidates: int | None = None) -> jax.Array:
        """Action chunk f32 [B, H, A] in normalized units. Predicts the subtask first unless one
        is given (int32 [B, Ls]), then integrates the flow in num_steps (config.flow_steps).
        `candidates` = k: k chunks per observation from independent noise, f32 [B, k, H, A]
        (the observation is encoded once; h2r/policy.py keeps their medoid)."""
        c = self.config
        if subtask is None:
            subtask = self.predict_subtask(obs)
        prefix, key_valid, groups = self._encode(obs, subtask)
        if c.get("inference", "flow") == "queries":   # the action queries' direct regression
            direct = self.action_readout(prefix[:, groups == ACTQ]).astype(jnp.float32)
            return jnp.repeat(direct[:, None], candidates, axis=1) if candidates else direct
        source_kv, source_mask = self._expert_source(prefix, key_valid, groups)
        B, k = obs["image"].shape[0], candidates or 1
        if candidates:   # row b * k + i: candidate i of observation b
            source_kv, source_mask = jax.tree.map(lambda a: jnp.repeat(a, k, axis=0), (source_kv, source_mask))
        # Sampling temperature: the flow starts from noise * sample_noise (0 = deterministic).
        noise = jax.random.normal(rng, (B * k, c.action_horizon, c.max_action_dim), jnp.float32)
        noise = noise * c.get("sample_noise", 1.0)
        chunks = flow.integrate(lambda x, t: self._velocity(x, t, source_kv, source_mask), noise,
                                num_steps or c.flow_steps)
        return chunks.reshape((B, k) + chunks.shape[1:]) if candidates else chunks

    def embed(self, obs) -> jax.Array:
        """Pooled prefix embedding f32 [B, D]: mean of the valid observation-token outputs
        (independent of the subtask by construction of the attention mask)."""
        B = obs["image"].shape[0]
        prefix, key_valid, groups = self._encode(obs, jnp.zeros((B, self.config.max_subtask_len), jnp.int32))
        is_obs = jnp.asarray(groups == OBS)[None] & key_valid
        w = is_obs.astype(jnp.float32)[..., None]
        return jnp.sum(prefix.astype(jnp.float32) * w, axis=1) / jnp.sum(w, axis=1)
