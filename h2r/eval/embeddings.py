"""`h2r eval embeddings`: human vs robot embeddings of matched states, and their overlap.

Frames come from the run's generated data: the held-out setting's `target-human` episodes (the
human) and its `heldout-eval` episodes (the target robot) cover the same (scene, task) combos.
States are matched on (scene, task family, phase): for every such key present for both, the same
number of frames is drawn from each, so the probe cannot tell them apart by *what* is shown,
only by *who* does it. Embeddings are the policy's pooled prefix (`Policy.embed`).
"""
from __future__ import annotations

import collections
import dataclasses
import os
import time

import numpy as np

from h2r import files
from h2r.data import sources
from h2r.errors import DataError

HUMAN_ROLE, ROBOT_ROLE = "target-human", "heldout-eval"


@dataclasses.dataclass
class Frames:
    """Raw observations of N frames of one embodiment, plus what they show."""
    embodiment: str
    image: np.ndarray        # uint8 [N, H, W, 3]
    wrist_image: np.ndarray  # uint8 [N, H, W, 3]
    state: np.ndarray        # float32 [N, S] raw units (S = 0 for the human)
    instruction: list[str]
    scene: list[str]
    task_family: list[str]
    phase: np.ndarray        # int32 [N]


def _candidates(dataset: sources.RLDSDataset, role: str, target: str) -> dict[tuple, list[tuple[int, int]]]:
    """(scene, task_family, phase) -> [(episode, t)] over the episodes of `role` for `target`."""
    meta = dataset.index.metadata
    by_key = collections.defaultdict(list)
    for episode in np.flatnonzero((meta["setting"] == role) & (meta["target"] == target)):
        steps = dataset.read_episode(int(episode))["steps"]
        for t in range(len(steps)):
            key = (str(meta["scene"][episode]), str(meta["task_family"][episode]), int(steps[t]["phase"]))
            by_key[key].append((int(episode), t))
    return by_key


def _open_role(data_dir: str, embodiment: str, role: str, target: str):
    """Every split of h2r_<embodiment> with its candidate frames of `role`."""
    available = sources.list_datasets(data_dir)
    name = f"h2r_{embodiment}"
    if name not in available:
        raise DataError(f"no dataset {name!r} under {data_dir!r} (found {sorted(available)})")
    opened = []
    for split in ("train", "val"):
        try:
            dataset = sources.RLDSDataset(available[name], split)
        except DataError as e:
            if "has no split" in str(e):
                continue
            raise
        opened.append((dataset, _candidates(dataset, role, target)))
    return opened


def _merged(opened) -> dict[tuple, list]:
    merged = collections.defaultdict(list)
    for dataset, by_key in opened:
        for key, frames in by_key.items():
            merged[key] += [(dataset, e, t) for e, t in frames]
    return merged


def _load(embodiment: str, picks: list[tuple]) -> Frames:
    images, wrists, states, instructions = [], [], [], []
    for dataset, episode, t in picks:
        image, wrist = dataset.images(episode, t)
        images.append(image)
        wrists.append(wrist if wrist is not None else np.zeros_like(image))
        step = int(dataset.index.episode_start[episode]) + t
        states.append(dataset.index.state[step])
        instructions.append(str(dataset.index.texts[dataset.index.instruction[step]]))
    return Frames(embodiment=embodiment, image=np.stack(images), wrist_image=np.stack(wrists),
                  state=np.stack(states).astype(np.float32), instruction=instructions,
                  scene=[], task_family=[], phase=np.zeros(0, np.int32))


def matched_frames(data_dir: str, target: str, robot: str, human: str, *, per_state: int = 4,
                   max_frames: int = 1024, seed: int = 0) -> tuple[Frames, Frames]:
    """Equal numbers of human and robot frames for every shared (scene, task, phase) state."""
    rng = np.random.default_rng(seed)
    human_keys = _merged(_open_role(data_dir, human, HUMAN_ROLE, target))
    robot_keys = _merged(_open_role(data_dir, robot, ROBOT_ROLE, target))
    shared = sorted(set(human_keys) & set(robot_keys))
    if not shared:
        raise DataError(f"no (scene, task, phase) state of setting {target!r} is covered by both "
                        f"{human!r} ({HUMAN_ROLE}) and {robot!r} ({ROBOT_ROLE}) episodes under {data_dir!r}")
    counts = {k: min(per_state, len(human_keys[k]), len(robot_keys[k])) for k in shared}
    while sum(counts.values()) > max_frames:  # trim the largest keys first: keeps every state
        largest = max(counts, key=counts.get)
        if counts[largest] == 1:
            shared = [k for k in shared if k != largest]
            del counts[largest]
        else:
            counts[largest] -= 1
    out = []
    for name, keys in ((human, human_keys), (robot, robot_keys)):
        picks, labels = [], []
        for key in sorted(counts):
            chosen = rng.choice(len(keys[key]), size=counts[key], replace=False)
            picks += [keys[key][i] for i in sorted(chosen)]
            labels += [key] * counts[key]
        frames = _load(name, picks)
        frames.scene = [k[0] for k in labels]
        frames.task_family = [k[1] for k in labels]
        frames.phase = np.array([k[2] for k in labels], np.int32)
        out.append(frames)
    return out[0], out[1]


