"""What tests share besides fixtures: the repository's folders, git, kustomize, a terminal.

Fixtures are in `tests/conftest.py`; plain helpers are here, imported by test files (a test
file never imports another test file, nor `tests.conftest`: `tests/test_quality.py`).
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.kustomize import command as kustomize_command
from meshcanary.manifest import Loader as ManifestLoader

ROOT = Path(__file__).resolve().parents[2]
# Everything the tests read is inside the repository: a clone is the whole project
# (tests/test_quality.py fails when a test reaches beside it).
ARTICLE = ROOT / "examples" / "article"  # the article's manifests; as-published/ keeps its NBSPs
BOOKINFO = ROOT / "examples" / "bookinfo"  # Istio's Bookinfo sample, with its task routes
DATA = ROOT / "tests" / "data"  # a folder copied from elsewhere says where in its SOURCE.md
# The system's temporary folder, read before the suite points TMPDIR at its own (conftest).
SYSTEM_TMP = Path(tempfile.gettempdir())

GIT_NAME, GIT_EMAIL = "Mesh Canary Test", "test@meshcanary.invalid"


def isolate_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `GIT_*` variables and no one's own git configuration: a fixed identity, no signing."""
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    config = home / "gitconfig"
    config.write_text(
        f"[user]\n\tname = {GIT_NAME}\n\temail = {GIT_EMAIL}\n"
        "[init]\n\tdefaultBranch = main\n"
        "[commit]\n\tgpgsign = false\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo: Path, *args: str) -> str:
    """`git -C repo ARGS` with a fixed identity and none of the caller's `GIT_*` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    identity = ["-c", f"user.name={GIT_NAME}", "-c", f"user.email={GIT_EMAIL}"]
    identity += ["-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    done = subprocess.run(
        ["git", "-C", str(repo), *identity, *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return done.stdout


def commit_all(repo: Path, message: str = "start") -> Path:
    """Make `repo` a git repository whose one commit holds everything in it."""
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return repo


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON-like value, itself first: keys of mappings, indexes of lists."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += json_paths(item, (*prefix, index))
    return found


@dataclass
class Outcome:
    """What the `cli` fixture's run gives back."""

    code: int
    out: str
    err: str


def kustomize_build(folder: Path) -> list[dict[str, Any]]:
    """Build `folder` with the real kustomize and return its resources."""
    done = subprocess.run(
        [*kustomize_command(), str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    # meshcanary's own manifest loader: YAML 1.1 read the way Kubernetes reads it.
    return [d for d in yaml.load_all(done.stdout, Loader=ManifestLoader) if d]


def by_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == kind]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def on_a_terminal(
    *args: str | Path, terminal: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """The real program with `terminal` ("stdout" or "stderr") on a pseudo-terminal.

    Returns the exit code, what the other stream got (stdout piped, stderr dropped) and
    what the terminal got. COLUMNS is 100 unless `env` says otherwise.
    """
    leader, follower = pty.openpty()
    other = subprocess.PIPE if terminal == "stderr" else subprocess.DEVNULL
    process = subprocess.Popen(
        [Path(sys.executable).with_name("meshcanary"), *map(str, args)],
        stdout=follower if terminal == "stdout" else other,
        stderr=follower if terminal == "stderr" else other,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
    )
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    out = process.stdout.read().decode() if process.stdout else ""
    process.wait(timeout=60)
    os.close(leader)
    return process.returncode, out, seen.decode(errors="replace")
