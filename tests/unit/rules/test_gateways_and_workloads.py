"""The gateway, DestinationRule and workload rules: what their fixtures cannot show.

How workloads are counted (owners, gateway pods, labels Istio adds), that a reference into
what the input does not hold is an `info` of `reference-not-checked` and nothing else, that
the rules stay quiet on the repository's own examples and on Bookinfo, and that malformed
objects never make them raise. Their pass and fail fixtures are in `tests/rules/<rule-id>/`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import yaml

from meshcanary.manifest import Parsed, parse_text
from meshcanary.problem import Problem, Severity
from meshcanary.rules import (
    Scope,
    destination_rule_host,
    destination_tls_verify,
    gateway_credential,
    gateway_duplicate_certificate,
    gateway_exists,
    gateway_port_on_service,
    gateway_selector,
    gateways_conflict,
    hosts_gateways_agree,
    reference_not_checked,
    run,
    service_target_port,
    subset_selects_one_deployment,
    workload_ports_agree,
)
from meshcanary.rules._workloads import Workloads, is_gateway_workload, istio_added, owners
from tests.support import BOOKINFO, ROOT, kustomize_build

RULES: tuple[ModuleType, ...] = (
    destination_rule_host,
    destination_tls_verify,
    gateway_credential,
    gateway_duplicate_certificate,
    gateway_exists,
    gateway_port_on_service,
    gateway_selector,
    gateways_conflict,
    hosts_gateways_agree,
    reference_not_checked,
    service_target_port,
    subset_selects_one_deployment,
    workload_ports_agree,
)


def _scope(text: str) -> Scope:
    parsed = Parsed()
    parse_text(text, "manifest.yaml", parsed)
    assert parsed.problems == [], [str(p) for p in parsed.problems]
    return Scope(parsed.resources)


def _run(text: str, *rules: ModuleType) -> list[Problem]:
    return run(_scope(text), rules=list(rules))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.ID)
def test_each_rule_names_the_istio_messages_it_stands_for(rule: ModuleType) -> None:
    codes = rule.ISTIO_CODES
    assert isinstance(codes, tuple) and all(c.startswith("IST0") for c in codes)
    assert all(c in (rule.__doc__ or "") for c in codes), "the docstring relates it to Istio's"


# Workloads ----------------------------------------------------------------------------------

DUMPED = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: web}]}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-5d8f
  namespace: shop
  ownerReferences: [{kind: Deployment, name: web, controller: true}]
spec:
  template: {metadata: {labels: {app: web, pod-template-hash: 5d8f}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-5d8f-abcde
  namespace: shop
  labels: {app: web, pod-template-hash: 5d8f}
  ownerReferences: [{kind: ReplicaSet, name: web-5d8f, controller: true}]
---
# Owned by a ReplicaSet that is not in the input: it counts as that ReplicaSet.
apiVersion: v1
kind: Pod
metadata:
  name: api-7c9b-xyz
  namespace: shop
  labels: {app: api}
  ownerReferences: [{kind: ReplicaSet, name: api-7c9b, controller: true}]
---
# Two objects that claim to control each other must not hang the count.
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: loop-a
  namespace: shop
  ownerReferences: [{kind: ReplicaSet, name: loop-b, controller: true}]
spec: {template: {metadata: {labels: {app: loop}}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: loop-b
  namespace: shop
  ownerReferences: [{kind: ReplicaSet, name: loop-a, controller: true}]
spec: {template: {metadata: {labels: {app: loop}}}}
---
# An Argo Rollout that points at a Deployment's template runs no pods of its own.
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: ref, namespace: shop}
spec: {workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}}
"""


def test_objects_a_controller_of_the_input_owns_count_as_that_controller() -> None:
    workloads = Workloads.of(_scope(DUMPED))
    assert owners(workloads.select("shop", [{"app": "web"}])) == ["Deployment shop/web"]
    assert owners(workloads.select("shop", [{"app": "api"}])) == ["ReplicaSet shop/api-7c9b"]
    assert len(owners(workloads.select("shop", [{"app": "loop"}]))) <= 2
    assert workloads.holds("shop") and not workloads.holds("other")
    assert workloads.select(None, [{"app": "web"}, {"app": "api"}]) == []


