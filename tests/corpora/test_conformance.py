"""kubeconform's own acceptance cases, run against `meshcanary lint`.

The cases and their expected exit codes and summary lines come from
tests/data/kubeconform/EXPECTED.md (kubeconform v0.7.0). Each case here names its
number there. Cases that need the network, kubeconform's download cache, or a terminal are
listed in SKIPPED with the reason. Where our exit-code contract (2 = bad input or usage)
differs from kubeconform's (1 for everything), the case is in DEVIATIONS and checked with ours.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema

from tests.support import DATA

HERE = DATA / "kubeconform"
S = "Summary: "

# (case, arguments, stdin fixture or None, exit code, summary line or None)
CASES = [
    (
        "3",
        ["--summary", "fixtures/valid.yaml"],
        None,
        0,
        "1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "4",
        ["--summary", "fixtures/folder"],
        None,
        0,
        "7 resources found in 2 files - Valid: 7, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    ("5", ["fixtures/int_or_string.yaml"], None, 0, None),
    ("7", ["fixtures/generate_name.yaml"], None, 0, None),
    ("8", ["fixtures/quantity.yaml"], None, 0, None),
    ("9", ["fixtures/null_string.yaml"], None, 0, None),
    (
        "10",
        ["--summary", "fixtures/null_string.yaml"],
        None,
        0,
        "1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "11",
        ["--summary", "fixtures/multi_valid.yaml"],
        None,
        0,
        "6 resources found in 1 file - Valid: 6, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    ("12", ["fixtures/multi_invalid.yaml"], None, 1, None),
    ("13", ["fixtures/invalid.yaml"], None, 1, None),
    (
        "15",
        ["--summary", "fixtures/blank.yaml"],
        None,
        0,
        "0 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "16",
        ["--summary", "fixtures/comment.yaml"],
        None,
        0,
        "0 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "17",
        ["--summary", "fixtures/missing_kind.yaml"],
        None,
        1,
        "1 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 1, Skipped: 0",
    ),
    (
        "18",
        ["--summary", "fixtures/missing_apiversion.yaml"],
        None,
        1,
        "1 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 1, Skipped: 0",
    ),
    (
        "19",
        ["--summary", "fixtures/missing_kind_value.yaml"],
        None,
        1,
        "1 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 1, Skipped: 0",
    ),
    ("20", ["fixtures/test_crd.yaml"], None, 1, None),
    ("21", ["--ignore-missing-schemas", "fixtures/test_crd.yaml"], None, 0, None),
    (
        "22",
        ["--summary", "fixtures/extra_property.yaml"],
        None,
        0,
        "1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    ("26", ["--schema-location", "default", "fixtures/valid.yaml"], None, 0, None),
    ("29", ["--schema-location", "http://foo", "fixtures/valid.yaml"], None, 1, None),
    ("30", ["--schema-location", "foo", "fixtures/valid.yaml"], None, 1, None),
    (
        "35",
        ["--summary"],
        "fixtures/valid.yaml",
        0,
        "1 resource found parsing stdin - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "36",
        ["--summary", "-"],
        "fixtures/valid.yaml",
        0,
        "1 resource found parsing stdin - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    ("37", ["-"], "fixtures/invalid.yaml", 1, None),
    (
        "40",
        ["--summary", "--skip", "ReplicationController", "fixtures/valid.yaml"],
        None,
        0,
        "1 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 0, Skipped: 1",
    ),
    (
        "41",
        ["--summary", "--skip", "v1/ReplicationController", "fixtures/valid.yaml"],
        None,
        0,
        "1 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 0, Skipped: 1",
    ),
    (
        "42",
        ["--summary", "--skip", "v2/ReplicationController", "fixtures/valid.yaml"],
        None,
        0,
        "1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    ("43", ["--reject", "ReplicationController", "fixtures/valid.yaml"], None, 1, None),
    (
        "44",
        [
            "--summary",
            "--ignore-filename-pattern",
            "crd",
            "--ignore-filename-pattern",
            ".*invalid.*",
            "fixtures/multi_invalid.yaml",
            "fixtures/list_invalid.yaml",
            "fixtures/quantity.yaml",
            "fixtures/crd_schema.yaml",
        ],
        None,
        0,
        "1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "50",
        ["--summary", "fixtures/list_valid.yaml"],
        None,
        0,
        "6 resources found in 1 file - Valid: 6, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "51",
        ["--summary"],
        "fixtures/list_valid.yaml",
        0,
        "6 resources found parsing stdin - Valid: 6, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "52",
        ["--summary", "fixtures/list_invalid.yaml"],
        None,
        1,
        "2 resources found in 1 file - Valid: 1, Invalid: 1, Errors: 0, Skipped: 0",
    ),
    (
        "53",
        ["--summary", "-"],
        "fixtures/list_invalid.yaml",
        1,
        "2 resources found parsing stdin - Valid: 1, Invalid: 1, Errors: 0, Skipped: 0",
    ),
    (
        "54",
        ["--summary", "fixtures/list_empty_valid.yaml"],
        None,
        0,
        "0 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "55",
        ["--summary", "fixtures/multi_with_list.yaml"],
        None,
        0,
        "2 resources found in 1 file - Valid: 2, Invalid: 0, Errors: 0, Skipped: 0",
    ),
    (
        "61",
        [
            "--schema-location",
            "./fixtures/grafanaalertrulegroup_v1beta1.json",
            "fixtures/grafana-alert-rule-group-sample.yaml",
        ],
        None,
        0,
        None,
    ),
    # The schemas are bundled, so what kubeconform needs its cache or the network for just works.
    ("N1", ["fixtures/valid.yaml"], None, 0, None),
    ("N2", ["fixtures/valid.yaml"], None, 0, None),
    (
        "N3",
        [
            "--schema-location",
            "./fixtures/registry/{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "fixtures/test_crd.yaml",
        ],
        None,
        0,
        None,
    ),
    (
        "N4",
        [
            "--schema-location",
            "fixtures/{{ .ResourceKind }}.json",
            "--schema-location",
            "./fixtures/registry/{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "fixtures/test_crd.yaml",
        ],
        None,
        0,
        None,
    ),
    (
        "N5",
        ["--summary", "fixtures/valid.yaml"],
        None,
        0,
        "1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ),
]

_UNBUNDLED = "Kubernetes 1.20 schemas are not bundled: exit 2 naming the bundled versions"

# kubeconform exits 1 on usage errors and unreadable input; meshcanary's contract says 2.
DEVIATIONS = [
    ("2", ["-xyz"], 2, "unknown flag: kubeconform 1, meshcanary 2 (usage)"),
    ("14", ["fixtures/not-here"], 2, "missing file: kubeconform 1, meshcanary 2 (bad input)"),
    (
        "31",
        ["--schema-location", "foo {{ .Foo }}", "fixtures/valid.yaml"],
        2,
        "bad template: usage",
    ),
    ("32", ["-k", "1.25", "fixtures/valid.yaml"], 2, "version not x.y.z: usage"),
    # kubeconform downloads any version's schemas; meshcanary is offline and refuses a version
    # outside the ones it bundles, naming them, rather than quietly validating against another.
    ("6", ["-k", "1.20.0", "--summary", "fixtures/valid.json"], 2, _UNBUNDLED),
    ("23", ["--strict", "-k", "1.20.0", "fixtures/extra_property.yaml"], 2, _UNBUNDLED),
    ("24", ["--strict", "-k", "1.20.0", "fixtures/duplicate_property.yaml"], 2, _UNBUNDLED),
    ("25", ["-k", "1.20.0", "fixtures/duplicate_property.yaml"], 2, _UNBUNDLED),
]

SKIPPED = {
    "1": "-h prints kubeconform's usage text; `meshcanary lint --help` is tested elsewhere",
    "27": "downloads schemas from GitHub",
    "28": "downloads schemas from GitHub",
    "33": "downloads OpenShift schemas",
    "34": "downloads OpenShift schemas",
    "38": "needs a terminal on stdin (covered by test_no_input_on_a_terminal_is_usage)",
    "39": "kubeconform's 'no stdin data' relies on a terminal check too",
    "45": "-cache: schemas are bundled, there is no download cache",
    "46": "-cache with a download",
    "47": "-cache folder option does not exist here",
    "48": "-cache with a download",
    "56": "HTTPS proxy: network",
    "57": "valid_large.yaml is not in the snapshot",
    "58": "valid_large.yaml is not in the snapshot",
    "60": "CRDs catalog download",
}


@pytest.fixture(scope="module")
def kubeconform_top(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures at the top of a git work tree of their own, where kubeconform's acceptance
    tests run: reports name files from the work tree's top, so `fixtures/valid.yaml` reads
    as kubeconform's does, not as a path inside this repository."""
    top = tmp_path_factory.mktemp("kubeconform")
    shutil.copytree(HERE / "fixtures", top / "fixtures")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    subprocess.run(["git", "init", "-q", str(top)], check=True, env=env)
    return top


