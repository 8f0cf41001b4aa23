"""Every path a kustomization names, resolved before kustomize sees it.

kustomize follows whatever a kustomization names: folders anywhere on disk, files it fetches
over HTTP, and git repositories it clones by running git, where a `?ref=` that starts with
`--` becomes an option of `git fetch` (`--upload-pack=<command>` runs a command). A pull
request's author controls every kustomization in a repository, bases and committed overlays
alike, so before any build meshcanary reads each kustomization kustomize would read, from the
folder it builds down, and refuses at the entry's line:

- an entry kustomize would fetch (a URL, `github.com/...`, `git@...`, `file://...`), unless
  the run allows remote bases and the environment lists its https prefix (`Remotes`);
- a path that leaves the repository, read either way: with `..` taken lexically first, as
  Go's `filepath.Join` does, and with symbolic links followed first, as the system does;
- a FIFO, device or socket, which would hang or feed the build;
- what meshcanary could read differently from kustomize: a field name in another case (Go's
  JSON decoder matches `Resources`, and `re\u017fources` with a long s, to `resources`), an unknown field, a YAML
  merge key (go-yaml lets a later `<<` override, ruamel the other way round), helm charts,
  and plugin configurations other than kustomize's builtins.

A folder's verdict is cached, so a base that a thousand overlays include is read once.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshcanary.kustomize.kustomization import (
    KUSTOMIZATION_NAMES,
    kustomization_stat,
    merge_key,
    parse,
    read_text,
)
from meshcanary.kustomize.remote import NO_REMOTES, RemoteEntry, Remotes, looks_remote
from meshcanary.problem import Location, Problem

# The resolver's public face: callers need not know which module reads a kustomization.
__all__ = ["KUSTOMIZATION_NAMES", "Remotes", "Resolver", "looks_remote"]

# The fields of kustomize v5's Kustomization, spelt exactly; a field that names paths is
# listed with what it names.
_BASES = ("resources", "bases", "components")  # folders (or, for resources, files) or remotes
_FILES = ("crds", "configurations")  # files
_PLUGINS = ("generators", "transformers", "validators")  # plugin configurations or folders
_HELM = ("helmCharts", "helmGlobals", "helmChartInflationGenerator")
_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata",
        "openapi",
        "namePrefix",
        "nameSuffix",
        "namespace",
        "commonLabels",
        "labels",
        "commonAnnotations",
        "patchesStrategicMerge",
        "patchesJson6902",
        "patches",
        "images",
        "imageTags",
        "replacements",
        "replicas",
        "vars",
        "sortOptions",
        "configMapGenerator",
        "secretGenerator",
        "generatorOptions",
        "inventory",
        "buildMetadata",
        *_BASES,
        *_FILES,
        *_PLUGINS,
        *_HELM,
    }
)
# Items of list fields that hold a path, with every field kustomize knows for them.
_PATCH_FIELDS = frozenset({"path", "patch", "target", "options"})
_REPLACEMENT_FIELDS = frozenset({"path", "source", "targets"})
_GENERATOR_FIELDS = frozenset(
    {"name", "namespace", "behavior", "literals", "files", "envs", "env", "options", "type"}
)
# kustomize's builtin plugins (apiVersion: builtin); any other plugin needs plugins enabled,
# which meshcanary never does.
_BUILTIN_KINDS = frozenset(
    {
        "AnnotationsTransformer",
        "ConfigMapGenerator",
        "HashTransformer",
        "ImageTagTransformer",
        "LabelTransformer",
        "NamespaceTransformer",
        "PatchJson6902Transformer",
        "PatchStrategicMergeTransformer",
        "PatchTransformer",
        "PrefixSuffixTransformer",
        "PrefixTransformer",
        "ReplacementTransformer",
        "ReplicaCountTransformer",
        "SecretGenerator",
        "SortOrderTransformer",
        "SuffixTransformer",
        "ValueAddTransformer",
    }
)
# Fields of builtin plugin configurations that name files, folded as Go's JSON decoder does.
_CONFIG_PATH_FIELDS = {"path": "path", "paths": "paths", "files": "files", "envs": "envs"}
_CONFIG_PATH_FIELDS["env"] = "env"
_FIELD_SPECS = frozenset({"fieldspecs", "fieldspec"})

_REMOTE_HINT = (
    "copy the base into this repository; to fetch it, list its https prefix under "
    "remoteBases in the environment file and run with --allow-remote"
)
_OUTSIDE_HINT = "a kustomization may name only files and folders of this repository"


@dataclass
class _Verdict:
    """What reading one kustomization found: problems, remote entries, folders it includes."""

    signature: tuple[int, ...] | None = None  # the kustomization file's stat when read
    problems: list[Problem] = field(default_factory=list)
    remotes: list[RemoteEntry] = field(default_factory=list)
    # Folders it includes, and whether what they build is plugin configuration.
    folders: list[tuple[str, bool]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # real paths of the files it names


def _fold(name: str) -> str:
    # Go's encoding/json matches field names with Unicode simple folding: long s (U+017F) is
    # s, the Kelvin sign (U+212A) is k; casefold() agrees on both.
    return name.casefold()


class Resolver:
    """Reads kustomizations under one repository root; remembers each folder's verdict.

    Paths are strings inside: a check of a thousand overlays resolves tens of thousands.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._top = str(self.root)
        self._prefix = self._top.rstrip(os.sep) + os.sep
        # By (real folder, read as plugin configuration): what its kustomization holds.
        self._verdicts: dict[tuple[str, bool], _Verdict] = {}
        # Real paths already worked out: thousands of entries share their folders.
        self._reals: dict[str, str] = {}

    # Paths -------------------------------------------------------------------------------

    def shown(self, path: Path | str) -> str:
        text = str(path)
        return text[len(self._prefix) :] if text.startswith(self._prefix) else text

    def _inside(self, real: str) -> bool:
        return real == self._top or real.startswith(self._prefix)

    def real(self, path: str, depth: int = 0) -> str:
        """`os.path.realpath(path)` for an absolute path, remembering every folder on the way.

        Links are followed before `..` is applied, as the system does; a part that does not
        exist is kept as written, as realpath does.
        """
        found = self._reals.get(path)
        if found is not None:
            return found
        parent, name = os.path.split(path)
        if not name:  # the root, or a trailing slash
            return self.real(parent, depth) if parent != path else path
        above = self.real(parent, depth)
        if name == ".":
            real = above
        elif name == "..":
            real = os.path.dirname(above)
        else:
            candidate = os.path.join(above, name)
            try:
                is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            except OSError:
                is_link = False
            if not is_link:
                real = candidate
            elif depth > 40:
                raise OSError(f"too many levels of symbolic links at {candidate}")
            else:
                link = os.readlink(candidate)
                real = self.real(os.path.join(above, link), depth + 1)
        self._reals[path] = real
        return real

    def target(self, folder: str | Path, entry: str) -> tuple[str | None, str]:
        """Where `entry`, written in the kustomization of the real folder `folder`, leads.

        kustomize joins and cleans the path lexically (Go's `filepath.Join`), then follows
        symbolic links; the system follows links first and applies `..` after. Both readings
        must stay in the repository. Returns the real path, or None and why not.
        """
        if "\x00" in entry:
            return None, "is not a usable path: it holds a NUL character"
        if os.path.isabs(entry):
            return None, "is an absolute path; write it relative to the kustomization's folder"
        joined = os.path.join(folder, entry)
        lexical = os.path.normpath(joined)
        try:
            kustomize_reads = self.real(lexical)
            # Without a `..` the two readings are the same path.
            system_reads = self.real(joined) if ".." in entry else kustomize_reads
        except (OSError, ValueError) as exc:  # a link loop, a name too long
            return None, f"is not a usable path: {exc}"
        if not (self._inside(kustomize_reads) and self._inside(system_reads)):
            return None, "is outside the repository"
        return kustomize_reads, ""

    # Kustomizations ----------------------------------------------------------------------

    def check(self, folder: Path, remotes: Remotes = NO_REMOTES) -> list[Problem]:
        """Problems of the kustomization in `folder` and of everything it reaches.

        Remote entries are judged against `remotes`; everything else is the same for every
        caller and cached.
        """
        problems: list[Problem] = []
        for verdict in self._reach(folder):
            problems.extend(verdict.problems)
            for remote in verdict.remotes:
                reason = remotes.admits(remote.url)
                if reason:
                    problems.append(
                        Problem(
                            remote.location,
                            f"remote entry {json.dumps(remote.url)} is refused: {reason}",
                            _REMOTE_HINT,
                        )
                    )
        return sorted(dict.fromkeys(problems), key=Problem.sort_key)

    def remote_entries(self, folder: Path) -> list[RemoteEntry]:
        """The remote entries the folder's build would fetch (judged by `check`)."""
        return [remote for verdict in self._reach(folder) for remote in verdict.remotes]

    def reached(self, folder: Path) -> tuple[list[str], list[str]]:
        """The folders a build of `folder` reads kustomizations in, and the files they name,
        as repository paths: what a cached build of it depends on (see check/units.py)."""
        folders: list[str] = []
        files: list[str] = []
        for current, verdict in self._visit(folder):
            folders.append(self.shown(current))
            files.extend(self.shown(f) for f in verdict.files)
        return folders, files

    def _reach(self, folder: Path) -> Iterator[_Verdict]:
        for _, verdict in self._visit(folder):
            yield verdict

    def _visit(self, folder: Path) -> Iterator[tuple[str, _Verdict]]:
        start = self.real(os.path.abspath(folder))
        if not self._inside(start):
            outside = Problem(Location(str(folder)), "is outside the repository", _OUTSIDE_HINT)
            yield start, _Verdict(problems=[outside])
            return
        seen: set[tuple[str, bool]] = set()
        todo = [(start, False)]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            found = kustomization_stat(current[0])
            verdict = self._verdicts.get(current)
            if verdict is None or verdict.signature != (found and found[1]):
                verdict = self._verdicts[current] = self._read(*current, found)
            yield current[0], verdict
            todo.extend(reversed(verdict.folders))

    def _read(
        self, folder: str, configuration: bool, found: tuple[str, tuple[int, ...]] | None
    ) -> _Verdict:
        if found is None:
            # kustomize says so when it builds; nothing here to follow.
            return _Verdict(None)
        name, signature = found
        verdict = _Verdict(signature)
        display = self.shown(os.path.join(folder, name))
        others = [
            n for n in KUSTOMIZATION_NAMES if n != name and os.path.lexists(os.path.join(folder, n))
        ]
        if others:
            verdict.problems.append(
                Problem(
                    Location(display),
                    f"the folder holds {' and '.join([name, *others])}",
                    "keep one kustomization file per folder",
                )
            )
            return verdict
        real, reason = self.target(folder, name)
        if real is None:
            verdict.problems.append(Problem(Location(display), f"{name} {reason}", _OUTSIDE_HINT))
            return verdict
        text = read_text(real, display, verdict.problems)
        if text is None:
            return verdict
        merge = merge_key(text)
        if merge is not None:
            verdict.problems.append(
                Problem(
                    Location(display, *merge),
                    "a YAML merge key (<<) in a kustomization",
                    "kustomize and meshcanary would merge it differently; write the fields out",
                )
            )
            return verdict
        doc = parse(text, display, verdict.problems)
        if doc is not None:
            _Kustomization(self, folder, doc, verdict, text, configuration).read()
        return verdict


