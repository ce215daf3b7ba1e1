"""`h2r eval` bookkeeping: where episodes stop, the pretrain:ROBOT role, seeds that avoid the data's."""
import dataclasses

import ml_collections
import numpy as np
import pytest

from h2r.data import plan
from h2r.errors import DataError
from h2r.eval import rollout, success
from h2r.world import catalogue


def data_config(**overrides) -> ml_collections.ConfigDict:
    """A small data config of the shape `h2r data generate` writes into generation.json."""
    config = dict(seed=3, resolution=32, horizon=48, num_scenes=0, num_task_families=0, task_families="",
                  episodes_per_combination=1, embodiments="", settings="", target_robot_episodes=2,
                  target_human_episodes=2, heldout_eval_episodes=1, val_fraction=0.1,
                  env=dict(max_task_objects=2, max_distractors=2))
    config.update(overrides)
    return ml_collections.ConfigDict(config)


# ------------------------------------------------------------------------ failure breakdown
def synthetic_outcome():
    # num_phases: 2 per move (the rollout's convention). Episodes (max_phase, success, num_phases):
    max_phase = np.array([0, 0, 1, 2, 3, 4, 0, 1, 2, 2, 3], np.int32)
    succeeded = np.array([0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0], bool)
    num_phases = np.array([4, 4, 4, 4, 4, 4, 2, 2, 2, 6, 6], np.int32)
    return rollout.RolloutOutcome(success=succeeded, length=np.where(succeeded, 20, 48).astype(np.int32),
                                  max_phase=max_phase, num_phases=num_phases,
                                  frames=np.zeros((0, 0, 0, 0, 3), np.uint8))


def test_breakdown_counts_where_failed_episodes_stop():
    o = synthetic_outcome()
    b = success.failure_breakdown(o.max_phase, o.success, o.num_phases)
    counts = {k: v["count"] for k, v in b.items()}
    assert counts == {"reach/grasp object 1": 3, "carry/place object 1": 2, "reach/grasp object 2": 2,
                      "carry/place object 2": 2, "reach/grasp object 3": 0, "carry/place object 3": 0,
                      "success": 2}
    assert list(b)[-1] == "success"                       # stages in task order, success last
    assert sum(counts.values()) == len(o.success)
    assert b["reach/grasp object 1"]["fraction"] == pytest.approx(3 / 11, abs=1e-4)
    assert sum(v["fraction"] for v in b.values()) == pytest.approx(1.0, abs=1e-3)
    # A failed episode that reached the done phase (never happens with the rollout's freeze, but
    # must not be counted as a carry failure nor vanish).
    b2 = success.failure_breakdown([4, 3], [False, False], [4, 4])
    assert b2["finished, no success"]["count"] == 1 and b2["carry/place object 2"]["count"] == 1
    assert "reach/grasp object 1" in success.format_breakdown(b)
    assert success.format_breakdown(b).endswith("success 2 (18%)")


def test_summarize_keeps_episode_details_and_old_keys():
    o = synthetic_outcome()
    n = len(o.success)
    es = success.EvalSetting("x", "x", "heldout-eval", "jaw_arm", (("oak_kitchen", "tidy", 0),))
    combos = [("oak_kitchen", "tidy", 0)] * n
    seeds = np.arange(n, dtype=np.uint32) + np.uint32(2 ** 31 + 5)
    r = success.summarize(o, es, combos, ["t"] * n, interval="wilson", seed=0, execute_steps=1, max_steps=48,
                          wall=1.0, seeds=seeds)
    for key in ("successes", "max_phase", "num_phases", "phase_completion", "success_rate", "ci95", "lengths",
                "per_combination", "max_steps", "failure_breakdown", "episodes_detail"):
        assert key in r, key
    d = r["episodes_detail"]
    assert [e["index"] for e in d] == list(range(n))
    assert d[3] == dict(index=3, scene="oak_kitchen", task_family="tidy", variant=0, seed=2 ** 31 + 8,
                        success=False, length=48, max_phase=2, num_phases=4, stage="reach/grasp object 2")
    assert d[5]["success"] is True and d[5]["stage"] == "success"
    assert r["failure_breakdown"]["success"]["count"] == sum(r["successes"]) == 2
    assert r["failure_stages"] == list(success.failure_breakdown(o.max_phase, o.success, o.num_phases))
    # The digest names the episodes run: the same episodes give the same one, another seed another.
    again = success.summarize(o, es, combos, ["t"] * n, interval="wilson", seed=0, execute_steps=1,
                              max_steps=48, wall=2.0, seeds=seeds)
    other = success.summarize(o, es, combos, ["t"] * n, interval="wilson", seed=0, execute_steps=1,
                              max_steps=48, wall=1.0, seeds=seeds + np.uint32(1))
    assert r["episodes_digest"] == again["episodes_digest"] != other["episodes_digest"]


# --------------------------------------------------------------------------- pretrain:ROBOT
@pytest.mark.parametrize("overrides", [dict(), dict(num_scenes=3, num_task_families=4),
                                       dict(num_scenes=2, task_families="bussing,tidy", embodiments="hook_arm,human")])
