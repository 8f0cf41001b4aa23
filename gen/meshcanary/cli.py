"""The command line: options in, one call into the core, an exit code out.

Only this module knows about Typer and prints. Heavy modules are imported inside the
commands so that `--help` and `--version` start fast.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from meshcanary import __version__
from meshcanary.problem import Problem

F = TypeVar("F", bound=Callable[..., int])


def exits(function: F) -> F:
    """Turn a command's returned exit code into the exit of the process."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        raise typer.Exit(function(*args, **kwargs))

    return cast(F, wrapper)


app = typer.Typer(
    name="meshcanary",
    help="Git-native canary releases for Istio: release files in, a checked Kustomize tree out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Settings:
    repo: Path = Path()


def _version(value: bool) -> None:
    if value:
        print(f"meshcanary {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    repo: Annotated[
        Path,
        typer.Option("--repo", "-C", help="Repository to work in.", file_okay=False),
    ] = Path(),
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Git-native canary releases for Istio."""
    if not repo.is_dir():
        from meshcanary.errors import InputError

        raise InputError(f"--repo {repo}: no such directory")
    Settings.repo = repo.resolve()


Environments = Annotated[
    list[str] | None,
    typer.Argument(help="Environments to work on (default: all).", show_default=False),
]


def _warn(problems: list[Problem]) -> None:
    for problem in problems:
        print(problem.format(), file=sys.stderr)


@app.command()
@exits
def render(
    environments: Environments = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 and print a diff when the tree is stale."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite generated files that were edited by hand.")
    ] = False,
) -> int:
    """Render release files into deploy/overlays/<env>/."""
    from meshcanary.commands import render as command

    names = environments or []
    if check:
        result = command.plan(Settings.repo, names)
        _warn(list(result.notices))
        if result.stale:
            sys.stdout.write(result.diff())
            changed = sum(len(p.changes) for p in result.plans)
            print(
                f"render is stale: {changed} file(s) differ; run `meshcanary render`",
                file=sys.stderr,
            )
            return 1
        print("render is fresh", file=sys.stderr)
        return 0
    result = command.render(Settings.repo, names, force=force)
    _warn(list(result.notices))
    for item in result.plans:
        for change in item.changes:
            print(f"{change.action:<7} {change.path}")
    changed = sum(len(p.changes) for p in result.plans)
    envs = len(result.environments)
    print(f"rendered {envs} environment(s): {changed or 'no'} file(s) changed", file=sys.stderr)
    return 0


class Format(StrEnum):
    text = "text"
    json = "json"


@app.command()
@exits
def status(
    environments: Environments = None,
    output: Annotated[Format, typer.Option("--format", "-o", help="Output format.")] = Format.text,
) -> int:
    """Show each service's versions, images, replicas and weights."""
    from meshcanary.commands import status as command
    from meshcanary.release.load import load

    table = command.rows(load(Settings.repo, environments or []))
    if output is Format.json:
        print(json.dumps(command.as_json(table), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    for env in dict.fromkeys(r.environment for r in table):
        view = Table(title=f"environment {env}", title_justify="left")
        for column in ("service", "version", "image", "replicas", "weight", "traffic"):
            view.add_column(
                column, justify="right" if column in ("replicas", "weight", "traffic") else "left"
            )
        for row in (r for r in table if r.environment == env):
            view.add_row(
                row.service,
                row.version,
                row.image,
                str(row.replicas),
                str(row.weight),
                f"{row.share:g}%",
            )
        console.print(view)
    return 0


@app.command()
@exits
def build(
    environments: Environments = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="kustomize processes at once (default: cores)."),
    ] = None,
) -> int:
    """Build every service overlay with kustomize and summarise the resources."""
    from meshcanary.commands import build as command
    from meshcanary.release.load import load

    built = command.build(Settings.repo, load(Settings.repo, environments or []), jobs)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 100))
    view = Table(title="kustomize build of deploy/overlays/<env>/<overlay>", title_justify="left")
    for column in (
        "env",
        "overlay",
        "resources",
        "deployments",
        "services",
        "subsets",
        "weights",
        "gateways",
    ):
        view.add_column(column, no_wrap=column in ("overlay", "deployments"))
    failed = 0
    for item in built:
        if item.error:
            failed += 1
            print(f"{item.folder}: error: {item.error}", file=sys.stderr)
            continue
        s = item.summary()
        view.add_row(
            item.environment,
            item.unit,
            s["resources"],
            s["deployments"],
            s["services"],
            s["subsets"],
            s["weights"],
            s["gateways"],
        )
    console.print(view)
    if failed:
        print(f"{failed} overlay(s) failed to build", file=sys.stderr)
        return 2
    return 0
