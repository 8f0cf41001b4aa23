"""The commands that judge: lint, check, rules and policy test, and how a report is shown."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshcanary.cli.common import Format, Settings, exits, kustomize_settings, use_color
from meshcanary.problem import Problem, printable
from meshcanary.report import FORMATS

if TYPE_CHECKING:
    from meshcanary.report import Report
    from meshcanary.validate import Options as ValidationOptions

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
    if workspace is not None and workspace.top not in (None, base or workspace.root):
        # Relative to the git work tree's top: where annotations and code scanning look
        # (the paths as they are when the repository is the work tree).
        report = report.relocated(lambda file: workspace.shown(file, base))

    severity = Severity(fail_on.value)
    color = output.value == "text" and use_color(sys.stdout)
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
    jobs: Annotated[
        str,
        typer.Option(
            "--jobs",
            "-j",
            help="Processes that parse and validate: a number, or auto (one per CPU, the "
            "default). Inputs under 2 MB are read in one.",
        ),
    ] = "auto",
) -> int:
    """Validate any manifests against their schemas and the built-in rules."""
    from meshcanary.commands import lint as command
    from meshcanary.lint import LintOptions, jobs_count

    options = _options(
        kubernetes_version, strict, schema_location, skip, reject, ignore_missing_schemas, crd
    )
    settings = LintOptions(
        validation=options,
        rules=not no_rules,
        ignore_filename_patterns=tuple(ignore_filename_pattern or ()),
        policies=tuple(policies or ()),
        jobs=jobs_count(jobs),
    )
    # A folder given may be a Kustomize folder, built with the run's kustomize options;
    # files alone never load the kustomize runner.
    building = any(os.path.isdir(p) for p in paths or ())
    with kustomize_settings() if building else contextlib.nullcontext():
        if validator is Validator.kubeconform:
            report = command.lint_with_kubeconform(paths or ["-"], settings)
        else:
            # lint's paths are as the user gave them: relative to the current folder.
            Settings.base = Path.cwd()
            report = command.lint(paths or ["-"], settings)
    return _emit(report, output, summary, fail_on)


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
