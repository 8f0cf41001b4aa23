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
`Kind@apiVersion`, as kubeconform names them. An invalid resource has one `<failure>` per
finding, a resource that could not be checked an `<error>`, a skipped one `<skipped />`. A
finding that belongs to no resource (a file that does not parse) is a test case of its own,
named after its position. No `time` attributes, so the same report gives the same bytes. It
validates against the JUnit XSD in kubeconform's acceptance tests.

Names, file names and messages quote the input, and CI test views show them as they are: they
go through `printable`, as in the text format, which also turns every character XML 1.0
cannot carry even escaped (C0 controls, lone surrogates, U+FFFE/U+FFFF) into an escape.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from meshcanary.problem import Problem, Severity, printable
from meshcanary.report import Report, ResourceResult, Status, file_order, unattached
from meshcanary.report.text import format_problem


def _outcome(case: ET.Element, tag: str, problem: Problem | None, fallback: str) -> None:
    element = ET.SubElement(case, tag)
    if problem is None:
        element.set("message", fallback)
        return
    element.set("message", printable(f"{problem.location}: {problem.message}"))
    element.set("type", printable(problem.rule))
    element.text = format_problem(problem)  # printable already, hint on its own line


def _resource_case(result: ResourceResult) -> ET.Element:
    ref = result.resource
    name = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
    case = ET.Element(
        "testcase",
        {"name": printable(name), "classname": printable(f"{ref.kind}@{ref.api_version}")},
    )
    if result.status is Status.SKIPPED:
        ET.SubElement(case, "skipped")  # the XSD allows no attributes on it
    elif result.status is Status.ERROR:
        for problem in result.problems or (None,):
            _outcome(case, "error", problem, "could not be checked")
    elif result.status is Status.INVALID:
        for problem in result.problems or (None,):
            _outcome(case, "failure", problem, "invalid")
    elif result.problems:  # valid, with findings below the failing severity
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(format_problem(p) for p in result.problems)
    return case


def _loose_case(problem: Problem) -> ET.Element:
    case = ET.Element(
        "testcase", {"name": printable(str(problem.location)), "classname": printable(problem.rule)}
    )
    _outcome(case, "error" if problem.severity is Severity.ERROR else "failure", problem, "")
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
    def render(self, report: Report, *, summary: bool, color: bool) -> str:
        by_file: dict[str, list[ET.Element]] = {file: [] for file in file_order(report)}
        for result in report.results:
            by_file[result.file].append(_resource_case(result))
        for problem in unattached(report):
            by_file[problem.location.file].append(_loose_case(problem))

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
