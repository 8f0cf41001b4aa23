"""`meshcanary import`: manifests in, a base and a release file out that render back to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.errors import InputError
from meshcanary.importer import ImportResult, import_manifests
from meshcanary.manifest import Loader
from meshcanary.problem import Problem, Severity
from meshcanary.render.repository import render
from tests.support import ARTICLE, by_kind, kustomize_build, write

# The article's unversioned Deployment, which its canary replaces: a loss the user accepts.
SEED_DROPS = ("Deployment/micro-api",)
ARTICLE_FILES = (
    "micro-api.yaml",
    "micro-api-canary-istio-v2.yaml",
    "destination-rule-all.yaml",
    "virtual-service-all.yaml",
    "micro-gateway.yaml",
    "micro-api-canary-istio-v1.yaml",
)


def _docs(*paths: Path) -> list[dict[str, Any]]:
    return [
        d
        for path in paths
        for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=Loader)
        if d
    ]


def _labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def _at(notes: tuple[Problem, ...], file: str, line: int | None = None) -> list[Problem]:
    return [
        n
        for n in notes
        if n.location.file.endswith(file) and (line is None or n.location.line == line)
    ]


def _import(
    root: Path, manifests: dict[str, str], environment: str = "prod", **options: Any
) -> ImportResult:
    folder = root.parent / "manifests"
    paths = [write(folder / name, text) for name, text in manifests.items()]
    return import_manifests(root, paths, environment, **options)


def _built(root: Path, environment: str, service: str) -> list[dict[str, Any]]:
    render(root, [environment])
    return kustomize_build(root / "deploy" / "overlays" / environment / service)


def _assert_versions_equivalent(
    built: list[dict[str, Any]], service: str, versions: dict[str, dict[str, Any]]
) -> None:
    """Each input Deployment (by version) is rebuilt as <service>-<version> with its labels,
    image, replicas, ports and rollout settings."""
    deployments = {d["metadata"]["name"]: d for d in by_kind(built, "Deployment")}
    assert sorted(deployments) == sorted(f"{service}-{v}" for v in versions)
    for version, source in versions.items():
        rebuilt = deployments[f"{service}-{version}"]
        spec, given = rebuilt["spec"], source["spec"]
        assert spec["selector"]["matchLabels"] == given["selector"]["matchLabels"]
        assert _labels(rebuilt) == _labels(source)
        assert spec["replicas"] == given["replicas"]
        for key in ("minReadySeconds", "strategy"):
            assert spec.get(key) == given.get(key)
        (container,) = spec["template"]["spec"]["containers"]
        (original,) = given["template"]["spec"]["containers"]
        assert container == original


def _by_version(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        _labels(d)["version"]: d for d in by_kind(docs, "Deployment") if "version" in _labels(d)
    }


# -- the seed ------------------------------------------------------------------------------


@pytest.fixture
def seed_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ImportResult]:
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(ARTICLE)  # paths as a user types them: messages show them the same way
    return root, import_manifests(root, [Path(f) for f in ARTICLE_FILES], "prod", drops=SEED_DROPS)


def test_seed_writes_base_release_and_environment(seed_import: tuple[Path, ImportResult]) -> None:
    root, result = seed_import
    assert set(result.written) == {
        "deploy/base/micro-api/kustomization.yaml",
        "deploy/base/micro-api/deployment.yaml",
        "deploy/base/micro-api/service.yaml",
        "environments/prod/environment.yaml",
        "environments/prod/micro-api.yaml",
    }
    text = (root / "environments/prod/micro-api.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/release.schema.json\n")
    release = yaml.safe_load(text)
    assert release["service"] == "micro-api"
    assert release["base"] == "deploy/base/micro-api"
    assert release["hosts"] == ["micro-api.default.svc.cluster.local"]
    assert release["gateways"] == ["micro-gateway"]  # kept: `check` warns about it
    assert release["trafficPolicy"]["loadBalancer"] == {"simple": "ROUND_ROBIN"}
    image = "registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api"
    # -SNAPSHOT is a tag: the schema takes it; the mutable-image-tag rule warns at check time.
    assert release["versions"] == {
        "v1": {"image": f"{image}:1.1-SNAPSHOT", "replicas": 3, "weight": 70},
        "v2": {"image": f"{image}:1.3-SNAPSHOT", "replicas": 3, "weight": 30},
    }
    environment = yaml.safe_load((root / "environments/prod/environment.yaml").read_text())
    assert environment["namespace"] == "default"
    assert environment["istioApiVersion"] == "networking.istio.io/v1alpha3"
    assert list(environment["gateways"]) == ["micro-gateway"]

    base = yaml.safe_load((root / "deploy/base/micro-api/deployment.yaml").read_text())
    assert base["metadata"]["name"] == "micro-api"
    assert base["spec"]["selector"]["matchLabels"] == {"app": "micro-api"}
    assert _labels(base) == {"app": "micro-api"}
    assert base["spec"]["template"]["spec"]["containers"][0]["image"] == f"{image}:1.1-SNAPSHOT"
    service = yaml.safe_load((root / "deploy/base/micro-api/service.yaml").read_text())
    assert service["spec"]["selector"] == {"app": "micro-api"}
    assert service["spec"]["ports"][0]["targetPort"] == 9090  # as given; `check` reports it


def test_seed_reports_the_typo_and_the_unversioned_deployment(
    seed_import: tuple[Path, ImportResult],
) -> None:
    _, result = seed_import
    (typo,) = _at(result.notes, "micro-api-canary-istio-v1.yaml", 18)
    assert str(typo.location) == "micro-api-canary-istio-v1.yaml:18:1"
    assert "'meta data' looks like a misspelt 'metadata'" in typo.message
    assert typo.severity == Severity.INFO  # it holds only the name, which is replaced
    assert typo.rule == "import-normalized"
    (unversioned,) = [n for n in _at(result.notes, "micro-api.yaml") if "Deployment" in n.message]
    assert "no version label" in unversioned.message
    assert unversioned.rule == "import-dropped"  # refused, and --drop accepts the loss
    assert unversioned.location.line == 37  # the pod template's labels
    assert not [n for n in result.notes if "SNAPSHOT" in n.message]
    renamed = {n.location.file for n in result.notes if "is rendered as" in n.message}
    assert renamed == {"virtual-service-all.yaml", "destination-rule-all.yaml"}
    assert all(n.rule.startswith("import-") and n.location.line >= 1 for n in result.notes)


def test_seed_renders_to_what_it_was(seed_import: tuple[Path, ImportResult]) -> None:
    root, _ = seed_import
    source = _docs(*(ARTICLE / f for f in ARTICLE_FILES))
    built = _built(root, "prod", "micro-api")
    assert {r["metadata"]["namespace"] for r in built} == {"default"}
    _assert_versions_equivalent(built, "micro-api", _by_version(source))

    (service,) = by_kind(built, "Service")
    original = by_kind(source, "Service")[0]
    assert service["metadata"]["name"] == "micro-api"
    assert service["spec"] == original["spec"]

    (rule,) = by_kind(built, "DestinationRule")
    (given_rule,) = by_kind(source, "DestinationRule")
    assert rule["spec"]["trafficPolicy"] == given_rule["spec"]["trafficPolicy"]
    deployments = {_labels(d)["version"]: d for d in by_kind(built, "Deployment")}
    for subset in given_rule["spec"]["subsets"]:
        (rebuilt,) = [s for s in rule["spec"]["subsets"] if s["name"] == subset["name"]]
        assert subset["labels"].items() <= rebuilt["labels"].items()
        assert rebuilt["labels"].items() <= _labels(deployments[subset["name"]]).items()

    (route,) = by_kind(built, "VirtualService")
    (given,) = by_kind(source, "VirtualService")
    assert route["spec"]["hosts"] == given["spec"]["hosts"]
    assert route["spec"]["gateways"] == given["spec"]["gateways"]
    (weighted,) = route["spec"]["http"]
    assert [(d["destination"]["subset"], d["weight"]) for d in weighted["route"]] == [
        (d["destination"]["subset"], d["weight"]) for d in given["spec"]["http"][0]["route"]
    ]

    (gateway,) = by_kind(kustomize_build(root / "deploy/overlays/prod/_gateways"), "Gateway")
    (given_gateway,) = by_kind(source, "Gateway")
    assert gateway["metadata"]["name"] == "micro-gateway"
    assert gateway["spec"] == given_gateway["spec"]


def test_seed_import_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ARTICLE)
    outputs = []
    for name in ("one", "two"):
        root = tmp_path / name
        root.mkdir()
        result = import_manifests(root, [Path(f) for f in ARTICLE_FILES], "prod", drops=SEED_DROPS)
        outputs.append(({p: (root / p).read_bytes() for p in result.written}, result.notes))
    assert outputs[0] == outputs[1]


# -- routes: pins, mirror, timeouts, several versions -----------------------------------------

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: store, labels: {app: shop}}
spec:
  selector: {app: shop}
  ports:
    - {name: http, port: 80, targetPort: http}
"""


