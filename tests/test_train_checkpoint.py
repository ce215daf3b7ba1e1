"""The run's CheckpointManager on its own: which steps are kept, and restoring every item."""
import grain
import jax.numpy as jnp
import numpy as np
import pytest

from h2r.errors import CheckpointError
from h2r.train import checkpoint


def _save_steps(workdir, losses, **kwargs):
    manager = checkpoint.make_manager(str(workdir), **kwargs)
    iterator = iter(grain.MapDataset.range(100).to_iter_dataset())
    for step, loss in enumerate(losses, start=1):
        next(iterator)
        checkpoint.save(manager, step, params={"w": jnp.full((2,), float(step))},
                        train_state={"step": jnp.asarray(step)}, data_iter=iterator,
                        extra={"config": {"step": step}, "norm_stats": {}}, metrics={"loss": loss})
    manager.wait_until_finished()
    kept = sorted(manager.all_steps())
    manager.close()
    return kept


def test_keeps_last_n_the_best_and_every_period(tmp_path):
    losses = [5.0, 1.0, 4.0, 3.0, 2.5, 2.0, 3.5, 6.0]  # the best is step 2
    assert _save_steps(tmp_path / "a", losses, keep=2) == [2, 7, 8]
    assert _save_steps(tmp_path / "b", losses, keep=2, keep_period=3) == [2, 3, 6, 7, 8]


def test_restore_items_and_clear_errors(tmp_path):
    _save_steps(tmp_path, [1.0, 2.0, 3.0], keep=3)
    abstract = {"w": checkpoint.abstract_like({"w": jnp.zeros(2)})["w"]}
    params, step = checkpoint.restore_params(str(tmp_path), abstract)
    assert step == 3 and np.array_equal(params["w"], [3.0, 3.0])
    params, _ = checkpoint.restore_params(str(tmp_path), abstract, step=2)
    assert np.array_equal(params["w"], [2.0, 2.0])
    extra, _ = checkpoint.restore_extra(str(tmp_path), step=1)
    assert extra["config"] == {"step": 1}
    with pytest.raises(CheckpointError, match=r"step 9 is not in .*saved steps: \[1, 2, 3\]"):
        checkpoint.restore_params(str(tmp_path), abstract, step=9)
    with pytest.raises(CheckpointError, match=r"(?s)missing in checkpoint \(1\): v.*not in model \(1\): w"):
        checkpoint.restore_params(str(tmp_path), {"v": abstract["w"]})
    with pytest.raises(CheckpointError, match="is not a training run directory"):
        checkpoint.restore_params(str(tmp_path / "nothing"), abstract)
