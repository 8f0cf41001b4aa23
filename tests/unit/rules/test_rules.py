"""The built-in rules: the contract of each module, its fixtures, suppressions and overrides.

Fixtures live in `tests/rules/<rule-id>/pass/*.yaml` (the rule reports nothing) and
`tests/rules/<rule-id>/fail/*.yaml`, where each line a finding must point at carries a
trailing `# expect: <rule-id>` comment: the rule must report exactly those lines.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from meshcanary.manifest import Parsed, parse_text
from meshcanary.problem import Problem, Severity
from meshcanary.rules import RULE_MODULES, Rule, Scope, all_rules, run
from tests.support import ARTICLE, ROOT, kustomize_build

FIXTURES = ROOT / "tests" / "rules"
RULES = all_rules()
BY_ID = {rule.ID: rule for rule in RULES}
EXPECT = re.compile(r"#\s*expect:\s*([a-z0-9-]+)\s*$")
KEBAB = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
OVERLAYS = ROOT / "deploy" / "overlays"
RULE_SOURCES = ROOT / "gen" / "meshcanary" / "rules"


def _parse(*paths: Path) -> Parsed:
    parsed = Parsed()
    for path in paths:
        parse_text(path.read_text(encoding="utf-8"), str(path), parsed)
    assert parsed.problems == [], [str(p) for p in parsed.problems]
    return parsed


def _parse_text(text: str, file: str = "manifest.yaml") -> Parsed:
    parsed = Parsed()
    parse_text(text, file, parsed)
    assert parsed.problems == [], [str(p) for p in parsed.problems]
    return parsed


def _marked(path: Path, rule_id: str) -> set[int]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: set[int] = set()
    for number, line in enumerate(lines, 1):
        match = EXPECT.search(line)
        if match:
            assert match.group(1) in BY_ID, f"{path}:{number}: unknown rule {match.group(1)}"
            if match.group(1) == rule_id:
                found.add(number)
    return found


def _fixtures(kind: str) -> list[Any]:
    return [
        pytest.param(rule, path, id=f"{rule.ID}/{kind}/{path.name}")
        for rule in RULES
        for path in sorted((FIXTURES / rule.ID / kind).glob("*.yaml"))
    ]


def _run_one(rule: Rule, *paths: Path) -> list[Problem]:
    return run(Scope(_parse(*paths).resources), rules=[rule])


def _lines(problems: list[Problem], rule_id: str, file: Path) -> set[int]:
    return {p.location.line for p in problems if p.rule == rule_id and p.location.file == str(file)}


# The registry and each module's contract --------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.ID)
def test_rule_module_follows_the_contract(rule: Rule) -> None:
    assert isinstance(rule, ModuleType)
    assert rule.__doc__ and rule.__doc__.strip(), f"{rule.ID}: the docstring is its documentation"
    assert KEBAB.match(rule.ID), rule.ID
    assert (FIXTURES / rule.ID).is_dir(), f"no fixture folder tests/rules/{rule.ID}"
    assert isinstance(rule.SEVERITY, Severity)
    assert rule.HINT.strip()
    assert rule.SUMMARY.strip()
    assert callable(rule.check)


def _ids_in_the_source() -> dict[str, list[str]]:
    """Module name → the string literals assigned to `ID` at its top level, read from the file
    (not through the registry, which is what is under test)."""
    found: dict[str, list[str]] = {}
    for path in sorted(RULE_SOURCES.glob("*.py")):
        if path.name.startswith("_"):  # the package and its private helpers
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[path.stem] = [
            node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["ID"]
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ]
    return found


def test_each_rule_module_has_one_unique_id_named_after_it() -> None:
    ids = _ids_in_the_source()
    assert len(ids) >= 15  # the walk found the modules
    assert {module: len(found) for module, found in ids.items() if len(found) != 1} == {}
    named = {module: found[0] for module, found in ids.items()}
    assert [i for i in named.values() if not KEBAB.match(i)] == []
    assert sorted(named.values()) == sorted(set(named.values())), "an ID is used twice"
    # weights_sum.py is `weights-sum-100`: the module's name, hyphenated, starts the ID.
    assert {m: i for m, i in named.items() if not i.startswith(m.replace("_", "-"))} == {}


def test_the_registry_runs_every_rule_module_once_in_order_of_id() -> None:
    ids = _ids_in_the_source()
    # The list is explicit so that the set is reviewed; a module left out of it never runs.
    assert sorted(RULE_MODULES) == sorted(ids), "RULE_MODULES and the rule modules differ"
    assert list(RULE_MODULES) == sorted(RULE_MODULES), "RULE_MODULES is kept in order"
    assert [rule.ID for rule in RULES] == sorted(found[0] for found in ids.values())


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.ID)
def test_every_rule_has_pass_and_fail_fixtures(rule: Rule) -> None:
    for kind in ("pass", "fail"):
        assert list((FIXTURES / rule.ID / kind).glob("*.yaml")), f"no {kind} fixture for {rule.ID}"


def test_every_fixture_folder_names_a_rule() -> None:
    folders = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    assert folders <= set(BY_ID), folders - set(BY_ID)


# Fixtures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "path"), _fixtures("pass"))
def test_pass_fixture_yields_nothing(rule: Rule, path: Path) -> None:
    assert not _marked(path, rule.ID), "a pass fixture marks no lines"
    problems = _run_one(rule, path)
    assert problems == [], "\n".join(p.format() for p in problems)


@pytest.mark.parametrize(("rule", "path"), _fixtures("fail"))
def test_fail_fixture_reports_exactly_the_marked_lines(rule: Rule, path: Path) -> None:
    expected = _marked(path, rule.ID)
    assert expected, "a fail fixture marks at least one line with `# expect: <rule-id>`"
    problems = _run_one(rule, path)
    assert all(p.rule == rule.ID and p.location.file == str(path) for p in problems)
    assert all(p.message and p.hint for p in problems)
    assert all(p.severity == rule.SEVERITY for p in problems)
    found = _lines(problems, rule.ID, path)
    detail = "\n".join(p.format() for p in problems)
    assert found == expected, (
        f"missing {sorted(expected - found)}, extra {sorted(found - expected)}\n{detail}"
    )


# Malformed data never makes a rule raise ------------------------------------------------------

MALFORMED = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken, annotations: {meshcanary.dev/ignore: 5}}
spec:
  hosts: 7
  gateways: [null, 3, {a: b}, "", "/", "a/b/c"]
  http:
    - null
    - route: {destination: x}
    - route: [null, 3, {destination: null}, {destination: {host: 4, subset: []}, weight: "x"}]
      mirror: [1]
      mirrors: [null, {destination: 3}]
      match: [null, {gateways: null}, {gateways: [1, null]}]
  tcp: {route: []}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: odd}
spec: [1, 2]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: broken}
spec:
  host: [a]
  subsets: [null, {name: 3}, {name: v1, labels: [x]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: star}
spec:
  host: "*"
  subsets: [{name: v1, labels: null}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: broken}
spec:
  servers: [null, {hosts: 3}, {hosts: [null, "a/"]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: [x]}
spec:
  replicas: "3"
  selector: {matchLabels: [a], matchExpressions: [null, {key: null, operator: In, values: 3}]}
  template:
    metadata: {labels: "x"}
    spec:
      containers: [null, {image: 3}, {image: ""}, {image: "a:"}, {ports: [null, {containerPort: "x", name: 3}]}]
      initContainers: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: broken}
spec:
  selector: {app: null}
  ports: [null, {port: true, targetPort: [1]}, {name: 5}, {targetPort: true}]
---
apiVersion: v1
kind: Service
metadata: {name: broken2}
spec: {selector: [a], ports: {a: b}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: broken}
spec: {jobTemplate: null}
---
kind: 5
apiVersion: [v1]
metadata: {name: 5, generateName: [x]}
---
metadata: 3
"""


