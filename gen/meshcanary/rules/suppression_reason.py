"""Every `meshcanary.dev/ignore` entry names a known rule and gives a reason.

A suppression is a decision someone made about one object; the reason is what lets the next
person (or the same one in three months) judge whether it still holds. An entry without one
(`"weights-sum-100"` or `"weights-sum-100: "`) is reported, and so is an entry naming a rule
that does not exist: it suppresses nothing, usually because the ID was misspelt, so the
finding it was meant to silence is still there, or the rule it named was renamed.

A release file's `ignore: {rule-id: reason}` (every object of the service) is held to the
same: an entry naming no rule or policy is reported at its key, and one without a reason is
refused when the file loads.

The annotation holds one `rule-id: reason` per line (or separated by `;`). An entry without a
reason still suppresses its rule, so the run shows this one finding instead of the original.
This rule itself cannot be suppressed by the annotation it checks (turn it off with a
severity override instead).

Fix: write `"<rule-id>: <why this object is an exception>"`, with an ID from `meshcanary
rules`.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.problem import Severity
from meshcanary.rules import IGNORE_ANNOTATION, Finding, Scope, all_rules

ID = "suppression-reason"
SEVERITY = Severity.ERROR
SUMMARY = "each meshcanary.dev/ignore entry names a known rule and gives a reason"
HINT = 'write each entry as "<rule-id>: <reason>" with a rule ID from `meshcanary rules`'
RELEASE_HINT = (
    "meshcanary renders no annotations on this object: a generated file edited by hand is "
    "rendered again with `meshcanary render --force`"
)
SUPPRESSIBLE = False


def check(scope: Scope) -> Iterator[Finding]:
    known: set[str] | None = None
    path = ["metadata", "annotations", IGNORE_ANNOTATION]
    for resource in scope.resources:
        value = resource.get(*path)
        if not isinstance(value, str):
            continue
        known = known if known is not None else {rule.ID for rule in all_rules()}
        for entry in value.replace(";", "\n").splitlines():
            rule, _, reason = entry.partition(":")
            rule = rule.strip()
            if not rule:
                continue
            if rule not in known:
                from difflib import get_close_matches  # only to suggest: 1 ms of every start

                close = get_close_matches(rule, sorted(known), n=1)
                yield Finding(
                    resource,
                    path,
                    f"{IGNORE_ANNOTATION} names unknown rule {rule!r}, so it suppresses nothing",
                    hint=f"did you mean {close[0]!r}?"
                    if close
                    else "use an ID that `meshcanary rules` lists",
                )
            elif not reason.strip():
                yield Finding(
                    resource,
                    path,
                    f"{IGNORE_ANNOTATION} suppresses {rule} without a reason",
                    hint=f'write "{rule}: <why this object is an exception>"',
                )
