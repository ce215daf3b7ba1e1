"""Overlap measures on constructed embeddings with known answers."""
import numpy as np

from h2r.eval import representation


def _phase_clusters(rng, n, phases, dim, centers, offset=0.0, noise=0.3):
    labels = rng.integers(0, phases, size=n)
    return centers[labels] + offset + noise * rng.normal(size=(n, dim)), labels


def test_probe_is_at_chance_for_identical_distributions_and_perfect_for_separated_ones():
    rng = np.random.default_rng(0)
    dim = 16
    centers = rng.normal(size=(4, dim))
    human, _ = _phase_clusters(rng, 300, 4, dim, centers)
    robot, _ = _phase_clusters(rng, 300, 4, dim, centers)
    same = representation.probe_accuracy(human, robot)
    assert abs(same["accuracy"] - 0.5) < 0.08, same
    far_robot, _ = _phase_clusters(rng, 300, 4, dim, centers, offset=3.0)
    separated = representation.probe_accuracy(human, far_robot)
    assert separated["accuracy"] > 0.98, separated


def test_probe_balances_unequal_class_sizes():
    rng = np.random.default_rng(1)
    human, robot = rng.normal(size=(100, 8)), rng.normal(size=(400, 8))
    result = representation.probe_accuracy(human, robot)
    assert result["per_class"] == 100
    assert abs(result["accuracy"] - 0.5) < 0.1  # an unbalanced probe would score ~0.8 by guessing "robot"


def test_phase_retrieval_finds_shared_phase_structure_and_only_that():
    rng = np.random.default_rng(2)
    dim, phases = 16, 4
    centers = 2.0 * rng.normal(size=(phases, dim))
    human, human_phase = _phase_clusters(rng, 200, phases, dim, centers)
    robot, robot_phase = _phase_clusters(rng, 200, phases, dim, centers, offset=0.5)
    shared = representation.phase_retrieval(human, human_phase, robot, robot_phase)
    assert shared["accuracy"] > 0.95 and shared["above_chance"] > 0.9, shared
    # Robot embeddings that carry no phase information: retrieval falls to the chance level.
    unrelated = rng.normal(size=(200, dim)) + 5.0
    none = representation.phase_retrieval(human, human_phase, unrelated, robot_phase)
    assert abs(none["accuracy"] - none["chance"]) < 0.08, none
    assert 0.2 < none["chance"] < 0.3  # 4 roughly balanced phases


def test_tsne_figure_writes_a_png(tmp_path):
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(60, 8))
    path = tmp_path / "tsne.png"
    points = representation.tsne_figure(emb, ["human"] * 30 + ["robot"] * 30, rng.integers(0, 3, 60), str(path))
    assert points.shape == (60, 2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
