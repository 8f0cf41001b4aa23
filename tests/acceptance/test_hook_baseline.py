"""A hook's check asks git only about the folders of the services its paths name, and still
sees every change since the base that those services are built from: their release files,
their overlays and their bases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import commit_all, isolate_git, write

# No Service's port moves in one change: a policy that reads oldObject.
STABLE_PORT = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: stable-port
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["*"]
        resources: [services]
        operations: [UPDATE]
  validations:
    - expression: object.spec.ports[0].port == oldObject.spec.ports[0].port
      message: a Service's port stays as it was
"""
RELEASE = "environments/prod/micro-api.yaml"


@pytest.fixture
def committed(
    example_repo: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    isolate_git(tmp_path_factory, monkeypatch)
    write(example_repo / "policies" / "stable-port.yaml", STABLE_PORT)
    return commit_all(example_repo)


def _found(cli, repo: Path, *paths: str) -> list[tuple[str, str, str]]:
    outcome = cli("--repo", repo, "check", "--format", "json", *paths)
    assert outcome.code in (0, 1), outcome.err
    findings = json.loads(outcome.out)["findings"]
    return [(f["rule"], f["file"], f["message"]) for f in findings]


def test_a_base_changed_since_the_commit_is_built_as_it_was(committed: Path, cli) -> None:
    service = committed / "deploy/base/micro-api/service.yaml"
    service.write_text(service.read_text().replace("port: 19090", "port: 19091"))
    # The base is not among the paths: the release file that names it is.
    moved = [f for f in _found(cli, committed, RELEASE) if f[0].startswith("stable-port/")]
    assert moved == [
        ("stable-port/0", "deploy/base/micro-api/service.yaml", "a Service's port stays as it was")
    ]


def test_a_release_file_changed_since_the_commit_is_compared(committed: Path, cli) -> None:
    release = committed / RELEASE
    text = release.read_text()
    release.write_text(
        text.replace("weight: 70}", "weight: 40}").replace("weight: 30}", "weight: 60}")
    )
    assert cli("--repo", committed, "-q", "render", "prod").code == 0
    hook = _found(cli, committed, RELEASE, "deploy/overlays/prod/micro-api/virtualservice.yaml")
    steps = [f for f in hook if f[0] == "weight-step"]
    assert [message.split(" since")[0] for _, _, message in steps] == ["v2 moves from 30% to 60%"]
    # What the hook finds on its service is what a check of everything finds on it.
    everything = _found(cli, committed)
    assert [f for f in everything if f[1] == RELEASE] == [f for f in hook if f[1] == RELEASE]


@pytest.fixture
def git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where each git command meshcanary runs is written down: by a script in front of the
    real git."""
    log = tmp_path / "git.log"
    logging = write(tmp_path / "git", f'#!/bin/sh\necho "$*" >> {log}\nexec git "$@"\n')
    logging.chmod(0o755)
    monkeypatch.setenv("GIT_PYTHON_GIT_EXECUTABLE", str(logging))
    return log


def _walks(log: Path) -> list[list[str]]:
    """The arguments of each git command that walked the work tree."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split() for line in lines if " diff " in line or " ls-files " in line]


def test_git_walks_only_the_folders_of_the_services_named(
    committed: Path, cli, git_log: Path
) -> None:
    release = committed / RELEASE
    text = release.read_text()
    release.write_text(
        text.replace("weight: 70}", "weight: 60}").replace("weight: 30}", "weight: 40}")
    )
    _found(cli, committed, RELEASE)
    walks = _walks(git_log)
    assert len(walks) == 2
    for words in walks:
        limited = words[words.index("--") + 1 :]
        assert sorted(limited) == [
            "deploy/base/micro-api",
            "deploy/overlays/prod/_gateways",
            "deploy/overlays/prod/micro-api",
            RELEASE,
        ]


def test_a_report_from_the_cache_walks_no_work_tree(committed: Path, cli, git_log: Path) -> None:
    first = _found(cli, committed)
    assert len(_walks(git_log)) == 2  # the whole tree, once
    git_log.unlink()
    assert _found(cli, committed) == first
    assert _walks(git_log) == []
