"""`h2r data generate` end to end on the real world: determinism, held-out hygiene of the
settings, refusing/allowing overwrites, interrupted writes, and the CLI surface.

Small generations share one world compilation with the session's `micro_dataset` (same
resolution, horizon, env options and rollout batch size), so each costs ~2 s after the first.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from h2r.config import load_config
from h2r.data import generate as generate_lib
from h2r.data import plan as plan_lib
from h2r.errors import DataError
from h2r.world import catalogue

ROOT = Path(__file__).resolve().parents[1]
MICRO = str(ROOT / "experiments" / "data" / "micro.py")
SMALL_EMBODIMENTS = ("jaw_arm", "human")


def _small_config(seed: int = 0):
    """A robot and the human, one scene, one task family, two episodes each (train + val)."""
    config = load_config(MICRO)
    config.seed = seed
    config.embodiments = ",".join(SMALL_EMBODIMENTS)
    config.num_scenes = 1
    config.num_task_families = 1
    config.episodes_per_combination = 2
    # settings="" means every setting: switch the held-out settings' episodes off by count.
    config.target_robot_episodes = config.target_human_episodes = config.heldout_eval_episodes = 0
    return config


def _records(directory, embodiment: str) -> dict:
    """{split: [record, ...]} of one embodiment's dataset, in file order."""
    builder = tfds.builder_from_directory(str(Path(directory) / f"h2r_{embodiment}" / "1.0.0"))
    out = {}
    for split in builder.info.splits:
        source = builder.as_data_source(split)
        out[split] = [source[i] for i in range(len(source))]
    return out


def _steps(record) -> list[dict]:
    steps = record["steps"]
    return [steps[t] for t in range(len(steps))]


def _assert_same(a, b, where: str = "") -> None:
    """Deep equality of decoded records: dict keys, numpy values (dtype and content), bytes."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)) or hasattr(a, "__getitem__") and hasattr(a, "__len__") \
            and not isinstance(a, (bytes, str, np.ndarray)):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i in range(len(a)):
            _assert_same(a[i], b[i], f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic)):
        b = np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert np.array_equal(a, b), f"{where}: values differ"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _snapshot(directory: Path) -> dict:
    """{relative path: sha256} of every file under `directory`."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "data"
    generate_lib.generate(_small_config(seed=0), out)
    return out


# ------------------------------------------------------------------------------ a. determinism
def test_same_seed_gives_identical_records_and_another_seed_different_actions(small_dataset, tmp_path):
    again = tmp_path / "again"
    generate_lib.generate(_small_config(seed=0), again)
    other = tmp_path / "other_seed"
    generate_lib.generate(_small_config(seed=1), other)

    for embodiment in SMALL_EMBODIMENTS:
        first, second = _records(small_dataset, embodiment), _records(again, embodiment)
        assert set(first) == {"train", "val"} and set(second) == set(first)
        for split in first:
            assert len(first[split]) == len(second[split]) >= 1
            for i, (a, b) in enumerate(zip(first[split], second[split])):
                assert a["episode_metadata"]["embodiment"] == embodiment.encode()
                steps_a, steps_b = _steps(a), _steps(b)
                assert len(steps_a) >= 2
                # Images compared decoded (pixels), plus everything else in the record.
                for t, (sa, sb) in enumerate(zip(steps_a, steps_b)):
                    assert sa["observation"]["image"].dtype == np.uint8
                    assert sa["observation"]["image"].any(), "a blank frame would make this vacuous"
                    assert ("state" in sa["observation"]) == (embodiment != "human")
                _assert_same(a["episode_metadata"], b["episode_metadata"], f"{embodiment}/{split}[{i}]/meta")
                _assert_same(steps_a, steps_b, f"{embodiment}/{split}[{i}]/steps")

        # Another config seed: the same combinations (keys), new episode seeds and new actions.
        different = _records(other, embodiment)
        assert {s: len(r) for s, r in different.items()} == {s: len(r) for s, r in first.items()}
        first_all = [r for split in first for r in first[split]]
        other_all = [r for split in different for r in different[split]]
        assert {r["episode_metadata"]["seed"] for r in first_all}.isdisjoint(
            {r["episode_metadata"]["seed"] for r in other_all})
        for a in first_all:
            actions_a = np.stack([s["action"] for s in _steps(a)])
            for b in other_all:
                actions_b = np.stack([s["action"] for s in _steps(b)])
                assert actions_a.shape != actions_b.shape or not np.array_equal(actions_a, actions_b), \
                    f"{embodiment}: seed 0 and seed 1 produced an identical action sequence"

    summary_a = json.loads((small_dataset / "generation.json").read_text())
    summary_b = json.loads((again / "generation.json").read_text())
    assert summary_a["counts"] == summary_b["counts"] == {
        "jaw_arm": {"pretrain": {"train": 1, "val": 1}}, "human": {"pretrain": {"train": 1, "val": 1}}}


# ------------------------------------------------------------------- b. held-out settings hygiene
_HELDOUT_OBJECT = re.compile(r"\b(%s)\b" % "|".join(catalogue.HELDOUT_OBJECT_TYPES))


