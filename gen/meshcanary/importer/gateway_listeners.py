"""gateway.networking.k8s.io Gateways → the environment's gateways (a listener → a server) and
its `gatewayClassName`: the inverse of render/gateway_api.py's `gateway`."""

from __future__ import annotations

from typing import Any

from meshcanary.importer.context import Context, dotted, what
from meshcanary.importer.gateways import Gateways
from meshcanary.importer.objects import name_only_metadata, schema_refused
from meshcanary.manifest import JsonPath, Resource
from meshcanary.release import schema

_SPEC_KEYS = ("gatewayClassName", "listeners")
_LISTENER_KEYS = ("name", "hostname", "port", "protocol", "tls", "allowedRoutes")
# The route kinds a listener of each protocol takes when `allowedRoutes.kinds` is not set.
_DEFAULT_KINDS = {
    "HTTP": ["HTTPRoute", "GRPCRoute"],
    "HTTPS": ["HTTPRoute", "GRPCRoute"],
    "TLS": ["TLSRoute"],
    "TCP": ["TCPRoute"],
}


def read(ctx: Context, resources: list[Resource]) -> tuple[Gateways, str | None]:
    """The Gateways the environment can declare, and their one gatewayClassName."""
    found: Gateways = {}
    class_name: str | None = None
    first_class: Resource | None = None
    wanted = (ctx.env_data or {}).get("gatewayClassName", "istio" if ctx.env_data else None)
    for resource in resources:
        name = resource.name
        if resource.namespace and resource.namespace != ctx.source_namespace:
            ctx.refuse(
                resource,
                ["metadata", "namespace"],
                f"Gateway {name} is in namespace {resource.namespace}, not the service's "
                f"{ctx.source_namespace}: an environment renders Gateways in its own namespace",
                f"leave it where it is and pass --drop 'Gateway/{name}'",
            )
            continue
        if ctx.env_data is not None and ctx.env_data.get("routing") != "gateway-api":
            ctx.refuse(
                resource,
                ["apiVersion"],
                f"{what(resource)}: {ctx.env_path} renders its gateways as Istio Gateways "
                "(its routing is istio); a gateway.networking.k8s.io Gateway is rendered where "
                "the environment's routing is gateway-api",
                f"set routing: gateway-api in {ctx.env_path}, or import into a new environment",
            )
            continue
        name_only_metadata(ctx, resource, renamed=False)
        # Refused there, and read all the same: the import fails, and says all it found.
        invalid = schema_refused(ctx, resource)
        given = resource.get("spec", "gatewayClassName")
        if isinstance(given, str):
            if wanted is not None and given != wanted:
                ctx.refuse(
                    resource,
                    ["spec", "gatewayClassName"],
                    f"gatewayClassName {given}: {ctx.env_path} renders its Gateways with "
                    f"gatewayClassName {wanted}",
                )
            elif class_name is None:
                class_name, first_class = given, resource
            elif given != class_name and first_class is not None:
                ctx.refuse(
                    resource,
                    ["spec", "gatewayClassName"],
                    f"gatewayClassName {given}, {what(first_class)}'s {class_name}: an "
                    "environment renders all its Gateways with one gatewayClassName",
                )
        try:
            entry = _entry(ctx, resource)
        except (TypeError, ValueError, AttributeError):
            if not invalid:
                raise  # a value its schema allows: meshcanary's own fault, not to hide
            continue  # what its schema refused, read as it could not be
        if entry is not None and not invalid:
            found[name] = (resource, entry)
    return found, class_name


def _entry(ctx: Context, resource: Resource) -> dict[str, Any] | None:
    spec = resource.get("spec")
    for key in spec if isinstance(spec, dict) else {}:
        if key not in _SPEC_KEYS:
            ctx.refuse(
                resource,
                ["spec", key],
                f"Gateway field {key}: the environment's gateways render listeners only",
                key=True,
            )
    servers: list[dict[str, Any]] = []
    listeners = resource.get("spec", "listeners")
    for index, listener in enumerate(listeners if isinstance(listeners, list) else []):
        if isinstance(listener, dict):
            server = _server(ctx, resource, ["spec", "listeners", index], listener)
            if server is not None:
                servers.append(server)
    entry = {"servers": servers}
    errors = list(
        schema.validator("environment").iter_errors(
            {"namespace": "x", "gateways": {resource.name: entry}}
        )
    )
    for error in errors:
        path: JsonPath = ["spec", "listeners"]
        ctx.refuse(
            resource,
            path,
            f"Gateway {resource.name} cannot be imported: {dotted(list(error.absolute_path))}: "
            f"{error.message}",
        )
    return None if errors else entry


