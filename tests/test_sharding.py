"""Logical-axis rules, mesh construction, and the model sharded over 8 forced CPU devices."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from h2r.config import ConfigError
from h2r.model import VLA, model_config
from h2r.model.example_batch import example_batch
from h2r.train import sharding

MESH_2x2x2 = {"data": 2, "fsdp": 2, "tensor": 2}


def test_logical_rules_give_the_expected_partition_specs():
    assert sharding.logical_to_spec(("embed", "mlp")) == P("fsdp", "tensor")
    assert sharding.logical_to_spec(("mlp", "embed")) == P("tensor", "fsdp")
    assert sharding.logical_to_spec(("embed", "qkv", "heads", "kv")) == P("fsdp", None, "tensor", None)
    assert sharding.logical_to_spec(("vocab", "embed")) == P(None, "fsdp")
    assert sharding.logical_to_spec(("act_batch", "act_seq", "act_embed")) == P(("data", "fsdp"), None, None)
    assert sharding.logical_to_spec(("act_batch", "act_seq", "act_heads", "act_kv")) == P(
        ("data", "fsdp"), None, "tensor", None)
    with pytest.raises(KeyError, match="no_such_axis"):
        sharding.logical_to_spec(("no_such_axis",))


def test_every_logical_name_of_the_model_has_a_rule():
    abstract = nnx.eval_shape(lambda: VLA(model_config("tiny"), rngs=nnx.Rngs(0)))
    names = set()
    for _, var in nnx.iter_graph(abstract):
        if isinstance(var, nnx.Param):
            assert var.get_metadata().get("out_sharding"), f"a parameter of shape {var.shape} has no names"
            names.update(n for n in var.get_metadata()["out_sharding"] if n)
    assert names <= set(dict(sharding.LOGICAL_RULES)), names - set(dict(sharding.LOGICAL_RULES))


def test_make_mesh_fills_one_axis_and_rejects_bad_shapes():
    mesh = sharding.make_mesh({"data": 2, "fsdp": -1, "tensor": 1})
    assert dict(mesh.shape) == {"data": 2, "fsdp": 4, "tensor": 1}
    assert sharding.batch_divisor(mesh) == 8
    with pytest.raises(ConfigError, match="needs 12 devices"):
        sharding.make_mesh({"data": 3, "fsdp": 2, "tensor": 2})
    with pytest.raises(ConfigError, match="does not divide"):
        sharding.make_mesh({"data": 3, "fsdp": -1, "tensor": 1})


def _shard_shape(array):
    return array.addressable_shards[0].data.shape


def _train_step(model, optimizer, batch, rng):
    (_, metrics), grads = nnx.value_and_grad(lambda m: m.compute_loss(batch, rng), has_aux=True)(model)
    optimizer.update(model, grads)
    return metrics


def test_sharded_model_matches_the_one_device_model():
    config = model_config("tiny")
    config.update(depth=1, expert_depth=1)  # every layer type once: half the compile time
    batch = {k: jnp.asarray(v) for k, v in example_batch(config, 16).items()}
    rng = jax.random.key(0)

    # One device, no mesh.
    single = VLA(config, rngs=nnx.Rngs(0))
    single_opt = nnx.Optimizer(single, optax.adamw(1e-3), wrt=nnx.Param)
    step = nnx.jit(_train_step)
    single_metrics = [step(single, single_opt, batch, rng) for _ in range(2)]

    # 8 devices: data=2, fsdp=2, tensor=2.
    mesh = sharding.make_mesh(MESH_2x2x2)
    with sharding.use_mesh(mesh):
        model = VLA(config, rngs=nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, optax.adamw(1e-3), wrt=nnx.Param)

        # The large kernels are really split as the rules say.
        up = model.blocks[0].mlp.up.kernel[...]                 # (embed, mlp)
        assert up.sharding.spec == P("fsdp", "tensor")
        assert _shard_shape(up) == (up.shape[0] // 2, up.shape[1] // 2)
        qkv = model.blocks[0].attn.qkv.kernel[...]              # (embed, qkv, heads, kv)
        assert qkv.sharding.spec == P("fsdp", None, "tensor", None)
        assert _shard_shape(qkv) == (qkv.shape[0] // 2, 3, qkv.shape[2] // 2, qkv.shape[3])
        down = model.expert_blocks[0].mlp.down.kernel[...]      # (mlp, embed)
        assert _shard_shape(down) == (down.shape[0] // 2, down.shape[1] // 2)
        # The optimizer moments follow their parameters.
        mu = optimizer.opt_state[0].mu["blocks"][0]["mlp"]["up"]["kernel"][...]
        assert mu.sharding.spec == P("fsdp", "tensor")
        # The explicit shardings the trainer uses agree with where the params already are.
        shardings = sharding.state_shardings(nnx.state(model), mesh)
        assert shardings["blocks"][0]["mlp"]["up"]["kernel"].get_value().spec == P("fsdp", "tensor")

        sharded_batch = jax.device_put(batch, sharding.batch_shardings(batch, mesh))
        assert sharded_batch["image"].sharding.spec == P(("data", "fsdp"), None, None, None)
        sharded_metrics = [step(model, optimizer, sharded_batch, rng) for _ in range(2)]

        # Params stay sharded after the update.
        assert model.blocks[0].mlp.up.kernel[...].sharding.spec == P("fsdp", "tensor")

    for s, m in zip(single_metrics, sharded_metrics):
        np.testing.assert_allclose(float(m["loss"]), float(s["loss"]), rtol=1e-5)
    np.testing.assert_allclose(model.blocks[0].mlp.up.kernel[...], single.blocks[0].mlp.up.kernel[...],
                               atol=1e-5)


def test_abstract_state_carries_the_shardings_without_allocating():
    mesh = sharding.make_mesh(MESH_2x2x2)
    graphdef, state = sharding.abstract_state(lambda: VLA(model_config("tiny"), rngs=nnx.Rngs(0)), mesh)
    kernel = state["blocks"][0]["mlp"]["up"]["kernel"].get_value()
    assert isinstance(kernel, jax.ShapeDtypeStruct)
    assert kernel.sharding.spec == P("fsdp", "tensor") and kernel.sharding.mesh == mesh


def test_a_mesh_that_does_not_divide_the_model_is_a_clear_error():
    mesh = sharding.make_mesh({"data": 1, "fsdp": 1, "tensor": 8})  # tiny has 2 heads
    with pytest.raises(ConfigError, match=r"blocks/0/attn/qkv/kernel .*dim 2 \(heads\) = 2 is not divisible by mesh tensor = 8"):
        sharding.abstract_state(lambda: VLA(model_config("tiny"), rngs=nnx.Rngs(0)), mesh)


def _train_refused(tmp_path, capsys, monkeypatch, *overrides) -> str:
    """`h2r train` (in-process, 8 forced devices) with `overrides`: asserts it exits 1 before
    compiling anything or writing the run directory; returns its stderr."""
    import train_utils as tu
    from h2r import cli
    from h2r.train import trainer

    def compile_step(*args, **kwargs):
        raise AssertionError("h2r train compiled before checking the mesh")
    monkeypatch.setattr(trainer, "init_params", compile_step)       # the first compilation
    monkeypatch.setattr(trainer, "jit_train_step", compile_step)
    workdir = tmp_path / "run"
    capsys.readouterr()
    assert cli.main(["train", "--config", tu.TINY, "--workdir", str(workdir), *tu.SYNTHETIC,
                     "--config.train.steps=1", *overrides]) == 1
    assert not workdir.exists() or sorted(os.listdir(workdir)) == []
    return capsys.readouterr().err


def test_h2r_train_refuses_a_mesh_that_does_not_divide_the_model_before_compiling(tmp_path, capsys, monkeypatch):
    assert jax.device_count() == 8
    err = _train_refused(tmp_path, capsys, monkeypatch,
                         "--config.mesh.data=1", "--config.mesh.fsdp=1", "--config.mesh.tensor=8")
    assert "does not fit config.mesh" in err
    assert "dim 2 (heads) = 2 is not divisible by mesh tensor = 8" in err


def test_h2r_train_refuses_a_batch_the_mesh_does_not_split_before_compiling(tmp_path, capsys, monkeypatch):
    err = _train_refused(tmp_path, capsys, monkeypatch, "--config.train.batch_size=12",
                         "--config.mesh.data=8", "--config.mesh.fsdp=1", "--config.mesh.tensor=1")
    assert "train.batch_size=12 must be a multiple of 8" in err
    assert "config.mesh data x fsdp = 8 x 1 of the 8 devices" in err