def test_selecting_without_a_namespace_looks_in_every_namespace() -> None:
    text = DUMPED + "---\n" + DUMPED.replace("namespace: shop", "namespace: shop-b")
    workloads = Workloads.of(_scope(text))
    found = owners(workloads.select(None, [{"app": "web"}]))
    assert found == ["Deployment shop/web", "Deployment shop-b/web"]


GATEWAYS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: helm, namespace: istio-ingress}
spec:
  template:
    metadata: {labels: {istio: ingress}, annotations: {inject.istio.io/templates: "gateway"}}
    spec: {containers: [{name: istio-proxy, image: auto}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istioctl, namespace: istio-system}
spec:
  template:
    metadata: {labels: {istio: ingressgateway}}
    spec:
      containers: [{name: istio-proxy, image: "docker.io/istio/proxyv2:1.22.3", args: [proxy, router]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: managed, namespace: shop}
spec:
  template:
    metadata: {labels: {gateway.istio.io/managed: istio.io-gateway-controller}}
    spec: {containers: [{name: istio-proxy, image: auto}]}
---
# A sidecar is the same image, as a sidecar: not a gateway.
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: shop}
spec:
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - {name: app, image: "registry.example/app:1.0.0"}
        - {name: istio-proxy, image: "docker.io/istio/proxyv2:1.22.3", args: [proxy, sidecar]}
"""


def test_gateway_pods_are_told_from_application_pods() -> None:
    workloads = Workloads.of(_scope(GATEWAYS))
    gateways = [w.resource.name for w in workloads.all if is_gateway_workload(w)]
    assert gateways == ["helm", "istioctl", "managed"]


def test_labels_istio_adds_from_nodes_and_clusters_are_known() -> None:
    for label in (
        "topology.kubernetes.io/zone",
        "topology.istio.io/network",
        "kubernetes.io/hostname",
    ):
        assert istio_added(label)
    assert not istio_added("version") and not istio_added("topology.example.com/rack")


# What the input does not hold -----------------------------------------------------------------

ELSEWHERE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/public]
  http: [{route: [{destination: {host: shop}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ledger, namespace: shop}
spec: {host: ledger.billing.svc.cluster.local}
"""


def test_a_reference_into_what_the_input_does_not_hold_is_an_info_and_nothing_else() -> None:
    strict = (gateway_exists, destination_rule_host)
    assert _run(ELSEWHERE, *strict) == []
    noted = _run(ELSEWHERE, reference_not_checked)
    # The gateway, the route's destination (no Service of `shop` here), the rule's host.
    assert [(p.location.line, p.severity) for p in noted] == [
        (6, Severity.INFO),
        (7, Severity.INFO),
        (12, Severity.INFO),
    ]
    assert all("not checked" in p.message and "off" in p.hint for p in noted)
    # Once the namespaces are in the input, the references are checked.
    held = ELSEWHERE + (
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: istio-system}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: books, namespace: billing}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: shop, namespace: shop}\n"
    )
    assert _run(held, reference_not_checked) == []
    assert [p.rule for p in _run(held, *strict)] == ["gateway-exists", "destination-rule-host"]


def test_a_dotted_short_host_is_named_as_istio_reads_it() -> None:
    text = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: prod}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: reviews, namespace: prod}\nspec: {host: reviews.prod}\n"
    )
    (found,) = _run(text, destination_rule_host)
    assert "expands only a name without dots" in found.message
    assert found.hint == "write the host in full: reviews.prod.svc.cluster.local"


# The repository's own examples and Bookinfo -----------------------------------------------------

OVERLAYS = ROOT / "deploy" / "overlays"


