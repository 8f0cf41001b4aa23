"""User policies (ValidatingAdmissionPolicy, CEL): loading, evaluation, bindings, tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from meshcanary.errors import InputError
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.policies import key_of, load, resource_plural, run_tests
from meshcanary.problem import Severity
from meshcanary.validate import Options
from meshcanary.validate.embedded import EmbeddedValidator
from tests.support import ROOT, kustomize_build

POLICIES = ROOT / "policies"
ENVIRONMENTS = sorted(p.name for p in (ROOT / "deploy" / "overlays").iterdir() if p.is_dir())

HEAD = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
"""
DEPLOYMENTS = """\
  matchConstraints:
    resourceRules:
      - apiGroups: [apps]
        apiVersions: [v1]
        resources: [deployments]
        operations: [CREATE, UPDATE]
"""


def policy(tmp_path: Path, body: str, name: str = "p", extra: str = "") -> Path:
    folder = tmp_path / "pol"
    folder.mkdir(parents=True, exist_ok=True)
    text = HEAD.format(name=name) + body
    (folder / f"{name}.yaml").write_text(text + (f"---\n{textwrap.dedent(extra)}" if extra else ""))
    return folder


def resources(text: str, file: str = "r.yaml") -> list[Resource]:
    parsed = Parsed()
    parse_text(textwrap.dedent(text), file, parsed)
    assert not parsed.problems
    return parsed.resources


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
  labels: {{app: web}}
spec:
  replicas: 2
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: web:1
"""


def deployment(namespace: str = "default") -> list[Resource]:
    return resources(DEPLOYMENT.format(namespace=namespace))


def rendered(env: str) -> list[Resource]:
    docs = kustomize_build(ROOT / "deploy" / "overlays" / env)
    return resources(yaml.safe_dump_all(docs), f"{env}.yaml")


# The examples -----------------------------------------------------------------------------


def test_examples_are_valid_vaps() -> None:
    validator = EmbeddedValidator(Options())
    parsed = Parsed()
    for path in sorted(POLICIES.glob("*.yaml")):
        parse_text(path.read_text(), path.name, parsed)
    assert {r.name for r in parsed.resources if r.kind == "ValidatingAdmissionPolicy"} == {
        "require-resources",
        "no-wildcard-gateway-hosts",
        "require-team-label",
        "max-weight-step",
    }
    for resource in parsed.resources:
        verdict = validator.validate(resource)
        assert verdict.status == "valid", [p.format() for p in verdict.problems]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_examples_pass_on_the_environments(env: str) -> None:
    policies = load([POLICIES], ROOT)
    built = rendered(env)
    kinds = {r.kind for r in built}
    assert "Deployment" in kinds and kinds & {"VirtualService", "HTTPRoute"}, kinds
    assert policies.evaluate(built) == []
    # As an update against itself (max-weight-step compares with oldObject).
    assert policies.evaluate(built, {key_of(r): r.data for r in built}) == []


def test_examples_fail_on_crafted_resources() -> None:
    policies = load([POLICIES], ROOT)
    found = policies.evaluate(deployment())
    by_rule = {p.rule: p for p in found}
    assert set(by_rule) == {"require-resources/0", "require-team-label/0"}
    team = by_rule["require-team-label/0"]
    assert team.message == (
        "Deployment web: the pod template has no team label (spec.template.metadata.labels.team)"
    )
    assert (team.location.line, team.location.column) == (11, 15)  # the labels mapping
    assert team.path == "/spec/template/metadata/labels"
    limits = by_rule["require-resources/0"]
    assert limits.message.endswith(": web")
    assert limits.location.line == 14  # spec.template.spec.containers
    assert all(p.severity is Severity.ERROR for p in found)


def test_example_gateway_and_weight_step() -> None:
    policies = load([POLICIES], ROOT)
    gateway = resources(
        """\
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: gw}
        spec:
          servers:
            - port: {number: 80, name: http, protocol: HTTP}
              hosts: ["*"]
        """
    )
    [problem] = policies.evaluate(gateway)
    assert problem.rule == "no-wildcard-gateway-hosts/0"
    assert problem.location.line == 6
    route = """\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {{name: vs, namespace: default}}
        spec:
          http:
            - name: weighted
              route:
                - destination: {{host: a, subset: v1}}
                  weight: {a}
                - destination: {{host: a, subset: v2}}
                  weight: {b}
        """
    new = resources(route.format(a=40, b=60))
    old = {key_of(r): r.data for r in resources(route.format(a=90, b=10))}
    [problem] = policies.evaluate(new, old)
    assert problem.rule == "max-weight-step/0"
    assert "at most 25 points" in problem.message
    assert problem.location.line == 6  # spec.http
    ok = {key_of(r): r.data for r in resources(route.format(a=65, b=35))}
    assert policies.evaluate(new, ok) == []
    assert policies.evaluate(new) == []  # CREATE: nothing to compare with


# Compile errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("object.metadata.name ==", "Syntax error"),
        ("params.x == 1", "undeclared reference to 'params"),
        ("1 + 'a' == 2", "no matching overload"),
        ("size(object.metadata.name)", None),  # returns int, not bool
        ("variables.nope == 1", "variables.nope"),
    ],
)
def test_compile_errors_are_located(tmp_path: Path, expression: str, error: str | None) -> None:
    folder = policy(
        tmp_path,
        DEPLOYMENTS + f"  validations:\n    - expression: {expression!r}\n      message: m\n",
    )
    with pytest.raises(InputError) as caught:
        load([folder], tmp_path)
    [problem] = caught.value.problems
    assert problem.location.file == "pol/p.yaml"
    assert (problem.location.line, problem.location.column) == (13, 19)
    assert "CEL:" in problem.message
    assert (error or "must return bool") in problem.message


def test_param_kind_and_schema_errors(tmp_path: Path) -> None:
    folder = policy(
        tmp_path,
        "  paramKind: {apiVersion: v1, kind: ConfigMap}\n"
        + DEPLOYMENTS
        + "  validations:\n    - expression: 'true'\n",
    )
    with pytest.raises(InputError, match="paramKind is not supported"):
        load([folder], tmp_path)
    folder = policy(tmp_path, "  validations: yes\n")
    with pytest.raises(InputError) as caught:
        load([folder], tmp_path)
    assert caught.value.problems[0].location.line == 6


# Evaluation -------------------------------------------------------------------------------

BINDING = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: p
  validationActions: {actions}
  matchResources:
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: {namespace}}}
"""


