"""The equivalence check `import --verify` runs: input manifests against a rendered tree."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshcanary.equivalence import Difference, compare
from meshcanary.kustomize import command as kustomize_command
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.problem import Location
from tests.support import BOOKINFO, write

# The sample as Istio's task pages deploy it for a canary.
SAMPLE = (
    "bookinfo.yaml",
    "destination-rule-all.yaml",
    "bookinfo-gateway.yaml",
    "virtual-service-reviews-80-20.yaml",
)
JASON = ("bookinfo.yaml", "destination-rule-all.yaml", "virtual-service-reviews-test-v2.yaml")


def read(
    files: tuple[str, ...] = SAMPLE, edit: tuple[str, str, str] | None = None
) -> list[Resource]:
    """The sample's resources, with `old` replaced by `new` in `file` when `edit` says so."""
    parsed = Parsed()
    for name in files:
        text = (BOOKINFO / name).read_text(encoding="utf-8")
        if edit is not None and edit[0] == name:
            assert edit[1] in text, f"{edit[1]!r} is not in {name}"
            text = text.replace(edit[1], edit[2], 1)
        parse_text(text, f"examples/bookinfo/{name}", parsed)
    assert parsed.problems == []
    return parsed.resources


def text(source: str, name: str = "input.yaml") -> list[Resource]:
    parsed = Parsed()
    parse_text(source, name, parsed)
    assert parsed.problems == []
    return parsed.resources


def at(name: str, line_text: str, value: str, *, after: str = "") -> Location:
    """Where `value` starts on the first line of bookinfo's `name` holding `line_text`."""
    lines = (BOOKINFO / name).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    number = next(i for i, line in enumerate(lines) if i >= start and line_text in line)
    return Location(f"examples/bookinfo/{name}", number + 1, lines[number].index(value) + 1)


def test_bookinfo_is_equivalent_to_itself() -> None:
    assert compare(read(), read()) == []
    assert compare(read(JASON), read(JASON)) == []


@pytest.mark.parametrize(
    ("edit", "path", "where"),
    [
        pytest.param(
            ("virtual-service-reviews-80-20.yaml", "weight: 20", "weight: 30"),
            "/spec/http/0/route/1/weight",
            ("virtual-service-reviews-80-20.yaml", "weight: 20", "20"),
            id="weight",
        ),
        pytest.param(
            (
                "virtual-service-reviews-80-20.yaml",
                "  - route:\n",
                "  - fault: {abort: {httpStatus: 500, percentage: {value: 1}}}\n    route:\n",
            ),
            "/spec/http/0/fault",
            ("virtual-service-reviews-80-20.yaml", "- route:", "route"),
            id="fault",
        ),
        pytest.param(
            (
                "destination-rule-all.yaml",
                "      version: v2\n  - name: v3",
                "      version: v3\n  - name: v3",
            ),
            "/spec/http/0/route/1/weight",
            ("virtual-service-reviews-80-20.yaml", "weight: 20", "20"),
            id="subset-relabelled",
        ),
        pytest.param(
            ("bookinfo-gateway.yaml", "    - uri:\n        exact: /login\n", ""),
            "/spec/http/0/match/2",
            ("bookinfo-gateway.yaml", "- uri:", "uri", {"after": "/static"}),
            id="uri-match-removed",
        ),
        pytest.param(
            (
                "bookinfo.yaml",
                "        image: docker.io/istio/examples-bookinfo-reviews-v2:1.17.0",
                "        image: docker.io/istio/examples-bookinfo-reviews-v2:1.17.1",
            ),
            "/spec/template/spec/containers/0/image",
            ("bookinfo.yaml", "examples-bookinfo-reviews-v2", "docker.io"),
            id="image",
        ),
    ],
)
def test_one_change_is_one_difference_where_the_input_decides_it(
    edit: tuple[str, str, str], path: str, where: tuple[str, ...]
) -> None:
    name, line_text, value, *options = where
    (difference,) = compare(read(), read(edit=edit))
    assert difference.pointer == path
    assert difference.location == at(name, line_text, value, **(options[0] if options else {}))
    assert str(difference).startswith(f"{difference.location}: ")
    # The other way round, one difference too, seen from the edited input.
    assert len(compare(read(edit=edit), read())) == 1


