"""The README's metric-gated walk-through is real output: its commands run here, in order, on
a repository whose two environments are scenarios of tests/support/scenarios.py, against a real
Prometheus over their backfilled day, and each command's output must be the README's, byte for
byte.

The block is the `console` block after `<!-- analysis-demo -->` in README.md: `$ ` lines are
commands (meshcanary or git, run in the repository, with PROMETHEUS_URL set to the server's),
the lines after each are what it prints on stdout.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, git
from tests.support.canaries import commit_at, release_text
from tests.support.prometheus import Server
from tests.support.scenarios import BY_NAME, START, STEPS, step_start

MARKER = "<!-- analysis-demo -->"


def readme_block() -> tuple[list[str], list[str]]:
    """(commands, the output after each) of the README's walk-through."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(MARKER, 1)[1].split("```console\n", 1)[1].split("```\n", 1)[0]
    commands: list[str] = []
    outputs: list[str] = []
    for line in block.splitlines(keepends=True):
        if line.startswith("$ "):
            commands.append(line[2:].rstrip("\n"))
            outputs.append("")
        else:
            outputs[-1] += line
    return commands, outputs


def demo_repo(tmp_path: Path) -> Path:
    """Two environments: `healthy` at its first step (10%), and `errors-at-step-3` at its third
    (50%), their steps committed when the scenarios' series say they began; rendered, on main,
    pushed to a bare `origin`."""
    repo = tmp_path / "repo"
    import shutil

    shutil.copytree(ROOT / "deploy/base/micro-api", repo / "deploy/base/micro-api")
    git(repo, "init", "-q", "-b", "main")
    steps = ", ".join(map(str, STEPS))
    history = [(START, "healthy", 0), (START, "errors-at-step-3", 0)]
    history += [(step_start(1), "healthy", STEPS[0])]
    history += [(step_start(n), "errors-at-step-3", STEPS[n - 1]) for n in (1, 2, 3)]
    for when, name, weight in history:
        folder = repo / "environments" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "environment.yaml").write_text(
            f"namespace: {name}\ndefaults:\n  canary: {{steps: [{steps}]}}\n"
        )
        (folder / "micro-api.yaml").write_text(release_text(BY_NAME[name], weight))
        commit_at(repo, when, f"{name}: v2 to {weight}%")
    subprocess.run(
        [sys.executable, "-m", "meshcanary", "--repo", str(repo), "-q", "render"],
        check=True,
        capture_output=True,
    )
    commit_at(repo, step_start(3), "render")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return repo


def run(repo: Path, command: str, url: str) -> str:
    """One `$ ` line of the walk-through, run in `repo`; its stdout."""
    args = shlex.split(command)
    if args[0] == "meshcanary":
        args = [sys.executable, "-m", "meshcanary", *args[1:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or "CONFIG" in k}
    env["PROMETHEUS_URL"] = url
    done = subprocess.run(args, cwd=repo, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    return done.stdout


def transcript(repo: Path, url: str, commands: list[str]) -> str:
    """The walk-through as the README shows it, from running `commands`."""
    return "".join(f"$ {command}\n{run(repo, command, url)}" for command in commands)


def test_the_readmes_walk_through_is_what_the_commands_print(
    tmp_path: Path, prometheus: Server
) -> None:
    commands, outputs = readme_block()
    assert len(commands) >= 9  # four advances, their merges, a rollback, a replay
    repo = demo_repo(tmp_path)
    for command, expected in zip(commands, outputs, strict=True):
        assert run(repo, command, prometheus.url) == expected, command


def test_the_readmes_analysis_example_loads(tmp_path: Path) -> None:
    """The `canary:` YAML of the README's section is a valid release file's, as written."""
    from meshcanary.release import load

    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Metric-gated steps")[1]
    example = section.split("```yaml\n", 1)[1].split("```\n", 1)[0]
    repo = tmp_path / "repo"
    import shutil

    shutil.copytree(ROOT / "deploy/base/micro-api", repo / "deploy/base/micro-api")
    folder = repo / "environments/prod"
    folder.mkdir(parents=True)
    (folder / "environment.yaml").write_text("namespace: shop\n")
    (folder / "micro-api.yaml").write_text(release_text(BY_NAME["healthy"], 10) + example)
    (release,) = load.load(repo, ["prod"])[0].releases
    assert release.analysis is not None and release.analysis.written
    names = [check.name for check in release.analysis.checks]
    assert names == ["success-rate", "latency-p99", "errors-vs-stable", "queue-depth"]
    query = release.analysis.checks[3].query
    assert query is not None and "{{ workloads }}" in query