def test_bindings_set_severity_and_narrow(tmp_path: Path) -> None:
    body = DEPLOYMENTS + "  validations:\n    - expression: 'false'\n      message: nope\n"
    extra = (
        BINDING.format(name="b1", actions="[Warn]", namespace="shop")
        + "---\n"
        + BINDING.format(name="b2", actions="[Audit]", namespace="lab")
    )
    policies = load([policy(tmp_path, body, extra=extra)], tmp_path)
    assert [p.severity for p in policies.evaluate(deployment("shop"))] == [Severity.WARNING]
    assert [p.severity for p in policies.evaluate(deployment("lab"))] == [Severity.INFO]
    assert policies.evaluate(deployment("other")) == []
    unbound = load([policy(tmp_path / "u", body)], tmp_path)
    [problem] = unbound.evaluate(deployment("other"))
    assert (problem.severity, problem.rule, problem.message) == (Severity.ERROR, "p/0", "nope")


def test_object_selector_and_match_conditions(tmp_path: Path) -> None:
    body = DEPLOYMENTS + (
        "  matchConditions:\n"
        "    - name: scaled\n"
        "      expression: object.spec.replicas > 1\n"
        "  validations:\n    - expression: 'false'\n"
    )
    policies = load([policy(tmp_path, body)], tmp_path)
    [problem] = policies.evaluate(deployment())
    assert problem.message == "failed expression: false"
    single = resources(DEPLOYMENT.format(namespace="x").replace("replicas: 2", "replicas: 1"))
    assert policies.evaluate(single) == []
    extra = BINDING.format(name="b", actions="[Deny]", namespace="x").replace(
        "namespaceSelector:\n      matchLabels: {kubernetes.io/metadata.name: x}",
        "objectSelector:\n      matchLabels: {app: api}",
    )
    bound = load([policy(tmp_path / "b", body, extra=extra)], tmp_path)
    assert bound.evaluate(deployment()) == []


def test_variables_message_expression_old_object_objects(tmp_path: Path) -> None:
    body = DEPLOYMENTS + (
        "  variables:\n"
        "    - name: replicas\n"
        "      expression: object.spec.replicas\n"
        "    - name: grew\n"
        "      expression: oldObject != null && variables.replicas > oldObject.spec.replicas\n"
        "  validations:\n"
        "    - expression: '!variables.grew'\n"
        "      messageExpression: \"'grew to ' + string(variables.replicas) + ' on ' + request.operation\"\n"
        "    - expression: objects.exists(o, o.kind == 'Service' && o.metadata.name == object.metadata.name)\n"
        "      message: no Service of the same name\n"
        "      fieldPath: metadata.name\n"
    )
    policies = load([policy(tmp_path, body)], tmp_path)
    web = deployment()
    old = {key_of(web[0]): {**web[0].data, "spec": {"replicas": 1}}}
    found = policies.evaluate(web, old)
    assert [(p.rule, p.message) for p in found] == [
        ("p/0", "grew to 2 on UPDATE"),
        ("p/1", "no Service of the same name"),
    ]
    assert next(p for p in found if p.rule == "p/1").location.line == 4
    service = resources("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n", "s.yaml")
    assert policies.evaluate([*web, *service]) == []


