"""Writing files so that readers only ever see the old or the new version, never half of one.

This module is h2r's one home of atomic writing. Every JSON, PNG and text file h2r writes goes
through `atomic_write`: a temp file next to the target (same filesystem, so the rename is
atomic), flushed to disk, then renamed over it. `atomic_path` is the same for writers that need
a file name rather than a handle (numpy memory maps). `atomic_dir` does it for a whole
directory (datasets, the study report): built under a hidden temp name beside it, then swapped
in. The temp names carry the host and pid (files) or a unique suffix (directories), so
processes sharing a filesystem never collide. A full disk is one line naming the path and the
free space (`DiskFullError`), never a half-written file. `lock` makes a directory or output one
writer's at a time.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from typing import Any, Iterator

from h2r.errors import DataError, H2RError


class DiskFullError(H2RError):
    """No space (or quota) left while writing: the message names the path and the free space."""


class LockedError(H2RError):
    """Another process holds the lock: the message names it (host, pid, since when)."""


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(path: str, why: str) -> DiskFullError:
    """The one-line error for a write to `path` that ran out of space."""
    where = os.path.dirname(os.path.abspath(path)) or "."
    try:
        free = f"{shutil.disk_usage(where).free / 2 ** 20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(f"no space left writing {path} ({free} on its filesystem; {why}); "
                         "nothing was half-written: free space and rerun")


def no_space(error: BaseException) -> str | None:
    """Why, when `error` or its cause/context chain is an out-of-space failure (an OSError, or
    a library's error that carries the OS message, e.g. tensorstore's in orbax); else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _NO_SPACE:
            return error.strerror
        for errno_value in _NO_SPACE:
            if os.strerror(errno_value) in str(error):
                return os.strerror(errno_value)
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """`with atomic_path(path) as tmp:` write the file `tmp` (by name); it becomes `path` when the
    block ends, and is removed if the block raises. Flushing to disk is the writer's business."""
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    # Keep the extension last: matplotlib, PIL and numpy pick the format from it.
    tmp = f"{root}.tmp-{socket.gethostname()}-{os.getpid()}{ext}"
    with disk_full_as_error(path):
        try:
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w") -> Iterator[Any]:
    """`with atomic_write(path) as f: f.write(...)`: the file appears complete, or not at all."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike) -> Iterator[str]:
    """`with atomic_dir(out) as tmp:` fill the directory `tmp`; when the block ends it replaces
    `out` (see `replace_dir`), and if the block raises it is deleted and `out` is untouched.
    `tmp` is `.NAME.incomplete-XXXX` beside `out` (same filesystem: the rename is atomic)."""
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.incomplete-", dir=os.path.dirname(out))
    # mkdtemp makes the folder 0700 and the rename keeps it: give it the mode a plain mkdir would
    # (data on a shared cluster must stay readable by the other users' jobs).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        with disk_full_as_error(out):
            yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out)


def replace_dir(new: str | os.PathLike, out: str | os.PathLike) -> None:
    """Moves the directory `new` to `out`; a reader of `out` sees the old contents or the new,
    never a mix. An existing `out` is swapped in one renameat2(RENAME_EXCHANGE) where the kernel
    and filesystem allow it, else with two renames (the old one kept under `.NAME.old-XXXX`
    until the new one is in place), and then deleted."""
    new, out = os.fspath(new), os.path.abspath(out)
    if os.path.isdir(out) and not os.listdir(out):
        os.rmdir(out)
    if not os.path.exists(out):
        os.rename(new, out)
        return
    if _exchange(new, out):
        shutil.rmtree(new)  # now holds the previous contents
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-", dir=os.path.dirname(out))
    os.rename(out, os.path.join(old, os.path.basename(out)))
    os.rename(new, out)
    shutil.rmtree(old)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps two paths (Linux renameat2); False where that is unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


@contextlib.contextmanager
def disk_full_as_error(path: str) -> Iterator[None]:
    """An out-of-space failure anywhere in the block (also inside a library, e.g. orbax's
    background writes) becomes one DiskFullError naming `path` and the free space."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as e:
        full = no_space(e)
        if full is None:
            raise
        raise disk_full_error(path, full) from e


def write_json(path: str, obj: Any, indent: int = 2, **kwargs) -> None:
    """JSON (sorted keys unless told otherwise), written atomically."""
    kwargs.setdefault("sort_keys", True)
    with atomic_write(path) as f:
        json.dump(obj, f, indent=indent, **kwargs)


def read_json(path: str, what: str, hint: str) -> Any:
    """Parsed JSON, or a DataError naming `what` and the file, with `hint` on how to make it."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{what} {path} not found; {hint}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{what} {path} is not valid JSON ({e}); {hint}") from e


def check_writable(path: str) -> None:
    """Creates `path`'s directory and writes (then removes) a probe file there: a command that
    ends by writing `path` finds out before its work, not after (a full disk: DiskFullError)."""
    directory = os.path.dirname(os.path.abspath(path))
    probe = os.path.join(directory, f".probe-{os.path.basename(path)}")
    try:
        os.makedirs(directory, exist_ok=True)
        with atomic_write(probe) as f:
            f.write("probe")
        os.remove(probe)
    except OSError as e:
        raise H2RError(f"cannot write {path}: {e.strerror} ({directory})") from None


@contextlib.contextmanager
def lock(path: str, what: str) -> Iterator[None]:
    """Holds an exclusive lock on the file `path` for the block, or raises LockedError at once
    naming the holder. The kernel drops the lock when its holder dies (flock), so a killed
    process never blocks the next one; the file's text (host, pid) only names the holder, and
    the file is removed when the block ends."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    while True:
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise LockedError(f"{what} is in use by {holder} (lock {path}); wait for it to finish, "
                              "or stop it first") from None
        try:  # the holder before us may have removed the file after we opened it: lock the new one
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        f.close()
    try:
        f.seek(0)
        f.truncate()
        f.write(f"host {socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # while still holding it: whoever opens it next makes a new one
        f.close()


def output_lock(out: str, what: str):
    """`lock` for an output file or directory `out`: a hidden `.NAME.lock` beside it."""
    out = os.path.abspath(out)
    return lock(os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.lock"), what)


def is_locked(path: str) -> bool:
    """True while some process holds `lock(path)`."""
    try:
        f = open(path)
    except FileNotFoundError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
