"""The commands that judge: lint, check, rules and policy test, and how a report is shown."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from meshcanary.cli import judge
from meshcanary.cli.common import Format, Settings, exits
from meshcanary.cli.judge import TEXT, FailOn, ReportFormat, Validator
from meshcanary.problem import printable

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
    return judge.lint(
        paths,
        output=output,
        summary=summary,
        kubernetes_version=kubernetes_version,
        strict=strict,
        schema_location=schema_location,
        skip=skip,
        reject=reject,
        ignore_missing_schemas=ignore_missing_schemas,
        crd=crd,
        validator=validator,
        fail_on=fail_on,
        no_rules=no_rules,
        ignore_filename_pattern=ignore_filename_pattern,
        policies=policies,
        jobs=jobs,
    )


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
    from meshcanary.commands.check import Shard

    try:
        part = Shard.parse(shard) if shard else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    return judge.check(
        paths,
        output=output,
        summary=summary,
        kubernetes_version=kubernetes_version,
        strict=strict,
        schema_location=schema_location,
        skip=skip,
        reject=reject,
        ignore_missing_schemas=ignore_missing_schemas,
        crd=crd,
        validator=validator,
        fail_on=fail_on,
        jobs=jobs,
        policies=policies,
        base=base,
        no_base=no_base,
        no_cache=no_cache,
        shard=part,
        staged=staged,
    )


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
