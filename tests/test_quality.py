"""Lint, format and type checks run with the tests, so the one test command covers them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_ruff_lint_is_clean() -> None:
    done = subprocess.run(
        [_tool("ruff"), "check", "gen", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = subprocess.run(
        [_tool("ruff"), "format", "--check", "gen", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_is_clean_on_the_source() -> None:
    done = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# The reference folder beside the repository on the machine it was first written on, named in
# two pieces so that this file does not name it.
_BESIDE = ("../" + "shared", 'parent / "' + 'shared"')


def test_nothing_reads_beside_the_repository() -> None:
    """A clone is the whole project: no source, test, benchmark, workflow, CI script or README
    line reaches for the reference folder beside the repository (tests read tests/data/ and
    examples/, copied in with their SOURCE.md)."""
    places = ["gen", "tests", "bench", ".github/workflows", ".ci"]
    files = [ROOT / "README.md"]
    files += [path for place in places for path in sorted((ROOT / place).rglob("*"))]
    found = []
    for path in files:
        if "__pycache__" in path.parts or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(beside in line for beside in _BESIDE):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