def test_failure_policy(tmp_path: Path) -> None:
    body = DEPLOYMENTS + "  validations:\n    - expression: object.spec.missing == 1\n"
    [problem] = load([policy(tmp_path, body)], tmp_path).evaluate(deployment())
    assert "failed" in problem.message and "missing" in problem.message
    ignore = "  failurePolicy: Ignore\n" + body
    assert load([policy(tmp_path / "i", ignore)], tmp_path).evaluate(deployment()) == []


def test_cost_and_time_guard(tmp_path: Path) -> None:
    # The engine stops an evaluation after 10,000 comprehension iterations.
    body = DEPLOYMENTS + (
        "  validations:\n    - expression: objects.all(a, objects.all(b, objects.all(c, a == a)))\n"
    )
    policies = load([policy(tmp_path, body)], tmp_path)
    config_maps = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n" for i in range(30)
    )
    many = [*deployment(), *resources(config_maps)]
    [problem] = policies.evaluate(many)
    assert "budget" in problem.message.lower()
    # A wall-clock budget per policy run stops a policy that is merely slow.
    slow = load(
        [policy(tmp_path / "s", DEPLOYMENTS + "  validations:\n    - expression: 'true'\n")],
        tmp_path,
        timeout=0,
    )
    [stopped] = slow.evaluate(deployment())
    assert "stopped after" in stopped.message


def test_kubernetes_list_library(tmp_path: Path) -> None:
    body = DEPLOYMENTS + (
        "  validations:\n"
        '    - expression: "[30, 70].sum() == 100 && [3, 1].max() == 3 && [1, 2].isSorted()'
        " && [1, 2].indexOf(2) == 1 && 'a-b'.split('-').size() == 2 && 'v1'.matches('^v[0-9]+$')"
        " && object.metadata.?labels.?team.orValue('none') == 'none'\"\n"
    )
    assert load([policy(tmp_path, body)], tmp_path).evaluate(deployment()) == []


def test_plural() -> None:
    assert [
        resource_plural(k)
        for k in ("Deployment", "NetworkPolicy", "Ingress", "Gateway", "ConfigMap")
    ] == [
        "deployments",
        "networkpolicies",
        "ingresses",
        "gateways",
        "configmaps",
    ]


# Policy tests -----------------------------------------------------------------------------


def test_run_tests_on_the_examples() -> None:
    report = run_tests(POLICIES, ROOT)
    assert report.ok, report.format()
    assert {c.policy for c in report.cases} == {
        "require-resources",
        "no-wildcard-gateway-hosts",
        "require-team-label",
        "max-weight-step",
    }
    assert {c.expect for c in report.cases} == {"pass", "fail"}
    assert run_tests(POLICIES / "tests", ROOT).ok


def test_run_tests_reports_a_broken_fixture(tmp_path: Path) -> None:
    body = (
        DEPLOYMENTS
        + "  validations:\n    - expression: has(object.spec.replicas)\n      message: set replicas\n"
    )
    folder = policy(tmp_path, body)
    cases = folder / "tests" / "p"
    (cases / "pass").mkdir(parents=True)
    (cases / "fail").mkdir()
    (cases / "pass" / "ok.yaml").write_text(DEPLOYMENT.format(namespace="x"))
    (cases / "fail" / "wrong.yaml").write_text(
        "# expect: something else\n"
        + DEPLOYMENT.format(namespace="x").replace("  replicas: 2\n", "")
    )
    (cases / "fail" / "passes.yaml").write_text(DEPLOYMENT.format(namespace="x"))
    report = run_tests(folder, tmp_path)
    assert [(c.file.rsplit("/", 1)[-1], c.ok) for c in report.cases] == [
        ("ok.yaml", True),
        ("passes.yaml", False),
        ("wrong.yaml", False),
    ]
    assert "something else" in report.failed[1].detail
    assert "1 passed, 2 failed" in report.format()


def test_engine_is_imported_only_by_load() -> None:
    code = (
        "import sys\n"
        "import meshcanary.policies, meshcanary.commands.lint, meshcanary.check.pipeline\n"
        "assert not [m for m in sys.modules if m.startswith('cel_expr_python')], 'imported early'\n"
        "from pathlib import Path\n"
        f"meshcanary.policies.load([Path({str(POLICIES)!r})], Path({str(ROOT)!r}))\n"
        "assert 'cel_expr_python' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
