"""The GitHub workflows and the pre-commit hooks manifest, checked offline.

Every workflow, this repository's and the one `meshcanary init` writes (with a commit pinned
and with none to be found), validates against the GitHub workflow schema vendored in
check-jsonschema, zizmor (offline audits) reports nothing at medium severity or above, no
`run:` script expands a workflow input with `${{ }}` (template injection: inputs reach shells
through `env:`), actions are pinned by commit SHA, every job has a timeout and pip is cached.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pre_commit.clientlib import load_manifest

from meshcanary.commands.init import Origin, init
from meshcanary.render.repository import render as render_overlays
from tests.support import ROOT, commit_all, git

BIN = Path(sys.executable).parent
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.y*ml"))
HOOKS_FILE = ROOT / ".pre-commit-hooks.yaml"
# `${{ inputs.x }}` or `${{ github.event.inputs.x }}` (any spacing) inside a script.
INPUT_EXPANSION = re.compile(r"\$\{\{\s*(github\.event\.)?inputs\.")
BELOW_MEDIUM = {"Unknown", "Informational", "Low"}
SCAFFOLDS = ("scaffold-pinned", "scaffold-unset")
# What `init --ref` would be given: any full SHA (the tests here read the files, not GitHub).
A_COMMIT = "0123456789abcdef0123456789abcdef01234567"
# `uses: owner/repo[/path]@<40 hex> # <version>`: the version comment is part of the pin.
PINNED_USES = re.compile(r"^\s*(- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Repositories `meshcanary init` wrote: one with a commit given, one with none found."""
    pinned = tmp_path_factory.mktemp("pinned") / "repo"
    init(pinned, ref=A_COMMIT)
    unset = tmp_path_factory.mktemp("unset") / "repo"
    init(unset, origin=Origin(tmp_path_factory.mktemp("not-a-checkout")))
    return {SCAFFOLDS[0]: pinned, SCAFFOLDS[1]: unset}


@pytest.fixture(params=[*(p.name for p in WORKFLOW_FILES), *SCAFFOLDS])
def workflow(request: pytest.FixtureRequest, scaffolded: dict[str, Path]) -> tuple[Path, Path]:
    """(file, repository root) of each of this repository's workflows and each scaffolded one."""
    if request.param in scaffolded:
        root = scaffolded[request.param]
        return root / ".github/workflows/meshcanary.yml", root
    return WORKFLOWS / request.param, ROOT


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


def test_workflow_matches_the_github_workflow_schema(workflow: tuple[Path, Path]) -> None:
    path, _ = workflow
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


def test_zizmor_finds_nothing_at_medium_severity_or_above(scaffolded: dict[str, Path]) -> None:
    findings = _zizmor(WORKFLOWS, *(root / ".github/workflows" for root in scaffolded.values()))
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


def test_no_script_expands_a_workflow_input(workflow: tuple[Path, Path]) -> None:
    path, _ = workflow
    assert _scripts(_load(path)), "no run: steps found; the check would be vacuous"
    assert _input_expansions(path) == []


def test_only_the_step_job_may_write() -> None:
    for name in OURS:
        path = WORKFLOWS / name
        workflow = _load(path)
        top = workflow.get("permissions")
        assert top in ({}, {"contents": "read"}), (path.name, top)
        for job_id, job in workflow["jobs"].items():
            expected = {
                ("step-canary.yml", "step"): {"contents": "write", "pull-requests": "write"},
                ("pr-check.yml", "check"): {"contents": "read", "security-events": "write"},
            }.get((path.name, job_id))
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


def test_checkouts_keep_no_credentials_and_actions_are_pinned_by_sha(
    workflow: tuple[Path, Path],
) -> None:
    path, _ = workflow
    uses = [s["uses"] for job in _load(path)["jobs"].values() for s in job["steps"] if "uses" in s]
    assert uses, "no uses: steps found; the check would be vacuous"
    for job_id, job in _load(path)["jobs"].items():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, (path.name, job_id)
    # By the text: the version comment a SHA pin carries is no part of the parsed YAML.
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if "uses:" in line]
    assert len(lines) == len(uses)
    assert [line for line in lines if not PINNED_USES.match(line)] == []


def test_every_job_has_a_timeout(workflow: tuple[Path, Path]) -> None:
    path, _ = workflow
    for job_id, job in _load(path)["jobs"].items():
        minutes = job.get("timeout-minutes")
        assert isinstance(minutes, int) and 0 < minutes <= 60, (path.name, job_id, minutes)


def test_pip_is_cached_on_a_file_of_the_repository(workflow: tuple[Path, Path]) -> None:
    path, root = workflow
    setups = [
        step
        for job in _load(path)["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/setup-python@")
    ]
    assert setups, "no setup-python step; the check would be vacuous"
    for step in setups:
        assert step["with"]["cache"] == "pip", path.name
        # setup-python fails the job when the key's file is missing after the checkout.
        assert (root / step["with"]["cache-dependency-path"]).is_file(), path.name


def _step(path: Path, job_id: str, name: str) -> dict[str, Any]:
    (step,) = [s for s in _load(path)["jobs"][job_id]["steps"] if s.get("name") == name]
    return step


