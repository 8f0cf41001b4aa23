"""The commands on the rendered tree: render, status, build and diff."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from meshcanary.cli.common import Format, Settings, exits, note, use_color, warn
from meshcanary.problem import printable, printable_lines

Environments = Annotated[
    list[str] | None,
    typer.Argument(help="Environments to work on (default: all).", show_default=False),
]


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
        from meshcanary.lock import shared

        with shared(Settings.repo):
            result = command.plan(Settings.repo, names)
        warn(list(result.notices))
        if result.stale:
            sys.stdout.write(printable_lines(result.diff()))
            changed = sum(len(p.changes) for p in result.plans)
            print(
                f"render is stale: {changed} file(s) differ; run `meshcanary render`",
                file=sys.stderr,
            )
            return 1
        note("render is fresh")
        return 0
    result = command.render(Settings.repo, names, force=force)
    warn(list(result.notices))
    for item in result.plans:
        for change in item.changes:
            print(f"{change.action:<7} {printable(str(change.path))}")
    changed = sum(len(p.changes) for p in result.plans)
    envs = len(result.environments)
    note(f"rendered {envs} environment(s): {changed or 'no'} file(s) changed")
    return 0


@exits
def status(
    environments: Environments = None,
    output: Annotated[Format, typer.Option("--format", "-o", help="Output format.")] = Format.text,
) -> int:
    """Show each version's role, image, pods, weight and traffic, pinned and mirrored requests,
    the canary's step of the plan, and whether the render is stale."""
    import shutil

    from meshcanary.commands import status as command
    from meshcanary.lock import shared

    with shared(Settings.repo):
        result = command.status(Settings.repo, environments or [])
    warn(list(result.problems))
    if output is Format.json:
        print(json.dumps(command.as_json(result), indent=2))
        return 0
    # At a terminal, as wide as it is (COLUMNS first); piped, each row on one line.
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    sys.stdout.write(command.text(result, width=width, color=use_color(sys.stdout)))
    return 0


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
    from meshcanary.lock import shared
    from meshcanary.release.load import load

    with shared(Settings.repo):
        built = command.build(Settings.repo, load(Settings.repo, environments or []), jobs)
    from rich.console import Console
    from rich.table import Table

    console = Console()
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
        if item.problems:
            failed += 1
            warn(list(item.problems))
            continue
        if item.error:
            failed += 1
            print(f"{printable(str(item.folder))}: error: {printable(item.error)}", file=sys.stderr)
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


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"


@exits
def diff_command(
    base: Annotated[str, typer.Option("--base", help="Git ref to compare with.")] = "HEAD",
    output: Annotated[
        DiffFormat, typer.Option("--format", "-o", help="Output format.")
    ] = DiffFormat.text,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="kustomize processes at once.")
    ] = None,
) -> int:
    """Show the rendered difference, per resource, between a ref and the working tree."""
    from meshcanary.commands import diff as command
    from meshcanary.lock import shared

    with shared(Settings.repo):
        result = command.diff(Settings.repo, base, jobs)
    changes = result.changes
    if result.edited:
        print(
            f"deploy/overlays/ has {result.edited} file(s) edited by hand: compared as it is; "
            "`meshcanary render` would refuse to overwrite them",
            file=sys.stderr,
        )
    elif result.stale:
        print(
            f"deploy/overlays/ is stale ({result.stale} file(s)): compared with what the "
            "release files render to; run `meshcanary render` to write it",
            file=sys.stderr,
        )
    if output is DiffFormat.markdown:
        sys.stdout.write(command.markdown(changes, base))
    else:
        # Rendered objects quote the input: each line printable, so none is a workflow command.
        sys.stdout.write(printable_lines("".join(change.diff for change in changes)))
        note(f"{len(changes)} resource(s) differ from {printable(base)}")
    return 0
