"""Put a folder's new content in place in one step, and finish or undo a swap a kill cut short.

What is swapped is an environment's folder, deploy/overlays/<env>/ (a whole render), or
service folders, deploy/overlays/<env>/<service>/ (an edit, or a render that changes only some
services: all are staged before the first is swapped in). The new content is
written into a staging folder beside the environment's folder, then swapped with the old one in
one step (Linux's `renameat2` exchange; two renames elsewhere). If the process dies on the way,
`recover` at the next start restores a whole folder: the old one when the new one was not in
place yet, else the new one. A file system that refuses a write stops the swap with the old
folder in place.

The staging folder is the writer's own: a new name each time (`.<env>.<token>.new`, or
`.<env>.<service>.<token>.new`), made with mkdir (never emptied or reused), held open and
locked (flock) until the swap is done. The swap checks that the folder at that name is still
the one it made (device and inode of the open folder) and the exchange that it swapped that one
in, so a folder another process put there is never swapped in or deleted. `recover` touches
only folders named like staging folders whose lock no living process holds, and stops at one
that a living process holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import cast

from meshcanary.errors import MeshcanaryError
from meshcanary.layout import OVERLAYS

# Staging folders beside the environments' folders, in deploy/overlays: `.<env>.<token>.new`
# holds a render's new tree, `.<env>.<token>.old` the old one between the two renames of a swap
# without renameat2; `.<env>.<service>.<token>.new` and `.old` the same for one service's folder.
# Never inside the environment's folder: a killed swap's leftover would be part of its tree.
# Versions before the token named them `.<env>.new` and `.<env>.old`. Names of environments
# and services are DNS labels, without dots.
_STAGING = re.compile(
    r"\.(?P<env>[^.]+)(?:\.(?P<service>[^.]+)\.[0-9a-f]{16}|(?:\.[0-9a-f]{16})?)"
    r"\.(?P<kind>new|old)"
)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _staging(root: Path, folder: str, token: str, kind: str) -> Path:
    """The staging folder for `folder`, deploy/overlays/<env> or deploy/overlays/<env>/<service>."""
    names = PurePosixPath(folder).relative_to(OVERLAYS).parts
    return root / OVERLAYS / f".{'.'.join(names)}.{token}.{kind}"


@dataclass
class _Claim:
    """A folder this render made or moved aside, known by identity, held open and locked.

    The lock (flock on the open folder) tells `recover` in another process that the folder is
    in use; the open descriptor keeps its inode from being reused, so (device, inode) tells
    whether the folder at a path is still this one.
    """

    device: int
    inode: int
    fd: int | None  # None for a symbolic link: known by identity, not held

    @classmethod
    def take(cls, path: Path) -> _Claim | None:
        """Claim what is at `path`; None when nothing is there.

        BlockingIOError: a living process holds the folder's lock.
        """
        try:
            status = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(status.st_mode):
            return cls(status.st_dev, status.st_ino, None)
        return cls.hold(os.open(path, _FOLDER))

    @classmethod
    def hold(cls, fd: int) -> _Claim:
        """Claim the open folder `fd`, which the claim closes when released."""
        opened = os.fstat(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise
        except OSError:
            pass  # a file system without flock (some NFS mounts): known by identity alone
        return cls(opened.st_dev, opened.st_ino, fd)

    def at(self, path: Path) -> bool:
        """Whether what is at `path` is this folder (or link)."""
        try:
            status = os.lstat(path)
        except OSError:
            return False
        return (status.st_dev, status.st_ino) == (self.device, self.inode)

    def discard(self, path: Path) -> None:
        """Remove `path` if it is this folder (or link), and let it go."""
        if self.at(path):
            if self.fd is None:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # the link, never what it points to
            else:
                shutil.rmtree(path, ignore_errors=True)
        self.release()

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _busy(shown: str, env: str) -> MeshcanaryError:
    return MeshcanaryError(
        f"{shown}: another process is rendering {env} right now, without this repository's "
        "lock\n  hint: nothing was written; run again when it has finished (another meshcanary "
        "with another TMPDIR, or an older version?)"
    )


def _foreign(shown: str, folder: str) -> MeshcanaryError:
    return MeshcanaryError(
        f"{shown}: another process replaced this render's staging folder; nothing was swapped "
        f"in\n  hint: {folder} is as it was; is another meshcanary writing here without this "
        "repository's lock (another TMPDIR, an older version)? Run again when it has finished"
    )


def recover(root: Path, overlays: str) -> None:
    """Finish or undo a swap that a killed render or edit left half done.

    Only real folders (not links) named like staging folders are touched, and only once no
    living process holds them: a new tree never swapped in, or an old one swapped out, is
    removed; an old tree whose environment's (or service's) folder is missing is put back. A
    folder a living process holds is a render at work that does not share this one's lock: it
    stops this one.
    """
    parent = root / overlays
    if not parent.is_dir():
        return
    for entry in sorted(parent.iterdir()):
        match = _STAGING.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        shown = f"{overlays}/{entry.name}"
        folder = "/".join(filter(None, (match["env"], match["service"])))
        try:
            claim = _Claim.take(entry)
        except BlockingIOError:
            raise _busy(shown, f"{overlays}/{folder}") from None
        except OSError:
            continue  # gone since the listing, or not a folder after all
        if claim is None:
            continue
        target = parent / folder
        if (
            match["kind"] == "old"
            and not os.path.lexists(target)
            and target.parent.is_dir()
            and claim.at(entry)
        ):
            os.replace(entry, target)
            claim.release()
        else:
            claim.discard(entry)


# In the name of the file `write_atomically` writes beside its target and then renames. A
# process killed in between leaves it behind; `discard_temporary` finds it by this.
TEMPORARY = ".meshcanary-tmp-"


def write_atomically(root: Path, path: Path, text: str) -> None:
    """Replace the file at `path` with `text` in one rename: a kill leaves the old or the new.

    A file system that refuses (full, read-only, an immutable file) is a MeshcanaryError, and
    the file stays as it was.
    """
    temporary: Path | None = None
    try:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMPORARY}")
        temporary = Path(name)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file 0600; the file it replaces keeps its own mode (0644 as a rule).
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        # Without the temporary file's name: it is gone, and the release file is what matters.
        raise _unwritable(root, shown, OSError(exc.errno, exc.strerror)) from None
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise


def discard_temporary(folder: Path) -> None:
    """Remove what a killed `write_atomically` left in `folder` and the folders in it.

    Only a writer holding the repository's lock calls this, so no other process is still
    writing one of these files.
    """
    if not folder.is_dir():
        return
    for leftover in folder.glob(f"*/.*{TEMPORARY}*"):
        with contextlib.suppress(OSError):
            leftover.unlink()


@dataclass(frozen=True)
class Replacement:
    """The new content of a folder, deploy/overlays/<env> or deploy/overlays/<env>/<service>."""

    folder: str  # repository-relative
    files: dict[str, str]  # relative to the folder; none (and nothing kept) to remove it
    kept: Collection[str]  # files of the old folder carried over as they are
    # The files of `files` that differ from the old folder's: the others are the old one's,
    # copied (their bytes and time stamp as they are).
    changed: Collection[str]


def replace(
    root: Path, folder: str, files: dict[str, str], kept: Collection[str], changed: Collection[str]
) -> None:
    """Put a folder holding `files` (and the `kept` files of the old one) in place of `folder`.

    `folder` is repository-relative; the paths of `files` and `kept` are relative to it. A
    file of `files` not in `changed` is the old one's, copied (its bytes and time stamp as they
    are). Without files to hold, the folder is removed.
    """
    replace_all(root, [Replacement(folder, files, kept, changed)])


def replace_all(root: Path, replacements: Sequence[Replacement]) -> None:
    """Put several folders' new content in place: all of them staged first, then each swapped.

    A file system that refuses a write while they are staged (a full disk) leaves every folder
    as it was. Each swap is one step; a kill between two leaves each folder whole, old or new,
    and one that fails (an immutable folder) leaves the folders swapped before it new.
    """
    swaps = [_Swap(root, replacement) for replacement in replacements]
    placed: list[_Swap] = []
    try:
        for one in swaps:
            one.stage()
        # One syncfs makes every staged file durable: they are all on the file system of
        # deploy/overlays, and each syncfs costs about as much as the first.
        staged = [one for one in swaps if one.staged is not None]
        if staged:
            staged[0].sync()
        for one in swaps:
            one.put_in_place()
            placed.append(one)
    finally:
        parents = (folder for one in placed for folder in (one.target.parent, one.new.parent))
        for parent in dict.fromkeys(parents):
            _fsync_dir(parent)
        for one in swaps:
            if one in placed:
                one.finish()
            else:
                one.abandon()


class _Swap:
    """One folder's swap: its new tree staged beside it, put in place, the old tree dropped.

    The staging folder is this swap's own (a new name, made with mkdir, held open and
    locked); what is swapped in is checked to be that folder, by device and inode.
    """

    def __init__(self, root: Path, replacement: Replacement) -> None:
        self.root = root
        self.replacement = replacement
        self.folder = replacement.folder
        self.target = root / self.folder
        token = secrets.token_hex(8)
        self.new = _staging(root, self.folder, token, "new")
        self.old = _staging(root, self.folder, token, "old")
        self.shown = self.new.relative_to(root).as_posix()
        self.staged: _Claim | None = None
        self.previous: _Claim | None = None
        self.swapped = False  # in one exchange (else two renames, through `old`)

    def stage(self) -> None:
        """Write the new tree into a staging folder (durable once `sync` ran)."""
        replacement = self.replacement
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            if replacement.files or replacement.kept:
                self.new.mkdir()  # never one that is there already: a staging folder is not reused
                fd = os.open(self.new, _FOLDER)
                self.staged = _Claim.hold(fd)
                changed = set(replacement.changed)
                _stage(replacement.files, replacement.kept, changed, self.target, self.new, fd)
        except OSError as exc:
            raise self._failed(exc) from None

    def sync(self) -> None:
        """Make what was written into the staging folders durable before any is swapped in."""
        if self.staged is None or self.staged.fd is None:
            return
        try:
            _sync_all(self.staged.fd)
        except OSError as exc:
            raise self._failed(OSError(exc.errno, exc.strerror, str(self.new))) from None

    def put_in_place(self) -> None:
        """Swap the staged tree in place of the folder (or remove the folder without one)."""
        staged, target, new, old = self.staged, self.target, self.new, self.old
        try:
            try:
                self.previous = _Claim.take(target)
            except BlockingIOError:
                raise _busy(self.folder, self.folder) from None
            if staged is not None and not staged.at(new):
                raise _foreign(self.shown, self.folder)
            if staged is not None and self.previous is not None:
                self.swapped = _exchange(new, target)
                if self.swapped and not staged.at(target):
                    # Replaced between the check and the exchange: put the old tree back.
                    _exchange(new, target)
                    self.swapped = False
                    raise _foreign(self.shown, self.folder)
            if not self.swapped:
                if self.previous is not None:
                    os.replace(target, old)
                if staged is not None:
                    os.replace(new, target)
        except OSError as exc:
            # A full or read-only file system: put the old tree back if it was moved, drop the
            # staging folder, and say so in one line instead of a traceback.
            previous = self.previous
            if previous is not None and previous.at(old) and not os.path.lexists(target):
                with contextlib.suppress(OSError):  # else recover() puts it back next time
                    os.replace(old, target)
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> MeshcanaryError:
        """Drop the staging folder, unless another process put its own at that name."""
        if self.staged is not None and not self.staged.at(self.new):
            return _foreign(self.shown, self.folder)
        if self.staged is not None:
            self.staged.discard(self.new)
        return _unwritable(self.root, self.folder, exc)

    def finish(self) -> None:
        """Drop the old tree, which the new one replaced, and let both go."""
        # After an exchange the staging folder holds the old tree; after two renames, `old`.
        if self.previous is not None:
            self.previous.discard(self.new if self.swapped else self.old)
        self.abandon()

    def abandon(self) -> None:
        """Drop a staged tree that was not swapped in, and let what this swap holds go."""
        if self.staged is not None and self.staged.at(self.new):
            self.staged.discard(self.new)
        for claim in (self.staged, self.previous):
            if claim is not None:
                claim.release()


def _stage(
    files: dict[str, str],
    kept: Collection[str],
    changed: set[str],
    target: Path,
    new: Path,
    staging: int,
) -> None:
    """Write the whole new tree into the new, empty staging folder `new`, open at `staging`.

    Through the open folder rather than its path: were another process to put a folder of its
    own at that path, this writer's files would still go to its own folder (or fail), never
    into theirs. A file that did not change keeps its bytes and time stamp (a CRLF checkout's
    line ends: git then sees only what changed), as files a person added do.
    """
    folders = _Folders(staging)
    path = ""
    try:
        for path, text in files.items():
            parent, name = folders.open(path)
            if (
                path not in changed
                and (target / path).is_file()
                and not (target / path).is_symlink()
            ):
                _copy(target / path, name, parent)
                continue
            fd = os.open(name, _CREATE, 0o666, dir_fd=parent)
            with open(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                _fsync_file(handle.fileno())
        for path in kept:
            parent, name = folders.open(path)
            _copy(target / path, name, parent)
    except OSError as exc:
        if exc.filename is not None and os.path.isabs(os.fsdecode(exc.filename)):
            raise
        # Name the file by its path, not by its name in the open folder (or by none at all).
        raise OSError(exc.errno, exc.strerror, str(new / path)) from None
    finally:
        folders.close()


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int,)
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


def _fsync_file(fd: int) -> None:
    # With syncfs, one call once every file is written makes them all durable: a render of
    # thousands of files spent most of its time in one fsync per file.
    if _syncfs() is None:
        os.fsync(fd)


def _sync_all(staging: int) -> None:
    """Make what was written into the staging folder durable before it is swapped in."""
    syncfs = _syncfs()
    if syncfs is not None and syncfs(staging) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _copy(source: Path, name: str, parent: int) -> None:
    """Copy the file or link `source` to `name` in the open folder `parent`, as it is."""
    if source.is_symlink():
        os.symlink(os.readlink(source), name, dir_fd=parent)
        return
    status = source.stat()
    with (
        open(source, "rb") as reader,
        open(os.open(name, _CREATE, 0o666, dir_fd=parent), "wb") as handle,
    ):
        shutil.copyfileobj(reader, handle)
        os.fchmod(handle.fileno(), stat.S_IMODE(status.st_mode))
        handle.flush()  # before the time stamp: a later write would change it
        os.utime(handle.fileno(), ns=(status.st_atime_ns, status.st_mtime_ns))
        _fsync_file(handle.fileno())


class _Folders:
    """Folders inside a staging folder, made and opened relative to it, a few kept open."""

    def __init__(self, top: int) -> None:
        self.top = top
        self.opened: dict[str, int] = {}

    def open(self, path: str) -> tuple[int, str]:
        """The descriptor of the folder `path` is in (made if need be), and its name there."""
        folder, _, name = path.rpartition("/")
        if not folder:
            return self.top, name
        if folder not in self.opened:
            if len(self.opened) >= 64:  # an environment of thousands of services: few at once
                self.close()
            parent, last = self.open(folder)
            with contextlib.suppress(FileExistsError):
                os.mkdir(last, 0o777, dir_fd=parent)
            self.opened[folder] = os.open(last, _FOLDER, dir_fd=parent)
        return self.opened[folder], name

    def close(self) -> None:
        for fd in self.opened.values():
            os.close(fd)
        self.opened.clear()


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library older than glibc 2.28, or musl
        return None
    function.argtypes = (
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    )
    function.restype = ctypes.c_int
    return cast(Callable[..., int], function)


def _exchange(new: Path, target: Path) -> bool:
    """Swap two folders in one step (Linux `renameat2(RENAME_EXCHANGE)`); False where unsupported.

    Two renames leave a moment with no `target` at all: a render killed there leaves the
    environment's folder missing until the next render, and anything reading it then (a
    `git add -A`, a `kubectl apply -k`) sees the environment deleted.
    """
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if (
        renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(target), _RENAME_EXCHANGE)
        == 0
    ):
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # old kernel, or the file system
        return False
    raise OSError(code, os.strerror(code), str(new), None, str(target))


def _unwritable(root: Path, shown: str, exc: OSError) -> MeshcanaryError:
    where = ""
    if exc.filename and os.fsdecode(exc.filename) != str(root / shown):
        path = Path(os.fsdecode(exc.filename))
        where = f" ({path.relative_to(root).as_posix() if path.is_relative_to(root) else path})"
    if exc.errno == errno.ENOSPC:
        fix = "free some space"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "make it writable (a read-only mount, or `chattr +i`?)"
    else:
        fix = "fix the file system"
    return MeshcanaryError(
        f"cannot write {shown}: {exc.strerror or exc}{where}\n"
        f"  hint: {shown} is as it was; {fix}, then run again"
    )


def _fsync_dir(path: Path) -> None:
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
