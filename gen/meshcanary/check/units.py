"""What each overlay contributed to a check, kept by the digests of exactly what it read.

A full `check` after a one-service change should rebuild one overlay, not a thousand. Each
unit (a service overlay, or an environment's gateways) is kept as a `UnitRecord`: its
render-fresh, build and plan findings, its built objects with the places their findings
point to, their schema verdicts, and where the release files decided their fields. The
record names every input it was made from, each with its digest:

- the environment file and the release file;
- the whole tree of the overlay's folder and of the release's base;
- every folder a kustomization the build reads is in, and every file one of them names
  (found by the resolver as it checks the build, `Resolver.reached`), missing ones too.

A record is used again only while each of those digests is unchanged. An environment keeps
an `EnvironmentRecord` by its own inputs (its environment file, its list of release files,
its overlay folder's own files and entries): the render-fresh findings on its own files, and
the rule and policy findings over all its objects, which hold as long as no unit of it changed.

Everything is kept in JSON outside the repository (cache.folder()), one file per
environment, under a key of what every unit shares (meshcanary's version, the options, the
kustomize binary, the policies and CRDs): a record is data, never code, so a cache restored
in CI cannot run anything; it can only be wrong, and a record is used only when its inputs'
digests match the files as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshcanary.check import cache
from meshcanary.kustomize.contain import Resolver
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS, OVERLAYS
from meshcanary.manifest import Document, Resource, split_documents
from meshcanary.problem import Problem
from meshcanary.render.provenance import ObjectKey, Origin, Origins, Provenance
from meshcanary.report import Status
from meshcanary.source import SourceDoc, load_mapping
from meshcanary.validate import Verdict

if TYPE_CHECKING:
    from meshcanary.baseline import Baseline
    from meshcanary.check.scope import Unit
    from meshcanary.release.model import Release

FORMAT = 2
ABSENT = "absent"


class Digests:
    """Digests of the repository's files, trees and folder listings, each worked out once a
    run (cache.Files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = cache.Files(root)
        self._trees: dict[str, str] = {}

    def of(self, name: str) -> str:
        """The digest of a file, or of a whole tree when `name` ends with a slash."""
        if name.endswith("/"):
            return self.tree(name.rstrip("/"))
        known = self.files.found.get(name)  # a file of a folder walked already
        if known is not None:
            return known
        found = self.files.under(name)
        if name in found:
            return found[name]
        path = os.path.join(self.root, name)
        return "folder" if os.path.isdir(path) else ABSENT

    def tree(self, folder: str) -> str:
        found = self._trees.get(folder)
        if found is None:
            digest = hashlib.sha256()
            for name, each in sorted(self.files.under(folder).items()):
                digest.update(f"{name}\0{each}\0".encode())
            found = self._trees[folder] = digest.hexdigest()
        return found

    def listing(self, folder: str) -> str:
        """The names in a folder, with which are folders: what a new or removed entry changes."""
        try:
            entries = sorted(
                f"{e.name}{'/' if e.is_dir(follow_symlinks=False) else ''}"
                for e in os.scandir(os.path.join(self.root, folder))
            )
        except OSError:
            return ABSENT
        return hashlib.sha256("\0".join(entries).encode()).hexdigest()

    def unchanged(self, inputs: Mapping[str, str]) -> bool:
        return all(self.current(name) == digest for name, digest in inputs.items())

    def current(self, name: str) -> str:
        if name.startswith("ls:"):
            return self.listing(name.removeprefix("ls:"))
        return self.of(name)

    def inputs(self, names: Iterable[str]) -> dict[str, str]:
        return {name: self.current(name) for name in sorted(set(names))}

    def save(self) -> None:
        self.files.memo.save(complete=False)


@dataclass
class UnitRecord:
    """What one unit contributed to a report, and the inputs it was made from."""

    environment: str
    name: str  # the service, or _gateways
    release: str | None  # its release file
    base: str | None
    inputs: dict[str, str]
    problems: list[Problem]  # render-fresh of its folder, its build, its canary plan, ignores
    resources: list[Resource]
    verdicts: list[Verdict]
    ignore: dict[str, str]  # the release file's rule → reason
    # As stored, decoded when asked; of a record made this run, encoded when written.
    provenance: str | Decided
    final: bool = True  # usable again while its inputs are unchanged


@dataclass
class EnvironmentRecord:
    name: str
    inputs: dict[str, str]
    problems: list[Problem]  # render-fresh of the environment's own files
    # The rule and policy findings over its units as they are, when those hold whatever the
    # baseline (no unit differed from it when they were found); else None.
    found: list[Problem] | None


@dataclass
class Stored:
    """An environment's records, as the last run left them."""

    environment: EnvironmentRecord
    units: dict[str, UnitRecord]


# JSON ---------------------------------------------------------------------------------------


def _resource(resource: Resource) -> list[Any]:
    document = resource.document
    return [
        resource.data,
        document.file,
        document.first_line,
        document.index,
        bool(document.text) or (isinstance(document, StoredDocument) and document.root is not None),
        resource.item,
    ]


def _unresource(root: Path, data: list[Any]) -> Resource:
    body, file, first_line, index, has_text, item = data
    document = StoredDocument(file, "", first_line, index, root=root if has_text else None)
    return Resource(body, document, item)


@dataclass(eq=False)
class StoredDocument(Document):
    """A document of a kept record: its text is read back from its file (unchanged, as the
    record's inputs say) only when a finding needs a position in it."""

    root: Path | None = None

    def node(self) -> Any:
        if self._nodes is None and not self.text and self.root is not None:
            self.text = _document_text(self.root / self.file, self.index)
        return super().node()


def _document_text(path: Path, index: int) -> str:
    try:
        text = path.read_text(encoding="utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    except (OSError, UnicodeDecodeError):
        return ""
    for number, (piece, _) in enumerate(split_documents(text)):
        if number == index:
            return piece
    return ""


def _origin(origin: Origin) -> list[Any]:
    return [origin.source.display, list(origin.path), origin.key, origin.verbatim]


class Decided:
    """Where the fields of a unit's objects (`keys`) were decided, as this run's render
    says: encoded as the record stores it only when the record is written, so an
    environment's records hold no copy of what the render holds already."""

    def __init__(self, provenance: Provenance, environment: str, keys: Iterable[ObjectKey]) -> None:
        self.provenance = provenance
        self.environment = environment
        self.keys = tuple(keys)

    def text(self) -> str:
        """One JSON text a unit, decoded only when a finding on one of its objects needs it."""
        stored: list[Any] = []
        for key in self.keys:
            origins = self.provenance.of(*key)
            if origins is None or key[0] != self.environment:
                continue
            stored.append(
                [
                    list(key[1:]),
                    origins.owner,
                    [[list(path), _origin(o)] for path, o in origins.fields.items()],
                    _origin(origins.fallback) if origins.fallback is not None else None,
                ]
            )
        return json.dumps(stored, separators=(",", ":"))


def _text(provenance: str | Decided) -> str:
    return provenance if isinstance(provenance, str) else provenance.text()


class StoredProvenance(Provenance):
    """The provenance of this run's render, and that of kept units, decoded when asked."""

    def __init__(self, root: Path, fresh: Provenance) -> None:
        super().__init__()
        self.update(fresh)
        self.root = root
        self._stored: dict[ObjectKey, UnitRecord] = {}
        self._sources: dict[str, SourceDoc] = {}

    def keep(self, record: UnitRecord) -> None:
        """Where the fields of a kept unit's objects were decided (its record says)."""
        for resource in record.resources:
            key = (record.environment, resource.kind, resource.namespace, resource.name)
            self._stored.setdefault(key, record)

    def of(self, environment: str, kind: str, namespace: str, name: str) -> Origins | None:
        key = (environment, kind, namespace, name)
        record = self._stored.get(key)
        if record is not None and key not in self._objects:
            for (each_kind, each_namespace, each_name), owner, fields, fallback in json.loads(
                _text(record.provenance)
            ):
                each = (environment, each_kind, each_namespace, each_name)
                self._stored.pop(each, None)
                if each in self._objects:
                    continue
                self.record(
                    *each,
                    Origins(
                        owner,
                        {tuple(path): self._unorigin(o) for path, o in fields},
                        self._unorigin(fallback) if fallback is not None else None,
                    ),
                )
        return super().of(environment, kind, namespace, name)

    def _unorigin(self, data: list[Any]) -> Origin:
        display, path, key, verbatim = data
        source = self._sources.get(display)
        if source is None:
            source = self._sources[display] = load_mapping(self.root / display, display)
        return Origin(source, tuple(path), key, verbatim)


def dump(global_key: str, stored: Stored) -> Iterator[str]:
    """The records as JSON, in pieces: a unit at a time, never all of them in one string."""
    env = stored.environment
    head = {
        "format": FORMAT,
        "key": global_key,
        "environment": {
            "name": env.name,
            "inputs": env.inputs,
            "problems": [cache.problem_data(p) for p in env.problems],
            "found": None if env.found is None else [cache.problem_data(p) for p in env.found],
        },
    }
    yield json.dumps(head, separators=(",", ":"))[:-1] + ',"units":['
    for index, unit in enumerate(stored.units.values()):
        yield ("," if index else "") + json.dumps(_unit(unit), separators=(",", ":"))
    yield "]}"


def _unit(unit: UnitRecord) -> dict[str, Any]:
    return {
        "name": unit.name,
        "release": unit.release,
        "base": unit.base,
        "inputs": unit.inputs,
        "problems": [cache.problem_data(p) for p in unit.problems],
        "resources": [_resource(r) for r in unit.resources],
        "verdicts": [
            [v.status.value, [cache.problem_data(p) for p in v.problems]] for v in unit.verdicts
        ],
        "ignore": unit.ignore,
        "provenance": _text(unit.provenance),
        "final": unit.final,
    }


def load(root: Path, global_key: str, text: str) -> Stored | None:
    """The records in `text`, or None when they were kept under other settings."""
    data = json.loads(text)
    if data.get("format") != FORMAT or data.get("key") != global_key:
        return None
    env = data["environment"]
    name = env["name"]
    record = EnvironmentRecord(
        name,
        env["inputs"],
        [cache.problem_from(p) for p in env["problems"]],
        None if env["found"] is None else [cache.problem_from(p) for p in env["found"]],
    )
    units = {
        u["name"]: UnitRecord(
            name,
            u["name"],
            u["release"],
            u["base"],
            u["inputs"],
            [cache.problem_from(p) for p in u["problems"]],
            [_unresource(root, r) for r in u["resources"]],
            [
                Verdict(Status(status), tuple(cache.problem_from(p) for p in problems))
                for status, problems in u["verdicts"]
            ],
            u["ignore"],
            u["provenance"],
            u["final"],
        )
        for u in data["units"]
    }
    return Stored(record, units)


def _file(root: Path, environment: str) -> Path:
    place = hashlib.sha256(f"{os.path.realpath(root)}\0{environment}".encode()).hexdigest()
    return cache.folder() / f"units-{place[:24]}.json"


def read(root: Path, global_key: str, environment: str) -> Stored | None:
    try:
        return load(root, global_key, _file(root, environment).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a record that cannot be read only costs time


def write(root: Path, global_key: str, stored: Stored) -> None:
    target = _file(root, stored.environment.name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with temporary.open("w", encoding="utf-8") as file:
            file.writelines(dump(global_key, stored))
        os.replace(temporary, target)
    except OSError:
        pass  # a cache that cannot be written only costs time


# Inputs -------------------------------------------------------------------------------------

# A new environment, or an environment's overlay folder that is gone or new, changes these:
# every environment's record is then made again (an orphaned overlay folder is reported by a
# run over all environments).
TOP_LISTINGS = (f"ls:{ENVIRONMENTS}", f"ls:{OVERLAYS}")


def environment_inputs(digests: Digests, environment: str, units: Iterable[str]) -> dict[str, str]:
    """What an environment's own record depends on: its environment file, which release
    files it has, its overlay folder's own entries and files, and the folders there that are
    no unit's (a removed service's overlay, reported stale)."""
    overlay = f"{OVERLAYS}/{environment}"
    names = [
        *TOP_LISTINGS,
        f"{ENVIRONMENTS}/{environment}/{ENVIRONMENT_FILE}",
        f"ls:{ENVIRONMENTS}/{environment}",
        f"ls:{overlay}",
    ]
    try:
        entries = list(os.scandir(digests.root / overlay))
    except OSError:
        entries = []
    names += [
        f"{overlay}/{e.name}/" if e.is_dir(follow_symlinks=False) else f"{overlay}/{e.name}"
        for e in entries
        if e.name not in units or not e.is_dir(follow_symlinks=False)
    ]
    return digests.inputs(names)


def unit_inputs(
    digests: Digests, resolver: Resolver, unit: Unit, base: str | None
) -> dict[str, str]:
    """What a unit's record depends on (see the module's docstring)."""
    env = unit.environment.environment.name
    trees = [unit.folder]
    names = [f"{ENVIRONMENTS}/{env}/{ENVIRONMENT_FILE}", f"{unit.folder}/"]
    if unit.release is not None:
        names.append(unit.release.path)
    if base is not None:
        trees.append(base)
        names.append(f"{base}/")
    folders, files = resolver.reached(digests.root / unit.folder)
    names += [f"{f}/" for f in folders if not _within(f, trees)]
    names += [f for f in files if not _within(f, trees)]
    return digests.inputs(names)


def _within(path: str, trees: Iterable[str]) -> bool:
    return any(path == tree or path.startswith(f"{tree}/") for tree in trees)


def base_folder(root: Path, release: Release | None) -> str | None:
    """The release's base as a repository path, when it is a folder of the repository."""
    if release is None:
        return None
    base = os.path.normpath(release.base)
    if base.startswith(("..", "/")) or not (root / base).is_dir():
        return None
    return base.replace(os.sep, "/")


@dataclass
class Kept:
    """What of an environment an earlier run left that still holds."""

    environment: EnvironmentRecord
    units: dict[str, UnitRecord]  # by unit name
    dropped: set[str]  # the units whose records no longer hold


class Store:
    """The records of a repository's units under one key of shared settings."""

    def __init__(self, root: Path, key: str, digests: Digests) -> None:
        self.root = root
        self.key = key
        self.digests = digests

    def kept(self, environments: Iterable[str], baseline: Baseline | None) -> dict[str, Kept]:
        """For each environment whose own inputs are as recorded, the units whose inputs
        are too and that the baseline does not touch (what a change since it does is
        judged afresh: weight steps, policies' oldObject)."""
        found: dict[str, Kept] = {}
        for env in environments:
            stored = read(self.root, self.key, env)
            if stored is None or not self.digests.unchanged(stored.environment.inputs):
                continue
            units = {
                name: unit
                for name, unit in stored.units.items()
                if unit.final
                and self.digests.unchanged(unit.inputs)
                and not _touched(unit, baseline)
            }
            found[env] = Kept(stored.environment, units, set(stored.units) - set(units))
        return found

    def save(self, stored: Iterable[Stored]) -> None:
        for each in stored:
            write(self.root, self.key, each)


def _touched(unit: UnitRecord, baseline: Baseline | None) -> bool:
    if baseline is None:
        return False
    folder = f"{OVERLAYS}/{unit.environment}/{unit.name}"
    folders = (folder, unit.base) if unit.base else (folder,)
    return baseline.touches(*folders) or (
        unit.release is not None and unit.release in baseline.changed
    )
