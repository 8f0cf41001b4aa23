"""Put a rendered environment on disk: plan the changes, refuse to clobber, swap atomically.

Each deploy/overlays/<env>/ holds a hash file (.meshcanary.json) with the hash of every file
meshcanary wrote there. It tells a file we wrote (safe to replace or remove) from one a person
edited since (reported, kept unless --force) or added (kept).

A render writes the whole new folder beside the old one and swaps them in one step (Linux's
`renameat2` exchange; two renames elsewhere). If the process dies on the way, `recover` at the
next start restores a whole tree: the old one when the new one was not in place yet, else the
new one. A file system that refuses a write stops the render with the old tree in place.

The staging folder is the render's own: a new name each time (`.<env>.<token>.new`), made
with mkdir (never emptied or reused), held open and locked (flock) until the render is done.
The swap checks that the folder at that name is still the one it made (device and inode of
the open folder) and the exchange that it swapped that one in, so a folder another process
put there is never swapped in or deleted. `recover` touches only folders named like staging
folders whose lock no living process holds, and stops at one that a living process holds.

Line endings do not count: a checkout with `core.autocrlf` or `eol=crlf` has CRLF in the
work tree and LF in the repository, and the hash file's digests are those of the LF text.
"""

from __future__ import annotations

import contextlib
import ctypes
import difflib
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from meshcanary.errors import InputError, MeshcanaryError
from meshcanary.layout import HASHES_FILE
from meshcanary.problem import Location, Problem, Severity


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashes_text(files: dict[str, str]) -> str:
    entries = {path: digest(text) for path, text in sorted(files.items())}
    return (
        json.dumps({"generator": "meshcanary", "files": entries}, indent=2, sort_keys=True) + "\n"
    )


@dataclass(frozen=True)
class Change:
    path: str  # repository-relative
    old: str | None
    new: str | None

    @property
    def action(self) -> str:
        return "create" if self.old is None else "delete" if self.new is None else "update"


@dataclass(frozen=True)
class Plan:
    """What rendering one environment would change under deploy/overlays/<env>/."""

    folder: str  # repository-relative, deploy/overlays/<env>
    files: dict[str, str]  # the new tree, hash file included; empty to remove the folder
    changes: tuple[Change, ...]
    kept: tuple[str, ...]  # files meshcanary did not write, carried into the new tree
    conflicts: tuple[Problem, ...] = field(default=())
    notices: tuple[Problem, ...] = field(default=())
    partial: bool = False  # compares only some folders: for checking, never for writing

    @property
    def stale(self) -> bool:
        return bool(self.changes)


# Generated files are small; anything larger is not one of ours, and is not read.
_MAX_GENERATED = 4 * 1024 * 1024


def _read(path: Path) -> str | None:
    """The file's text as meshcanary wrote it: CRLF line ends (a checkout's) read as LF.

    Only a regular file is read. A symbolic link (which could lead out of the repository), a
    FIFO (which would wait for ever) or a device stands in the tree as a line saying what it
    is: never meshcanary's, so it is reported or replaced, and its target is never shown.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        handle = os.open(path, flags)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "(a symbolic link, not read)\n"
        return f"(cannot be read: {exc.strerror})\n"
    with os.fdopen(handle, "rb") as stream:
        info = os.fstat(stream.fileno())
        if stat.S_ISDIR(info.st_mode):
            return None
        if not stat.S_ISREG(info.st_mode):
            return "(a FIFO, device or socket, not read)\n"
        if info.st_size > _MAX_GENERATED:
            return f"(a file of {info.st_size} bytes, not read)\n"
        data = stream.read(_MAX_GENERATED + 1)
    return _lf(data.decode("utf-8", errors="replace"))


def _lf(text: str) -> str:
    # Git stores a `text` file with LF and checks it out with CRLF under core.autocrlf=true
    # or eol=crlf: what Argo CD or Flux read is the LF text, and the digests are of it.
    return text.replace("\r\n", "\n")


def _first_difference(old: str, new: str) -> int:
    for number, (a, b) in enumerate(zip(old.splitlines(), new.splitlines(), strict=False), 1):
        if a != b:
            return number
    return min(len(old.splitlines()), len(new.splitlines())) + 1


def _committed(root: Path, path: str, expected: str | None) -> str | None:
    """The file as last committed, if git has it and it is what meshcanary wrote."""
    if expected is None or not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(  # noqa: S603 - fixed executable, argument list
            ["git", "-C", str(root), "show", f"HEAD:{path}"],  # noqa: S607 - git from PATH
            capture_output=True,
            check=False,
            timeout=30,
            # Inside a git hook, GIT_DIR and friends point at the hook's repository, not ours.
            env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = _lf(done.stdout.decode("utf-8", errors="replace")) if done.returncode == 0 else None
    return text if text is not None and digest(text) == expected else None


def _recorded_hashes(folder: Path) -> dict[str, str]:
    text = _read(folder / HASHES_FILE)
    if text is None:
        return {}
    try:
        files = json.loads(text).get("files", {})
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _on_disk(folder: Path, within: tuple[str, ...] = ()) -> list[str]:
    """Files and symbolic links under `folder` (or its `within` prefixes), relative to it."""
    if not folder.is_dir():
        return []
    found: list[str] = []

    # os.scandir's entries know their type without a stat: Path.rglob took half of
    # `render --check` on a large environment.
    def walk(directory: str, prefix: str) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            if entry.is_symlink() or entry.is_file(follow_symlinks=False):
                found.append(prefix + entry.name)
            elif entry.is_dir(follow_symlinks=False):
                walk(entry.path, f"{prefix}{entry.name}/")

    for top in [p.rstrip("/") for p in within] if within else [""]:
        if top and os.path.islink(folder / top):
            found.append(top)  # listed, never followed: it could lead anywhere
        elif (folder / top).is_dir() if top else True:
            walk(str(folder / top) if top else str(folder), f"{top}/" if top else "")
    return sorted(found)


def _contained(root: Path, base: Path, folder: str) -> None:
    """An InputError when the environment's folder, through a link, is outside `root`."""
    real, top = os.path.realpath(base), os.path.realpath(root)
    if real != top and not real.startswith(top.rstrip(os.sep) + os.sep):
        raise InputError(
            [
                Problem(
                    Location(folder),
                    "leads outside the repository through a symbolic link",
                    "deploy/overlays/ and its folders must be folders of this repository",
                )
            ]
        )


