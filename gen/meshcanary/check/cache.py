"""A content-hash cache of `check` reports: a second run over unchanged inputs reads the report.

The key covers what can change a report: meshcanary's version, the options, the changed
paths given, the kustomize binary, and the bytes of every file under environments/, deploy/,
policies/, each release file's base, and any --policies or --crd file. A base that pulls in
files from elsewhere (`resources: ../../../vendor/x`) is the one input it cannot see: run
`check --no-cache` when such a file changes. The cache lives outside the
repository (`$MESHCANARY_CACHE_DIR`, else `$XDG_CACHE_HOME/meshcanary`, else
`~/.cache/meshcanary`); deleting it only costs time.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from meshcanary import __version__
from meshcanary.problem import Location, Problem, ResourceRef, Severity
from meshcanary.report import Report, ResourceResult, RuleInfo, Status

# What a cached report means; raised when the same inputs would give another report (2:
# findings point into the release files).
FORMAT = 2
TOPS = ("environments", "deploy", "policies")  # what a run over the whole repository reads
_BASE = re.compile(r"""^base:[ \t]*["']?([^"'\s#]+)""", re.MULTILINE)


def folder() -> Path:
    configured = os.environ.get("MESHCANARY_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meshcanary"


def key(
    root: Path,
    options: str,
    paths: list[str],
    extra_files: list[Path],
    tool: str,
    tops: Sequence[str] = TOPS,
    files: Files | None = None,
    *,
    with_bases: bool = True,
) -> str:
    """A digest of everything that can change the report of a run over `tops`.

    `tops` are the repository paths (files or folders) the run reads; each release file among
    them also brings in its base folder (unless not `with_bases`).
    """
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}\0{__version__}\0{options}\0{sorted(paths)}\0{tool}\0".encode())
    digest.update(_installed().encode())
    tool_path = Path(tool)
    if tool_path.is_file():
        stat = tool_path.stat()
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    files = files or Files(root)
    memo = files.memo
    found: dict[str, str] = {}
    for top in tops:
        found.update(files.under(top))
    for extra in extra_files:
        if extra.is_file():
            found.setdefault(str(extra.resolve()), memo.entry(str(extra.resolve()), extra))
    bases = {
        base
        for name, base in memo.bases.items()
        if with_bases and base and name.startswith("environments/") and name.endswith(".yaml")
    }
    inside = os.path.realpath(root)
    walked = tuple(f"{os.path.normpath(top)}/" for top in tops)
    real_folder = functools.cache(os.path.realpath)  # a thousand bases share a few parents
    for base in sorted(bases):
        real = _real(root, base, real_folder)
        if not real.startswith(f"{inside}/") or not os.path.isdir(real):
            continue
        relative = real[len(inside) + 1 :]
        if not f"{relative}/".startswith(walked):
            found.update(files.under(relative))
    for name in sorted(found):
        digest.update(name.encode() + b"\0" + bytes.fromhex(found[name]))
    # A run over everything saw every file there is: entries of files gone since are dropped.
    memo.save(complete=tuple(tops) == TOPS)
    return digest.hexdigest()


def _real(root: Path, base: str, real_folder: Callable[[str], str]) -> str:
    """`os.path.realpath(root / base)`, resolving the base's folder once for all its siblings."""
    path = os.path.join(root, base)
    parts = base.replace(os.sep, "/").split("/")
    if "" in parts or "." in parts or ".." in parts:
        return os.path.realpath(path)  # resolved as written, links before `..`
    folder, leaf = os.path.split(path)
    real = os.path.join(real_folder(folder), leaf)
    return os.path.realpath(real) if os.path.islink(real) else real


@functools.cache
def _installed() -> str:
    """In a checkout of meshcanary (its schemas beside `gen/`), its own files by name, size
    and time: a checkout being worked on changes rules and schemas, not its version. An
    installed wheel is told by its version alone."""
    package = Path(__file__).resolve().parent.parent
    checkout = package.parent.parent / "schemas"
    if not checkout.is_dir():
        return ""
    digest = hashlib.sha256()
    for top in (package, checkout):
        for folder, _, names in sorted(os.walk(top)):
            for name in sorted(names):
                if name.endswith((".py", ".json", ".yaml")):
                    stat = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


class Files:
    """The digests of a repository's files, each folder walked once a run (file contents
    remembered across runs by their stat, in `memo`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.memo = Memo(root)
        self.found: dict[str, str] = {}
        self._walked: set[str] = set()
        self._names: list[str] = []

    def under(self, top: str) -> dict[str, str]:
        """The digest of `top` (a file), or of every file under it (a folder)."""
        top = os.path.normpath(top).replace(os.sep, "/")
        parts = top.split("/")
        if not any("/".join(parts[:end]) in self._walked for end in range(1, len(parts) + 1)):
            hash_tree(self.root, top, self.memo, self.found)
            self._walked.add(top)
            self._names = sorted(self.found)
        found = {top: self.found[top]} if top in self.found else {}
        prefix = f"{top}/"
        names = self._names
        index = bisect.bisect_left(names, prefix)
        while index < len(names) and names[index].startswith(prefix):
            found[names[index]] = self.found[names[index]]
            index += 1
        return found


def hash_tree(root: Path, top: str, memo: Memo, found: dict[str, str]) -> None:
    """Add the digest of `top` (a file, or every file under a folder) to `found`."""
    name = os.path.normpath(top).replace(os.sep, "/")
    path = os.path.join(root, name)
    if os.path.islink(path) or os.path.isfile(path):
        found.setdefault(name, digest(root, name, path, memo))
        return
    _walk(root, name, path, memo, found)


def _walk(root: Path, name: str, path: str, memo: Memo, found: dict[str, str]) -> None:
    # In no particular order: every caller sorts what it takes from `found`. The entries'
    # types come with the listing, so a folder costs no stat and a file one.
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        child = f"{name}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            _walk(root, child, entry.path, memo, found)
        elif child in found:
            continue
        elif entry.is_symlink():
            found[child] = digest(root, child, entry.path, memo)
        elif entry.is_file(follow_symlinks=False):
            found[child] = memo.entry(child, entry.path, entry)


def digest(root: Path, name: str, path: str, memo: Memo) -> str:
    """A file's digest, when it is a file of the repository (a link to one included); for a
    link out of the repository or to a folder, of what the link says.

    What such a link names is not read: it is not the repository's, and the build refuses
    it anyway. Links to folders are not followed here, as the walk does not follow them.
    """
    inside = os.path.realpath(root).rstrip(os.sep) + os.sep
    real = os.path.realpath(path)
    if real.startswith(inside) and os.path.isfile(real):
        return memo.entry(name, path)
    target = os.readlink(path) if os.path.islink(path) else ""
    return hashlib.sha256(f"link:{target}".encode()).hexdigest()


class Memo:
    """Content digests of files remembered by their stat, the way git's index does it.

    An entry is trusted only while size, mtime, ctime, inode and device are unchanged, and
    is recorded only for files untouched for a while before they were read (a file changed
    again within the same clock tick would otherwise keep its old digest). Each release file
    also remembers the base it names.
    """

    SETTLED_NS = 2_000_000_000

    def __init__(self, root: Path) -> None:
        name = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:16]
        self.path = folder() / f"files-{name}.json"
        self.seen: dict[str, str] = {}  # file → its digest, worked out once a run
        self.bases: dict[str, str] = {}  # release file → the base it names
        self.changed = False
        self.now = time.time_ns()
        self.known: dict[str, list[Any]] = self._load()
        self.fresh: dict[str, list[Any]] = {}
        # Once a run over everything has saved the memo, the file holds every entry the run
        # needs again; the signatures are let go (a memo of a large repository is tens of
        # megabytes), and a later save adds to the file what was found since.
        self.whole = False

    def _load(self) -> dict[str, list[Any]]:
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def entry(self, name: str, path: str | Path, listed: os.DirEntry[str] | None = None) -> str:
        """The digest of the file `name` at `path` (for a release file, the base it names
        goes to `bases`); `listed` is its entry in a folder's listing, when it is a regular
        file."""
        seen = self.seen.get(name)
        if seen is not None:
            return seen  # once a run: a file that changes while it runs is a race anyway
        stat = listed.stat(follow_symlinks=False) if listed is not None else os.stat(path)
        signature = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]
        known = self.known.get(name)
        if isinstance(known, list) and len(known) == 7 and known[:5] == signature:
            found, base = str(known[5]), str(known[6])
            # The same entry, not a copy: a memo of a large repository is tens of megabytes.
            self.fresh[name] = known
        else:
            data = Path(path).read_bytes()
            base = ""
            if name.startswith("environments/") and name.endswith(".yaml"):
                match = _BASE.search(data.decode("utf-8", errors="replace"))
                base = match.group(1) if match else ""
            found = hashlib.sha256(data).hexdigest()
            self.changed = True
            if self.now - max(stat.st_mtime_ns, stat.st_ctime_ns) > self.SETTLED_NS:
                self.fresh[name] = [*signature, found, base]
        self.seen[name] = found
        if base:
            self.bases[name] = base
        return found

    def save(self, *, complete: bool) -> None:
        """Write the memo; `complete` when this run saw every file there is, whose entries
        of files gone since are dropped."""
        if self.whole:
            if not self.fresh:
                return
            merged = {**self._load(), **self.fresh}
        else:
            stale = complete and not self.known.keys() <= self.seen.keys()
            if not self.changed and not stale and self.fresh.keys() <= self.known.keys():
                merged = None  # the file holds these entries already
            else:
                merged = self.fresh if complete else {**self.known, **self.fresh}
        if merged is not None and not self._write(merged):
            return  # a memo that cannot be written only costs time
        if complete or self.whole:
            # Every file this run has seen is in `seen`, and the file has their entries.
            self.known, self.fresh, self.changed, self.whole = {}, {}, False, True
        elif merged is not None:
            self.known, self.changed = merged, False

    def _write(self, entries: dict[str, list[Any]]) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with temporary.open("w", encoding="utf-8") as file:
                file.writelines(_pieces(entries))
            os.replace(temporary, self.path)
        except OSError:
            return False
        return True


def _pieces(mapping: dict[str, Any], size: int = 2000) -> Iterator[str]:
    """`mapping` as one JSON object, in pieces of `size` entries: a memo of a large
    repository is never one string in memory."""
    names = list(mapping)
    yield "{"
    for start in range(0, len(names), size):
        piece = json.dumps(
            {n: mapping[n] for n in names[start : start + size]}, separators=(",", ":")
        )
        yield ("," if start else "") + piece[1:-1]
    yield "}"


def problem_data(problem: Problem) -> dict[str, Any]:
    ref = problem.resource
    return {
        "location": [problem.location.file, problem.location.line, problem.location.column],
        "message": problem.message,
        "hint": problem.hint,
        "rule": problem.rule,
        "severity": problem.severity.value,
        "resource": [ref.api_version, ref.kind, ref.name, ref.namespace] if ref else None,
        "path": problem.path,
    }


def problem_from(data: dict[str, Any]) -> Problem:
    ref = data["resource"]
    return Problem(
        location=Location(*data["location"]),
        message=data["message"],
        hint=data["hint"],
        rule=data["rule"],
        severity=Severity(data["severity"]),
        resource=ResourceRef(*ref) if ref else None,
        path=data["path"],
    )


def dump(report: Report) -> Iterator[str]:
    """The report as JSON, in pieces: a result at a time, never the whole report in one
    string (at thousands of services, tens of megabytes)."""
    yield f'{{"problems": {json.dumps([problem_data(p) for p in report.problems])}, "results": ['
    for index, r in enumerate(report.results):
        result = {
            "file": r.file,
            "resource": [
                r.resource.api_version,
                r.resource.kind,
                r.resource.name,
                r.resource.namespace,
            ],
            "status": r.status.value,
            "problems": [problem_data(p) for p in r.problems],
        }
        yield (", " if index else "") + json.dumps(result)
    rest = {
        "files": report.files,
        "stdin": report.stdin,
        "rules": [[i.id, i.severity.value, i.summary, i.help] for i in report.rules],
        "checks": list(report.checks),
    }
    yield "], " + json.dumps(rest)[1:]


def load(text: str) -> Report:
    data = json.loads(text)
    return Report(
        problems=tuple(problem_from(p) for p in data["problems"]),
        results=tuple(
            ResourceResult(
                r["file"],
                ResourceRef(*r["resource"]),
                Status(r["status"]),
                tuple(problem_from(p) for p in r["problems"]),
            )
            for r in data["results"]
        ),
        files=data["files"],
        stdin=data["stdin"],
        rules=tuple(RuleInfo(i[0], Severity(i[1]), i[2], i[3]) for i in data["rules"]),
        checks=tuple(data["checks"]),
    )


def read(name: str) -> Report | None:
    path = folder() / f"{name}.json"
    try:
        return load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(name: str, report: Report) -> None:
    target = folder()
    try:
        target.mkdir(parents=True, exist_ok=True)
        temporary = target / f".{name}.{os.getpid()}.tmp"
        with temporary.open("w", encoding="utf-8") as file:
            file.writelines(dump(report))
        os.replace(temporary, target / f"{name}.json")
    except OSError:
        pass  # a cache that cannot be written only costs time
