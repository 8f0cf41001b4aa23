"""A render on bad input: the release every case starts from, the cases, and their checks.

`run_bad` runs the CLI on a repository a case has broken and checks exit 2, no stdout and
nothing written; `parse_errors` reads stderr as `file:line:col: error:` lines and hints, and
`assert_reported` finds an expected problem among them. Used by the corpora of bad, hostile
and fuzzed input.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import write

PROD = "environments/prod"
RELEASE_PATH = f"{PROD}/micro-api.yaml"
ENVIRONMENT_PATH = f"{PROD}/environment.yaml"

# The valid release every case starts from. Line numbers, for working out positions:
#  1 service   2 base   3 hosts   4 gateways   5 versions
#  6 v1:   7 image   8 replicas   9 weight
# 10 v2:  11 image  12 replicas  13 weight
RELEASE = """\
service: micro-api
base: deploy/base/micro-api
hosts: [micro-api.default.svc.cluster.local]
gateways: [micro-gateway, mesh]
versions:
  v1:
    image: registry.example/micro-api:1.1
    replicas: 3
    weight: 70
  v2:
    image: registry.example/micro-api:1.3
    replicas: 3
    weight: 30
"""

ENVIRONMENT = """\
namespace: default
gateways:
  micro-gateway:
    selector: {istio: ingressgateway}
    servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: [api.example.com]
policy:
  maxStep: 25
"""

LOCATED = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): error: (?P<message>.+)$")
HINT = re.compile(r"^  hint: (?P<hint>.+)$")


def edit(old: str, new: str, text: str = RELEASE) -> str:
    """`text` with the one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def insert_after(line: int, new: str, text: str = RELEASE) -> str:
    """`text` with the lines `new` inserted after line number `line` (1-based)."""
    lines = text.splitlines(keepends=True)
    return "".join([*lines[:line], new, *lines[line:]])


# ---------------------------------------------------------------------------------------
# Reading the output


@dataclass(frozen=True)
class Reported:
    file: str
    line: int
    column: int
    message: str
    hint: str | None


def parse_errors(err: str) -> list[Reported]:
    """The problems in `err`; fails on any line that is neither a located error nor a hint."""
    found: list[Reported] = []
    for text in err.splitlines():
        located = LOCATED.match(text)
        hint = HINT.match(text)
        if located:
            found.append(
                Reported(
                    located["file"],
                    int(located["line"]),
                    int(located["col"]),
                    located["message"],
                    None,
                )
            )
        elif hint and found and found[-1].hint is None:
            last = found[-1]
            found[-1] = Reported(last.file, last.line, last.column, last.message, hint["hint"])
        else:
            pytest.fail(f"stderr line is not `file:line:col: error: ...` nor a hint: {text!r}")
    return found


# ---------------------------------------------------------------------------------------
# Nothing written


def snapshot(top: Path) -> dict[str, object]:
    """Every file, folder and symlink under `top`: relative path -> bytes / link target."""
    tree: dict[str, object] = {}
    for folder, dirs, files in os.walk(top, followlinks=False):
        here = Path(folder)
        for name in dirs + files:
            path = here / name
            key = path.relative_to(top).as_posix()
            if path.is_symlink():
                tree[key] = ("symlink", os.readlink(path))
            elif path.is_dir():
                tree[key] = "dir"
            elif not path.is_file():  # a FIFO or a device: reading it would wait or never end
                tree[key] = ("special", path.lstat().st_mode)
            else:
                tree[key] = path.read_bytes()
    return tree


def assert_unchanged(before: dict[str, object], after: dict[str, object]) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), (
        f"render wrote to disk: added {added}, removed {removed}, changed {changed}"
    )


# ---------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class Expect:
    file: str
    line: int
    column: int
    message: str  # a distinctive part of the message
    hint: str | None = None  # a distinctive part of the hint, when one is expected


@dataclass(frozen=True)
class Case:
    id: str
    expect: tuple[Expect, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)  # "{outside}" is substituted
    setup: Callable[[Path], None] | None = None
    args: tuple[str, ...] = ("render",)


def at(line: int, column: int, message: str, hint: str | None = None, file: str = RELEASE_PATH):
    return Expect(file, line, column, message, hint)


def release(text: str | bytes) -> dict[str, str | bytes]:
    return {RELEASE_PATH: text}


def outside_base(repo: Path) -> Path:
    """A complete Kustomize base beside the repository, so only its place is wrong."""
    target = repo.parent / "elsewhere"
    if not target.exists():
        shutil.copytree(repo / "deploy" / "base" / "micro-api", target)
    return target


def run_bad(cli, repo: Path, *args: str):
    """Run the CLI on a bad repository; check exit 2, no stdout, nothing written."""
    top = repo.parent  # the repository and anything beside it (../elsewhere)
    before = snapshot(top)
    try:
        outcome = cli("--repo", repo, *args)
    except Exception as exc:  # a traceback is a bug, whatever the input
        pytest.fail(f"meshcanary raised {type(exc).__name__}: {exc}")
    assert "Traceback" not in outcome.err
    assert outcome.code == 2, f"exit {outcome.code}, stderr:\n{outcome.err}"
    assert outcome.out == ""
    assert_unchanged(before, snapshot(top))
    return parse_errors(outcome.err), outcome.err


def assert_reported(found: list[Reported], expect: Expect, err: str) -> None:
    place = (expect.file, expect.line, expect.column)
    here = [r for r in found if (r.file, r.line, r.column) == place]
    assert here, f"nothing reported at {':'.join(map(str, place))}; stderr:\n{err}"
    matching = [r for r in here if expect.message in r.message]
    assert matching, f"no message with {expect.message!r} at that place; stderr:\n{err}"
    if expect.hint is not None:
        assert any(r.hint and expect.hint in r.hint for r in matching), (
            f"no hint with {expect.hint!r}; stderr:\n{err}"
        )


def set_up(repo: Path, case: Case) -> None:
    """Break `repo` as `case` says: its set-up, then its files ("{outside}" substituted)."""
    if case.setup:
        case.setup(repo)
    outside = str(repo.parent / "elsewhere")
    for relative, content in case.files.items():
        path = repo / relative
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            write(path, content.replace("{outside}", outside))


def assert_only_expected(found: list[Reported], case: Case, err: str) -> None:
    """Each of `case`'s problems is reported, repository-relative, and nothing else."""
    for expect in case.expect:
        assert_reported(found, expect, err)
    for reported in found:
        assert not Path(reported.file).is_absolute(), reported
        assert reported.line >= 1 and reported.column >= 1, reported
    assert len(found) == len(case.expect), f"unexpected extra problems:\n{err}"
