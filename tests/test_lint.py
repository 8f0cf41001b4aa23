"""`meshcanary lint` end to end: the seed as acceptance, inputs, options, formats, kubeconform."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED, write

SEED = SHARED / "seed"
KUBECONFORM = SHARED / "conformance" / "kubeconform" / "fixtures"


def _findings(outcome) -> list[dict]:
    return json.loads(outcome.out)["findings"]


def _line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    return hits[occurrence - 1]


def test_seed_is_reported_with_lines_and_exit_1(cli) -> None:
    files = sorted(SEED.glob("*.yaml"))
    outcome = cli("lint", "--format", "json", *files)
    assert outcome.code == 1
    found = {(Path(f["file"]).name, f["line"], f["rule"]) for f in _findings(outcome)}
    v1 = SEED / "micro-api-canary-istio-v1.yaml"
    assert ("micro-api-canary-istio-v1.yaml", _line_of(v1, "meta data"), "resource-name") in found
    service = SEED / "micro-api.yaml"
    assert ("micro-api.yaml", _line_of(service, "targetPort: 9090"), "service-target-port") in found
    routes = SEED / "virtual-service-all.yaml"
    assert (
        "virtual-service-all.yaml",
        _line_of(routes, "gateways:"),
        "mesh-unweighted",
    ) in found
    for name in (
        "micro-api-canary-istio-v1.yaml",
        "micro-api-canary-istio-v2.yaml",
        "micro-api-canary.yaml",
        "micro-api.yaml",
    ):
        line = _line_of(SEED / name, "-SNAPSHOT")
        assert (name, line, "mutable-image-tag") in found, name


def test_as_published_seed_is_bad_input_at_the_first_non_breaking_space(cli) -> None:
    files = sorted((SEED / "as-published").glob("*.yaml"))
    outcome = cli("lint", *files)
    assert outcome.code == 2
    for path in files:
        text = path.read_text(encoding="utf-8")
        offset = text.index("\u00a0")
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        assert f"{path}:{line}:{column}: error: non-breaking space" in outcome.err
    assert "Traceback" not in outcome.err


def test_strict_reports_the_misspelt_metadata_as_an_unknown_field(cli) -> None:
    path = SEED / "micro-api-canary-istio-v1.yaml"
    outcome = cli("lint", "--strict", "--format", "json", path)
    schema = [f for f in _findings(outcome) if f["rule"] == "schema"]
    assert schema
    first = schema[0]
    assert first["message"] == 'unknown field "meta data" in the object'
    assert first["hint"] == 'did you mean "metadata"?'
    assert (first["line"], first["column"]) == (_line_of(path, "meta data"), 1)


def test_json_report_shape_is_stable(cli) -> None:
    outcome = cli("lint", "--format", "json", SEED / "micro-api.yaml")
    data = json.loads(outcome.out)
    assert set(data) == {"findings", "summary"}
    assert set(data["findings"][0]) == {
        "rule",
        "severity",
        "message",
        "hint",
        "file",
        "line",
        "column",
        "resource",
        "path",
    }
    assert set(data["findings"][0]["resource"]) == {"apiVersion", "kind", "name", "namespace"}
    assert data["findings"][0]["path"].startswith("/")


def test_kustomize_folder_is_built_first(cli) -> None:
    outcome = cli("lint", "--summary", ROOT / "deploy/overlays/prod")
    assert outcome.code == 0, outcome.out
    assert outcome.out.splitlines()[-1].startswith(
        "Summary: 12 resources found in 1 file - Valid: 12"
    )


def test_folder_is_searched_for_yaml_and_json(cli, tmp_path: Path) -> None:
    write(tmp_path / "a/one.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n")
    write(
        tmp_path / "a/b/two.json",
        '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two"}}',
    )
    write(tmp_path / "a/notes.txt", "not yaml: [")
    outcome = cli("lint", "--summary", tmp_path / "a")
    assert outcome.code == 0
    assert outcome.out.splitlines()[-1].startswith(
        "Summary: 2 resources found in 2 files - Valid: 2"
    )


def test_crd_validates_custom_resources(cli, tmp_path: Path) -> None:
    crd = KUBECONFORM / "registry" / "sagemaker.aws.amazon.com_trainingjobs.yaml"
    good = cli("lint", "--summary", "--crd", crd, KUBECONFORM / "test_crd.yaml")
    assert good.code == 0, good.out + good.err
    assert "Valid: 1" in good.out
    broken = (
        (KUBECONFORM / "test_crd.yaml")
        .read_text(encoding="utf-8")
        .replace("  roleArn: arn:", "  roleArn: 7\n  x: arn:")
    )
    bad = cli("lint", "--crd", crd, write(tmp_path / "cr.yaml", broken))
    assert bad.code == 1


def test_fail_on_warning(cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n"
        "  template:\n    metadata: {labels: {app: d}}\n    spec:\n      containers: [{name: d, image: 'nginx:latest'}]\n",
    )
    assert cli("lint", path).code == 0
    assert cli("lint", "--fail-on", "warning", path).code == 1


def test_suppression_with_reason_silences_only_that_rule(cli, tmp_path: Path) -> None:
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  annotations:\n"
        '    meshcanary.dev/ignore: "mutable-image-tag: dev cluster follows latest"\n'
        "spec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n"
        "    spec:\n      containers: [{name: d, image: 'nginx:latest'}]\n"
    )
    outcome = cli(
        "lint", "--format", "json", "--fail-on", "warning", write(tmp_path / "d.yaml", text)
    )
    assert outcome.code == 0, outcome.out
    no_reason = text.replace(": dev cluster follows latest", "")
    outcome = cli("lint", "--format", "json", write(tmp_path / "e.yaml", no_reason))
    assert [f["rule"] for f in _findings(outcome)] == ["suppression-reason"]


def test_other_formats_run(cli) -> None:
    for name in ("text", "json", "junit", "sarif", "github", "tap"):
        outcome = cli("lint", "--format", name, SEED / "micro-api.yaml")
        assert outcome.code == 1, name
        assert outcome.out, name
    sarif = json.loads(cli("lint", "--format", "sarif", SEED / "micro-api.yaml").out)
    rules = {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {"service-target-port", "weights-sum-100"} <= rules
    assert all(r["ruleId"] in rules for r in sarif["runs"][0]["results"])


# --- kubeconform -----------------------------------------------------------------------
# The kubeconform binary cannot be installed here (no network for its release download), so
# these tests put a stand-in script named `kubeconform` on PATH. It replays the JSON that
# kubeconform's `-output json -verbose -summary` prints, in its documented format, and records
# the arguments it was given. It is a fake of the binary only; the mapping code is the real one.

STAND_IN = """#!{python}
import json, sys
open({log!r}, "w").write(json.dumps(sys.argv[1:]))
print(json.dumps({{
  "resources": [
    {{"filename": {file!r}, "kind": "ReplicationController", "name": "bob", "version": "v1",
      "status": "statusInvalid", "msg": "problem validating schema",
      "validationErrors": [{{"path": "/spec/replicas", "msg": "expected integer or null, but got string"}}]}}
  ],
  "summary": {{"valid": 0, "invalid": 1, "errors": 0, "skipped": 0}}
}}, indent=2))
sys.exit(1)
"""


def test_kubeconform_output_is_mapped_to_located_findings(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write(tmp_path / "rc.yaml", (KUBECONFORM / "invalid.yaml").read_text(encoding="utf-8"))
    log = tmp_path / "args.json"
    script = write(
        tmp_path / "bin" / "kubeconform",
        STAND_IN.format(python=sys.executable, log=str(log), file=str(target)),
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    outcome = cli(
        "lint",
        "--validator",
        "kubeconform",
        "--format",
        "json",
        "--strict",
        "-k",
        "1.31.0",
        "--skip",
        "Secret",
        target,
    )
    assert outcome.code == 1, outcome.err
    (finding,) = [f for f in _findings(outcome) if f["rule"] == "schema"]
    assert finding["message"] == "expected integer or null, but got string"
    assert (finding["line"], finding["path"]) == (_line_of(target, "replicas:"), "/spec/replicas")
    args = json.loads(log.read_text(encoding="utf-8"))
    assert args[:4] == ["-output", "json", "-verbose", "-summary"]
    assert "-strict" in args and args[
        args.index("-kubernetes-version") : args.index("-kubernetes-version") + 2
    ] == ["-kubernetes-version", "1.31.0"]
    assert args[args.index("-skip") : args.index("-skip") + 2] == ["-skip", "Secret"]
    assert args[-1] == str(target)


def test_missing_kubeconform_binary_is_exit_2(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    outcome = cli("lint", "--validator", "kubeconform", SEED / "micro-api.yaml")
    assert outcome.code == 2
    assert "kubeconform not found on PATH" in outcome.err


def test_rules_listing_and_explanation(cli) -> None:
    listing = cli("rules")
    assert listing.code == 0
    assert "weights-sum-100" in listing.out
    explained = cli("rules", "weights-sum-100")
    assert "stricter on purpose" in explained.out
    unknown = cli("rules", "weights-sum")
    assert unknown.code == 2
    assert 'did you mean "weights-sum-100"?' in unknown.err


def test_rules_page_is_generated_from_the_registry(cli) -> None:
    outcome = cli("rules", "--markdown")
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == outcome.out, (
        "docs/rules.md is stale: run `meshcanary rules --markdown > docs/rules.md`"
    )


def test_yaml_11_value_indicator_reads_as_a_string(cli, tmp_path: Path) -> None:
    # YAML 1.1 types a lone `=` as "value"; Kubernetes reads it as the string "=".
    path = write(
        tmp_path / "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {sign: =}\n",
    )
    outcome = cli("lint", "--summary", path)
    assert outcome.code == 0, outcome.out + outcome.err
    assert "Valid: 1" in outcome.out


def test_policy_findings_and_compile_errors_through_the_cli(cli, tmp_path: Path) -> None:
    outcome = cli(
        "lint", "--policies", ROOT / "policies", "--format", "json", SEED / "micro-api.yaml"
    )
    assert outcome.code == 1
    rules = {f["rule"] for f in _findings(outcome)}
    assert {"require-resources/0", "require-team-label/0"} <= rules
    bad = write(
        tmp_path / "policies" / "broken.yaml",
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n"
        "metadata: {name: broken}\nspec:\n  matchConstraints:\n    resourceRules:\n"
        "      - {apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE]}\n"
        "  validations:\n    - expression: object.spec.replicas >\n",
    )
    broken = cli("lint", "--policies", bad.parent, SEED / "micro-api.yaml")
    assert broken.code == 2
    assert f"{bad.parent.name}/broken.yaml:9:" in broken.err or "broken.yaml:9:" in broken.err
    assert "Traceback" not in broken.err
