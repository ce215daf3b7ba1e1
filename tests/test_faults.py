"""Faults and bad input (issue 11): each case drives the real CLI (in-process, `h2r.cli.main`)
on micro data or a tiny run, and asserts the exit code, that the message names the file/key,
and that nothing already written changed (file hashes before and after). One tiny synthetic run
(here) and one micro-data run (conftest.py) are shared; a test that damages one works on a copy.
BUILD_NOTES.md ("Faults and bad input covered by the suite") lists every case and its test."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import oxe_fixtures
import train_utils as tu
from h2r import cli, files
from h2r.config import load_config
from h2r.errors import CheckpointError
from h2r.policy import load_policy
from h2r.train import checkpoint, trainer

MICRO_DATA = os.path.join(tu.ROOT, "experiments", "data", "micro.py")


def hashes(root) -> dict[str, str]:
    """{relative path: sha256} of every file under root."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def h2r(capsys, *argv) -> tuple[int, str]:
    """`h2r ARGV` in this process: (exit code, stderr)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def copy(src, dst) -> str:
    shutil.copytree(src, dst, symlinks=True)
    return str(dst)


SYNTHETIC = ["--config.data.kind=synthetic", "--config.train.batch_size=8", "--config.train.warmup_steps=1",
             "--config.train.log_every=1", "--config.train.checkpoint_every=1", "--config.model.depth=1",
             "--config.model.expert_depth=1"]


def train_argv(workdir, steps, *extra):
    return ["train", "--config", tu.TINY, "--workdir", workdir, *SYNTHETIC, f"--config.train.steps={steps}", *extra]


@pytest.fixture(scope="module")
def run3(tmp_path_factory):
    """A tiny synthetic run, uninterrupted, checkpoints at steps 1, 2, 3."""
    workdir = str(tmp_path_factory.mktemp("faults") / "run3")
    assert cli.main(train_argv(workdir, 3)) == 0
    assert tu.saved_steps(workdir) == [1, 2, 3]
    return workdir


@contextlib.contextmanager
def small_filesystem(path, size: str):
    """A tmpfs of `size` at `path` (a full disk for real); skips where mounting is not allowed."""
    os.makedirs(path, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): the disk-full cases are not exercised")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def another_holder(path: str):
    """Another process holding h2r's lock `path` for the block."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom h2r import files\n"
                             "with files.lock(sys.argv[1], 'test'):\n    print('held', flush=True)\n"
                             "    time.sleep(600)\n", path], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------ 1. copied/moved studies
# (tests/test_study_e2e.py: test_copied_study_reruns_there_and_leaves_the_original_untouched,
#  test_moved_study_reruns_and_reports)

# ------------------------------------------------------------------ 2. refused resume writes nothing
def test_refused_resume_leaves_the_run_directory_unchanged(run3, tmp_path, capsys):
    workdir = copy(run3, tmp_path / "run")
    before = hashes(workdir)
    code, err = h2r(capsys, *train_argv(workdir, 3, "--config.model.width=128"))
    assert code == 1 and "patch_embed/kernel checkpoint (192, 64) vs model (192, 128)" in err, err
    assert hashes(workdir) == before
    code, err = h2r(capsys, *train_argv(workdir, 2))  # shorter than the checkpoints: refused
    assert code == 1 and "holds checkpoints up to step 3 but train.steps=2" in err, err
    assert "config.json says train.steps=3" in err
    assert hashes(workdir) == before
    assert h2r(capsys, *train_argv(workdir, 3))[0] == 0  # finished: nothing to do, nothing rewritten
    assert hashes(workdir) == before
    assert json.load(open(os.path.join(workdir, "config.json")))["model"]["width"] == 64


