"""`import --verify`: the proof, on the user's own manifests, that what import writes renders
back to what it read.

The files an import would write go into a scratch folder with the environment file and the
imported services' bases, which is rendered and built with kustomize; each service's overlay
(and the environment's Gateways) is then compared with the objects it was imported from
(meshcanary.equivalence). A difference at a field a note already explains (normalized, or
dropped with --drop) is expected; any other one is a failure, and the import writes nothing.

Gateway API routes are rendered in another form than they may have been written (other
names, the rules split between a route bound to the Service and one bound to the Gateways):
they are compared by what they decide, on requests drawn from their conditions
(meshcanary.reach), and a request that reaches something else fails the proof, named.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import yaml

from meshcanary import equivalence, kustomize, reach, routing
from meshcanary.errors import InputError
from meshcanary.importer.context import BASES, DROPPED, NORMALIZED, REFUSED, Context
from meshcanary.importer.gateway_api import ROUTE_KINDS, is_gateway_api
from meshcanary.layout import GATEWAYS, OVERLAYS
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.problem import Location, Problem, Severity

RULE = "import-verify"
# Each service's routes render as they were, and only together do they send a request
# elsewhere: the Gateway API breaks ties between routes by age and name, which import changes.
TOGETHER = (
    "routes of several imported services claim these requests alike, and the Gateway API "
    "takes the oldest, then the first by name, which the rendered routes do not keep: give "
    "each its own condition (a longer path, a header), or import the services apart"
)


def verify(
    root: Path,
    written: Mapping[str, str],
    inputs: Mapping[str, list[Resource]],
    ctx: Context,
    renamed: Mapping[str, str] | None = None,
    services: Mapping[str, str] | None = None,
) -> list[Problem]:
    """The differences between each service's input objects and its rendered overlay that no
    note explains; empty when the import is proven."""
    from meshcanary.render import repository

    with tempfile.TemporaryDirectory(prefix="meshcanary-import-") as folder:
        scratch = Path(folder)
        # Only what the imported services render from: the environment file and their bases
        # (a reused base is not among the written files). The environment's other releases,
        # and every other environment, are no part of the proof.
        for relative in [ctx.env_path, *(f"{BASES}/{service}" for service in inputs)]:
            source = root / relative
            if relative in written or not source.exists():
                continue
            if source.is_dir():
                shutil.copytree(source, scratch / relative, symlinks=True)
            else:
                (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, scratch / relative)
        for relative, text in written.items():
            path = scratch / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        repository.render(scratch, [ctx.environment], force=True)
        built = _build(scratch, ctx.environment, [*inputs, GATEWAYS])
    explained = [n for n in ctx.notes.problems if n.rule != REFUSED and n.resource is not None]
    problems: list[Problem] = []
    for service, expected in inputs.items():
        # The environment's other Gateways (declared before this import) are not compared.
        imported = {r.name for r in expected if r.kind == "Gateway"}
        gateways = [r for r in built.get(GATEWAYS, []) if r.name in imported]
        actual = built.get(service, []) + gateways
        if not any(r.kind == "DestinationRule" for r in expected):
            # Without a DestinationRule among the manifests, import reads a subset as the pods'
            # version label (a note says so at each subset): compare the routes that way.
            expected = [*expected, *(r for r in actual if r.kind == "DestinationRule")]
        if any(_is_route(r) for r in [*expected, *actual]):
            problems += _traffic(expected, actual, ctx, renamed or {}, written, explained)
            expected = [r for r in expected if not _is_route(r)]
            actual = [r for r in actual if not _is_route(r)]
        for difference in equivalence.compare(
            expected,
            actual,
            namespace=ctx.target_namespace,
            deployment_names=renamed,
            names={("Service", name): new for name, new in (services or {}).items()},
            # Every object of a version's folder carries its version label; the input's
            # Deployment may carry it on its pods only.
            added_labels=("version",),
        ):
            if _explained(difference, explained):
                continue
            problems.append(
                Problem(
                    difference.location,
                    f"verify: {difference.kind} {difference.name} {difference.pointer or '/'}: "
                    f"{difference.message} (input: {difference.expected}; rendered: "
                    f"{difference.actual})",
                    "the rendered tree would not do what the manifests do; please report this "
                    "import as a meshcanary bug, with the manifests",
                    rule=RULE,
                    severity=Severity.ERROR,
                    resource=difference.ref,
                    path=difference.pointer,
                )
            )
    routed = [s for s, found in inputs.items() if any(_is_route(r) for r in found)]
    if len(routed) > 1:
        # Routes of different services meet on a Gateway's host: which takes a request depends
        # on all of them (and, in a tie, on their names and ages, which import changes).
        imported = {r.name for s in routed for r in inputs[s] if r.kind == "Gateway"}
        every_expected = [r for s in routed for r in inputs[s]]
        every_actual = [r for s in routed for r in built.get(s, [])]
        every_actual += [r for r in built.get(GATEWAYS, []) if r.name in imported]
        if not any(r.kind == "DestinationRule" for r in every_expected):
            every_expected += [r for r in every_actual if r.kind == "DestinationRule"]
        together = _traffic(every_expected, every_actual, ctx, renamed or {}, written, explained)
        problems += [replace(p, hint=TOGETHER) for p in together if p not in problems]
    return sorted(dict.fromkeys(problems), key=Problem.sort_key)


def _build(root: Path, environment: str, units: Sequence[str]) -> dict[str, list[Resource]]:
    """Each overlay's objects, as kustomize builds them."""
    builder = kustomize.builder(root)
    targets = []
    for unit in units:
        folder = root / OVERLAYS / environment / unit
        if (folder / "kustomization.yaml").is_file():
            targets.append(kustomize.Target(folder, f"{OVERLAYS}/{environment}/{unit}"))
    found: dict[str, list[Resource]] = {}
    for result in builder.build_many(targets, None):
        if result.problems:
            raise InputError(result.problems)
        if not result.ok:
            raise InputError(f"{result.folder}: kustomize build failed: {result.error}")
        parsed = Parsed()
        parse_text(result.output, f"{result.folder} (built)", parsed)
        found[Path(result.folder).name] = list(parsed.resources)
    return found


