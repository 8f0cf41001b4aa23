"""How `check` scales: shards of a CI matrix and the narrow check a hook runs (check/scope.py).

The repository here is the benchmark's generator at a small size (tens of services in two
environments), with problems planted in several services so that every shard has something
to find: a run split into shards must find exactly what one run finds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshcanary.check import CheckOptions, check
from meshcanary.check.scope import Shard, narrowed, sharded
from tests.support import ROOT
from tests.support.builds import recorded_builds


def _generate(root: Path, services: int, environments: int) -> None:
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "bench" / "benchmark.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(root, services, environments)


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 services in 2 environments, rendered, with findings planted in five places."""
    root = tmp_path_factory.mktemp("monorepo")
    _generate(root, 24, 2)
    # A base every environment uses: a targetPort no container has.
    service = root / "deploy/base/svc-0003/service.yaml"
    service.write_text(service.read_text().replace("targetPort: http", "targetPort: web"))
    # A mutable tag, in one environment only.
    release = root / "environments/env-1/svc-0007.yaml"
    release.write_text(release.read_text().replace("svc-0007:1.1.0", "svc-0007:latest"))
    # A Service port name that does not say its protocol.
    service = root / "deploy/base/svc-0011/service.yaml"
    service.write_text(service.read_text().replace("{name: http, port: 80", "{name: web, port: 80"))
    env = os.environ | {"MESHCANARY_CACHE_DIR": str(root / ".cache")}
    subprocess.run(
        [str(Path(sys.executable).parent / "meshcanary"), "--repo", root, "render"],
        check=True,
        capture_output=True,
        env=env,
    )
    # Generated files edited afterwards: stale in one service, and in the environment's own file.
    routes = root / "deploy/overlays/env-0/svc-0016/virtualservice.yaml"
    routes.write_text(routes.read_text().replace("weight: 90", "weight: 85"))
    listing = root / "deploy/overlays/env-1/kustomization.yaml"
    listing.write_text(listing.read_text() + "# edited\n")
    return root


def _run(repo: Path, shard: Shard | None = None) -> tuple[set[Any], list[Any]]:
    """The findings of one run, and the objects it checked."""
    report = check(repo, [], CheckOptions(cache=False, shard=shard))
    findings = {(p.location, p.rule, p.message) for p in report.problems}
    return findings, [(r.file, r.resource) for r in report.results]


@pytest.mark.slow
@pytest.mark.parametrize("count", [2, 3, 5])
def test_shards_together_find_exactly_what_one_run_finds(monorepo: Path, count: int) -> None:
    everything, resources = _run(monorepo)
    rules = {f[1] for f in everything}
    assert rules >= {
        "service-target-port",
        "mutable-image-tag",
        "port-name-protocol",
        "render-fresh",
    }
    found: set[tuple[Any, ...]] = set()
    checked: list[tuple[Any, ...]] = []
    for index in range(1, count + 1):
        part, part_resources = _run(monorepo, Shard(index, count))
        found |= part
        checked += part_resources
    assert found == everything
    # Each object is checked by exactly one shard.
    assert sorted(checked) == sorted(resources)


def test_every_shard_has_work_and_a_service_keeps_its_shard(monorepo: Path) -> None:
    shards = [Shard(i, 3) for i in (1, 2, 3)]
    names = [f"svc-{i:04d}" for i in range(24)]
    owners = {name: [s.index for s in shards if s.owns(name)] for name in names}
    assert all(len(found) == 1 for found in owners.values())
    assert {found[0] for found in owners.values()} == {1, 2, 3}
    scope = sharded(monorepo, {}, shards[0])
    mine = {n for n, found in owners.items() if found == [1]}
    for env, services in scope.items():
        # The environment's owner loads it whole; the others only their own services.
        assert services is None if shards[0].owns_environment(env) else services == mine


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0"])
def test_a_bad_shard_is_a_usage_error(example_repo: Path, cli, text: str) -> None:
    outcome = cli("--repo", example_repo, "check", "--shard", text)
    assert outcome.code == 2
    assert "--shard" in outcome.err and "expected K/N" in outcome.err
    assert "Traceback" not in outcome.err


def test_a_hook_loads_and_builds_only_the_services_it_names(
    monorepo: Path, cli, monkeypatch
) -> None:
    built = recorded_builds(monkeypatch)
    assert narrowed(
        monorepo,
        [
            "environments/env-0/svc-0016.yaml",
            "deploy/overlays/env-0/svc-0016/v1/kustomization.yaml",
        ],
    ) == {"env-0": {"svc-0016"}}
    outcome = cli(
        "--repo", monorepo, "check", "--format", "json", "environments/env-0/svc-0016.yaml"
    )
    assert built == ["deploy/overlays/env-0/svc-0016"]
    findings = json.loads(outcome.out)["findings"]
    # Its own stale file is found; the other services' findings are not its business. The
    # weights of the hand-edited VirtualService are the release file's to say.
    assert {(f["file"], f["rule"]) for f in findings} == {
        ("deploy/overlays/env-0/svc-0016/virtualservice.yaml", "render-fresh"),
        ("environments/env-0/svc-0016.yaml", "weights-sum-100"),
    }


@pytest.mark.parametrize(
    ("paths", "scope"),
    [
        (["environments/env-0/svc-0001.yaml"], {"env-0": {"svc-0001"}}),
        (
            ["environments/env-0/svc-0001.yaml", "environments/env-1/svc-0002.yaml"],
            {"env-0": {"svc-0001"}, "env-1": {"svc-0002"}},
        ),
        # The environment file, an environment-level generated file, or a release file that
        # is gone: the whole environment.
        (["environments/env-0/environment.yaml"], {"env-0": None}),
        (["deploy/overlays/env-1/kustomization.yaml"], {"env-1": None}),
        (["environments/env-0/svc-9999.yaml"], {"env-0": None}),
        (
            ["environments/env-0/svc-0001.yaml", "environments/env-0/environment.yaml"],
            {"env-0": None},
        ),
        # A base, or anything else: everything.
        (["deploy/base/svc-0001/service.yaml"], {}),
        (["README.md", "environments/env-0/svc-0001.yaml"], {}),
    ],
)
def test_what_changed_paths_narrow_a_check_to(
    monorepo: Path, paths: list[str], scope: dict[str, Any]
) -> None:
    assert narrowed(monorepo, paths) == scope


@pytest.mark.parametrize("path", ["../outside.yaml", "/etc/passwd"])
def test_a_path_outside_the_repository_is_refused_not_ignored(
    example_repo: Path, cli, path: str
) -> None:
    outcome = cli("--repo", example_repo, "check", path, "environments/prod/micro-api.yaml")
    assert outcome.code == 2
    assert outcome.err.splitlines()[0] == f"{path}:1:1: error: is outside the repository"
