"""`h2r data generate`: scripted experts in the world -> one RLDS dataset per embodiment.

    h2r data generate --config experiments/data/tiny.py --out data/tiny [--overwrite]

Writes `OUT/h2r_<embodiment>/1.0.0/` (tfds, array_record, splits train/val) and
`OUT/generation.json` (the config, episode counts per embodiment/setting/split, wall time).
Everything is written into a temporary directory next to OUT and renamed into place at the end,
so a crash never leaves a dataset that looks complete, and --overwrite swaps the old data out
in one rename.
"""
from __future__ import annotations

import collections
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from h2r.data import plan as plan_lib
from h2r.errors import DataError

GENERATION_FILE = "generation.json"


def looks_like_h2r_data(directory: Path) -> bool:
    return (directory / GENERATION_FILE).exists() or any(directory.glob("h2r_*"))


def generate(config, out, *, overwrite: bool = False,
             on_episode: Callable[[plan_lib.PlannedEpisode], None] | None = None) -> dict:
    """Generates every planned episode into `out`; returns the summary saved as generation.json.

    `on_episode` is called after each episode is produced (progress; tests use it to interrupt).
    """
    import tensorflow_datasets as tfds  # noqa: PLC0415

    from h2r.data import atomic_dir, rlds_writer  # noqa: PLC0415

    tfds.disable_progress_bar()  # our own progress line has the ETA
    start = time.time()
    episodes = plan_lib.plan_episodes(config)
    if not episodes:
        raise DataError(f"config selects no episodes (embodiments={config.embodiments!r}, "
                        f"num_scenes={config.num_scenes}, num_task_families={config.num_task_families})")
    progress = Progress(len(episodes))
    by_embodiment = collections.defaultdict(list)
    for e in episodes:
        by_embodiment[e.embodiment].append(e)

    with atomic_dir.staging(out, overwrite=overwrite, is_ours=looks_like_h2r_data) as tmp:
        success = {}
        for embodiment, planned in by_embodiment.items():
            spec, source = _world_source(config, embodiment)
            outcomes = []

            def episodes_of(split, planned=planned, source=source, outcomes=outcomes):
                for item, episode in source([e for e in planned if e.split == split]):
                    outcomes.append(bool(episode.metadata["expert_success"]))
                    progress.update(item)
                    if on_episode is not None:
                        on_episode(item)
                    yield item.key, episode

            splits = sorted({e.split for e in planned})
            rlds_writer.write_dataset(str(tmp), spec, {s: (lambda s=s: episodes_of(s)) for s in splits})
            success[embodiment] = sum(outcomes) / len(outcomes)
        shutil.rmtree(tmp / ".downloads", ignore_errors=True)
        wall = time.time() - start
        summary = {
            "config": config.to_dict(),
            "episodes": len(episodes),
            "counts": plan_lib.counts(episodes),
            "expert_success_rate": success,
            "wall_time_s": round(wall, 3),
            "episodes_per_s": round(len(episodes) / wall, 3),
            "format": {"version": rlds_writer.VERSION, "file_format": "array_record",
                       "datasets": [rlds_writer.dataset_name(e) for e in by_embodiment]},
        }
        (tmp / GENERATION_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    progress.done()
    return summary


def _world_source(config, embodiment: str):
    """(DatasetSpec, function from planned episodes to (planned, Episode) pairs) for one embodiment."""
    from h2r.data import world_rollout  # noqa: PLC0415  (imports jax and the world)

    return world_rollout.spec_and_source(config, embodiment)


class Progress:
    """One line every few seconds: done/total, rate and ETA (to stderr, so stdout stays clean)."""

    def __init__(self, total: int, every_s: float = 2.0, stream=None):
        # sys.stderr when called, not at import (a captured/replaced stderr may be closed since).
        self.total, self.every_s, self.stream = total, every_s, stream or sys.stderr
        self.done_count, self.start, self.last = 0, time.time(), 0.0

    def update(self, item: plan_lib.PlannedEpisode) -> None:
        self.done_count += 1
        now = time.time()
        if now - self.last >= self.every_s or self.done_count == self.total:
            self.last = now
            elapsed = now - self.start
            rate = self.done_count / max(elapsed, 1e-9)
            eta = (self.total - self.done_count) / rate if rate > 0 else float("inf")
            print(f"generate: {self.done_count}/{self.total} episodes "
                  f"({100 * self.done_count / self.total:.0f}%) | h2r_{item.embodiment} {item.split} | "
                  f"{rate:.1f} episodes/s | elapsed {elapsed:.0f}s | ETA {eta:.0f}s",
                  file=self.stream, flush=True)

    def done(self) -> None:
        print(f"generate: done, {self.done_count} episodes in {time.time() - self.start:.1f}s",
              file=self.stream, flush=True)

