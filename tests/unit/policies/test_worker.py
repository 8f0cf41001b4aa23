"""A policy's evaluation is stopped at its budget, even inside one long expression.

The attack: nested loops calling `replace()` on a 1 MB annotation. The load-time estimate
lets it through (the work is proportional to the input), the engine's 10,000-iteration limit
is not reached, and one evaluation runs for minutes without returning to Python. Each
evaluation runs in a worker process that is killed at the budget; the finding says so at the
expression's line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.policies import load
from meshcanary.problem import Severity
from tests.support.bounds import hang_guard

SCRIPT = Path(sys.executable).with_name("meshcanary")
BLOB = 1_000_000  # bytes of the annotation every replace() copies
# 100 x 50 iterations (half the engine's budget), each one replace() over BLOB bytes:
# minutes of work in one evaluation (60 ms per replace() here: 5 minutes).
ATTACK = (
    f"[{', '.join(map(str, range(100)))}].map(i, [{', '.join(map(str, range(50)))}].all(j,"
    " object.metadata.annotations.blob.replace('a', 'b').size() > 0)).all(ok, ok)"
)
POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: ['{group}']
        apiVersions: [v1]
        resources: [{plural}]
        operations: [CREATE, UPDATE]
  validations:
    - expression: {expression}
      message: {name} failed
"""
EXPRESSION_AT = "13:19"  # line and column of `{expression}` above
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    blob: {blob}
spec:
  replicas: 2
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


def _policy(folder: Path, expression: str, name: str = "p", kind: str = "Deployment") -> Path:
    group, plural = {"Deployment": ("apps", "deployments"), "ConfigMap": ("", "configmaps")}[kind]
    folder.mkdir(parents=True, exist_ok=True)
    text = POLICY.format(name=name, group=group, plural=plural, expression=json.dumps(expression))
    (folder / f"{name}.yaml").write_text(text)
    return folder


def _deployment(tmp_path: Path, blob: int = BLOB) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(DEPLOYMENT.format(blob="a" * blob))
    return path


def _parsed(path: Path) -> list[Resource]:
    parsed = Parsed()
    parse_text(path.read_text(), path.name, parsed)
    assert not parsed.problems
    return parsed.resources


