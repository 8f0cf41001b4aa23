"""Hostile input for `meshcanary lint` and for `--policies` folders: every case ends in bounded
time with exit 1 and a located finding, or exit 2 and one `file:line:col: error:` line.

Positions are worked out by hand from the input (the comment of each case says how). Choices
where Kubernetes could be read more than one way:

- Duplicate keys: `kubectl apply` (go-yaml, since 1.21) refuses them ("mapping key already
  defined"). `lint` follows kubeconform, whose acceptance case 25 passes them without
  `--strict` (the last value wins, as in go-yaml's non-strict decoding); `--strict` reports
  the second key with the line of the first.
- YAML 1.1: Kubernetes reads manifests with sigs.k8s.io/yaml, go-yaml v2 semantics, where
  `yes`, `no`, `on` and `off` are booleans, and so does our loader: `replicas: yes` is a
  boolean for both, refused for an int32 field. A boolean or number used as a *key* becomes
  the string sigs.k8s.io/yaml makes of it (`on:` is the key "true").
- UTF-16: refused with the byte that is not UTF-8 (Kubernetes manifests are UTF-8; Windows
  PowerShell 5 redirects write UTF-16, so the message says what to save as). A UTF-8 BOM is
  accepted, CRLF line ends give the positions LF gives.
- An empty file or one with only comments holds no resources: exit 0, as in kubeconform.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshcanary import manifest
from meshcanary.errors import InputError
from meshcanary.manifest import Parsed, _Builder, parse_text
from meshcanary.policies import _worker, load
from tests.support import Outcome
from tests.support.bounds import count_calls, hang_guard, measured

Cli = Callable[..., Outcome]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: web:1.2.3
"""
CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"


def deployment(replicas: str) -> bytes:
    return DEPLOYMENT.format(replicas=replicas).encode()


@dataclass(frozen=True)
class Case:
    id: str
    content: bytes
    code: int
    where: str = ""  # "line:col" of the finding or error; "" for a clean run
    message: str = ""  # a substring of that line
    args: tuple[str, ...] = ()
    xfail: str = ""


