"""The rules shared out between processes (`lint --jobs`) find what one process finds.

The resources are many apps in one namespace with findings of several rules (wrong target
ports, mutable tags, versions scaled to zero, missing subsets and hosts, hosts in a namespace
the input does not hold), and the repository's own manifests.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import pytest

from meshcanary import rules
from meshcanary.errors import MeshcanaryError
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope, reference_not_checked
from tests.support import DATA, ROOT
from tests.support.bounds import count_calls, hang_guard

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the rules fork on Linux only")

APP = """apiVersion: v1
kind: Service
metadata: {{name: app-{n}, namespace: shop}}
spec:
  selector: {{app: app-{n}}}
  ports: [{{name: http, port: 80, targetPort: {target}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{n}-v1, namespace: shop}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: app-{n}, version: v1}}}}
  template:
    metadata: {{labels: {{app: app-{n}, version: v1}}}}
    spec:
      containers:
      - {{name: app, image: "registry.example/app:{tag}", ports: [{{containerPort: 8080}}]}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: app-{n}, namespace: shop}}
spec:
  host: app-{n}
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: app-{n}, namespace: shop}}
spec:
  hosts: [app-{n}]
  http:
  - route:
    - {{destination: {{host: app-{n}, subset: v1}}, weight: 90}}
    - {{destination: {{host: {other}, subset: v2}}, weight: 10}}
"""


def _apps(apps: int) -> list[Resource]:
    parsed = Parsed()
    text = "---\n".join(
        APP.format(
            n=n,
            target=9090 if n % 7 == 0 else 8080,
            replicas=0 if n % 5 == 0 else 2,
            tag="latest" if n % 11 == 0 else "1.0.0",
            other="missing" if n % 3 == 0 else "app-0.elsewhere" if n % 13 == 0 else f"app-{n}",
        )
        for n in range(apps)
    )
    parse_text(text, "apps.yaml", parsed)
    return parsed.resources


@functools.cache
def _repository() -> tuple[Resource, ...]:
    parsed = Parsed()
    paths = chain(DATA.rglob("*.yaml"), (ROOT / "examples").rglob("*.yaml"))
    for path in sorted(paths):
        parse_text(path.read_text(encoding="utf-8"), path.as_posix(), parsed)
    return tuple(parsed.resources)


def _resources(apps: int) -> list[Resource]:
    """Generated apps, then the repository's manifests."""
    return [*_apps(apps), *_repository()]


@pytest.fixture
def always_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes for any number of routes (the number they pay from is a tuning)."""
    monkeypatch.setattr(rules, "PARALLEL_MIN_ROUTES", 0)


@pytest.mark.usefixtures("always_shared")
@pytest.mark.parametrize("jobs", [2, 3])
def test_shared_rules_find_what_one_process_finds(jobs: int) -> None:
    resources = _resources(150)
    alone = rules.run(Scope(resources))
    shared = rules.run(Scope(resources), jobs=jobs)
    found = {p.rule for p in alone}
    for rule in (
        "service-target-port",
        "mutable-image-tag",
        "subset-exists",
        "weight-without-replicas",
        "destination-host-exists",
        "reference-not-checked",
    ):
        assert rule in found, rule
    assert shared == alone
    if jobs == 2:
        severities = {"mutable-image-tag": "off", "subset-exists": "info"}
        assert rules.run(Scope(resources), severities, jobs=jobs) == rules.run(
            Scope(resources), severities
        )


def test_few_routes_are_not_worth_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = _resources(3)
    routes = rules._routes(Scope(resources))
    assert 0 < routes < rules.PARALLEL_MIN_ROUTES
    forks = count_calls(monkeypatch, rules, "_findings_in_processes")
    assert rules.run(Scope(resources), jobs=2) == rules.run(Scope(resources))
    assert len(forks) == 0
    monkeypatch.setattr(rules, "PARALLEL_MIN_ROUTES", routes)
    assert rules.run(Scope(resources), jobs=2) == rules.run(Scope(resources))
    assert len(forks) == 1


def test_a_rule_runs_after_the_rules_whose_verdicts_it_reads() -> None:
    chosen = rules.all_rules()
    units = [[chosen[n].ID for n in unit] for unit in rules._units(chosen)]
    assert sorted(rule for unit in units for rule in unit) == sorted(r.ID for r in chosen)
    assert units[0][-1] == reference_not_checked.ID
    assert set(units[0][:-1]) == {judge.ID for judge in reference_not_checked.JUDGES}
    assert all(len(unit) == 1 for unit in units[1:])


class _DiesInAChild:
    """A rule that kills the process running it unless that is the test's own, which waits
    for the other to start it, so that the other is sure to claim one."""

    SEVERITY = Severity.ERROR
    SUMMARY = HINT = ""

    def __init__(self, name: str, started: Path) -> None:
        self.ID = name
        self.started = started

    def check(self, scope: Scope) -> Iterator[Finding]:
        if os.getpid() != PARENT:
            self.started.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        with hang_guard(30):
            while not self.started.exists():
                time.sleep(0.01)  # waiting for the other process, not timing it
        yield from ()


PARENT = os.getpid()


@pytest.mark.usefixtures("always_shared")
def test_a_killed_rules_process_is_an_error_not_fewer_findings(tmp_path: Path) -> None:
    started = tmp_path / "started"
    dying = [_DiesInAChild(f"dies-{n}", started) for n in range(2)]
    with pytest.raises(MeshcanaryError, match="process running the rules stopped"):
        rules.run(Scope(_apps(2)), rules=dying, jobs=2)
    assert started.exists()