def _variant(task_family: str, subtasks: set[bytes]) -> int:
    """The object variant, read back from the subtask texts ("pick up the red mug"): the only
    variant-dependent family (bussing) uses held-out dish types exactly in variant 1."""
    if catalogue.task_family(task_family).num_variants == 1:
        return 0
    return int(any(_HELDOUT_OBJECT.search(text.decode()) for text in subtasks))


def _micro_episodes(directory) -> list[dict]:
    """One row per episode of every dataset in `directory`: metadata (str) + variant + split."""
    rows = []
    for path in sorted(Path(directory).glob("h2r_*")):
        for split, records in _records(directory, path.name[len("h2r_"):]).items():
            for record in records:
                meta = {k: (v.decode() if isinstance(v, bytes) else v)
                        for k, v in record["episode_metadata"].items()}
                steps = record["steps"]
                subtasks = {steps[t]["subtask_instruction"] for t in range(len(steps))}
                rows.append({**meta, "variant": _variant(meta["task_family"], subtasks), "split": split,
                             "dataset": path.name})
    return rows


def test_heldout_combinations_never_in_pretrain_and_settings_match_catalogue(micro_dataset):
    config = load_config(MICRO)
    rows = _micro_episodes(micro_dataset)
    assert len(rows) == json.loads((micro_dataset / "generation.json").read_text())["episodes"]
    assert all(r["dataset"] == f"h2r_{r['embodiment']}" for r in rows)

    # Pretrain: allowed combinations only, no held-out scene/task family/object, no target; and
    # exactly the planned grid (first num_scenes scenes x first num_task_families families).
    pretrain = [r for r in rows if r["setting"] == plan_lib.PRETRAIN]
    assert pretrain
    scenes = [s.name for s in catalogue.SCENES][:config.num_scenes]
    families = [t.name for t in catalogue.TASK_FAMILIES][:config.num_task_families]
    expected_grid = {(s, t, v) for s in scenes for t in families
                     for v in range(catalogue.task_family(t).num_variants)
                     if catalogue.is_pretrain_allowed(s, t, v)}
    for r in pretrain:
        combo = (r["scene"], r["task_family"], r["variant"])
        assert catalogue.is_pretrain_allowed(*combo), f"held-out combination in pretrain data: {r}"
        assert r["scene"] not in catalogue.HELDOUT_SCENES
        assert r["task_family"] not in catalogue.HELDOUT_TASK_FAMILIES
        assert r["target"] == ""
    for embodiment in [e.name for e in catalogue.EMBODIMENTS]:
        assert {(r["scene"], r["task_family"], r["variant"]) for r in pretrain
                if r["embodiment"] == embodiment} == expected_grid, embodiment

    # No robot ever trains (pretrain or target-robot) on a setting's held-out-eval combination,
    # and the target robot never sees the held-out task family/scenes/objects in training data.
    robot_train = [r for r in rows if r["setting"] in (plan_lib.PRETRAIN, plan_lib.TARGET_ROBOT)
                   and r["embodiment"] != catalogue.HUMAN]
    for setting in catalogue.SETTINGS:
        heldout = set(catalogue.setting_combinations(setting, plan_lib.HELDOUT_EVAL))
        for r in robot_train:
            assert (r["scene"], r["task_family"], r["variant"]) not in heldout, (setting.name, r)

    # Each held-out setting's roles: exactly the catalogue's combinations, on the right embodiment.
    counts = {plan_lib.TARGET_ROBOT: config.target_robot_episodes,
              plan_lib.TARGET_HUMAN: config.target_human_episodes,
              plan_lib.HELDOUT_EVAL: config.heldout_eval_episodes}
    for setting in catalogue.SETTINGS:
        for role in plan_lib.SETTING_ROLES:
            got = [r for r in rows if r["target"] == setting.name and r["setting"] == role]
            embodiment = catalogue.HUMAN if role == plan_lib.TARGET_HUMAN else setting.target_embodiment
            assert {r["embodiment"] for r in got} == {embodiment}, (setting.name, role)
            combos = catalogue.setting_combinations(setting.name, role)
            assert sorted((r["scene"], r["task_family"], r["variant"]) for r in got) == \
                sorted(list(combos) * counts[role]), (setting.name, role)
    # Every non-pretrain episode belongs to one of those settings and roles.
    assert all(r["setting"] in plan_lib.SETTING_ROLES and r["target"] in {s.name for s in catalogue.SETTINGS}
               for r in rows if r["setting"] != plan_lib.PRETRAIN)

    # The planner never schedules a held-out combination as pretrain, for the whole catalogue.
    full = load_config(MICRO, ["--config.num_scenes=0", "--config.num_task_families=0"])
    planned = plan_lib.plan_episodes(full)
    assert {e.scene for e in planned if e.setting == plan_lib.PRETRAIN} == \
        {s.name for s in catalogue.SCENES if not s.heldout}
    assert all(catalogue.is_pretrain_allowed(e.scene, e.task_family, e.variant)
               for e in planned if e.setting == plan_lib.PRETRAIN)


