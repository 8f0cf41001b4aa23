"""Compare a rendered environment with its folder on disk, refuse to clobber, write what changed.

meshcanary keeps the hash of every file it wrote in hash files (.meshcanary.json): one in each
service's folder, deploy/overlays/<env>/<service>/, for that folder's files, and one in the
environment's folder for the environment's own files (its kustomization.yaml and _gateways/).
They tell a file we wrote (safe to replace or remove) from one a person edited since (reported,
kept unless --force) or added (kept). A service's folder and its hash file are swapped in
together (render/swap.py), so an edit of one service writes that folder alone.

Versions before this one kept every hash in the environment's file. That file is still read
for the folders that have none of their own, and the next write of the whole environment moves
the hashes into the service folders; until then, the move alone does not make the tree stale.

Line endings do not count: a checkout with `core.autocrlf` or `eol=crlf` has CRLF in the
work tree and LF in the repository, and the hash files' digests are those of the LF text.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshcanary.errors import InputError
from meshcanary.layout import GATEWAYS, HASHES_FILE
from meshcanary.problem import Location, Problem, Severity
from meshcanary.render import swap


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashes_text(files: dict[str, str]) -> str:
    entries = {path: digest(text) for path, text in sorted(files.items())}
    return (
        json.dumps({"generator": "meshcanary", "files": entries}, indent=2, sort_keys=True) + "\n"
    )


def unit_of(path: str) -> str:
    """The folder whose hash file records `path` (relative to the environment's folder): its
    service's, or "" for the environment's own files (kustomization.yaml, _gateways/)."""
    first, slash, _ = path.partition("/")
    return first if slash and first != GATEWAYS else ""


def is_hash_file(path: str) -> bool:
    """Whether `path` (relative to the environment's folder) is one of meshcanary's hash files."""
    unit, _, name = path.partition("/")
    return path == HASHES_FILE or (name == HASHES_FILE and unit_of(path) == unit)


def with_hashes(generated: dict[str, str]) -> dict[str, str]:
    """The generated files of an environment and the hash file of each folder that has some."""
    units: dict[str, dict[str, str]] = {}
    for path, text in generated.items():
        unit = unit_of(path)
        units.setdefault(unit, {})[path.removeprefix(f"{unit}/") if unit else path] = text
    files = dict(generated)
    for unit, own in units.items():
        files[f"{unit}/{HASHES_FILE}" if unit else HASHES_FILE] = hashes_text(own)
    return files


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
    """What rendering one environment would change under deploy/overlays/<env>/ (or, for an
    edit, under one service's folder in it)."""

    folder: str  # repository-relative, deploy/overlays/<env> (or .../<env>/<service>)
    files: dict[str, str]  # the new tree, hash files included; empty to remove the folder
    changes: tuple[Change, ...]
    kept: tuple[str, ...]  # files meshcanary did not write, carried into the new tree
    conflicts: tuple[Problem, ...] = field(default=())
    notices: tuple[Problem, ...] = field(default=())
    partial: bool = False  # compares only some folders: for checking, never for writing
    # Hash files that change only to move from the earlier layout (one file for the whole
    # environment) to one per service: written with the rest, but not a stale tree.
    moved: tuple[Change, ...] = field(default=())

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


def _recorded_hashes(path: Path) -> dict[str, str] | None:
    """The digests the hash file at `path` records, by path; None when there is none."""
    text = _read(path)
    if text is None:
        return None
    try:
        files = json.loads(text).get("files", {})
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


class _Recorded:
    """What an environment's hash files say meshcanary wrote, by path relative to its folder.

    A service folder's own hash file is read when a path in it is asked about, once; without
    one, the environment's file answers (the earlier layout kept everything there).
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.top = _recorded_hashes(base / HASHES_FILE) or {}
        self.legacy = any(unit_of(path) for path in self.top)
        self.units: dict[str, dict[str, str] | None] = {}

    def get(self, path: str) -> str | None:
        unit = unit_of(path)
        if unit and unit not in self.units:
            folder = self.base / unit
            # A folder that is a link is listed, never entered: it could lead anywhere.
            linked = os.path.islink(folder)
            self.units[unit] = None if linked else _recorded_hashes(folder / HASHES_FILE)
        own = self.units.get(unit) if unit else None
        if own is not None:
            return own.get(path.removeprefix(f"{unit}/"))
        return self.top.get(path)

    def lists(self, files: dict[str, str]) -> bool:
        """Whether the environment's hash file has every one of `files`, as it is."""
        return all(self.top.get(path) == digest(text) for path, text in files.items())


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
    environment's own hash file is not compared, and the plan cannot be applied; a service
    folder's can, through `service_plan`).
    """
    base = root / folder
    _contained(root, base, folder)
    recorded = _Recorded(base)
    files = with_hashes(generated) if generated else {}
    if within:
        files = {p: t for p, t in files.items() if p.startswith(within)}
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
        expected = recorded.get(path)
        ours = is_hash_file(path) or (old is not None and digest(old) == expected)
        if old is not None and not ours:
            if new is None and expected is None:
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
            previous = _committed(root, shown, expected)
            line = _first_difference(old, previous if previous is not None else new or "")
            source = sources.get(path, "its release file")
            what = (
                "edited by hand since meshcanary wrote it"
                if expected is not None
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
    moved = _moves(recorded, folder, generated, changes) if recorded.legacy else []
    if moved:
        moving = {id(change) for change in moved}
        changes = [change for change in changes if id(change) not in moving]
        notices.append(
            Problem(
                Location(f"{folder}/{HASHES_FILE}"),
                "holds the hashes of every service (meshcanary's earlier layout); `meshcanary "
                "render` moves them into a .meshcanary.json in each service's folder, and "
                "changes no other file",
                severity=Severity.INFO,
            )
        )
    return Plan(
        folder,
        files,
        tuple(changes),
        tuple(kept),
        tuple(conflicts),
        tuple(notices),
        partial=bool(within),
        moved=tuple(moved),
    )


def _moves(
    recorded: _Recorded, folder: str, generated: dict[str, str], changes: list[Change]
) -> list[Change]:
    """The changes to hash files that only move hashes out of the environment's file of the
    earlier layout: of folders none of whose other files change, and all of whose files that
    file records as they are."""
    units: dict[str, dict[str, str]] = {}
    for path, text in generated.items():
        units.setdefault(unit_of(path), {})[path] = text
    paths = [(change, change.path.removeprefix(f"{folder}/")) for change in changes]
    changed = {unit_of(path) for _, path in paths if not is_hash_file(path)}
    return [
        change
        for change, path in paths
        if is_hash_file(path)
        and unit_of(path) not in changed
        and recorded.lists(units.get(unit_of(path), {}))
    ]


def service_plan(item: Plan, service: str) -> Plan:
    """The partial plan `item` of an environment, narrowed to `service`'s folder (which it
    compared) and made one that can be written: the folder and its hash file, swapped in as one."""
    prefix = f"{service}/"
    folder = f"{item.folder}/{service}"

    def inside(path: str) -> bool:
        return path == folder or path.startswith(f"{folder}/")

    return Plan(
        folder,
        {p.removeprefix(prefix): t for p, t in item.files.items() if p.startswith(prefix)},
        tuple(c for c in item.changes if inside(c.path)),
        tuple(p.removeprefix(prefix) for p in item.kept if p.startswith(prefix)),
        tuple(c for c in item.conflicts if inside(c.location.file)),
        tuple(n for n in item.notices if inside(n.location.file)),
        moved=tuple(c for c in item.moved if inside(c.path)),
    )


def changed_folders(item: Plan) -> set[str]:
    """The folders whose files `item` writes, as `unit_of` names them: services, and "" for
    the environment's own files (or a service folder that is not a folder)."""
    prefix = f"{item.folder}/"
    return {unit_of(change.path.removeprefix(prefix)) for change in (*item.changes, *item.moved)}


def holds(root: Path, folder: str, files: dict[str, str]) -> bool:
    """Whether the folder has `files` as they are and its hash file records exactly them: its
    own files need no writing (whatever a person added beside them is kept either way)."""
    _contained(root, root / folder, folder)
    expected = {**files, HASHES_FILE: hashes_text(files)}
    return all(_read(root / folder / path) == text for path, text in expected.items())


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


def apply(root: Path, item: Plan, *, force: bool = False) -> None:
    """Write the plan's tree in place of the old one, atomically."""
    apply_all(root, [item], force=force)


def apply_all(root: Path, plans: Sequence[Plan], *, force: bool = False) -> None:
    """Write several plans' trees (service folders of one environment): every one staged
    before any is swapped in, so that a disk that fills up leaves them all as they were."""
    for item in plans:
        if item.partial:
            raise ValueError(f"a partial plan of {item.folder} cannot be written")
    conflicts = [conflict for item in plans for conflict in item.conflicts]
    if conflicts and not force:
        raise InputError(conflicts)
    replacements = [
        swap.Replacement(
            item.folder,
            item.files,
            item.kept,
            {c.path.removeprefix(f"{item.folder}/") for c in (*item.changes, *item.moved)},
        )
        for item in plans
        if item.changes or item.moved
    ]
    if replacements:
        swap.replace_all(root, replacements)
