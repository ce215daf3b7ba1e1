"""How embodiment-agnostic are the learned representations? Measures on embeddings.

The paper judged human/robot overlap by eye on a t-SNE picture; we measure it:
  (a) `probe_accuracy`: a cross-validated linear probe telling human from robot embeddings of
      matched states (0.5 = indistinguishable, 1.0 = fully separable);
  (b) `phase_retrieval`: for each human frame, do its nearest robot frames share its task phase?
      (reported with the chance level, so different phase mixes stay comparable);
  (c) `tsne_figure`: the picture, colored by embodiment and by phase.
Everything here works on plain arrays; h2r/eval/embeddings.py draws the matched states from the
generated data and embeds them with a trained policy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from h2r.files import atomic_write


def _balanced(human: np.ndarray, robot: np.ndarray, rng: np.random.Generator):
    """Equal counts per class, so chance accuracy is exactly 0.5."""
    n = min(len(human), len(robot))
    human = human[rng.permutation(len(human))[:n]]
    robot = robot[rng.permutation(len(robot))[:n]]
    features = np.concatenate([human, robot]).astype(np.float64)
    labels = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    return features, labels


def probe_accuracy(human: np.ndarray, robot: np.ndarray, folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of a linear probe (standardized logistic regression) human vs robot."""
    human, robot = np.asarray(human), np.asarray(robot)
    if human.ndim != 2 or robot.ndim != 2 or human.shape[1] != robot.shape[1]:
        raise ValueError(f"probe_accuracy expects [N, D] embeddings of equal D, got {human.shape} and {robot.shape}")
    if min(len(human), len(robot)) < folds:
        raise ValueError(f"probe_accuracy needs at least {folds} embeddings per class, "
                         f"got {len(human)} human and {len(robot)} robot")
    features, labels = _balanced(human, robot, np.random.default_rng(seed))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(probe, features, labels, cv=splits, scoring="accuracy")
    return {"accuracy": float(np.mean(scores)), "accuracy_std": float(np.std(scores)),
            "folds": folds, "per_class": int(len(labels) // 2)}


def phase_retrieval(human: np.ndarray, human_labels: Sequence, robot: np.ndarray,
                    robot_labels: Sequence, k: int = 5) -> dict:
    """Fraction of each human frame's k nearest robot frames (cosine) that share its label.

    Labels are task phases, or (task, phase) pairs when several tasks are mixed. `chance` is what
    a representation with no shared phase structure scores: sum over labels of
    P_human(label) * P_robot(label); `above_chance` rescales so chance = 0 and perfect = 1.
    """
    human, robot = np.asarray(human, np.float64), np.asarray(robot, np.float64)
    human_labels, robot_labels = np.asarray(human_labels), np.asarray(robot_labels)
    if len(human) != len(human_labels) or len(robot) != len(robot_labels):
        raise ValueError("phase_retrieval: one label per embedding expected")
    k = min(k, len(robot))
    index = NearestNeighbors(n_neighbors=k, metric="cosine").fit(robot)
    _, neighbours = index.kneighbors(human)
    accuracy = float(np.mean(robot_labels[neighbours] == human_labels[:, None]))
    values, human_counts = np.unique(human_labels, return_counts=True)
    robot_freq = np.array([np.mean(robot_labels == v) for v in values])
    chance = float(np.sum(human_counts / len(human_labels) * robot_freq))
    above = (accuracy - chance) / (1.0 - chance) if chance < 1.0 else 0.0
    return {"accuracy": accuracy, "chance": chance, "above_chance": float(above), "k": k}


def tsne_figure(embeddings: np.ndarray, embodiment: Sequence[str], phase: Sequence, path: str,
                seed: int = 0, title: str = "") -> np.ndarray:
    """Writes a two-panel t-SNE PNG (colored by embodiment, by phase); returns the 2-D points."""
    import matplotlib  # noqa: PLC0415  (pictures only where asked for)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from sklearn.manifold import TSNE  # noqa: PLC0415

    embeddings = np.asarray(embeddings, np.float64)
    perplexity = float(min(30.0, max(2.0, (len(embeddings) - 1) / 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, labels, name in ((axes[0], np.asarray(embodiment), "embodiment"),
                             (axes[1], np.asarray(phase), "phase")):
        for i, value in enumerate(np.unique(labels)):
            mask = labels == value
            ax.scatter(points[mask, 0], points[mask, 1], s=8, alpha=0.7, color=plt.cm.tab10(i % 10),
                       label=str(value))
        ax.set_title(f"t-SNE colored by {name}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=2, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return points
