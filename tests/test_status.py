"""`meshcanary status`: the traffic table, as text and JSON."""

from __future__ import annotations

import json

from tests.conftest import ROOT


def test_status_json_lists_every_version_with_weight_and_traffic(cli) -> None:
    outcome = cli("--repo", ROOT, "status", "--format", "json")
    assert outcome.code == 0
    data = json.loads(outcome.out)
    assert sorted(data["environments"]) == ["dev", "prod", "staging"]
    prod = {(r["service"], r["version"]): r for r in data["environments"]["prod"]}
    assert prod["micro-api", "v2"] == {
        "service": "micro-api",
        "method": "istio",
        "version": "v2",
        "image": "registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.3",
        "replicas": 3,
        "weight": 30,
        "share": 30.0,
    }
    dev = {(r["service"], r["version"]): r for r in data["environments"]["dev"]}
    assert (dev["checkout", "v1"]["replicas"], dev["checkout", "v1"]["share"]) == (8, 80.0)
    assert (dev["checkout", "v2"]["replicas"], dev["checkout", "v2"]["share"]) == (2, 20.0)


def test_status_text_has_a_table_per_environment(cli) -> None:
    outcome = cli("--repo", ROOT, "status", "staging")
    assert outcome.code == 0
    assert "environment staging" in outcome.out
    assert "environment prod" not in outcome.out
    assert "2.6.0-rc.1" in outcome.out


def test_status_of_unknown_environment_is_exit_2(cli) -> None:
    outcome = cli("--repo", ROOT, "status", "prd")
    assert outcome.code == 2
    assert outcome.err.splitlines() == [
        'environments/prd:1:1: error: unknown environment "prd"',
        '  hint: did you mean "prod"?',
    ]
