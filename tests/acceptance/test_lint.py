"""`meshcanary lint` end to end: the seed as acceptance, inputs, options, formats, kubeconform."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.support import ARTICLE, BOOKINFO, DATA, ROOT, write

KUBECONFORM = DATA / "kubeconform" / "fixtures"


def _findings(outcome) -> list[dict]:
    return json.loads(outcome.out)["findings"]


def _line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    return hits[occurrence - 1]


def test_seed_is_reported_with_lines_and_exit_1(cli) -> None:
    files = sorted(ARTICLE.glob("*.yaml"))
    outcome = cli("lint", "--format", "json", *files)
    assert outcome.code == 1
    found = {(Path(f["file"]).name, f["line"], f["rule"]) for f in _findings(outcome)}
    v1 = ARTICLE / "micro-api-canary-istio-v1.yaml"
    assert ("micro-api-canary-istio-v1.yaml", _line_of(v1, "meta data"), "resource-name") in found
    service = ARTICLE / "micro-api.yaml"
    assert ("micro-api.yaml", _line_of(service, "targetPort: 9090"), "service-target-port") in found
    routes = ARTICLE / "virtual-service-all.yaml"
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
        line = _line_of(ARTICLE / name, "-SNAPSHOT")
        assert (name, line, "mutable-image-tag") in found, name


def test_as_published_seed_is_bad_input_at_the_first_non_breaking_space(cli) -> None:
    files = sorted((ARTICLE / "as-published").glob("*.yaml"))
    outcome = cli("lint", *files)
    assert outcome.code == 2
    for path in files:
        text = path.read_text(encoding="utf-8")
        offset = text.index("\u00a0")
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        # Reports name a file inside a git work tree from its top: the folder and name suffice.
        assert f"as-published/{path.name}:{line}:{column}: error: non-breaking space" in outcome.err
    assert "Traceback" not in outcome.err


def test_strict_reports_the_misspelt_metadata_as_an_unknown_field(cli) -> None:
    path = ARTICLE / "micro-api-canary-istio-v1.yaml"
    outcome = cli("lint", "--strict", "--format", "json", path)
    schema = [f for f in _findings(outcome) if f["rule"] == "schema"]
    assert schema
    first = schema[0]
    assert first["message"] == 'unknown field "meta data" in the object'
    assert first["hint"] == 'did you mean "metadata"?'
    assert (first["line"], first["column"]) == (_line_of(path, "meta data"), 1)


def test_json_report_shape_is_stable(cli) -> None:
    outcome = cli("lint", "--format", "json", ARTICLE / "micro-api.yaml")
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
        outcome = cli("lint", "--format", name, ARTICLE / "micro-api.yaml")
        assert outcome.code == 1, name
        assert outcome.out, name
    sarif = json.loads(cli("lint", "--format", "sarif", ARTICLE / "micro-api.yaml").out)
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
    outcome = cli("lint", "--validator", "kubeconform", ARTICLE / "micro-api.yaml")
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
        "lint", "--policies", ROOT / "policies", "--format", "json", ARTICLE / "micro-api.yaml"
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
    broken = cli("lint", "--policies", bad.parent, ARTICLE / "micro-api.yaml")
    assert broken.code == 2
    assert f"{bad.parent.name}/broken.yaml:9:" in broken.err or "broken.yaml:9:" in broken.err
    assert "Traceback" not in broken.err


# --- one bad file among good ones (issue 12) ------------------------------------------------

# A Service that selects on `version`: an error of the rules in a resource the schema accepts.
PINNED_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: NAME}
spec:
  selector: {app: NAME, version: v1}
  ports: [{name: http, port: 80}]
"""