class _Kustomization:
    """The reading of one kustomization file into a `_Verdict`."""

    def __init__(
        self,
        resolver: Resolver,
        folder: str,
        doc: Any,
        verdict: _Verdict,
        text: str,
        configuration: bool = False,
    ) -> None:
        self.resolver = resolver
        self.folder = folder
        self.doc = doc
        self.verdict = verdict
        self.text = text
        # Built by a `generators`, `transformers` or `validators` entry: its resource files
        # are plugin configurations, and are read as such.
        self.configuration = configuration

    def problem(
        self, path: Sequence[str | int], message: str, hint: str = "", *, key: bool = False
    ) -> None:
        location = self.doc.location(list(path), key=key)
        self.verdict.problems.append(Problem(location, message, hint))

    def read(self) -> None:
        spec: dict[str, Any] = self.doc.data
        for name, value in spec.items():
            if name not in _FIELDS:
                known = next((f for f in sorted(_FIELDS) if _fold(f) == _fold(name)), None)
                self.problem(
                    [name],
                    f"kustomization field {json.dumps(name)} is "
                    + (f"spelt differently from {json.dumps(known)}" if known else "unknown"),
                    "kustomize's field names are case-sensitive for meshcanary; "
                    "write them as kustomize documents them",
                    key=True,
                )
                continue
            if value is None:
                continue
            if name in _HELM:
                self.problem(
                    [name],
                    f"{name}: helm charts are not built",
                    "meshcanary runs kustomize without helm; render the chart into files of "
                    "this repository",
                )
            elif name in _BASES:
                for index, entry in self.strings(name, value):
                    self.base(name, index, entry)
            elif name in _FILES:
                for index, entry in self.strings(name, value):
                    self.file([name, index], name, entry)
            elif name in _PLUGINS:
                for index, entry in self.strings(name, value):
                    self.plugin(name, index, entry)
            elif name == "patchesStrategicMerge":
                for index, entry in self.strings(name, value):
                    self.patch_or_inline([name, index], name, entry)
            elif name in ("patches", "patchesJson6902"):
                self.items(name, value, _PATCH_FIELDS, ("path",))
            elif name == "replacements":
                self.items(name, value, _REPLACEMENT_FIELDS, ("path",))
            elif name in ("configMapGenerator", "secretGenerator"):
                self.items(name, value, _GENERATOR_FIELDS, ("files", "envs", "env"))
            elif name == "openapi":
                if not isinstance(value, dict):
                    self.problem([name], "openapi must be a mapping")
                elif "path" in value:
                    self.file([name, "path"], "openapi path", value["path"])

    def strings(self, name: str, value: Any) -> Iterator[tuple[int, str]]:
        if not isinstance(value, list):
            self.problem([name], f"{name} must be a list of strings")
            return
        for index, entry in enumerate(value):
            if isinstance(entry, str):
                yield index, entry
            else:
                self.problem([name, index], f"{name} entry must be a string")

    def items(self, name: str, value: Any, fields: frozenset[str], paths: tuple[str, ...]) -> None:
        if not isinstance(value, list):
            self.problem([name], f"{name} must be a list")
            return
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue  # kustomize refuses it; it names no file
            for key in item:
                if key not in fields:
                    self.problem(
                        [name, index, key],
                        f"{name} field {json.dumps(key)} is unknown",
                        "kustomize's field names are case-sensitive for meshcanary",
                        key=True,
                    )
            for key in paths:
                if key not in item or item[key] is None:
                    continue
                entries = item[key] if isinstance(item[key], list) else [item[key]]
                where: list[str | int] = [name, index, key]
                for number, entry in enumerate(entries):
                    at = [*where, number] if isinstance(item[key], list) else where
                    if not isinstance(entry, str):
                        self.problem(at, f"{name} {key} entry must be a string")
                    elif key == "files":
                        # `key=path` or `path`: the file is after the first `=`.
                        self.file(at, f"{name} file", entry.partition("=")[2] or entry)
                    else:
                        self.file(at, f"{name} {key}", entry)

    def refuse_remote(self, path: Sequence[str | int], what: str, entry: str) -> bool:
        if not looks_remote(entry):
            return False
        self.problem(
            path,
            f"{what} entry {json.dumps(entry)} names something to fetch; only files of this "
            "repository are read here",
            "copy the file into this repository",
        )
        return True

    def resolve(
        self, path: Sequence[str | int], what: str, entry: str
    ) -> tuple[str, os.stat_result] | None:
        """The entry's real path and stat, contained and present; None after a problem."""
        real, reason = self.resolver.target(self.folder, entry)
        if real is None:
            self.problem(path, f"{what} entry {json.dumps(entry)} {reason}", _OUTSIDE_HINT)
            return None
        try:
            info = os.stat(real)
        except OSError:
            self.verdict.files.append(real)  # were it created, the build would read it
            dangling = os.path.islink(os.path.join(self.folder, entry))
            reason = "is a symbolic link to nothing" if dangling else "names no file or folder"
            self.problem(path, f"{what} entry {json.dumps(entry)} {reason}")
            return None
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
            self.problem(
                path,
                f"{what} entry {json.dumps(entry)} is {kind}, not a file or folder",
                "kustomize would wait on it for ever; name a regular file",
            )
            return None
        if stat.S_ISREG(info.st_mode):
            self.verdict.files.append(real)
        return real, info

    def base(self, name: str, index: int, entry: str) -> None:
        if looks_remote(entry):
            self.verdict.remotes.append(RemoteEntry(entry, self.doc.location([name, index])))
            return
        found = self.resolve([name, index], name, entry)
        if found is None:
            return
        real, info = found
        if stat.S_ISDIR(info.st_mode):
            self.verdict.folders.append((real, self.configuration))
        elif self.configuration and name == "resources":
            self.config_in_file(real, self.doc.location([name, index]))

    def file(self, path: Sequence[str | int], what: str, entry: Any) -> None:
        if not isinstance(entry, str):
            self.problem(path, f"{what} must be a string")
            return
        if self.refuse_remote(path, what, entry):
            return
        found = self.resolve(path, what, entry)
        if found is not None and not stat.S_ISREG(found[1].st_mode):
            self.problem(path, f"{what} entry {json.dumps(entry)} is a folder, not a file")

    def patch_or_inline(self, path: Sequence[str | int], what: str, entry: str) -> None:
        # kustomize loads the entry as a file (fetching an http or https URL), and reads it as
        # an inline patch only when that fails.
        if re.match(r"(?i)\s*https?:", entry):
            self.refuse_remote(path, what, entry)
        elif "\n" not in entry:
            joined = os.path.join(self.folder, entry)
            if os.path.lexists(joined) or os.path.lexists(os.path.normpath(joined)):
                self.file(path, what, entry)

    def plugin(self, name: str, index: int, entry: str) -> None:
        path: list[str | int] = [name, index]
        if "\n" in entry:
            self.config(entry, self.doc.location(path), None)
            return
        if self.refuse_remote(path, name, entry):
            return
        found = self.resolve(path, name, entry)
        if found is None:
            return
        real, info = found
        if stat.S_ISDIR(info.st_mode):
            # A kustomization whose output is plugin configuration.
            self.verdict.folders.append((real, True))
        else:
            self.config_in_file(real, self.doc.location(path))

    def config_in_file(self, real: str, at: Location) -> None:
        self.verdict.files.append(real)
        shown = self.resolver.shown(real)
        text = read_text(real, shown, self.verdict.problems)
        if text is not None:
            self.config(text, at, shown)

    def config(self, text: str, at: Location, display: str | None) -> None:
        """A plugin configuration, inline (`display` None) or in a file: builtins only."""
        from meshcanary.manifest import Parsed, parse_text

        parsed = Parsed()
        parse_text(text, display or at.file, parsed)
        if display is None:
            # An inline configuration (a block scalar) starts on the line after the entry's,
            # indented.
            lines = self.text.splitlines()
            first = lines[at.line] if at.line < len(lines) else ""
            indent = len(first) - len(first.lstrip(" "))

            def place(location: Location) -> Location:
                return Location(at.file, at.line + location.line, location.column + indent)
        else:

            def place(location: Location) -> Location:
                return location

        for problem in parsed.problems:
            self.verdict.problems.append(
                Problem(place(problem.location), problem.message, problem.hint)
            )
        merge = merge_key(text)
        if merge is not None:
            self.verdict.problems.append(
                Problem(
                    place(Location(at.file, *merge))
                    if display is None
                    else Location(display, *merge),
                    "a YAML merge key (<<) in a plugin configuration",
                    "kustomize and meshcanary would merge it differently; write the fields out",
                )
            )
            return
        for resource in parsed.resources:
            data = resource.data
            kind = str(data.get("kind", ""))
            if data.get("apiVersion") != "builtin" or kind not in _BUILTIN_KINDS:
                self.verdict.problems.append(
                    Problem(
                        place(resource.location([])),
                        f"plugin {json.dumps(kind)} ({data.get('apiVersion')}) is not one of "
                        "kustomize's builtins",
                        "meshcanary runs kustomize with plugins and functions disabled",
                    )
                )
                continue
            for json_path, key, value in _walk(data):
                wanted = _CONFIG_PATH_FIELDS.get(_fold(key))
                if wanted is None or _FIELD_SPECS & {_fold(str(p)) for p in json_path[:-1]}:
                    # A field spec's `path` names a field of the objects (metadata/labels).
                    continue
                where = place(resource.location(json_path, key=key != wanted))
                if key != wanted:
                    self.verdict.problems.append(
                        Problem(
                            where,
                            f"plugin field {json.dumps(key)} is spelt differently from "
                            f"{json.dumps(wanted)}",
                            "kustomize's field names are case-sensitive for meshcanary",
                        )
                    )
                    continue
                for entry in value if isinstance(value, list) else [value]:
                    self.config_file(where, f"{kind} {key}", entry, key)

    def config_file(self, where: Location, what: str, entry: Any, key: str) -> None:
        if not isinstance(entry, str):
            self.verdict.problems.append(Problem(where, f"{what} entry must be a string"))
            return
        if key == "files":
            entry = entry.partition("=")[2] or entry
        reason = ""
        if looks_remote(entry):
            reason = "names something to fetch; only files of this repository are read here"
        elif self.configuration and ".." in entry.split("/"):
            # Built from a folder, the configuration's paths could be read from that folder
            # or from the kustomization that names it: allow only what is below both.
            reason = "goes up with ..; a plugin configuration built from a folder may name only files below it"
        else:
            real, reason = self.resolver.target(self.folder, entry)
            if real is not None and not os.path.isfile(real):
                reason = "is not a file of this repository"
            elif real is not None:
                self.verdict.files.append(real)
        if reason:
            self.verdict.problems.append(
                Problem(where, f"{what} entry {json.dumps(entry)} {reason}", _OUTSIDE_HINT)
            )


def _walk(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[list[str | int], str, Any]]:
    """(path, key, value) of every mapping entry inside `value`, depth first."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [(path, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                yield [*where, key], str(key), item
                stack.append(((*where, key), item))
        elif isinstance(node, list):
            stack.extend(((*where, index), item) for index, item in enumerate(node))
