"""Helpers for the trainer tests: run `h2r train` in subprocesses, read checkpoints with orbax."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "experiments", "train", "tiny.py")
H2R = os.path.join(os.path.dirname(sys.executable), "h2r")

def train_on_micro_data(workdir: str, data, *overrides: str, steps: int = 2) -> str:
    """The tiny preset trained briefly in this process on the micro data (co-training with the
    human, batch 8), `overrides` last; returns the run directory."""
    import io

    from h2r.config import load_config
    from h2r.train.trainer import train

    config = load_config(TINY, [
        f"--config.data.dir={data}", "--config.data.kind=cotrain", "--config.data.target=sort_eggs",
        "--config.data.human=True", f"--config.train.steps={steps}", "--config.train.batch_size=8",
        f"--config.train.checkpoint_every={steps}", "--config.train.log_every=1", "--config.train.warmup_steps=1",
        *overrides])
    train(config, workdir, stream=io.StringIO())
    return workdir


# A few seconds of tiny training on synthetic batches (the mechanics do not depend on the data);
# one block in each transformer keeps the compilations short.
SYNTHETIC = ["--config.data.kind=synthetic", "--config.train.batch_size=16",
             "--config.train.warmup_steps=5", "--config.train.log_every=5",
             "--config.model.depth=1", "--config.model.expert_depth=1"]


def env(devices: int) -> dict:
    """A subprocess's environment: `devices` forced CPU devices; the rest (the run-wide
    compilation cache of conftest.py among it) inherited."""
    return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")


def start_train(workdir, *overrides, devices: int = 2, extra_args=()) -> subprocess.Popen:
    cmd = [H2R, "train", "--config", TINY, "--workdir", str(workdir), *extra_args, *SYNTHETIC, *overrides]
    return subprocess.Popen(cmd, env=env(devices), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def run_train(workdir, *overrides, timeout=240, **kwargs) -> str:
    proc = start_train(workdir, *overrides, **kwargs)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"h2r train failed ({proc.returncode}):\n{out[-4000:]}"
    return out


def saved_steps(workdir) -> list[int]:
    """Completed checkpoint steps (orbax renames a step's temp dir when it is complete)."""
    d = os.path.join(str(workdir), "checkpoints")
    if not os.path.isdir(d):
        return []
    return sorted(int(n) for n in os.listdir(d) if n.isdigit())


def wait_for_step(proc: subprocess.Popen, workdir, step: int, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(s >= step for s in saved_steps(workdir)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"h2r train exited ({proc.returncode}) before step {step}:\n"
                                 f"{proc.stdout.read()[-4000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no checkpoint >= {step} in {workdir} after {timeout}s")


def kill(proc: subprocess.Popen, sig=signal.SIGKILL, timeout: float = 120) -> tuple[int, str]:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def restore_item(workdir, step: int, item: str):
    """An item of a checkpoint as a plain nested dict of numpy arrays (orbax only)."""
    import jax
    import orbax.checkpoint as ocp
    path = os.path.join(str(workdir), "checkpoints", str(step), item)
    ckptr = ocp.PyTreeCheckpointer()
    tree = ckptr.metadata(path).item_metadata.tree
    return ckptr.restore(path, restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree))


def flat(tree) -> dict[str, np.ndarray]:
    import jax
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
