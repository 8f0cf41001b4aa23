"""Gateways → the environment's gateways, and the VirtualService's references to them → the
release's."""

from __future__ import annotations

import copy
import re
from typing import Any

from meshcanary.importer.context import Context, dotted
from meshcanary.importer.objects import name_only_metadata
from meshcanary.manifest import JsonPath, Resource
from meshcanary.mesh import MESH, items
from meshcanary.names import LABEL
from meshcanary.release import schema

# `mesh`, a Gateway's name, or namespace/name.
_GATEWAY = re.compile(rf"mesh|{LABEL}(/{LABEL})?", re.ASCII)
_SERVER_FIELDS = ("name", "port", "hosts", "tls", "bind", "defaultEndpoint")
_PORT_FIELDS = ("number", "name", "protocol", "targetPort")

# name → (the Gateway read, its entry under the environment's `gateways:`)
Gateways = dict[str, tuple[Resource, dict[str, Any]]]


def read(ctx: Context, resources: list[Resource]) -> Gateways:
    """Gateways the environment can declare: those in the service's namespace, once each."""
    found: Gateways = {}
    seen: dict[str, Resource] = {}
    for resource in resources:
        name = resource.name
        first = seen.setdefault(name, resource)
        if first is not resource:
            ctx.refuse(
                resource,
                [],
                f"Gateway {name} again (first at {first.location()}), in another namespace: "
                "an environment declares each Gateway once",
            )
            continue
        if resource.namespace and resource.namespace != ctx.source_namespace:
            # A shared gateway in its own namespace (istio-system): it stays where it is.
            ctx.refuse(
                resource,
                ["metadata", "namespace"],
                f"Gateway {name} is in namespace {resource.namespace}, not the service's "
                f"{ctx.source_namespace}: an environment renders Gateways in its own "
                f"namespace; routes refer to this one as {resource.namespace}/{name}",
                f"leave it where it is and pass --drop 'Gateway/{name}'",
            )
            continue
        entry = _entry(ctx, resource)
        if entry is not None:
            found[name] = (resource, entry)
    return found


def _entry(ctx: Context, resource: Resource) -> dict[str, Any] | None:
    """The Gateway as the environment file declares one, or None when the schema refuses it."""
    name_only_metadata(ctx, resource)
    spec = resource.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    for key in spec:
        if key not in ("selector", "servers"):
            ctx.refuse(resource, ["spec", key], f"Gateway field {key} cannot be imported", key=True)
    servers = [
        _server(ctx, resource, path, server)
        for path, server in items(resource, "spec", "servers")
        if isinstance(server, dict)
    ]
    entry = {"selector": copy.deepcopy(spec.get("selector")), "servers": servers}
    # Anything else the environment schema refuses: say where, and leave the Gateway out.
    errors = list(
        schema.validator("environment").iter_errors(
            {"namespace": "x", "gateways": {resource.name: entry}}
        )
    )
    if errors:
        for error in errors:
            path: list[str | int] = ["spec", *list(error.absolute_path)[2:]]
            ctx.refuse(
                resource,
                path,
                f"Gateway {resource.name} cannot be imported: {dotted(path)}: {error.message}",
            )
        return None
    return entry


def _server(
    ctx: Context, resource: Resource, path: JsonPath, server: dict[str, Any]
) -> dict[str, Any]:
    """A server's fields the environment file has a place for; a note for each other one."""
    kept = {k: copy.deepcopy(v) for k, v in server.items() if k in _SERVER_FIELDS}
    for key in server:
        if key not in _SERVER_FIELDS:
            ctx.refuse(resource, [*path, key], f"server field {key} cannot be imported", key=True)
    port = server.get("port")
    if isinstance(port, dict):
        kept["port"] = {k: v for k, v in port.items() if k in _PORT_FIELDS}
        for key in port:
            if key not in _PORT_FIELDS:
                ctx.refuse(
                    resource, [*path, "port", key], f"port field {key} cannot be imported", key=True
                )
    return kept


def references(
    ctx: Context, resource: Resource, gateways: Gateways
) -> tuple[list[str], list[JsonPath]]:
    """The release's `gateways:` from the VirtualService's, and where each was read."""
    # The environment's Gateways, and the imported ones, which import adds to it.
    declared = set((ctx.env_data or {}).get("gateways") or {}) | set(gateways)
    names: list[str] = []
    paths: list[JsonPath] = []
    namespace = ctx.namespace(resource)
    for path, name in items(resource, "spec", "gateways"):
        if not isinstance(name, str) or not _GATEWAY.fullmatch(name):
            ctx.refuse(resource, path, f"gateway {name!r} cannot be imported: not a gateway name")
            continue
        if name != MESH and "/" not in name and name not in declared:
            qualified = f"{namespace}/{name}"
            source = (
                f"not declared in {ctx.env_path}"
                if ctx.env_data is not None
                else "not among the imported Gateways"
            )
            ctx.normalize(
                resource,
                path,
                f"gateway {name} is {source}: the release refers to it as {qualified}, a "
                "Gateway managed outside meshcanary",
                f"declare it under gateways: in {ctx.env_path} and write {name}",
            )
            name = qualified
        if name not in names:
            names.append(name)
            paths.append(path)
    return names, paths
