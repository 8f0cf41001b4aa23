"""Two Gateways on the same gateway pods do not use the same TLS certificate.

Browsers reuse one HTTP/2 connection for every host a certificate covers. When the hosts of
one certificate are split over two Gateways on the same gateway pods, a request for a host of
the second Gateway can arrive on a connection opened for the first one, whose routes do not
know it: the gateway answers 404, for some clients and some requests only.

Two servers use the same certificate when they name the same `credentialName` (or share one
of their `credentialNames`), or the same `serverCertificate` and `privateKey` files. Two
Gateways share pods when one's selector is part of the other's (so that the pods of the more
specific one carry both), or when both pick the same workload of the input. Each server is
reported at its certificate, naming the other Gateways.

Istio: IST0138 GatewayDuplicateCertificate. The same check, except that istioctl reports only
the Gateway whose selector is the smaller one, and does not read `credentialNames`.

Fix: serve every host of the certificate from one server of one Gateway, or give each Gateway
its own certificate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

from meshcanary.manifest import Resource
from meshcanary.mesh import items, namespace_of
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._workloads import gateway_selector, selecting_gateways

ID = "gateway-duplicate-certificate"
SEVERITY = Severity.WARNING
SUMMARY = "Gateways on the same gateway pods do not share a TLS certificate"
HINT = "serve the certificate's hosts from one Gateway, or give each Gateway its own certificate"
RELEASE_HINT = (
    "in environment.yaml's `gateways:`, serve a certificate's hosts from one gateway, or give "
    "each gateway its own certificate"
)
ISTIO_CODES = ("IST0138",)

# A server's certificate: where it is named, and what names it (a credential or file pair).
Certificate = tuple[list[str | int], frozenset[str]]


def check(scope: Scope) -> Iterator[Finding]:
    gateways, picked = selecting_gateways(scope)
    if len(gateways) < 2:
        return
    # Certificate name → the Gateways (by index) whose servers use it.
    users: dict[str, set[int]] = defaultdict(set)
    certificates = [list(_certificates(g)) for g in gateways]
    for index, found in enumerate(certificates):
        for _, names in found:
            for name in names:
                users[name].add(index)
    for gateway, found in enumerate(certificates):
        for path, names in found:
            others = sorted(
                other
                for name in names
                for other in users[name]
                if other != gateway
                and (
                    _overlap(gateway_selector(gateways[gateway]), gateway_selector(gateways[other]))
                    or picked[gateway] & picked[other]
                )
            )
            if not others:
                continue
            shown = ", ".join(sorted(n.partition(":")[2] for n in names))
            listed = ", ".join(
                dict.fromkeys(f"{namespace_of(gateways[o])}/{gateways[o].name}" for o in others)
            )
            yield Finding(
                gateways[gateway],
                path,
                f"certificate {shown} is also used by Gateway {listed} on the same gateway pods: "
                "clients that reuse an HTTP/2 connection across its hosts get 404s",
            )


def _overlap(one: Mapping[str, str] | None, other: Mapping[str, str] | None) -> bool:
    """Whether one selector is part of the other: the more specific one's pods carry both."""
    if not one or not other:
        return False
    smaller, larger = sorted((one, other), key=len)
    return all(larger.get(k) == v for k, v in smaller.items())


def _certificates(gateway: Resource) -> Iterator[Certificate]:
    for path, server in items(gateway, "spec", "servers"):
        tls = server.get("tls") if isinstance(server, dict) else None
        if not isinstance(tls, dict):
            continue
        credential = tls.get("credentialName")
        if isinstance(credential, str) and credential.strip():
            yield [*path, "tls", "credentialName"], frozenset({f"credential:{credential}"})
        for where, name in items(gateway, *path, "tls", "credentialNames"):
            if isinstance(name, str) and name.strip():
                yield where, frozenset({f"credential:{name}"})
        certificate, key = tls.get("serverCertificate"), tls.get("privateKey")
        if isinstance(certificate, str) and certificate and isinstance(key, str) and key:
            pair = f"files:{certificate} (key {key})"
            yield [*path, "tls", "serverCertificate"], frozenset({pair})
