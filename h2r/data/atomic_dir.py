"""A directory that appears complete or not at all.

`staging(out, overwrite=...)` yields a fresh temporary directory next to `out` (same filesystem,
so the final rename is atomic). When the block finishes, the temporary directory becomes `out`;
when it raises, the temporary directory is deleted and `out` is left exactly as it was.
Replacing an existing `out` swaps the two directories in one `renameat2(RENAME_EXCHANGE)` call
where the kernel and filesystem allow it, else with two renames (the old one kept until the
new one is in place).

The whole block holds `out`'s lock (a hidden `.NAME.lock` beside it, h2r.files.output_lock): a
second writer into the same `out` is refused at once, naming the first. Temporary directories
left beside it by a killed writer (no lock held for their name any more) are removed first.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from h2r import files
from h2r.errors import DataError

_TEMP_MARKS = (".incomplete-", ".old-")

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@contextlib.contextmanager
def staging(out: str | os.PathLike, *, overwrite: bool,
            is_ours: Callable[[Path], bool]) -> Iterator[Path]:
    """Yields a temp dir that replaces `out` on success.

    `is_ours(out)` tells whether an existing, non-empty `out` holds what this tool writes; only
    such a directory may be replaced (with `overwrite`), so a typo in --out never deletes
    unrelated files.
    """
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with files.output_lock(str(out), f"data directory {out}"):
        _check_target(out, overwrite=overwrite, is_ours=is_ours)
        remove_stale(out)
        with _staged(out) as tmp:
            yield tmp


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


@contextlib.contextmanager
def _staged(out: Path) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.incomplete-", dir=out.parent))
    # mkdtemp makes the folder 0700 and the rename keeps it: give it the mode a plain mkdir would
    # (data on a shared cluster must stay readable by the other users' jobs).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _move_into_place(tmp, out)


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


def _move_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    if not any(out.iterdir()):
        out.rmdir()
        os.rename(tmp, out)
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp)  # now holds the previous contents
        return
    # No atomic exchange here: keep the old data under a side name until the new one is in place.
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, old / out.name)
    os.rename(tmp, out)
    shutil.rmtree(old)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swaps two paths (Linux renameat2); False where that is unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0
