"""Import: existing manifests of an application → a Kustomize base and a release file per
service, and the environment's Gateways.

Reads the Services, their Deployments (one per version, told apart by their pods' `version`
label), what the pods need (ServiceAccounts, ConfigMaps, PodDisruptionBudgets,
HorizontalPodAutoscalers), and the Istio VirtualServices, DestinationRules and Gateways that
route to them. Nothing is dropped silently: every field of every object is either carried
over — as it is, or in another form with the same meaning (a note that says so) — or refused
at its `file:line:col`. A refusal writes nothing unless the user accepts that loss by name
(`--drop Kind/name:field.path`). `verify` then renders what would be written in a scratch copy,
builds it with kustomize and compares it with the input (importer/verify.py).

The Gateway API shape is read too: Services of one version each (`version_services`), and
HTTPRoutes, GRPCRoutes, TCPRoutes and TLSRoutes (`gateway_api`, a route's rules in
`gateway_rules`) and gateway.networking.k8s.io Gateways (`gateway_listeners`), into releases
with `routing: gateway-api`, as render/gateway_api.py would write them back.

The steps, in the order they run: `classify` (what was read, which Services), per service
`versions` (Deployments) and `version_services`, `support` (what the pods need), `subsets` (the
DestinationRule), `release` (the VirtualService and its `routes`, or the Gateway API routes;
the versions' order), `emit` (the files), then `verify`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from meshcanary.errors import InputError
from meshcanary.importer import (
    classify,
    emit,
    gateway_api,
    gateway_listeners,
    gateways,
    release,
    subsets,
    support,
    version_services,
    versions,
)
from meshcanary.importer.context import REFUSED, Context, Notes, what
from meshcanary.layout import ENVIRONMENTS
from meshcanary.manifest import Resource
from meshcanary.mesh import labels, pod_labels
from meshcanary.names import is_dns_label
from meshcanary.problem import Location, Problem


@dataclass(frozen=True)
class ServiceImport:
    """What one Service became."""

    service: str  # the release's name
    versions: tuple[str, ...]  # stable first, canary last
    order: str  # why in that order
    deployments: tuple[tuple[str, str], ...]  # input Deployment → rendered name
    objects: tuple[str, ...]  # what the base holds beside the Deployment and the Service
    base_reused: bool  # the base exists already, the same (a second environment)


@dataclass(frozen=True)
class ImportResult:
    """What `import_manifests` wrote (repository-relative paths), what became what, and every
    note: normalized (same meaning, another form), dropped (--drop) and refused."""

    written: tuple[str, ...]
    notes: tuple[Problem, ...]  # located at the source field; sorted by position
    services: tuple[ServiceImport, ...] = ()
    unused_drops: tuple[str, ...] = ()
    # Differences verify found between the input and the rendered tree that no note explains.
    differences: tuple[Problem, ...] = ()
    verified: bool | None = None  # None: not verified (--no-verify, or refused before)

    @property
    def refused(self) -> tuple[Problem, ...]:
        return tuple(n for n in self.notes if n.rule == REFUSED)

    @property
    def ok(self) -> bool:
        return not self.refused and not self.differences and not self.unused_drops


@dataclass
class _Planned:
    """One service's import before anything is written."""

    ctx: Context
    service_resource: Resource
    found: list[versions.Version]
    files: dict[str, str] = field(default_factory=dict)
    summary: ServiceImport | None = None
    inputs: list[Resource] = field(default_factory=list)  # what verify compares
    # The Gateway API shape: the versions' Services (name → version), their input names →
    # rendered names, the routes.
    version_services: dict[str, str] = field(default_factory=dict)
    renamed_services: dict[str, str] = field(default_factory=dict)
    gateway_routes: list[Resource] = field(default_factory=list)

    @property
    def gateway_api(self) -> bool:
        return bool(self.version_services or self.gateway_routes)