def _explained(difference: equivalence.Difference, notes: Sequence[Problem]) -> bool:
    """Whether a note (normalized or dropped) stands at the difference's field or above it."""
    where = difference.pointer
    for note in notes:
        if note.resource != difference.ref or note.path is None:
            continue
        if note.rule == NORMALIZED and not note.path:
            continue  # "imported once", "added to the environment": not a field's change
        if where == note.path or where.startswith(note.path + "/"):
            return True
    return False


def _is_route(resource: Resource) -> bool:
    return resource.kind in ROUTE_KINDS and is_gateway_api(resource)


def _traffic(
    expected: Sequence[Resource],
    actual: Sequence[Resource],
    ctx: Context,
    renamed: Mapping[str, str],
    written: Mapping[str, str],
    explained: Sequence[Problem],
) -> list[Problem]:
    """Each (gateway, host, protocol) whose input and rendered routes send a request to
    different places, with the first such request; a Service without routes spreads its
    requests over its pods (the table's default)."""

    def workload(deployment: Resource) -> str:
        return renamed.get(deployment.name, deployment.name)

    # A version's Service is compared as an object (its differences noted or not there); the
    # routes are compared through the rendered one, so that a port it gained is no difference.
    rendered = {r.name: r for r in actual if r.kind == "Service"}
    expected = [
        rendered.get(r.name, r) if r.kind == "Service" and not _is_base(r, expected) else r
        for r in expected
    ]
    before = routing.table(expected, workload, namespace=ctx.target_namespace)
    after = routing.table(actual)
    asked = reach.requests([before, after], _cookies(written))
    problems: list[Problem] = []
    for key in sorted(set(before.routes) | set(after.routes)):
        old, new = before.lookup(key) or [], after.lookup(key) or []
        if key[2] != "http":
            # A tcp or tls route decides by port and SNI name, no request to draw: the same
            # conditions in the same order, each with the same outcome.
            if _decided(old) != _decided(new):
                deciding = old[0] if old else None
                if deciding is None or not _excused(deciding, explained):
                    problems.append(_layer4(key, old, new, deciding))
            continue
        for request in asked:
            was, now = routing.reached(old, request), routing.reached(new, request)
            if _outcome(was) == _outcome(now):
                continue
            deciding = was or (old[0] if old else None)
            if deciding is not None and _excused(deciding, explained):
                continue  # this request's rule lost a field the user let go; the next may not
            problems.append(_problem(key, request, was, now, deciding))
            break
    return problems


def _is_base(service: Resource, resources: Sequence[Resource]) -> bool:
    """Whether no other Service of `resources` selects a part of what `service` selects."""
    mine = service.get("spec", "selector")
    mine = mine if isinstance(mine, dict) else {}
    for other in resources:
        theirs = other.get("spec", "selector") if other.kind == "Service" else None
        if other is not service and isinstance(theirs, dict) and theirs.items() < mine.items():
            return False
    return True


