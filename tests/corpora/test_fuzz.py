"""Fuzzing the loaders and the renderer: every input renders or is refused with a location.

The property, for release files and environment files built by hypothesis (random text and
bytes, mutations of a valid release, and releases generated field by field): `render` either

- exits 2 with only `file:line:col: error:` lines (and hints), no traceback, nothing written;
- or exits 0, and then the rendered service overlay, built with the real kustomize, passes
  every built-in rule without an error-severity finding.

Two rules are left out, as `check`'s to report (exit 1) rather than render's to refuse:
`hosts-gateways-agree` and `weight-without-replicas` (see CHECKS_OWN). Example counts are small so this file runs in seconds;
`tests/conftest.py` makes the examples fixed when `CI` is set.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshcanary.kustomize import command as kustomize_command
from meshcanary.manifest import Parsed, parse_text
from meshcanary.problem import Severity
from meshcanary.rules import Scope, run
from tests.support import write
from tests.support.bad_input import (
    ENVIRONMENT,
    ENVIRONMENT_PATH,
    RELEASE,
    RELEASE_PATH,
    assert_unchanged,
    parse_errors,
    snapshot,
)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Characters that mean something to YAML, and some that break things in other ways.
YAML_ALPHABET = st.sampled_from(
    [*":-[]{},#&*!|>'\"%@` \t\n?~.0123456789aeiouvxyz", "\u00a0", "\ufeff", "\x00", "é"]
)


def render_prod(cli, repo: Path):
    """Render prod; check the outcome's shape. Returns (exit code, stderr)."""
    before = snapshot(repo)
    try:
        outcome = cli("--repo", repo, "render", "prod")
    except Exception as exc:  # a traceback is a bug, whatever the input
        pytest.fail(f"meshcanary raised {type(exc).__name__}: {exc}")
    assert "Traceback" not in outcome.err
    assert outcome.code in (0, 2), outcome.err
    if outcome.code == 2:
        assert outcome.out == ""
        found = parse_errors(outcome.err)  # fails on any line that is not located
        assert found, outcome.err
        for reported in found:
            assert not Path(reported.file).is_absolute(), reported
            assert reported.line >= 1 and reported.column >= 1, reported
        assert_unchanged(before, snapshot(repo))
    return outcome.code, outcome.err


def assert_passes_the_rules(repo: Path) -> None:
    """Build prod's overlay with kustomize; no built-in rule may find an error in it."""
    folder = repo / "deploy" / "overlays" / "prod"
    done = subprocess.run(
        [*kustomize_command(), str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    parsed = Parsed()
    parse_text(done.stdout, "deploy/overlays/prod", parsed)
    assert not parsed.problems, parsed.problems
    errors = [
        p
        for p in run(Scope(parsed.resources))
        if p.severity is Severity.ERROR and p.rule not in CHECKS_OWN
    ]
    assert not errors, "\n".join(p.format() for p in errors)


# Findings render leaves to `check` (exit 1), by design: a release whose hosts no bound Gateway
# exposes, and a version at weight > 0 scaled to zero replicas (the edit commands rely on
# check reporting that one, see test_edit_commands.py::test_a_failing_check_writes_nothing).
CHECKS_OWN = {"hosts-gateways-agree", "weight-without-replicas"}

# The starting release, with a host the Gateway it binds to exposes, so it passes the rules.
VALID = RELEASE.replace(
    "hosts: [micro-api.default.svc.cluster.local]",
    "hosts: [micro-api.default.svc.cluster.local, api.example.com]",
)


@pytest.fixture
def prod(example_repo: Path) -> Path:
    write(example_repo / ENVIRONMENT_PATH, ENVIRONMENT)
    write(example_repo / RELEASE_PATH, VALID)
    return example_repo


@FUZZ
@given(text=st.text(YAML_ALPHABET, max_size=200))
def test_any_text_as_a_release(cli, prod, text: str):
    write(prod / RELEASE_PATH, text)
    render_prod(cli, prod)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes_as_an_environment_file(cli, prod, raw: bytes):
    (prod / ENVIRONMENT_PATH).write_bytes(raw)
    render_prod(cli, prod)


@st.composite
def mutated(draw, text: str = VALID) -> str:
    """`text` with a few characters deleted, replaced or inserted, or a line repeated."""
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(0, len(text) - 1)))
        action = draw(st.sampled_from(["delete", "replace", "insert", "repeat-line"]))
        char = draw(YAML_ALPHABET)
        if action == "delete":
            text = text[:where] + text[where + 1 :]
        elif action == "replace":
            text = text[:where] + char + text[where + 1 :]
        elif action == "insert":
            text = text[:where] + char + text[where:]
        else:
            lines = text.splitlines(keepends=True) or [""]
            index = where % len(lines)
            text = "".join([*lines[: index + 1], lines[index], *lines[index + 1 :]])
    return text


@settings(FUZZ, max_examples=25)
@given(text=mutated())
def test_a_mutated_release(cli, prod, text: str):
    write(prod / RELEASE_PATH, text)
    code, _err = render_prod(cli, prod)
    if code == 0:
        assert_passes_the_rules(prod)


@FUZZ
@given(text=mutated(ENVIRONMENT))
def test_a_mutated_environment_file(cli, prod, text: str):
    write(prod / ENVIRONMENT_PATH, text)
    render_prod(cli, prod)


NAMES = st.sampled_from(["v1", "v2", "v3", "canary", "V2", "v_2", "-v", "a" * 64, "yes", "on"])
SCALARS = st.one_of(
    st.integers(-5, 120),
    st.sampled_from(["30%", "1e400", ".nan", ".inf", "yes", "no", "~", "'3'", "3.0", "0x1E"]),
)
IMAGES = st.sampled_from(
    [
        "registry.example/micro-api:1.1",
        "registry.example/micro-api:1.3",
        "registry.example/micro-api@sha256:" + "a" * 64,
        "registry.example/micro-api",
        "registry.example/micro-api:",
        "UPPER/case:1",
    ]
)


@st.composite
def releases(draw) -> str:
    """A release written field by field: often valid, often wrong in one way or another."""
    names = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):  # weights that sum to 100, the usual case
        cuts = sorted(
            draw(st.lists(st.integers(0, 100), min_size=len(names) - 1, max_size=len(names) - 1))
        )
        weights: list[object] = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    else:
        weights = [draw(SCALARS) for _ in names]
    lines = ["service: micro-api", "base: deploy/base/micro-api", "gateways: [mesh]", "versions:"]
    for name, weight in zip(names, weights, strict=True):
        replicas = draw(st.one_of(st.integers(0, 5), SCALARS))
        lines += [
            f"  {name}:",
            f"    image: {draw(IMAGES)}",
            f"    replicas: {replicas}",
            f"    weight: {weight}",
        ]
    if draw(st.booleans()):
        lines.append(f"rollout: {{maxSurge: {draw(SCALARS)}, minReadySeconds: {draw(SCALARS)}}}")
    if draw(st.booleans()):
        lines.append(f"mirror: {{version: {draw(NAMES)}, percent: {draw(SCALARS)}}}")
    if draw(st.booleans()):
        lines.append(f"timeout: {draw(st.sampled_from(['5s', '1m', '0s', 'soon', '30']))}")
    if draw(st.booleans()):
        lines.append(f"canary: {{steps: [{', '.join(str(draw(SCALARS)) for _ in range(3))}]}}")
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=20)
@given(text=releases())
def test_a_generated_release(cli, prod, text: str):
    write(prod / RELEASE_PATH, text)
    code, _err = render_prod(cli, prod)
    if code == 0:
        assert_passes_the_rules(prod)
