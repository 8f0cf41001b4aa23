"""The command line: options in, one call into the core, an exit code out.

Only this module knows about Typer and prints. Heavy modules are imported inside the
commands so that `--help` and `--version` start fast.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from meshcanary import __version__
from meshcanary.problem import Problem, printable, printable_lines
from meshcanary.report import FORMATS

if TYPE_CHECKING:
    from meshcanary.report import Report
    from meshcanary.validate import Options as ValidationOptions
    from meshcanary.workspace import Workspace

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
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Settings:
    repo: Path = Path()
    # The repository and the git work tree around it: reports show paths relative to the
    # work tree's top. `base` is the folder the paths a command reports are relative to.
    workspace: Workspace | None = None
    base: Path | None = None
    quiet: bool = False


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
    from meshcanary.workspace import Workspace, find_root

    if repo is not None and not repo.is_dir():
        from meshcanary.errors import InputError

        raise InputError(f"--repo {repo}: no such directory")
    Settings.repo = repo.resolve() if repo is not None else find_root(Path.cwd())
    Settings.workspace = Workspace.at(Settings.repo)
    Settings.base = Settings.repo
    Settings.quiet = quiet
    from meshcanary import kustomize

    if sys.stderr.isatty() and not quiet:
        from meshcanary import progress

        context.with_resource(progress.bar())
    context.with_resource(
        kustomize.run_settings(
            allow_remote=allow_remote, timeout=timeout, kustomize=kustomize_program
        )
    )


Environments = Annotated[
    list[str] | None,
    typer.Argument(help="Environments to work on (default: all).", show_default=False),
]


def _warn(problems: list[Problem]) -> None:
    """Problems that do not stop the command; with --quiet, only errors among them."""
    from meshcanary.problem import Severity

    for problem in problems:
        if problem.severity is Severity.ERROR or not Settings.quiet:
            print(problem.format(), file=sys.stderr)


def _note(text: str) -> None:
    """What a command says it did, on stderr; nothing with --quiet."""
    if not Settings.quiet:
        print(text, file=sys.stderr)


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
        from meshcanary.lock import shared

        with shared(Settings.repo):
            result = command.plan(Settings.repo, names)
        _warn(list(result.notices))
        if result.stale:
            sys.stdout.write(printable_lines(result.diff()))
            changed = sum(len(p.changes) for p in result.plans)
            print(
                f"render is stale: {changed} file(s) differ; run `meshcanary render`",
                file=sys.stderr,
            )
            return 1
        _note("render is fresh")
        return 0
    result = command.render(Settings.repo, names, force=force)
    _warn(list(result.notices))
    for item in result.plans:
        for change in item.changes:
            print(f"{change.action:<7} {printable(str(change.path))}")
    changed = sum(len(p.changes) for p in result.plans)
    envs = len(result.environments)
    _note(f"rendered {envs} environment(s): {changed or 'no'} file(s) changed")
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
    """Show each version's role, image, pods, weight and traffic, pinned and mirrored requests,
    the canary's step of the plan, and whether the render is stale."""
    import shutil

    from meshcanary.commands import status as command
    from meshcanary.lock import shared

    with shared(Settings.repo):
        result = command.status(Settings.repo, environments or [])
    _warn(list(result.problems))
    if output is Format.json:
        print(json.dumps(command.as_json(result), indent=2))
        return 0
    # At a terminal, as wide as it is (COLUMNS first); piped, each row on one line.
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    sys.stdout.write(command.text(result, width=width, color=_color(sys.stdout)))
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
            _warn(list(item.problems))
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


# The choices are the report registry's names: one list of formats.
ReportFormat = StrEnum("ReportFormat", [(name, name) for name in FORMATS])  # type: ignore[misc]
TEXT = ReportFormat("text")


class Validator(StrEnum):
    embedded = "embedded"
    kubeconform = "kubeconform"


class FailOn(StrEnum):
    error = "error"
    warning = "warning"


FormatOption = Annotated[ReportFormat, typer.Option("--format", "-o", help="Report format.")]
SummaryOption = Annotated[
    bool, typer.Option("--summary", help="End with kubeconform's summary line.")
]
VersionOption = Annotated[
    str | None,
    typer.Option("--kubernetes-version", "-k", help="Kubernetes version of the schemas, x.y.z."),
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Unknown fields and duplicate keys are errors.")
]
LocationOption = Annotated[
    list[str] | None,
    typer.Option(
        "--schema-location",
        help="Schema location template (kubeconform's variables); `default` = bundled.",
    ),
]
SkipOption = Annotated[
    list[str] | None,
    typer.Option("--skip", help="Kinds not to validate (Kind or apiVersion/Kind)."),
]
RejectOption = Annotated[
    list[str] | None, typer.Option("--reject", help="Kinds that are findings wherever they appear.")
]
MissingOption = Annotated[
    bool,
    typer.Option("--ignore-missing-schemas", help="Skip resources no schema is known for."),
]
CrdOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--crd", help="CustomResourceDefinition file to validate custom resources against."
    ),
]
ValidatorOption = Annotated[
    Validator,
    typer.Option("--validator", help="Validate in-process or with the kubeconform binary."),
]
PoliciesOption = Annotated[
    list[Path] | None,
    typer.Option("--policies", help="Folder of ValidatingAdmissionPolicies (repeatable)."),
]
FailOnOption = Annotated[
    FailOn, typer.Option("--fail-on", help="Lowest severity that makes the exit code 1.")
]


