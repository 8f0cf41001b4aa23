"""The commands that set a repository up: init and import."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from meshcanary.cli.common import Settings, exits, note, warn
from meshcanary.problem import printable


@exits
def import_command(
    files: Annotated[list[str], typer.Argument(help="Manifests: files, folders, or - for stdin.")],
    environment: Annotated[str, typer.Option("--env", help="Environment to import into.")],
    service: Annotated[
        str | None, typer.Option("--service", help="Service name (default: the Service's).")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace of a new environment.")
    ] = None,
) -> int:
    """Turn existing manifests into a base and a release file; report what does not fit."""
    from meshcanary.commands import importer

    result = importer.import_manifests(
        Settings.repo, [Path(f) for f in files], environment, service, namespace
    )
    for problem in result.notes:
        print(problem.format(), file=sys.stderr)
    for path in result.written:
        print(f"create  {printable(str(path))}")
    note(f"imported into {environment}; next: meshcanary render && meshcanary check")
    return 0


@exits
def init_command(
    directory: Annotated[Path, typer.Argument(help="Folder of the new repository.")] = Path(),
    service: Annotated[str, typer.Option("--service", help="Name of the first service.")] = "hello",
    environments: Annotated[
        list[str] | None, typer.Option("--env", help="Environments to create (repeatable).")
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref",
            help="meshcanary commit (a full SHA) the workflow installs and the hooks run; "
            "default: the commit this meshcanary was installed from, when it can be told.",
        ),
    ] = None,
) -> int:
    """Scaffold a new GitOps repository: environments, a base, pre-commit and a workflow."""
    from meshcanary.commands import init as command

    done = command.scaffold(
        directory, service=service, environments=tuple(environments or ("dev", "prod")), ref=ref
    )
    for path in done.written:
        print(f"create  {printable(path)}")
    warn(list(done.notes))
    note(f"next: cd {directory} && meshcanary render && meshcanary check")
    return 0
