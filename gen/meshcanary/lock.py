"""The repository's lock: one writer at a time, and no reader beside a writer.

Commands that write the tree hold it exclusively (`exclusive`); commands that read the tree or
the release files hold it shared (`shared`), so they run together but never see a tree half
way through a render. A command waits up to `MESHCANARY_LOCK_TIMEOUT` seconds (default 60),
then stops with a clear error. Both are re-entrant within a process, and a shared request
inside a held exclusive lock is granted at once: an edit renders and checks under its lock.

The lock file lives in the git repository's common folder (what `git rev-parse
--git-common-dir` names), which every worktree of the repository shares; without git, in the
system's temporary folder, named after the repository's path. It is opened without following
a symbolic link and without truncating, and must be a regular file; in the temporary folder,
which other users can write, it must also be the user's own.

A git hook run by a writer's `git commit` (pre-commit running `meshcanary check`) is a reader
inside a writer that waits for it: the writer names its lock in `MESHCANARY_LOCK_HOLDER`, and
a reader that descends from the process named there reads without waiting.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meshcanary.errors import MeshcanaryError

LOCK_NAME = "meshcanary.lock"
HOLDER = "MESHCANARY_LOCK_HOLDER"


def git_common_dir(root: Path) -> Path | None:
    """The common folder of the git repository whose work tree holds `root`, if any.

    Read from the files git itself reads, rather than by running git: the answer must be the
    same for every process that asks, whatever its environment (`GIT_DIR` inside a hook), its
    git configuration (`safe.directory` refuses a repository another user owns) or whether git
    is installed. A work tree's `.git` is a folder, or, in a linked worktree or a submodule,
    a file `gitdir: <path>`; that folder's `commondir` file, when there is one, names the
    common folder relative to it. A `.git` that leads nowhere counts as no repository.
    """
    top = root.resolve()
    for folder in (top, *top.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            git_dir: Path | None = dot_git
        elif dot_git.is_file():
            git_dir = _linked(dot_git, _first_line(dot_git).removeprefix("gitdir: "))
        elif os.path.lexists(dot_git):
            return None  # a dangling link, a FIFO: git would stop here as well
        else:
            continue
        if git_dir is None:
            return None
        commondir = git_dir / "commondir"
        if commondir.is_file():
            return _linked(commondir, _first_line(commondir))
        return git_dir.resolve()
    return None


def _first_line(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return ""
    return head.decode("utf-8", errors="replace").partition("\n")[0].rstrip("\r")


def _linked(source: Path, value: str) -> Path | None:
    """The folder `value` names, relative to the folder `source` is in."""
    if not value or value.startswith("gitdir:"):
        return None
    # A `.git` file's path is relative to the folder it is in; `commondir`'s to the git
    # folder, which is the folder the `commondir` file is in as well.
    folder = (source.parent / value).resolve()
    return folder if folder.is_dir() else None


def lock_path(root: Path) -> Path:
    common = git_common_dir(root)
    if common is not None:
        return common / LOCK_NAME
    return _temporary_lock(root)


def _temporary_lock(root: Path) -> Path:
    name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"meshcanary-{name}.lock"


@dataclass(frozen=True)
class _Hold:
    mode: str  # "exclusive" or "shared"
    fd: int | None  # None: not locked here (an ancestor holds it, or it cannot exist)


_held: dict[Path, _Hold] = {}


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Hold the repository's lock alone: for commands that write the tree or release files."""
    with _hold(root, "exclusive"):
        yield


@contextmanager
def shared(root: Path) -> Iterator[None]:
    """Hold the repository's lock with other readers: no writer runs until it is released."""
    with _hold(root, "shared"):
        yield


@contextmanager
def _hold(root: Path, mode: str) -> Iterator[None]:
    path = lock_path(root)
    held = _held.get(path)
    if held is not None:
        if mode == "exclusive" and held.mode == "shared":
            # flock converts a shared lock by releasing it first: another writer could slip in.
            raise RuntimeError(f"{path}: an exclusive lock inside a shared one; take it first")
        yield  # the outermost hold lets it go
        return
    held = _acquire(root, path, mode)
    _held[path] = held
    _announce()
    try:
        yield
    finally:
        del _held[path]
        _announce()
        if held.fd is not None:
            os.close(held.fd)  # closing releases the lock


