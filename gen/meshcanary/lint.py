"""What `lint` checks and how its findings become one report, whichever validator ran.

`LintOptions` says which checks run; `assemble` joins the schema verdicts (the embedded
validator's or kubeconform's), the built-in rules' and policies' findings, and the problems of
input that could not be read, into one `Report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshcanary.inputs import unreadable
from meshcanary.manifest import Parsed
from meshcanary.problem import Problem
from meshcanary.report import Report, ResourceResult, Status
from meshcanary.validate import Options, Verdict


@dataclass(frozen=True)
class LintOptions:
    validation: Options = field(default_factory=Options)
    rules: bool = True
    severities: dict[str, str] = field(default_factory=dict)
    ignore_filename_patterns: tuple[str, ...] = ()  # regular expressions, as in kubeconform
    policies: tuple[Path, ...] = ()  # folders of ValidatingAdmissionPolicies


def assemble(
    parsed: Parsed, from_stdin: bool, verdicts: Sequence[Verdict], options: LintOptions
) -> Report:
    """One report from the schema verdicts of `parsed.resources`, the rules' findings, and
    the problems of the input that could not be read (`unreadable`)."""
    from meshcanary import rules

    found: list[Problem] = []
    checked = [
        r for r, v in zip(parsed.resources, verdicts, strict=True) if v.status is not Status.SKIPPED
    ]
    if options.rules:
        found = rules.run(rules.Scope(checked), options.severities)
    if options.policies:
        from meshcanary import policies

        found += policies.load(list(options.policies), Path.cwd()).evaluate(checked)
    by_resource: dict[tuple[str, object], list[Problem]] = {}
    for problem in found:
        by_resource.setdefault((problem.location.file, problem.resource), []).append(problem)
    results = tuple(
        ResourceResult(
            resource.file,
            resource.ref,
            verdict.status,
            (*verdict.problems, *by_resource.pop((resource.file, resource.ref), [])),
        )
        for resource, verdict in zip(parsed.resources, verdicts, strict=True)
    )
    problems = sorted(
        [p for v in verdicts for p in v.problems] + found + unreadable(parsed),
        key=Problem.sort_key,
    )
    infos = rules.infos()
    return Report(
        problems=tuple(problems),
        results=results,
        files=parsed.files,
        stdin=from_stdin,
        rules=infos,
        checks=(
            "schema",
            *(("rules",) if options.rules else ()),
            *(("policies",) if options.policies else ()),
        ),
    )
