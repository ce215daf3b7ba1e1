"""The input pipeline on a miniature h2r dataset directory written with real tfds builders:
batch layout, masks and ranges, mixture weights, diversity subsets, loss-weight ablations,
determinism, augmentation, and iterator state through orbax."""
import json
import os
import sys

import grain
import numpy as np
import pytest

import oxe_fixtures
from h2r.data import mixture, pipeline, sources, stats, tokenizer

B, H, A, S = 8, 4, 8, 8


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline") / "data"
    oxe_fixtures.write_h2r_world(root)
    stats.prepare(str(root))
    return root


def _batches(config, n, **kwargs):
    it = pipeline.make_iterator(config, **kwargs)
    return [next(it) for _ in range(n)]


def _is_human(batch):
    return batch["state_mask"].sum(-1) == 0  # only the human has no proprio in the fixture


def test_cotrain_batch_layout_masks_and_ranges(world):
    config = oxe_fixtures.pipeline_config(world, norm="quantile")  # the mode with a known range
    batch = next(pipeline.make_iterator(config, 0, 1))
    expected = {
        "image": ((B, 16, 16, 3), np.uint8), "wrist_image": ((B, 16, 16, 3), np.uint8),
        "image_mask": ((B, 2), np.bool_), "state": ((B, S), np.float32), "state_mask": ((B, S), np.bool_),
        "subgoal": ((B, pipeline.SUBGOALS, S), np.float32), "instruction": ((B, 16), np.int32), "subtask": ((B, 8), np.int32),
        "actions": ((B, H, A), np.float32), "action_valid": ((B, H), np.bool_),
        "action_dim_mask": ((B, A), np.bool_), "embodiment_id": ((B,), np.int32),
        "action_loss_weight": ((B,), np.float32), "subtask_loss_weight": ((B,), np.float32),
    }
    assert set(batch) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert batch[key].shape == shape and batch[key].dtype == dtype, key
    human = _is_human(batch)
    assert human.any() and (~human).any(), "a 50/50 co-training batch holds both embodiments"
    # Quantile normalization: everything in [-1, 1]; padded dims and invalid steps exactly 0.
    assert np.abs(batch["actions"]).max() <= 1.0 and np.abs(batch["state"]).max() <= 1.0
    assert (batch["actions"] * ~batch["action_dim_mask"][:, None, :] == 0).all()
    assert (batch["actions"] * ~batch["action_valid"][..., None] == 0).all()
    assert (batch["state"] * ~batch["state_mask"] == 0).all()
    assert (batch["subgoal"] * ~batch["state_mask"][:, None] == 0).all()   # no proprio, no subgoal
    assert np.abs(batch["subgoal"][~human]).sum() > 0
    # Robot: 3 action dims, 4 state dims; human: 2 action dims (no grip at all), no state.
    np.testing.assert_array_equal(batch["action_dim_mask"][~human].sum(-1), 3)
    np.testing.assert_array_equal(batch["action_dim_mask"][human].sum(-1), 2)
    np.testing.assert_array_equal(batch["state_mask"][~human].sum(-1), 4)
    assert batch["image_mask"].all()
    assert (batch["instruction"][:, 0] > tokenizer.EOS).all()


def test_action_chunk_follows_the_episode_and_masks_its_end(world):
    """Unnormalized, a chunk is exactly the next H recorded actions; past the end it is invalid."""
    config = oxe_fixtures.pipeline_config(world, human=False, action_horizon=3, norm="mean_std")
    robot = sources.RLDSDataset(str(world / "h2r_robot_a"))
    norm = stats.load(str(world / "h2r_robot_a"))
    batch = next(pipeline.make_iterator(config, 0, 1))
    raw = stats.unnormalize(batch["actions"][..., :3], norm, "action", "mean_std")
    for chunk, valid in zip(raw, batch["action_valid"]):
        # first action dim = episode code + t/100 in the fixture: find the step it came from.
        step = int(np.argmin(np.abs(robot.index.action[:, 0] - chunk[0, 0])))
        e, t = robot.index.step_episode[step], robot.index.step_t[step]
        remaining = robot.index.episode_length[e] - t
        np.testing.assert_array_equal(valid, np.arange(3) < remaining)
        n = int(valid.sum())
        np.testing.assert_allclose(chunk[:n], robot.index.action[step:step + n], atol=1e-4)