def phase_labels(frames: Frames) -> np.ndarray:
    """`task/phase`: phases of different tasks are different subtasks."""
    return np.array([f"{task}/{phase}" for task, phase in zip(frames.task_family, frames.phase)])


def overlap_report(human_emb: np.ndarray, robot_emb: np.ndarray, human: Frames, robot: Frames,
                   tsne_path: str | None, seed: int = 0, title: str = "") -> dict:
    """The numbers of embeddings.json (and the t-SNE picture when a path is given)."""
    from h2r.eval import representation  # noqa: PLC0415

    probe = representation.probe_accuracy(human_emb, robot_emb, folds=min(5, len(human_emb)), seed=seed)
    h_labels, r_labels = phase_labels(human), phase_labels(robot)
    report = {
        "probe_accuracy": probe,
        "phase_retrieval": representation.phase_retrieval(human_emb, h_labels, robot_emb, r_labels),
        "phase_retrieval_robot_to_human": representation.phase_retrieval(robot_emb, r_labels, human_emb, h_labels),
        "frames": {"human": int(len(human_emb)), "robot": int(len(robot_emb)),
                   "states": int(len(set(zip(human.scene, human.task_family, human.phase.tolist()))))},
    }
    if tsne_path:
        embodiment = [human.embodiment] * len(human_emb) + [robot.embodiment] * len(robot_emb)
        representation.tsne_figure(np.concatenate([human_emb, robot_emb]), embodiment,
                                   np.concatenate([h_labels, r_labels]), tsne_path, seed=seed, title=title)
    return report


def embed_frames(policy, frames: Frames, batch_size: int = 64) -> np.ndarray:
    """Pooled prefix embeddings [N, D] of raw frames, in fixed-size batches (one compilation)."""
    chunks = []
    n = len(frames.image)
    for start in range(0, n, batch_size):
        idx = np.arange(start, start + batch_size).clip(max=n - 1)  # pad the last batch by repetition
        obs = policy_observation(policy, frames, idx)
        chunks.append(np.asarray(policy.embed(obs))[: min(batch_size, n - start)])
    return np.concatenate(chunks).astype(np.float64)


def policy_observation(policy, frames: Frames, idx: np.ndarray) -> dict:
    """Raw observations in the form Policy.act/embed take (see h2r.policy)."""
    return {
        "image": frames.image[idx],
        "wrist_image": frames.wrist_image[idx],
        "state": frames.state[idx],
        "instruction": policy.tokenize([frames.instruction[i] for i in idx]),
    }


def evaluate_run(workdir: str, out: str, *, setting: str | None = None, step: int | None = None,
                 seed: int = 0, per_state: int = 4, max_frames: int = 1024) -> dict:
    """`h2r eval embeddings`: embeds matched human and robot frames of the run's data with the
    run's model; writes OUT/embeddings.json and OUT/tsne.png and returns the report."""
    import h2r  # noqa: PLC0415
    from h2r.config import config_from_json  # noqa: PLC0415
    from h2r.world import catalogue  # noqa: PLC0415

    config = config_from_json(os.path.join(workdir, "config.json"))
    target = setting or str(config.data.target)
    human = next(e.name for e in catalogue.EMBODIMENTS if e.is_human)
    start = time.time()
    human_frames, robot_frames = matched_frames(
        str(config.data.dir), target, catalogue.setting(target).target_embodiment, human,
        per_state=per_state, max_frames=max_frames, seed=seed)
    print(f"eval embeddings: {len(human_frames.image)} human + {len(robot_frames.image)} robot frames "
          f"of matched states ({time.time() - start:.1f}s)", flush=True)
    files.check_writable(os.path.join(out, "embeddings.json"))
    with files.output_lock(out, f"eval output {out}"):
        policy = h2r.load_policy(workdir, step=step)
        human_emb, robot_emb = embed_frames(policy, human_frames), embed_frames(policy, robot_frames)
        report = overlap_report(human_emb, robot_emb, human_frames, robot_frames,
                                os.path.join(out, "tsne.png"), seed=seed,
                                title=f"{os.path.basename(os.path.abspath(workdir))}: {target}")
        report.update(setting=target, step=int(policy.step), workdir=os.path.abspath(workdir))
        files.write_json(os.path.join(out, "embeddings.json"), report)
    return report
