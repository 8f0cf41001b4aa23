"""One writer at a time: commands that write the tree take an exclusive lock on the repository.

The lock file lives in `.git/` when the repository has one (never committed), else in the
system's temporary folder, named after the repository's path. A second writer waits up to
`MESHCANARY_LOCK_TIMEOUT` seconds (default 60), then stops with a clear error; readers
(`check`, `render --check`, `lint`) never lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from meshcanary.errors import MeshcanaryError


def lock_path(root: Path) -> Path:
    git = root / ".git"
    if git.is_dir():
        return git / "meshcanary.lock"
    name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"meshcanary-{name}.lock"


_held: dict[Path, int] = {}


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Hold the repository's lock; re-entrant within one process (an edit renders under it)."""
    path = lock_path(root)
    if _held.get(path):
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    timeout = float(os.environ.get("MESHCANARY_LOCK_TIMEOUT", "60"))
    deadline = time.monotonic() + timeout
    with open(path, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MeshcanaryError(
                        f"another meshcanary command is writing in {root} (lock {path}); "
                        f"waited {timeout:g} s. Run again when it has finished."
                    ) from None
                time.sleep(0.1)
        _held[path] = 1
        try:
            yield
        finally:
            _held.pop(path, None)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