def _options(
    kubernetes_version: str | None,
    strict: bool,
    schema_location: list[str] | None,
    skip: list[str] | None,
    reject: list[str] | None,
    ignore_missing_schemas: bool,
    crd: list[Path] | None,
) -> ValidationOptions:
    from meshcanary.validate import Options

    def kinds(values: list[str] | None) -> frozenset[str]:
        return frozenset(k.strip() for v in values or [] for k in v.split(",") if k.strip())

    return Options(
        kubernetes_version=kubernetes_version,
        strict=strict,
        schema_locations=tuple(schema_location or ()),
        skip=kinds(skip),
        reject=kinds(reject),
        ignore_missing_schemas=ignore_missing_schemas,
        crds=tuple(crd or ()),
    )


def _emit(report: Report, output: ReportFormat, summary: bool, fail_on: FailOn) -> int:
    from meshcanary.problem import Severity
    from meshcanary.report import reporter

    workspace, base = Settings.workspace, Settings.base
    if workspace is not None:
        # Relative to the git work tree's top: where annotations and code scanning look.
        report = report.relocated(lambda file: workspace.shown(file, base))

    severity = Severity(fail_on.value)
    color = output.value == "text" and _color(sys.stdout)
    sys.stdout.write(
        reporter(output.value).render(report, summary=summary, color=color, fail_on=severity)
    )
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if output.value == "github" and summary_file:
        # Annotations stop at ten of a kind per step: the job summary shows every finding.
        with open(summary_file, "a", encoding="utf-8") as page:
            page.write(reporter("markdown").render(report, summary=summary, color=False))
    unreadable = report.unreadable()
    if unreadable:
        from meshcanary.errors import InputError

        # Bad input wins over findings; stderr says why, as it does for every exit 2.
        print(InputError(unreadable).text, file=sys.stderr)
        return 2
    return 1 if report.at_least(severity) else 0


