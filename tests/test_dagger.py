"""`h2r data dagger`: the policy's own rollouts, labelled by the expert, join its robot's data."""
import json
import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

import train_utils
from h2r.cli import main as h2r_main
from h2r.config import config_from_json
from h2r.data import dagger
from h2r.errors import DataError
from h2r.eval import success as evaluation
from h2r.eval import rollout
from h2r.world import catalogue, experts, tasks
from h2r.world.config import make_specs


@pytest.fixture(scope="module")
def aggregated(micro_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("dagger") / "data"
    assert h2r_main(["data", "dagger", "--run", micro_run, "--out", str(out), "--batch-size", "4"]) == 0
    return out


def _planned(run):
    config = config_from_json(os.path.join(run, "config.json"))
    robot = catalogue.setting(config.data.target).target_embodiment
    plan = [e for e in evaluation.planned_episodes(evaluation.data_config_of_run(config)) if e.embodiment == robot]
    return config, robot, plan


def test_adds_one_rollout_per_planned_training_episode_and_links_the_rest(micro_run, aggregated):
    config, robot, plan = _planned(micro_run)
    trained = [e for e in plan if e.setting == "target-robot" and e.split == "train" and e.target == config.data.target]
    block = json.loads((aggregated / "generation.json").read_text())["dagger"]
    assert block["added_episodes"] == len(trained) > 0 and block["embodiment"] == robot
    builder = tfds.builder_from_directory(str(aggregated / f"h2r_{robot}" / "1.0.0"))
    train_count = sum(e.split == "train" for e in plan)
    assert builder.info.splits["train"].num_examples == train_count + len(trained)
    assert builder.info.splits["val"].num_examples == sum(e.split == "val" for e in plan)
    source = os.path.realpath(str(config.data.dir))
    others = [p for p in os.listdir(aggregated) if p.startswith("h2r_") and p != f"h2r_{robot}"]
    assert others and all(os.path.realpath(aggregated / p) == os.path.join(source, p) for p in others)
    # The added episodes start from the planned layouts: their seeds are the planned ones.
    seeds = {int(ep["episode_metadata"]["seed"]) for ep in builder.as_data_source("train")}
    assert seeds == {e.seed for e in plan if e.split == "train"}


def test_labels_are_the_experts_noise_free_actions_in_the_visited_states(micro_run):
    import h2r

    config, robot, plan = _planned(micro_run)
    env_config = evaluation.env_config_of_run(config)
    planned = [e for e in plan if e.setting == "target-robot" and e.split == "train"][:2]
    episodes = dagger.rollout_labelled(h2r.load_policy(micro_run), planned, env_config, batch_size=2)
    specs = make_specs([planned[0].scene], [planned[0].task_family], robot, [planned[0].seed], [planned[0].variant])
    first = tasks.unbatch(rollout.reset_states(rollout.world_env(env_config), specs), 0)
    expected = experts.expert_action(first, jax.random.PRNGKey(0), env_config, noise_scale=0.0, nearest_move=True)
    dim = catalogue.embodiment(robot).action_dim
    np.testing.assert_allclose(episodes[0]["action"][0], np.asarray(expected)[:dim], atol=1e-6)
    # The 2-step policy does not act like the expert: what it executed is recorded apart.
    assert not np.allclose(episodes[0]["command"][:, :dim], episodes[0]["action"])
    assert all(len(e["image"]) == e["length"] == len(e["action"]) == len(e["subtask"]) for e in episodes)
    # The subtask names the move the label works on.
    move = int(tasks.expert_move(first, nearest=True))
    assert episodes[0]["subtask"][0] == tasks.subtask_of_move(first, move, int(episodes[0]["phase"][0]))


def test_a_run_trains_on_the_aggregated_data_and_a_second_round_is_refused(aggregated, tmp_path):
    run = train_utils.train_on_micro_data(str(tmp_path / "run"), aggregated)
    stats = json.loads(open(os.path.join(run, "norm_stats.json")).read())
    assert stats and all(np.isfinite(v).all() for s in stats.values() for v in s["action"].values())
    with pytest.raises(DataError, match="already holds DAgger episodes"):
        dagger.aggregate(run, str(tmp_path / "again"))
