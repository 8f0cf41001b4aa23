"""The `junit` format: JUnit XML as kubeconform writes it, for CI test-report views.

    <testsuites name="meshcanary" tests="2" failures="1" disabled="0" errors="0">
      <testsuite name="deploy/a.yaml" id="1" tests="2" failures="1" errors="0" disabled="0" skipped="0">
        <testcase name="prod/web" classname="VirtualService@networking.istio.io/v1">
          <failure message="deploy/a.yaml:12:7: weights sum to 90, not 100" type="weights-sum">...</failure>
        </testcase>
        <testcase name="web" classname="Service@v1" />
      </testsuite>
    </testsuites>

One suite per file, one test case per resource: named `namespace/name` (or `name`), classed
`Kind@apiVersion`, as kubeconform names them. Each finding at or above `--fail-on` (error by
default: what makes the exit code 1) is a `<failure>` of its resource and counts in
`failures`; findings below it are the `<system-out>` of a passing case. A resource that could
not be checked has an `<error>` per reason, a skipped one `<skipped />`. A finding that
belongs to no resource is a test case of its own, named after its position: input that cannot
be read or parsed is an `<error>` there. No `time` attributes, so the same report gives the
same bytes. It validates against the JUnit XSD in kubeconform's acceptance tests.

Names, file names and messages quote the input, and CI test views show them as they are: they
go through `printable`, as in the text format, which also turns every character XML 1.0
cannot carry even escaped (C0 controls, lone surrogates, U+FFFE/U+FFFF) into an escape.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from meshcanary.problem import Problem, Severity, printable
from meshcanary.report import Report, ResourceResult, Status, file_order, unattached
from meshcanary.report.text import format_problem

UNREADABLE = "input"  # input that could not be read or parsed
UNCHECKED = frozenset((UNREADABLE, "schema"))  # why a resource could not be checked


def _outcome(case: ET.Element, tag: str, problem: Problem | None, fallback: str) -> None:
    element = ET.SubElement(case, tag)
    if problem is None:
        element.set("message", fallback)
        return
    element.set("message", printable(f"{problem.location}: {problem.message}"))
    element.set("type", printable(problem.rule))
    element.text = format_problem(problem)  # printable already, hint on its own line


def _fails(problem: Problem, fail_on: Severity) -> bool:
    return problem.severity.rank >= fail_on.rank


def _findings(case: ET.Element, problems: Sequence[Problem], fail_on: Severity) -> None:
    """A `<failure>` for each finding at or above `fail_on`, the others as `<system-out>`."""
    for problem in problems:
        if _fails(problem, fail_on):
            _outcome(case, "failure", problem, "")
    passing = [p for p in problems if not _fails(p, fail_on)]
    if passing:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(format_problem(p) for p in passing)


def _resource_case(result: ResourceResult, fail_on: Severity) -> ET.Element:
    ref = result.resource
    name = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
    case = ET.Element(
        "testcase",
        {"name": printable(name), "classname": printable(f"{ref.kind}@{ref.api_version}")},
    )
    problems = result.problems
    if result.status is Status.SKIPPED:
        ET.SubElement(case, "skipped")  # the XSD allows no attributes on it
        return case
    if result.status is Status.ERROR:
        # Why it could not be checked; the rules' findings on it follow as on any resource.
        reasons = [p for p in problems if p.rule in UNCHECKED]
        for problem in reasons or (None,):
            _outcome(case, "error", problem, "could not be checked")
        problems = tuple(p for p in problems if p not in reasons)
    elif result.status is Status.INVALID and not problems:
        _outcome(case, "failure", None, "invalid")
    _findings(case, problems, fail_on)
    return case


def _loose_case(problem: Problem, fail_on: Severity) -> ET.Element:
    case = ET.Element(
        "testcase", {"name": printable(str(problem.location)), "classname": printable(problem.rule)}
    )
    if problem.rule == UNREADABLE:
        _outcome(case, "error", problem, "")
    else:
        _findings(case, (problem,), fail_on)
    return case


def _tally(cases: list[ET.Element]) -> dict[str, int]:
    """Test cases by outcome, one each: an error outranks failures, failures a skip."""
    outcomes = [
        next((tag for tag in ("error", "failure", "skipped") if case.find(tag) is not None), "")
        for case in cases
    ]
    return {
        "tests": len(cases),
        "failures": outcomes.count("failure"),
        "errors": outcomes.count("error"),
        "skipped": outcomes.count("skipped"),
    }


class JunitReporter:
    def render(
        self, report: Report, *, summary: bool, color: bool, fail_on: Severity = Severity.ERROR
    ) -> str:
        by_file: dict[str, list[ET.Element]] = {file: [] for file in file_order(report)}
        for result in report.results:
            by_file[result.file].append(_resource_case(result, fail_on))
        for problem in unattached(report):
            by_file[problem.location.file].append(_loose_case(problem, fail_on))

        root = ET.Element("testsuites", {"name": "meshcanary"})
        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for number, (file, cases) in enumerate(by_file.items(), start=1):
            tally = _tally(cases)
            suite = ET.SubElement(root, "testsuite", {"name": printable(file), "id": str(number)})
            for key in ("tests", "failures", "errors"):
                suite.set(key, str(tally[key]))
            suite.set("disabled", "0")
            suite.set("skipped", str(tally["skipped"]))
            suite.extend(cases)
            totals = {key: totals[key] + tally[key] for key in totals}
        # kubeconform's order; the root has no `skipped` attribute, so skips count as disabled.
        root.set("tests", str(totals["tests"]))
        root.set("failures", str(totals["failures"]))
        root.set("disabled", str(totals["skipped"]))
        root.set("errors", str(totals["errors"]))
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