@pytest.fixture(autouse=True)
def _in_kubeconform_top(kubeconform_top: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(kubeconform_top)


def _run(cli, monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str | None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO((HERE / stdin).read_text(encoding="utf-8")))
    return cli("lint", *args)


@pytest.mark.parametrize(
    ("case", "args", "stdin", "code", "summary"), CASES, ids=[c[0] for c in CASES]
)
def test_kubeconform_case(
    cli, monkeypatch, case: str, args: list[str], stdin: str | None, code: int, summary: str | None
) -> None:
    outcome = _run(cli, monkeypatch, args, stdin)
    assert outcome.code == code, outcome.out + outcome.err
    assert "Traceback" not in outcome.err
    if summary is not None:
        assert outcome.out.splitlines()[-1] == S + summary


@pytest.mark.parametrize(
    ("case", "args", "code", "why"), DEVIATIONS, ids=[d[0] for d in DEVIATIONS]
)
def test_kubeconform_case_with_our_exit_codes(
    cli, monkeypatch, case: str, args: list[str], code: int, why: str
) -> None:
    outcome = _run(cli, monkeypatch, args, None)
    assert outcome.code == code, outcome.out + outcome.err
    assert "Traceback" not in outcome.err


def test_every_case_is_run_deviated_or_skipped_with_a_reason() -> None:
    table = (HERE / "EXPECTED.md").read_text(encoding="utf-8")
    listed = {
        line.split("|")[1].strip()
        for line in table.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip() not in ("#", "---")
    }
    covered = {c[0] for c in CASES} | {d[0] for d in DEVIATIONS} | set(SKIPPED) | {"49", "59"}
    assert listed - covered == set()
    assert all(SKIPPED.values())


def test_missing_kind_message(cli, monkeypatch) -> None:
    outcome = _run(cli, monkeypatch, ["fixtures/missing_kind.yaml"], None)
    assert "missing 'kind' key" in outcome.out


def test_missing_apiversion_message(cli, monkeypatch) -> None:
    outcome = _run(cli, monkeypatch, ["fixtures/missing_apiversion.yaml"], None)
    assert "missing 'apiVersion' key" in outcome.out


def test_reject_message(cli, monkeypatch) -> None:
    outcome = _run(
        cli, monkeypatch, ["--reject", "ReplicationController", "fixtures/valid.yaml"], None
    )
    assert "prohibited resource kind ReplicationController" in outcome.out


def test_case_49_tap(cli, monkeypatch) -> None:
    outcome = _run(cli, monkeypatch, ["--format", "tap", "--no-rules", "fixtures/valid.yaml"], None)
    assert outcome.code == 0
    assert (
        outcome.out
        == "TAP version 13\nok 1 - fixtures/valid.yaml (v1/ReplicationController//bob)\n1..1\n"
    )


def test_case_59_junit_validates_against_kubeconforms_xsd(cli, monkeypatch) -> None:
    outcome = _run(
        cli, monkeypatch, ["--format", "junit", "--summary", "fixtures/valid.yaml"], None
    )
    assert outcome.code == 0
    schema = xmlschema.XMLSchema(str(HERE / "fixtures" / "junit.xsd"))
    schema.validate(outcome.out)


def test_invalid_resource_is_located_where_kubeconform_only_gives_a_path(cli, monkeypatch) -> None:
    outcome = _run(cli, monkeypatch, ["--format", "json", "fixtures/list_invalid.yaml"], None)
    import json

    finding = next(f for f in json.loads(outcome.out)["findings"] if f["rule"] == "schema")
    text = (HERE / "fixtures/list_invalid.yaml").read_text(encoding="utf-8").splitlines()
    assert finding["path"] == "/spec/replicas"
    assert text[finding["line"] - 1][finding["column"] - 1 :].startswith('asd"')
    assert finding["resource"] == {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "name": "bob",
        "namespace": "",
    }


def test_no_input_on_a_terminal_is_usage(cli, monkeypatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(""))
    outcome = cli("lint")
    assert outcome.code == 2
    assert "no input" in outcome.err
