"""A person at a terminal: a progress bar on stderr for long runs, colours as asked, --quiet.

A real pseudo-terminal for stderr (and stdout where it matters), the real program.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import on_a_terminal

SCRIPT = Path(sys.executable).with_name("meshcanary")


def _on_a_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; returns exit code, stdout, what the terminal got."""
    return on_a_terminal(*args, terminal="stderr", env=env)


def test_a_check_at_a_terminal_shows_its_progress(example_repo: Path) -> None:
    code, out, terminal = _on_a_terminal("--repo", str(example_repo), "check", "--no-cache")
    assert code == 0, terminal
    assert "kustomize build" in terminal
    # One environment at a time: its 3 overlays (gateways and 2 services), the bar's count.
    assert "/3" in terminal
    assert out == ""


def test_no_progress_when_stderr_is_not_a_terminal(example_repo: Path) -> None:
    done = subprocess.run(
        [SCRIPT, "--repo", str(example_repo), "check", "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stderr == ""


def test_quiet_shows_no_progress_and_no_notes(example_repo: Path) -> None:
    code, _, terminal = _on_a_terminal("--repo", str(example_repo), "--quiet", "render")
    assert code == 0
    assert terminal == ""
    code, _, terminal = _on_a_terminal("--repo", str(example_repo), "render")
    assert "rendered 4 environment(s): no file(s) changed" in terminal


def _latest(repo: Path) -> None:
    release = repo / "environments/prod/micro-api.yaml"
    release.write_text(release.read_text().replace("micro-api:1.3", "micro-api:latest"))


def test_no_color_and_force_color(example_repo: Path) -> None:
    """The text report is coloured on a terminal; NO_COLOR turns it off, FORCE_COLOR on when
    piped."""
    _latest(example_repo)
    assert (
        subprocess.run(
            [SCRIPT, "--repo", str(example_repo), "render"], capture_output=True, check=False
        ).returncode
        == 0
    )
    args = [str(SCRIPT), "--repo", str(example_repo), "check", "--no-cache"]
    piped = subprocess.run(args, capture_output=True, text=True, check=False)
    assert "warning" in piped.stdout and "\x1b[" not in piped.stdout
    forced = subprocess.run(
        args, capture_output=True, text=True, check=False, env={**os.environ, "FORCE_COLOR": "1"}
    )
    assert "\x1b[1;33mwarning\x1b[0m" in forced.stdout
    both = subprocess.run(
        args,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "FORCE_COLOR": "1", "NO_COLOR": "1"},
    )
    assert "\x1b[" not in both.stdout