CASES = [
    # `   namespace: b` is indented one space deeper than `name`: its ':' (column 3 + 9 + 1)
    # is a second mapping value on one line.
    Case(
        "bad-indentation",
        CONFIG_MAP.encode() + b"   namespace: b\n",
        2,
        "5:13",
        "mapping values are not allowed",
    ),
    # The quote opened on line 4 is never closed: the scanner reaches the end of the stream,
    # line 6 column 1 (the file has five lines).
    Case(
        "unclosed-quote",
        b'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "a\ndata: {}\n',
        2,
        "6:1",
        "unexpected end of stream",
    ),
    # `{name: a` runs on into line 4 as the plain scalar `a data`, whose ':' (4:5) is where the
    # flow mapping needed a ',' or '}'; line 4 is no deeper than line 3, so the { was never
    # closed: the error points at it, line 3 column 11 ("metadata: " is 10 characters).
    Case(
        "unclosed-flow-mapping",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\ndata: {}\n",
        2,
        "3:11",
        "this { is never closed (did not find expected ',' or '}')",
    ),
    # A missing comma inside a multi-line flow mapping (JSON): the line goes deeper than the {,
    # so the error stays where the parser stopped, at "metadata" (4:3), not at the { (1:1).
    Case(
        "missing-comma-in-json",
        b'{\n  "apiVersion": "v1",\n  "kind": "ConfigMap"\n  "metadata": {"name": "a"}\n}\n',
        2,
        "4:3",
        "did not find expected ',' or '}' (while parsing a flow mapping)",
    ),
    Case(
        "tab-indentation",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n",
        2,
        "4:1",
        "tab character where YAML needs a space",
    ),
    # Without --strict the last `k` wins, a list, refused at its '[' (7:6).
    Case(
        "duplicate-key-last-wins",
        CONFIG_MAP.encode() + b"data:\n  k: a\n  k: [1]\n",
        1,
        "7:6",
        "data.k must be a string, found a list",
    ),
    Case(
        "duplicate-key-strict",
        CONFIG_MAP.encode() + b"  name: d\n",
        1,
        "5:3",
        'duplicate key "name"',
        ("--strict",),
    ),
    # `  name: "a\qb"`: the backslash is at column 11.
    Case(
        "invalid-escape",
        b'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "a\\qb"\n',
        2,
        "4:11",
        "unknown escape character",
    ),
    # `...` ends the first document after line 1; lines 3-5 are a second one, with no apiVersion.
    Case(
        "stray-document-end",
        b"apiVersion: v1\n...\nkind: ConfigMap\nmetadata:\n  name: a\n",
        1,
        "1:1",
        "missing 'kind' key",
    ),
    # A `---` at column 0 ends a document even inside a block scalar: `    y` on line 9 is a
    # document of its own, a string.
    Case(
        "document-marker-in-block-scalar",
        CONFIG_MAP.encode() + b"data:\n  k: |\n    x\n---\n    y\n",
        2,
        "9:5",
        "expected a Kubernetes object (a mapping), found str",
    ),
    Case(
        "undefined-alias",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: *nope\n",
        2,
        "4:9",
        "found undefined alias",
    ),
    # The alias inside `metadata` refers to the mapping that contains it, anchored at 3:11.
    Case(
        "recursive-alias",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: &m\n  name: c\n  x: *m\n",
        2,
        "3:11",
        "an alias refers to a node that contains it",
    ),
    Case(
        "top-level-list",
        b"- a\n- b\n",
        2,
        "1:1",
        "expected a Kubernetes object (a mapping), found list",
    ),
    # libyaml stops at 1,000 levels, counting the three block mappings around `x` (document,
    # metadata, labels): the 998th '[' is refused, at column 7 + 997 + 1.
    Case(
        "nested-10000-lists",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  labels:\n    x: "
        + b"[" * 10_000
        + b"]" * 10_000
        + b"\n",
        2,
        "6:1005",
        "exceeded maximum nesting depth",
    ),
    # The same with `{a: `, four characters a level: column 7 + 4 * 997 + 1.
    Case(
        "nested-10000-maps",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  labels:\n    x: "
        + b"{a: " * 10_000
        + b"1"
        + b"}" * 10_000
        + b"\n",
        2,
        "6:3996",
        "exceeded maximum nesting depth",
    ),
    # Within libyaml's limit but past manifest.MAX_DEPTH: the document is depth 0, metadata 1,
    # labels 2, so the k-th '[' (at column 7 + k) is depth 2 + k.
    Case(
        "nested-past-max-depth",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  labels:\n    x: "
        + b"[" * 500
        + b"]" * 500
        + b"\n",
        2,
        f"6:{7 + manifest.MAX_DEPTH - 2}",
        f"nested deeper than {manifest.MAX_DEPTH} levels",
    ),
    Case(
        "huge-integer",
        deployment("99999999999999999999999"),
        1,
        "6:13",
        "spec.replicas",
        xfail="jsonschema-rs asserts no `format: int32`, so a replicas the API server refuses "
        "(json: cannot unmarshal number into int32) passes; validate/embedded.py should check "
        "integers against the schema's int32/int64 format",
    ),
    Case("nan", deployment(".nan"), 1, "6:13", "spec.replicas is nan, which JSON cannot hold"),
    Case("infinity", deployment("-.inf"), 1, "6:13", "spec.replicas is -inf"),
    Case("string-for-number", deployment('"3"'), 1, "6:13", 'found a string "3"'),
    # route[0]'s weight value on line 10, after `          weight: ` (18 characters).
    Case(
        "percent-weight",
        textwrap.dedent(
            """\
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: r
            spec:
              hosts: [a]
              http:
                - route:
                    - destination: {host: a, subset: v1}
                      weight: "30%"
                    - destination: {host: a, subset: v2}
                      weight: 70
            """
        ).encode(),
        1,
        "10:19",
        'weight must be an integer, found a string "30%"',
        ("--no-rules",),
    ),
    # YAML 1.1, as go-yaml v2 reads it too: kubectl sends `true`, the API server refuses it.
    Case("yaml11-yes-for-int", deployment("yes"), 1, "6:13", "found a boolean true"),
    # `  labels: {enabled: on}`: `on` starts at column 21.
    Case(
        "yaml11-on-for-string",
        CONFIG_MAP.encode() + b"  labels: {enabled: on}\n",
        1,
        "5:21",
        "metadata.labels.enabled must be a string, found a boolean true",
    ),
    # YAML 1.1 reads the keys `on` and `1` as true and 1; sigs.k8s.io/yaml turns such keys
    # into the JSON keys "true" and "1", and so does the loader: valid ConfigMaps.
    Case(
        "yaml11-on-as-key",
        CONFIG_MAP.encode() + b"data:\n  on: x\n",
        0,
    ),
    Case(
        "integer-key",
        CONFIG_MAP.encode() + b"data:\n  1: one\n",
        0,
    ),
    Case(
        "binary-tag",
        CONFIG_MAP.encode() + b"data:\n  k: !!binary aGk=\n",
        2,
        "6:6",
        "binary",
    ),
    # `  k: '` is six characters: the first Latin-1 byte is at column 7.
    Case(
        "latin-1",
        CONFIG_MAP.encode() + "data:\n  k: 'été'\n".encode("latin-1"),
        2,
        "6:7",
        "not UTF-8: byte 0xe9",
    ),
    Case("utf-8-bom", b"\xef\xbb\xbf" + deployment('"3"'), 1, "6:13", 'found a string "3"'),
    Case("crlf", deployment('"3"').replace(b"\n", b"\r\n"), 1, "6:13", 'found a string "3"'),
    Case("utf-16", deployment("2").decode().encode("utf-16"), 2, "1:1", "not UTF-8: byte 0xff"),
    # `  name: c` then NUL: column 10 of line 4.
    Case(
        "nul-byte",
        CONFIG_MAP.replace("name: c", "name: c\x00d").encode(),
        2,
        "4:10",
        "control character U+0000 is not allowed",
    ),
    # libyaml counts the offset of a refused character in bytes: `é` is two of them, one column.
    Case(
        "control-character-after-non-ascii",
        CONFIG_MAP.replace("name: c", "name: é\x07").encode(),
        2,
        "4:10",
        "control character U+0007 is not allowed",
    ),
    Case("empty-file", b"", 0),
    Case("only-comments", b"# nothing here\n# at all\n", 0),
]


