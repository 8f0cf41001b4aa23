"""A Deployment's `spec.selector` matches the labels of its own pod template.

The API server rejects a Deployment whose selector does not match `spec.template.metadata
.labels` ("`selector` does not match template `labels`"), so the apply of the whole release
fails, typically halfway through a rollout. Caught here, it points at the selector entry
that does not match.

`matchLabels` entries must be present with the same value; `matchExpressions` are evaluated
with `In`, `NotIn`, `Exists` and `DoesNotExist` (an unknown operator is reported at the
operator). An empty selector is reported too: `apps/v1` refuses it, as it would select every
pod in the namespace.

Istio: none; the Kubernetes API server refuses such a Deployment, istioctl analyze does not
look.

Fix: make the selector a subset of the pod template labels. Remember that a Deployment's
selector cannot change after creation, so usually the template labels are the ones to fix.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import APPS, expression_matches, labels, of_kind, pod_labels
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "deployment-selector-matches-template"
SEVERITY = Severity.ERROR
SUMMARY = "a Deployment's selector matches its pod template labels"
HINT = "make spec.selector match spec.template.metadata.labels"
RELEASE_HINT = (
    "meshcanary sets the `version` label from the release file's `versions:`; a version folder "
    "edited by hand is rendered again with `meshcanary render --force`"
)
ISTIO_CODES: tuple[str, ...] = ()


def check(scope: Scope) -> Iterator[Finding]:
    for deployment in of_kind(scope, APPS, "Deployment"):
        selector = deployment.get("spec", "selector")
        if isinstance(selector, dict):
            yield from _check_selector(deployment, selector)


def _check_selector(deployment: Resource, selector: dict[str, object]) -> Iterator[Finding]:
    template = pod_labels(deployment)
    match_labels = labels(selector.get("matchLabels")) or {}
    expressions = selector.get("matchExpressions")
    expressions = expressions if isinstance(expressions, list) else []
    if not match_labels and not expressions:
        yield Finding(
            deployment,
            ["spec", "selector"],
            "selector is empty; it would select every pod in the namespace",
            hint="select on the pod template's `app` (and `version`) labels",
            key=True,
        )
        return
    for key, value in match_labels.items():
        if template.get(key) == value:
            continue
        has = f"has {key}={template[key]}" if key in template else f"has no label {key}"
        yield Finding(
            deployment,
            ["spec", "selector", "matchLabels", key],
            f"selector needs {key}={value} but the pod template {has}",
            key=True,
        )
    for index, expression in enumerate(expressions):
        if not isinstance(expression, dict):
            continue
        path: list[str | int] = ["spec", "selector", "matchExpressions", index]
        matched = expression_matches(expression, template)
        if matched is None:
            yield Finding(
                deployment,
                [*path, "operator"],
                f"unknown operator {expression.get('operator')!r}; use In, NotIn, Exists or "
                "DoesNotExist",
            )
        elif not matched:
            label = str(expression.get("key"))
            has = f"has {label}={template[label]}" if label in template else f"has no label {label}"
            yield Finding(
                deployment,
                path,
                f"selector expression {label} {expression.get('operator')} does not match: "
                f"the pod template {has}",
            )