def _color(stream: Any) -> bool:
    """Colour on a terminal; NO_COLOR turns it off, FORCE_COLOR on (no-color.org, as Rich)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "0") not in ("", "0"):
        return True
    return bool(stream.isatty())


@app.command()
@exits
def lint(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Files, folders, Kustomize folders, or - for standard input."),
    ] = None,
    output: FormatOption = TEXT,
    summary: SummaryOption = False,
    kubernetes_version: VersionOption = None,
    strict: StrictOption = False,
    schema_location: LocationOption = None,
    skip: SkipOption = None,
    reject: RejectOption = None,
    ignore_missing_schemas: MissingOption = False,
    crd: CrdOption = None,
    validator: ValidatorOption = Validator.embedded,
    fail_on: FailOnOption = FailOn.error,
    no_rules: Annotated[
        bool, typer.Option("--no-rules", help="Schema validation only, as kubeconform does.")
    ] = False,
    ignore_filename_pattern: Annotated[
        list[str] | None,
        typer.Option("--ignore-filename-pattern", help="Regular expression of paths to leave out."),
    ] = None,
    policies: PoliciesOption = None,
) -> int:
    """Validate any manifests against their schemas and the built-in rules."""
    from meshcanary.commands import lint as command

    options = _options(
        kubernetes_version, strict, schema_location, skip, reject, ignore_missing_schemas, crd
    )
    settings = command.LintOptions(
        validation=options,
        rules=not no_rules,
        ignore_filename_patterns=tuple(ignore_filename_pattern or ()),
        policies=tuple(policies or ()),
    )
    if validator is Validator.kubeconform:
        import meshcanary.validate.kubeconform as binary

        report = binary.lint(paths or ["-"], settings)
    else:
        # lint's paths are as the user gave them: relative to the current folder.
        Settings.base = Path.cwd()
        report = command.lint(paths or ["-"], settings)
    return _emit(report, output, summary, fail_on)


@app.command()
@exits
def check(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Changed files (as pre-commit passes them); default: everything."),
    ] = None,
    output: FormatOption = TEXT,
    summary: SummaryOption = False,
    kubernetes_version: VersionOption = None,
    strict: StrictOption = False,
    schema_location: LocationOption = None,
    skip: SkipOption = None,
    reject: RejectOption = None,
    ignore_missing_schemas: MissingOption = False,
    crd: CrdOption = None,
    validator: ValidatorOption = Validator.embedded,
    fail_on: FailOnOption = FailOn.error,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="kustomize processes at once.")
    ] = None,
    policies: PoliciesOption = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Git ref the change is judged against: policies see its objects as oldObject "
            "and no weight moves more than policy.maxStep since it (default: HEAD, when there "
            "is one; in CI, the pull request's base).",
            show_default=False,
        ),
    ] = None,
    no_base: Annotated[
        bool, typer.Option("--no-base", help="Judge the tree alone: no base, no oldObject.")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Check afresh; do not read or write the cache.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="Check part K of N (for a CI matrix); the N parts together check everything.",
        ),
    ] = None,
    staged: Annotated[
        bool,
        typer.Option(
            "--staged",
            help="Also check what the changes staged in git affect, deletions included (the "
            "pre-commit hook); with no paths and nothing staged under environments/, deploy/ "
            "or policies/, check nothing.",
        ),
    ] = False,
) -> int:
    """Check the repository: release files, render freshness, kustomize, schemas, rules."""
    from meshcanary.commands import check as command

    try:
        part = command.Shard.parse(shard) if shard else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None

    options = _options(
        kubernetes_version, strict, schema_location, skip, reject, ignore_missing_schemas, crd
    )
    settings = command.CheckOptions(
        options,
        jobs,
        kubeconform=validator is Validator.kubeconform,
        policies=tuple(policies or ()),
        base=None if no_base else (base or "HEAD"),
        base_required=base is not None,
        cache=not no_cache,
        shard=part,
    )
    from meshcanary.lock import shared

    changed = _in_repository(paths or [])
    if staged:
        assert Settings.workspace is not None  # noqa: S101 - the callback set it
        changed = sorted({*changed, *Settings.workspace.staged()})
        if not changed:
            from meshcanary.report import Report

            return _emit(Report(()), output, summary, fail_on)
    with shared(Settings.repo):
        report = command.check(Settings.repo, changed, settings)
    return _emit(report, output, summary, fail_on)


def _as_given(raw: str) -> str:
    """A path the user gave, for a message: from the git work tree's top when it is in it
    (as every path is shown), else as given."""
    workspace = Settings.workspace
    absolute = Path(os.path.normpath(Path.cwd() / raw))
    if (
        workspace is not None
        and workspace.top is not None
        and absolute.is_relative_to(workspace.top)
    ):
        return str(absolute)  # made relative to the top where errors are shown
    return raw


def _in_repository(paths: list[str]) -> list[str]:
    """Paths as pre-commit or a person gives them, relative to the repository; exit 2 naming
    each one that lies outside it, rather than checking nothing and passing."""
    from meshcanary.errors import InputError
    from meshcanary.problem import Location

    workspace = Settings.workspace
    assert workspace is not None  # noqa: S101 - the callback set it
    mapped = [(raw, workspace.inside(raw)) for raw in paths]
    outside = [raw for raw, inside in mapped if inside is None]
    if outside:
        raise InputError(
            [
                Problem(
                    Location(_as_given(raw)),
                    "is outside the repository",
                    f"the repository is {Settings.repo}; give -C/--repo for another one",
                )
                for raw in outside
            ]
        )
    return [inside for _, inside in mapped if inside is not None]


@app.command("rules")
@exits
def rules_command(
    rule: Annotated[str | None, typer.Argument(help="A rule ID to explain.")] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the rules reference page (docs/rules.md).")
    ] = False,
    output: Annotated[Format, typer.Option("--format", "-o", help="Output format.")] = Format.text,
) -> int:
    """List the built-in rules, or explain one."""
    from meshcanary.commands import rules as command

    if markdown:
        sys.stdout.write(command.markdown())
        return 0
    if output is Format.json:
        chosen = [r for r in command.as_json() if rule is None or r["id"] == rule]
        if rule is not None and not chosen:
            from meshcanary.errors import InputError

            raise InputError(f'unknown rule "{rule}"; `meshcanary rules` lists them')
        print(json.dumps(chosen if rule is None else chosen[0], indent=2))
        return 0
    if rule is None:
        sys.stdout.write(command.listing())
        return 0
    found = command.find(rule)
    if found is None:
        import difflib

        from meshcanary.errors import InputError

        close = difflib.get_close_matches(rule, command.ids(), n=1)
        hint = f'; did you mean "{close[0]}"?' if close else "; `meshcanary rules` lists them"
        raise InputError(f'unknown rule "{rule}"{hint}')
    sys.stdout.write(command.explain(found))
    return 0


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"


@app.command("diff")
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
        _note(f"{len(changes)} resource(s) differ from {printable(base)}")
    return 0


# The edit commands ------------------------------------------------------------------------

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


def _edit(
    environment: str,
    service: str,
    transform: Any,
    dry_run: bool,
    commit: bool,
    branch: str | None,
    push: str | None,
    pr_body: Path | None,
    pr_title: Path | None,
    force: bool,
) -> int:
    import os

    from meshcanary.commands import edit as command
    from meshcanary.errors import InputError
    from meshcanary.problem import Severity

    # Each of these only means something for a commit: without one, refuse rather than
    # quietly write the edit and leave out what was asked for.
    needs_commit = [
        option
        for option, given in (
            ("--branch", branch),
            ("--push", push),
            ("--pr-title", pr_title),
            ("--pr-body", pr_body),
        )
        if given is not None
    ]
    if needs_commit and not commit:
        verb = "needs" if len(needs_commit) == 1 else "need"
        raise InputError(f"{' and '.join(needs_commit)} {verb} --commit")
    output = os.environ.get("GITHUB_OUTPUT")
    git = command.GitOptions(
        commit=commit,
        branch=branch,
        push=push,
        pr_title=pr_title,
        pr_body=pr_body,
        github_output=Path(output) if output and commit else None,
    )
    result = command.apply(
        Settings.repo, environment, service, transform, dry_run=dry_run, force=force, git=git
    )
    if dry_run:
        sys.stdout.write(printable_lines(result.diff))
    if result.report.problems:
        from meshcanary.report import reporter

        sys.stderr.write(reporter("text").render(result.report, summary=False, color=False))
    if result.report.at_least(Severity.ERROR):
        print(f"{printable(result.message)}: check failed; nothing written", file=sys.stderr)
        return 1
    if result.written:
        print(printable(result.message))
        if result.branch:
            sha = result.sha and result.sha[:12]
            since = f" (from {printable(result.base)})" if result.base else ""
            print(f"committed {sha} on {printable(result.branch)}{since}", file=sys.stderr)
        if result.branch and result.pushed:
            print(
                f"pushed {printable(result.branch)} to {printable(result.pushed)}", file=sys.stderr
            )
    return 0


@app.command()
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
    from meshcanary.commands import edit as command
    from meshcanary.errors import InputError

    if (to is None) == (not next_step):
        raise InputError("give exactly one of --to N and --next")
    return _edit(
        environment,
        service,
        command.step(to, next_step),
        dry_run,
        commit,
        branch,
        push,
        pr_body,
        pr_title,
        force,
    )


@app.command("set-weights")
@exits
def set_weights(
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
        dry_run,
        commit,
        branch,
        push,
        pr_body,
        pr_title,
        force,
    )


@app.command()
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
    from meshcanary.commands import edit as command

    return _edit(
        environment,
        service,
        command.promote(),
        dry_run,
        commit,
        branch,
        push,
        pr_body,
        pr_title,
        force,
    )


@app.command()
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
    from meshcanary.commands import edit as command

    return _edit(
        environment,
        service,
        command.rollback(),
        dry_run,
        commit,
        branch,
        push,
        pr_body,
        pr_title,
        force,
    )


@app.command()
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
    from meshcanary.commands import edit as command

    return _edit(
        environment,
        service,
        command.start(version, image, replicas, first_step),
        dry_run,
        commit,
        branch,
        push,
        pr_body,
        pr_title,
        force,
    )


@app.command()
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
    from meshcanary.commands import edit as command

    return _edit(
        environment,
        service,
        command.retire(version),
        dry_run,
        commit,
        branch,
        push,
        pr_body,
        pr_title,
        force,
    )


@app.command("import")
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
    _note(f"imported into {environment}; next: meshcanary render && meshcanary check")
    return 0


@app.command("init")
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
    _warn(list(done.notes))
    _note(f"next: cd {directory} && meshcanary render && meshcanary check")
    return 0


policy_app = typer.Typer(
    help="User policies (ValidatingAdmissionPolicy, CEL).", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")


@policy_app.command("test")
@exits
def policy_test(
    directory: Annotated[Path, typer.Argument(help="Policies folder with a tests/ folder.")] = Path(
        "policies"
    ),
) -> int:
    """Run the policy tests: pass/ fixtures must be clean, fail/ fixtures must fail as stated."""
    from meshcanary import policies

    folder = directory if directory.is_absolute() else Settings.repo / directory
    report = policies.run_tests(folder, Settings.repo)
    # One line per case, quoting a policy's name and files: printable; the last line counts.
    cases = [printable(case.format()) for case in report.cases]
    sys.stdout.write("\n".join([*cases, report.format().rsplit("\n", 1)[-1]]))
    return 0 if report.ok else 1