@pytest.mark.parametrize("env", sorted(p.name for p in OVERLAYS.iterdir() if p.is_dir()))
def test_the_rendered_examples_give_these_rules_nothing(env: str) -> None:
    text = "---\n".join(yaml.safe_dump(r, sort_keys=False) for r in kustomize_build(OVERLAYS / env))
    problems = _run(text, *RULES)
    assert problems == [], "\n".join(f"[{p.rule}] {p.format()}" for p in problems)


# The sample as deployed for a canary; the folder's other files are alternatives to these.
BOOKINFO_DEPLOYED = (
    "bookinfo.yaml",
    "destination-rule-all.yaml",
    "bookinfo-gateway.yaml",
    "virtual-service-reviews-80-20.yaml",
)


def test_bookinfo_gives_these_rules_nothing_but_the_versions_it_leaves_out() -> None:
    parsed = Parsed()
    for name in BOOKINFO_DEPLOYED:
        path = BOOKINFO / name
        parse_text(path.read_text(encoding="utf-8"), str(path), parsed)
    problems = run(Scope(parsed.resources), rules=list(RULES))
    # details v2 and ratings v2, v2-mysql, v2-mysql-vm: Deployments of other sample files.
    assert {(p.rule, Path(p.location.file).name, p.location.line) for p in problems} == {
        ("subset-selects-one-deployment", "destination-rule-all.yaml", line)
        for line in (40, 43, 46, 60)
    }


# Malformed objects -----------------------------------------------------------------------------

MALFORMED = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: broken, namespace: shop}
spec:
  selector: {istio: [x]}
  servers:
    - null
    - {port: {number: "80"}, hosts: [3, null, "/"], tls: {credentialName: [a], credentialNames: 4}}
    - {port: 80, hosts: "x", tls: {mode: 3, serverCertificate: 1, privateKey: null}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: broken2, namespace: shop}
spec: {selector: {istio: x}, servers: {a: b}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gw
  namespace: shop
  ownerReferences: [null, {controller: true, kind: 3}, {controller: true}]
spec:
  template:
    metadata: {labels: {istio: x}, annotations: {inject.istio.io/templates: 5}}
    spec: {containers: [{args: router, image: 7, ports: [{containerPort: true, name: 4}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: gw, namespace: shop}
spec: {selector: {istio: x}, ports: [null, {port: "80"}, {port: 80, targetPort: [1], protocol: 5}]}
---
apiVersion: v1
kind: Service
metadata: {name: gw2, namespace: shop}
spec: {selector: {istio: x}, ports: [{port: 80, targetPort: 8080, appProtocol: 3, name: [x]}]}
---
apiVersion: v1
kind: Secret
metadata: {name: broken, namespace: shop}
data: [1, 2]
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: broken, namespace: shop}
spec: {secretName: 3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: broken, namespace: shop}
spec:
  host: 5
  trafficPolicy: {tls: [1], portLevelSettings: [null, {tls: {mode: SIMPLE, insecureSkipVerify: 1}}]}
  subsets: [null, {name: 3, trafficPolicy: 4}, {labels: {topology.istio.io/network: [1]}}]
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop, labels: 3}
spec: 4
"""


def test_malformed_objects_never_make_these_rules_raise() -> None:
    problems = _run(MALFORMED, *RULES)
    assert all(isinstance(p, Problem) for p in problems)


@pytest.mark.parametrize(
    "name",
    ["gateway_exists", "destination_host_exists", "destination_rule_host", "gateway_credential"],
)
def test_a_rule_and_reference_not_checked_share_one_judgement(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    module = importlib.import_module(f"meshcanary.rules.{name}")
    calls: list[int] = []
    judge = module._verdicts

    def counted(scope):  # type: ignore[no-untyped-def]
        calls.append(1)
        return judge(scope)

    monkeypatch.setattr(module, "_verdicts", counted)
    noted = _run(ELSEWHERE, module, reference_not_checked)
    assert len(calls) == 1  # not once for the rule and again for reference-not-checked
    assert noted == _run(ELSEWHERE, module) + _run(ELSEWHERE, reference_not_checked)