def _only_line(err: str) -> str:
    """The one error line; a hint and the CEL engine's caret excerpt (` | `) may follow it."""
    lines = [line for line in err.splitlines() if not line.startswith(("  hint:", " | "))]
    assert len(lines) == 1, err
    return lines[0]


def _expect(outcome: Outcome, file: str, code: int, where: str, message: str) -> None:
    assert "Traceback" not in outcome.err
    assert outcome.code == code, (outcome.out, outcome.err)
    if code == 2:
        line = _only_line(outcome.err)
        assert line.startswith(f"{file}:{where}: error: "), line
        assert message in line
    elif code == 1:
        found = [line for line in outcome.out.splitlines() if line.startswith(f"{file}:{where}: ")]
        assert any(message in line for line in found), outcome.out
    else:
        assert outcome.err == ""


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [],
        )
        for case in CASES
    ],
)
def test_hostile_manifest(
    case: Case, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("case.yaml").write_bytes(case.content)
    # The builders the loader makes, one a document (counting the calls of their recursion
    # would add stack frames, and these cases go as deep as the loader allows).
    builders = count_calls(monkeypatch, _Builder, "__init__")
    outcome = cli("lint", *case.args, "case.yaml")
    # Bounded by the text: no document built holds more values than the file has bytes (what
    # libyaml and the bounds refuse is not built; an alias that expands further is refused).
    built = sum(builder.total for (builder, _loader), _ in builders.made)
    assert built <= len(case.content)
    _expect(outcome, "case.yaml", case.code, case.where, case.message)


def test_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(deployment('"3"').decode()))
    _expect(cli("lint", "-"), "stdin", 1, "6:13", 'found a string "3"')
    monkeypatch.setattr(sys, "stdin", io.StringIO('metadata:\n  name: "a\\qb"\n'))
    _expect(cli("lint", "-"), "stdin", 2, "2:11", "unknown escape character")


# Files that are not files -------------------------------------------------------------------