def _decided(decisions: Sequence[routing.Decision]) -> list[tuple[str, object]]:
    return [(routing.canonical(d.condition), d.outcome()) for d in decisions]


def _layer4(
    key: routing.Key,
    old: Sequence[routing.Decision],
    new: Sequence[routing.Decision],
    deciding: routing.Decision | None,
) -> Problem:
    gateway, host, protocol = key
    resource = deciding.resource if deciding is not None else None
    shown = "; ".join(_reaches(d, None) for d in old) or "no route"
    rendered = "; ".join(_reaches(d, None) for d in new) or "no route"
    return Problem(
        resource.location(list(deciding.route_path))
        if resource is not None and deciding is not None
        else _rendered(new[0] if new else None),
        f"verify: {protocol} connections to {host} (gateway {gateway}) reach {shown} in the "
        f"input, {rendered} in the rendered tree",
        "the rendered tree would not do what the manifests do; please report this "
        "import as a meshcanary bug, with the manifests",
        rule=RULE,
        severity=Severity.ERROR,
        resource=resource.ref if resource is not None else None,
    )


def _outcome(decision: routing.Decision | None) -> object:
    return decision.outcome() if decision is not None else None


def _excused(decision: routing.Decision, notes: Sequence[Problem]) -> bool:
    """Whether the input's deciding rule lost a field the user dropped (--drop), had its
    weights rounded (a note at its backendRefs), or a note stands at or above the rule."""
    resource = decision.resource
    if resource is None:
        return False
    rule = equivalence.Difference("", "", decision.route_path, "", "", "", resource).pointer
    for note in notes:
        if note.resource != resource.ref or note.path is None or not note.path:
            continue
        below = note.path.startswith(rule + "/")
        above = rule == note.path or rule.startswith(note.path + "/")
        # The rule's weights, rounded to whole percent and said so at its backendRefs.
        rounded = note.rule == NORMALIZED and note.path == f"{rule}/backendRefs"
        if (note.rule == DROPPED and below) or above or rounded:
            return True
    return False


def _problem(
    key: routing.Key,
    request: routing.Request,
    was: routing.Decision | None,
    now: routing.Decision | None,
    deciding: routing.Decision | None,
) -> Problem:
    gateway, host, protocol = key
    shown = f"{request.method} {host}{request.path}"
    if request.port is not None:
        shown += f" on port {request.port}"
    for name, value in sorted(request.headers.items()):
        shown += f" {name}: {value}"
    for name, value in sorted(request.query.items()):
        shown += f" ?{name}={value}"
    resource = deciding.resource if deciding is not None else None
    path = list(deciding.condition_path) if deciding is not None else []
    location = resource.location(path) if resource is not None else _rendered(now)
    return Problem(
        location,
        f"verify: {protocol} request {shown} (gateway {gateway}) reaches {_reaches(was, now)} "
        f"in the input, {_reaches(now, was)} in the rendered tree",
        "the rendered tree would not do what the manifests do; please report this "
        "import as a meshcanary bug, with the manifests",
        rule=RULE,
        severity=Severity.ERROR,
        resource=resource.ref if resource is not None else None,
    )


def _rendered(decision: routing.Decision | None) -> Location:
    if decision is not None and decision.resource is not None:
        return decision.resource.location()
    return Location("(rendered tree)")


def _reaches(decision: routing.Decision | None, other: routing.Decision | None) -> str:
    """What a decision does; its mirrors and options only where `other`'s differ."""
    if decision is None:
        return "no route"
    shown = routing.show_shares(decision.action)
    mirrors, options = decision.mirrors, decision.options
    if mirrors and (other is None or other.mirrors != mirrors):
        shown += f", mirrored {routing.show_shares(mirrors, unit='% to')}"
    if options and (other is None or other.options != options or other.scope != decision.scope):
        shown += f", with {routing.show_condition({**options, **decision.scope})}"
    return shown


def _cookies(written: Mapping[str, str]) -> dict[str, set[str]]:
    """The cookies the release files' pins name, as Cookie header values to try: a regular
    expression cannot be sampled, the values it was written for can."""
    found: set[str] = set()
    for path, text in written.items():
        if not path.endswith(".yaml") or "/environments/" not in f"/{path}":
            continue
        data = yaml.safe_load(text)
        pins = data.get("match") if isinstance(data, dict) else None
        for pin in pins if isinstance(pins, list) else []:
            cookies = pin.get("cookies") if isinstance(pin, dict) else None
            if isinstance(cookies, dict):
                found.update(f"{name}={value}" for name, value in cookies.items())
    return {"cookie": found} if found else {}