def _server(
    ctx: Context, resource: Resource, at: JsonPath, listener: dict[str, Any]
) -> dict[str, Any] | None:
    """A listener as the server the renderer makes it from."""
    for key in listener:
        if key not in _LISTENER_KEYS:
            ctx.refuse(resource, [*at, key], f"listener field {key} cannot be imported", key=True)
    protocol = listener.get("protocol")
    if protocol not in _DEFAULT_KINDS:
        ctx.refuse(
            resource,
            [*at, "protocol"],
            f"listener protocol {protocol}: the environment's gateways render HTTP, HTTPS, TLS "
            "and TCP listeners",
        )
        return None
    _allowed_routes(ctx, resource, at, listener, str(protocol))
    port: dict[str, Any] = {"number": listener.get("port"), "protocol": protocol}
    if isinstance(listener.get("name"), str):
        port = {"number": listener.get("port"), "name": listener["name"], "protocol": protocol}
    server: dict[str, Any] = {"port": port, "hosts": [listener.get("hostname") or "*"]}
    tls = listener.get("tls")
    if tls is None:
        return server
    if protocol not in ("HTTPS", "TLS") or not isinstance(tls, dict):
        ctx.refuse(resource, [*at, "tls"], f"tls on a {protocol} listener cannot be imported")
        return None
    for key in tls:
        if key not in ("mode", "certificateRefs"):
            ctx.refuse(
                resource,
                [*at, "tls", key],
                f"tls.{key}: an environment's gateway has a mode and a credential only",
                key=True,
            )
    mode = tls.get("mode", "Terminate")
    if mode == "Passthrough" and protocol == "TLS":
        server["tls"] = {"mode": "PASSTHROUGH"}
        return server
    if mode != "Terminate":
        ctx.refuse(
            resource,
            [*at, "tls", "mode"],
            f"tls mode {mode} on a {protocol} listener: the renderer passes TLS through on TLS "
            "listeners only",
        )
        return None
    server["tls"] = {"mode": "SIMPLE"}
    refs = tls.get("certificateRefs")
    if refs is None:
        return server
    only = refs[0] if isinstance(refs, list) and len(refs) == 1 else None
    if not (
        isinstance(only, dict)
        and isinstance(only.get("name"), str)
        and only.get("group", "") == ""
        and only.get("kind", "Secret") == "Secret"
        and "namespace" not in only
    ):
        ctx.refuse(
            resource,
            [*at, "tls", "certificateRefs"],
            "certificateRefs other than one Secret of the Gateway's namespace: an environment's "
            "gateway names one credential",
        )
        return None
    server["tls"]["credentialName"] = only["name"]
    return server


def _allowed_routes(
    ctx: Context, resource: Resource, at: JsonPath, listener: dict[str, Any], protocol: str
) -> None:
    """The renderer writes no `allowedRoutes`: the default (routes of the Gateway's namespace,
    of the kinds its protocol takes) is said once, anything else refused."""
    allowed = listener.get("allowedRoutes")
    if allowed is None:
        return
    where: JsonPath = [*at, "allowedRoutes"]
    defaults = isinstance(allowed, dict) and set(allowed) <= {"namespaces", "kinds"}
    if isinstance(allowed, dict):
        namespaces = allowed.get("namespaces")
        if namespaces is not None and namespaces != {"from": "Same"}:
            defaults = False
        kinds = allowed.get("kinds")
        if kinds is not None:
            names = [str(k.get("kind")) for k in kinds if isinstance(k, dict)]
            groups = {
                k.get("group", "gateway.networking.k8s.io") for k in kinds if isinstance(k, dict)
            }
            if sorted(names) != sorted(_DEFAULT_KINDS[protocol]) or groups != {
                "gateway.networking.k8s.io"
            }:
                defaults = False
    if defaults:
        ctx.normalize(
            resource,
            where,
            "allowedRoutes says what a listener takes when it is not set (routes of the "
            f"Gateway's namespace, of the kinds a {protocol} listener takes): left out",
        )
    else:
        ctx.refuse(
            resource,
            where,
            "allowedRoutes other than the default: the rendered listener takes the routes of "
            "its Gateway's namespace only, of the kinds its protocol takes",
            key=True,
        )
