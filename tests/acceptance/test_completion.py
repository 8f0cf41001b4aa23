"""Shell completion: the installed script completes commands and options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("meshcanary")


def _complete(words: str, shell: str = "bash") -> list[str]:
    env = {
        **os.environ,
        "_MESHCANARY_COMPLETE": f"complete_{shell}",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    done = subprocess.run(
        [SCRIPT], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_commands_complete() -> None:
    assert _complete("meshcanary ch") == ["check"]
    assert {"step", "status", "start", "set-weights"} <= set(_complete("meshcanary s"))


def test_options_complete() -> None:
    assert "--format" in _complete("meshcanary check --f")


def test_the_script_is_shown_for_bash() -> None:
    done = subprocess.run(
        [SCRIPT, "--show-completion", "bash"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "_MESHCANARY_COMPLETE=complete_bash" in done.stdout
