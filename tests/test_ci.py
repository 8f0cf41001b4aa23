"""CI runs the README's test command, as a new user types it, in a fresh clone.

`.ci/run` clones HEAD into an empty temporary folder and ends with exactly the second command
of the README's first block; it makes its own virtual environment and installs the project
with its test extras, so CI needs nothing set up beforehand. Before that it installs Debian's
prometheus with apt when it is missing (the metric tests fail in CI without it); that step runs
here with stand-ins for apt-get, sudo and id on an otherwise empty PATH.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block is not None, "the README starts with a sh block of commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readmes_test_command_in_a_fresh_clone() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line for line in script.splitlines() if line.strip() and not line.startswith("#")]
    _, test_command = _readme_commands()
    assert lines[-1] == test_command
    assert "pytest" in test_command and "python3 -m venv .venv" in test_command
    assert "pip install" in test_command and "'.[test]'" in test_command
    # A clone of HEAD in a new temporary folder: nothing beside it, nothing uncommitted.
    assert 'tmp="$(mktemp -d)"' in script
    assert re.search(r"git clone .*\"\$checkout\" \"\$tmp/meshcanary\"", script)
    assert 'cd "$tmp/meshcanary"' in script


def _apt_step() -> str:
    """The script's lines from the check for prometheus to the `fi` that ends it."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("if ! command -v prometheus"))
    last = next(i for i in range(first, len(lines)) if lines[i] == "fi")
    return "\n".join(lines[first : last + 1])


def _stand_in(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run_apt_step(tmp_path: Path, *, uid: int, stale: bool, installed: bool = False) -> list[str]:
    """What the step ran, in order: `sudo`, and apt-get's arguments with DEBIAN_FRONTEND."""
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    for tool in ("env", "sh", "cat", "touch"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    _stand_in(bin_dir, "id", f"echo {uid}")
    _stand_in(bin_dir, "sudo", f'echo sudo >> {log}; exec "$@"')
    # An install fails until an update has run, when the package lists are stale.
    updated = tmp_path / "updated"
    _stand_in(
        bin_dir,
        "apt-get",
        f'echo "$DEBIAN_FRONTEND $*" >> {log}\n'
        f'if [ "$1" = update ]; then touch {updated}; exit 0; fi\n'
        f"{'[ -e ' + str(updated) + ' ]' if stale else 'true'}",
    )
    if installed:
        for tool in ("prometheus", "promtool"):
            _stand_in(bin_dir, tool, "exit 0")
    bash = shutil.which("bash") or "bash"
    done = subprocess.run(
        [bash, "-c", f"set -euo pipefail\n{_apt_step()}"],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


INSTALL = "noninteractive install -y --no-install-recommends prometheus"


@pytest.mark.parametrize(
    ("uid", "stale", "ran"),
    [
        (1000, False, ["sudo", INSTALL]),
        (1000, True, ["sudo", INSTALL, "sudo", " update", "sudo", INSTALL]),
        (0, True, [INSTALL, " update", INSTALL]),
    ],
)
def test_ci_installs_prometheus_with_apt_when_it_is_missing(
    tmp_path: Path, uid: int, stale: bool, ran: list[str]
) -> None:
    assert _run_apt_step(tmp_path, uid=uid, stale=stale) == ran


def test_ci_installs_nothing_when_prometheus_is_there(tmp_path: Path) -> None:
    assert _run_apt_step(tmp_path, uid=1000, stale=False, installed=True) == []


def test_the_apt_step_comes_before_the_tests() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert script.index(_apt_step()) < script.index("python3 -m venv")
