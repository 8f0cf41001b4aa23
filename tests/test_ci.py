"""CI runs the README's test command, as a new user types it, in a fresh clone.

`.ci/run` clones HEAD into an empty temporary folder and ends with exactly the second command
of the README's first block; it makes its own virtual environment and installs the project
with its test extras, so CI needs nothing set up beforehand.
"""

from __future__ import annotations

import re

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
