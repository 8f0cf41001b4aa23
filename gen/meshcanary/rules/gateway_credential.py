"""The Secret a Gateway server's `credentialName` names exists where the gateway pods run.

A TLS server with `credentialName: shop-cert` reads the certificate and key from the Secret
`shop-cert` in the namespace of the gateway pods (not of the Gateway object). When it is not
there, or holds no certificate, the gateway drops the server: clients get a TLS handshake
failure, and only `istioctl proxy-config` shows why.

The gateway pods are the workloads of the input the Gateway's `selector` picks; when it picks
none, the namespace is unknown and nothing is checked (`gateway-selector` says more when the
input holds gateway workloads). In each namespace the pods run in, the Secret counts as there
when the input holds it, or an object that makes it: a cert-manager `Certificate` (its
`secretName`), a `SealedSecret` or an `ExternalSecret` (their target name). A Secret of the
input must hold `tls.crt` and `tls.key` (or `cert` and `key`); for `MUTUAL` and
`OPTIONAL_MUTUAL` also the CA, as `ca.crt` (or `cacert`) or in the Secret `<name>-cacert`.

Secrets are often made outside the repository (by hand, by a controller, from a vault), so a
missing one is reported only when the input holds Secrets (or objects that make them) in that
namespace: then it is managed here, and a missing name is a mistake. Otherwise the reference
is not checked, and `reference-not-checked` says so at `info`.

Istio: IST0161 InvalidGatewayCredential (IST0101 in older releases). The same check, except
that istioctl matches Pods only, so that offline, on manifests, it checks nothing; and it
parses the certificate, which meshcanary does not (a certificate in a manifest is usually a
placeholder or encrypted).

Fix: create the Secret in the namespace of the gateway pods (`kubectl create secret tls
shop-cert -n istio-system --cert=... --key=...`), or correct the name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import CORE, ISTIO, api_group, items, namespace_of, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope, verdicts
from meshcanary.rules._workloads import Workloads, gateway_selector, owners

ID = "gateway-credential"
SEVERITY = Severity.ERROR
SUMMARY = "a Gateway's credentialName names a Secret with a certificate where its pods run"
HINT = "create the Secret in the namespace of the gateway pods, or correct credentialName"
RELEASE_HINT = (
    "in environment.yaml, name in `credentialName` a Secret of the namespace the gateway pods "
    "run in, holding tls.crt and tls.key"
)
ISTIO_CODES = ("IST0161",)

CONTENT_HINT = (
    "put the certificate chain and key in the Secret as tls.crt and tls.key (`kubectl create "
    "secret tls`), and for MUTUAL the CA as ca.crt"
)
UNCHECKED_HINT = (
    "give the namespace's Secrets (or the Certificates that make them) to the same run to "
    "check it, or set `reference-not-checked` to off"
)

# Objects that make a Secret, by kind and API group: where the Secret's name is read.
MAKERS: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("Certificate", "cert-manager.io"): (("spec", "secretName"),),
    ("SealedSecret", "bitnami.com"): (
        ("spec", "template", "metadata", "name"),
        ("metadata", "name"),
    ),
    ("ExternalSecret", "external-secrets.io"): (("spec", "target", "name"), ("metadata", "name")),
}
MUTUAL_MODES = ("MUTUAL", "OPTIONAL_MUTUAL")


def check(scope: Scope) -> Iterator[Finding]:
    yield from verdicts(scope, _verdicts)[0]


def unchecked(scope: Scope) -> Iterator[Finding]:
    """Credentials in namespaces whose Secrets the input does not hold."""
    yield from verdicts(scope, _verdicts)[1]


def _verdicts(scope: Scope) -> Iterator[tuple[Finding, bool]]:
    gateways = of_kind(scope, ISTIO, "Gateway")
    if not gateways:
        return
    workloads = Workloads.of(scope)
    secrets = _secrets(scope)
    for gateway in gateways:
        selector = gateway_selector(gateway)
        pods = workloads.select(None, [selector]) if selector else []
        spaces = sorted({p.namespace for p in pods})
        for path, name, mode in _credentials(gateway):
            for namespace in spaces:
                held = secrets.get(namespace)
                runs = ", ".join(o for o in owners(pods) if f" {namespace}/" in o)
                if held is None:
                    yield (
                        Finding(
                            gateway,
                            path,
                            f"Secret {name} in namespace {namespace} not checked: the input "
                            f"holds no Secret of namespace {namespace}, where {runs} runs",
                            hint=UNCHECKED_HINT,
                        ),
                        False,
                    )
                elif name not in held:
                    yield (
                        Finding(
                            gateway,
                            path,
                            f"no Secret {name} in namespace {namespace}, where the gateway pods "
                            f"({runs}) read it",
                        ),
                        True,
                    )
                else:
                    problem = _invalid(held, name, mode)
                    if problem:
                        yield (
                            Finding(
                                gateway,
                                path,
                                f"Secret {namespace}/{name} {problem}",
                                hint=CONTENT_HINT,
                            ),
                            True,
                        )


def _credentials(gateway: Resource) -> Iterator[tuple[list[str | int], str, str]]:
    """(path, Secret name, TLS mode) of each credential a server names."""
    for path, server in items(gateway, "spec", "servers"):
        tls = server.get("tls") if isinstance(server, dict) else None
        if not isinstance(tls, dict):
            continue
        mode = str(tls.get("mode") or "SIMPLE").upper()
        named = [([*path, "tls", "credentialName"], tls.get("credentialName"))]
        named += list(items(gateway, *path, "tls", "credentialNames"))
        for where, name in named:
            # `ns/name` and `kubernetes://…` forms name Secrets elsewhere, read differently.
            if isinstance(name, str) and name.strip() and not any(c in name for c in "/:"):
                yield where, name.strip(), mode


def _secrets(scope: Scope) -> dict[str, dict[str, Resource | None]]:
    """Namespace → Secret name → the Secret (None when another object makes it)."""
    found: dict[str, dict[str, Resource | None]] = defaultdict(dict)
    for resource in scope.resources:
        group = api_group(resource)
        namespace = namespace_of(resource)
        if resource.kind == "Secret" and group in CORE and resource.name:
            found[namespace][resource.name] = resource
            continue
        for path in MAKERS.get((resource.kind, group), ()):
            name = resource.get(*path)
            if isinstance(name, str) and name:
                found[namespace].setdefault(name, None)
                break
    return dict(found)


def _keys(secret: Resource | None) -> set[str] | None:
    """The keys the Secret holds; None when it is made elsewhere or its data is left out."""
    if secret is None:
        return None
    keys: set[str] = set()
    for field in ("data", "stringData"):
        value = secret.get(field)
        if isinstance(value, dict):
            keys.update(str(k) for k in value)
    return keys or None


def _invalid(held: dict[str, Resource | None], name: str, mode: str) -> str:
    """Why the Secret cannot serve, or "" when it can (or its content is not in the input)."""
    keys = _keys(held[name])
    if keys is None:
        return ""
    if not ({"tls.crt", "tls.key"} <= keys or {"cert", "key"} <= keys):
        return f"holds no certificate and key: it has {', '.join(sorted(keys))}, not tls.crt and tls.key"
    if mode in MUTUAL_MODES and not keys & {"ca.crt", "cacert"} and f"{name}-cacert" not in held:
        return f"holds no CA certificate for {mode} (ca.crt), and there is no Secret {name}-cacert"
    return ""