def _deployment(version: str, image: str, replicas: int, name: str | None = None) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name or "shop-" + version}, namespace: store, labels: {{app: shop, team: web}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: shop, version: {version}}}}}
  template:
    metadata: {{labels: {{app: shop, version: {version}}}}}
    spec:
      containers:
        - name: shop
          image: {image}
          ports: [{{name: http, containerPort: 8080}}]
          resources: {{requests: {{cpu: 100m}}}}
"""


RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop, namespace: store}
spec:
  host: shop.store.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
  subsets:
    - {name: stable, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
    - {name: v3, labels: {version: v3}}
"""

ROUTES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: store}
spec:
  hosts: [shop.store.svc.cluster.local, shop.example.com]
  gateways: [mesh, store/public]
  http:
    - name: testers
      match:
        - headers: {x-canary: {exact: always}}
        - headers: {cookie: {regex: "^(.*;\\\\s*)?canary=always(\\\\s*;.*)?$"}}
      route:
        - destination: {host: shop, subset: v3}
      timeout: 5s
      retries: {attempts: 2, perTryTimeout: 2s}
    - name: main
      route:
        - destination: {host: shop.store.svc.cluster.local, subset: stable}
          weight: 80
        - destination: {host: shop.store.svc.cluster.local, subset: v2}
          weight: 20
      mirror: {host: shop, subset: v3}
      mirrorPercentage: {value: 20}
      timeout: 5s
      retries: {attempts: 2, perTryTimeout: 2s}
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, ImportResult, list[dict[str, Any]]]:
    root = tmp_path / "repo"
    manifests = {
        "service.yaml": SERVICE,
        "v1.yaml": _deployment("v1", "registry.example/shop:1.0", 4),
        "v2.yaml": _deployment("v2", "registry.example/shop:1.1", 2),
        "v3.yaml": _deployment("v3", "registry.example/shop:2.0-rc.1", 1),
        "rule.yaml": RULE,
        "routes.yaml": ROUTES,
    }
    result = _import(root, manifests)
    source = [d for text in manifests.values() for d in yaml.safe_load_all(text)]
    return root, result, source


