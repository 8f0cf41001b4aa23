"""Reading manifests given on the command line: files, folders, Kustomize folders and stdin.

Unreadable or unparseable input does not stop the reading: its problems are collected in
`Parsed.problems` beside the resources of every input that could be read, and `unreadable`
hands them on once each as rule `input`. `read_documents` reads and splits without parsing,
so that the documents can be parsed elsewhere (`lint --jobs`).
"""

from __future__ import annotations

import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from meshcanary.errors import InputError
from meshcanary.manifest import Document, Parsed, parse_documents, split_text
from meshcanary.problem import Location, Problem
from meshcanary.source import decode

SUFFIXES = (".yaml", ".yml", ".json")
INPUT = "input"  # the rule of a problem with the input itself (Problem's default)


def _display(path: Path) -> str:
    return path.as_posix()


@dataclass
class Read:
    """The inputs' documents, not yet parsed, with the problems of reading them, in order."""

    documents: list[Document | Problem] = field(default_factory=list)
    files: int = 0

    def add(self, text: str, file: str) -> None:
        self.documents += split_text(text, file)
        self.files += 1


def read_inputs(
    paths: Sequence[str], stdin: str | None = None, ignore: Sequence[str] = ()
) -> tuple[Parsed, bool]:
    """Parse every input; returns what was read and whether it came from standard input."""
    read, from_stdin = read_documents(paths, stdin, ignore)
    parsed = Parsed(files=read.files)
    parse_documents(read.documents, parsed)
    return parsed, from_stdin


def read_documents(
    paths: Sequence[str], stdin: str | None = None, ignore: Sequence[str] = ()
) -> tuple[Read, bool]:
    """Read every input and split it into documents; and whether it came from standard input."""
    read = Read()
    patterns = []
    for pattern in ignore:
        try:
            patterns.append(re.compile(pattern))
        except re.error as exc:
            raise InputError(f'--ignore-filename-pattern "{pattern}": {exc}') from None
    from_stdin = False
    if not paths:
        paths = ["-"]
    for given in paths:
        if given == "-":
            from_stdin = True
            if stdin is None and sys.stdin.isatty():
                raise InputError("no input: give files or folders, or pipe manifests to stdin")
            text = stdin if stdin is not None else sys.stdin.read()
            read.add(text, "stdin")
            continue
        path = Path(given)
        if path.is_dir():
            _read_folder(path, read, patterns)
        elif any(p.search(given) for p in patterns):
            continue
        elif path.is_file():
            _read_file(path, _display(path), read)
        else:
            read.documents.append(Problem(Location(given), _missing(path)))
    return read, from_stdin


def _missing(path: Path) -> str:
    """Why a path that is neither a file nor a folder cannot be read."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "is a symbolic link to nothing" if path.is_symlink() else "no such file or folder"
    except OSError as exc:  # a symbolic link loop, say
        return f"cannot read: {exc.strerror or exc}"
    # Reading a FIFO would wait for a writer forever.
    return "is a FIFO, not a file" if stat.S_ISFIFO(info.st_mode) else "is not a regular file"


def _read_file(path: Path, display: str, read: Read) -> None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        read.documents.append(Problem(Location(display), f"cannot read: {exc.strerror or exc}"))
        return
    try:
        text = decode(raw, display)
    except InputError as exc:
        read.documents.extend(exc.problems)
        return
    read.add(text, display)


def _repository(folder: Path) -> Path:
    """The repository a folder belongs to (the nearest one with .git), else the folder."""
    real = folder.resolve()
    return next((p for p in (real, *real.parents) if (p / ".git").exists()), real)


def _read_folder(folder: Path, read: Read, ignore: Sequence[re.Pattern[str]] = ()) -> None:
    # The kustomize runner is imported for a folder only: linting files never needs it.
    from meshcanary import kustomize
    from meshcanary.kustomize.contain import KUSTOMIZATION_NAMES

    if any((folder / name).is_file() for name in KUSTOMIZATION_NAMES):
        # Built only after every path it names is resolved inside its repository; nothing
        # remote is fetched for lint.
        target = kustomize.Target(folder, _display(folder))
        result = kustomize.builder(_repository(folder)).build(target)
        if result.problems:
            read.documents.extend(result.problems)
            return
        if not result.ok:
            read.documents.append(
                Problem(Location(_display(folder)), f"kustomize build failed: {result.error}")
            )
            return
        read.add(result.output, _display(folder))
        return
    for path in sorted(folder.rglob("*")):
        shown = _display(path)
        if path.is_file() and path.suffix in SUFFIXES and not any(p.search(shown) for p in ignore):
            _read_file(path, shown, read)


def unreadable(parsed: Parsed) -> list[Problem]:
    """The problems of input that could not be read or parsed, once each, as rule `input`."""
    # A base that two Kustomize folders share fails once for each: say it once.
    unique = dict.fromkeys(
        p if p.rule == INPUT else replace(p, rule=INPUT) for p in parsed.problems
    )
    return list(unique)
