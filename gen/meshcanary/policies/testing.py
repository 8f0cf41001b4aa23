"""Policy tests: fixture folders of resources that must pass or fail (layout in the package doc)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from meshcanary.manifest import Parsed, parse_text
from meshcanary.policies.policy import PolicySet, key_of, load

PREVIOUS_SUFFIX = ".previous.yaml"
_EXPECT = re.compile(r"^#\s*expect:\s*(.+?)\s*$", re.MULTILINE)
_EXPECT_LINE = re.compile(r"^#\s*expect-line:\s*(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class TestCase:
    """One fixture file run against one policy."""

    __test__ = False  # not a pytest class

    policy: str
    expect: str  # "pass" or "fail"
    file: str
    ok: bool
    detail: str = ""

    def format(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.policy} {self.expect} {self.file}" + (
            f": {self.detail}" if self.detail else ""
        )


@dataclass(frozen=True)
class TestReport:
    """Every case of a policy test run, in folder order."""

    __test__ = False

    cases: tuple[TestCase, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cases)

    @property
    def failed(self) -> tuple[TestCase, ...]:
        return tuple(c for c in self.cases if not c.ok)

    def format(self) -> str:
        lines = [c.format() for c in self.cases]
        lines.append(f"{len(self.cases) - len(self.failed)} passed, {len(self.failed)} failed")
        return "\n".join(lines)


def _read(path: Path, root: Path) -> Parsed:
    parsed = Parsed()
    parse_text(path.read_text(encoding="utf-8"), _shown(path, root), parsed)
    return parsed


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _case(policies: PolicySet, name: str, expect: str, path: Path, root: Path) -> TestCase:
    shown = _shown(path, root)
    if not policies.policies:
        return TestCase(name, expect, shown, False, f"no policy named {name}")
    parsed = _read(path, root)
    if parsed.problems:
        return TestCase(name, expect, shown, False, parsed.problems[0].format())
    old_path = path.with_name(path.name.removesuffix(".yaml") + PREVIOUS_SUFFIX)
    previous = (
        {key_of(r): r.data for r in _read(old_path, root).resources} if old_path.is_file() else {}
    )
    found = policies.evaluate(parsed.resources, previous)
    if expect == "pass":
        if found:
            return TestCase(name, expect, shown, False, "; ".join(p.format() for p in found))
        return TestCase(name, expect, shown, True)
    if not found:
        return TestCase(name, expect, shown, False, "the policy found nothing")
    text = path.read_text(encoding="utf-8")
    for wanted in _EXPECT.findall(text):
        if not any(wanted in p.message for p in found):
            got = "; ".join(p.message for p in found)
            return TestCase(name, expect, shown, False, f"no finding says {wanted!r} (got: {got})")
    for line in _EXPECT_LINE.findall(text):
        if not any(p.location.line == int(line) for p in found):
            got = ", ".join(str(p.location) for p in found)
            return TestCase(name, expect, shown, False, f"no finding on line {line} (got: {got})")
    return TestCase(name, expect, shown, True)


def run_tests(folder: Path, root: Path | None = None) -> TestReport:
    """Run the fixtures under `folder/tests` (or `folder` itself when it is the tests folder)."""
    root = root if root is not None else Path.cwd()
    tests = folder / "tests"
    if not tests.is_dir() and folder.name == "tests":
        folder, tests = folder.parent, folder
    policies = load([folder], root)
    cases: list[TestCase] = []
    for policy_folder in sorted(p for p in tests.iterdir() if p.is_dir()) if tests.is_dir() else []:
        narrowed = policies.only(policy_folder.name)
        for expect in ("pass", "fail"):
            for path in sorted((policy_folder / expect).glob("*.yaml")):
                if path.name.endswith(PREVIOUS_SUFFIX):
                    continue
                cases.append(_case(narrowed, policy_folder.name, expect, path, root))
    return TestReport(tuple(cases))
