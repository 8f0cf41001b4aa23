"""The installed `meshcanary` script, run as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from meshcanary import __version__
from tests.support import ROOT


def _script() -> str:
    beside = Path(sys.executable).parent / "meshcanary"
    found = str(beside) if beside.exists() else shutil.which("meshcanary")
    assert found, "the meshcanary console script is not installed"
    return found


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_script(), *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_version_and_help() -> None:
    done = _run("--version")
    assert (done.returncode, done.stdout) == (0, f"meshcanary {__version__}\n")
    done = _run("--help")
    assert done.returncode == 0
    for command in ("render", "build", "status"):
        assert command in done.stdout


def test_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meshcanary", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout == f"meshcanary {__version__}\n"


def test_unknown_command_and_option_are_usage_errors() -> None:
    assert _run("rendr").returncode == 2
    assert _run("render", "--frobnicate").returncode == 2


def test_main_job_renders_and_builds_the_examples(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "environments", repo / "environments")
    shutil.copytree(ROOT / "deploy" / "base", repo / "deploy" / "base")
    done = _run("render", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "rendered 4 environment(s)" in done.stderr
    done = _run("--repo", repo, "build")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "micro-api" in line]
    assert len(rows) == 4
    assert any("70/30" in row and "v1×3 v2×3" in row for row in rows)
    assert _run("--repo", repo, "render", "--check").returncode == 0


def test_build_reports_a_broken_overlay(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "environments", repo / "environments")
    shutil.copytree(ROOT / "deploy", repo / "deploy")
    (repo / "deploy/base/micro-api/service.yaml").unlink()
    done = _run("--repo", repo, "build", "prod")
    assert done.returncode == 2
    # Found before kustomize runs, at the line that names the missing file.
    assert done.stderr.startswith(
        'deploy/base/micro-api/kustomization.yaml:7:5: error: resources entry "service.yaml" '
        "names no file or folder\n"
    ), done.stderr
    assert "Traceback" not in done.stderr


def test_missing_repo_directory_is_exit_2(tmp_path: Path) -> None:
    done = _run("--repo", tmp_path / "nope", "render")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