def test_pins_mirror_timeout_and_retries_are_imported(
    shop: tuple[Path, ImportResult, list[dict[str, Any]]],
) -> None:
    root, result, _ = shop
    release = yaml.safe_load((root / "environments/prod/shop.yaml").read_text())
    assert release["hosts"] == ["shop.store.svc.cluster.local", "shop.example.com"]
    assert release["gateways"] == ["mesh", "store/public"]
    assert release["timeout"] == "5s"
    assert release["retries"] == {"attempts": 2, "perTryTimeout": "2s"}
    assert release["match"] == [
        {"name": "testers", "version": "v3", "headers": {"x-canary": {"exact": "always"}}},
        {
            "name": "testers-1",
            "version": "v3",
            "headers": {"cookie": {"regex": "^(.*;\\s*)?canary=always(\\s*;.*)?$"}},
        },
    ]
    assert release["mirror"] == {"version": "v3", "percent": 20}
    # Route order: the weighted route's versions, then the pinned one.
    assert [(v, s["weight"]) for v, s in release["versions"].items()] == [
        ("v1", 80),
        ("v2", 20),
        ("v3", 0),
    ]
    environment = yaml.safe_load((root / "environments/prod/environment.yaml").read_text())
    assert environment == {
        "namespace": "store",
        "istioApiVersion": "networking.istio.io/v1",
        # What `init` gives a new environment: `step --next` works on the imported canary.
        "defaults": {"canary": {"steps": [10, 25, 50, 75, 100]}},
        "policy": {"maxStep": 25},
    }
    (renamed,) = [n for n in result.notes if "subset stable" in n.message]
    assert renamed.severity == Severity.INFO
    assert (renamed.location.file.endswith("rule.yaml"), renamed.location.line) == (True, 8)
    (named,) = [n for n in result.notes if "route name 'main'" in n.message]
    assert named.severity == Severity.INFO
    assert named.rule == "import-normalized"
    assert "rendered as weighted" in named.message


