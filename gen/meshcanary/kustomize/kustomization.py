"""Reading one kustomization file as kustomize's go-yaml reads it: its name, its stat (by
which a rewritten one is read again), its one mapping with positions, and any merge key."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.problem import Location, Problem

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def read_text(path: str, display: str, problems: list[Problem]) -> str | None:
    """A kustomization's or configuration's text; None after a problem (not a regular file,
    over the size limit, not UTF-8, unreadable)."""
    from meshcanary.source import read_text

    try:
        return read_text(Path(path), display)
    except InputError as exc:
        problems.extend(exc.problems)
        return None


def kustomization_stat(folder: str) -> tuple[str, tuple[int, ...]] | None:
    """The folder's kustomization file's name and stat, by which a rewritten one is read again.

    `lstat`, so a link or a FIFO is found here and reported when read.
    """
    for name in KUSTOMIZATION_NAMES:
        try:
            info = os.lstat(os.path.join(folder, name))
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            with contextlib.suppress(OSError):  # dangling: reading it says so
                info = os.stat(os.path.join(folder, name))
        return name, (info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    return None


@dataclass(frozen=True)
class Parsed:
    """A kustomization as kustomize reads it (YAML 1.1), and where its parts are written."""

    data: dict[str, Any]
    document: Any  # manifest.Document

    def location(self, path: list[str | int], *, key: bool = False) -> Location:
        return self.document.location(path, key=key)  # type: ignore[no-any-return]


def parse(text: str, display: str, problems: list[Problem]) -> Parsed | None:
    """The one mapping of a kustomization file, read as go-yaml reads it; None after a problem.

    YAML 1.1, as kustomize's go-yaml: a value kustomize reads as a string is a string here
    too. Bounded like any manifest (aliases, depth). One document: kustomize reads only the
    first, so a second would be a place to hide entries.
    """
    from meshcanary.manifest import (
        BadDocument,
        Document,
        load_document,
        split_documents,
        yaml_error,
    )
    from meshcanary.positions import at_mark, yaml_problem

    found: list[Parsed] = []
    for index, (piece, first_line) in enumerate(split_documents(text)):
        try:
            data = load_document(piece)
        except yaml_error() as exc:
            problems.append(yaml_problem(exc, display, piece, first_line))
            return None
        except BadDocument as exc:
            line, column = at_mark(exc.mark, first_line)
            problems.append(Problem(Location(display, line, column), exc.describe()))
            return None
        if data is None:
            continue
        document = Document(display, piece, first_line, index)
        if found:
            problems.append(
                Problem(
                    document.location([]),
                    "a second YAML document in a kustomization",
                    "kustomize reads only the first; remove the --- and what follows",
                )
            )
            return None
        if not isinstance(data, dict):
            problems.append(
                Problem(document.location([]), "a kustomization must be a mapping of fields")
            )
            return None
        found.append(Parsed(data, document))
    return found[0] if found else None


MERGE_TAG = "tag:yaml.org,2002:merge"


def merge_key(text: str) -> tuple[int, int] | None:
    """Line and column of the first YAML merge key in `text`, if it has one."""
    if "<<" not in text:
        return None
    import yaml

    from meshcanary.positions import at_mark

    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return None  # the parser reports it, with its place
    stack: list[Any] = [n for n in nodes if n is not None]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.tag == MERGE_TAG or (isinstance(key, yaml.ScalarNode) and key.value == "<<"):
                    return at_mark(key.start_mark)
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None