def test_early_steps_weigh_early_weight_times_as_much(world):
    """A sample from the first `early_steps` steps of its episode carries loss weight
    `early_weight`; any later one 1 (the fixture's first action dim encodes t: see above)."""
    config = oxe_fixtures.pipeline_config(world, human=False, norm="mean_std", early_steps=2, early_weight=3.0)
    robot = sources.RLDSDataset(str(world / "h2r_robot_a"))
    norm = stats.load(str(world / "h2r_robot_a"))
    ts = []
    for batch in _batches(config, 4, process_index=0, process_count=1):
        raw = stats.unnormalize(batch["actions"][..., :3], norm, "action", "mean_std")
        for chunk, weight in zip(raw, batch["action_loss_weight"]):
            t = robot.index.step_t[int(np.argmin(np.abs(robot.index.action[:, 0] - chunk[0, 0])))]
            assert weight == (3.0 if t < 2 else 1.0), (t, weight)
            ts.append(t)
    assert min(ts) < 2 <= max(ts)   # both kinds of sample were checked


def test_mixture_weights_are_respected(world):
    config = oxe_fixtures.pipeline_config(world, human_weight=0.25)
    batches = _batches(config, 25, process_index=0, process_count=1)
    share = np.mean([_is_human(b).mean() for b in batches])
    n = 25 * B
    assert abs(share - 0.25) < 3 * np.sqrt(0.25 * 0.75 / n), share


def test_human_loss_ablation_weights(world):
    for mode, (action_w, subtask_w) in mixture.HUMAN_LOSS.items():
        batch = next(pipeline.make_iterator(oxe_fixtures.pipeline_config(world, human_loss=mode), 0, 1))
        human = _is_human(batch)
        assert (batch["action_loss_weight"][human] == action_w).all()
        assert (batch["subtask_loss_weight"][human] == subtask_w).all()
        assert (batch["action_loss_weight"][~human] == 1).all() and (batch["subtask_loss_weight"][~human] == 1).all()


def test_no_wrist_ablation(world):
    batch = next(pipeline.make_iterator(oxe_fixtures.pipeline_config(world, use_wrist=False), 0, 1))
    assert batch["image_mask"][:, 0].all() and not batch["image_mask"][:, 1].any()
    assert (batch["wrist_image"] == 0).all()


def _pretrain(world, diversity, budget=4, other=False):
    return oxe_fixtures.pipeline_config(world, kind="pretrain", diversity=diversity, sample_budget=budget,
                                        other_embodiments=other, human=False)


def test_diversity_subsets_are_nested_and_keep_the_budget(world):
    datasets = pipeline.open_datasets(_pretrain(world, 1.0).data)
    robot = datasets["h2r_robot_a"]
    selected = {}
    for level in (0.25, 0.5, 0.75, 1.0):
        combos = set(mixture.diversity_combinations(robot, level))
        assert len(combos) == round(level * 8)
        comps = mixture.components(_pretrain(world, level).data, datasets)
        assert sum(len(c.episodes) for c in comps) == 4, "same unique-episode budget at every level"
        assert [c.dataset for c in comps] == ["h2r_robot_a"]
        meta = robot.index.metadata
        chosen = {(meta["scene"][e], meta["task_family"][e]) for e in comps[0].episodes}
        assert chosen <= combos and all(meta["setting"][e] == "pretrain" for e in comps[0].episodes)
        selected[level] = combos
    assert selected[0.25] <= selected[0.5] <= selected[0.75] <= selected[1.0]
    # Round robin over combinations: at 100% the 4 episodes come from 4 different combinations.
    comps = mixture.components(_pretrain(world, 1.0).data, datasets)
    meta = robot.index.metadata
    assert len({(meta["scene"][e], meta["task_family"][e]) for e in comps[0].episodes}) == 4
    # "+ other robots": same budget, now drawn from both robots.
    comps = mixture.components(_pretrain(world, 1.0, budget=12, other=True).data, datasets)
    assert sum(len(c.episodes) for c in comps) == 12  # 10 combinations: each gets one, 2 get two
    assert {c.dataset for c in comps} == {"h2r_robot_a", "h2r_robot_b"}


