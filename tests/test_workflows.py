"""The GitHub workflows and the pre-commit hooks manifest, checked offline.

Every workflow validates against the GitHub workflow schema vendored in check-jsonschema,
zizmor (offline audits) reports nothing at medium severity or above, and no `run:` script
expands a workflow input with `${{ }}` (template injection: inputs reach shells through `env:`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pre_commit.clientlib import load_manifest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.y*ml"))
HOOKS_FILE = ROOT / ".pre-commit-hooks.yaml"
# `${{ inputs.x }}` or `${{ github.event.inputs.x }}` (any spacing) inside a script.
INPUT_EXPANSION = re.compile(r"\$\{\{\s*(github\.event\.)?inputs\.")
BELOW_MEDIUM = {"Unknown", "Informational", "Low"}


def _load(path: Path) -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return workflow


def _zizmor(*inputs: Path) -> list[dict[str, Any]]:
    """zizmor's findings on the inputs: offline, no configuration file, no ignore comments."""
    done = subprocess.run(
        [
            BIN / "zizmor",
            "--offline",
            "--no-config",
            "--no-ignores",
            "--no-exit-codes",  # findings are asserted on below; a non-zero code is a failure
            "--no-progress",
            "--strict-collection",  # a file zizmor cannot parse fails instead of being skipped
            "--format",
            "json",
            *inputs,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def _where(location: dict[str, Any]) -> str:
    key = location["symbolic"]["key"]
    path = key["Local"]["verbatim_path"] if "Local" in key else str(key)
    return f"{path}:{location['concrete']['location']['start_point']['row'] + 1}"


def _serious(findings: list[dict[str, Any]]) -> list[str]:
    """`ident (severity) at file:line` of each finding at medium severity or above."""
    return [
        f"{f['ident']} ({f['determinations']['severity']}) at "
        + ", ".join(_where(loc) for loc in f["locations"] if loc["symbolic"]["kind"] == "Primary")
        for f in findings
        if f["determinations"]["severity"] not in BELOW_MEDIUM
    ]


def _scripts(workflow: dict[Any, Any]) -> list[tuple[str, str]]:
    """(where, script) of every `run:` of every job."""
    return [
        (f"jobs.{job_id}.steps[{index}]", step["run"])
        for job_id, job in workflow.get("jobs", {}).items()
        for index, step in enumerate(job.get("steps", []))
        if "run" in step
    ]


def _input_expansions(path: Path) -> list[str]:
    return [
        f"{path.name} {where}"
        for where, script in _scripts(_load(path))
        if INPUT_EXPANSION.search(script)
    ]


OURS = ("ci.yml", "pr-check.yml", "step-canary.yml")


def test_the_expected_workflows_exist() -> None:
    assert set(OURS) <= {p.name for p in WORKFLOW_FILES}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_matches_the_github_workflow_schema(path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            path,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing_at_medium_severity_or_above() -> None:
    findings = _zizmor(WORKFLOWS)
    assert _serious(findings) == []


def test_zizmor_would_catch_an_input_expanded_in_a_script(tmp_path: Path) -> None:
    # A control: the audits here are not vacuous (zizmor runs, reads workflows, reports, and
    # the test's own scan sees the same mistake).
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "name: bad\n"
        "on:\n"
        "  workflow_dispatch:\n"
        "    inputs:\n"
        "      service: {type: string, required: true}\n"
        "permissions: {}\n"
        "jobs:\n"
        "  bad:\n"
        "    name: bad\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        '      - run: echo "${{ inputs.service }}"\n',  # the mistake the workflows avoid
        encoding="utf-8",
    )
    assert any(f["ident"] == "template-injection" for f in _zizmor(bad.parent))
    assert _input_expansions(bad) == ["bad.yml jobs.bad.steps[0]"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_no_script_expands_a_workflow_input(path: Path) -> None:
    assert _scripts(_load(path)), "no run: steps found; the check would be vacuous"
    assert _input_expansions(path) == []


def test_only_the_step_job_may_write() -> None:
    for name in OURS:
        path = WORKFLOWS / name
        workflow = _load(path)
        top = workflow.get("permissions")
        assert top in ({}, {"contents": "read"}), (path.name, top)
        for job_id, job in workflow["jobs"].items():
            expected = (
                {"contents": "write", "pull-requests": "write"}
                if (path.name, job_id) == ("step-canary.yml", "step")
                else None
            )
            assert job.get("permissions") == expected, (path.name, job_id)


def test_step_canary_passes_its_inputs_through_env() -> None:
    workflow = _load(WORKFLOWS / "step-canary.yml")
    inputs = workflow[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads `on` as true
    assert set(inputs) == {"environment", "service", "weight", "next"}
    assert inputs["weight"]["type"] == "string" and not inputs["weight"].get("required")
    assert inputs["next"]["type"] == "boolean"
    step = next(s for s in workflow["jobs"]["step"]["steps"] if s.get("id") == "step")
    assert step["env"]["ENVIRONMENT"] == "${{ inputs.environment }}"
    assert step["env"]["SERVICE"] == "${{ inputs.service }}"
    job_token = "${{ github.token }}"  # noqa: S105 (an expression: the job's own token)
    assert step["env"]["GH_TOKEN"] == job_token  # for the push
    for part in (
        'step "$ENVIRONMENT" "$SERVICE" "${target[@]}"',
        "target=(--next)",
        'target=(--to "$WEIGHT")',
        '--commit --push origin --pr-body "$RUNNER_TEMP/pr.md"',
    ):
        assert part in step["run"], part
    pr = workflow["jobs"]["step"]["steps"][-1]
    assert pr["env"]["GH_TOKEN"] == job_token
    assert pr["env"]["BRANCH"] == "${{ steps.step.outputs.branch }}"
    assert "gh pr create" in pr["run"] and "gh pr edit" in pr["run"]


def test_checkouts_keep_no_credentials_and_actions_are_pinned_by_sha() -> None:
    for path in WORKFLOW_FILES:
        for job_id, job in _load(path)["jobs"].items():
            for step in job.get("steps", []):
                uses = step.get("uses", "")
                if uses.startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, (path.name, job_id)
                if uses:
                    assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), uses


def test_the_hooks_manifest_loads_with_pre_commit() -> None:
    hooks = {hook["id"]: hook for hook in load_manifest(HOOKS_FILE)}
    assert set(hooks) == {"meshcanary-check", "meshcanary-render"}
    check, render = hooks["meshcanary-check"], hooks["meshcanary-render"]
    assert check["entry"] == "meshcanary check"
    assert render["entry"] == "meshcanary render --check"
    for hook in (check, render):
        assert hook["language"] == "python"
        assert hook["files"] == "^(environments|deploy)/"
        assert hook["description"]
        assert hook["always_run"] is False
    assert check["pass_filenames"] is True and check["require_serial"] is True
    assert render["pass_filenames"] is False
    files = re.compile(check["files"])
    assert files.search("environments/prod/micro-api.yaml")
    assert files.search("deploy/base/micro-api/service.yaml")
    assert not files.search("README.md")
    assert not files.search("docs/environments/x.yaml")
