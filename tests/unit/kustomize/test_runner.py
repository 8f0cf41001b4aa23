"""Which kustomize runs: `--kustomize PATH`, else a kustomize on PATH, else `kubectl kustomize`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from meshcanary.kustomize import FLAGS, _command


def _wrapper(folder: Path, name: str, log: Path) -> Path:
    """A program called `name` that notes its call, then runs the real `kubectl kustomize`."""
    kubectl = _command(None)[0]
    script = folder / name
    script.write_text(
        f'#!/bin/sh\necho "$0 $*" >> {log}\nshift\nexec {kubectl} kustomize "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def _build(
    repo: Path, *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshcanary", *options, "--repo", str(repo), "build", "prod"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )


def test_kustomize_option_chooses_the_program(example_repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    chosen = _wrapper(tmp_path, "my-kustomize", log)
    done = _build(example_repo, "--kustomize", str(chosen))
    assert done.returncode == 0, done.stderr
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls and all(c.startswith(f"{chosen} build {' '.join(FLAGS)} ") for c in calls)


def test_kustomize_from_the_environment_and_a_kubectl(example_repo: Path, tmp_path: Path) -> None:
    """A program named kubectl… is run as `kubectl kustomize`."""
    log = tmp_path / "calls.log"
    chosen = _wrapper(tmp_path, "kubectl-1.37", log)
    env = {**os.environ, "MESHCANARY_KUSTOMIZE": str(chosen)}
    done = _build(example_repo, env=env)
    assert done.returncode == 0, done.stderr
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls and all(c.startswith(f"{chosen} kustomize {' '.join(FLAGS)} ") for c in calls)


def test_a_kustomize_on_path_wins_over_the_bundled_kubectl(
    example_repo: Path, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    _wrapper(tmp_path, "kustomize", log)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = _build(example_repo, env=env)
    assert done.returncode == 0, done.stderr
    assert log.read_text(encoding="utf-8").startswith(f"{tmp_path / 'kustomize'} build ")


def test_a_kustomize_that_is_not_a_program_is_one_error_line(example_repo: Path) -> None:
    done = _build(example_repo, "--kustomize", "/nonexistent/kustomize")
    assert done.returncode == 2
    assert done.stderr == "error: --kustomize /nonexistent/kustomize: not an executable program\n"