def test_pins_mirror_timeout_and_retries_render_back(
    shop: tuple[Path, ImportResult, list[dict[str, Any]]],
) -> None:
    root, _, source = shop
    built = _built(root, "prod", "shop")
    assert {r["metadata"]["namespace"] for r in built} == {"store"}
    _assert_versions_equivalent(built, "shop", _by_version(source))
    (route,) = by_kind(built, "VirtualService")
    pins = [r for r in route["spec"]["http"] if r["name"] != "weighted"]
    assert [(p["match"][0]["headers"], p["route"][0]["destination"]["subset"]) for p in pins] == [
        (m["headers"], "v3")
        for m in by_kind(source, "VirtualService")[0]["spec"]["http"][0]["match"]
    ]
    (weighted,) = [r for r in route["spec"]["http"] if r["name"] == "weighted"]
    assert [(d["destination"]["subset"], d["weight"]) for d in weighted["route"]] == [
        ("v1", 80),
        ("v2", 20),
        ("v3", 0),
    ]
    assert weighted["mirror"]["subset"] == "v3"
    assert weighted["mirrorPercentage"] == {"value": 20.0}
    for http in route["spec"]["http"]:
        assert http["timeout"] == "5s"
        assert http["retries"] == {"attempts": 2, "perTryTimeout": "2s"}
    (rule,) = by_kind(built, "DestinationRule")
    assert rule["spec"]["trafficPolicy"] == {"loadBalancer": {"simple": "LEAST_REQUEST"}}
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["v1", "v2", "v3"]


# -- what cannot be represented is reported where it was read ---------------------------------


def test_weights_that_do_not_sum_to_100_are_scaled_with_a_note(tmp_path: Path) -> None:
    # Subset v3 of the DestinationRule selects no imported version: refused, and dropped here.
    routes = ROUTES.split("  http:")[0] + (
        "  http:\n"
        "    - route:\n"
        "        - {destination: {host: shop, subset: stable}, weight: 1}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 1}\n"
    )
    result = _import(
        tmp_path / "repo",
        {
            "all.yaml": "---\n".join(
                [
                    SERVICE,
                    _deployment("v1", "r.example/shop:1", 1),
                    _deployment("v2", "r.example/shop:2", 1),
                    RULE,
                    routes,
                ]
            )
        },
        drops=("DestinationRule/shop:spec.subsets[2]",),
    )
    release = yaml.safe_load((tmp_path / "repo/environments/prod/shop.yaml").read_text())
    assert {v: s["weight"] for v, s in release["versions"].items()} == {"v1": 50, "v2": 50}
    (note,) = [n for n in result.notes if "sum to 2" in n.message]
    assert "written as v1 50 + v2 50, the same shares in percent" in note.message
    assert note.rule == "import-normalized"
    (subset,) = [n for n in result.notes if "subset v3 selects none" in n.message]
    assert subset.rule == "import-dropped"
    render(tmp_path / "repo", ["prod"])