def _refuse_reading(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`path` without read permission; as root, who reads it anyway, refused as the kernel would."""
    path.chmod(0)
    if not os.access(path, os.R_OK):
        return
    read_bytes = Path.read_bytes

    def refused(self: Path) -> bytes:
        if self.absolute() == path.absolute():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refused)


def _bad_input(kind: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Make `path` bad input of `kind`: where its problem is (`line:col`), and what it says."""
    if kind == "no-permission":
        path.write_text(PINNED_SERVICE.replace("NAME", "hidden"), encoding="utf-8")
        _refuse_reading(path, monkeypatch)
        return "1:1", "cannot read: Permission denied"
    if kind == "fifo":
        os.mkfifo(path)
        return "1:1", "is a FIFO, not a file"
    if kind == "invalid-utf-8":
        path.write_bytes(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n")
        return "3:21", "not UTF-8: byte 0xe9 cannot be decoded"
    path.symlink_to("nowhere.yaml")
    return "1:1", "is a symbolic link to nothing"


BAD_INPUTS = ["no-permission", "fifo", "invalid-utf-8", "dangling-link"]


@pytest.fixture
def among_good_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """a.yaml and c.yaml with findings, and b.yaml made bad: where b's problem is, and what."""
    monkeypatch.chdir(tmp_path)
    for name in ("a", "c"):
        write(tmp_path / f"{name}.yaml", PINNED_SERVICE.replace("NAME", f"web-{name}"))

    def make(kind: str) -> tuple[str, str]:
        return _bad_input(kind, tmp_path / "b.yaml", monkeypatch)

    return make


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_a_bad_file_leaves_the_report_of_the_others(among_good_files, kind: str) -> None:
    from meshcanary.commands.lint import lint
    from meshcanary.lint import LintOptions

    where, message = among_good_files(kind)
    report = lint(["a.yaml", "b.yaml", "c.yaml"], LintOptions())
    # Sorted by file, the bad file's problem between the others' findings.
    assert [(p.location.file, p.rule) for p in report.problems] == [
        ("a.yaml", "service-selects-all-versions"),
        ("b.yaml", "input"),
        ("c.yaml", "service-selects-all-versions"),
    ]
    problem = report.problems[1]
    assert f"{problem.location.line}:{problem.location.column}" == where
    assert problem.message.startswith(message)
    assert [r.resource.name for r in report.results] == ["web-a", "web-c"]


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_a_bad_file_is_exit_2_after_the_findings_of_the_others(
    cli, among_good_files, kind: str
) -> None:
    where, message = among_good_files(kind)
    outcome = cli("lint", "a.yaml", "b.yaml", "c.yaml")
    assert outcome.code == 2  # bad input wins over findings
    shown = [line for line in outcome.out.splitlines() if not line.startswith("  hint:")]
    assert [line.split(":")[0] for line in shown] == ["a.yaml", "b.yaml", "c.yaml"]
    assert shown[1].startswith(f"b.yaml:{where}: error: {message}"), shown[1]
    assert shown[1].endswith("[input]")
    # stderr says why the exit code is 2, as for any bad input.
    errors = [line for line in outcome.err.splitlines() if not line.startswith("  hint:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"b.yaml:{where}: error: {message}")
    assert "Traceback" not in outcome.err


def test_a_bad_file_in_every_format(cli, among_good_files) -> None:
    among_good_files("invalid-utf-8")
    found = _findings(cli("lint", "--format", "json", "a.yaml", "b.yaml", "c.yaml"))
    assert [(f["file"], f["rule"]) for f in found] == [
        ("a.yaml", "service-selects-all-versions"),
        ("b.yaml", "input"),
        ("c.yaml", "service-selects-all-versions"),
    ]
    from meshcanary.report import FORMATS

    for name in FORMATS:
        outcome = cli("lint", "--format", name, "--summary", "a.yaml", "b.yaml", "c.yaml")
        assert outcome.code == 2, name
        assert all(f"{file}.yaml" in outcome.out for file in "abc"), name


# --- JUnit and TAP say what --fail-on says ----------------------------------------------------


def test_junit_counts_the_rules_errors_as_failures(cli, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    import xmlschema

    path = write(tmp_path / "svc.yaml", PINNED_SERVICE.replace("NAME", "web"))
    outcome = cli("lint", "--format", "junit", path)
    assert outcome.code == 1
    xmlschema.XMLSchema(str(KUBECONFORM / "junit.xsd")).validate(outcome.out)
    root = ET.fromstring(outcome.out)  # noqa: S314  (our own output, validated above)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "1", "0")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("type") == "service-selects-all-versions"


MUTABLE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: 'nginx:latest'}]
"""


def test_tap_fails_the_points_fail_on_fails(cli, tmp_path: Path) -> None:
    path = write(tmp_path / "d.yaml", MUTABLE)
    passed = cli("lint", "--format", "tap", path)
    assert passed.code == 0
    assert passed.out.splitlines()[1] == f"ok 1 - {path} (apps/v1/Deployment//web)"
    failed = cli("lint", "--format", "tap", "--fail-on", "warning", path)
    assert failed.code == 1
    assert failed.out.splitlines()[1].startswith(f"not ok 1 - {path} (apps/v1/Deployment//web): 9:")
    junit = cli("lint", "--format", "junit", "--fail-on", "warning", path)
    assert 'failures="1"' in junit.out.splitlines()[1]


def test_tap_summary_leaves_the_plan_last(cli, tmp_path: Path) -> None:
    path = write(tmp_path / "d.yaml", MUTABLE)
    lines = cli("lint", "--format", "tap", "--summary", path).out.splitlines()
    assert lines[0] == "TAP version 13"
    assert lines[-1] == "1..1"
    assert lines[2:-1] == [
        "# 1 warning",
        "# Summary: 1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
    ]


# --- Bookinfo: an ordinary application is no finding ------------------------------------------

# The sample as deployed for a canary; the folder's other files are alternatives to these.
BOOKINFO_DEPLOYED = [
    BOOKINFO / name
    for name in (
        "bookinfo.yaml",
        "destination-rule-all.yaml",
        "bookinfo-gateway.yaml",
        "virtual-service-reviews-80-20.yaml",
    )
]
# The rules issue 12 found crying wolf on ordinary repositories.
QUIET = {
    "duplicate-resources",
    "mutable-image-tag",
    "port-name-protocol",
    "service-selects-all-versions",
}


def test_bookinfo_has_no_false_positive(cli) -> None:
    outcome = cli("lint", "--format", "json", *BOOKINFO_DEPLOYED)
    assert "Traceback" not in outcome.err
    assert outcome.err == ""
    found = _findings(outcome)
    assert [f for f in found if f["rule"] in QUIET] == []
    summary = json.loads(outcome.out)["summary"]
    assert (summary["resources"], summary["files"], summary["invalid"]) == (21, 4, 0)
    # What is left is the sample's own choice: subsets of versions whose Deployments live in
    # other files of it (details v2, ratings v2, v2-mysql, v2-mysql-vm).
    assert {f["rule"] for f in found} <= {"subset-selects-one-deployment"}
