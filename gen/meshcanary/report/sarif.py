"""The `sarif` format: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One run whose driver is meshcanary, listing every rule the report knows (`report.rules`)
plus any rule a finding names without being listed there (`schema`, `input`, a policy).
Each finding is a result with `ruleId`, `ruleIndex` into that list, a `level` (`error`,
`warning`, `note`), the message with its hint, and one physical location: the file as a
relative, forward-slash URI under `%SRCROOT%`, and its start line and column.

`partialFingerprints` hashes the rule, file, resource, field and message, not the line, so
code scanning keeps an alert open across edits that only move it; equal findings in one run
are told apart by a `:N` occurrence suffix, as GitHub's own line hashes are.

Message texts are for people (code scanning shows them as they are): what they quote from the
input goes through `printable`, as in the text format, and the only line break is the one
before the hint. Identifiers (rule IDs, URIs) keep their values, and the JSON is written by
`printable_json`, so no control or bidi character is raw in the file.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import quote

from meshcanary import __version__
from meshcanary.problem import Problem, Severity, printable, printable_json
from meshcanary.report import Report, RuleInfo, qualified_name

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://meshcanary.dev"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
# Findings can name rules that are not in the registry; these are the ones meshcanary makes.
_UNLISTED = {
    "input": "The input could not be read or parsed.",
    "schema": "A resource does not match its Kubernetes or Istio schema.",
}


def _rules(report: Report) -> list[RuleInfo]:
    rules = list(report.rules)
    listed = {rule.id for rule in rules}
    unlisted: dict[str, Severity] = {}
    for problem in report.problems:
        if problem.rule in listed:
            continue
        seen = unlisted.get(problem.rule)
        if seen is None or problem.severity.rank > seen.rank:
            unlisted[problem.rule] = problem.severity
    for rule_id in sorted(unlisted):
        summary = _UNLISTED.get(rule_id, f"Findings of the check `{printable(rule_id)}`.")
        rules.append(RuleInfo(id=rule_id, severity=unlisted[rule_id], summary=summary))
    return rules


def _name(rule_id: str) -> str:
    """`weights-sum` → `WeightsSum`: SARIF viewers expect an identifier-like name."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", rule_id))


def _rule(rule: RuleInfo) -> dict[str, Any]:
    summary = rule.summary or rule.id  # SARIF viewers show these; none may be empty
    full = rule.help or summary
    return {
        "id": rule.id,
        "name": _name(rule.id) or rule.id,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": full},
        "help": {"text": full},
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
    }


def artifact_location(file: str) -> dict[str, str]:
    """A relative file as a forward-slash URI under `%SRCROOT%`; an absolute one as `file://`."""
    path = file.replace("\\", "/")
    if path.startswith("/"):
        return {"uri": "file://" + quote(path)}
    while path.startswith("./"):
        path = path[2:]
    return {"uri": quote(path), "uriBaseId": "%SRCROOT%"}


def _fingerprint(problem: Problem) -> str:
    resource = problem.resource
    parts = [
        problem.rule,
        problem.location.file,
        "" if resource is None else qualified_name(resource),
        problem.path,
        problem.message,
    ]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _result(problem: Problem, index: dict[str, int], fingerprint: str) -> dict[str, Any]:
    text = printable(problem.message)
    if problem.hint:
        text += f"\nhint: {printable(problem.hint)}"
    loc = problem.location
    return {
        "ruleId": problem.rule,
        "ruleIndex": index[problem.rule],
        "level": _LEVELS[problem.severity],
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact_location(loc.file),
                    "region": {"startLine": max(loc.line, 1), "startColumn": max(loc.column, 1)},
                }
            }
        ],
        "partialFingerprints": {"meshcanary/v1": fingerprint},
    }


def _results(report: Report, index: dict[str, int]) -> list[dict[str, Any]]:
    results = []
    seen: dict[str, int] = {}
    for problem in report.problems:
        # Equal findings in one file stay distinct alerts, as GitHub's own line hashes do.
        digest = _fingerprint(problem)
        seen[digest] = seen.get(digest, 0) + 1
        results.append(_result(problem, index, f"{digest}:{seen[digest]}"))
    return results


def document(report: Report) -> dict[str, Any]:
    rules = _rules(report)
    index = {rule.id: number for number, rule in enumerate(rules)}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "meshcanary",
                        "informationUri": INFORMATION_URI,
                        "version": __version__,
                        "rules": [_rule(rule) for rule in rules],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": _results(report, index),
            }
        ],
    }


class SarifReporter:
    def render(
        self, report: Report, *, summary: bool, color: bool, fail_on: Severity = Severity.ERROR
    ) -> str:
        return printable_json(document(report)) + "\n"
