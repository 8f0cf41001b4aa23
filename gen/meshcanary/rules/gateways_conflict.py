"""Two Gateways on the same gateway pods do not serve the same host on the same port.

The gateway pods merge every Gateway that selects them into one set of listeners. When two
Gateways each have a server on one port with the same or overlapping hosts (`shop.example.com`
and `*.example.com`, or `*` and anything), only one of the servers is used: the other
Gateway's TLS settings are ignored, and the VirtualServices bound to it lose requests to the
first one's, typically with 404s that depend on which Gateway was applied last.

Two Gateways share pods when their selectors are equal, or when both pick the same workload
of the input. Hosts are compared without their `namespace/` prefix, the way Istio matches
them (equal, or a wildcard covering the other). Each overlapping host is reported on each of
the Gateways, naming the other.

Istio: IST0145 ConflictingGateways. Slightly stricter: istioctl compares selectors only, and
compares hosts with their `namespace/` prefix, so that `a/shop.example.com` and
`b/shop.example.com` on one port look distinct to it although the gateway serves one host.

Fix: put the hosts in one Gateway, make them disjoint, or serve one of them on another port
or another gateway deployment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import hosts_match, items, namespace_of, show_labels
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._workloads import (
    gateway_selector,
    selecting_gateways,
    server_hosts,
    server_port,
)

ID = "gateways-conflict"
SEVERITY = Severity.ERROR
SUMMARY = "Gateways on the same gateway pods do not serve one host on one port"
HINT = "serve the host from one Gateway, or use another port or gateway deployment"
RELEASE_HINT = (
    "in environment.yaml's `gateways:`, serve each host on one port from one gateway only"
)
ISTIO_CODES = ("IST0145",)

# Where a host is (its path in the Gateway), the port it is served on, and the host.
Entry = tuple[list[str | int], int, str]


def check(scope: Scope) -> Iterator[Finding]:
    gateways, picked = selecting_gateways(scope)
    if len(gateways) < 2:
        return

    def share(a: int, b: int) -> bool:
        same = gateway_selector(gateways[a]) == gateway_selector(gateways[b])
        return same or bool(picked[a] & picked[b])

    # Hosts by port, exact ones by name: a host is compared with the same name and wildcards.
    by_port: dict[int, list[tuple[int, Entry]]] = defaultdict(list)
    for index, resource in enumerate(gateways):
        for entry in _entries(resource):
            by_port[entry[1]].append((index, entry))
    for port in sorted(by_port):
        entries = by_port[port]
        exact: dict[str, list[int]] = defaultdict(list)
        wild: list[int] = []
        for position, (_, (_, _, host)) in enumerate(entries):
            (wild if host.startswith("*") else exact[host]).append(position)
        for gateway, (path, _, host) in entries:
            near = range(len(entries)) if host.startswith("*") else [*exact[host], *wild]
            others = {
                entries[other][0]
                for other in near
                if entries[other][0] != gateway and hosts_match(host, entries[other][1][2])
            }
            clashing = [gateways[o] for o in sorted(others) if share(gateway, o)]
            if not clashing:
                continue
            names = ", ".join(f"{namespace_of(o)}/{o.name}" for o in clashing)
            selector = show_labels(gateway_selector(gateways[gateway]) or {})
            yield Finding(
                gateways[gateway],
                path,
                f"host {host} on port {port} is also served by Gateway {names} on the same "
                f"gateway pods ({selector}): only one of the servers is used",
            )


def _entries(gateway: Resource) -> Iterator[Entry]:
    for path, server in items(gateway, "spec", "servers"):
        if not isinstance(server, dict):
            continue
        port = server_port(server)
        if port is None:
            continue
        for index, host in server_hosts(server):
            yield [*path, "hosts", index], port, host