# ------------------------------------------------------------------ 3. one writer per directory
def test_second_train_on_a_workdir_is_refused_and_a_dead_holders_lock_is_not(run3, tmp_path, capsys):
    workdir = copy(run3, tmp_path / "run")
    shutil.rmtree(os.path.join(workdir, "checkpoints", "3"))  # so that the last command has a step to train
    lock = os.path.join(workdir, trainer.LOCK_FILE)
    first = subprocess.Popen([tu.H2R, *train_argv(workdir, 1000, "--config.train.checkpoint_every=1000")],
                             env=tu.env(1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while f"pid {first.pid}" not in (open(lock).read() if os.path.exists(lock) else ""):
            assert first.poll() is None and time.time() < deadline, "the first h2r train never took the lock"
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)  # frozen while it holds the lock: every change is the second's
        before = hashes(workdir)
        code, err = h2r(capsys, *train_argv(workdir, 3))
        assert code == 1 and f"run directory {workdir} is in use by host" in err and f"pid {first.pid}" in err, err
        assert hashes(workdir) == before
    finally:
        first.kill()  # SIGKILL: its lock file stays behind, the lock itself goes with the process
        first.wait()
    assert os.path.exists(lock)
    code, err = h2r(capsys, *train_argv(workdir, 3))
    assert code == 0, err
    assert tu.saved_steps(workdir) == [1, 2, 3] and not os.path.exists(lock)


def test_second_data_generate_into_one_out_is_refused_and_stale_temp_dirs_are_cleaned(tmp_path, capsys):
    out = tmp_path / "data"
    with another_holder(str(tmp_path / ".data.lock")) as holder:
        code, err = h2r(capsys, "data", "generate", "--config", MICRO_DATA, "--out", out)
        assert code == 1 and f"data directory {out} is in use by host" in err and f"pid {holder.pid}" in err, err
        assert not out.exists()
    stale = tmp_path / ".data.incomplete-abc123"  # what a killed `h2r data generate` leaves
    (stale / "h2r_human").mkdir(parents=True)
    code, err = h2r(capsys, "data", "generate", "--config", MICRO_DATA,
                    "--out", out, "--config.embodiments=trident_arm", "--config.settings=sort_eggs")
    assert code == 0, err
    assert not stale.exists() and sorted(p for p in os.listdir(tmp_path) if "incomplete" in p) == []


def test_second_eval_into_one_out_is_refused(micro_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    with another_holder(str(tmp_path / ".eval.json.lock")) as holder:
        code, err = h2r(capsys, "eval", "--workdir", micro_run, "--setting", "sort_eggs", "--episodes", 2,
                        "--out", out)
        assert code == 1 and f"eval output {out} is in use by host" in err and f"pid {holder.pid}" in err, err
        assert not out.exists()


# ------------------------------------------------------------------ 4. non-finite stats, data, actions
def test_nan_in_normalization_stats_is_refused_naming_file_key_and_dimension(micro_dataset, tmp_path, capsys):
    data = copy(micro_dataset, tmp_path / "data")
    assert h2r(capsys, "data", "stats", data)[0] == 0
    path = os.path.join(data, "h2r_trident_arm", "norm_stats.json")
    stats = json.load(open(path))
    stats["action"]["q99"][1] = float("nan")
    with open(path, "w") as f:
        json.dump(stats, f)
    before = hashes(data)
    workdir = tmp_path / "run"
    code, err = h2r(capsys, "train", "--config", tu.TINY, "--workdir", workdir, f"--config.data.dir={data}",
                    "--config.data.kind=cotrain", "--config.data.target=sort_eggs", "--config.train.steps=1")
    assert code == 1 and path in err and "'action.q99' has a non-finite value (NaN/inf) at dimension 1" in err, err
    assert "--refresh" in err
    assert hashes(data) == before and not os.path.exists(workdir / "config.json")


def test_nan_in_data_is_refused_naming_dataset_episode_step_and_dimension(tmp_path, capsys):
    rng = np.random.default_rng(0)
    episodes = [oxe_fixtures.h2r_episode(rng, scene="s", task_family="t", embodiment="bot") for _ in range(2)]
    episodes[1]["steps"][3]["action"][2] = np.inf
    oxe_fixtures.write_dataset(tmp_path, "h2r_bot", oxe_fixtures.h2r_features(), {"train": episodes})
    code, err = h2r(capsys, "data", "stats", tmp_path)
    assert code == 1, err
    assert "dataset 'h2r_bot'" in err and "episode 1 step 3: 'steps/action' has a non-finite value" in err, err
    assert "dimension 2" in err and not os.path.exists(tmp_path / "h2r_bot" / "norm_stats.json")


def test_eval_refuses_a_policy_that_emits_non_finite_actions(micro_run, tmp_path, capsys):
    """A run whose checkpoint carries NaN stats (made before stats were checked) gives NaN actions."""
    workdir = copy(micro_run, tmp_path / "run")
    step_dir = os.path.join(workdir, "checkpoints", str(max(tu.saved_steps(workdir))), "extra")
    path = os.path.join(step_dir, next(n for n in os.listdir(step_dir) if n != "commit_success.txt"))
    extra = json.load(open(path))
    for key in ("mean", "q01"):  # NaN actions under either normalization mode
        extra["norm_stats"]["h2r_trident_arm"]["action"][key][0] = float("nan")
    with open(path, "w") as f:
        json.dump(extra, f)
    out = tmp_path / "eval.json"
    # The rollout test_eval_checkpoint compiles (6 episodes, 2 recorded): shared within a session.
    code, err = h2r(capsys, "eval", "--workdir", workdir, "--setting", "sort_eggs", "--episodes", 6,
                    "--record", 2, "--out", out)
    assert code == 1 and "emitted non-finite (NaN/inf) actions" in err and "refusing to score" in err, err
    assert not out.exists()


# ------------------------------------------------------------------ 5. damaged checkpoints
def _truncate_tensor(step_dir):
    data = os.path.join(step_dir, "params", "ocdbt.process_0", "d")
    big = max(os.listdir(data), key=lambda n: os.path.getsize(os.path.join(data, n)))
    os.truncate(os.path.join(data, big), os.path.getsize(os.path.join(data, big)) // 2)


def _truncate_metadata(step_dir):
    path = os.path.join(step_dir, "params", "_METADATA")
    os.truncate(path, os.path.getsize(path) // 2)


@pytest.mark.parametrize("damage", [_truncate_tensor, _truncate_metadata], ids=["tensor", "metadata"])
def test_damaged_latest_checkpoint_falls_back_and_resume_ends_bitwise_identical(run3, tmp_path, capsys, damage):
    workdir = copy(run3, tmp_path / "run")
    damage(os.path.join(workdir, "checkpoints", "3"))
    # info names the damage (the metadata always; a tensor file when it reads every array).
    code, err = h2r(capsys, "checkpoint", "info", workdir, "--verify", "--json")
    assert code == 1 and "checkpoint step 3 of" in err and "is damaged" in err, err
    # Eval's loader falls back to step 2 and names step 3; an explicit --step 3 is a clear error.
    assert load_policy(workdir).step == 2
    assert "checkpoint step 3 in" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="checkpoint step 3 in .* is unreadable"):
        load_policy(workdir, step=3)
    # Resume: from step 2, the bad step kept aside, and step 3 recomputed exactly.
    code, err = h2r(capsys, *train_argv(workdir, 3))
    assert code == 0 and "checkpoint step 3 in" in err and "unreadable" in err, err
    assert os.path.isdir(os.path.join(workdir, "checkpoints.corrupt", "3"))
    assert tu.saved_steps(workdir) == [1, 2, 3]
    for item in ("params", "ema", "train_state"):
        ref, got = tu.flat(tu.restore_item(run3, 3, item)), tu.flat(tu.restore_item(workdir, 3, item))
        assert ref.keys() == got.keys() and all(np.array_equal(ref[k], got[k]) for k in ref), item
    assert h2r(capsys, "checkpoint", "info", workdir, "--verify")[0] == 0


# ------------------------------------------------------------------ clear errors, not tracebacks
def test_corrupt_tfds_metadata_is_named(micro_dataset, tmp_path, capsys):
    data = copy(micro_dataset, tmp_path / "data")
    for name in ("dataset_info.json", "features.json"):
        version = os.path.join(data, "h2r_human", "1.0.0")
        path = os.path.join(version, name)
        good = open(path).read()
        with open(path, "w") as f:
            f.write(good[: len(good) // 2])
        code, err = h2r(capsys, "data", "stats", data)
        assert code == 1 and f"{path} (JSONDecodeError" in err, err
        with open(path, "w") as f:
            f.write(good)


def test_corrupt_or_wrong_norm_stats_advise_refresh_which_fixes_them(micro_dataset, tmp_path, capsys):
    data = copy(micro_dataset, tmp_path / "data")
    assert h2r(capsys, "data", "stats", data)[0] == 0
    path = os.path.join(data, "h2r_human", "norm_stats.json")
    os.truncate(path, os.path.getsize(path) // 2)
    code, err = h2r(capsys, "data", "stats", data)
    assert code == 1 and f"normalization stats {path} is not valid JSON" in err, err
    assert f"h2r data stats {data} --refresh" in err
    assert h2r(capsys, "data", "stats", data, "--refresh")[0] == 0
    assert json.load(open(path))["action"]["q99"]


def test_truncated_frame_cache_is_rebuilt(micro_dataset, tmp_path, capsys):
    from h2r.data import sources
    data = copy(micro_dataset, tmp_path / "data")
    dataset = sources.RLDSDataset(os.path.join(data, "h2r_trident_arm"))
    path = dataset.frame_cache(16)
    frames = np.load(path)
    os.truncate(path, os.path.getsize(path) // 2)
    capsys.readouterr()
    assert dataset.frame_cache(16) == path
    assert f"{path}: unreadable" in capsys.readouterr().err
    assert np.array_equal(np.load(path), frames)


@pytest.mark.parametrize("steps", [0, -3])
def test_non_positive_train_steps_is_refused(tmp_path, capsys, steps):
    code, err = h2r(capsys, *train_argv(tmp_path / "run", steps))
    assert code == 1 and f"train.steps must be >= 1, got {steps}" in err, err
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("text, message", [
    ("def get_config(:\n    pass\n", "line 1: invalid syntax"),
    ("def get_config():\n    return {'train': {'steps': 1}}\n", "get_config() returned a dict"),
])
def test_broken_config_file_is_named(tmp_path, capsys, text, message):
    path = tmp_path / "config.py"
    path.write_text(text)
    code, err = h2r(capsys, "train", "--config", path, "--workdir", tmp_path / "run")
    assert code == 1 and str(path) in err and message in err, err


@pytest.mark.parametrize("form", [["offline"], ["embeddings"]])
def test_eval_on_a_directory_that_is_not_a_run(tmp_path, capsys, form):
    code, err = h2r(capsys, "eval", *form, "--workdir", tmp_path, "--out", tmp_path / "out")
    assert code == 1 and f"{tmp_path / 'config.json'} not found" in err, err


def test_disk_full_while_saving_a_checkpoint_is_one_line(tmp_path, capsys):
    with small_filesystem(tmp_path / "small", "1m") as small:
        workdir = os.path.join(small, "run")
        code, err = h2r(capsys, *train_argv(workdir, 3))  # run3's program: compiled already
        assert code == 1 and f"no space left writing {workdir}" in err and "MiB free" in err, err
        assert tu.saved_steps(workdir) == []  # nothing that looks like a checkpoint
        manager = checkpoint.make_manager(workdir)  # as the next `h2r train` starts: the partial save goes
        deadline = time.time() + 20
        while os.listdir(os.path.join(workdir, "checkpoints")) and time.time() < deadline:
            time.sleep(0.05)
        manager.close()
        assert os.listdir(os.path.join(workdir, "checkpoints")) == []


def test_disk_full_eval_out_is_refused_before_any_episode(micro_run, tmp_path, capsys):
    with small_filesystem(tmp_path / "small", "4k") as small:
        with open(os.path.join(small, "filler"), "wb") as f:
            f.write(b"x" * 4096)
        out = os.path.join(small, "eval.json")
        start = time.time()
        code, err = h2r(capsys, "eval", "--workdir", micro_run, "--setting", "sort_eggs", "--episodes", 64,
                        "--out", out)
        assert code == 1 and f"no space left writing {small}" in err and "MiB free" in err, err
        assert sorted(os.listdir(small)) == ["filler"] and time.time() - start < 30