def import_manifests(
    root: Path,
    files: Sequence[Path],
    environment: str,
    services: Sequence[str] = (),
    namespace: str | None = None,
    *,
    drops: Sequence[str] = (),
    canary: Mapping[str, str] | None = None,
    verify: bool = True,
) -> ImportResult:
    """Import the manifests in `files` (files or folders) into `environment`.

    `services` (the Services to import) defaults to every Service whose pods the manifests'
    Deployments run; one name given with one Service in the input renames its release.
    `namespace` (for a new environment) defaults to the manifests' namespace, else `default`.
    `canary` maps a service to the version that is its canary. Raises InputError, writing
    nothing, when the input cannot be read or holds nothing to import, or a release file
    exists; returns a result with `refused` notes, writing nothing, when a field cannot be
    carried over and no `drops` entry accepts its loss.
    """
    _check_names(environment, services, namespace)
    parsed = classify.read(files)
    notes = Notes(drops=tuple(drops))
    by_kind = classify.classify(notes, parsed)
    namespaces = classify.environment(notes, root, by_kind, environment, namespace)
    per_version = version_services.version_services(by_kind["Service"], by_kind["Deployment"])
    bases = [s for s in by_kind["Service"] if id(s) not in per_version]
    chosen = classify.choose_services(notes, parsed, bases or by_kind["Service"], services)
    rename = services[0] if len(services) == 1 and len(chosen) == 1 else None
    claimed: set[int] = set()
    planned: list[_Planned] = []
    for service_resource in chosen:
        name = classify.release_name(service_resource, rename)
        ctx = classify.context(root, parsed, notes, environment, namespaces, service_resource, name)
        selector = labels(service_resource.get("spec", "selector")) or {}
        selector.pop("version", None)
        deployments = [
            d
            for d in by_kind["Deployment"]
            if id(d) not in claimed and selector and selector.items() <= pod_labels(d).items()
        ]
        claimed.update(id(d) for d in deployments)
        claimed.add(id(service_resource))
        found = versions.read(ctx, deployments, selector)
        plan = _Planned(ctx, service_resource, found, inputs=[service_resource])
        plan.version_services, plan.renamed_services = version_services.take_version_services(
            ctx, service_resource, list(per_version.values()), found, claimed
        )
        plan.inputs += [r for r in by_kind["Service"] if r.name in plan.version_services]
        plan.gateway_routes = [
            r
            for kind in gateway_api.ROUTE_KINDS
            for r in by_kind[kind]
            if id(r) not in claimed and gateway_api.routes_to(ctx, r, plan.version_services)
        ]
        claimed.update(id(r) for r in plan.gateway_routes)
        planned.append(plan)
    _check_canaries(canary or {}, [p.ctx.service for p in planned])
    first = planned[0].ctx
    declared = gateways.read(first, by_kind["Gateway"])
    listened, class_name = gateway_listeners.read(first, by_kind[classify.API_GATEWAY])
    declared.update(listened)
    claimed.update(id(resource) for resource, _ in declared.values())
    # Each of them is declared, or refused where it was read.
    claimed.update(id(resource) for resource in by_kind[classify.API_GATEWAY])
    settings = _routing_settings(first, planned, class_name)
    for plan in planned:
        _plan_service(
            plan,
            by_kind,
            declared,
            claimed,
            (canary or {}).get(plan.ctx.service),
            on_release=plan.gateway_api and "routing" not in settings,
        )
    _refuse_unclaimed(notes, by_kind, claimed)
    env_files = emit.environment_file(first, by_kind, declared, settings)
    written: dict[str, str] = {}
    for plan in planned:
        written.update(plan.files)
    written.update(env_files)
    reused = emit.existing(root, written, [p.ctx for p in planned])
    summaries = [
        _summary(plan, plan.ctx.base in reused) for plan in planned if plan.summary is not None
    ]
    for path in list(written):
        if any(path == r or path.startswith(f"{r}/") for r in reused):
            del written[path]
    unused = tuple(d for d in drops if d not in notes.used_drops)
    result = ImportResult(
        tuple(written),
        notes.in_order(),
        tuple(summaries),
        unused_drops=unused,
    )
    if not result.ok:
        return _unwritten(result)
    if verify:
        from meshcanary.importer import verify as verifier

        renamed = {
            source: rendered for summary in summaries for source, rendered in summary.deployments
        }
        services_renamed = {n: new for p in planned for n, new in p.renamed_services.items()}
        differences = verifier.verify(
            root, written, planned_inputs(planned, declared), first, renamed, services_renamed
        )
        result = _with(result, differences=tuple(differences), verified=not differences)
        if differences:
            return _unwritten(result)
    emit.write(root, written)
    return result


def planned_inputs(
    planned: list[_Planned], declared: gateways.Gateways
) -> dict[str, list[Resource]]:
    """Service → the input objects its overlay must be equivalent to."""
    shared = [resource for resource, _ in declared.values()]
    return {p.ctx.service: [*p.inputs, *shared] for p in planned}


def _routing_settings(
    ctx: Context, planned: list[_Planned], class_name: str | None
) -> dict[str, str]:
    """What a new environment says of routing: `routing: gateway-api` when every imported
    service has the Gateway API shape (else each such release says it), and the Gateways'
    gatewayClassName."""
    if ctx.env_data is not None:
        # An existing environment keeps its own; a release says what differs from it.
        return {"routing": "gateway-api"} if ctx.env_data.get("routing") == "gateway-api" else {}
    settings: dict[str, str] = {}
    if all(p.gateway_api for p in planned):
        settings["routing"] = "gateway-api"
    if class_name is not None:
        settings["gatewayClassName"] = class_name
    return settings