def test_factorial_axes_vary_one_factor_at_the_same_budget(world):
    """scene_diversity / task_diversity keep nested fractions of one factor and all of the other;
    embodiment_diversity adds other robots; every level draws the same number of episodes."""
    base = _pretrain(world, 1.0, budget=4).data
    datasets = pipeline.open_datasets(base)
    meta = datasets["h2r_robot_a"].index.metadata

    def chosen(**axes):
        data = base.copy_and_resolve_references()
        for key, value in axes.items():
            data[key] = value
        comps = mixture.components(data, datasets)
        assert sum(len(c.episodes) for c in comps) == 4, axes
        robot = [c for c in comps if c.dataset == "h2r_robot_a"]
        eps = robot[0].episodes if robot else []
        return ({meta["scene"][e] for e in eps}, {meta["task_family"][e] for e in eps},
                {c.dataset for c in comps})

    half_scenes, all_tasks, members = chosen(scene_diversity=0.5)
    assert len(half_scenes) == 2 and all_tasks == {"task0", "task1"} and members == {"h2r_robot_a"}
    quarter_scenes, _, _ = chosen(scene_diversity=0.25)
    assert quarter_scenes <= half_scenes and len(quarter_scenes) == 1
    all_scenes, one_task, _ = chosen(task_diversity=0.5)
    assert len(all_scenes) == 4 and len(one_task) == 1
    _, _, members = chosen(embodiment_diversity=1.0)
    assert members == {"h2r_robot_a", "h2r_robot_b"}
    with pytest.raises(Exception, match="scene_diversity"):
        chosen(scene_diversity=0.0)


def test_pretrain_stream_contains_only_the_subset(world):
    config = _pretrain(world, 0.25)
    datasets = pipeline.open_datasets(config.data)
    combos = set(mixture.diversity_combinations(datasets["h2r_robot_a"], 0.25))
    allowed = {f"do {task} in {scene}" for scene, task in combos}
    tok = tokenizer.Tokenizer.load(tokenizer.path_for(str(world)))
    seen = {tok.decode(ids) for b in _batches(config, 6, process_index=0, process_count=1)
            for ids in b["instruction"]}
    assert seen and seen <= allowed


def test_same_seed_same_batches_other_seed_differs(world):
    config = oxe_fixtures.pipeline_config(world, augment=True)
    a, b = _batches(config, 3, process_index=0, process_count=1), _batches(config, 3, process_index=0, process_count=1)
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    config.data.seed = 1
    c = _batches(config, 3, process_index=0, process_count=1)
    assert any(not np.array_equal(x["actions"], z["actions"]) for x, z in zip(a, c))


def test_augmentation_changes_images_deterministically(world):
    plain = next(pipeline.make_iterator(oxe_fixtures.pipeline_config(world), 0, 1))
    augmented = next(pipeline.make_iterator(oxe_fixtures.pipeline_config(world, augment=True), 0, 1))
    np.testing.assert_array_equal(plain["actions"], augmented["actions"])  # same samples
    assert not np.array_equal(plain["image"], augmented["image"])
    assert augmented["image"].shape == plain["image"].shape


def test_iterator_state_restored_through_orbax_gives_identical_batches(world, tmp_path):
    import orbax.checkpoint as ocp

    config = oxe_fixtures.pipeline_config(world, augment=True)
    it = pipeline.make_iterator(config, 0, 1)
    for _ in range(3):  # mid-epoch (an epoch of the robot part is 15 batches)
        next(it)
    with ocp.CheckpointManager(str(tmp_path / "ckpt")) as manager:
        manager.save(3, args=ocp.args.Composite(data_iter=grain.checkpoint.CheckpointSave(it)))
        manager.wait_until_finished()
    expected = [next(it) for _ in range(4)]

    restored = pipeline.make_iterator(config, 0, 1)
    with ocp.CheckpointManager(str(tmp_path / "ckpt")) as manager:
        manager.restore(3, args=ocp.args.Composite(data_iter=grain.checkpoint.CheckpointRestore(restored)))
    for want in expected:
        got = next(restored)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_worker_processes_give_the_same_stream(world):
    config = oxe_fixtures.pipeline_config(world)
    single = _batches(config, 3, process_index=0, process_count=1)
    config.data.worker_count = 1
    it = pipeline.make_iterator(config, 0, 1)
    for want in single:
        got = next(it)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    state = it.get_state()
    assert json.dumps(state)  # plain JSON state, resumable


