"""Monorepos and subfolders: where the repository is, which paths are in it, how they are shown.

The repository (environments/ and deploy/) is platform/releases/ of a larger git work tree;
a person runs meshcanary from a folder inside it, pre-commit from the work tree's top, and
GitHub places annotations by paths from the top.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meshcanary.__main__ import hoisted
from meshcanary.workspace import Workspace, find_root
from tests.support import ROOT, commit_all

RELEASES = "platform/releases"
RELEASE = "environments/prod/micro-api.yaml"
VIRTUALSERVICE = "deploy/overlays/prod/micro-api/virtualservice.yaml"


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """A git work tree whose platform/releases/ is a copy of the examples; its top returned."""
    top = tmp_path / "monorepo"
    releases = top / RELEASES
    releases.mkdir(parents=True)
    shutil.copytree(ROOT / "environments", releases / "environments")
    shutil.copytree(ROOT / "deploy", releases / "deploy")
    (top / "services" / "web").mkdir(parents=True)
    (top / "services" / "web" / "main.py").write_text("print('hi')\n", encoding="utf-8")
    return commit_all(top)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshcanary", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _break_weights(releases: Path) -> None:
    """Move the weights without rendering: the committed VirtualService is stale, a finding."""
    path = releases / RELEASE
    text = (
        path.read_text().replace("weight: 30}", "weight: 40}").replace("weight: 70}", "weight: 60}")
    )
    path.write_text(text, encoding="utf-8")


# --- Finding the repository -------------------------------------------------------------


def test_the_repository_is_found_upward_from_a_subfolder(monorepo: Path) -> None:
    releases = monorepo / RELEASES
    for start in (releases, releases / "environments" / "prod", releases / "deploy" / "base"):
        assert find_root(start) == releases.resolve()


def test_no_repository_above_the_work_tree_is_taken(monorepo: Path) -> None:
    """Not above the git top: a folder of the work tree with no repository is its own."""
    (monorepo.parent / "environments").mkdir()
    web = monorepo / "services" / "web"
    assert find_root(web) == web.resolve()


def test_check_runs_from_a_subfolder(monorepo: Path) -> None:
    """Before, `cd environments/prod && meshcanary check` looked for environments/ there."""
    releases = monorepo / RELEASES
    _break_weights(releases)
    done = _run("check", "--no-cache", cwd=releases / "environments" / "prod")
    assert done.returncode == 1, done.stderr
    assert f"{RELEASES}/{VIRTUALSERVICE}:" in done.stdout
    assert "[render-fresh]" in done.stdout


# --- -C after the command ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["check", "-C", "x"], ["-C", "x", "check"]),
        (["check", "--repo", "x", "a.yaml"], ["--repo", "x", "check", "a.yaml"]),
        (["check", "--repo=x"], ["--repo=x", "check"]),
        (["--timeout", "5", "check", "-Cx"], ["--timeout", "5", "-Cx", "check"]),
        (["-C", "y", "check"], ["-C", "y", "check"]),
        (["check", "--", "-C", "x"], ["check", "--", "-C", "x"]),
        (["policy", "test", "-C", "x"], ["-C", "x", "policy", "test"]),
        (["--version"], ["--version"]),
        ([], []),
    ],
)
def test_the_repository_option_is_moved_before_the_command(given, expected) -> None:
    assert hoisted(given) == expected


def test_repo_after_the_command_works_end_to_end(monorepo: Path) -> None:
    """A hook's `args: [-C, platform/releases]` come after the command."""
    _break_weights(monorepo / RELEASES)
    done = _run("check", "--no-cache", "-C", RELEASES, cwd=monorepo)
    assert done.returncode == 1, done.stderr
    assert f"{RELEASES}/{VIRTUALSERVICE}:" in done.stdout


# --- Paths given to check ---------------------------------------------------------------


def test_paths_as_pre_commit_passes_them_map_into_the_repository(monorepo: Path) -> None:
    workspace = Workspace.at(monorepo / RELEASES, cwd=monorepo)
    assert workspace.inside(f"{RELEASES}/{RELEASE}") == RELEASE  # from the top
    assert workspace.inside(RELEASE) == RELEASE  # as `--repo DIR check PATH` always took it
    assert workspace.inside(str(monorepo / RELEASES / RELEASE)) == RELEASE  # absolute
    assert workspace.inside("services/web/main.py") is None
    inner = Workspace.at(monorepo / RELEASES, cwd=monorepo / RELEASES / "environments" / "prod")
    assert inner.inside("micro-api.yaml") == RELEASE  # from the current folder
    # A deleted file names nothing; it still maps, the way it reads from the top.
    assert workspace.inside(f"{RELEASES}/environments/prod/gone.yaml") == (
        "environments/prod/gone.yaml"
    )


def test_a_path_outside_the_repository_is_named_and_exit_2(monorepo: Path) -> None:
    """Before, the path was taken relative to the repository and silently checked nothing."""
    done = _run("check", "-C", RELEASES, "services/web/main.py", cwd=monorepo)
    assert done.returncode == 2
    assert done.stderr.startswith("services/web/main.py:1:1: error: is outside the repository"), (
        done.stderr
    )


# --- Paths in reports ---------------------------------------------------------------------


def test_annotations_from_a_subfolder_name_files_from_the_top(monorepo: Path) -> None:
    _break_weights(monorepo / RELEASES)
    env = {**os.environ, "GITHUB_ACTIONS": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "meshcanary", "check", "--no-cache", "--format", "github"],
        cwd=monorepo / RELEASES,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error ")]
    assert errors
    assert all(f"file={RELEASES}/" in line for line in errors), errors


@pytest.mark.parametrize("output", ["json", "sarif", "junit"])
def test_every_format_names_files_from_the_top(monorepo: Path, output: str) -> None:
    _break_weights(monorepo / RELEASES)
    done = _run("check", "--no-cache", "--format", output, cwd=monorepo / RELEASES)
    assert done.returncode == 1, done.stderr
    if output == "json":
        files = {finding["file"] for finding in json.loads(done.stdout)["findings"]}
    elif output == "sarif":
        runs = json.loads(done.stdout)["runs"]
        files = {
            location["physicalLocation"]["artifactLocation"]["uri"]
            for result in runs[0]["results"]
            for location in result["locations"]
        }
    else:
        from xml.etree import ElementTree

        suites = ElementTree.fromstring(done.stdout).iter("testsuite")  # noqa: S314 - our own output
        files = {suite.get("name") or "" for suite in suites}
    assert files and all(f.startswith(f"{RELEASES}/") for f in files), files


def test_bad_input_is_shown_from_the_top_too(monorepo: Path) -> None:
    release = monorepo / RELEASES / RELEASE
    release.write_text(release.read_text() + "wieght: 3\n", encoding="utf-8")
    done = _run("render", cwd=monorepo / RELEASES / "environments")
    assert done.returncode == 2
    assert done.stderr.startswith(f"{RELEASES}/{RELEASE}:"), done.stderr


def test_lint_from_a_subfolder_names_files_from_the_top(monorepo: Path) -> None:
    folder = monorepo / RELEASES / "deploy" / "base" / "micro-api"
    text = (folder / "deployment.yaml").read_text(encoding="utf-8")
    (folder / "latest.yaml").write_text(
        text.replace("micro-api:1.0\n", "micro-api:latest\n"), encoding="utf-8"
    )
    done = _run("lint", "--format", "json", "latest.yaml", cwd=folder)
    files = {finding["file"] for finding in json.loads(done.stdout)["findings"]}
    assert files == {f"{RELEASES}/deploy/base/micro-api/latest.yaml"}, done.stdout