def test_symlink_loops_and_missing_paths(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path("folder")
    folder.mkdir()
    (folder / "web.yaml").write_bytes(deployment("2"))
    (folder / "loop").symlink_to("..")  # a folder that contains itself
    (folder / "a.yaml").symlink_to("b.yaml")  # files that point at each other
    (folder / "b.yaml").symlink_to("a.yaml")
    outcome = cli("lint", "folder", "--summary")
    assert outcome.code == 0, outcome.err
    assert "1 resource found in 1 file" in outcome.out
    # Given by name, a link that never ends is unreadable input (the message could say why).
    _expect(cli("lint", "folder/a.yaml"), "folder/a.yaml", 2, "1:1", "")
    _expect(cli("lint", "nowhere.yaml"), "nowhere.yaml", 2, "1:1", "no such file or folder")


def test_fifos_and_folders_where_files_belong(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("web.yaml").write_bytes(deployment("2"))
    os.mkfifo("pipe.yaml")  # reading it would wait for a writer forever
    Path("crds").mkdir()
    Path("folder").mkdir()
    os.mkfifo("folder/pipe.yaml")
    Path("folder/dir.yaml").mkdir()
    # Opened to be read, a FIFO would wait for a writer for ever: these end, said as much.
    with hang_guard():
        _expect(cli("lint", "pipe.yaml"), "pipe.yaml", 2, "1:1", "")
        assert cli("lint", "folder", "web.yaml").code == 0  # neither is a manifest file
        for crd in ("pipe.yaml", "crds"):
            outcome = cli("lint", "--crd", crd, "web.yaml")
            assert outcome.code == 2
            assert _only_line(outcome.err) == f"error: --crd {crd}: not a regular file"


def test_fifo_is_named(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkfifo("pipe.yaml")
    _expect(cli("lint", "pipe.yaml"), "pipe.yaml", 2, "1:1", "FIFO")


def test_a_tab_in_the_indentation_gets_a_hint(cli: Cli, tmp_path: Path) -> None:
    # libyaml's message does not mention the tab; the hint comes from the text at the error.
    manifest = tmp_path / "tab.yaml"
    manifest.write_bytes(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n")
    outcome = cli("lint", manifest)
    assert outcome.code == 2
    assert "  hint: YAML indents with spaces only; replace the tab" in outcome.err.splitlines()


# Size: measured in a process of its own --------------------------------------------------


def _bomb(levels: int, fan: int) -> str:
    """A billion-laughs: each anchor a list of `fan` aliases of the one before."""
    lines = [*CONFIG_MAP.splitlines(), "  labels:", f"    a0: &a0 [{', '.join(['lol'] * fan)}]"]
    lines += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_in_bounded_time_and_memory(tmp_path: Path) -> None:
    # 10 levels of 10: 10^10 values once expanded. a0 to a5 hold 1,234,566 values, a6 alone
    # 11,111,111: a6 is the first collection past 5,000,000, reported at its anchor (12:9).
    (tmp_path / "bomb.yaml").write_text(_bomb(10, 10))
    run = measured("lint", tmp_path / "bomb.yaml")
    assert run.code == 2
    line = _only_line(run.err)
    assert line.endswith("bomb.yaml:12:9: error: document too large: aliases expand this "
                         f"document to more than {manifest.MAX_NODES:,} values"), line  # fmt: skip
    # The loader visits each node of the text once; the expansion is counted, never walked.
    assert run.nodes < len((tmp_path / "bomb.yaml").read_text())
    assert run.peak_kib < 300_000


def test_alias_expansion_under_the_limit_stays_bounded(tmp_path: Path) -> None:
    # 10^6 values: accepted by the loader, then walked by schema validation and the rules.
    (tmp_path / "big.yaml").write_text(_bomb(6, 10))
    run = measured("lint", tmp_path / "big.yaml")
    assert run.code == 1, run.err
    # Built by visiting the text's nodes once; what schema validation and the rules walk is
    # the expanded document, which the loader's bound holds.
    assert run.documents == 1
    assert run.nodes < len((tmp_path / "big.yaml").read_text())
    assert 10**6 < run.values <= manifest.MAX_NODES
    assert run.peak_kib < 1_000_000


def test_fifty_megabyte_file(tmp_path: Path) -> None:
    # 5,000+ ConfigMaps of 10 KB, seven lines each; the last one's `k: 1` is on line 7 * n.
    document = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  k: {v}\n"
    value = "'" + "v" * 10_000 + "'"
    count = 50 * 2**20 // len(document.format(i=0, v=value)) + 1
    big = tmp_path / "big.yaml"
    with big.open("w") as out:
        for i in range(count - 1):
            out.write(document.format(i=i, v=value))
        out.write(document.format(i=count, v=1))
    assert big.stat().st_size > 50 * 2**20
    # In one process: the documents are counted where they are built.
    run = measured("lint", big, "--no-rules", "--jobs", "1")
    assert run.code == 1, run.err
    assert run.documents == count  # each document built once
    assert run.peak_kib < 1_500_000


def test_parse_errors_of_deep_nesting_are_no_recursion_error() -> None:
    parsed = Parsed()
    parse_text("x: " + "[" * 100_000 + "]" * 100_000, "deep.yaml", parsed)
    [problem] = parsed.problems
    assert (problem.location.line, problem.location.column) == (1, 1003)


# Hostile policies ---------------------------------------------------------------------------

POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: p
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [apps]
        apiVersions: [v1]
        resources: [deployments]
        operations: [CREATE, UPDATE]
{variables}  validations:
    - expression: {expression}
      message: m
{extra}"""


def _policy(folder: Path, expression: str, variables: str = "", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = POLICY.format(expression=json.dumps(expression), variables=variables, extra=extra)
    (folder / "p.yaml").write_text(text)
    return folder


def _resources(folder: Path, objects: int = 0) -> Path:
    config_maps = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n" for i in range(objects)
    )
    (folder / "r.yaml").write_text(DEPLOYMENT.format(replicas=2) + config_maps)
    return folder / "r.yaml"


def _lint_with_policy(
    cli: Cli,
    tmp_path: Path,
    expression: str,
    variables: str = "",
    objects: int = 0,
    extra: str = "",
) -> tuple[Outcome, list[int]]:
    """The outcome, and the evaluations the worker ran: for each, how many resources."""
    folder = _policy(tmp_path / "pol", expression, variables, extra)
    resources = _resources(tmp_path, objects)
    with pytest.MonkeyPatch.context() as patch:
        runs = count_calls(patch, _worker, "run")
        outcome = cli("lint", "--no-rules", "--policies", folder, resources)
    return outcome, [len(cases) for (_code, _objects, cases, _budget), _ in runs.made]


REPLACE = ".replace('a', 'aaaaaaaaaa')"
DOUBLING = "    - name: v0\n      expression: object.metadata.name\n" + "".join(
    f"    - name: v{i}\n      expression: variables.v{i - 1} + variables.v{i - 1}\n"
    for i in range(1, 41)
)


@pytest.mark.parametrize(
    ("expression", "variables", "where", "message"),
    [
        pytest.param("object.metadata.name ==", "", "13:19", "Syntax error", id="syntax-error"),
        pytest.param(
            "undeclared == 1", "", "13:19", "undeclared reference to 'undeclared'", id="unknown"
        ),
        # Ten chained replace()s multiply a letter by 10^10: refused, not run.
        pytest.param(
            f"'a'{REPLACE * 10}.size() > 0",
            "",
            "13:19",
            "CEL cost limit: builds a value of up to 100,000,000 bytes or items (limit 10,000,000)",
            id="replace-chain",
        ),
        # Each variable doubles the one before: v7 is 128 times the input, over the limit of
        # 100. The variables start on line 13, two lines each: v7's expression is on line 28.
        pytest.param(
            "variables.v40.size() > 0",
            "  variables:\n" + DOUBLING,
            "28:19",
            "builds a value up to 128 times its input (limit 100)",
            id="doubling-variables",
        ),
        pytest.param(
            "object.metadata.name.replace('', object.metadata.name).size() > 0",
            "",
            "13:19",
            "grows with the square of its input",
            id="quadratic-replace",
        ),
        # 10^5 bytes built on each of up to 10,000 iterations.
        pytest.param(
            f"objects.all(o, ('a'{REPLACE * 5}).size() > 0)",
            "",
            "13:19",
            "may take over 100,000,000 steps in one evaluation",
            id="costly-loop-body",
        ),
        pytest.param(
            "[1].all(x, " * 50 + "true" + ")" * 50,
            "",
            "13:19",
            "Expression recursion limit exceeded. limit: 32",
            id="deep-macros",
        ),
        pytest.param(
            "[" + ",".join(map(str, range(100_000))) + "].size() > 0",
            "",
            "13:19",
            "expression size exceeds codepoint limit",
            id="list-of-100k",
        ),
    ],
)
def test_policies_refused_when_they_load(
    cli: Cli, tmp_path: Path, expression: str, variables: str, where: str, message: str
) -> None:
    outcome, evaluations = _lint_with_policy(cli, tmp_path, expression, variables)
    assert outcome.code == 2, outcome.out
    line = _only_line(outcome.err)
    assert line.startswith(f"{tmp_path / 'pol' / 'p.yaml'}:{where}: error: policy p: "), line
    assert message in line
    assert "CANCELLED" not in line
    assert evaluations == []  # refused when it loads: never run


def test_runtime_failures_are_findings(cli: Cli, tmp_path: Path) -> None:
    resources = f"{tmp_path / 'r.yaml'}:1:1: error: policy p: /spec/validations/0/expression"
    outcome, _ = _lint_with_policy(cli, tmp_path, "object.metadata.name + 1 == 2")
    assert outcome.code == 1
    assert f"{resources} failed: No matching overloads" in outcome.out
    # A messageExpression that fails falls back to `message`, as in the API server.
    extra = "      messageExpression: \"'x' + object.nope\"\n"
    outcome, _ = _lint_with_policy(cli, tmp_path, "false", extra=extra)
    assert outcome.code == 1
    assert "error: m [p/0]" in outcome.out
    outcome, _ = _lint_with_policy(cli, tmp_path, "'a'.matches('a{1000}{1000}')")
    assert "failed: invalid regular expression: bad repetition operator" in outcome.out


def test_nested_comprehensions_stop_at_the_iteration_budget(cli: Cli, tmp_path: Path) -> None:
    # 1,201^3 iterations as written; the engine stops the evaluation after 10,000.
    outcome, evaluations = _lint_with_policy(
        cli, tmp_path, "objects.all(a, objects.all(b, objects.all(c, true)))", objects=1200
    )
    assert outcome.code == 1
    [finding] = [line for line in outcome.out.splitlines() if "error:" in line]
    assert finding.startswith(f"{tmp_path / 'r.yaml'}:1:1: error: ")
    assert "Iteration budget exceeded (the limit is 10,000 comprehension iterations" in finding
    assert evaluations == [1]  # one evaluation, of the one Deployment, ended by the engine


def test_the_wall_clock_guard_stops_a_policy_over_many_objects(tmp_path: Path) -> None:
    rules = "      - apiGroups: ['']\n        apiVersions: [v1]\n        resources: [configmaps]\n"
    folder = _policy(tmp_path / "pol", "objects.all(a, objects.all(b, true))")
    text = (folder / "p.yaml").read_text()
    (folder / "p.yaml").write_text(
        text.replace("        operations:", rules + "        operations:")
    )
    parsed = Parsed()
    parse_text(_resources(tmp_path, 3000).read_text(), "r.yaml", parsed)
    policies = load([folder], tmp_path, timeout=0.5)
    with hang_guard():
        found = policies.evaluate(parsed.resources)
    [stopped] = [p for p in found if "stopped after its 0.5 s budget" in p.message]
    # The worker was killed part of the way: some of the 3,001 resources were not checked.
    unchecked = re.search(r"(\d+) of 3001 resources it selects not checked", stopped.message)
    assert unchecked and int(unchecked[1]) > 0, stopped.message


def test_regular_expressions_are_linear(cli: Cli, tmp_path: Path) -> None:
    # (a+)+$ on 10^5 a's and a '!' backtracks for ever in PCRE; RE2 is linear.
    annotation = "a" * 100_000 + "!"
    folder = _policy(tmp_path / "pol", "object.metadata.annotations.x.matches('(a+)+$')")
    text = DEPLOYMENT.format(replicas=2).replace(
        "  name: web\n", f"  name: web\n  annotations:\n    x: '{annotation}'\n"
    )
    (tmp_path / "r.yaml").write_text(text)
    outcome = cli("lint", "--no-rules", "--policies", folder, tmp_path / "r.yaml")
    assert outcome.code == 1 and "error: m [p/0]" in outcome.out
    # Denied by the expression, within the policy's budget (5 s), not stopped at it.
    assert "stopped after" not in outcome.out


def test_policy_folders_that_are_not(cli: Cli, tmp_path: Path) -> None:
    resources = _resources(tmp_path)
    folder = tmp_path / "pol"
    folder.mkdir()
    os.mkfifo(folder / "pipe.yaml")
    with hang_guard():  # read, the FIFO would wait for a writer for ever
        outcome = cli("lint", "--policies", folder, resources)
    assert outcome.code == 2
    assert (
        _only_line(outcome.err) == f"{folder / 'pipe.yaml'}:1:1: error: is a FIFO, not a YAML file"
    )
    outcome = cli("lint", "--policies", resources, resources)
    assert outcome.code == 2
    assert "--policies needs a folder of policy files; this is a file" in _only_line(outcome.err)


def test_documents_that_are_not_policies(tmp_path: Path) -> None:
    folder = tmp_path / "pol"
    folder.mkdir()
    (folder / "kyverno.yaml").write_text(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: k\n"
    )
    with pytest.raises(InputError) as caught:
        load([folder], tmp_path)
    [problem] = caught.value.problems
    assert (problem.location.file, problem.location.line, problem.location.column) == (
        "pol/kyverno.yaml",
        2,
        7,
    )
    assert "ClusterPolicy (kyverno.io/v1) is not a ValidatingAdmissionPolicy" in problem.message