def test_routes_a_release_cannot_express_are_refused_where_they_are(tmp_path: Path) -> None:
    routes = ROUTES.split("  http:")[0] + (
        "  http:\n"
        "    - match: [{uri: {prefix: /beta}}, {headers: {x-beta: {exact: '1'}}}]\n"  # 8
        "      route: [{destination: {host: shop, subset: v2}}]\n"
        "      fault: {abort: {httpStatus: 503, percentage: {value: 1}}}\n"  # 10
        "    - match: [{uri: {prefix: /api}}]\n"  # 11: weighted, with other weights
        "      route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 50}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 50}\n"
        "    - route:\n"  # 15: the catch-all
        "        - {destination: {host: shop, subset: v1}, weight: 90}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 10}\n"
        "        - {destination: {host: elsewhere, subset: v2}, weight: 0}\n"  # 18
        "      timeout: 3s\n"
        "    - route: [{destination: {host: shop, subset: v2}}]\n"  # 20: never reached
    )
    manifests = {
        "svc.yaml": SERVICE,
        "v1.yaml": _deployment("v1", "r.example/shop:1", 2),
        "v2.yaml": _deployment("v2", "r.example/shop:2", 2),
        "routes.yaml": routes,
    }
    refused = _import(tmp_path / "refused", manifests)
    assert refused.written == ()
    notes = {(n.location.line, n.rule): n for n in _at(refused.notes, "routes.yaml")}
    # Route 0 pins both its conditions to v2, but has no timeout where the weighted route has.
    assert (
        "route 0 has no timeout, but the weighted route's '3s'"
        in notes[8, "import-refused"].message
    )
    assert "fault injection" in notes[10, "import-refused"].message
    assert "route 1 splits requests v1 50 + v2 50, the weighted route (route 2) v1 90 + v2 10" in (
        notes[11, "import-refused"].message
    )
    assert "is not Service shop" in notes[18, "import-refused"].message
    assert "never reached" in notes[20, "import-normalized"].message
    # No DestinationRule: subsets are read as version labels, and said so once per subset.
    assert len([n for n in refused.notes if "no DestinationRule" in n.message]) == 2

    # Accepting each loss by name imports the rest.
    root = tmp_path / "repo"
    drops = ("spec.http[0]", "spec.http[1]", "spec.http[2].route[2]")
    result = _import(root, manifests, drops=tuple(f"VirtualService/shop:{d}" for d in drops))
    assert not result.refused
    release = yaml.safe_load((root / "environments/prod/shop.yaml").read_text())
    assert {v: s["weight"] for v, s in release["versions"].items()} == {"v1": 90, "v2": 10}
    assert release["match"] == [
        {"version": "v2", "uri": {"prefix": "/beta"}},
        {"version": "v2", "headers": {"x-beta": {"exact": "1"}}},
    ]
    assert release["timeout"] == "3s"
    assert {
        n.location.line for n in _at(result.notes, "routes.yaml") if n.rule == "import-dropped"
    } == {
        8,
        10,
        11,
        18,
    }
    render(root, ["prod"])


