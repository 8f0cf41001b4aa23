"""The edit commands: step, set-weights, promote, rollback, start and retire.

Each parses its own arguments into a transform of the release file; the options they share
(--dry-run, --commit and what goes with it, --force) travel as one `EditOptions`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshcanary.cli.common import Settings, exits
from meshcanary.problem import printable, printable_lines

if TYPE_CHECKING:
    from meshcanary.commands import EditOptions
    from meshcanary.commands.edit import EditResult, Transform
    from meshcanary.commands.migrate import MigrateResult

DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the diff; write, commit and push nothing.")
]
CommitOption = Annotated[
    bool, typer.Option("--commit", help="Commit the release file and rendered files on a branch.")
]
BranchOption = Annotated[
    str | None,
    typer.Option("--branch", help="Branch to commit on (default: named from the change)."),
]
PushOption = Annotated[
    str | None,
    typer.Option("--push", metavar="REMOTE", help="Push the branch to REMOTE (never forced)."),
]
PrBodyOption = Annotated[
    Path | None, typer.Option("--pr-body", help="Write the pull request's Markdown body here.")
]
PrTitleOption = Annotated[
    Path | None, typer.Option("--pr-title", help="Write the pull request's title here.")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Overwrite generated files that were edited by hand.")
]
Env = Annotated[str, typer.Argument(help="Environment.", show_default=False)]
Service = Annotated[str, typer.Argument(help="Service.", show_default=False)]


def _edit(environment: str, service: str, transform: Transform, *, options: EditOptions) -> int:
    """Apply one edit with the options the six commands share; say what it did."""
    import dataclasses
    import os

    from meshcanary.commands import edit as command

    _commit_options(options)
    output = os.environ.get("GITHUB_OUTPUT")
    if output and options.commit:
        options = dataclasses.replace(options, github_output=Path(output))
    result = command.apply(Settings.repo, environment, service, transform, options=options)
    return _said(result, options)


def _commit_options(options: EditOptions) -> None:
    """Refuse what only means something for a commit, without one, rather than quietly write
    the change and leave out what was asked for."""
    from meshcanary.errors import InputError

    needs_commit = [
        option
        for option, given in (
            ("--branch", options.branch),
            ("--push", options.push),
            ("--pr-title", options.pr_title),
            ("--pr-body", options.pr_body),
        )
        if given is not None
    ]
    if needs_commit and not options.commit:
        verb = "needs" if len(needs_commit) == 1 else "need"
        raise InputError(f"{' and '.join(needs_commit)} {verb} --commit")


def _said(result: EditResult | MigrateResult, options: EditOptions, *more: str) -> int:
    """Say what a change did (its diff for a dry run, the check's findings, the commit and the
    push, and `more` lines), and its exit code."""
    from meshcanary.problem import Severity

    if options.dry_run:
        sys.stdout.write(printable_lines(result.diff))
    if result.report.problems:
        from meshcanary.report import reporter

        sys.stderr.write(reporter("text").render(result.report, summary=False, color=False))
    if result.report.at_least(Severity.ERROR):
        print(f"{printable(result.message)}: check failed; nothing written", file=sys.stderr)
        return 1
    if result.written:
        print(printable(result.message))
        for line in more:
            print(printable(line), file=sys.stderr)
        if result.branch:
            sha = result.sha and result.sha[:12]
            since = f" (from {printable(result.base)})" if result.base else ""
            print(f"committed {sha} on {printable(result.branch)}{since}", file=sys.stderr)
        if result.branch and result.pushed:
            print(
                f"pushed {printable(result.branch)} to {printable(result.pushed)}", file=sys.stderr
            )
    return 0


@exits
def step(
    environment: Env,
    service: Service,
    to: Annotated[int | None, typer.Option("--to", min=0, max=100, help="Canary weight.")] = None,
    next_step: Annotated[bool, typer.Option("--next", help="The plan's next step.")] = False,
    dry_run: DryRunOption = False,
    commit: CommitOption = False,
    branch: BranchOption = None,
    push: PushOption = None,
    pr_body: PrBodyOption = None,
    pr_title: PrTitleOption = None,
    force: ForceOption = False,
) -> int:
    """Move the canary (the newest version) to a weight; the stable version gets the rest."""
    from meshcanary.commands import EditOptions
    from meshcanary.commands import edit as command
    from meshcanary.errors import InputError

    if (to is None) == (not next_step):
        raise InputError("give exactly one of --to N and --next")
    return _edit(
        environment,
        service,
        command.step(to, next_step),
        options=EditOptions(
            dry_run=dry_run,
            force=force,
            commit=commit,
            branch=branch,
            push=push,
            pr_title=pr_title,
            pr_body=pr_body,
        ),
    )


@exits
def set_weights_command(
    environment: Env,
    service: Service,
    weights: Annotated[list[str], typer.Argument(help="VERSION=WEIGHT, e.g. v1=70 v2=30.")],
    dry_run: DryRunOption = False,
    commit: CommitOption = False,
    branch: BranchOption = None,
    push: PushOption = None,
    pr_body: PrBodyOption = None,
    pr_title: PrTitleOption = None,
    force: ForceOption = False,
) -> int:
    """Set the weights of named versions; they must sum to 100 with the others."""
    from meshcanary.commands import EditOptions
    from meshcanary.commands import edit as command
    from meshcanary.errors import InputError

    parsed: dict[str, int] = {}
    for item in weights:
        name, _, value = item.partition("=")
        if not name or not value.isdigit():
            raise InputError(f'"{item}": write VERSION=WEIGHT, such as v2=30')
        parsed[name] = int(value)
    return _edit(
        environment,
        service,
        command.set_weights(parsed),
        options=EditOptions(
            dry_run=dry_run,
            force=force,
            commit=commit,
            branch=branch,
            push=push,
            pr_title=pr_title,
            pr_body=pr_body,
        ),
    )


@exits
def promote(
    environment: Env,
    service: Service,
    dry_run: DryRunOption = False,
    commit: CommitOption = False,
    branch: BranchOption = None,
    push: PushOption = None,
    pr_body: PrBodyOption = None,
    pr_title: PrTitleOption = None,
    force: ForceOption = False,
) -> int:
    """Give the canary all the traffic."""
    from meshcanary.commands import EditOptions
    from meshcanary.commands import edit as command

    return _edit(
        environment,
        service,
        command.promote(),
        options=EditOptions(
            dry_run=dry_run,
            force=force,
            commit=commit,
            branch=branch,
            push=push,
            pr_title=pr_title,
            pr_body=pr_body,
        ),
    )


@exits
def rollback(
    environment: Env,
    service: Service,
    dry_run: DryRunOption = False,
    commit: CommitOption = False,
    branch: BranchOption = None,
    push: PushOption = None,
    pr_body: PrBodyOption = None,
    pr_title: PrTitleOption = None,
    force: ForceOption = False,
) -> int:
    """Take all traffic off the canary; the stable version gets it back."""
    from meshcanary.commands import EditOptions
    from meshcanary.commands import edit as command

    return _edit(
        environment,
        service,
        command.rollback(),
        options=EditOptions(
            dry_run=dry_run,
            force=force,
            commit=commit,
            branch=branch,
            push=push,
            pr_title=pr_title,
            pr_body=pr_body,
        ),
    )


@exits
def start(
    environment: Env,
    service: Service,
    version: Annotated[str, typer.Argument(help="Name of the new version, e.g. v3.")],
    image: Annotated[str, typer.Option("--image", help="Image with a tag or digest.")],
    replicas: Annotated[
        int | None, typer.Option("--replicas", min=0, help="Pods (default: as the current canary).")
    ] = None,
    first_step: Annotated[
        bool, typer.Option("--first-step", help="Start at the plan's first step instead of 0.")
    ] = False,
    dry_run: DryRunOption = False,
    commit: CommitOption = False,
    branch: BranchOption = None,
    push: PushOption = None,
    pr_body: PrBodyOption = None,
    pr_title: PrTitleOption = None,
    force: ForceOption = False,
) -> int:
    """Add a new version as the canary, at weight 0 (or the plan's first step)."""
    from meshcanary.commands import EditOptions
    from meshcanary.commands import edit as command

    return _edit(
        environment,
        service,
        command.start(version, image, replicas, first_step),
        options=EditOptions(
            dry_run=dry_run,
            force=force,
            commit=commit,
            branch=branch,
            push=push,
            pr_title=pr_title,
            pr_body=pr_body,
        ),
    )


@exits
def retire(
    environment: Env,
    service: Service,
    version: Annotated[str, typer.Argument(help="The version to remove.")],
    dry_run: DryRunOption = False,
    commit: CommitOption = False,
    branch: BranchOption = None,
    push: PushOption = None,
    pr_body: PrBodyOption = None,
    pr_title: PrTitleOption = None,
    force: ForceOption = False,
) -> int:
    """Remove a version that no longer gets traffic."""
    from meshcanary.commands import EditOptions
    from meshcanary.commands import edit as command

    return _edit(
        environment,
        service,
        command.retire(version),
        options=EditOptions(
            dry_run=dry_run,
            force=force,
            commit=commit,
            branch=branch,
            push=push,
            pr_title=pr_title,
            pr_body=pr_body,
        ),
    )


@exits
def migrate(
    environment: Env,
    to: Annotated[
        str,
        typer.Option("--to", help="The routing API: gateway-api or istio.", show_default=False),
    ],
    dry_run: DryRunOption = False,
    commit: CommitOption = False,
    branch: BranchOption = None,
    push: PushOption = None,
    pr_body: PrBodyOption = None,
    pr_title: PrTitleOption = None,
    force: ForceOption = False,
) -> int:
    """Switch an environment's routes to another API (routing: in environment.yaml)."""
    from meshcanary.commands import EditOptions
    from meshcanary.commands import migrate as command

    options = EditOptions(
        dry_run=dry_run,
        force=force,
        commit=commit,
        branch=branch,
        push=push,
        pr_title=pr_title,
        pr_body=pr_body,
    )
    _commit_options(options)
    result = command.migrate(Settings.repo, environment, to, options)
    counts = f"{len(result.added)} object(s) added, {len(result.removed)} removed"
    return _said(
        result, options, counts, *(f"traffic: {t.replace('`', '')}" for t in result.traffic)
    )