def test_rules_never_raise_on_malformed_data() -> None:
    resources = _parse_text(MALFORMED).resources
    problems = run(Scope(resources))
    assert all(isinstance(p, Problem) for p in problems)


# Suppressions and severities ----------------------------------------------------------------

UNEVEN = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: shop
  annotations:
    meshcanary.dev/ignore: "{ignore}"
spec:
  hosts: [{name}]
  http:
    - route:
        - destination: {{host: {name}, subset: v1}}
          weight: 70
        - destination: {{host: {name}, subset: v2}}
          weight: 20
"""


def _uneven(name: str, ignore: str) -> str:
    return UNEVEN.format(name=name, ignore=ignore)


def test_suppression_silences_that_rule_on_that_resource_only() -> None:
    text = "---\n".join(
        (
            _uneven("checkout", "weights-sum-100: migrating"),
            _uneven("payments", "mutable-image-tag: not this rule"),
        )
    )
    resources = _parse_text(text).resources
    problems = run(Scope(resources), rules=[BY_ID["weights-sum-100"]])
    assert [(p.resource.name if p.resource else None) for p in problems] == ["payments"]
    # Other rules still see the suppressed resource.
    subsets = run(Scope(resources), rules=[BY_ID["subset-exists"]])
    assert {p.resource.name for p in subsets if p.resource} == {"checkout", "payments"}


def test_suppression_without_reason_still_suppresses_but_is_itself_reported() -> None:
    resources = _parse_text(_uneven("checkout", "weights-sum-100")).resources
    problems = run(Scope(resources), rules=[BY_ID["weights-sum-100"], BY_ID["suppression-reason"]])
    assert [p.rule for p in problems] == ["suppression-reason"]
    assert problems[0].location.line == 7


def test_suppression_reason_cannot_silence_itself() -> None:
    resources = _parse_text(_uneven("checkout", "suppression-reason")).resources
    problems = run(Scope(resources), rules=[BY_ID["suppression-reason"]])
    assert [p.rule for p in problems] == ["suppression-reason"]


def _image(tag: str) -> str:
    return (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: debug}\n"
        f"spec:\n  containers:\n    - {{name: debug, image: 'busybox:{tag}'}}\n"
    )


def test_severity_overrides_raise_and_turn_off_a_rule() -> None:
    scope = Scope(_parse_text(_image("latest")).resources)
    rule = [BY_ID["mutable-image-tag"]]
    (default,) = run(scope, rules=rule)
    assert default.severity == Severity.WARNING
    assert (default.location.line, default.location.column) == (6, 28)
    (raised,) = run(scope, severities={"mutable-image-tag": "error"}, rules=rule)
    assert raised.severity == Severity.ERROR
    assert run(scope, severities={"mutable-image-tag": "off"}, rules=rule) == []
    assert all(p.rule != "mutable-image-tag" for p in run(scope, {"mutable-image-tag": "off"}))


def test_duplicate_names_the_first_definition_by_file_and_line(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("# first\n" + _image("1.0"), encoding="utf-8")
    second.write_text(_image("1.0"), encoding="utf-8")
    (problem,) = _run_one(BY_ID["duplicate-resources"], first, second)
    assert problem.location.file == str(second)
    assert problem.location.line == 3
    assert f"{first}:4" in problem.message


def test_duplicate_names_every_copy_in_every_finding(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("# first\n" + _image("1.0"), encoding="utf-8")
    second.write_text(_image("1.0") + "---\n" + _image("1.1"), encoding="utf-8")
    problems = _run_one(BY_ID["duplicate-resources"], first, second)
    assert [(p.location.file, p.location.line) for p in problems] == [
        (str(second), 3),
        (str(second), 10),
    ]
    copies = f"{first}:4, {second}:3 and {second}:10"
    for problem in problems:
        assert problem.message == f"Pod default/debug is defined 3 times: at {copies}"


# The seed: the article this project started from ---------------------------------------------


@pytest.fixture(scope="module")
def seed_problems() -> dict[tuple[str, str], set[int]]:
    paths = sorted(ARTICLE.glob("*.yaml"))
    assert paths, f"no seed manifests in {ARTICLE}"
    found: dict[tuple[str, str], set[int]] = defaultdict(set)
    for problem in run(Scope(_parse(*paths).resources)):
        found[problem.rule, Path(problem.location.file).name].add(problem.location.line)
    return found


@pytest.mark.parametrize(
    ("rule_id", "file", "lines"),
    [
        ("resource-name", "micro-api-canary-istio-v1.yaml", {18}),
        ("service-target-port", "micro-api.yaml", {10}),
        ("service-target-port", "micro-api-canary-istio-v1.yaml", {10}),
        ("mesh-unweighted", "virtual-service-all.yaml", {10}),
        ("mesh-unweighted", "virtual-service-v2-100.yaml", {10}),
        ("mutable-image-tag", "micro-api-canary-istio-v1.yaml", {49}),
        ("mutable-image-tag", "micro-api-canary-istio-v2.yaml", {34}),
        ("mutable-image-tag", "micro-api-canary.yaml", {32}),
        ("mutable-image-tag", "micro-api.yaml", {44}),
    ],
)
def test_seed_breaks_the_rules_at_the_offending_lines(
    seed_problems: dict[tuple[str, str], set[int]], rule_id: str, file: str, lines: set[int]
) -> None:
    assert seed_problems[rule_id, file] == lines


def test_seed_misspelt_metadata_is_named_with_a_hint() -> None:
    path = ARTICLE / "micro-api-canary-istio-v1.yaml"
    (problem,) = _run_one(BY_ID["resource-name"], path)
    assert (problem.location.line, problem.location.column) == (18, 1)
    assert "meta data" in problem.message
    assert "'metadata'" in problem.hint


# Our own examples are clean -----------------------------------------------------------------


@pytest.mark.parametrize("env", sorted(p.name for p in OVERLAYS.iterdir() if p.is_dir()))
def test_rendered_examples_have_no_findings(env: str) -> None:
    resources = kustomize_build(OVERLAYS / env)
    text = "---\n".join(yaml.safe_dump(r, sort_keys=False) for r in resources)
    parsed = _parse_text(text, f"{env}.yaml")
    assert len(parsed.resources) == len(resources)
    problems = run(Scope(parsed.resources))
    assert problems == [], "\n".join(f"[{p.rule}] {p.format()}" for p in problems)


def test_rules_as_json_list_every_rule_for_tools(cli) -> None:
    import json

    from meshcanary.rules import all_rules

    outcome = cli("rules", "--format", "json")
    assert outcome.code == 0
    listed = json.loads(outcome.out)
    ids = [r["id"] for r in listed]
    assert ids[: len(all_rules())] == [r.ID for r in all_rules()]
    assert {"schema", "render-fresh", "kustomize-build", "weight-step"} <= set(ids)
    assert all(set(r) == {"id", "severity", "summary", "hint", "doc", "istio"} for r in listed)
    by_id = {r["id"]: r for r in listed}
    assert by_id["mesh-host-conflict"]["istio"] == ["IST0109"]
    assert by_id["weights-sum-100"]["istio"] == ["IST0106"]
    one = cli("rules", "weights-sum-100", "--format", "json")
    assert json.loads(one.out)["id"] == "weights-sum-100"
    assert cli("rules", "nope", "--format", "json").code == 2