def test_pretrain_role_uses_the_datas_pretraining_combinations(overrides):
    config = data_config(**overrides)
    robot = "jaw_arm"
    es = success.parse_setting(f"pretrain:{robot}", data_config=config)
    assert (es.role, es.embodiment, es.name) == ("pretrain", robot, f"pretrain:{robot}")
    # What plan.py plans for pretraining (per embodiment the same combinations) ...
    planned = plan.plan_episodes(config)
    for emb in {e.embodiment for e in planned}:
        assert es.combos == tuple(dict.fromkeys((e.scene, e.task_family, e.variant) for e in planned
                                                if e.setting == "pretrain" and e.embodiment == emb))
    # ... and, independently, the first num_scenes scenes x task families x variants, pretrain-allowed.
    scenes = [s.name for s in catalogue.SCENES][: config.num_scenes or None]
    tasks = (config.task_families.split(",") if config.task_families
             else [t.name for t in catalogue.TASK_FAMILIES][: config.num_task_families or None])
    expected = tuple((s, t, v) for s in scenes for t in tasks for v in range(catalogue.task_family(t).num_variants)
                     if catalogue.is_pretrain_allowed(s, t, v))
    assert es.combos == expected
    assert not set(es.combos) & {c for s in catalogue.SETTINGS for c in s.heldout_eval}
    # The same from generation.json's plain dict.
    assert success.parse_setting(f"pretrain:{robot}", data_config=config.to_dict()).combos == es.combos


def test_setting_names_and_errors():
    for name, role in (("sort_eggs", "heldout-eval"), ("sort_eggs:target-robot", "target-robot")):
        es = success.parse_setting(name)
        assert (es.name, es.setting, es.role, es.embodiment) == (name, "sort_eggs", role, "trident_arm")
        assert es.combos == catalogue.setting_combinations("sort_eggs", role)
    config = data_config(num_scenes=2, num_task_families=2)
    with pytest.raises(DataError, match="unknown robot 'robo_x'"):
        success.parse_setting("pretrain:robo_x", data_config=config)
    with pytest.raises(DataError, match=f"'{catalogue.HUMAN}' is the human"):
        success.parse_setting(f"pretrain:{catalogue.HUMAN}", data_config=config)
    with pytest.raises(DataError, match="names no robot"):
        success.parse_setting("pretrain", data_config=config)
    with pytest.raises(DataError, match="data config"):
        success.parse_setting("pretrain:jaw_arm")
    with pytest.raises(DataError, match="no pretraining episodes"):
        success.parse_setting("pretrain:jaw_arm", data_config=data_config(episodes_per_combination=0))
    with pytest.raises(DataError, match="pretrain:ROBOT"):
        success.parse_setting("sort_eggs:pretrain")


# ------------------------------------------------------------------------------------ seeds
def test_seed_collisions_are_redrawn_deterministically():
    natural = success.episode_seeds("pretrain:jaw_arm", 16, 0)
    assert np.array_equal(natural, success.episode_seeds("pretrain:jaw_arm", 16, 0, excluded_seeds=()))
    excluded = {int(natural[1]) + 2 ** 32, int(natural[7])}      # compared mod 2**32, as the world takes seeds
    seeds = success.episode_seeds("pretrain:jaw_arm", 16, 0, excluded_seeds=excluded)
    assert np.array_equal(seeds, success.episode_seeds("pretrain:jaw_arm", 16, 0, excluded_seeds=excluded))
    changed = np.flatnonzero(seeds != natural)
    assert changed.tolist() == [1, 7]                              # the other episodes keep their seeds
    assert not {int(s) for s in seeds} & {s % 2 ** 32 for s in excluded}
    assert len(set(seeds.tolist())) == 16


def test_planned_seeds_are_the_datas_seeds_of_that_embodiment():
    config = data_config(num_scenes=2, num_task_families=3)
    planned = plan.plan_episodes(config)
    seeds = success.planned_seeds(config, "trident_arm")
    assert seeds == {e.seed % 2 ** 32 for e in planned if e.embodiment == "trident_arm"} and seeds
    # Every eval seed of the setting avoids them, even when the natural draw would collide.
    es = success.parse_setting("sort_eggs:target-robot")
    natural = success.episode_seeds(es.name, 8, 0)
    excluded = seeds | {int(natural[2])}
    specs, _ = success.episode_specs(es, 8, 0, excluded_seeds=excluded)
    used = np.asarray(specs.seed).view(np.uint32)
    assert not {int(s) for s in used} & excluded and int(used[0]) == int(natural[0])


# ------------------------------------------------------------------- one closed-loop check
def test_expert_on_pretrain_role_writes_details_and_breakdown():
    """The scripted expert on pretrain:jaw_arm (few episodes, one compilation): details and
    breakdown agree with the outcome, and no episode reuses a seed of the data."""
    from h2r.world.config import EnvConfig

    config = data_config(num_scenes=1, num_task_families=1, embodiments="jaw_arm",
                         env=dict(max_task_objects=1, max_distractors=0))
    env_config = EnvConfig.from_config(config)
    es = success.parse_setting("pretrain:jaw_arm", data_config=config)
    excluded = success.planned_seeds(config, "jaw_arm")
    natural = success.episode_seeds(es.name, 4, 0)
    excluded = excluded | {int(natural[0])}                         # force one redraw
    result, outcome = success.evaluate(success.expert_controller(env_config), None, es, 4, env_config=env_config,
                                       seed=0, execute_steps=1, record=0, excluded_seeds=excluded)
    assert result["max_steps"] == result["horizon"] == env_config.horizon
    assert result["redrawn_seeds"] == 1
    details = result["episodes_detail"]
    assert [d["success"] for d in details] == outcome.success.tolist()
    assert [d["max_phase"] for d in details] == outcome.max_phase.tolist()
    assert not {d["seed"] for d in details} & excluded
    assert {(d["scene"], d["task_family"], d["variant"]) for d in details} <= set(es.combos)
    breakdown = result["failure_breakdown"]
    assert sum(v["count"] for v in breakdown.values()) == 4
    assert breakdown["success"]["count"] == int(outcome.success.sum()) >= 3
    assert dataclasses.asdict(es)["role"] == "pretrain"
