"""Importing whole applications (Istio's samples) in one run: every service, what the pods
need, the Gateways, a second environment reusing the bases, the versions' order, and
`--verify`'s proof that the rendered tree does what the manifests do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.__main__ import main
from meshcanary.importer import ImportResult, import_manifests
from meshcanary.importer.context import DROPPED, REFUSED
from tests.support import BOOKINFO, DATA

APP = [
    BOOKINFO / "bookinfo.yaml",
    BOOKINFO / "destination-rule-all.yaml",
    BOOKINFO / "bookinfo-gateway.yaml",
]
# Subsets of Deployments the sample keeps in other files (ratings v2, the MySQL ones, details v2).
SUBSETS_WITHOUT_DEPLOYMENTS = (
    "DestinationRule/ratings:spec.subsets[1]",
    "DestinationRule/ratings:spec.subsets[2]",
    "DestinationRule/ratings:spec.subsets[3]",
    "DestinationRule/details:spec.subsets[1]",
)


def _release(root: Path, environment: str, service: str) -> dict[str, Any]:
    text = (root / "environments" / environment / f"{service}.yaml").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _bookinfo(root: Path, environment: str, routes: str, **options: Any) -> ImportResult:
    return import_manifests(
        root,
        [*APP, BOOKINFO / routes],
        environment,
        drops=options.pop("drops", SUBSETS_WITHOUT_DEPLOYMENTS),
        **options,
    )


@pytest.fixture
def staging(tmp_path: Path) -> tuple[Path, ImportResult]:
    root = tmp_path / "repo"
    root.mkdir()
    return root, _bookinfo(root, "staging", "virtual-service-reviews-80-20.yaml")


def test_bookinfo_imports_every_service_in_one_run_and_verifies(
    staging: tuple[Path, ImportResult],
) -> None:
    root, result = staging
    assert result.ok, [n.format() for n in result.refused + result.differences]
    assert result.verified is True
    assert [s.service for s in result.services] == ["details", "ratings", "reviews", "productpage"]
    for service in ("details", "ratings", "reviews", "productpage"):
        assert (root / "environments/staging" / f"{service}.yaml").is_file()
        account = yaml.safe_load((root / f"deploy/base/{service}/serviceaccount.yaml").read_text())
        assert account["metadata"]["name"] == f"bookinfo-{service}"
    environment = yaml.safe_load((root / "environments/staging/environment.yaml").read_text())
    assert list(environment["gateways"]) == ["bookinfo-gateway"]
    dropped = [n for n in result.notes if n.rule == DROPPED]
    assert len(dropped) == len(SUBSETS_WITHOUT_DEPLOYMENTS)


def test_productpage_keeps_the_paths_its_ingress_serves(staging: tuple[Path, ImportResult]) -> None:
    root, _ = staging
    release = _release(root, "staging", "productpage")
    assert release["hosts"] == ["*"]
    assert release["gateways"] == ["bookinfo-gateway"]
    assert release["requests"] == [
        {"uri": {"exact": "/productpage"}},
        {"uri": {"prefix": "/static"}},
        {"uri": {"exact": "/login"}},
        {"uri": {"exact": "/logout"}},
        {"uri": {"prefix": "/api/v1/products"}},
    ]


def test_versions_are_ordered_by_traffic_and_the_order_is_said(
    staging: tuple[Path, ImportResult],
) -> None:
    root, result = staging
    release = _release(root, "staging", "reviews")
    assert [(v, d["weight"]) for v, d in release["versions"].items()] == [
        ("v1", 80),
        ("v2", 20),
        ("v3", 0),
    ]
    (reviews,) = [s for s in result.services if s.service == "reviews"]
    assert reviews.versions == ("v1", "v2", "v3")
    assert "stable v1" in reviews.order and "canary v3" in reviews.order


def test_a_second_environment_reuses_the_bases_and_pins_jason(
    staging: tuple[Path, ImportResult],
) -> None:
    root, first = staging
    bases = {p: (root / p).read_bytes() for p in first.written if p.startswith("deploy/base/")}
    result = _bookinfo(root, "prod", "virtual-service-reviews-test-v2.yaml")
    assert result.ok, [n.format() for n in result.refused + result.differences]
    assert all(s.base_reused for s in result.services)
    assert not [p for p in result.written if p.startswith("deploy/base/")]
    assert {p: (root / p).read_bytes() for p in bases} == bases
    release = _release(root, "prod", "reviews")
    assert list(release["versions"]) == ["v1", "v2", "v3"]  # v1 takes every request but jason's
    (pin,) = release["match"]
    assert pin["version"] == "v2"
    assert pin["headers"] == {"end-user": {"exact": "jason"}}


def test_canary_chooses_the_canary(tmp_path: Path) -> None:
    result = _bookinfo(
        tmp_path, "staging", "virtual-service-reviews-80-20.yaml", canary={"reviews": "v2"}
    )
    (reviews,) = [s for s in result.services if s.service == "reviews"]
    assert reviews.versions == ("v1", "v3", "v2")
    assert "--canary" in reviews.order


def test_a_loss_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    result = _bookinfo(tmp_path, "staging", "virtual-service-reviews-80-20.yaml", drops=())
    assert not result.ok
    assert result.written == ()
    assert not list(tmp_path.iterdir())
    refused = [n for n in result.refused if "subset" in n.message]
    assert [str(n.location).rsplit("/", 1)[1] for n in refused] == [
        "destination-rule-all.yaml:39:5",
        "destination-rule-all.yaml:42:5",
        "destination-rule-all.yaml:45:5",
        "destination-rule-all.yaml:59:5",
    ]
    assert all("--drop 'DestinationRule/" in n.hint for n in refused)


def test_two_versions_of_one_object_are_refused(tmp_path: Path) -> None:
    result = import_manifests(
        tmp_path,
        [
            *APP,
            BOOKINFO / "virtual-service-reviews-80-20.yaml",
            BOOKINFO / "virtual-service-reviews-test-v2.yaml",
        ],
        "staging",
        drops=SUBSETS_WITHOUT_DEPLOYMENTS,
    )
    (twice,) = [n for n in result.refused if "again" in n.message]
    assert twice.location.file.endswith("virtual-service-reviews-test-v2.yaml")
    assert "one object" in twice.message
    assert result.written == ()


def test_a_fault_is_refused_at_its_line(tmp_path: Path) -> None:
    result = import_manifests(
        tmp_path,
        [*APP, BOOKINFO / "virtual-service-ratings-test-delay.yaml"],
        "staging",
        drops=SUBSETS_WITHOUT_DEPLOYMENTS,
    )
    (fault,) = [n for n in result.refused if "fault" in n.message]
    assert fault.rule == REFUSED
    assert fault.location.file.endswith("virtual-service-ratings-test-delay.yaml")
    assert "--drop 'VirtualService/ratings:spec.http[0].fault'" in fault.hint


def test_the_cli_reports_a_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--repo", str(tmp_path), "import", "--env", "staging", "--format", "json"]
    args += [str(p) for p in [*APP, BOOKINFO / "virtual-service-reviews-80-20.yaml"]]
    for drop in SUBSETS_WITHOUT_DEPLOYMENTS:
        args += ["--drop", drop]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["verified"] is True
    (reviews,) = [s for s in report["services"] if s["service"] == "reviews"]
    assert (reviews["stable"], reviews["canary"]) == ("v1", "v3")
    assert {n["kind"] for n in report["notes"]} <= {"normalized", "dropped"}
    again = tmp_path / "again"
    again.mkdir()
    text_args = ["--repo", str(again), "import", "--env", "staging"]
    text_args += [str(p) for p in [*APP, BOOKINFO / "virtual-service-reviews-80-20.yaml"]]
    assert main(text_args) == 1
    out = capsys.readouterr().out
    assert "4 refused" in out and "nothing written" in out


def test_ratings_v2_keeps_what_differs_beyond_its_image_as_a_patch(tmp_path: Path) -> None:
    result = import_manifests(
        tmp_path,
        [*APP[:2], BOOKINFO / "bookinfo-ratings-v2.yaml"],
        "dev",
        drops=("DestinationRule/ratings:spec.subsets", "DestinationRule/details:spec.subsets"),
    )
    assert result.ok and result.verified, [n.format() for n in result.refused + result.differences]
    patch = _release(tmp_path, "dev", "ratings")["versions"]["v2"]["patch"]
    pod = patch["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "bookinfo-ratings-v2"
    (container,) = pod["containers"]
    assert container["env"] == [{"name": "MONGO_DB_URL", "value": "mongodb://mongodb:27017/test"}]
    assert container["securityContext"] is None  # v1 runs as user 1000, v2 as the image says
    accounts = list(
        yaml.safe_load_all((tmp_path / "deploy/base/ratings/serviceaccount.yaml").read_text())
    )
    assert [a["metadata"]["name"] for a in accounts] == ["bookinfo-ratings", "bookinfo-ratings-v2"]


def test_tcp_echo_shifts_tcp_traffic_by_weight(tmp_path: Path) -> None:
    tcp_echo = DATA / "tcp-echo"
    result = import_manifests(
        tmp_path, [tcp_echo / "tcp-echo-services.yaml", tcp_echo / "tcp-echo-20-v2.yaml"], "dev"
    )
    assert result.ok and result.verified, [n.format() for n in result.refused + result.differences]
    release = _release(tmp_path, "dev", "tcp-echo")
    # The gateway's port 31400 is matched; the Service's port 9000 is where it sends.
    assert release["ports"] == [{"port": 31400, "protocol": "tcp", "destinationPort": 9000}]
    assert {v: s["weight"] for v, s in release["versions"].items()} == {"v1": 80, "v2": 20}
    (container,) = release["versions"]["v2"]["patch"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][-1] == "two"


def test_helloworld_spread_by_replicas_becomes_weights(tmp_path: Path) -> None:
    hello = DATA / "helloworld"
    result = import_manifests(
        tmp_path, [hello / "helloworld.yaml", hello / "helloworld-gateway.yaml"], "dev"
    )
    assert result.ok and result.verified, [n.format() for n in result.refused + result.differences]
    release = _release(tmp_path, "dev", "helloworld")
    assert release["requests"] == [{"uri": {"exact": "/hello"}}]
    assert {v: s["weight"] for v, s in release["versions"].items()} == {"v1": 50, "v2": 50}
    (spread,) = [n for n in result.notes if "by their replicas (v1 1, v2 1)" in n.message]
    assert spread.location.file.endswith("helloworld-gateway.yaml")


def test_a_drop_that_matches_nothing_writes_nothing(tmp_path: Path) -> None:
    drops = (*SUBSETS_WITHOUT_DEPLOYMENTS, "VirtualService/reviews:spec.http[9]")
    result = _bookinfo(tmp_path, "staging", "virtual-service-reviews-80-20.yaml", drops=drops)
    assert result.unused_drops == ("VirtualService/reviews:spec.http[9]",)
    assert not result.ok and result.written == ()
    assert not list(tmp_path.iterdir())


def test_an_environments_rollout_defaults_do_not_change_the_imported_deployments(
    tmp_path: Path,
) -> None:
    """The environment's rollout defaults would make every rendered Deployment roll out
    another way than the input's (here: the API server's 25%/25%): the release says its own."""
    env = tmp_path / "environments/dev/environment.yaml"
    env.parent.mkdir(parents=True)
    env.write_text(
        "namespace: dev\ndefaults:\n  rollout: {maxSurge: 1, maxUnavailable: 0}\n",
        encoding="utf-8",
    )
    hello = DATA / "helloworld"
    result = import_manifests(
        tmp_path, [hello / "helloworld.yaml", hello / "helloworld-gateway.yaml"], "dev"
    )
    assert result.ok and result.verified, [n.format() for n in result.refused + result.differences]
    release = _release(tmp_path, "dev", "helloworld")
    assert release["rollout"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
