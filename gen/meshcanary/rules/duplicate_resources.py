"""The same object is defined only once.

Two documents for the same API group, kind, namespace and name are one object to Kubernetes:
`kubectl apply` applies both in turn, and the last one wins without a word, so half of a
change (a weight, a replica count) silently disappears. Kustomize refuses such input with an
"already registered id" error; plain manifests do not.

Objects are the same when their API group (not version: `apps/v1` and `apps/v1beta1`
Deployments are one object), kind, namespace and name are. For namespaced kinds, a missing
namespace and "default" are the same; for cluster-scoped kinds (Namespace, ClusterRole,
PersistentVolume, CustomResourceDefinition, …) the namespace is ignored. Objects named only by
`generateName` are never duplicates. The duplicate fixtures kubeconform inherited from kubeval
treat `same-kind-different-api.yaml` as two objects; meshcanary deliberately does not, since
the API server stores both versions as one object.

Each copy after the first gets a finding at its `metadata.name`, and every finding names the
file and line of every copy (`is defined 3 times: at a.yaml:4, b.yaml:2 and b.yaml:30`), so
whichever one you look at tells you where the others are. Fix: delete all but one of them, or
rename one or move it to another namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import DEFAULT_NAMESPACE, api_group
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "duplicate-resources"
SEVERITY = Severity.ERROR
SUMMARY = "no object (group, kind, namespace, name) is defined twice"
HINT = "keep one definition of the object, or rename one of them"
RELEASE_HINT = (
    "meshcanary names what it renders after `service:` and `versions:` in the release file and "
    "`gateways:` in environment.yaml: rename or remove the other definition"
)

CLUSTER_SCOPED = frozenset(
    (
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("policy", "PodSecurityPolicy"),
        ("gateway.networking.k8s.io", "GatewayClass"),
    )
)

Key = tuple[str, str, str, str]


def check(scope: Scope) -> Iterator[Finding]:
    copies: dict[Key, list[Resource]] = {}
    for resource in scope.resources:
        key = identity(resource)
        if key is not None:
            copies.setdefault(key, []).append(resource)
    for (_, kind, namespace, name), found in copies.items():
        if len(found) < 2:
            continue
        places = [_place(resource) for resource in found]
        where = f"{namespace}/" if namespace else ""
        times = "twice" if len(found) == 2 else f"{len(found)} times"
        message = f"{kind} {where}{name} is defined {times}: at {_listed(places)}"
        for resource in found[1:]:
            yield Finding(resource, ["metadata", "name"], message)


def _place(resource: Resource) -> str:
    loc = resource.location(["metadata", "name"])
    return f"{loc.file}:{loc.line}"


def _listed(places: list[str]) -> str:
    """`a and b`, `a, b and c`: two places or more."""
    return f"{', '.join(places[:-1])} and {places[-1]}"


def identity(resource: Resource) -> Key | None:
    """(group, kind, namespace, name), or None for objects without a fixed name or kind.

    Not ResourceRef: the API server stores one object per group, whatever version a file
    writes, and puts an object without a namespace in the default one."""
    name = resource.metadata.get("name")
    if not isinstance(name, str) or not name or not resource.kind:
        return None
    group = api_group(resource)
    if (group, resource.kind) in CLUSTER_SCOPED:
        namespace = ""
    else:
        namespace = resource.namespace or DEFAULT_NAMESPACE
    return group, resource.kind, namespace, name
