"""`h2r eval` on a real (tiny, briefly trained) checkpoint: closed loop, embeddings, offline."""
import io
import json
import os

import numpy as np
import pytest

from h2r import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING_KEYS = ("wall_s", "episodes_per_s")


@pytest.fixture(scope="module")
def tiny_run(micro_run):
    return micro_run  # tests/conftest.py: 2 steps on the micro data, shared with tests/test_faults.py


def _eval(workdir, out, seed=0, *extra):
    assert cli.main(["eval", "--workdir", workdir, "--setting", "sort_eggs", "--episodes", "6",
                     "--out", str(out), "--seed", str(seed), "--record", "2", *extra]) == 0
    with open(out) as f:
        return json.load(f)


def test_evaluating_a_checkpoint_twice_gives_identical_results(tiny_run, tmp_path):
    first = _eval(tiny_run, tmp_path / "a" / "result.json")
    second = _eval(tiny_run, tmp_path / "b" / "result.json")
    for key in ("success_rate", "ci95", "episodes", "phase_completion", "mean_length", "setting", "step",
                "successes"):
        assert key in first, key
    assert first["episodes"] == 6 and first["setting"] == "sort_eggs" and first["step"] == 2
    assert 0.0 <= first["ci95"][0] <= first["success_rate"] <= first["ci95"][1] <= 1.0
    strip = lambda r: {k: v for k, v in r.items() if k not in TIMING_KEYS}  # noqa: E731
    assert strip(first) == strip(second)
    for media in first["media"]:
        assert os.path.getsize(tmp_path / "a" / media) > 0
    assert first["params"] == "params"


def test_eval_of_the_ema_params_says_so(tiny_run, tmp_path):
    # (that load_policy(ema=True) restores the EMA, not the params: tests/test_train_resume.py)
    result = _eval(tiny_run, tmp_path / "result.json", 0, "--ema")
    assert result["params"] == "ema" and result["episodes"] == 6


def test_direct_form_without_setting_is_a_usage_error(tiny_run, capsys):
    with pytest.raises(SystemExit):
        cli.main(["eval", "--workdir", tiny_run])
    assert "--setting" in capsys.readouterr().err


def test_embeddings_of_matched_human_and_robot_states(tiny_run, tmp_path):
    out = tmp_path / "emb"
    assert cli.main(["eval", "embeddings", "--workdir", tiny_run, "--out", str(out), "--per-state", "2"]) == 0
    with open(out / "embeddings.json") as f:
        report = json.load(f)
    assert report["frames"]["human"] == report["frames"]["robot"] > 0
    assert 0.0 <= report["probe_accuracy"]["accuracy"] <= 1.0
    retrieval = report["phase_retrieval"]
    assert 0.0 <= retrieval["chance"] <= 1.0 and 0.0 <= retrieval["accuracy"] <= 1.0
    assert (out / "tsne.png").read_bytes()[:4] == b"\x89PNG"


def test_offline_action_error_per_dataset(tiny_run, tmp_path):
    out = tmp_path / "offline.json"
    assert cli.main(["eval", "offline", "--workdir", tiny_run, "--out", str(out), "--batches", "2"]) == 0
    with open(out) as f:
        result = json.load(f)
    assert np.isfinite(result["mse"]) and result["mse"] > 0
    assert set(result["per_dataset"]) <= {"h2r_trident_arm", "h2r_human"} and result["per_dataset"]


def test_medoid_keeps_a_candidate_of_the_heaviest_mode_and_ignores_padding():
    """Four candidates near +1, one at -1, one at 0 (the deterministic flow's midpoint): the medoid
    is the +1 mode's central chunk, whatever the padding dimensions (never trained) hold."""
    import jax.numpy as jnp  # noqa: PLC0415

    from h2r.policy import medoid  # noqa: PLC0415

    H, A, dim = 4, 5, 2
    centres = np.array([1.0, 1.05, 0.95, 1.02, -1.0, 0.0])
    chunks = np.broadcast_to(centres[:, None, None], (6, H, A)).copy()
    chunks[:, :, dim:] = np.array([50.0, 0, 0, 0, 0, 0])[:, None, None]   # padding: huge on candidate 0
    chosen = np.asarray(medoid(jnp.asarray(chunks[None]), dim))[0]
    assert chosen.shape == (H, A)
    np.testing.assert_allclose(chosen[:, :dim], 1.0)        # the +1 mode's central candidate
    assert np.any(np.all(chosen == chunks, axis=(1, 2)))     # a candidate, not an average
