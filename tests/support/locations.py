"""Helpers of the finding-location tests: edit a copy of the examples, check it, and say
where a finding is expected (file, line, column)."""

from __future__ import annotations

import json
from pathlib import Path

RELEASE = "environments/prod/micro-api.yaml"
BASE = "deploy/base/micro-api"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def where(
    repo: Path, name: str, line_text: str, value: str | None = None, *, after: str = ""
) -> tuple[str, int, int]:
    """`name`, the first line holding `line_text` (below the line holding `after`), and the
    column where `value` (else the line's text) starts on it."""
    lines = (repo / name).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    number = next(i for i, line in enumerate(lines) if i >= start and line_text in line)
    column = lines[number].index(value if value is not None else line_text.lstrip()) + 1
    return name, number + 1, column


def render(repo: Path, cli) -> None:
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 0, outcome.err


def findings(repo: Path, cli, rule: str) -> list[dict]:
    outcome = cli("--repo", repo, "check", "--format", "json")
    assert outcome.code in (0, 1), outcome.err
    return [f for f in json.loads(outcome.out)["findings"] if f["rule"] == rule]


def places(found: list[dict]) -> set[tuple[str, int, int]]:
    return {(f["file"], f["line"], f["column"]) for f in found}