def _plan_service(
    plan: _Planned,
    by_kind: classify.ByKind,
    declared: gateways.Gateways,
    claimed: set[int],
    canary: str | None,
    *,
    on_release: bool,
) -> None:
    ctx, found = plan.ctx, plan.found
    rules = [
        r
        for r in by_kind["DestinationRule"]
        if id(r) not in claimed and ctx.refers_to_service(r.get("spec", "host"), r)
    ]
    claimed.update(id(r) for r in rules)
    rule = subsets.read(ctx, rules, found)
    routes = [
        r
        for r in by_kind["VirtualService"]
        if id(r) not in claimed and release.routes_to_service(ctx, r)
    ]
    claimed.update(id(r) for r in routes)
    ports = tuple(
        port["port"]
        for port in plan.service_resource.get("spec", "ports") or []
        if isinstance(port, dict) and isinstance(port.get("port"), int)
    )
    routing = None
    if plan.gateway_api:
        routing, policy = _gateway_api(plan, by_kind, declared, claimed, bool(routes))
        if policy is not None:
            rule = subsets.Subsets(policy)
            rules.append(policy)
        routing.on_release = on_release
    content, order = release.build(
        ctx, routes, found, rule, declared, canary, ports, plan.service_resource, routing
    )
    found.sort(key=lambda v: order.names.index(v.name))
    kept = support.read(ctx, by_kind, found, claimed)
    plan.files = {
        **emit.base_files(ctx, plan.service_resource, found, kept, content),
        **emit.release_file(ctx, content),
    }
    plan.inputs += [v.resource for v in found] + rules + routes + plan.gateway_routes
    plan.inputs += [r for s in kept for r in s.read_from]
    plan.summary = ServiceImport(
        ctx.service,
        order.names,
        order.reason,
        tuple((v.resource.name, f"{ctx.service}-{v.name}") for v in found),
        tuple(f"{s.data.get('kind')} {s.data.get('metadata', {}).get('name')}" for s in kept),
        False,
    )


def _gateway_api(
    plan: _Planned,
    by_kind: classify.ByKind,
    declared: gateways.Gateways,
    claimed: set[int],
    virtual_services: bool,
) -> tuple[gateway_api.Routing, Resource | None]:
    """The routing of a service of the Gateway API shape, and the DestinationRule whose
    trafficPolicy the release takes (the renderer writes one per version's Service)."""
    ctx = plan.ctx
    if virtual_services:
        for route in plan.gateway_routes:
            ctx.refuse(
                route,
                [],
                f"{what(route)} routes to Service {ctx.service_name}, which a VirtualService "
                "routes too: a release renders its routes with one API",
            )
        plan.gateway_routes = []
    policies = [
        r
        for r in by_kind["DestinationRule"]
        if id(r) not in claimed and version_services.version_host(ctx, r, plan.version_services)
    ]
    claimed.update(id(r) for r in policies)
    policy = version_services.traffic_policy(ctx, policies, plan.version_services)
    plan.inputs += [r for r in policies if r is not policy]
    listened = {name: resource for name, (resource, _) in declared.items()}
    routing = gateway_api.read(
        ctx,
        plan.gateway_routes,
        plan.version_services,
        plan.service_resource,
        listened,
        plan.found,
    )
    return routing, policy


def _summary(plan: _Planned, reused: bool) -> ServiceImport:
    assert plan.summary is not None  # noqa: S101 - set by _plan_service
    return replace(plan.summary, base_reused=reused)


def _refuse_unclaimed(notes: Notes, by_kind: classify.ByKind, claimed: set[int]) -> None:
    for kind, resources in by_kind.items():
        for resource in resources:
            if id(resource) in claimed:
                continue
            notes.refuse(
                resource,
                [],
                f"{what(resource)} is not imported: none of the imported services "
                f"{'routes to' if kind in classify.ROUTING_KINDS else 'uses'} it",
                f"import its Service too (--service), or pass "
                f"--drop '{resource.kind}/{resource.name}'",
            )


def _unwritten(result: ImportResult) -> ImportResult:
    return _with(result, written=())


def _with(result: ImportResult, **changes: object) -> ImportResult:
    return replace(result, **changes)  # type: ignore[arg-type]


def _check_names(environment: str, services: Sequence[str], namespace: str | None) -> None:
    checked = [
        ("environment", environment, ENVIRONMENTS),
        *(("service", name, "--service") for name in services),
        ("namespace", namespace, "--namespace"),
    ]
    problems = [
        Problem(
            Location(where),
            f'{what_} "{value}" is not a DNS-1123 label',
            "lower-case letters, digits and '-'",
        )
        for what_, value, where in checked
        if value is not None and not is_dns_label(value)
    ]
    if problems:
        raise InputError(problems)


def _check_canaries(canary: Mapping[str, str], names: list[str]) -> None:
    unknown = [name for name in canary if name not in names]
    if unknown:
        raise InputError(
            [
                Problem(
                    Location("--canary"),
                    f"--canary names service {name}, which is not imported ({', '.join(names)})",
                    "write --canary SERVICE=VERSION for one of the imported services",
                )
                for name in unknown
            ]
        )
