"""Writing files so that readers only ever see the old or the new version, never half of one.

Every JSON, PNG and text file h2r writes goes through `atomic_write`: a temp file next to the
target (same filesystem, so the rename is atomic), flushed to disk, then renamed over it.
The temp name carries the host and pid, so processes sharing a filesystem never collide.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any, Iterator

from h2r.errors import DataError


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w") -> Iterator[Any]:
    """`with atomic_write(path) as f: f.write(...)`: the file appears complete, or not at all."""
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    # Keep the extension last: matplotlib and PIL pick the format from it.
    tmp = f"{root}.tmp-{socket.gethostname()}-{os.getpid()}{ext}"
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


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
