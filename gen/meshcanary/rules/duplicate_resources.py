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

The finding points at the second object's `metadata.name` and names the first one's file and
line. Fix: delete one of them, or rename or move one to another namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._mesh import DEFAULT_NAMESPACE, api_group

ID = "duplicate-resources"
SEVERITY = Severity.ERROR
SUMMARY = "no object (group, kind, namespace, name) is defined twice"
HINT = "keep one definition of the object, or rename one of them"

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
    first: dict[Key, Resource] = {}
    for resource in scope.resources:
        key = identity(resource)
        if key is None:
            continue
        original = first.setdefault(key, resource)
        if original is resource:
            continue
        loc = original.location(["metadata", "name"])
        where = f"{key[2]}/" if key[2] else ""
        yield Finding(
            resource,
            ["metadata", "name"],
            f"{resource.kind} {where}{key[3]} is already defined at {loc.file}:{loc.line}",
        )


def identity(resource: Resource) -> Key | None:
    """(group, kind, namespace, name), or None for objects without a fixed name or kind."""
    name = resource.metadata.get("name")
    if not isinstance(name, str) or not name or not resource.kind:
        return None
    group = api_group(resource)
    if (group, resource.kind) in CLUSTER_SCOPED:
        namespace = ""
    else:
        namespace = resource.namespace or DEFAULT_NAMESPACE
    return group, resource.kind, namespace, name
