"""A DestinationRule that originates TLS says how to verify the server's certificate.

With `tls.mode: SIMPLE` or `MUTUAL` the sidecar (or gateway) opens the TLS connection itself.
Without `caCertificates` (a CA file in the proxy) or `credentialName` (a Secret holding
`ca.crt`), which CA it trusts depends on the Istio version and the proxy's
`VERIFY_CERTIFICATE_AT_CLIENT` setting: the operating system's roots, or none at all, so that
anyone who answers for the host is trusted. `insecureSkipVerify: true` turns verification off
explicitly: a man in the middle can read and change the traffic.

Checked wherever TLS is set: `trafficPolicy.tls`, each `trafficPolicy.portLevelSettings[].tls`,
and the same two in each subset's `trafficPolicy`. A missing CA is reported at `mode`;
`insecureSkipVerify: true` at itself.

Istio: IST0128 NoServerCertificateVerificationDestinationLevel (the DestinationRule's
`trafficPolicy.tls`) and IST0129 NoServerCertificateVerificationPortLevel (its
`portLevelSettings`). Broader: istioctl looks at neither the subsets' traffic policies nor
`insecureSkipVerify`; and, as a warning rather than an error, since on recent Istio releases a
missing CA means the system roots.

Fix: set `caCertificates` (or a `credentialName` whose Secret holds `ca.crt`), or remove
`insecureSkipVerify`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshcanary.manifest import Resource
from meshcanary.mesh import ISTIO, items, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "destination-tls-verify"
SEVERITY = Severity.WARNING
SUMMARY = "a DestinationRule that originates TLS verifies the server's certificate"
HINT = "set caCertificates (or a credentialName with ca.crt), and leave insecureSkipVerify off"
RELEASE_HINT = (
    "under `trafficPolicy.tls` in the release file, set `caCertificates` (or a "
    "`credentialName` whose Secret holds ca.crt), and leave `insecureSkipVerify` off"
)
ISTIO_CODES = ("IST0128", "IST0129")

ORIGINATING = ("SIMPLE", "MUTUAL")


def check(scope: Scope) -> Iterator[Finding]:
    for rule in of_kind(scope, ISTIO, "DestinationRule"):
        host = rule.get("spec", "host")
        shown = host if isinstance(host, str) else "its host"
        for path, tls in _settings(rule):
            mode = tls.get("mode")
            if not isinstance(mode, str) or mode.upper() not in ORIGINATING:
                continue
            where = _where(rule, path)
            if tls.get("insecureSkipVerify") is True:
                yield Finding(
                    rule,
                    [*path, "insecureSkipVerify"],
                    f"TLS to {shown}{where} skips verifying the server's certificate: anyone "
                    "who answers for the host is trusted",
                    hint="remove insecureSkipVerify and set caCertificates",
                )
            elif not _named(tls, "caCertificates") and not _named(tls, "credentialName"):
                yield Finding(
                    rule,
                    [*path, "mode"],
                    f"TLS mode {mode} to {shown}{where} sets neither caCertificates nor "
                    "credentialName: which CA verifies the server depends on the proxy's "
                    "defaults",
                )


def _settings(rule: Resource) -> Iterator[tuple[list[str | int], dict[str, Any]]]:
    """Each `tls` mapping of the rule's traffic policies, with its path."""
    policies: list[list[str | int]] = [["spec", "trafficPolicy"]]
    for path, subset in items(rule, "spec", "subsets"):
        if isinstance(subset, dict):
            policies.append([*path, "trafficPolicy"])
    for policy in policies:
        tls = rule.get(*policy, "tls")
        if isinstance(tls, dict):
            yield [*policy, "tls"], tls
        for path, setting in items(rule, *policy, "portLevelSettings"):
            tls = setting.get("tls") if isinstance(setting, dict) else None
            if isinstance(tls, dict):
                yield [*path, "tls"], tls


def _where(rule: Resource, path: list[str | int]) -> str:
    """` (subset v2, port 443)`: where in the rule the settings are."""
    parts = []
    if "subsets" in path:
        subset = path[: path.index("subsets") + 2]
        parts.append(f"subset {rule.get(*subset, 'name') or subset[-1]}")
    if "portLevelSettings" in path:
        setting = path[: path.index("portLevelSettings") + 2]
        number = rule.get(*setting, "port", "number")
        parts.append(f"port {number}" if isinstance(number, int) else "port level")
    return f" ({', '.join(parts)})" if parts else ""


def _named(tls: dict[str, Any], field: str) -> bool:
    value = tls.get(field)
    return isinstance(value, str) and bool(value.strip())
