"""The Typer app: options in, one call into the core, an exit code out.

Heavy modules are imported inside the commands so that `--help` and `--version` start fast.
The commands live in `tree` (render, status, build, diff), `check` (lint, check, rules, policy
test), `edit` (the six edits), `analysis` (analyze, advance) and `setup` (import, init); this
module makes the app, reads the options every command shares, and registers the commands in
the order `meshcanary --help` lists them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from meshcanary import __version__
from meshcanary.cli import analysis, check, coercion, edit, setup, tree
from meshcanary.cli.common import Settings, settle

coercion.install()

__all__ = ["Settings", "app", "for_args", "main"]

app = typer.Typer(
    name="meshcanary",
    help="Git-native canary releases for Istio: release files in, a checked Kustomize tree out.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"meshcanary {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    context: typer.Context,
    repo: Annotated[
        Path | None,
        typer.Option(
            "--repo",
            "-C",
            help="Repository to work in, before or after the command (default: the nearest "
            "folder upward with environments/ or deploy/overlays/, as git finds its work tree).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            envvar="MESHCANARY_ALLOW_REMOTE",
            help="Let kustomize fetch remote bases whose https prefix an environment lists "
            "under remoteBases (over https, without credentials). Off: every remote entry "
            "is refused at its line.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            envvar="MESHCANARY_TIMEOUT",
            min=1,
            help="Seconds the whole run may wait on kustomize, remote fetches included.",
        ),
    ] = 900,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print only findings and errors: no notes, no progress bar."
        ),
    ] = False,
    kustomize_program: Annotated[
        str | None,
        typer.Option(
            "--kustomize",
            envvar="MESHCANARY_KUSTOMIZE",
            metavar="PATH",
            help="The kustomize to run: a kustomize, or a kubectl (run as `kubectl kustomize`). "
            "Default: a kustomize on PATH, else the kubectl installed with meshcanary.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Git-native canary releases for Istio."""
    held = settle(
        repo,
        allow_remote=allow_remote,
        timeout=timeout,
        quiet=quiet,
        kustomize=kustomize_program,
        command=context.invoked_subcommand,
    )
    for resource in held:
        context.with_resource(resource)


# In the order `meshcanary --help` lists them.
app.command()(tree.render)
app.command()(tree.status)
app.command()(tree.build)
app.command()(check.lint)
app.command()(check.check)
app.command("rules")(check.rules_command)
app.command("diff")(tree.diff_command)
app.command()(edit.step)
app.command("set-weights")(edit.set_weights_command)
app.command()(edit.promote)
app.command()(edit.rollback)
app.command()(edit.start)
app.command()(edit.retire)
app.command()(edit.migrate)
app.command()(analysis.analyze)
app.command()(analysis.advance)
app.command("import")(setup.import_command)
app.command("init")(setup.init_command)

policy_app = typer.Typer(
    help="User policies (ValidatingAdmissionPolicy, CEL).", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")
policy_app.command("test")(check.policy_test)


# What may stand before the command's name: the program's options that take a value, and
# its flags (tests/unit/cli/test_app.py holds them equal to the callback's options).
_VALUES = frozenset({"--repo", "-C", "--timeout", "--kustomize"})
_FLAGS = frozenset({"--allow-remote", "--quiet", "-q"})


def for_args(args: Sequence[str]) -> typer.Typer:
    """The app to run `args`: with only the command they name, when that is plain to see.

    Typer reads the signature of every command to build the app (about 30 ms of every run,
    against 5 for one command); a run needs the one it runs. `--help`, `--version`,
    completion, a mistyped command or anything else before the command's name get the whole
    app, so what they print stays the same.
    """
    if "_MESHCANARY_COMPLETE" in os.environ:
        return app
    name = _command_name(args)
    commands = [
        c
        for c in app.registered_commands
        if c.callback is not None
        and (c.name or typer.main.get_command_name(c.callback.__name__)) == name
    ]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    narrow = copy.copy(app)
    narrow.registered_commands = commands
    narrow.registered_groups = groups
    return narrow


def _command_name(args: Sequence[str]) -> str | None:
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _VALUES:
            index += 2
        elif (
            arg in _FLAGS
            or arg.partition("=")[0] in _VALUES
            or (arg.startswith("-C") and len(arg) > 2)
        ):
            index += 1
        else:
            return None if arg.startswith("-") else arg
    return None
