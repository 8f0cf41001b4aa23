"""Text from the user's files never forges output.

A pull request's author writes every file `check` and `lint` read, file names included, and
CI prints what meshcanary says about them. Nothing quoted from them may start a line of its own
(GitHub Actions runs `::error ...::` and `::stop-commands::` lines, and `##[error]` anywhere in
a line), drive the terminal (ESC, OSC 8 links, BEL, VT, C1 controls) or reorder what a reader
sees (U+202E): not in any report format, not on stderr, not from the console script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from meshcanary.errors import InputError
from meshcanary.problem import Location, Problem, printable, printable_json, printable_lines
from meshcanary.report import FORMATS
from tests.support import DATA

JUNIT_XSD = DATA / "kubeconform" / "fixtures" / "junit.xsd"

FORGED = "\n::error file=x,line=1::forged"
OSC_LINK = "\x1b]8;;http://evil\x07"
CLEAR = "\x1b[2J"
RLO = "\u202e"
# A file name that would end a line and forge an annotation, clear the screen and flip text.
FILE_NAME = f"evil{FORGED}{CLEAR}{RLO}.yaml"
SHOWN_FILE = "evil\\n::error file=x,line=1::forged\\x1b[2J\\u202e.yaml"

# Two Deployments. The first has a hostile name and namespace and, under --strict, a hostile
# unknown key (line 14, column 11); the second a hostile name and an image with tag `latest`
# whose name hides controls and a legacy `##[warning]` command (line 27, column 18).
MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "web\\n::error file=x,line=1::forged\\e]8;;http://evil\\a"
  namespace: "ns\\e[2J\\u202e"
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: "nginx:1.0"
          "bad\\nkey\\v##[error]legacy\\n::stop-commands::tok": 1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "api\\n::stop-commands::tok"
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: "registry.example/api\\u202e\\e[2J##[warning]x:latest"
"""
WEB = "web\n::error file=x,line=1::forged\x1b]8;;http://evil\x07"
KEY = "bad\nkey\x0b##[error]legacy\n::stop-commands::tok"
IMAGE = "registry.example/api\u202e\x1b[2J##[warning]x:latest"
SHOWN_KEY = "bad\\nkey\\x0b##\\x5berror]legacy\\n::stop-commands::tok"
SHOWN_IMAGE = "registry.example/api\\u202e\\x1b[2J##\\x5bwarning]x:latest"
UNKNOWN = f'unknown field "{SHOWN_KEY}" in spec.template.spec.containers[0]'
LATEST = f"image {SHOWN_IMAGE} uses tag `latest`"


def _unsafe(text: str) -> list[str]:
    """Characters no output may carry raw: controls but the line feed, format characters
    (bidi, zero-width), line and paragraph separators, lone surrogates."""
    return [
        char
        for char in text
        if char != "\n" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs")
    ]


def assert_inert(text: str, annotations: int = 0) -> None:
    """No raw unsafe character, and no workflow command but `annotations` of meshcanary's."""
    assert not _unsafe(text), sorted(set(_unsafe(text)))
    assert "##[" not in text  # the runner finds this form anywhere in a line
    # The runner strips leading white space before it looks for `::`.
    commands = [line for line in text.split("\n") if line.lstrip().startswith("::")]
    assert len(commands) == annotations, commands
    for command in commands:
        assert command.startswith(("::error file=", "::warning file=", "::notice file=")), command