def plan(
    root: Path,
    folder: str,
    generated: dict[str, str],
    sources: dict[str, str],
    within: tuple[str, ...] = (),
) -> Plan:
    """Compare the generated files with the folder on disk.

    `sources` maps each generated path to the release file it came from, for messages.
    `within` limits the comparison to paths under those prefixes (a partial plan: the
    hash file of the whole folder is not compared, and the plan cannot be applied).
    """
    base = root / folder
    _contained(root, base, folder)
    recorded = _recorded_hashes(base)
    files = dict(generated)
    if within:
        files = {p: t for p, t in files.items() if p.startswith(within)}
    elif files:
        files[HASHES_FILE] = hashes_text(generated)
    changes: list[Change] = []
    conflicts: list[Problem] = []
    notices: list[Problem] = []
    kept: list[str] = []
    present = set(_on_disk(base, within))  # a set: membership below, once per file
    for path in sorted(present | set(files)):
        shown = f"{folder}/{path}"
        old = _read(base / path) if path in present else None
        new = files.get(path)
        if old == new:
            continue
        ours = path == HASHES_FILE or (
            path in recorded and old is not None and digest(old) == recorded[path]
        )
        if old is not None and not ours:
            if new is None and path not in recorded:
                kept.append(path)
                notices.append(
                    Problem(
                        Location(shown),
                        "not written by meshcanary; left in place",
                        severity=Severity.WARNING,
                    )
                )
                continue
            # Point at the edit itself when git still has what meshcanary wrote.
            previous = _committed(root, shown, recorded.get(path))
            line = _first_difference(old, previous if previous is not None else new or "")
            source = sources.get(path, "its release file")
            what = (
                "edited by hand since meshcanary wrote it"
                if path in recorded
                else "exists but was not written by meshcanary"
            )
            conflicts.append(
                Problem(
                    Location(shown, line, 1),
                    what,
                    f"make the change in {source} instead, or run with --force to overwrite it",
                )
            )
        changes.append(Change(shown, old, new))
    return Plan(
        folder,
        files,
        tuple(changes),
        tuple(kept),
        tuple(conflicts),
        tuple(notices),
        partial=bool(within),
    )


def unified_diff(plans: list[Plan]) -> str:
    chunks: list[str] = []
    for item in plans:
        for change in item.changes:
            chunks.extend(
                difflib.unified_diff(
                    (change.old or "").splitlines(keepends=True),
                    (change.new or "").splitlines(keepends=True),
                    fromfile="/dev/null" if change.old is None else f"a/{change.path}",
                    tofile="/dev/null" if change.new is None else f"b/{change.path}",
                )
            )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        for line in chunks
    )


