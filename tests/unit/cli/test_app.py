"""The app a run gets: only the command it names, and the same output as the whole app."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from meshcanary.cli import app as cli
from meshcanary.cli.app import app, for_args


def _names(args: list[str]) -> list[str]:
    chosen = for_args(args)
    return [c.name or c.callback.__name__ for c in chosen.registered_commands if c.callback] + [
        g.name or "" for g in chosen.registered_groups
    ]


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["lint", "a.yaml"], "lint"),
        (["-C", "repo", "-q", "check", "--staged"], "check"),
        (["--repo=repo", "--timeout", "5", "set-weights", "prod"], "set-weights"),
        (["-Crepo", "--allow-remote", "--kustomize", "k", "rules"], "rules"),
        (["policy", "test"], "policy"),
    ],
)
def test_a_run_builds_only_its_command(args: list[str], command: str) -> None:
    assert _names(args) == [command]


@pytest.mark.parametrize(
    "args",
    [[], ["--help"], ["-C", "repo", "--help"], ["lnt"], ["-x", "lint"], ["--version"], ["-qV"]],
)
def test_anything_else_gets_the_whole_app(args: list[str]) -> None:
    assert for_args(args) is app


def test_completion_gets_the_whole_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_MESHCANARY_COMPLETE", "complete_bash")
    assert for_args(["lint"]) is app


@pytest.mark.parametrize(
    "args",
    [
        ["lint", "--help"],
        ["policy", "--help"],
        ["policy", "test", "--help"],
        ["set-weights", "--help"],
        ["lint", "--bogus"],
        ["lint", "--format", "yaml", "a.yaml"],
        ["check", "--jobs", "0"],
        ["rules", "no-such-rule", "extra"],
    ],
)
def test_the_output_is_the_whole_apps(args: list[str]) -> None:
    runner = CliRunner()
    whole = runner.invoke(app, args, prog_name="meshcanary")
    narrow = runner.invoke(for_args(args), args, prog_name="meshcanary")
    assert (narrow.exit_code, narrow.output) == (whole.exit_code, whole.output)


def test_the_options_before_a_command_are_the_programs() -> None:
    """What `for_args` skips to find the command is every option of the program's callback
    (but those that end the run before any command: help, version, completion)."""
    group = typer.main.get_command(app)
    flags = {d for p in group.params if getattr(p, "is_flag", False) for d in p.opts}
    values = {d for p in group.params for d in p.opts} - flags
    ending = {"--help", "--version", "-V", "--install-completion", "--show-completion"}
    assert (values, flags - ending) == (cli._VALUES, cli._FLAGS)
