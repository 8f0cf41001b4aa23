"""`analyze` and `advance`: metric-gated steps, every decision a commit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from meshcanary.commands.edit import Advanced

from meshcanary.cli.common import Format, Settings, exits
from meshcanary.cli.edit import (
    BranchOption,
    CommitOption,
    DryRunOption,
    Env,
    ForceOption,
    PrBodyOption,
    PushOption,
    _commit_options,
    _said,
)

Services = Annotated[
    str | None, typer.Argument(help="Service (default: every canary).", show_default=False)
]
PrometheusOption = Annotated[
    str,
    typer.Option(
        "--prometheus",
        envvar="PROMETHEUS_URL",
        metavar="URL",
        help="Prometheus's http(s) URL (or $PROMETHEUS_URL).",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str,
    typer.Option(
        "--token-env",
        metavar="NAME",
        help="The environment variable holding a bearer token, if it is set.",
    ),
]
CaOption = Annotated[
    Path | None, typer.Option("--ca-file", help="CA bundle for a private certificate authority.")
]
TimeoutOption = Annotated[
    float, typer.Option("--query-timeout", min=0.1, help="Seconds each query may take.")
]
AtOption = Annotated[
    str | None,
    typer.Option("--at", metavar="TIME", help="Decide as at TIME (RFC 3339 or Unix seconds)."),
]
FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]


@exits
def analyze(
    environment: Env,
    service: Services = None,
    prometheus: PrometheusOption = "",
    token_env: TokenOption = "PROMETHEUS_TOKEN",  # noqa: S107 - a variable's name
    ca_file: CaOption = None,
    query_timeout: TimeoutOption = 30.0,
    at: AtOption = None,
    replay: Annotated[
        str | None,
        typer.Option("--replay", metavar="FROM..TO", help="Decide at each time of a range."),
    ] = None,
    every: Annotated[str, typer.Option("--every", help="The replay's step.")] = "10m",
    form: FormatOption = Format.text,
) -> int:
    """Read each canary's metrics from Prometheus and say what to do: advance, promote, hold
    or rollback. Exit 1 when a query failed (that canary holds, with no verdict)."""
    from meshcanary.commands import analyze as command

    source = command.Source(prometheus, token_env, ca_file, query_timeout)
    found = command.decisions(Settings.repo, environment, service, source, at, replay, every)
    sys.stdout.write(command.shown(found, form.value, replay is not None))
    return command.exit_code(found)


@exits
def advance(
    environment: Env,
    service: Services = None,
    prometheus: PrometheusOption = "",
    token_env: TokenOption = "PROMETHEUS_TOKEN",  # noqa: S107 - a variable's name
    ca_file: CaOption = None,
    query_timeout: TimeoutOption = 30.0,
    at: AtOption = None,
    dry_run: DryRunOption = False,
    commit: CommitOption = False,
    branch: BranchOption = None,
    push: PushOption = None,
    pr_body: PrBodyOption = None,
    rollback_direct: Annotated[
        bool,
        typer.Option(
            "--rollback-direct",
            help="Commit a rollback on the base branch itself (and push it there), not a PR.",
        ),
    ] = False,
    force: ForceOption = False,
    form: FormatOption = Format.text,
) -> int:
    """Analyze, then carry out each decision with the edit commands: one branch per service.
    With --at, commits are dated then, so the next step's interval counts from it."""
    from meshcanary.commands import EditOptions
    from meshcanary.commands import analyze as analysis
    from meshcanary.commands import edit as command
    from meshcanary.commands.analyze import Source
    from meshcanary.errors import InputError

    if branch is not None and service is None:
        raise InputError("--branch needs a SERVICE: each service's change has its own branch")
    if rollback_direct and not commit:
        raise InputError("--rollback-direct needs --commit")
    options = EditOptions(
        dry_run=dry_run, force=force, commit=commit, branch=branch, push=push, pr_body=pr_body
    )
    _commit_options(options)
    source = Source(prometheus, token_env, ca_file, query_timeout)
    found = analysis.decisions(Settings.repo, environment, service, source, at)
    if at is not None:
        from meshcanary.analysis.run import parse_time

        options = EditOptions(**{**options.__dict__, "date": parse_time(at)})
    done = command.advance(
        Settings.repo,
        found,
        options,
        rollback_direct=rollback_direct,
        several_bodies=service is None,
    )
    for item in done:
        if item.waiting is not None:
            print(
                f"{item.waiting} is on the remote already, with commits the base has not: its "
                "pull request waits for a review (nothing committed again; the body is written "
                "afresh)",
                file=sys.stderr,
            )
    for item in done:
        if item.error is not None:
            print(
                f"{item.decision.environment}/{item.decision.service}: {item.error}",
                file=sys.stderr,
            )
    acted = [item for item in done if item.result is not None and item.waiting is None]
    errors = 1 if any(item.error for item in done) else 0
    if form is Format.json:
        sys.stdout.write(json.dumps({"decisions": [_row(item) for item in done]}, indent=2) + "\n")
        failed = any(not item.result.written and not dry_run for item in acted if item.result)
        return max(1 if failed else 0, errors, analysis.exit_code(found))
    sys.stdout.write(analysis.shown([item.decision for item in done], "text", False))
    codes = [_said(item.result, options) for item in acted if item.result is not None]
    return max([*codes, errors, analysis.exit_code(found)])


def _row(item: Advanced) -> dict[str, object]:
    """A decision as `analyze --format json` gives it, and what `advance` did about it."""
    from meshcanary.analysis.output import as_dict

    row = as_dict(item.decision)
    result = item.result
    row["change"] = None
    if item.error is not None:
        row["change"] = {"error": item.error}
    elif result is not None:
        row["change"] = {
            "message": result.message,
            "written": result.written,
            "branch": item.waiting or result.branch,
            "base": result.base,
            "title": item.title,
            "bodyFile": str(item.pr_body) if item.pr_body else None,
            "waiting": item.waiting is not None,
        }
    return row
