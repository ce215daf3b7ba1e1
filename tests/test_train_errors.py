"""The trainer's failure modes: a NaN/inf loss stops the run and keeps the last good checkpoint;
a checkpoint from another model config is refused with the mismatched keys listed."""
import io
import os
import re

import numpy as np
import pytest

import train_utils as tu
from h2r.config import load_config
from h2r.errors import CheckpointError
from h2r.train import trainer


def tiny_config(**train):
    config = load_config(tu.TINY)
    config.data.kind = "synthetic"
    config.train.batch_size = 16
    config.train.log_every = 5
    config.model.depth = config.model.expert_depth = 1  # short compilations
    for key, value in train.items():
        config.train[key] = value
    return config


SHORT = dict(steps=2, checkpoint_every=2, warmup_steps=1)  # one compiled program for most tests


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("runs") / "short"
    trainer.train(tiny_config(**SHORT), str(workdir), stream=io.StringIO())
    return workdir


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    # lr 0 at step 0 (warmup), then 1e30: params explode and the loss of the 3rd step is NaN/inf.
    config = tiny_config(steps=20, checkpoint_every=1, warmup_steps=1, lr=1e30)
    with pytest.raises(trainer.TrainingError) as error:
        trainer.train(config, str(tmp_path), stream=io.StringIO())
    message = str(error.value)
    match = re.search(r"loss is (nan|inf|-inf) at step (\d+)", message)
    assert match, message
    bad_step = int(match.group(2))
    assert f"last good checkpoint, step {bad_step - 1}, is intact" in message, message
    assert max(tu.saved_steps(tmp_path)) == bad_step - 1
    # The kept checkpoint restores completely; its params are finite.
    params = tu.flat(tu.restore_item(tmp_path, bad_step - 1, "params"))
    assert all(np.all(np.isfinite(v)) for v in params.values())
    assert not [n for n in os.listdir(tmp_path / "checkpoints") if "tmp" in n]


def test_init_from_a_run_with_another_model_config_lists_mismatched_keys(short_run, tmp_path):
    config = tiny_config(**SHORT, init_from=str(short_run))
    config.model.mlp_dim = 128           # other kernel shapes
    config.model.depth = 2               # and a block the checkpoint does not have
    with pytest.raises(CheckpointError) as error:
        trainer.train(config, str(tmp_path), stream=io.StringIO())
    message = str(error.value)
    assert "does not match the model built from this config" in message
    assert "missing in checkpoint" in message and "blocks/1/mlp/up/kernel" in message
    assert "shape differs" in message and "blocks/0/mlp/up/kernel checkpoint (64, 256) vs model (64, 128)" in message


def test_resuming_a_workdir_with_another_model_config_is_refused(short_run):
    config = tiny_config(**SHORT)
    config.model.width = 128
    with pytest.raises(CheckpointError, match=r"shape differs .*patch_embed/kernel checkpoint \(192, 64\) vs model \(192, 128\)"):
        trainer.train(config, str(short_run), stream=io.StringIO())


def test_co_training_starts_from_the_pretrained_params(short_run, tmp_path):
    config = tiny_config(**{**SHORT, "checkpoint_every": 1}, init_from=str(short_run))
    out = io.StringIO()
    trainer.train(config, str(tmp_path), stream=out)
    assert "initialized params from" in out.getvalue()
    pretrained = tu.flat(tu.restore_item(short_run, 2, "params"))
    cotrained = tu.flat(tu.restore_item(tmp_path, 1, "params"))
    state = tu.restore_item(tmp_path, 1, "train_state")
    assert int(state["step"]) == 1  # a fresh optimizer: counting from 0
    # The first step's learning rate is 0 (warmup starts at 0): params still the pretrained ones.
    assert all(np.array_equal(pretrained[k], cotrained[k]) for k in pretrained)