# Staging folders beside deploy/overlays/<env>: `.<env>.<token>.new` holds a render's new
# tree, `.<env>.<token>.old` the old one between the two renames of a swap without
# renameat2. Versions before the token named them `.<env>.new` and `.<env>.old`.
_STAGING = re.compile(r"\.(?P<env>[^.]+)(?:\.[0-9a-f]{16})?\.(?P<kind>new|old)")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _staging(root: Path, folder: str, token: str, kind: str) -> Path:
    target = root / folder
    return target.parent / f".{target.name}.{token}.{kind}"


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
    """Finish or undo a swap that a killed render left half done.

    Only real folders (not links) named like staging folders are touched, and only once no
    living process holds them: a new tree never swapped in, or an old one swapped out, is
    removed; an old tree whose environment folder is missing is put back. A folder a living
    process holds is a render at work that does not share this one's lock: it stops this one.
    """
    parent = root / overlays
    if not parent.is_dir():
        return
    for entry in sorted(parent.iterdir()):
        match = _STAGING.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        shown = f"{overlays}/{entry.name}"
        try:
            claim = _Claim.take(entry)
        except BlockingIOError:
            raise _busy(shown, f"{overlays}/{match['env']}") from None
        except OSError:
            continue  # gone since the listing, or not a folder after all
        if claim is None:
            continue
        target = parent / match["env"]
        if match["kind"] == "old" and not os.path.lexists(target) and claim.at(entry):
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


def apply(root: Path, item: Plan, *, force: bool = False) -> None:
    """Write the plan's tree in place of the old one, atomically."""
    if item.partial:
        raise ValueError(f"a partial plan of {item.folder} cannot be written")
    if item.conflicts and not force:
        raise InputError(item.conflicts)
    if not item.changes:
        return
    target = root / item.folder
    token = secrets.token_hex(8)
    new = _staging(root, item.folder, token, "new")
    old = _staging(root, item.folder, token, "old")
    shown = new.relative_to(root).as_posix()
    staged: _Claim | None = None
    previous: _Claim | None = None
    swapped = False
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if item.files or item.kept:
                new.mkdir()  # never one that is there already: a staging folder is not reused
                fd = os.open(new, _FOLDER)
                staged = _Claim.hold(fd)
                _stage(item, target, new, fd)
            try:
                previous = _Claim.take(target)
            except BlockingIOError:
                raise _busy(item.folder, item.folder) from None
            if staged is not None and not staged.at(new):
                raise _foreign(shown, item.folder)
            if staged is not None and previous is not None:
                swapped = _exchange(new, target)
                if swapped and not staged.at(target):
                    # Replaced between the check and the exchange: put the old tree back.
                    _exchange(new, target)
                    raise _foreign(shown, item.folder)
            if not swapped:
                if previous is not None:
                    os.replace(target, old)
                if staged is not None:
                    os.replace(new, target)
        except OSError as exc:
            # A full or read-only file system: put the old tree back if it was moved, drop the
            # staging folder, and say so in one line instead of a traceback.
            if previous is not None and previous.at(old) and not os.path.lexists(target):
                with contextlib.suppress(OSError):  # else recover() puts it back next time
                    os.replace(old, target)
            if staged is not None and not staged.at(new):
                raise _foreign(shown, item.folder) from None
            if staged is not None:
                staged.discard(new)
            raise _unwritable(root, item.folder, exc) from None
        _fsync_dir(target.parent)
        # After an exchange the staging folder holds the old tree; after two renames, `old`.
        if previous is not None:
            previous.discard(new if swapped else old)
    finally:
        for claim in (staged, previous):
            if claim is not None:
                claim.release()


def _stage(item: Plan, target: Path, new: Path, staging: int) -> None:
    """Write the plan's whole tree into the new, empty staging folder `new`, open at `staging`.

    Through the open folder rather than its path: were another process to put a folder of its
    own at that path, this render's writes would still go to its own folder (or fail), never
    into theirs. A generated file the plan leaves as it is keeps its bytes and time stamp (a
    CRLF checkout's line ends: git then sees only what changed), as files a person added do.
    """
    changed = {change.path.removeprefix(f"{item.folder}/") for change in item.changes}
    folders = _Folders(staging)
    path = ""
    try:
        for path, text in item.files.items():
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
                os.fsync(handle.fileno())
        for path in item.kept:
            parent, name = folders.open(path)
            _copy(target / path, name, parent)
    except OSError as exc:
        if exc.filename is not None and os.path.isabs(os.fsdecode(exc.filename)):
            raise
        # Name the file by its path, not by its name in the open folder (or by none at all).
        raise OSError(exc.errno, exc.strerror, str(new / path)) from None
    finally:
        folders.close()


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
        os.fsync(handle.fileno())


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