def test_stats_files_and_tokenizer(world):
    norm = stats.load_by_name(str(world), "h2r_robot_a")
    assert len(norm["action"]["q01"]) == 3 and len(norm["state"]["mean"]) == 4
    assert norm == json.load(open(os.path.join(world, "h2r_robot_a", "norm_stats.json")))
    robot = sources.RLDSDataset(str(world / "h2r_robot_a"))
    np.testing.assert_allclose(norm["action"]["q99"], np.quantile(robot.index.action, 0.99, axis=0), rtol=1e-6)
    tok = tokenizer.Tokenizer.load(tokenizer.path_for(str(world)))
    ids = tok.encode("Place the thing", 6)
    assert ids.dtype == np.int32 and ids[3] == tokenizer.EOS and tok.decode(ids) == "place the thing"
    assert tok.encode("place the unicorn", 6)[2] == tokenizer.UNK


def test_stats_cli_refresh(world, capsys):
    from h2r.cli import main

    assert main(["data", "stats", str(world), "--refresh"]) == 0
    err = capsys.readouterr().err
    assert "h2r_human" in err and "tokenizer" in err and "ETA" in err


def test_peek_cli(world, tmp_path, capsys, monkeypatch):
    from h2r.cli import main

    config_path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments", "train", "pipeline_only.py")
    out = tmp_path / "peek.png"
    argv = ["data", "peek", "--config", config_path, "--out", str(out),
            f"--config.data.dir={world}", "--config.data.target=sort", "--config.model.image_size=16"]
    # As on a real command line: ml_collections reads the overrides from sys.argv.
    monkeypatch.setattr(sys, "argv", ["h2r", *argv])
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "actions" in printed and "(8, 4, 8)" in printed
    assert out.stat().st_size > 0


def test_global_batch_on_a_mesh(world):
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    config = oxe_fixtures.pipeline_config(world)
    local = next(pipeline.make_iterator(config))  # one process: ShardByJaxProcess -> 0 of 1
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    batch = pipeline.to_global_batch(local, NamedSharding(mesh, P("data")))
    assert batch["actions"].shape == (B, H, A) and len(batch["actions"].sharding.device_set) == 8
    np.testing.assert_array_equal(np.asarray(batch["image"]), local["image"])


def test_micro_dataset_from_the_world(request):
    """Our generated data (tests/conftest.py micro_dataset) through the pipeline, as the trainer reads it."""
    micro_dataset = request.getfixturevalue("micro_dataset")
    from h2r.world import catalogue

    setting = catalogue.SETTINGS[0]
    config = oxe_fixtures.pipeline_config(micro_dataset, target=setting.name, max_action_dim=8, max_state_dim=16,
                                          norm="quantile")  # the mode with a known range: actions in [-1, 1]
    config.model.image_size = 32
    batch = next(pipeline.make_iterator(config, 0, 1))
    human = catalogue.index_of("embodiment", "human")
    is_human = batch["embodiment_id"] == human
    assert is_human.any() and (~is_human).any()
    assert batch["image"].shape == (B, 32, 32, 3) and np.abs(batch["actions"]).max() <= 1
    assert not batch["state_mask"][is_human].any()


def test_decoded_frame_cache_gives_the_same_batches(world):
    cached = _batches(oxe_fixtures.pipeline_config(world, frame_cache=True), 3, process_index=0, process_count=1)
    decoded = _batches(oxe_fixtures.pipeline_config(world, frame_cache=False), 3, process_index=0, process_count=1)
    for x, y in zip(cached, decoded):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    assert any(name.startswith("frames_") for name in os.listdir(world / "h2r_robot_a"))


def test_resize_when_the_model_wants_another_size(world):
    config = oxe_fixtures.pipeline_config(world)
    config.model.image_size = 24
    batch = next(pipeline.make_iterator(config, 0, 1))
    assert batch["image"].shape == (B, 24, 24, 3) and batch["wrist_image"].shape == (B, 24, 24, 3)
