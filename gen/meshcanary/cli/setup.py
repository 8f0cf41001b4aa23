"""The commands that set a repository up: init and import."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from meshcanary.cli.common import Format, Settings, exits, note, warn
from meshcanary.problem import printable


@exits
def import_command(
    files: Annotated[list[str], typer.Argument(help="Manifests: files, folders, or - for stdin.")],
    environment: Annotated[str, typer.Option("--env", help="Environment to import into.")],
    services: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            help="A Service to import (repeatable; default: every Service whose Deployments "
            "are given). With one Service in the input, the name of its release.",
        ),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace of a new environment.")
    ] = None,
    drops: Annotated[
        list[str] | None,
        typer.Option(
            "--drop",
            metavar="FIELD-PATH",
            help="Accept the loss of a field import refuses, named as it says: "
            "Kind/name:spec.http[1].fault (repeatable).",
        ),
    ] = None,
    canaries: Annotated[
        list[str] | None,
        typer.Option(
            "--canary",
            metavar="SERVICE=VERSION",
            help="The version that is a service's canary (default: the one with the least "
            "traffic, the newest by name among equals).",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Render what would be written in a scratch copy, build it with kustomize and "
            "prove it equivalent to the manifests before writing.",
        ),
    ] = True,
    output: Annotated[Format, typer.Option("--format", help="Report format.")] = Format.text,
) -> int:
    """Turn an application's manifests into bases, release files and the environment's
    Gateways; refuse (and write nothing) what cannot be carried over."""
    from meshcanary.commands import importer

    result = importer.import_manifests(
        Settings.repo,
        [Path(f) for f in files],
        environment,
        services or (),
        namespace,
        drops=drops or (),
        canaries=canaries or (),
        verify=verify,
    )
    if output is Format.json:
        print(importer.as_json(result, environment))
        return importer.exit_code(result)
    for problem in (*result.notes, *result.differences):
        print(problem.format(), file=sys.stderr)
    for path in result.written:
        print(f"create  {printable(str(path))}")
    print(importer.report(result, environment))
    return importer.exit_code(result)


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
