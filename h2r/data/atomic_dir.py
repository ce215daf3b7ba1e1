"""A directory that appears complete or not at all.

`staging(out, overwrite=...)` yields a fresh temporary directory next to `out` (h2r.files.atomic_dir,
which also swaps it in). When the block finishes, the temporary directory becomes `out`; when it
raises, the temporary directory is deleted and `out` is left exactly as it was. What this module
adds for datasets: the refusal to replace a directory that is not ours, and the lock.

The whole block holds `out`'s lock (a hidden `.NAME.lock` beside it, h2r.files.output_lock): a
second writer into the same `out` is refused at once, naming the first. Temporary directories
left beside it by a killed writer (no lock held for their name any more) are removed first.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

from h2r import files
from h2r.errors import DataError

_TEMP_MARKS = (".incomplete-", ".old-")  # the temp names h2r.files.atomic_dir / replace_dir use


@contextlib.contextmanager
def staging(out: str | os.PathLike, *, overwrite: bool,
            is_ours: Callable[[Path], bool]) -> Iterator[Path]:
    """Yields a temp dir that replaces `out` on success.

    `is_ours(out)` tells whether an existing, non-empty `out` holds what this tool writes; only
    such a directory may be replaced (with `overwrite`), so a typo in --out never deletes
    unrelated files.
    """
    out = Path(out).absolute()
    if out.is_symlink():   # write where the link points (the staged dir cannot replace a link)
        out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with files.output_lock(str(out), f"data directory {out}"):
        _check_target(out, overwrite=overwrite, is_ours=is_ours)
        remove_stale(out)
        with files.atomic_dir(out) as tmp:
            yield Path(tmp)


def remove_stale(out: Path) -> list[Path]:
    """Removes `.NAME.incomplete-*` / `.NAME.old-*` directories beside `out` whose writer is gone
    (those of `out` itself: its lock is ours; others: nobody holds `.NAME.lock`); returns them."""
    removed, parent = [], out.parent
    for path in parent.iterdir():
        mark = next((m for m in _TEMP_MARKS if m in path.name), None)
        if not path.name.startswith(".") or mark is None or not path.is_dir():
            continue
        name = path.name[1:path.name.index(mark)]
        if name == out.name or not files.is_locked(str(parent / f".{name}.lock")):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _check_target(out: Path, *, overwrite: bool, is_ours: Callable[[Path], bool]) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory")
    if not any(out.iterdir()):
        return
    if not is_ours(out):
        raise DataError(f"--out {out} is a non-empty directory that does not hold h2r datasets; "
                        "refusing to touch it (choose a new or empty directory)")
    if not overwrite:
        raise DataError(f"--out {out} already holds datasets; pass --overwrite to replace them")
