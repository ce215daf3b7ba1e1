"""Random batches in the pipeline's sample layout (BUILD_NOTES.md), sized from a model config.

For tests and benchmarks that must not depend on generated data. Human-like samples (every
other one) have no state and a masked grip dimension, as the real pipeline produces.
"""
from __future__ import annotations

import numpy as np

from h2r.data.transforms import SampleSpec


def example_batch(model_config, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    c = model_config
    spec = SampleSpec.from_config(c)
    rng = np.random.default_rng(seed)
    B, R, H, A, S = batch_size, c.image_size, c.action_horizon, c.max_action_dim, c.max_state_dim
    Li, Ls = c.max_instruction_len, c.max_subtask_len
    is_human = np.arange(B) % 2 == 1

    def tokens(length, max_words):
        n = rng.integers(2, max_words + 1, size=B)
        ids = rng.integers(3, c.vocab_size, size=(B, length)).astype(np.int32)
        return np.where(np.arange(length)[None] < n[:, None], ids, 0).astype(np.int32)

    state_mask = np.zeros((B, S), bool)
    state_mask[:, : min(S, 7)] = ~is_human[:, None]
    action_dim_mask = np.zeros((B, A), bool)
    action_dim_mask[:, : min(A, 7)] = True
    action_dim_mask[is_human, min(A, 7) - 1] = False            # the human has no grip
    episode_left = rng.integers(1, H + 1, size=B)
    batch = {  # in this order: the rng draws are part of the batch
        "image": rng.integers(0, 256, size=(B, R, R, 3), dtype=np.uint8),
        "wrist_image": rng.integers(0, 256, size=(B, R, R, 3), dtype=np.uint8),
        "image_mask": np.stack([np.ones(B, bool), rng.random(B) < 0.8], axis=1),
        "state": (rng.standard_normal((B, S)) * state_mask).astype(np.float32),
        "state_mask": state_mask,
        "subgoal": (rng.standard_normal((B, spec.subgoals, S)) * state_mask[:, None]).astype(np.float32),
        "instruction": tokens(Li, Li),
        "subtask": tokens(Ls, Ls - 1),
        "actions": (rng.standard_normal((B, H, A)) * action_dim_mask[:, None]).astype(np.float32),
        "action_valid": np.arange(H)[None] < episode_left[:, None],
        "action_dim_mask": action_dim_mask,
        "embodiment_id": np.where(is_human, 6, rng.integers(0, 6, size=B)).astype(np.int32),
    }
    out = spec.zeros(B)          # the layout: every key, shape and dtype
    out["action_loss_weight"][:] = out["subtask_loss_weight"][:] = 1
    for key, value in batch.items():
        out[key][...] = value
    return out