def test_fields_two_versions_do_not_share_become_the_versions_patch(tmp_path: Path) -> None:
    v2 = _deployment("v2", "r.example/shop:2", 1).replace(
        "          resources: {requests: {cpu: 100m}}\n",
        "          resources: {requests: {cpu: 500m}}\n          env: [{name: MODE, value: fast}]\n",
    )
    root = tmp_path / "repo"
    result = _import(
        root,
        {"a.yaml": SERVICE, "v1.yaml": _deployment("v1", "r.example/shop:1", 1), "v2.yaml": v2},
    )
    assert result.ok and result.verified  # kustomize applies the patch: v2 is v2 again
    (kept,) = [n for n in _at(result.notes, "v2.yaml") if "patch" in n.message]
    assert "versions.v2.patch" in kept.message and kept.rule == "import-normalized"
    release = yaml.safe_load((root / "environments/prod/shop.yaml").read_text())
    (container,) = release["versions"]["v2"]["patch"]["spec"]["template"]["spec"]["containers"]
    assert container == {
        "name": "shop",
        "resources": {"requests": {"cpu": "500m"}},
        "env": [{"name": "MODE", "value": "fast"}],
    }
    assert "patch" not in release["versions"]["v1"]
    # No VirtualService: the Service spreads requests over the pods, so weights follow replicas.
    assert {v: s["weight"] for v, s in release["versions"].items()} == {"v1": 50, "v2": 50}
    assert [n for n in result.notes if "weights follow the replicas" in n.message]
    base = yaml.safe_load((root / "deploy/base/shop/deployment.yaml").read_text())
    assert base["metadata"] == {"name": "shop", "labels": {"app": "shop", "team": "web"}}
    assert base["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m"}
    }


def test_a_single_unversioned_deployment_becomes_v1(tmp_path: Path) -> None:
    plain = _deployment("v1", "r.example/shop", 2, name="shop").replace(", version: v1", "")
    root = tmp_path / "repo"
    result = _import(root, {"svc.yaml": SERVICE, "deploy.yaml": plain}, namespace="other")
    release = yaml.safe_load((root / "environments/prod/shop.yaml").read_text())
    # No tag means latest: written out so the release names a tag, with a note.
    assert release["versions"] == {
        "v1": {"image": "r.example/shop:latest", "replicas": 2, "weight": 100}
    }
    assert [n for n in result.notes if "imported as version v1" in n.message]
    assert [n for n in result.notes if "has no tag" in n.message]
    # The manifests say store; --namespace decides for a new environment.
    environment = yaml.safe_load((root / "environments/prod/environment.yaml").read_text())
    assert environment["namespace"] == "other"
    built = _built(root, "prod", "shop")
    (deployment,) = by_kind(built, "Deployment")
    assert deployment["metadata"]["name"] == "shop-v1"
    assert _labels(deployment) == {"app": "shop", "version": "v1"}


def test_an_existing_environment_gains_the_imported_gateways(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    environment = write(
        root / "environments/prod/environment.yaml",
        "# ours\nnamespace: store\ngateways:\n"
        "  other:\n    selector: {istio: ingressgateway}\n"
        "    servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [x.example.com]}]\n",
    )
    before = environment.read_bytes()
    gateway = (
        "apiVersion: networking.istio.io/v1\nkind: Gateway\n"
        "metadata: {name: public, namespace: store}\n"
        "spec:\n  selector: {istio: ingressgateway}\n"
        "  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [shop.example.com]}]\n"
    )
    routes = ROUTES.replace("gateways: [mesh, store/public]", "gateways: [mesh, public]")
    result = _import(
        root,
        {
            "svc.yaml": SERVICE,
            "v1.yaml": _deployment("v1", "r.example/shop:1", 1),
            "v2.yaml": _deployment("v2", "r.example/shop:2", 1),
            "v3.yaml": _deployment("v3", "r.example/shop:3", 1),
            "rule.yaml": RULE,
            "routes.yaml": routes,
            "gateway.yaml": gateway,
        },
    )
    assert result.ok, [n.format() for n in result.refused + result.differences]
    assert "environments/prod/environment.yaml" in result.written
    after = environment.read_text(encoding="utf-8")
    assert after.startswith(before.decode())  # comments and the declared gateway kept
    assert yaml.safe_load(after)["gateways"]["public"] == {
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {
                "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                "hosts": ["shop.example.com"],
            }
        ],
    }
    (added,) = _at(result.notes, "gateway.yaml")
    assert "added to environments/prod/environment.yaml" in added.message
    release = yaml.safe_load((root / "environments/prod/shop.yaml").read_text())
    assert release["gateways"] == ["mesh", "public"]
    render(root, ["prod"])


