"""Synthetic batches in the pipeline's sample layout (config.data.kind == "synthetic").

For trainer benchmarks and tests that must not depend on generated datasets. A grain
MapDataset of whole batches, so the iterator is a real grain DatasetIterator whose state
checkpoints like the real pipeline's. The actions are a fixed function of the state and the
instruction, so a model can learn them and the loss goes down.

Batch `i` is the same global batch for any number of processes: process p of n takes rows
[p*B/n, (p+1)*B/n) of it, so one process and several processes see the same data.
"""
from __future__ import annotations

import grain
import numpy as np

from h2r.data.transforms import SampleSpec

VOCAB = 32  # token ids drawn from [3, VOCAB); 0 = pad, 1 = unk, 2 = eos as in the tokenizer


def _global_batch(index: int, config) -> dict[str, np.ndarray]:
    d, batch_size = config.data, config.train.batch_size
    size = config.model.image_size
    rng = np.random.default_rng([config.data.seed, index])
    coef = np.random.default_rng([config.data.seed, 2**31]).normal(
        size=(d.max_state_dim + 1, d.action_horizon, d.max_action_dim)).astype(np.float32)
    state = rng.normal(size=(batch_size, d.max_state_dim)).astype(np.float32)
    instruction = rng.integers(3, VOCAB, size=(batch_size, d.max_instruction_len), dtype=np.int32)
    # Actions depend on the state and on the first instruction token: learnable, not trivial.
    task = (instruction[:, :1] % 2).astype(np.float32) * 2 - 1
    actions = np.tanh(np.einsum("bs,sha->bha", np.concatenate([state, task], 1), coef) / 2)
    image = rng.integers(0, 256, size=(batch_size, size, size, 3), dtype=np.uint8)
    spec = SampleSpec.from_config(d, image_size=size)
    batch = spec.zeros(batch_size)   # the layout; every mask and loss weight set below
    for key in ("image_mask", "state_mask", "action_valid", "action_dim_mask",
                "action_loss_weight", "subtask_loss_weight"):
        batch[key][...] = 1
    batch.update(image=image, wrist_image=image[:, ::-1], state=state, instruction=instruction,
                 subgoal=np.repeat(np.tanh(state)[:, None], spec.subgoals, 1),
                 subtask=rng.integers(3, VOCAB, size=(batch_size, d.max_subtask_len), dtype=np.int32),
                 actions=actions.astype(np.float32))
    return batch


def make_iterator(config, process_index: int = 0, process_count: int = 1) -> grain.DatasetIterator:
    """An endless grain iterator of this process's rows of synthetic global batches."""
    batch_size = config.train.batch_size
    if batch_size % process_count:
        raise ValueError(f"train.batch_size={batch_size} is not divisible by {process_count} processes")
    local = batch_size // process_count
    rows = slice(process_index * local, (process_index + 1) * local)

    def local_batch(index):
        return {k: v[rows] for k, v in _global_batch(int(index), config).items()}

    return iter(grain.MapDataset.range(1 << 40).map(local_batch).to_iter_dataset())


def norm_stats(config) -> dict:
    """Identity statistics (the synthetic data is already normalized)."""
    d = config.data
    ident = lambda n: {"mean": [0.0] * n, "std": [1.0] * n, "q01": [-1.0] * n, "q99": [1.0] * n}  # noqa: E731
    return {"synthetic": {"action": ident(d.max_action_dim), "state": ident(d.max_state_dim)}}
