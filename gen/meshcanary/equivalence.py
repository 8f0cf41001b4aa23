"""Whether a rendered tree does what the manifests it was imported from did.

`compare` pairs the input's objects with the rendered ones (Deployments by the names the
caller gives, everything else by kind and name) and compares them field by field, without
what the API server sets; Istio routing is compared as decision tables (`routing`), so a
route written another way that decides the same is no difference. Each `Difference` names
the input object and the JSON path in it, so its `file:line:col` is where to look.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from meshcanary import routing
from meshcanary.manifest import Resource, pointer
from meshcanary.mesh import ISTIO, api_group, describe, namespace_of
from meshcanary.problem import Location, ResourceRef, printable

Path = tuple[str | int, ...]
ObjectKey = tuple[str, str, str, str]  # (API group, kind, namespace, name)

ABSENT = "(absent)"
_ROUTING_KINDS = frozenset({"VirtualService", "DestinationRule"})
# Set by the API server or by kubectl, never by the author of a manifest.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
)
_SERVER_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
)
_SERVICE_SERVER_FIELDS = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")


class _Absent:
    def __repr__(self) -> str:
        return ABSENT


_MISSING: Any = _Absent()


@dataclass(frozen=True)
class Difference:
    """One way the rendered tree differs from the input, at a JSON path of an input object.

    `resource` is the input object (None when only the rendered tree has the object or the
    route); `kind` and `name` are of the input object, else of the rendered one; `path` is
    where in it; `expected` and `actual` are printable values (`(absent)` when missing).
    """

    kind: str
    name: str
    path: Path
    expected: str
    actual: str
    message: str
    resource: Resource | None = field(default=None, compare=False, repr=False)
    rendered: Resource | None = field(default=None, compare=False, repr=False)

    @property
    def location(self) -> Location:
        """In the input object; for what only the rendered tree has, in kustomize's output."""
        if self.resource is not None:
            return self.resource.location(self.path)
        if self.rendered is not None:
            return self.rendered.location()
        return Location("(rendered tree)")

    @property
    def ref(self) -> ResourceRef:
        """The input object, else the rendered one."""
        found = self.resource or self.rendered
        return found.ref if found is not None else ResourceRef("", self.kind, self.name)

    @property
    def pointer(self) -> str:
        return pointer(self.path)

    def __str__(self) -> str:
        return (
            f"{self.location}: {self.kind} {self.name} {self.pointer or '/'}: {self.message} "
            f"(input: {self.expected}; rendered: {self.actual})"
        )


def compare(
    expected: Sequence[Resource],
    actual: Sequence[Resource],
    *,
    namespace: str | None = None,
    deployment_names: Mapping[str, str] | None = None,
    names: Mapping[tuple[str, str], str] | None = None,
    added_labels: Collection[str] = (),
    added_annotations: Collection[str] = (),
) -> list[Difference]:
    """How `actual` (the kustomize build of a rendered tree) differs from `expected` (the input).

    `namespace`: where the rendered objects live, when the input's were elsewhere (or nowhere).
    `deployment_names` (input name → rendered name) and `names` ((kind, input name) →
    rendered name) pair renamed objects. `added_labels` and `added_annotations` are metadata
    keys the caller adds on purpose: they are no difference where the input lacks them.
    """
    renamed = {("Deployment", k): v for k, v in (deployment_names or {}).items()}
    renamed.update(names or {})
    found = [
        *_objects(expected, actual, namespace, renamed, added_labels, added_annotations),
        *_routing(expected, actual, namespace, renamed),
    ]
    unique: dict[tuple[int, Path, str, str, str, str], Difference] = {}
    for difference in found:
        key = (
            id(difference.resource),
            difference.path,
            difference.kind,
            difference.name,
            difference.expected,
            difference.actual,
        )
        unique.setdefault(key, difference)
    return sorted(unique.values(), key=_order)


def _order(difference: Difference) -> tuple[object, ...]:
    location = difference.location
    place = (difference.resource is None, location.file, location.line, location.column)
    return (*place, difference.kind, difference.name, difference.pointer, difference.message)