def test_server_set_fields_of_kubectl_get_output_are_left_out(tmp_path: Path) -> None:
    service = SERVICE.replace(
        "spec:\n",
        "  uid: 0b7e\n  resourceVersion: '123'\nspec:\n  clusterIP: 10.0.0.7\n  clusterIPs: [10.0.0.7]\n",
    ).replace(
        "metadata: {name: shop, namespace: store, labels: {app: shop}}",
        "metadata:\n  name: shop\n  namespace: store",
    )
    service += "status: {loadBalancer: {}}\n"
    root = tmp_path / "repo"
    result = _import(
        root, {"svc.yaml": service, "v1.yaml": _deployment("v1", "r.example/shop:1", 1)}
    )
    written = yaml.safe_load((root / "deploy/base/shop/service.yaml").read_text())
    assert written == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "shop"},
        "spec": {
            "selector": {"app": "shop"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    (note,) = [n for n in _at(result.notes, "svc.yaml") if "API server sets" in n.message]
    assert note.severity == Severity.INFO
    assert "clusterIP" in note.message and "status" in note.message


# -- refusals: nothing written -----------------------------------------------------------------


def test_an_existing_base_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root / "deploy/base/shop/kustomization.yaml", "resources: []\n")
    with pytest.raises(InputError, match="deploy/base/shop already exists"):
        _import(root, {"svc.yaml": SERVICE, "v1.yaml": _deployment("v1", "r.example/shop:1", 1)})
    assert not (root / "environments").exists()


def test_bad_yaml_is_an_input_error_located_in_the_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    with pytest.raises(InputError) as caught:
        _import(root, {"svc.yaml": SERVICE, "bad.yaml": "kind: Deployment\nspec: [1, 2\n"})
    (problem,) = caught.value.problems
    assert problem.location.file.endswith("bad.yaml")
    assert problem.location.line >= 2
    assert not root.exists()


def test_no_service_or_no_version_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no Service"):
        _import(tmp_path / "a", {"v1.yaml": _deployment("v1", "r.example/shop:1", 1)})
    other = _deployment("v1", "r.example/x:1", 1).replace("app: shop", "app: other")
    with pytest.raises(InputError, match="no Service selects the pods of a Deployment"):
        _import(tmp_path / "b", {"svc.yaml": SERVICE, "d.yaml": other})


def test_names_must_be_dns_labels(tmp_path: Path) -> None:
    with pytest.raises(InputError, match='environment "Prod"'):
        import_manifests(tmp_path, [ARTICLE / "micro-api.yaml"], "Prod")
    with pytest.raises(InputError, match='service "micro_api"'):
        import_manifests(tmp_path, [ARTICLE / "micro-api.yaml"], "prod", services=["micro_api"])


def test_a_value_no_release_can_hold_is_refused_at_its_source(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    deployment = _deployment("v1", "Registry.example/Shop:1", 1)
    with pytest.raises(InputError) as caught:
        _import(root, {"svc.yaml": SERVICE, "v1.yaml": deployment})
    (problem,) = caught.value.problems
    assert problem.location.file.endswith("v1.yaml")
    assert (problem.location.line, problem.location.column) == (12, 18)
    assert 'versions.v1.image "Registry.example/Shop:1"' in problem.message
    assert not root.exists()