def test_one_header_match_removed_is_one_difference_at_that_match() -> None:
    both = ("    - headers:\n        end-user:\n          exact: jason\n",)
    kim = both[0] + "    - headers:\n        end-user:\n          exact: kim\n"
    expected = read(JASON, ("virtual-service-reviews-test-v2.yaml", both[0], kim))
    actual = read(JASON)
    (difference,) = compare(expected, actual)
    assert difference.pointer == "/spec/http/0/match/1"
    assert difference.location.line == 13  # the `- headers:` of kim
    assert "no such condition" in difference.actual and "reviews-v1" in difference.actual


def test_a_pin_lost_entirely_shows_where_its_requests_now_go() -> None:
    # Without its header the pin catches every request: what changed is that everyone else
    # now reaches v2, decided at the catch-all route of the input.
    lost = (
        "virtual-service-reviews-test-v2.yaml",
        "  - match:\n    - headers:\n        end-user:\n          exact: jason\n    route:",
        "  - route:",
    )
    (difference,) = compare(read(JASON), read(JASON, lost))
    assert difference.pointer == "/spec/http/1/route/0/destination"
    assert (difference.expected, difference.actual) == ("100% reviews-v1", "100% reviews-v2")


def test_split_conditions_and_one_route_with_two_are_equivalent() -> None:
    source = (BOOKINFO / "bookinfo-gateway.yaml").read_text(encoding="utf-8")
    one_route_each = source.replace(
        "    - uri:\n        prefix: /static\n",
        "",
    ).replace(
        "  - match:\n    - uri:\n        exact: /productpage\n",
        "  - match:\n    - uri:\n        exact: /productpage\n    route:\n    - destination:\n"
        "        host: productpage\n  - match:\n    - uri:\n        prefix: /static\n",
    )
    assert one_route_each.count("- match:") == 2
    expected = read(("bookinfo.yaml", "destination-rule-all.yaml", "bookinfo-gateway.yaml"))
    parsed = Parsed()
    for name in ("bookinfo.yaml", "destination-rule-all.yaml"):
        parse_text((BOOKINFO / name).read_text(encoding="utf-8"), name, parsed)
    parse_text(one_route_each, "split.yaml", parsed)
    assert compare(expected, parsed.resources) == []


def test_a_route_after_a_catch_all_is_ignored() -> None:
    unreachable = (
        "virtual-service-reviews-80-20.yaml",
        "      weight: 20\n",
        "      weight: 20\n  - match:\n    - uri: {prefix: /never}\n    route:\n"
        "    - destination: {host: reviews, subset: v3}\n",
    )
    assert compare(read(), read(edit=unreachable)) == []


def test_a_subset_to_a_one_version_service_equals_no_subset() -> None:
    # productpage has one Deployment: its subset v1 and the Service itself reach the same pods.
    without = (
        "bookinfo-gateway.yaml",
        "        host: productpage\n",
        "        host: productpage\n        subset: v1\n",
    )
    assert compare(read(), read(edit=without)) == []
    # reviews has three: no subset reaches all of them.
    all_three = (
        "virtual-service-reviews-80-20.yaml",
        "        subset: v1\n      weight: 80",
        "      weight: 80",
    )
    assert len(compare(read(), read(edit=all_three))) == 1


