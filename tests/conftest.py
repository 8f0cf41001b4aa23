"""Shared fixtures: throwaway repositories made from the bundled examples, a CLI runner, and a
real Prometheus over the canary scenarios' metrics.

Plain helpers (the repository's folders, git, kustomize, a terminal) are in `tests/support`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from meshcanary.__main__ import main
from tests.support import ROOT, Outcome
from tests.support import prometheus as prometheus_server
from tests.support.scenarios import END, START, all_workloads

# No example has a deadline: hypothesis's default (200 ms an example) is a wall-clock assertion,
# which a busy machine fails. In CI the property tests replay the same examples every run, so
# a landing never depends on luck; local runs keep exploring new ones (and the database keeps
# what they find).
settings.register_profile("local", deadline=None)
settings.register_profile("ci", settings.get_profile("local"), derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "local")


@pytest.fixture(autouse=True, scope="session")
def _temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The temporary folder of the code under test, and of the programs it starts, is the
    session's own, which pytest removes with its old runs. Without git a repository's lock
    file lives in the temporary folder: one per test repository had piled up in /tmp by the
    tens of thousands."""
    folder = tmp_path_factory.mktemp("tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(folder))
        patch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
        yield


@pytest.fixture(autouse=True)
def _cache_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep `check`'s report cache out of the home folder; each test gets its own."""
    monkeypatch.setenv("MESHCANARY_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Run `meshcanary ARGS...` in-process; returns exit code, stdout and stderr."""

    def run(*args: str | Path) -> Outcome:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A copy of this repository's environments/ and deploy/ (bases and rendered overlays)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(ROOT / "environments", repo / "environments")
    shutil.copytree(ROOT / "deploy", repo / "deploy")
    return repo


@pytest.fixture
def empty_repo(tmp_path: Path) -> Path:
    """Bases only: deploy/base/ of the examples and one environment with no releases yet."""
    repo = tmp_path / "repo"
    (repo / "environments" / "prod").mkdir(parents=True)
    shutil.copytree(ROOT / "deploy" / "base", repo / "deploy" / "base")
    (repo / "environments" / "prod" / "environment.yaml").write_text(
        "namespace: shop\n"
        "gateways:\n"
        "  public:\n"
        "    selector: {istio: ingressgateway}\n"
        "    servers:\n"
        "      - port: {number: 80, name: http, protocol: HTTP}\n"
        "        hosts: [shop.example.com]\n",
        encoding="utf-8",
    )
    return repo


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prometheus_server.Server]:
    """A real prometheus over every scenario of `tests/support/scenarios.py`, backfilled into a
    TSDB of this test process's own. Skips without prometheus or promtool; fails in CI."""
    prometheus_server.require_tools()
    tsdb = tmp_path_factory.mktemp("tsdb")
    prometheus_server.backfill_workloads(all_workloads(), START, END, tsdb)
    server = prometheus_server.start(tsdb, tmp_path_factory.mktemp("prometheus"))
    try:
        yield server
    finally:
        server.stop()