def _acquire(root: Path, path: Path, mode: str) -> _Hold:
    holder = _ancestor_holding(path)
    if holder is not None:
        if mode == "shared":
            # The writer that holds it waits for this process (its git hook): what it wrote is
            # complete, and waiting for it would wait for ourselves.
            return _Hold(mode, None)
        raise MeshcanaryError(
            f"cannot write in {root}: this meshcanary runs inside another one that is writing "
            f"there (process {holder}; from a git hook?), which waits for it to finish"
        )
    fd = _open(root, path, private=path == _temporary_lock(root), reader=mode == "shared")
    if fd is None:
        return _Hold(mode, None)
    try:
        _wait(root, path, fd, fcntl.LOCK_EX if mode == "exclusive" else fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return _Hold(mode, fd)


def _open(root: Path, path: Path, *, private: bool, reader: bool) -> int | None:
    """A descriptor of the lock file, created if need be; None for a reader that cannot create
    it in a read-only place (no writer can be holding a lock file that does not exist).

    O_NOFOLLOW: in the temporary folder another user could have put a link there, to a file
    of ours; O_NONBLOCK: opening a FIFO would otherwise wait for a writer to it forever.
    """
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o600 if private else 0o666)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _unusable(root, path, exc) from None
        # A lock file that is someone else's (a shared repository) locks as well read-only.
        try:
            fd = os.open(path, os.O_RDONLY | flags)
        except FileNotFoundError:
            if reader:
                return None
            raise _unusable(root, path, exc) from None
        except OSError as again:
            raise _unusable(root, path, again) from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            kind = "a folder" if stat.S_ISDIR(status.st_mode) else "not a regular file"
            raise _unusable(root, path, OSError(errno.EINVAL, f"it is {kind}"))
        if private and status.st_uid not in (os.geteuid(), 0):
            raise _unusable(
                root,
                path,
                OSError(errno.EPERM, f"it belongs to another user (uid {status.st_uid})"),
                "another user may have put it there to stop you or to make you write through "
                "it; set TMPDIR to a folder of your own (without git the lock lives there)",
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unusable(root: Path, path: Path, exc: OSError, hint: str = "") -> MeshcanaryError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        reason = "it is a symbolic link, which meshcanary does not follow there"
    elif exc.errno == errno.EISDIR:
        reason = "it is a folder"
    elif exc.errno == errno.ENXIO:
        reason = "it is not a regular file"
    if not hint:
        hint = (
            "make it a file you can read and write"
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
            else "remove it (meshcanary makes a new one)"
        )
    return MeshcanaryError(
        f"cannot use the lock file {path}: {reason}\n"
        f"  hint: nothing was read or written in {root}; {hint}"
    )


def _timeout() -> float:
    text = os.environ.get("MESHCANARY_LOCK_TIMEOUT", "60")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise MeshcanaryError(
            f'MESHCANARY_LOCK_TIMEOUT="{text}": expected seconds to wait, such as 60'
        )
    return value


def _wait(root: Path, path: Path, fd: int, operation: int) -> None:
    timeout = _timeout()
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:  # a file system without locks (some NFS mounts)
            raise _unusable(root, path, exc) from None
        if time.monotonic() >= deadline:
            doing = "writing in"
            if operation == fcntl.LOCK_EX and _readers_only(fd):
                doing = "reading"
            raise MeshcanaryError(
                f"another meshcanary command is {doing} {root} (lock {path}); "
                f"waited {timeout:g} s. Run again when it has finished."
            )
        time.sleep(0.1)


def _readers_only(fd: int) -> bool:
    """Whether the lock this writer waited for is held by readers: a shared lock is free."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def _announce() -> None:
    """Name the exclusive locks this process holds for the processes it starts (git hooks)."""
    mine = sorted(
        str(p) for p, held in _held.items() if held.mode == "exclusive" and held.fd is not None
    )
    if mine:
        os.environ[HOLDER] = json.dumps({"pid": os.getpid(), "locks": mine})
    else:
        os.environ.pop(HOLDER, None)


def _ancestor_holding(path: Path) -> int | None:
    """The process that started this one (at any remove) and holds `path` exclusively."""
    try:
        named = json.loads(os.environ.get(HOLDER, ""))
        pid = int(named["pid"])
        locks = [str(p) for p in named["locks"]]
    except (ValueError, TypeError, KeyError):
        return None
    if str(path) not in locks or pid == os.getpid():
        return None
    return pid if pid in _ancestors() else None


def _ancestors() -> list[int]:
    """This process's parent, its parent, and so on; the parent alone where /proc is missing."""
    found: list[int] = []
    pid = os.getppid()
    while pid > 1 and pid not in found:
        found.append(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                # pid (comm) state ppid ...: comm may hold spaces and parentheses.
                pid = int(handle.read().rpartition(b")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found
