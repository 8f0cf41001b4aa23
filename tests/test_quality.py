"""Lint, format and type checks run with the tests, so the one test command covers them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


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


def _forbidden(module: str) -> bool:
    """Whether importing `module` reaches into a test file or into conftest's fixtures."""
    last = module.rpartition(".")[2]
    return module.startswith("tests.") and (last == "conftest" or last.startswith("test_"))


def _imports_of_tests(text: str, path: Path) -> list[str]:
    """`file:line: module` for each import of a test file or of conftest in `text` (`path`'s)."""
    found = []
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package the file is in, or one above it
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            modules = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [f"{path.relative_to(ROOT)}:{node.lineno}: {m}" for m in modules if _forbidden(m)]
    return found


def test_no_test_file_imports_another_or_conftest() -> None:
    """Helpers live in tests/support (fixtures in conftest.py, which pytest hands over): a test
    file that imports another runs its tests twice and ties the two files together."""
    files = [p for p in sorted((ROOT / "tests").rglob("*.py")) if "data" not in p.parts]
    assert len(files) > 40  # the walk found the suite
    found = [i for path in files for i in _imports_of_tests(path.read_text("utf-8"), path)]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "from tests.conftest import ROOT",
        "from tests.unit.gitops.test_gitops import git",
        "import tests.corpora.test_bad_input",
        "from tests.unit.gitops import test_gitops",
        "from .test_gitops import git",
        "from . import conftest",
        "from .. import conftest",
    ],
)
def test_an_import_of_a_test_file_or_conftest_is_caught(source: str) -> None:
    path = ROOT / "tests" / "unit" / "gitops" / "test_new.py"
    [found] = _imports_of_tests(source, path)
    assert found.startswith("tests/unit/gitops/test_new.py:1: "), found
    assert _imports_of_tests("from tests.support.gitops import git", path) == []
