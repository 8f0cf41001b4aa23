"""Put a rendered environment on disk: plan the changes, refuse to clobber, swap atomically.

Each deploy/overlays/<env>/ holds a manifest (.meshcanary.json) with the hash of every file
meshcanary wrote there. It tells a file we wrote (safe to replace or remove) from one a person
edited since (reported, kept unless --force) or added (kept).

A render writes the whole new folder beside the old one and swaps them with two renames. If
the process dies between them, `recover` at the next start restores a whole tree: the old one
when the new one was not in place yet, else the new one.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from meshcanary.errors import InputError
from meshcanary.problem import Location, Problem, Severity

MANIFEST = ".meshcanary.json"


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_text(files: dict[str, str]) -> str:
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
    files: dict[str, str]  # the new tree, manifest included; empty to remove the folder
    changes: tuple[Change, ...]
    kept: tuple[str, ...]  # files meshcanary did not write, carried into the new tree
    conflicts: tuple[Problem, ...] = field(default=())
    notices: tuple[Problem, ...] = field(default=())

    @property
    def stale(self) -> bool:
        return bool(self.changes)


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return None
    except UnicodeDecodeError:
        return path.read_bytes().decode("utf-8", errors="replace")


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
    text = done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else None
    return text if text is not None and digest(text) == expected else None


def _load_manifest(folder: Path) -> dict[str, str]:
    text = _read(folder / MANIFEST)
    if text is None:
        return {}
    try:
        files = json.loads(text).get("files", {})
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _on_disk(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()
    )


def plan(root: Path, folder: str, generated: dict[str, str], sources: dict[str, str]) -> Plan:
    """Compare the generated files with the folder on disk.

    `sources` maps each generated path to the release file it came from, for messages.
    """
    base = root / folder
    recorded = _load_manifest(base)
    files = dict(generated)
    if files:
        files[MANIFEST] = manifest_text(generated)
    changes: list[Change] = []
    conflicts: list[Problem] = []
    notices: list[Problem] = []
    kept: list[str] = []
    present = _on_disk(base)
    for path in sorted(set(present) | set(files)):
        shown = f"{folder}/{path}"
        old = _read(base / path) if path in present else None
        new = files.get(path)
        if old == new:
            continue
        ours = path == MANIFEST or (
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
    return Plan(folder, files, tuple(changes), tuple(kept), tuple(conflicts), tuple(notices))


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


def _staging(root: Path, folder: str, suffix: str) -> Path:
    target = root / folder
    return target.parent / f".{target.name}.{suffix}"


def recover(root: Path, overlays: str) -> None:
    """Finish or undo a swap that a killed render left half done."""
    parent = root / overlays
    if not parent.is_dir():
        return
    for entry in sorted(parent.iterdir()):
        name = entry.name
        if not name.startswith("."):
            continue
        if name.endswith(".new"):
            shutil.rmtree(entry, ignore_errors=True)
        elif name.endswith(".old"):
            target = parent / name[1:-4]
            if target.exists():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                os.replace(entry, target)


def apply(root: Path, item: Plan, *, force: bool = False) -> None:
    """Write the plan's tree in place of the old one, atomically."""
    if item.conflicts and not force:
        raise InputError(item.conflicts)
    if not item.changes:
        return
    target = root / item.folder
    new = _staging(root, item.folder, "new")
    old = _staging(root, item.folder, "old")
    shutil.rmtree(new, ignore_errors=True)
    if item.files or item.kept:
        new.mkdir(parents=True)
        for path, text in item.files.items():
            destination = new / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            with open(destination, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for path in item.kept:
            destination = new / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(target / path, destination, follow_symlinks=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        os.replace(target, old)
    if new.exists():
        os.replace(new, target)
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


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
