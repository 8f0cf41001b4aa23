"""Report formats: exact output for the line formats, contracts for the structured ones."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from meshcanary import __version__
from meshcanary.problem import Location, Problem, ResourceRef, Severity
from meshcanary.report import (
    FORMATS,
    Report,
    Reporter,
    ResourceResult,
    RuleInfo,
    Status,
    reporter,
    summary_line,
)
from meshcanary.report.junit import JunitReporter
from meshcanary.report.tap import TapReporter
from tests.support import DATA

JUNIT_XSD = DATA / "kubeconform" / "fixtures" / "junit.xsd"

VS = ResourceRef("networking.istio.io/v1", "VirtualService", "web", "prod")
DEPLOY = ResourceRef("apps/v1", "Deployment", "web-v2", "prod")
SERVICE = ResourceRef("v1", "Service", "web")
SECRET = ResourceRef("v1", "Secret", "token", "prod")

WEIGHTS = Problem(
    Location("deploy/a.yaml", 12, 7),
    "weights sum to 90, not 100",
    hint="make the weights of the route add up to 100",
    rule="weights-sum",
    resource=VS,
    path="/spec/http/0/route",
)
LATEST = Problem(
    Location("deploy/a.yaml", 30, 16),
    'image tag "latest" is mutable',
    rule="mutable-image-tag",
    severity=Severity.WARNING,
    resource=DEPLOY,
    path="/spec/template/spec/containers/0/image",
)
NO_REPLICAS = Problem(
    Location("deploy/a.yaml", 31, 5),
    "weight 0 and 0 replicas",
    rule="idle-version",
    severity=Severity.INFO,
    resource=DEPLOY,
    path="/spec/replicas",
)
SYNTAX = Problem(Location("deploy/b.yaml", 3, 1), "mapping values are not allowed here")

RULES = (
    RuleInfo(
        "weights-sum", Severity.ERROR, "Route weights sum to 100", "Weights read as percents."
    ),
    RuleInfo("mutable-image-tag", Severity.WARNING, "Images use immutable tags"),
)

# One valid resource and nothing wrong: kubeconform's valid.yaml.
CLEAN = Report(
    problems=(),
    results=(
        ResourceResult(
            "fixtures/valid.yaml", ResourceRef("v1", "ReplicationController", "bob"), Status.VALID
        ),
    ),
    files=1,
)
# Every severity, every status, and a file that does not parse (a finding with no resource).
MIXED = Report(
    problems=(WEIGHTS, LATEST, NO_REPLICAS, SYNTAX),
    results=(
        ResourceResult("deploy/a.yaml", VS, Status.INVALID, (WEIGHTS,)),
        ResourceResult("deploy/a.yaml", DEPLOY, Status.INVALID, (LATEST, NO_REPLICAS)),
        ResourceResult("deploy/a.yaml", SERVICE, Status.VALID),
        ResourceResult("deploy/a.yaml", SECRET, Status.SKIPPED),
    ),
    files=2,
    rules=RULES,
)
# Only a YAML syntax error: no resource at all.
BROKEN = Report(problems=(SYNTAX,), files=1)
# Standard input; a resource with no schema could not be checked.
TRAINING_JOB = ResourceRef("sagemaker.aws.amazon.com/v1", "TrainingJob", "job")
MISSING_SCHEMA = Problem(
    Location("stdin", 1, 1),
    "could not find schema for TrainingJob",
    rule="schema",
    resource=TRAINING_JOB,
)
STDIN = Report(
    problems=(MISSING_SCHEMA,),
    results=(
        ResourceResult("stdin", TRAINING_JOB, Status.ERROR, (MISSING_SCHEMA,)),
        ResourceResult("stdin", SERVICE, Status.VALID),
    ),
    files=0,
    stdin=True,
)
EMPTY = Report(problems=(), files=1)
# What `lint` reports most: resources their schemas accept, with the rules' findings on them
# (an error, a warning), a resource with none, and a file that could not be read.
UNREADABLE = Problem(
    Location("deploy/c.yaml"), "not UTF-8: byte 0xff cannot be decoded", "save the file as UTF-8"
)
RULED = Report(
    problems=(WEIGHTS, LATEST, UNREADABLE),
    results=(
        ResourceResult("deploy/a.yaml", VS, Status.VALID, (WEIGHTS,)),
        ResourceResult("deploy/a.yaml", DEPLOY, Status.VALID, (LATEST,)),
        ResourceResult("deploy/a.yaml", SERVICE, Status.VALID),
    ),
    files=1,
    rules=RULES,
)

REPORTS = {
    "clean": CLEAN,
    "mixed": MIXED,
    "broken": BROKEN,
    "stdin": STDIN,
    "empty": EMPTY,
    "ruled": RULED,
}
SEVERITIES = list(Severity)


def render(name: str, report: Report, *, summary: bool = False, color: bool = False) -> str:
    return reporter(name).render(report, summary=summary, color=color)


def verdicts(name: str, report: Report, fail_on: Severity, *, summary: bool = False) -> str:
    """The formats that say pass or fail (JUnit, TAP), with `--fail-on`."""
    formats = {"junit": JunitReporter, "tap": TapReporter}
    return formats[name]().render(report, summary=summary, color=False, fail_on=fail_on)


# --- the registry -------------------------------------------------------------------------


def test_formats_are_the_documented_ones() -> None:
    assert list(FORMATS) == ["text", "json", "junit", "sarif", "github", "tap", "markdown"]
    for name in FORMATS:
        instance: Reporter = reporter(name)
        assert callable(instance.render)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("case", list(REPORTS))
@pytest.mark.parametrize("summary", [False, True])
def test_every_format_is_deterministic(fmt: str, case: str, summary: bool) -> None:
    first = render(fmt, REPORTS[case], summary=summary)
    again = reporter(fmt).render(REPORTS[case], summary=summary, color=False)
    assert first == again
    assert first == "" or first.endswith("\n")
    assert "\x1b" not in first


def test_importing_the_reports_does_not_import_rich() -> None:
    code = "import sys, meshcanary.report; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- text -----------------------------------------------------------------------------------


def test_text_without_findings() -> None:
    assert render("text", CLEAN) == ""
    assert render("text", CLEAN, summary=True) == (
        "Summary: 1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0\n"
    )


def test_text_with_findings() -> None:
    assert render("text", MIXED) == (
        "deploy/a.yaml:12:7: error: weights sum to 90, not 100 [weights-sum]\n"
        "  hint: make the weights of the route add up to 100\n"
        'deploy/a.yaml:30:16: warning: image tag "latest" is mutable [mutable-image-tag]\n'
        "deploy/a.yaml:31:5: info: weight 0 and 0 replicas [idle-version]\n"
        "deploy/b.yaml:3:1: error: mapping values are not allowed here [input]\n"
    )


def test_text_summary_counts_findings_then_resources() -> None:
    assert render("text", MIXED, summary=True).splitlines()[-2:] == [
        "2 errors, 1 warning, 1 info",
        "Summary: 4 resources found in 2 files - Valid: 1, Invalid: 2, Errors: 0, Skipped: 1",
    ]


def test_text_resource_less_finding() -> None:
    assert render("text", BROKEN, summary=True) == (
        "deploy/b.yaml:3:1: error: mapping values are not allowed here [input]\n"
        "1 error\n"
        "Summary: 0 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 0, Skipped: 0\n"
    )


def test_text_stdin() -> None:
    assert render("text", STDIN, summary=True) == (
        "stdin:1:1: error: could not find schema for TrainingJob [schema]\n"
        "1 error\n"
        "Summary: 2 resources found parsing stdin - Valid: 1, Invalid: 0, Errors: 1, Skipped: 0\n"
    )


def test_text_color_marks_only_the_severity() -> None:
    assert render("text", MIXED, color=True).splitlines()[:4] == [
        "deploy/a.yaml:12:7: \x1b[1;31merror\x1b[0m: weights sum to 90, not 100 [weights-sum]",
        "  hint: make the weights of the route add up to 100",
        'deploy/a.yaml:30:16: \x1b[1;33mwarning\x1b[0m: image tag "latest" is mutable [mutable-image-tag]',
        "deploy/a.yaml:31:5: \x1b[1;36minfo\x1b[0m: weight 0 and 0 replicas [idle-version]",
    ]


def results(*statuses: Status) -> tuple[ResourceResult, ...]:
    return tuple(ResourceResult("f.yaml", SERVICE, status) for status in statuses)


@pytest.mark.parametrize(
    ("report", "line"),
    [
        # The kubeconform acceptance cases 3, 4, 15 and 35/51, word for word.
        (
            Report((), results(Status.VALID), files=1),
            "Summary: 1 resource found in 1 file - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
        ),
        (
            Report((), results(*[Status.VALID] * 7), files=2),
            "Summary: 7 resources found in 2 files - Valid: 7, Invalid: 0, Errors: 0, Skipped: 0",
        ),
        (
            Report((), files=1),
            "Summary: 0 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 0, Skipped: 0",
        ),
        (
            Report((), results(Status.VALID), stdin=True),
            "Summary: 1 resource found parsing stdin - Valid: 1, Invalid: 0, Errors: 0, Skipped: 0",
        ),
        (
            Report((), results(*[Status.VALID] * 6), stdin=True),
            "Summary: 6 resources found parsing stdin - Valid: 6, Invalid: 0, Errors: 0, Skipped: 0",
        ),
        (
            Report((), results(Status.VALID, Status.INVALID), files=1),
            "Summary: 2 resources found in 1 file - Valid: 1, Invalid: 1, Errors: 0, Skipped: 0",
        ),
        (
            Report((), results(Status.ERROR, Status.SKIPPED, Status.SKIPPED), files=3),
            "Summary: 3 resources found in 3 files - Valid: 0, Invalid: 0, Errors: 1, Skipped: 2",
        ),
    ],
)
def test_summary_line_is_kubeconforms(report: Report, line: str) -> None:
    assert summary_line(report) == line
    assert render("text", report, summary=True) == line + "\n"


def test_text_severity_counts_pluralise() -> None:
    def problem(severity: Severity) -> Problem:
        return Problem(Location("f.yaml"), "m", severity=severity)

    report = Report(tuple(problem(s) for s in [Severity.WARNING] * 2 + [Severity.INFO] * 3))
    assert render("text", report, summary=True).splitlines()[-2] == "2 warnings, 3 info"


# --- github ---------------------------------------------------------------------------------


def test_github_annotations() -> None:
    assert render("github", MIXED) == (
        "::error file=deploy/a.yaml,line=12,col=7,title=weights-sum::weights sum to 90, not 100"
        "%0Ahint: make the weights of the route add up to 100\n"
        "::warning file=deploy/a.yaml,line=30,col=16,title=mutable-image-tag::"
        'image tag "latest" is mutable\n'
        "::notice file=deploy/a.yaml,line=31,col=5,title=idle-version::weight 0 and 0 replicas\n"
        "::error file=deploy/b.yaml,line=3,col=1,title=input::mapping values are not allowed here\n"
    )


def test_github_summary_follows_as_text() -> None:
    assert render("github", CLEAN) == ""
    assert render("github", BROKEN, summary=True) == (
        "::error file=deploy/b.yaml,line=3,col=1,title=input::mapping values are not allowed here\n"
        "1 error\n"
        "Summary: 0 resource found in 1 file - Valid: 0, Invalid: 0, Errors: 0, Skipped: 0\n"
    )
    assert render("github", STDIN, summary=True).splitlines()[-1] == (
        "Summary: 2 resources found parsing stdin - Valid: 1, Invalid: 0, Errors: 1, Skipped: 0"
    )


def test_github_escapes_like_the_runner_unescapes() -> None:
    # Line breaks in what the input says are shown as escapes (printable), so the only `%0A`
    # is the one before the hint; then `%`, CR, LF, and `:` `,` in properties, as the toolkit.
    problem = Problem(
        Location("dir,x/a:b%.yaml", 2, 3),
        "50% off,\r\nsee: here %0A",
        hint="a\nb",
        rule="policy:one,two",
        severity=Severity.WARNING,
    )
    assert render("github", Report((problem,))) == (
        "::warning file=dir%2Cx/a%3Ab%25.yaml,line=2,col=3,title=policy%3Aone%2Ctwo::"
        "50%25 off,\\r\\nsee: here %250A%0Ahint: a\\nb\n"
    )


# --- tap ------------------------------------------------------------------------------------


def test_tap_is_kubeconforms_for_a_valid_file() -> None:
    # Acceptance case 49: `kubeconform -output tap fixtures/valid.yaml`.
    assert render("tap", CLEAN) == (
        "TAP version 13\nok 1 - fixtures/valid.yaml (v1/ReplicationController//bob)\n1..1\n"
    )


def test_tap_every_status() -> None:
    assert render("tap", MIXED) == (
        "TAP version 13\n"
        "not ok 1 - deploy/a.yaml (networking.istio.io/v1/VirtualService/prod/web): "
        "12:7: weights sum to 90, not 100\n"
        # A warning and an info: below --fail-on error, so the point passes.
        "ok 2 - deploy/a.yaml (apps/v1/Deployment/prod/web-v2)\n"
        "ok 3 - deploy/a.yaml (v1/Service//web)\n"
        "ok 4 - deploy/a.yaml (v1/Secret/prod/token) # skip\n"
        "not ok 5 - deploy/b.yaml: 3:1: mapping values are not allowed here\n"
        "1..5\n"
    )


@pytest.mark.parametrize(
    ("fail_on", "point"),
    [
        (Severity.ERROR, "ok 2 - deploy/a.yaml (apps/v1/Deployment/prod/web-v2)"),
        (
            Severity.WARNING,
            "not ok 2 - deploy/a.yaml (apps/v1/Deployment/prod/web-v2): "
            '30:16: image tag "latest" is mutable',
        ),
        (
            Severity.INFO,
            "not ok 2 - deploy/a.yaml (apps/v1/Deployment/prod/web-v2): "
            '30:16: image tag "latest" is mutable; 31:5: weight 0 and 0 replicas',
        ),
    ],
)
def test_tap_fails_a_point_on_the_findings_at_or_above_fail_on(
    fail_on: Severity, point: str
) -> None:
    lines = verdicts("tap", MIXED, fail_on).splitlines()
    assert lines[2] == point
    assert lines[1].startswith("not ok 1 - ")  # an error fails whatever --fail-on says
    assert lines[5].startswith("not ok 5 - ")  # and so does a file that does not parse


def test_tap_rule_findings_on_valid_resources_fail_the_point() -> None:
    # The schema accepts both; the rules do not. kubeconform knows only the schema.
    assert render("tap", RULED) == (
        "TAP version 13\n"
        "not ok 1 - deploy/a.yaml (networking.istio.io/v1/VirtualService/prod/web): "
        "12:7: weights sum to 90, not 100\n"
        "ok 2 - deploy/a.yaml (apps/v1/Deployment/prod/web-v2)\n"
        "ok 3 - deploy/a.yaml (v1/Service//web)\n"
        "not ok 4 - deploy/c.yaml: 1:1: not UTF-8: byte 0xff cannot be decoded\n"
        "1..4\n"
    )
    warned = verdicts("tap", RULED, Severity.WARNING).splitlines()
    assert warned[2] == (
        'not ok 2 - deploy/a.yaml (apps/v1/Deployment/prod/web-v2): 30:16: image tag "latest" is mutable'
    )


def test_tap_summary_is_a_comment() -> None:
    assert render("tap", STDIN, summary=True) == (
        "TAP version 13\n"
        "not ok 1 - stdin (sagemaker.aws.amazon.com/v1/TrainingJob//job): "
        "1:1: could not find schema for TrainingJob\n"
        "ok 2 - stdin (v1/Service//web)\n"
        "# 1 error\n"
        "# Summary: 2 resources found parsing stdin - Valid: 1, Invalid: 0, Errors: 1, Skipped: 0\n"
        "1..2\n"
    )


# TAP 13 (testanything.org/tap-version-13-specification.html): the version line first, one plan
# `1..N`, either before every test point or as the very last line, test points numbered from 1,
# and comment lines starting with `#`. Nothing else is written here.
_PLAN = re.compile(r"1\.\.(0|[1-9][0-9]*)")
_POINT = re.compile(r"(ok|not ok) ([1-9][0-9]*)(?: - ([^\n]*))?")


def _tap_grammar(text: str) -> tuple[int, list[bool]]:
    """The plan's count and each point's outcome, or an AssertionError where `text` breaks TAP."""
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert lines[0] == "TAP version 13"
    plans = [i for i, line in enumerate(lines) if _PLAN.fullmatch(line)]
    assert len(plans) == 1, lines
    points = [i for i, line in enumerate(lines) if _POINT.fullmatch(line)]
    plan = plans[0]
    assert plan == len(lines) - 1 or all(plan < i for i in points), f"plan in the middle: {lines}"
    for i, line in enumerate(lines[1:], start=1):
        assert i == plan or i in points or line.startswith("#"), f"not TAP: {line!r}"
    outcomes = []
    for number, i in enumerate(points, start=1):
        match = _POINT.fullmatch(lines[i])
        assert match is not None
        assert int(match.group(2)) == number
        outcomes.append(match.group(1) == "ok")
    planned = _PLAN.fullmatch(lines[plan])
    assert planned is not None
    assert int(planned.group(1)) == len(points)
    return len(points), outcomes


@pytest.mark.parametrize("case", list(REPORTS))
@pytest.mark.parametrize("summary", [False, True])
@pytest.mark.parametrize("fail_on", SEVERITIES)
def test_tap_is_well_formed(case: str, summary: bool, fail_on: Severity) -> None:
    _tap_grammar(verdicts("tap", REPORTS[case], fail_on, summary=summary))


def test_the_tap_grammar_rejects_a_plan_before_trailing_comments() -> None:
    # What `--summary` wrote before: the plan, then comments after it.
    with pytest.raises(AssertionError, match="plan in the middle"):
        _tap_grammar("TAP version 13\nok 1 - a\n1..1\n# Summary\n")
    with pytest.raises(AssertionError):
        _tap_grammar("TAP version 13\nok 1 - a\nok 3 - b\n1..2\n")
    assert _tap_grammar("TAP version 13\n1..2\nok 1 - a\nnot ok 2 - b\n# c\n") == (
        2,
        [True, False],
    )


@pytest.mark.parametrize("case", list(REPORTS))
@pytest.mark.parametrize("summary", [False, True])
def test_tap_reads_back_with_a_tap_parser(tmp_path: Path, case: str, summary: bool) -> None:
    loader = pytest.importorskip("tap.loader", reason="the tap.py parser is not installed")
    text = render("tap", REPORTS[case], summary=summary)
    count, outcomes = _tap_grammar(text)
    path = tmp_path / "report.tap"
    path.write_text(text, encoding="utf-8")
    result = unittest.TestResult()
    loader.Loader().load_suite_from_file(str(path)).run(result)
    # tap.py turns a broken rule (a misplaced plan, a wrong count) into one more failed test.
    assert result.testsRun == count
    assert len(result.failures) + len(result.errors) == outcomes.count(False)
    assert len(result.skipped) == text.count(" # skip\n")


def test_tap_without_resources() -> None:
    assert render("tap", EMPTY) == "TAP version 13\n1..0\n"
    assert render("tap", BROKEN) == (
        "TAP version 13\nnot ok 1 - deploy/b.yaml: 3:1: mapping values are not allowed here\n1..1\n"
    )


def test_tap_keeps_one_line_per_point_and_no_stray_directive() -> None:
    unnamed = ResourceRef("", "", "")
    problem = Problem(Location("x.yaml", 1, 1), "missing 'kind' key\n# skip this")
    report = Report((problem,), (ResourceResult("x.yaml", unnamed, Status.ERROR, (problem,)),))
    assert render("tap", report) == (
        "TAP version 13\nnot ok 1 - x.yaml: 1:1: missing 'kind' key\\n\\# skip this\n1..1\n"
    )


# --- json -----------------------------------------------------------------------------------

FINDING_KEYS = {
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
SUMMARY_KEYS = {
    "resources",
    "files",
    "valid",
    "invalid",
    "errors",
    "skipped",
    "errorFindings",
    "warningFindings",
    "infoFindings",
}


@pytest.mark.parametrize("case", list(REPORTS))
def test_json_has_exactly_the_documented_keys(case: str) -> None:
    report = REPORTS[case]
    text = render("json", report)
    assert text.endswith("}\n")
    assert text.startswith('{\n  "findings": ')
    document = json.loads(text)
    assert set(document) == {"findings", "summary"}
    assert set(document["summary"]) == SUMMARY_KEYS
    assert len(document["findings"]) == len(report.problems)
    for finding in document["findings"]:
        assert set(finding) == FINDING_KEYS
        if finding["resource"] is not None:
            assert set(finding["resource"]) == {"apiVersion", "kind", "name", "namespace"}
    assert render("json", report, summary=True) == text


def test_json_values() -> None:
    document = json.loads(render("json", MIXED))
    assert document["findings"][0] == {
        "rule": "weights-sum",
        "severity": "error",
        "message": "weights sum to 90, not 100",
        "hint": "make the weights of the route add up to 100",
        "file": "deploy/a.yaml",
        "line": 12,
        "column": 7,
        "resource": {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "name": "web",
            "namespace": "prod",
        },
        "path": "/spec/http/0/route",
    }
    assert document["findings"][3]["resource"] is None
    assert [f["severity"] for f in document["findings"]] == ["error", "warning", "info", "error"]
    assert document["summary"] == {
        "resources": 4,
        "files": 2,
        "valid": 1,
        "invalid": 2,
        "errors": 0,
        "skipped": 1,
        "errorFindings": 2,
        "warningFindings": 1,
        "infoFindings": 1,
    }


# --- junit ----------------------------------------------------------------------------------


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314  (our own output, not untrusted input)


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_XSD))


@pytest.mark.parametrize("case", list(REPORTS))
def test_junit_validates_against_kubeconforms_xsd(
    junit_schema: xmlschema.XMLSchema, case: str
) -> None:
    xml = render("junit", REPORTS[case], summary=True)
    junit_schema.validate(xml)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="meshcanary"')


def test_the_validator_rejects_broken_junit(junit_schema: xmlschema.XMLSchema) -> None:
    good = render("junit", CLEAN)
    assert junit_schema.is_valid(good)
    broken = [
        good.replace('<testcase name="bob"', '<testcase owner="x" name="bob"'),  # unknown attribute
        good.replace(' name="fixtures/valid.yaml"', ""),  # a suite's name is required
        # kubeconform's own `<skipped message="">`: the XSD allows no attributes there.
        good.replace('@v1" />', '@v1"><skipped message="" /></testcase>'),
        "<testsuites><testcase name='a' /></testsuites>",  # a case outside a suite
    ]
    for xml in broken:
        assert not junit_schema.is_valid(xml), xml
    with pytest.raises(xmlschema.XMLSchemaException):
        junit_schema.validate(good.replace("</testsuite>", "</testsuit>"))  # not even XML


def test_junit_clean_matches_kubeconform_shape() -> None:
    assert render("junit", CLEAN) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<testsuites name="meshcanary" tests="1" failures="0" disabled="0" errors="0">\n'
        '  <testsuite name="fixtures/valid.yaml" id="1" tests="1" failures="0" errors="0" '
        'disabled="0" skipped="0">\n'
        '    <testcase name="bob" classname="ReplicationController@v1" />\n'
        "  </testsuite>\n"
        "</testsuites>\n"
    )


def test_junit_structure() -> None:
    root = parse(render("junit", MIXED))
    assert root.attrib == {
        "name": "meshcanary",
        "tests": "5",
        "failures": "1",
        "disabled": "1",
        "errors": "1",
    }
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["deploy/a.yaml", "deploy/b.yaml"]
    assert [s.get("id") for s in suites] == ["1", "2"]
    a, b = suites
    assert (a.get("tests"), a.get("failures"), a.get("errors"), a.get("skipped")) == (
        "4",
        "1",
        "0",
        "1",
    )
    cases = a.findall("testcase")
    assert [(c.get("name"), c.get("classname")) for c in cases] == [
        ("prod/web", "VirtualService@networking.istio.io/v1"),
        ("prod/web-v2", "Deployment@apps/v1"),
        ("web", "Service@v1"),
        ("prod/token", "Secret@v1"),
    ]
    assert cases[0].findtext("failure") == (
        "deploy/a.yaml:12:7: error: weights sum to 90, not 100 [weights-sum]\n"
        "  hint: make the weights of the route add up to 100"
    )
    # A warning and an info, below --fail-on error: the case passes and says what it found.
    assert [child.tag for child in cases[1]] == ["system-out"]
    assert cases[1].findtext("system-out") == (
        'deploy/a.yaml:30:16: warning: image tag "latest" is mutable [mutable-image-tag]\n'
        "deploy/a.yaml:31:5: info: weight 0 and 0 replicas [idle-version]"
    )
    assert len(cases[2]) == 0
    skipped = cases[3].find("skipped")
    assert skipped is not None
    assert skipped.attrib == {}
    (loose,) = b.findall("testcase")
    assert loose.get("name") == "deploy/b.yaml:3:1"
    error = loose.find("error")
    assert error is not None
    assert error.get("message") == "deploy/b.yaml:3:1: mapping values are not allowed here"


@pytest.mark.parametrize(
    ("fail_on", "failing", "passing"),
    [
        (Severity.ERROR, [], ["mutable-image-tag", "idle-version"]),
        (Severity.WARNING, ["mutable-image-tag"], ["idle-version"]),
        (Severity.INFO, ["mutable-image-tag", "idle-version"], []),
    ],
)
def test_junit_failures_are_the_findings_at_or_above_fail_on(
    junit_schema: xmlschema.XMLSchema,
    fail_on: Severity,
    failing: list[str],
    passing: list[str],
) -> None:
    xml = verdicts("junit", MIXED, fail_on)
    junit_schema.validate(xml)
    root = parse(xml)
    deployment = root.findall("testsuite/testcase")[1]
    assert [f.get("type") for f in deployment.findall("failure")] == failing
    out = deployment.findtext("system-out") or ""
    assert [rule for rule in ("mutable-image-tag", "idle-version") if rule in out] == passing
    expected = 1 + (1 if failing else 0)  # the VirtualService's error fails whatever --fail-on
    assert root.get("failures") == str(expected)
    assert root.findall("testsuite")[0].get("failures") == str(expected)


def test_junit_rule_findings_on_valid_resources_are_failures(
    junit_schema: xmlschema.XMLSchema,
) -> None:
    # The schema accepts both resources; the rules do not. Counted like schema failures.
    xml = render("junit", RULED)
    junit_schema.validate(xml)
    root = parse(xml)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "1")
    a, c = root.findall("testsuite")
    assert (a.get("tests"), a.get("failures"), a.get("errors")) == ("3", "1", "0")
    web, canary, service = a.findall("testcase")
    failure = web.find("failure")
    assert failure is not None
    assert (failure.get("type"), failure.get("message")) == (
        "weights-sum",
        "deploy/a.yaml:12:7: weights sum to 90, not 100",
    )
    assert [child.tag for child in canary] == ["system-out"]
    assert len(service) == 0
    # A file that could not be read is an error, not a failure: nothing in it was checked.
    assert (c.get("name"), c.get("tests"), c.get("failures"), c.get("errors")) == (
        "deploy/c.yaml",
        "1",
        "0",
        "1",
    )
    warned = parse(verdicts("junit", RULED, Severity.WARNING))
    assert warned.get("failures") == "2"
    assert [f.get("type") for f in warned.findall("testsuite/testcase/failure")] == [
        "weights-sum",
        "mutable-image-tag",
    ]


def test_junit_a_resource_that_could_not_be_checked_keeps_its_rule_findings(
    junit_schema: xmlschema.XMLSchema,
) -> None:
    weights = Problem(
        Location("stdin", 9, 3), "weights sum to 90", rule="weights-sum", resource=TRAINING_JOB
    )
    latest = Problem(
        Location("stdin", 12, 3),
        "latest",
        rule="mutable-image-tag",
        severity=Severity.WARNING,
        resource=TRAINING_JOB,
    )
    result = ResourceResult("stdin", TRAINING_JOB, Status.ERROR, (MISSING_SCHEMA, weights, latest))
    xml = render("junit", Report((MISSING_SCHEMA, weights, latest), (result,), stdin=True))
    junit_schema.validate(xml)  # errors, then failures, then output: the XSD's order
    case = parse(xml).find("testsuite/testcase")
    assert case is not None
    assert [(child.tag, child.get("type")) for child in case] == [
        ("error", "schema"),
        ("failure", "weights-sum"),
        ("system-out", None),
    ]


def test_junit_error_status_and_empty_report() -> None:
    root = parse(render("junit", STDIN))
    assert (root.get("tests"), root.get("errors"), root.get("failures")) == ("2", "1", "0")
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("classname") == "TrainingJob@sagemaker.aws.amazon.com/v1"
    assert case.find("error") is not None
    assert render("junit", EMPTY) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<testsuites name="meshcanary" tests="0" failures="0" disabled="0" errors="0" />\n'
    )


def test_junit_escapes_markup_and_characters_xml_cannot_carry(
    junit_schema: xmlschema.XMLSchema,
) -> None:
    nasty = 'a <b> & "c" \x07 \x00 ]]> \ud800'
    problem = Problem(Location("f&<.yaml", 1, 2), nasty, hint=nasty, resource=SERVICE)
    report = Report((problem,), (ResourceResult("f&<.yaml", SERVICE, Status.INVALID, (problem,)),))
    xml = render("junit", report)
    xml.encode("utf-8")  # no lone surrogate left
    junit_schema.validate(xml)
    failure = parse(xml).find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == 'f&<.yaml:1:2: a <b> & "c" \\x07 \\x00 ]]> \\ud800'


# --- sarif ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(REPORTS))
def test_sarif_has_what_code_scanning_needs(case: str) -> None:
    report = REPORTS[case]
    text = render("sarif", report)
    assert text.startswith('{\n  "$schema": ')
    assert text == render("sarif", report, summary=True, color=True)
    sarif = json.loads(text)
    assert sarif["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "meshcanary"
    assert driver["informationUri"].startswith("https://")
    assert driver["version"] == __version__
    rules = driver["rules"]
    ids = [rule["id"] for rule in rules]
    assert len(ids) == len(set(ids))
    for rule in rules:
        assert rule["name"]
        assert rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
        assert rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
    assert len(run["results"]) == len(report.problems)
    for result, problem in zip(run["results"], report.problems, strict=True):
        assert result["ruleId"] == problem.rule
        assert result["ruleId"] in ids
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in {"error", "warning", "note"}
        assert result["message"]["text"].startswith(problem.message)
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == problem.location.file
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert physical["region"]["startLine"] >= 1
        assert physical["region"]["startColumn"] >= 1


def test_sarif_rules_and_results() -> None:
    run = json.loads(render("sarif", MIXED))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    # The report's rules first, then the ones only findings name, by ID.
    assert [r["id"] for r in rules] == ["weights-sum", "mutable-image-tag", "idle-version", "input"]
    assert rules[0] == {
        "id": "weights-sum",
        "name": "WeightsSum",
        "shortDescription": {"text": "Route weights sum to 100"},
        "fullDescription": {"text": "Weights read as percents."},
        "help": {"text": "Weights read as percents."},
        "defaultConfiguration": {"level": "error"},
    }
    assert [r["defaultConfiguration"]["level"] for r in rules] == [
        "error",
        "warning",
        "note",
        "error",
    ]
    results = run["results"]
    assert [r["level"] for r in results] == ["error", "warning", "note", "error"]
    assert [r["ruleIndex"] for r in results] == [0, 1, 2, 3]
    assert results[0]["message"]["text"] == (
        "weights sum to 90, not 100\nhint: make the weights of the route add up to 100"
    )
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 12,
        "startColumn": 7,
    }


def test_sarif_locations_and_fingerprints() -> None:
    def problem(file: str, line: int) -> Problem:
        return Problem(Location(file, line, 1), "same", rule="r")

    report = Report(
        (
            problem("./dir\\sub/a b.yaml", 0),
            problem("/abs/c.yaml", 2),
            problem("x.yaml", 3),
            problem("x.yaml", 9),
        )
    )
    results = json.loads(render("sarif", report))["runs"][0]["results"]
    artifacts = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in results]
    assert artifacts[0] == {"uri": "dir/sub/a%20b.yaml", "uriBaseId": "%SRCROOT%"}
    assert artifacts[1] == {"uri": "file:///abs/c.yaml"}
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    prints = [r["partialFingerprints"]["meshcanary/v1"] for r in results]
    assert len(set(prints)) == 4
    # The same finding moved to another line keeps its fingerprint.
    moved = json.loads(render("sarif", Report((problem("x.yaml", 40),))))["runs"][0]["results"]
    assert moved[0]["partialFingerprints"] == results[2]["partialFingerprints"]


# --- GitHub: at most ten annotations of a kind, and the job summary ------------------------


def _many(count: int, severity: Severity) -> Report:
    problems = tuple(
        Problem(Location("deploy/a.yaml", line, 1), f"finding {line}", rule="r", severity=severity)
        for line in range(1, count + 1)
    )
    return Report(problems)


def test_github_says_in_the_tenth_annotation_how_many_more_there_are() -> None:
    """GitHub drops annotations past ten errors per step without a word."""
    lines = render("github", _many(13, Severity.ERROR)).splitlines()
    annotations = [line for line in lines if line.startswith("::error ")]
    assert len(annotations) == 10
    assert annotations[-1].endswith(
        "::finding 10 (and 3 more errors, not shown as annotations: see the job summary or the log)"
    )
    # The rest are in the log, as plain lines.
    assert lines[10:] == [
        f"deploy/a.yaml:{line}:1: error: finding {line} [r]" for line in (11, 12, 13)
    ]


def test_github_annotates_ten_of_each_kind() -> None:
    report = Report(_many(10, Severity.ERROR).problems + _many(10, Severity.WARNING).problems)
    lines = render("github", report).splitlines()
    assert sum(line.startswith("::error ") for line in lines) == 10
    assert sum(line.startswith("::warning ") for line in lines) == 10
    assert not any("more" in line for line in lines)


def test_github_writes_every_finding_to_the_job_summary(
    example_repo: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(page))
    release = example_repo / "environments/prod/micro-api.yaml"
    release.write_text(
        release.read_text()
        .replace("weight: 70}", "weight: 60}")
        .replace("weight: 30}", "weight: 40}")
    )
    outcome = cli("--repo", example_repo, "check", "--no-cache", "--format", "github")
    assert outcome.code == 1
    text = page.read_text(encoding="utf-8")
    assert text.startswith("### meshcanary: 1 error\n\n| | where | finding | rule |\n")
    assert "| error | `deploy/overlays/prod/micro-api/virtualservice.yaml:" in text


def test_markdown_keeps_hostile_text_inert() -> None:
    from markdown_it import MarkdownIt

    hostile = Problem(
        Location("a|b`.yaml", 1, 1), "![x](http://evil) <img src=x> [y](z) | `code`", rule="r"
    )
    page = render("markdown", Report((hostile,)))
    tokens = MarkdownIt("commonmark").enable("table").parse(page)
    inline = [t for t in tokens if t.type == "inline"]
    kinds = {child.type for token in inline for child in token.children or []}
    assert kinds <= {"text", "code_inline", "html_inline", "softbreak"}, kinds
    html = [
        child.content
        for token in inline
        for child in token.children or []
        if child.type == "html_inline"
    ]
    assert html == [], html  # no HTML: the only tag we write is <br> before a hint