def test_pr_check_uploads_its_sarif_report_even_when_the_check_fails() -> None:
    path = WORKFLOWS / "pr-check.yml"
    steps = _load(path)["jobs"]["check"]["steps"]
    names = [s.get("name") for s in steps]
    check, report = _step(path, "check", "meshcanary check"), _step(path, "check", "SARIF report")
    upload = _step(path, "check", "Upload the SARIF report to code scanning")
    assert names.index(check["name"]) < names.index(report["name"]) < names.index(upload["name"])
    assert check["run"].endswith("check --base HEAD^1 --format github") and "if" not in check
    assert 'check --base HEAD^1 --format sarif > "$RUNNER_TEMP/meshcanary.sarif"' in report["run"]
    # After a failed step a step runs only with a status function in its `if:`; `!cancelled()`
    # rather than `always()`, so that a cancelled run stops.
    assert report["if"].startswith("${{ !cancelled() && steps.install.outcome == 'success'")
    assert upload["if"].startswith("${{ !cancelled() && steps.sarif.outcome == 'success'")
    # A fork's token cannot write security events: there the upload is skipped, not failed.
    assert "github.event.pull_request.head.repo.full_name == github.repository" in upload["if"]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["with"] == {
        "sarif_file": "${{ runner.temp }}/meshcanary.sarif",
        "category": "meshcanary",
    }


def _run_step(script: str, repo: Path, runner_temp: Path) -> subprocess.CompletedProcess[str]:
    """`script` as the runner runs a `run:` without `shell:` (`bash -e`), in `repo`."""
    env = {"PATH": os.environ["PATH"], "HOME": str(runner_temp), "RUNNER_TEMP": str(runner_temp)}
    env["MESHCANARY_CACHE_DIR"] = os.environ["MESHCANARY_CACHE_DIR"]
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_pr_checks_sarif_step_passes_on_findings_and_fails_on_bad_input(tmp_path: Path) -> None:
    script = _step(WORKFLOWS / "pr-check.yml", "check", "SARIF report")["run"]
    runner_temp = tmp_path / "runner"
    (runner_temp / "venv" / "bin").mkdir(parents=True)
    (runner_temp / "venv" / "bin" / "meshcanary").symlink_to(BIN / "meshcanary")
    sarif = runner_temp / "meshcanary.sarif"
    repo = tmp_path / "repo"
    init(repo, ref=A_COMMIT)
    # A pull request's merge commit and its first parent, the base branch (fetch-depth: 2).
    commit_all(repo, "base")
    git(repo, "commit", "--allow-empty", "-qm", "merge")

    # Not rendered yet: findings (meshcanary exits 1), reported, and the step passes.
    done = _run_step(script, repo, runner_temp)
    assert done.returncode == 0, done.stderr
    results = json.loads(sarif.read_text(encoding="utf-8"))["runs"][0]["results"]
    assert results and all(r["locations"] for r in results)

    render_overlays(repo, [])
    done = _run_step(script, repo, runner_temp)
    assert done.returncode == 0, done.stderr
    assert json.loads(sarif.read_text(encoding="utf-8"))["runs"][0]["results"] == []

    # Bad input (exit 2) fails the step, and so skips the upload: there is no report to send.
    release = repo / "environments/dev/hello.yaml"
    release.write_text(release.read_text().replace("weight: 100", "weight: 90"))
    done = _run_step(script, repo, runner_temp)
    assert done.returncode != 0
    assert "weights sum to 90" in done.stderr


def test_the_scaffolds_install_step_refuses_a_commit_left_unset(
    scaffolded: dict[str, Path], tmp_path: Path
) -> None:
    path = scaffolded["scaffold-unset"] / ".github/workflows/meshcanary.yml"
    step = _step(path, "check", "Install meshcanary")
    env = {"PATH": os.environ["PATH"], "MESHCANARY_REF": step["env"]["MESHCANARY_REF"]}
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Before pip runs: the job fails with an annotation that says what to set.
    assert done.returncode == 1
    assert done.stdout.startswith(
        "::error file=.github/workflows/meshcanary.yml::set MESHCANARY_REF"
    )


def test_the_hooks_manifest_loads_with_pre_commit() -> None:
    hooks = {hook["id"]: hook for hook in load_manifest(HOOKS_FILE)}
    assert set(hooks) == {"meshcanary-check", "meshcanary-render"}
    check, render = hooks["meshcanary-check"], hooks["meshcanary-render"]
    # `--staged` adds what git has staged, deletions included: a commit that deletes a release
    # file passes pre-commit no file, so the check runs always and finds its own.
    assert check["entry"] == "meshcanary check --staged"
    assert check["files"] == "^(environments|deploy|policies)/"
    assert check["always_run"] is True
    assert render["entry"] == "meshcanary render --check"
    assert render["files"] == "^(environments|deploy)/"
    assert render["always_run"] is False
    for hook in (check, render):
        assert hook["language"] == "python"
        assert hook["description"]
    assert check["pass_filenames"] is True and check["require_serial"] is True
    assert render["pass_filenames"] is False
    files = re.compile(check["files"])
    assert files.search("environments/prod/micro-api.yaml")
    assert files.search("deploy/base/micro-api/service.yaml")
    assert files.search("policies/replicas.yaml")
    assert not files.search("README.md")
    assert not files.search("docs/environments/x.yaml")