# ------------------------------------------------------------------------------- c. overwrite
def test_existing_output_is_refused_without_overwrite_and_replaced_with_it(small_dataset, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(small_dataset, out)
    before = _snapshot(out)
    assert "generation.json" in before and any(k.startswith("h2r_jaw_arm/") for k in before)

    with pytest.raises(DataError, match="overwrite"):
        generate_lib.generate(_small_config(seed=1), out)
    assert _snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["data"]   # no temp dir left beside it

    summary = generate_lib.generate(_small_config(seed=1), out, overwrite=True)
    assert summary["config"]["seed"] == 1
    # The staged directory gets a plain mkdir's mode (mkdtemp's 0700 would lock other users out).
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    assert json.loads((out / "generation.json").read_text())["config"]["seed"] == 1
    seeds = {r["episode_metadata"]["seed"] for split in _records(out, "jaw_arm").values() for r in split}
    planned = {e.seed for e in plan_lib.plan_episodes(_small_config(seed=1)) if e.embodiment == "jaw_arm"}
    assert seeds == planned
    assert sorted(os.listdir(tmp_path)) == ["data"]


# ----------------------------------------------------------------------- d. interrupted writes
class Interrupted(Exception):
    pass


def _interrupt_after(n: int, exception: type[BaseException]):
    seen = []

    def on_episode(item):
        seen.append(item)
        if len(seen) == n:
            raise exception(f"interrupted after {n} episodes")
    return on_episode, seen


def test_interrupted_write_keeps_previous_dataset_intact(small_dataset, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(small_dataset, out)
    before = _snapshot(out)
    # The 3rd episode is the human's first: h2r_jaw_arm is already complete in the staging dir.
    on_episode, seen = _interrupt_after(3, Interrupted)
    with pytest.raises(Interrupted):
        generate_lib.generate(_small_config(seed=1), out, overwrite=True, on_episode=on_episode)
    assert len(seen) == 3 and seen[0].embodiment == "jaw_arm" and seen[-1].embodiment == "human"
    assert _snapshot(out) == before
    assert json.loads((out / "generation.json").read_text())["config"]["seed"] == 0
    assert len(_records(out, "human")["train"]) == 1   # still readable
    assert sorted(os.listdir(tmp_path)) == ["data"], "temp dirs left beside --out"


@pytest.mark.parametrize("exception", [Interrupted, KeyboardInterrupt])
def test_interrupted_write_into_new_directory_leaves_nothing(tmp_path, exception):
    parent = tmp_path / "parent"
    parent.mkdir()
    out = parent / "data"
    on_episode, seen = _interrupt_after(3, exception)
    with pytest.raises(exception):
        generate_lib.generate(_small_config(seed=0), out, on_episode=on_episode)
    assert len(seen) == 3
    assert not out.exists()
    assert os.listdir(parent) == [], "temp dirs left beside --out"


# -------------------------------------------------------------------------------------- e. CLI
H2R = str(Path(sys.executable).parent / "h2r")


def _h2r(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([H2R, *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_cli_help_and_config_typo(tmp_path):
    result = _h2r("data", "generate", "--help")
    assert result.returncode == 0, result.stderr
    assert "--overwrite" in result.stdout and "--config" in result.stdout and "--out" in result.stdout

    out = tmp_path / "data"
    result = _h2r("data", "generate", "--config", MICRO, "--out", str(out), "--config.num_scenez=1")
    assert result.returncode != 0
    assert "num_scenez" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_every_world_option_is_a_config_key_and_unknown_ones_are_refused():
    from h2r.data.config import generation_config
    from h2r.world.config import EnvConfig
    config = generation_config(env=dict(max_task_objects=2))
    # Any EnvConfig field can be set from the command line (--config.env.start_anywhere=0.5).
    assert config.env.max_task_objects == 2 and config.env.start_anywhere == 0.0
    assert EnvConfig.from_config(config) == EnvConfig(image_size=64, horizon=96, max_task_objects=2)
    with pytest.raises(KeyError, match="colour"):
        generation_config(env=dict(colour=1))
    # None (each embodiment's own wrist view) is still settable from the command line.
    assert EnvConfig.from_config(load_config(MICRO)).wrist_half_extent is None
    overridden = load_config(MICRO, ["--config.env.wrist_half_extent=0.3"])
    assert EnvConfig.from_config(overridden).wrist_half_extent == 0.3


def test_out_as_a_link_writes_where_it_points(tmp_path):
    # A link to a directory that does not exist yet (a benchmark's data/ link made before its data).
    out, target = tmp_path / "run" / "data", tmp_path / "shared" / "data"
    out.parent.mkdir()
    out.symlink_to(target)
    generate_lib.generate(_small_config(seed=1), out)
    assert out.is_symlink() and (target / "generation.json").exists()
    assert sorted(os.listdir(tmp_path / "run")) == ["data"] and sorted(os.listdir(target.parent)) == ["data"]
    generate_lib.generate(_small_config(seed=2), out, overwrite=True)   # replaced behind the link
    assert out.is_symlink() and json.loads((out / "generation.json").read_text())["config"]["seed"] == 2