def show(value: object) -> str:
    """A value as one printable line of JSON; `(absent)` for a missing one."""
    if value is _MISSING:
        return ABSENT
    return printable(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


# Objects -------------------------------------------------------------------------------------


def _is_routing(resource: Resource) -> bool:
    return resource.kind in _ROUTING_KINDS and api_group(resource) in ISTIO


def _objects(
    expected: Sequence[Resource],
    actual: Sequence[Resource],
    namespace: str | None,
    renamed: Mapping[tuple[str, str], str],
    added_labels: Collection[str],
    added_annotations: Collection[str],
) -> Iterator[Difference]:
    rendered: dict[ObjectKey, Resource] = {}
    for resource in actual:
        if not _is_routing(resource):
            rendered.setdefault(_key(resource, namespace_of(resource), {}), resource)
    paired: set[ObjectKey] = set()
    for resource in expected:
        if _is_routing(resource):
            continue
        key = _key(resource, namespace or namespace_of(resource), renamed)
        if key in paired:
            continue  # a duplicate in the input: the first one is what gets compared
        counterpart = rendered.get(key)
        if counterpart is None:
            yield Difference(
                resource.kind,
                resource.name,
                (),
                "present",
                ABSENT,
                f"the rendered tree has no {resource.kind} {key[3]}",
                resource,
            )
            continue
        paired.add(key)
        before = _normalized(resource, renamed)
        after = _normalized(counterpart, {})
        _drop_added(before, after, "labels", added_labels)
        _drop_added(before, after, "annotations", added_annotations)
        for path, old, new in diff(before, after):
            yield Difference(
                resource.kind,
                resource.name,
                path,
                show(old),
                show(new),
                _message(old, new),
                resource,
            )
    for key, resource in rendered.items():
        if key not in paired:
            yield Difference(
                resource.kind,
                resource.name,
                (),
                ABSENT,
                "present",
                f"the rendered tree adds {describe(resource)}, which the input does not have",
                rendered=resource,
            )


def _key(resource: Resource, namespace: str, renamed: Mapping[tuple[str, str], str]) -> ObjectKey:
    name = renamed.get((resource.kind, resource.name), resource.name)
    return api_group(resource), resource.kind, namespace, name


def _message(old: object, new: object) -> str:
    if old is _MISSING:
        return "the rendered tree adds this field"
    if new is _MISSING:
        return "the rendered tree lacks this field"
    return "the rendered tree has another value"


def _normalized(resource: Resource, renamed: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    """The object as its author wrote it: no status, nothing the server sets, defaults filled."""
    data = copy.deepcopy(resource.data)
    for key in ("status", "apiVersion"):
        data.pop(key, None)
    meta = data.get("metadata")
    if isinstance(meta, dict):
        for key in (*_SERVER_METADATA, "name", "namespace"):
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for key in _SERVER_ANNOTATIONS:
                annotations.pop(key, None)
        for key in ("labels", "annotations"):
            if meta.get(key) == {}:
                del meta[key]
        if not meta:
            del data["metadata"]
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return data
    kind = resource.kind
    if kind == "Service":
        for key in _SERVICE_SERVER_FIELDS:
            spec.pop(key, None)
        spec.setdefault("type", "ClusterIP")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
    elif kind == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("minReadySeconds", 0)
        # What the API server fills in for a Deployment that names no strategy, or half of one.
        strategy = spec.setdefault("strategy", {})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                if isinstance(rolling, dict):
                    rolling.setdefault("maxSurge", "25%")
                    rolling.setdefault("maxUnavailable", "25%")
    elif kind == "HorizontalPodAutoscaler":
        target = spec.get("scaleTargetRef")
        if isinstance(target, dict) and isinstance(target.get("name"), str):
            target["name"] = renamed.get((str(target.get("kind")), target["name"]), target["name"])
    return data


def _drop_added(
    before: dict[str, Any], after: dict[str, Any], where: str, added: Collection[str]
) -> None:
    """Forget keys the caller added on purpose, where the input did not set them."""
    had = (before.get("metadata") or {}).get(where) or {}
    meta = after.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get(where), dict):
        return
    values = meta[where]
    for key in added:
        if key not in had:
            values.pop(key, None)
    if not values:
        del meta[where]
    if not meta and "metadata" not in before:
        del after["metadata"]


def diff(old: object, new: object, path: Path = ()) -> Iterator[tuple[Path, Any, Any]]:
    """(path, old value, new value) of every place two JSON values differ; paths into `old`.

    Lists of objects that all have a distinct `name` (containers, env, ports, volumes) are
    paired by name, as a strategic merge pairs them; other lists by position.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            yield from diff(value, new.get(key, _MISSING), (*path, key))
        for key, value in new.items():
            if key not in old:
                yield (*path, key), _MISSING, value
    elif isinstance(old, list) and isinstance(new, list):
        old_names, new_names = _names(old), _names(new)
        if old_names is not None and new_names is not None:
            position = {name: index for index, name in enumerate(new_names)}
            for index, name in enumerate(old_names):
                there = new[position[name]] if name in position else _MISSING
                yield from diff(old[index], there, (*path, index))
            for index, name in enumerate(new_names):
                if name not in old_names:
                    yield (*path, len(old) + index), _MISSING, new[index]
            if [n for n in old_names if n in position] != [n for n in new_names if n in old_names]:
                yield path, old_names, new_names  # the same entries in another order
            return
        for index, value in enumerate(old):
            yield from diff(value, new[index] if index < len(new) else _MISSING, (*path, index))
        for index in range(len(old), len(new)):
            yield (*path, index), _MISSING, new[index]
    elif not _same(old, new):
        yield path, old, new


def _names(entries: list[Any]) -> list[str] | None:
    names = [e.get("name") if isinstance(e, dict) else None for e in entries]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return names  # type: ignore[return-value]


def _same(old: object, new: object) -> bool:
    # `True == 1` in Python, not in Kubernetes.
    return isinstance(old, bool) == isinstance(new, bool) and old == new


# Routing -------------------------------------------------------------------------------------


def _routing(
    expected: Sequence[Resource],
    actual: Sequence[Resource],
    namespace: str | None,
    renamed: Mapping[tuple[str, str], str],
) -> Iterator[Difference]:
    def workload(deployment: Resource) -> str:
        return renamed.get(("Deployment", deployment.name), deployment.name)

    before = routing.table(expected, workload, namespace=namespace)
    after = routing.table(actual)
    for key in sorted(set(before.routes) | set(after.routes)):
        old, new = before.lookup(key), after.lookup(key)
        where = _where(key)
        if old is None and new is not None:
            first = new[0]
            yield Difference(
                first.resource.kind if first.resource else "VirtualService",
                first.resource.name if first.resource else "",
                (),
                ABSENT,
                _show_decisions(new),
                f"{where}: the rendered tree routes what the input does not",
                rendered=first.resource,
            )
        elif new is None and old is not None:
            first = old[0]
            yield _at(
                first,
                first.route_path[:2],
                _show_decisions(old),
                ABSENT,
                f"{where}: the rendered tree does not route this",
            )
        elif old is not None and new is not None:
            yield from _decisions(where, old, new)
    yield from _policies(expected, actual, namespace, workload)


def _where(key: routing.Key) -> str:
    gateway, host, protocol = key
    return f"{host} ({protocol}, gateway {gateway})"


def _show_decisions(decisions: Sequence[routing.Decision]) -> str:
    return "; ".join(
        f"{routing.show_condition(d.condition)} → {routing.show_shares(d.action)}"
        for d in decisions
    )


def _at(decision: routing.Decision, path: Path, old: str, new: str, message: str) -> Difference:
    resource = decision.resource
    return Difference(
        resource.kind if resource else "",
        resource.name if resource else "",
        path,
        printable(old),
        printable(new),
        message,
        resource,
    )


class _Decides:
    """The decision taken for requests that meet a condition and were not decided before it.

    Only the same condition or a catch-all is known to cover them; conditions that merely
    overlap are not worked out. A table holds each condition once and ends at its catch-all.
    """

    def __init__(self, decisions: Sequence[routing.Decision]) -> None:
        self.by_condition = {routing.canonical(d.condition): d for d in decisions}
        self.otherwise = decisions[-1] if decisions and decisions[-1].catch_all else None

    def __call__(self, condition: Mapping[str, Any]) -> routing.Decision | None:
        return self.by_condition.get(routing.canonical(condition), self.otherwise)


def _decisions(
    where: str, old: Sequence[routing.Decision], new: Sequence[routing.Decision]
) -> Iterator[Difference]:
    matcher = SequenceMatcher(
        None,
        [routing.canonical(d.condition) for d in old],
        [routing.canonical(d.condition) for d in new],
        autojunk=False,
    )
    in_old, in_new = _Decides(old), _Decides(new)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for before, after in zip(old[i1:i2], new[j1:j2], strict=True):
                yield from _outcome(where, before, after)
            continue
        for removed in old[i1:i2]:
            decided = in_new(removed.condition)
            if decided is None or decided.outcome() != removed.outcome():
                condition = routing.show_condition(removed.condition)
                yield _at(
                    removed,
                    removed.condition_path,
                    f"{condition} → {routing.show_shares(removed.action)}",
                    f"no such condition; {_fallen(decided)}",
                    f"{where}: the rendered tree decides these requests otherwise",
                )
        for added in new[j1:j2]:
            deciding = in_old(added.condition)
            condition = routing.show_condition(added.condition)
            if deciding is None:
                yield _at(
                    old[0],
                    old[0].route_path[:2],
                    "no route for these requests",
                    f"{condition} → {routing.show_shares(added.action)}",
                    f"{where}: the rendered tree routes requests the input does not",
                )
            elif deciding.outcome() != added.outcome():
                yield _at(
                    deciding,
                    deciding.route_path,
                    f"{condition}: {_fallen(deciding)}",
                    f"{condition} → {routing.show_shares(added.action)}",
                    f"{where}: the rendered tree decides these requests otherwise",
                )


def _fallen(decision: routing.Decision | None) -> str:
    if decision is None:
        return "no route"
    return f"they reach {routing.show_condition(decision.condition)} → " + routing.show_shares(
        decision.action
    )


def _outcome(where: str, old: routing.Decision, new: routing.Decision) -> Iterator[Difference]:
    """What one condition leads to on each side: shares, mirrors, the route's other fields."""
    condition = routing.show_condition(old.condition)
    if old.action != new.action:
        changed = sorted(
            t for t in {*old.action, *new.action} if old.action.get(t) != new.action.get(t)
        )
        # Shares are relative: point at a weight that was written differently, if one was.
        changed.sort(key=lambda t: old.weights.get(t) == new.weights.get(t))
        path = next(
            (old.sources[t] for t in changed if t in old.sources), (*old.route_path, "route")
        )
        yield _at(
            old,
            path,
            routing.show_shares(old.action),
            routing.show_shares(new.action),
            f"{where}: {condition}: the rendered tree sends these requests elsewhere",
        )
    if old.mirrors != new.mirrors:
        route = old.resource.get(*old.route_path) if old.resource else None
        key = next((k for k in ("mirror", "mirrors") if isinstance(route, dict) and k in route), "")
        yield _at(
            old,
            (*old.route_path, key) if key else old.route_path,
            routing.show_shares(old.mirrors, unit="% copied to"),
            routing.show_shares(new.mirrors, unit="% copied to"),
            f"{where}: {condition}: the rendered tree mirrors otherwise",
        )
    for base, before, after in (
        (old.route_path, old.options, new.options),
        (("spec",), old.scope, new.scope),
    ):
        for path, value, other in diff(before, after, base):
            yield _at(
                old,
                path,
                show(value),
                show(other),
                f"{where}: {condition}: {_message(value, other)}",
            )


def _policies(
    expected: Sequence[Resource],
    actual: Sequence[Resource],
    namespace: str | None,
    workload: routing.Workload,
) -> Iterator[Difference]:
    """DestinationRules' traffic policies, per host and per set of workloads a subset selects."""
    before = routing.policies(expected, workload, namespace=namespace)
    after = routing.policies(actual)
    for host in sorted(set(before) | set(after)):
        old, new = before.get(host), after.get(host)
        old_settings = dict(old.settings) if old else {}
        new_settings = dict(new.settings) if new else {}
        old_subsets = {"+".join(k): v for k, v in old.subsets.items()} if old else {}
        new_subsets = {"+".join(k): v for k, v in new.subsets.items()} if new else {}
        resource = old.resource if old else None
        shown = new.resource if new and not old else resource
        for path, value, other in diff(old_settings, new_settings, ("spec",)):
            yield Difference(
                shown.kind if shown else "DestinationRule",
                shown.name if shown else "",
                path if old else (),
                show(value),
                show(other),
                f"{host}: {_message(value, other)}",
                resource,
                None if old else shown,
            )
        for path, value, other in diff(old_subsets, new_subsets):
            yield Difference(
                shown.kind if shown else "DestinationRule",
                shown.name if shown else "",
                ("spec", "subsets") if old else (),
                show(value),
                show(other),
                f"{host}: the traffic policy of the subset of {path[0]}: {_message(value, other)}",
                resource,
                None if old else shown,
            )