def test_weights_80_20_and_4_1_are_the_same_split() -> None:
    source = (BOOKINFO / "virtual-service-reviews-80-20.yaml").read_text(encoding="utf-8")
    four_one = source.replace("weight: 80", "weight: 4").replace("weight: 20", "weight: 1")
    actual = [r for r in read() if r.kind != "VirtualService" or r.name != "reviews"]
    assert compare(read(), [*actual, *text(four_one)]) == []
    # ... and 80/20 is not 80/1.
    assert compare(read(), [*actual, *text(four_one.replace("weight: 4", "weight: 80"))]) != []


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: legacy
  uid: 6f1c
  resourceVersion: "42"
  creationTimestamp: "2026-01-01T00:00:00Z"
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{}"
    deployment.kubernetes.io/revision: "3"
  labels: {app: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
status: {replicas: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: legacy}
spec:
  clusterIP: 10.0.0.12
  clusterIPs: [10.0.0.12]
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: legacy}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
"""
RENDERED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-v1
  namespace: shop
  labels: {app: web, version: v1, meshcanary.dev/service: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web, version: v1}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: ClusterIP
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80, protocol: TCP}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web-v1, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web-v1}
  minReplicas: 1
  maxReplicas: 5
"""


def _web(**kwargs: Any) -> list[Difference]:
    return compare(
        text(DEPLOYMENT),
        text(RENDERED, "built.yaml"),
        namespace="shop",
        deployment_names={"web": "web-v1"},
        names={("HorizontalPodAutoscaler", "web"): "web-v1"},
        **kwargs,
    )


def test_renamed_objects_in_another_namespace_compare_without_server_fields_and_defaults() -> None:
    found = _web(added_labels=("meshcanary.dev/service",))
    # The version label the renderer adds is a difference the caller accepts by its path.
    assert [(d.kind, d.pointer) for d in found] == [
        ("Deployment", "/metadata/labels/version"),
        ("Deployment", "/spec/selector/matchLabels/version"),
        ("Deployment", "/spec/template/metadata/labels/version"),
    ]
    assert found[0].location == Location("input.yaml", 12, 11)  # the input's labels
    assert (found[1].expected, found[1].actual) == ("(absent)", '"v1"')
    assert found[0].ref.name == "web"


def test_labels_the_caller_did_not_add_are_differences() -> None:
    assert "/metadata/labels/meshcanary.dev~1service" in [d.pointer for d in _web()]


def test_reordered_env_and_a_changed_value_are_found_by_name() -> None:
    rendered = RENDERED.replace(
        '[{name: A, value: "1"}, {name: B, value: "2"}]',
        '[{name: B, value: "2"}, {name: A, value: "9"}]',
    )
    found = compare(
        text(DEPLOYMENT),
        text(rendered, "built.yaml"),
        namespace="shop",
        deployment_names={"web": "web-v1"},
        names={("HorizontalPodAutoscaler", "web"): "web-v1"},
        added_labels=("meshcanary.dev/service", "version"),
    )
    pointers = [
        d.pointer
        for d in found
        if "matchLabels" not in d.pointer and "template/metadata" not in d.pointer
    ]
    assert pointers == [
        "/spec/template/spec/containers/0/env",
        "/spec/template/spec/containers/0/env/0/value",
    ]


def test_objects_missing_or_added_are_differences() -> None:
    extra = (
        RENDERED
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: surprise, namespace: shop}\n"
    )
    found = compare(
        text(DEPLOYMENT),
        text(extra, "built.yaml"),
        namespace="shop",
        deployment_names={"web": "web-v1"},
        added_labels=("meshcanary.dev/service", "version"),
    )
    messages = {(d.kind, d.name, d.pointer): d for d in found if "version" not in d.pointer}
    missing = messages[("HorizontalPodAutoscaler", "web", "")]
    assert missing.location == Location("input.yaml", 33, 1) and missing.actual == "(absent)"
    added = messages[("ConfigMap", "surprise", "")]
    assert added.resource is None and added.location.file == "built.yaml"
    assert ("HorizontalPodAutoscaler", "web-v1", "") in messages


