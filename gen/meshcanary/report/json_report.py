"""The `json` format: every finding and the counts, for scripts.

The key set is a contract; keys are added, never renamed or removed:

    {
      "findings": [
        {
          "rule": str, "severity": "error" | "warning" | "info",
          "message": str, "hint": str,               # "" when there is no hint
          "file": str, "line": int, "column": int,   # 1-based
          "resource": {"apiVersion": str, "kind": str, "name": str, "namespace": str} | null,
          "path": str                                 # JSON Pointer into the resource, or ""
        }
      ],
      "summary": {
        "resources": int, "files": int,              # kubeconform's summary counts
        "valid": int, "invalid": int, "errors": int, "skipped": int,
        "errorFindings": int, "warningFindings": int, "infoFindings": int
      }
    }

Findings are in report order (by file, line, column); output is indented by two spaces and
ends with a newline. It is the same with and without `--summary`.

Values are exactly what was found, file names and quoted input included; the encoding makes
them safe to print (`printable_json`): control, bidi and other invisible characters are
`\\uXXXX` escapes, so the text shown in a terminal or a CI log is what a JSON reader reads.
"""

from __future__ import annotations

from typing import Any

from meshcanary.problem import Problem, Severity, printable_json
from meshcanary.report import Report, Status


def finding(problem: Problem) -> dict[str, Any]:
    resource = problem.resource
    return {
        "rule": problem.rule,
        "severity": problem.severity.value,
        "message": problem.message,
        "hint": problem.hint,
        "file": problem.location.file,
        "line": problem.location.line,
        "column": problem.location.column,
        "resource": None
        if resource is None
        else {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "name": resource.name,
            "namespace": resource.namespace,
        },
        "path": problem.path,
    }


def document(report: Report) -> dict[str, Any]:
    def findings(severity: Severity) -> int:
        return sum(1 for p in report.problems if p.severity is severity)

    return {
        "findings": [finding(p) for p in report.problems],
        "summary": {
            "resources": len(report.results),
            "files": report.files,
            "valid": report.count(Status.VALID),
            "invalid": report.count(Status.INVALID),
            "errors": report.count(Status.ERROR),
            "skipped": report.count(Status.SKIPPED),
            "errorFindings": findings(Severity.ERROR),
            "warningFindings": findings(Severity.WARNING),
            "infoFindings": findings(Severity.INFO),
        },
    }


class JsonReporter:
    def render(
        self, report: Report, *, summary: bool, color: bool, fail_on: Severity = Severity.ERROR
    ) -> str:
        return printable_json(document(report)) + "\n"