# --- the one function -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("micro-api", "micro-api"),
        ("naïve 名前 ünïcode", "naïve 名前 ünïcode"),
        (FORGED, "\\n::error file=x,line=1::forged"),
        (OSC_LINK, "\\x1b]8;;http://evil\\x07"),
        (CLEAR, "\\x1b[2J"),
        (
            "bell\x07 vt\x0b tab\t cr\r del\x7f csi\x9b",
            "bell\\x07 vt\\x0b tab\\t cr\\r del\\x7f csi\\x9b",
        ),
        (f"abc{RLO}def\u2066\u200b\ufeff", "abc\\u202edef\\u2066\\u200b\\ufeff"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("not utf-8 \udcff", "not utf-8 \\udcff"),
        ("tag \U000e0041", "tag \\U000e0041"),
        ("::stop-commands::tok", "\\x3a:stop-commands::tok"),
        (" \u3000::error::x", " \u3000\\x3a:error::x"),
        ("a::b", "a::b"),
        ("##[error]x ###[y", "##\\x5berror]x ###\\x5by"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_escapes_every_control_and_invisible_character() -> None:
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            shown = printable(f"a{char}b")
            assert shown.isascii() and shown.isprintable(), f"U+{code:04X}"


def test_printable_lines_keeps_the_line_breaks_only() -> None:
    diff = " context\r\n   ::error::x\n+\x1b[2J##[error]y\n"
    assert printable_lines(diff) == " context\r\n   \\x3a:error::x\n+\\x1b[2J##\\x5berror]y\n"


def test_printable_json_keeps_values_and_escapes_text() -> None:
    value = {"name": WEB + RLO + "\x85\u2028\udcff\U000e0041", "key": KEY, "plain": "名前"}
    text = printable_json(value)
    assert json.loads(text) == value
    assert_inert(text)
    assert "名前" in text  # readable text stays readable


def test_an_error_message_is_one_line_and_its_hint_another() -> None:
    error = InputError(f"git archive: bad ref {FORGED}{CLEAR}\n  hint: fix {OSC_LINK}")
    assert error.text == (
        "error: git archive: bad ref \\n::error file=x,line=1::forged\\x1b[2J\n"
        "  hint: fix \\x1b]8;;http://evil\\x07"
    )
    located = InputError([Problem(Location(FILE_NAME, 2, 3), f"bad {KEY}", hint=RLO)])
    assert located.text == f"{SHOWN_FILE}:2:3: error: bad {SHOWN_KEY}\n  hint: \\u202e"


# --- lint: every format ----------------------------------------------------------------------


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the manifest under the hostile name, as the working directory: `lint .`
    names the file as it is, so the name starts each line of the text format."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / FILE_NAME).write_text(MANIFEST, encoding="utf-8")
    monkeypatch.chdir(folder)
    return folder


def _lint(cli, fmt: str):
    return cli("lint", "--strict", "--format", fmt, ".")


def test_every_format_is_covered() -> None:
    assert set(FORMATS) == {"text", "json", "junit", "sarif", "github", "tap", "markdown"}


def test_text(cli, hostile: Path) -> None:
    outcome = _lint(cli, "text")
    assert outcome.code == 1
    assert outcome.out.splitlines() == [
        f"{SHOWN_FILE}:14:11: error: {UNKNOWN} [schema]",
        f"{SHOWN_FILE}:27:18: warning: {LATEST} [mutable-image-tag]",
        "  hint: use a release tag that is never rebuilt (e.g. `1.4.2`) or pin the image by digest",
    ]
    assert_inert(outcome.out)
    assert outcome.err == ""


def _unescape_property(value: str) -> str:
    for escaped, char in (("%3A", ":"), ("%2C", ","), ("%0D", "\r"), ("%0A", "\n"), ("%25", "%")):
        value = value.replace(escaped, char)
    return value


def test_github(cli, hostile: Path) -> None:
    outcome = _lint(cli, "github")
    assert outcome.code == 1
    lines = outcome.out.splitlines()
    assert len(lines) == 2
    assert_inert(outcome.out, annotations=2)
    # Read back as the runner reads them: one property list, one message each.
    read = []
    for line in lines:
        command, _, message = line[2:].partition("::")
        name, _, properties = command.partition(" ")
        values = dict(item.split("=", 1) for item in properties.split(","))
        read.append((name, {k: _unescape_property(v) for k, v in values.items()}, message))
    assert read == [
        (
            "error",
            {"file": SHOWN_FILE, "line": "14", "col": "11", "title": "schema"},
            UNKNOWN,
        ),
        (
            "warning",
            {"file": SHOWN_FILE, "line": "27", "col": "18", "title": "mutable-image-tag"},
            f"{LATEST}%0Ahint: use a release tag that is never rebuilt (e.g. `1.4.2`) "
            "or pin the image by digest",
        ),
    ]


def test_tap(cli, hostile: Path) -> None:
    outcome = _lint(cli, "tap")
    assert outcome.code == 1
    web = "web\\n::error file=x,line=1::forged\\x1b]8;;http://evil\\x07"
    assert outcome.out.splitlines() == [
        "TAP version 13",
        f"not ok 1 - {SHOWN_FILE} (apps/v1/Deployment/ns\\x1b[2J\\u202e/{web}): "
        # and `#` is `\\#`, which TAP does not read as a directive
        '14:11: unknown field "bad\\nkey\\x0b\\#\\#\\x5berror]legacy\\n::stop-commands::tok" '
        "in spec.template.spec.containers[0]",
        f"ok 2 - {SHOWN_FILE} (apps/v1/Deployment//api\\n::stop-commands::tok)",
        "1..2",
    ]
    assert_inert(outcome.out)


def test_json_keeps_the_values(cli, hostile: Path) -> None:
    outcome = _lint(cli, "json")
    assert outcome.code == 1
    assert_inert(outcome.out)
    findings = json.loads(outcome.out)["findings"]
    assert [f["file"] for f in findings] == [FILE_NAME, FILE_NAME]
    assert findings[0]["resource"]["name"] == WEB
    assert findings[0]["resource"]["namespace"] == f"ns{CLEAR}{RLO}"
    assert findings[0]["message"] == f'unknown field "{KEY}" in spec.template.spec.containers[0]'
    assert findings[1]["message"] == f"image {IMAGE} uses tag `latest`"


def test_junit(cli, hostile: Path) -> None:
    outcome = _lint(cli, "junit")
    assert outcome.code == 1
    assert_inert(outcome.out)
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(outcome.out)
    root = ET.fromstring(outcome.out)  # noqa: S314  (our own output, checked above)
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == SHOWN_FILE
    web, api = suite.findall("testcase")
    assert (
        web.get("name")
        == "ns\\x1b[2J\\u202e/web\\n::error file=x,line=1::forged\\x1b]8;;http://evil\\x07"
    )
    failure = web.find("failure")
    assert failure is not None
    assert failure.get("message") == f"{SHOWN_FILE}:14:11: {UNKNOWN}"
    assert failure.text == f"{SHOWN_FILE}:14:11: error: {UNKNOWN} [schema]"
    assert api.get("name") == "api\\n::stop-commands::tok"


def test_sarif(cli, hostile: Path) -> None:
    outcome = _lint(cli, "sarif")
    assert outcome.code == 1
    assert_inert(outcome.out)
    results = json.loads(outcome.out)["runs"][0]["results"]
    assert [r["message"]["text"] for r in results] == [
        UNKNOWN,
        f"{LATEST}\nhint: use a release tag that is never rebuilt (e.g. `1.4.2`) "
        "or pin the image by digest",
    ]
    uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "evil%0A%3A%3Aerror%20file%3Dx%2Cline%3D1%3A%3Aforged%1B%5B2J%E2%80%AE.yaml"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_file_that_does_not_parse(cli, hostile: Path, fmt: str) -> None:
    (hostile / FILE_NAME).write_text("a: [\n", encoding="utf-8")
    outcome = _lint(cli, fmt)
    assert outcome.code == 2
    assert outcome.err.splitlines() == [
        f"{SHOWN_FILE}:2:1: error: invalid YAML: did not find expected node content "
        "(while parsing a flow node)"
    ]
    # The report names the file too: in GitHub's format, as an annotation of its own.
    assert_inert(outcome.out + outcome.err, annotations=1 if fmt == "github" else 0)


def test_the_console_script(hostile: Path) -> None:
    script = Path(sys.executable).parent / "meshcanary"
    if not script.is_file():
        pytest.skip("the meshcanary console script is not installed")
    done = subprocess.run(
        [str(script), "lint", "--strict", "--format", "github", "."],
        capture_output=True,
        cwd=hostile,
        check=False,
        timeout=120,
        env={**os.environ, "GITHUB_ACTIONS": "true"},
    )
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert done.returncode == 1, err
    assert_inert(out, annotations=2)
    assert out.startswith(f"::error file={SHOWN_FILE.replace(':', '%3A').replace(',', '%2C')},")
    assert_inert(err)


# --- check: bad input on stderr ------------------------------------------------------------


@pytest.fixture
def hostile_repo(example_repo: Path) -> Path:
    """A release whose service and one key are hostile, and a release file with a hostile name."""
    release = example_repo / "environments/prod/micro-api.yaml"
    text = release.read_text(encoding="utf-8")
    text = text.replace(
        "service: micro-api", 'service: "micro\\n::error file=x::forged\\e]8;;http://evil\\a"'
    )
    text = text.replace(
        "trafficPolicy:", '"bad\\n::stop-commands::tok\\e[2J\\u202e": 1\ntrafficPolicy:'
    )
    release.write_text(text, encoding="utf-8")
    (example_repo / "environments/prod" / FILE_NAME).write_text("service: [\n", encoding="utf-8")
    return example_repo


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_check_reports_bad_input_one_line_each(cli, hostile_repo: Path, fmt: str) -> None:
    outcome = cli("--repo", hostile_repo, "check", "--format", fmt)
    assert outcome.code == 2
    assert outcome.out == ""
    assert_inert(outcome.err)
    errors = [line for line in outcome.err.splitlines() if not line.startswith("  hint: ")]
    assert [line.split(": error: ")[0] for line in errors] == [
        f"environments/prod/{SHOWN_FILE}:2:1",
        "environments/prod/micro-api.yaml:3:10",
        "environments/prod/micro-api.yaml:9:1",
    ]
    assert errors[2].endswith('unknown field "bad\\n::stop-commands::tok\\x1b[2J\\u202e"')


def test_kustomize_error_text_is_printable(cli, example_repo: Path) -> None:
    """kustomize echoes the paths a kustomization names; the message quotes kustomize."""
    base = example_repo / "deploy/base/micro-api/kustomization.yaml"
    hostile = '  - "missing\\n::error file=x::forged\\e[2J\\u202e##[error]y.yaml"\n'
    base.write_text(base.read_text(encoding="utf-8") + hostile, encoding="utf-8")
    for args in (["check", "--format", "github"], ["build"]):
        outcome = cli("--repo", example_repo, *args)
        assert outcome.code != 0, args
        assert "forged" in outcome.err, args
        assert_inert(outcome.out + outcome.err)