def test_values_are_printed_safely() -> None:
    hostile = RENDERED.replace("registry.example/web:1.0", '"evil\\n::error::forged"', 1)
    (difference,) = [
        d
        for d in compare(
            text(DEPLOYMENT),
            text(hostile, "built.yaml"),
            namespace="shop",
            deployment_names={"web": "web-v1"},
            names={("HorizontalPodAutoscaler", "web"): "web-v1"},
            added_labels=("meshcanary.dev/service", "version"),
        )
        if d.pointer.endswith("image")
    ]
    assert "\n" not in str(difference)


# The real renderer and the real kustomize ---------------------------------------------------

INPUT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-v1, labels: {app: shop, version: v1}}
spec:
  replicas: 3
  selector: {matchLabels: {app: shop, version: v1}}
  template:
    metadata: {labels: {app: shop, version: v1}}
    spec:
      containers:
        - name: shop
          image: registry.example/shop:1.0
          ports: [{containerPort: 8080, name: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-v2, labels: {app: shop, version: v2}}
spec:
  replicas: 1
  selector: {matchLabels: {app: shop, version: v2}}
  template:
    metadata: {labels: {app: shop, version: v2}}
    spec:
      containers:
        - name: shop
          image: registry.example/shop:1.1
          ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: shop, labels: {app: shop}}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop}
spec:
  host: shop
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [shop]
  http:
    - match:
        - headers: {end-user: {exact: jason}}
      route: [{destination: {host: shop, subset: v2}}]
      timeout: 5s
    - route:
        - {destination: {host: shop, subset: v1}, weight: 90}
        - {destination: {host: shop, subset: v2}, weight: 10}
      timeout: 5s
"""
RELEASE = """\
service: shop
base: deploy/base/shop
timeout: 5s
match:
  - {name: testers, version: v2, headers: {end-user: {exact: jason}}}
versions:
  v1: {image: registry.example/shop:1.0, replicas: 3, weight: 90}
  v2: {image: registry.example/shop:1.1, replicas: 1, weight: 10}
"""


def _rendered(tmp_path: Path, cli, release: str) -> list[Resource]:
    repo = tmp_path / "repo"
    write(repo / "environments/prod/environment.yaml", "namespace: shop\n")
    write(repo / "environments/prod/shop.yaml", release)
    base = repo / "deploy/base/shop"
    write(base / "kustomization.yaml", "resources: [deployment.yaml, service.yaml]\n")
    deployment = INPUT.split("---\n")[0].replace("shop-v1", "shop").replace(", version: v1", "")
    write(base / "deployment.yaml", deployment)
    write(base / "service.yaml", INPUT.split("---\n")[2])
    assert cli("--repo", repo, "render").code == 0
    done = subprocess.run(
        [*kustomize_command(), str(repo / "deploy/overlays/prod/shop")],
        capture_output=True,
        text=True,
        check=True,
    )
    return text(done.stdout, "built.yaml")


def test_a_rendered_overlay_built_by_kustomize_is_equivalent_to_its_manifests(
    tmp_path: Path, cli
) -> None:
    assert compare(text(INPUT), _rendered(tmp_path, cli, RELEASE), namespace="shop") == []


def test_a_rendered_overlay_with_another_split_differs_at_the_input_weight(
    tmp_path: Path, cli
) -> None:
    release = RELEASE.replace("weight: 90", "weight: 80").replace("weight: 10", "weight: 20")
    (difference,) = compare(text(INPUT), _rendered(tmp_path, cli, release), namespace="shop")
    # Both weights changed: the first destination's is where to look.
    line = INPUT.splitlines().index("        - {destination: {host: shop, subset: v1}, weight: 90}")
    assert difference.location == Location("input.yaml", line + 1, 59)
    assert (difference.expected, difference.actual) == (
        "90% shop-v1, 10% shop-v2",
        "80% shop-v1, 20% shop-v2",
    )
