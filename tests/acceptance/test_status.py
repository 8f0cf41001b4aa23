"""`meshcanary status`: the traffic table, as text and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, on_a_terminal


def test_status_json_lists_every_version_with_weight_and_traffic(cli) -> None:
    outcome = cli("--repo", ROOT, "status", "--format", "json")
    assert outcome.code == 0
    data = json.loads(outcome.out)
    assert sorted(data["environments"]) == ["ambient", "dev", "prod", "staging"]
    prod = {(r["service"], r["version"]): r for r in data["environments"]["prod"]}
    assert prod["micro-api", "v2"] == {
        "service": "micro-api",
        "method": "istio",
        "routing": "istio",
        "version": "v2",
        "image": "registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.3",
        "replicas": 3,
        "weight": 30,
        "share": 30.0,
        "role": "canary",
        "pinned": [],
        "mirrored": None,
        "plan": {"steps": [10, 25, 50, 75, 100], "step": None},
    }
    dev = {(r["service"], r["version"]): r for r in data["environments"]["dev"]}
    assert dev["checkout", "v1"]["routing"] is None  # method: replicas, no routes
    assert {r["routing"] for r in data["environments"]["ambient"]} == {"gateway-api"}
    assert (dev["checkout", "v1"]["replicas"], dev["checkout", "v1"]["share"]) == (8, 80.0)
    assert (dev["checkout", "v2"]["replicas"], dev["checkout", "v2"]["share"]) == (2, 20.0)


def test_status_text_has_a_table_per_environment(cli) -> None:
    outcome = cli("--repo", ROOT, "status", "staging")
    assert outcome.code == 0
    assert "environment staging" in outcome.out
    assert "environment prod" not in outcome.out
    assert "2.6.0-rc.1" in outcome.out


def test_status_says_which_services_the_gateway_api_routes(cli) -> None:
    outcome = cli("--repo", ROOT, "status", "ambient", "prod")
    assert outcome.code == 0
    notes = [line for line in outcome.out.splitlines() if line.startswith("routed with")]
    assert notes == ["routed with the Gateway API: checkout, micro-api"]  # not prod's


def test_status_of_unknown_environment_is_exit_2(cli) -> None:
    outcome = cli("--repo", ROOT, "status", "prd")
    assert outcome.code == 2
    assert outcome.err.splitlines() == [
        'environments/prd:1:1: error: unknown environment "prd"',
        '  hint: did you mean "prod"?',
    ]


def _prod(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["service"], r["version"]): r for r in data["environments"]["prod"]}


def test_status_json_says_roles_pins_mirrors_steps_and_freshness(cli) -> None:
    data = json.loads(cli("--repo", ROOT, "status", "--format", "json").out)
    prod = _prod(data)
    stable, canary = prod["checkout", "v1"], prod["checkout", "v2"]
    assert (stable["role"], stable["pinned"], stable["mirrored"], stable["plan"]) == (
        "stable",
        [],
        None,
        None,
    )
    assert canary["role"] == "canary"
    assert canary["pinned"] == [
        {
            "rule": "testers",
            "conditions": [
                {"on": "header", "name": "x-canary", "match": "exact", "value": "always"}
            ],
        },
        {
            "rule": "testers-cookie",
            "conditions": [{"on": "cookie", "name": "canary", "match": "exact", "value": "always"}],
        },
    ]
    assert canary["mirrored"] == 20.0
    # At 0%, before the first step of checkout's own plan.
    assert canary["plan"] == {"steps": [5, 20, 40, 60, 80, 100], "step": 0}
    # 30% is no step of the environment's plan.
    assert prod["micro-api", "v2"]["plan"] == {"steps": [10, 25, 50, 75, 100], "step": None}
    staging = {(r["service"], r["version"]): r for r in data["environments"]["staging"]}
    assert [staging["checkout", v]["role"] for v in ("v1", "v2", "v3")] == [
        "stable",
        None,
        "canary",
    ]
    assert staging["checkout", "v3"]["plan"] == {"steps": [10, 25, 50, 75, 100], "step": 1}
    dev = {(r["service"], r["version"]): r for r in data["environments"]["dev"]}
    assert dev["checkout", "v2"]["plan"]["step"] == 2  # replica splitting follows a plan too
    assert data["render"] == {
        env: {"stale": False, "services": [], "files": [], "removed": False}
        for env in ("ambient", "dev", "prod", "staging")
    }


PROD = """\
environment prod: render is fresh
SERVICE    VERSION  ROLE    WEIGHT  TRAFFIC  PODS  IMAGE
checkout   v1       stable     100     100%     4  registry.example/shop/checkout:2.4.1
checkout   v2       canary       0       0%     1  registry.example/shop/checkout:2.5.0
micro-api  v1       stable      70      70%     3  registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.1
micro-api  v2       canary      30      30%     3  registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.3
checkout: v2 is before step 1 of 6 (0%; steps 5, 20, 40, 60, 80, 100)
checkout: pinned to v2: requests with header x-canary=always (match testers)
checkout: pinned to v2: requests with cookie canary=always (match testers-cookie)
checkout: mirrored to v2: a copy of 20% of requests (its answers are dropped)
micro-api: v2 is off plan (30%; steps 10, 25, 50, 75, 100)
"""


def test_status_piped_is_plain_aligned_text_whatever_the_width(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a terminal: no box, no colour, every row on one line, the same at any COLUMNS."""
    for columns in ("60", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        outcome = cli("--repo", ROOT, "status", "prod")
        assert (outcome.code, outcome.out) == (0, PROD)


def test_status_names_the_stale_services(example_repo: Path, cli) -> None:
    release = example_repo / "environments/prod/micro-api.yaml"
    release.write_text(
        release.read_text(encoding="utf-8")
        .replace("weight: 70}", "weight: 75}")
        .replace("weight: 30}", "weight: 25}"),
        encoding="utf-8",
    )
    outcome = cli("--repo", example_repo, "status")
    assert outcome.code == 0
    assert (
        "environment prod: render is stale for micro-api; run `meshcanary render`"
        in outcome.out.splitlines()
    )
    assert "micro-api: v2 is step 2 of 5 (25%)" in outcome.out  # what the release file says
    assert "environment staging: render is fresh" in outcome.out
    data = json.loads(cli("--repo", example_repo, "status", "-o", "json").out)
    assert data["render"]["prod"] == {
        "stale": True,
        "services": ["micro-api"],
        "files": [],
        "removed": False,
    }
    assert not data["render"]["staging"]["stale"]


def _at_a_terminal(columns: int, *args: str | Path) -> str:
    """stdout of the real program on a pseudo-terminal COLUMNS wide, escapes removed."""
    code, _, text = on_a_terminal(*args, terminal="stdout", env={"COLUMNS": str(columns)})
    assert code == 0, text
    text = text.replace("\r\n", "\n")
    assert "\x1b[" in text  # coloured: it is a terminal
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_status_at_a_narrow_terminal_fits_its_width() -> None:
    shown = _at_a_terminal(60, "--repo", ROOT, "status", "prod")
    assert max(len(line) for line in shown.splitlines()) <= 60, shown
    lines = shown.splitlines()
    # The image goes under its row, shortened from the left: the tag stays.
    row = lines.index(next(line for line in lines if line.startswith("micro-api  v2")))
    assert "canary" in lines[row]
    assert lines[row + 1].startswith("    image …") and lines[row + 1].endswith("micro-api:1.3")
    assert "pinned to v2: requests with cookie canary=always" in " ".join(shown.split())


def test_status_at_a_wide_terminal_keeps_each_row_on_one_line() -> None:
    shown = _at_a_terminal(200, "--repo", ROOT, "status", "prod")
    assert shown == PROD


def test_a_cookie_reads_back_and_a_hand_written_cookie_regex_stays_one() -> None:
    from meshcanary.commands.status import Step, _condition
    from meshcanary.release.load import _headers
    from meshcanary.release.model import HeaderMatch

    (written,) = _headers({"cookies": {"user.group": "a|b"}})
    assert _condition(written).describe() == "cookie user.group=a|b"
    regex = HeaderMatch("cookie", "regex", "^(.*;\\s*)?beta=(1|2)(\\s*;.*)?$")
    assert _condition(regex).describe() == "header cookie regex " + regex.value
    assert [Step((10, 25), w).describe() for w in (0, 25, 30)] == [
        "before step 1 of 2 (0%; steps 10, 25)",
        "step 2 of 2 (25%)",
        "off plan (30%; steps 10, 25)",
    ]
    assert Step((), 30).describe() == "no plan (30%; no canary.steps)"


def test_status_shows_the_weights_when_a_base_does_not_render(example_repo: Path, cli) -> None:
    (example_repo / "deploy/base/micro-api/deployment.yaml").unlink()
    outcome = cli("--repo", example_repo, "status", "prod")
    assert outcome.code == 0
    assert outcome.out.startswith(
        "environment prod: render fails (the errors are on stderr)\nSERVICE"
    )
    assert "micro-api  v2       canary      30" in outcome.out
    assert 'resources entry "deployment.yaml" names no file or folder' in outcome.err
    assert json.loads(cli("--repo", example_repo, "status", "-o", "json").out)["render"] is None


def test_a_pin_on_the_uri_method_and_query_is_said(example_repo: Path, cli) -> None:
    release = example_repo / "environments/prod/checkout.yaml"
    text = release.read_text(encoding="utf-8")
    pin = (
        "match:\n  - version: v2\n    name: beta\n    uri: {prefix: /beta}\n"
        "    method: {exact: POST}\n    queryParams: {debug: {exact: '1'}}\n"
    )
    release.write_text(text.replace("match:\n", pin, 1), encoding="utf-8")
    data = json.loads(cli("--repo", example_repo, "status", "--format", "json").out)
    (beta,) = [p for p in _prod(data)["checkout", "v2"]["pinned"] if p["rule"] == "beta"]
    assert beta["conditions"] == [
        {"on": "request", "name": "uri", "match": "prefix", "value": "/beta"},
        {"on": "request", "name": "method", "match": "exact", "value": "POST"},
        {"on": "query", "name": "debug", "match": "exact", "value": "1"},
    ]
    shown = cli("--repo", example_repo, "status", "prod").out
    assert "pinned to v2: requests with uri prefix /beta and method=POST and query debug=1" in shown
