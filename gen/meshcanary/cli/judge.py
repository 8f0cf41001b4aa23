"""What `lint` and `check` do with their options, without Typer: the Typer commands
(`cli/check.py`) and the quick path (`cli/quick.py`) both call these."""

from __future__ import annotations

import contextlib
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from meshcanary.cli.common import Settings, kustomize_settings, use_color
from meshcanary.problem import Problem
from meshcanary.report import FORMATS

if TYPE_CHECKING:
    from meshcanary.commands.check import Shard
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


def _validation_options(
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


def lint(
    paths: list[str] | None,
    *,
    output: ReportFormat,
    summary: bool,
    kubernetes_version: str | None,
    strict: bool,
    schema_location: list[str] | None,
    skip: list[str] | None,
    reject: list[str] | None,
    ignore_missing_schemas: bool,
    crd: list[Path] | None,
    validator: Validator,
    fail_on: FailOn,
    no_rules: bool,
    ignore_filename_pattern: list[str] | None,
    policies: list[Path] | None,
    jobs: str,
) -> int:
    """`meshcanary lint`: its exit code."""
    from meshcanary import validating

    options = _validation_options(
        kubernetes_version, strict, schema_location, skip, reject, ignore_missing_schemas, crd
    )
    count = validating.jobs_count(jobs)
    embedded = validator is not Validator.kubeconform
    # The copy that validates beside the rules is forked now, before lint's imports (40 ms).
    with validating.beside(options, count if embedded else 1) as beside:
        from meshcanary.commands import lint as command
        from meshcanary.lint import LintOptions

        settings = LintOptions(
            validation=options,
            rules=not no_rules,
            ignore_filename_patterns=tuple(ignore_filename_pattern or ()),
            policies=tuple(policies or ()),
            jobs=count,
        )
        # A folder given may be a Kustomize folder, built with the run's kustomize options;
        # files alone never load the kustomize runner.
        building = any(os.path.isdir(p) for p in paths or ())
        with kustomize_settings() if building else contextlib.nullcontext():
            if not embedded:
                report = command.lint_with_kubeconform(paths or ["-"], settings)
            else:
                # lint's paths are as the user gave them: relative to the current folder.
                Settings.base = Path.cwd()
                report = command.lint(paths or ["-"], settings, beside=beside)
    return _emit(report, output, summary, fail_on)


def check(
    paths: list[str] | None,
    *,
    output: ReportFormat,
    summary: bool,
    kubernetes_version: str | None,
    strict: bool,
    schema_location: list[str] | None,
    skip: list[str] | None,
    reject: list[str] | None,
    ignore_missing_schemas: bool,
    crd: list[Path] | None,
    validator: Validator,
    fail_on: FailOn,
    jobs: int | None,
    policies: list[Path] | None,
    base: str | None,
    no_base: bool,
    no_cache: bool,
    shard: Shard | None,
    staged: bool,
) -> int:
    """`meshcanary check`: its exit code."""
    from meshcanary.kustomize import early
    from meshcanary.lock import shared

    changed = _in_repository(paths or [])
    if staged:
        assert Settings.workspace is not None  # noqa: S101 - the callback set it
        changed = sorted({*changed, *Settings.workspace.staged()})
        if not changed:
            from meshcanary.report import Report

            return _emit(Report(()), output, summary, fail_on)
    # The overlays a hook's paths name start building now, before the pipeline is imported
    # (50 ms): kustomize takes longer than all the rest of a hook's run.
    with shared(Settings.repo), early.builds(Settings.repo, changed if shard is None else []):
        from meshcanary.commands import check as command

        options = _validation_options(
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
            shard=shard,
        )
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
