"""Tiny training on generated world data (micro_dataset): the loss falls clearly, and the trained
policy imitates its training data better than the untrained one (offline action error)."""
import io

import jax
import numpy as np
import pytest

import train_utils as tu
from h2r.config import load_config
from h2r.data import pipeline
from h2r.errors import DataError
from h2r.policy import Policy, load_policy
from h2r.train import metrics, trainer


def pretrain_config(data_dir):
    """The tiny preset pretraining on the first held-out setting's robot that the data has."""
    from h2r.world import catalogue
    config = load_config(tu.TINY)
    config.data.dir = str(data_dir)
    config.data.kind = "pretrain"
    config.train.update(steps=150, batch_size=16, warmup_steps=10, checkpoint_every=150, log_every=25)
    for setting in catalogue.SETTINGS:
        config.data.target = setting.name
        try:
            pipeline.make_iterator(config, 0, 1)
            return config
        except DataError:
            continue
    pytest.fail(f"no held-out setting of the catalogue has a target robot in {data_dir}")


def action_error(policy, batches) -> float:
    """Mean squared error (normalized units) over valid steps and dims of the recorded chunks."""
    errors, counts = 0.0, 0.0
    for i, batch in enumerate(batches):
        obs = {k: v for k, v in batch.items() if k not in ("actions", "action_valid")}
        pred = np.asarray(policy.sample_normalized(obs, jax.random.key(i)))
        mask = batch["action_valid"][:, :, None] & batch["action_dim_mask"][:, None, :]
        errors += float(np.sum(np.square(pred - batch["actions"]) * mask))
        counts += float(mask.sum())
    return errors / counts


def test_tiny_training_learns_generated_data_and_imitates_it(micro_dataset, tmp_path):
    config = pretrain_config(micro_dataset)
    trainer.train(config, str(tmp_path), stream=io.StringIO())
    rows = metrics.read_jsonl(str(tmp_path))
    losses = [r["loss"] for r in rows]
    assert len(losses) == 6
    assert losses[-1] < 0.6 * losses[0], losses

    trained = load_policy(str(tmp_path))
    fresh_params, _ = trainer.init_params(config.model, int(config.train.seed), None)
    untrained = Policy(fresh_params, trained.stats, trained.static)
    iterator = pipeline.make_iterator(config, 0, 1)  # the training stream from its start
    batches = [next(iterator) for _ in range(4)]
    trained_error, untrained_error = action_error(trained, batches), action_error(untrained, batches)
    assert trained_error < 0.7 * untrained_error, (trained_error, untrained_error)