def _lint(
    tmp_path: Path, folder: Path, resources: Path, budget: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHCANARY_POLICY_TIMEOUT": budget}
    # The timeout is a guard that stops the test when the run is not bounded, far beyond the
    # budgets here; it is not the assertion (the finding that says the run was stopped is).
    return subprocess.run(
        [
            SCRIPT,
            "lint",
            "--no-rules",
            "--policies",
            folder.relative_to(tmp_path),
            resources.relative_to(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_one_long_evaluation_is_stopped_at_its_budget(tmp_path: Path) -> None:
    folder = _policy(tmp_path / "pol", ATTACK)
    _policy(folder, "object.spec.replicas < 2", name="replicas")
    outcome = _lint(tmp_path, folder, _deployment(tmp_path), "1")
    # The estimate lets the policy load (exit 2 would be a refusal when it loads) ...
    assert outcome.returncode == 1, (outcome.stdout, outcome.stderr)
    # ... and the run ends at the budget, not after the minutes the evaluation would take: the
    # worker was killed in the middle of it, and the finding says so.
    errors = [line for line in outcome.stdout.splitlines() if ": error: " in line]
    [stopped] = [line for line in errors if "[p]" in line]
    assert stopped.startswith(f"pol/p.yaml:{EXPRESSION_AT}: error: policy p: "), stopped
    assert "/spec/validations/0/expression stopped after its 1 s budget" in stopped
    assert "on Deployment web; 1 of 1 resources it selects not checked" in stopped
    # The other policy still ran, on the same resource.
    assert any(line.startswith("r.yaml:") and "replicas failed" in line for line in errors)


def test_findings_before_the_stop_are_kept_and_none_after(tmp_path: Path) -> None:
    # Every ConfigMap is denied, slowly (50 replace() calls on 300 kB): a prefix of them is
    # checked within the budget, 40 would take about 40 s.
    slow = (
        f"[{', '.join(map(str, range(10)))}].all(i, [1, 2, 3, 4, 5].all(j,"
        " object.metadata.annotations.blob.replace('a', 'b').size() > 0))"
        " && object.metadata.name == ''"
    )
    folder = _policy(tmp_path / "pol", slow, kind="ConfigMap")
    blob = "a" * 300_000
    text = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i:02d}\n"
        f"  annotations: {{blob: {blob}}}\n"
        for i in range(40)
    )
    (tmp_path / "r.yaml").write_text(text)
    config_maps = _parsed(tmp_path / "r.yaml")
    policies = load([folder], tmp_path, timeout=1.5)
    with hang_guard():
        found = policies.evaluate(config_maps)
    [stopped] = [p for p in found if "stopped after" in p.message]
    denied = sorted(p.resource.name for p in found if p.resource and p.rule == "p/0")
    assert denied == [f"c{i:02d}" for i in range(len(denied))]  # checked in order, none skipped
    assert f"{40 - len(denied)} of 40 resources it selects not checked" in stopped.message
    assert f"on ConfigMap c{len(denied):02d};" in stopped.message
    assert str(stopped.location) == f"pol/p.yaml:{EXPRESSION_AT}"
    assert stopped.severity is Severity.ERROR
    # The next run gets a new worker.
    (tmp_path / "small.yaml").write_text(text.split(blob)[0] + "b}\n")
    [again] = policies.evaluate(_parsed(tmp_path / "small.yaml"))
    assert again.rule == "p/0" and again.resource and again.resource.name == "c00"


def test_a_stopped_policy_is_an_error_whatever_its_failure_policy_and_bindings(
    tmp_path: Path,
) -> None:
    # As the budget between resources always was: an unchecked policy is not a warning.
    folder = _policy(tmp_path / "pol", ATTACK)
    text = (folder / "p.yaml").read_text().replace("spec:\n", "spec:\n  failurePolicy: Ignore\n", 1)
    binding = (
        "---\napiVersion: admissionregistration.k8s.io/v1\n"
        "kind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: b\n"
        "spec:\n  policyName: p\n  validationActions: [Warn]\n"
    )
    (folder / "p.yaml").write_text(text + binding)
    policies = load([folder], tmp_path, timeout=0.5)
    with hang_guard():  # 5,000 replace() calls on 300 kB: 100 s unbounded
        [stopped] = policies.evaluate(_parsed(_deployment(tmp_path, blob=300_000)))
    assert "1 of 1 resources it selects not checked" in stopped.message
    assert stopped.severity is Severity.ERROR
    assert (stopped.location.line, stopped.location.column) == (14, 19)  # failurePolicy above
    assert "stopped after its 0.5 s budget" in stopped.message


def test_a_worker_that_dies_is_a_located_finding_and_is_replaced(tmp_path: Path) -> None:
    from meshcanary.policies import _worker

    folder = _policy(tmp_path / "pol", ATTACK)
    policies = load([folder], tmp_path, timeout=60)
    resources = _parsed(_deployment(tmp_path))

    killed: list[int] = []

    def kill_the_worker() -> None:
        deadline = time.monotonic() + 30  # a guard: the worker starts in well under a second
        while time.monotonic() < deadline:
            pid = _worker.running_pid()
            if pid is not None:
                time.sleep(0.5)  # well inside the evaluation
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    with hang_guard():  # the policy's own budget is 60 s: only the kill ends it sooner
        [ended] = policies.evaluate(resources)
    killer.join()
    assert len(killed) == 1  # the evaluation ended because its worker was killed
    assert str(ended.location) == f"pol/p.yaml:{EXPRESSION_AT}"
    assert "ended the process evaluating it (SIGKILL)" in ended.message
    assert "1 of 1 resources it selects not checked" in ended.message
    # The next run starts a new worker.
    (tmp_path / "small").mkdir()
    small = _parsed(_deployment(tmp_path / "small", blob=10))
    assert load([_policy(tmp_path / "ok", "true")], tmp_path).evaluate(small) == []


@pytest.mark.parametrize("budget", ["soon", "-1", "inf", "nan"])
def test_the_budget_variable_is_a_number_of_seconds(tmp_path: Path, budget: str) -> None:
    folder = _policy(tmp_path / "pol", "true")
    outcome = _lint(tmp_path, folder, _deployment(tmp_path, blob=10), budget)
    assert outcome.returncode == 2
    assert outcome.stderr.startswith("error: MESHCANARY_POLICY_TIMEOUT"), outcome.stderr


def test_a_stopped_policy_is_reported_by_a_shard_and_never_cached(
    example_repo: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard relates objects of other shards as context, and reports only findings on its
    own objects; a finding about the policy itself is not about such an object, and stays.
    Its outcome depends on the machine's speed, so the report is not cached."""
    from meshcanary.check.scope import Shard

    # Shard 2/2 owns both services but not every environment: it has context there.
    shard = Shard.parse("2/2")
    assert shard.owns("micro-api") and shard.owns("checkout")
    assert not shard.owns_environment("prod")
    for base in ("micro-api", "checkout"):
        path = example_repo / "deploy/base" / base / "deployment.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace(
                "metadata:\n", f"metadata:\n  annotations: {{blob: {'a' * 200_000}}}\n", 1
            ),
            encoding="utf-8",
        )
    _policy(example_repo / "policies", ATTACK)
    monkeypatch.setenv("MESHCANARY_POLICY_TIMEOUT", "1")
    outcome = cli("--repo", example_repo, "check", "--shard", "2/2", "--format", "json")
    stopped = [f for f in json.loads(outcome.out)["findings"] if "budget" in f["message"]]
    assert {f["file"] for f in stopped} == {"policies/p.yaml"}, outcome.out
    assert any("on Deployment default/" in f["message"] for f in stopped), stopped
    cache = Path(os.environ["MESHCANARY_CACHE_DIR"])
    # The stat memo of input files may be kept; no report is.
    assert not [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith("files-")]
