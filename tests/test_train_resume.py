"""`h2r train` end to end in subprocesses: run directory, metrics, preemption and exact resume,
orbax-only restore of `params`, `h2r checkpoint info`."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import train_utils as tu

STEPS = ["--config.train.steps=30", "--config.train.checkpoint_every=10"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: W and its stdout."""
    workdir = tmp_path_factory.mktemp("runs") / "reference"
    out = tu.run_train(workdir, *STEPS)
    return workdir, out


def test_run_directory_metrics_and_learning(reference):
    workdir, out = reference
    for name in ("config.json", "norm_stats.json", "metrics.jsonl"):
        assert os.path.isfile(workdir / name), name
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir / "tb"))
    with open(workdir / "config.json") as f:
        assert json.load(f)["train"]["steps"] == 30
    assert tu.saved_steps(workdir) == [10, 20, 30]
    rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    for key in ("loss", "action_loss", "subtask_loss", "grad_norm", "lr", "steps_per_s",
                "samples_per_s", "flops_per_s"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert rows[0]["flops_per_s"] > 0
    # Synthetic actions are a function of state and instruction: both losses fall clearly.
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"], [r["loss"] for r in rows]
    assert rows[-1]["action_loss"] < 0.85 * rows[0]["action_loss"], [r["action_loss"] for r in rows]
    assert "step 30/30" in out and "ETA" in out


def test_sigterm_and_sigkill_then_resume_end_bitwise_identical(reference, tmp_path):
    ref_dir, _ = reference
    workdir = tmp_path / "interrupted"
    # Preempted: SIGTERM saves the current step and exits 143.
    proc = tu.start_train(workdir, *STEPS)
    tu.wait_for_step(proc, workdir, 10)
    code, out = tu.kill(proc, signal.SIGTERM)
    assert code == 143, out[-3000:]
    assert "SIGTERM: saved step" in out
    # Killed hard after the next periodic checkpoint (possibly in the middle of an async save).
    proc = tu.start_train(workdir, *STEPS)
    tu.wait_for_step(proc, workdir, 20)
    code, out = tu.kill(proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert "resumed" in out
    # Rerun the same command: resumes from the latest complete checkpoint and finishes.
    out = tu.run_train(workdir, *STEPS)
    assert "resumed" in out
    assert max(tu.saved_steps(workdir)) == 30
    rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    logged = [r["step"] for r in rows]
    assert logged == sorted(set(logged)) and logged[-1] == 30  # each step once after resuming
    seconds = [r["train_s"] for r in rows]   # training time adds up over the three processes
    assert all(b > a for a, b in zip(seconds, seconds[1:])), list(zip(logged, seconds))
    for item in ("params", "ema", "train_state"):
        ref, got = tu.flat(tu.restore_item(ref_dir, 30, item)), tu.flat(tu.restore_item(workdir, 30, item))
        assert ref.keys() == got.keys()
        differ = [k for k in ref if not np.array_equal(ref[k], got[k])]
        assert not differ, f"{item}: {len(differ)} arrays differ, e.g. {differ[:3]}"


def test_params_restore_with_plain_orbax_without_h2r(reference):
    workdir, _ = reference
    # Another device count than the run's (1 here, 2 there): restore as numpy arrays.
    script = f"""
import json, sys
import jax, numpy as np
import orbax.checkpoint as ocp
path = {str(workdir / 'checkpoints' / '30' / 'params')!r}
ckptr = ocp.PyTreeCheckpointer()
tree = ckptr.metadata(path).item_metadata.tree
params = ckptr.restore(path, restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree))
assert not any(m == 'h2r' or m.startswith('h2r.') for m in sys.modules), 'h2r was imported'
def shapes(tree):
    return {{k: shapes(v) for k, v in tree.items()}} if isinstance(tree, dict) else [type(tree).__name__, *tree.shape]
print(json.dumps({{"type": type(params).__name__, "shapes": shapes(params)}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env=tu.env(1), cwd="/")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["type"] == "dict"
    shapes = result["shapes"]
    assert shapes["patch_embed"]["kernel"] == ["ndarray", 8 * 8 * 3, 64]
    assert shapes["blocks"]["0"]["mlp"]["up"]["kernel"] == ["ndarray", 64, 256]


def test_checkpoint_info_cli(reference):
    workdir, _ = reference
    out = subprocess.run([tu.H2R, "checkpoint", "info", str(workdir), "--json"], capture_output=True,
                         text=True, timeout=120, env=tu.env(1))
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout)
    assert info["steps"] == [10, 20, 30] and info["latest_step"] == 30
    assert info["config"]["model"]["size"] == "tiny"
    assert info["metrics"]["step"] == 30 and np.isfinite(info["metrics"]["loss"])
    assert info["params"]["count"] > 100_000
    text = subprocess.run([tu.H2R, "checkpoint", "info", str(workdir)], capture_output=True, text=True,
                          timeout=120, env=tu.env(1)).stdout
    assert "[10, 20, 30]" in text and "tiny" in text


def test_policy_maps_raw_observations_to_raw_action_chunks(reference):
    import jax

    from h2r.policy import Policy, load_policy
    from h2r.train import synthetic
    workdir, _ = reference
    policy = load_policy(str(workdir))
    assert policy.step == 30 and policy.embodiments == ["synthetic"]
    batch = synthetic._global_batch(0, policy.config)
    obs = {"image": batch["image"][:4], "wrist_image": batch["wrist_image"][:4],
           "state": batch["state"][:4], "instruction": batch["instruction"][:4]}
    key = jax.random.key(0)
    actions = np.asarray(policy.act(obs, key, "synthetic"))
    c = policy.config.model
    assert actions.shape == (4, c.action_horizon, c.max_action_dim) and np.all(np.isfinite(actions))
    # A Policy is a pytree: it goes through the caller's jit/vmap as an argument.
    jitted = jax.jit(lambda pol, o, k: pol.act(o, k, "synthetic"))(policy, obs, key)
    np.testing.assert_allclose(jitted, actions, rtol=1e-5, atol=1e-5)
    keys = jax.random.split(key, 3)
    assert jax.vmap(lambda k: policy.act(obs, k, "synthetic"))(keys).shape == (3, *actions.shape)
    # Raw units: a 3-dim embodiment whose actions span [0, 10] gets the chunk mapped there.
    stats = dict(policy.stats)
    stats["robot"] = {"state": stats["synthetic"]["state"],
                      "action": {k: np.full(3, v, np.float32) for k, v in
                                 {"mean": 5.0, "std": 5.0, "q01": 0.0, "q99": 10.0}.items()}}
    robot = Policy(policy.params, stats, policy.static)
    np.testing.assert_allclose(robot.act(obs, key, "robot"), (actions[..., :3] + 1) * 5, rtol=1e-4, atol=1e-4)
    with pytest.raises(Exception, match="no normalization statistics for embodiment 'franka'"):
        policy.act(obs, key, "franka")
    assert np.asarray(policy.embed(obs, "synthetic")).shape == (4, c.width)
    ema = load_policy(str(workdir), ema=True)
    assert not np.allclose(np.asarray(ema.act(obs, key, "synthetic")), actions)
