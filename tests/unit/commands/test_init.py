"""`meshcanary init`: a new repository that renders, builds and checks cleanly, and installs
meshcanary at a commit that exists (or says plainly that it could not tell which one).

The scaffold's workflow is also audited (schema, zizmor, pins, timeouts, pip cache) with this
repository's own workflows in tests/acceptance/test_workflows.py.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pre_commit.clientlib import load_config

import meshcanary
from meshcanary.check import CheckOptions, check
from meshcanary.commands.init import (
    REPOSITORY,
    UNSET,
    Origin,
    find_commit,
    init,
    scaffold,
)
from meshcanary.errors import InputError
from meshcanary.problem import Severity
from meshcanary.render.repository import render
from tests.support import (
    ROOT,
    Outcome,
    by_kind,
    commit_all,
    git,
    isolate_git,
    kustomize_build,
    write,
)

A_COMMIT = "0123456789abcdef0123456789abcdef01234567"
WORKFLOW = ".github/workflows/meshcanary.yml"
OURS = ROOT / ".github" / "workflows"
in_this_checkout = pytest.mark.skipif(
    not (ROOT / ".git").exists() or not Path(meshcanary.__file__).is_relative_to(ROOT),
    reason="meshcanary runs from a git checkout, installed editable",
)


def _pins(root: Path) -> dict[str, str]:
    """The commit each scaffolded file names: the workflow, pre-commit's `rev:`, the README."""
    workflow = yaml.safe_load((root / WORKFLOW).read_text(encoding="utf-8"))
    (install,) = [
        s for s in workflow["jobs"]["check"]["steps"] if "MESHCANARY_REF" in s.get("env", {})
    ]
    config = yaml.safe_load((root / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    (line,) = [line for line in readme.splitlines() if "pip install" in line]
    found = re.search(rf'"meshcanary @ git\+{re.escape(REPOSITORY)}@([^"]+)"', line)
    assert found, line
    assert (
        install["run"]
        .rstrip()
        .endswith(f'python -m pip install "meshcanary @ git+{REPOSITORY}@$MESHCANARY_REF"')
    )
    return {
        "workflow": str(install["env"]["MESHCANARY_REF"]),
        "pre-commit": config["repos"][0]["rev"],
        "readme": found.group(1),
    }


def _copy_of_the_package(to: Path) -> Path:
    package = shutil.copytree(
        ROOT / "gen" / "meshcanary", to, ignore=shutil.ignore_patterns("__pycache__")
    )
    assert (package / "__init__.py").is_file() and (package / "commands" / "init.py").is_file()
    return package


def test_scaffold_renders_builds_and_checks_clean(tmp_path: Path) -> None:
    root = tmp_path / "new"
    written = init(root)
    assert sorted(written) == sorted(
        str(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file()
    )
    assert {
        "environments/dev/environment.yaml",
        "environments/dev/hello.yaml",
        "environments/prod/environment.yaml",
        "environments/prod/hello.yaml",
        "deploy/base/hello/kustomization.yaml",
        "deploy/base/hello/deployment.yaml",
        "deploy/base/hello/service.yaml",
        ".pre-commit-config.yaml",
        ".github/workflows/meshcanary.yml",
        "README.md",
    } <= set(written)

    result = render(root, [])
    assert sorted(e.environment.name for e in result.environments) == ["dev", "prod"]
    assert not render(root, []).stale  # a second render changes nothing
    report = check(root, [], CheckOptions())
    assert [p.format() for p in report.problems] == []

    for env in ("dev", "prod"):
        built = kustomize_build(root / "deploy/overlays" / env / "hello")
        (deployment,) = by_kind(built, "Deployment")
        assert deployment["metadata"]["name"] == "hello-v1"
        assert deployment["metadata"]["namespace"] == env
        assert deployment["spec"]["template"]["metadata"]["labels"] == {
            "app": "hello",
            "version": "v1",
        }
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "registry.example/hello:1.0.0"
        assert container["resources"]["limits"]
        (service,) = by_kind(built, "Service")
        assert service["spec"]["selector"] == {"app": "hello"}
        assert service["spec"]["ports"][0]["name"] == "http"
        (route,) = by_kind(built, "VirtualService")
        assert [d["weight"] for d in route["spec"]["http"][0]["route"]] == [100]


def test_release_files_say_one_version_at_100(tmp_path: Path) -> None:
    init(tmp_path, service="shop", environments=("staging",))
    text = (tmp_path / "environments/staging/shop.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/release.schema.json\n")
    release = yaml.safe_load(text)
    assert release["service"] == "shop"
    assert release["base"] == "deploy/base/shop"
    assert release["versions"] == {
        "v1": {"image": "registry.example/shop:1.0.0", "replicas": 2, "weight": 100}
    }
    # The `$schema` lines point at copies inside the new repository.
    assert (tmp_path / "schemas/release.schema.json").is_file()
    assert (tmp_path / "schemas/environment.schema.json").is_file()


def test_pre_commit_uses_meshcanarys_hooks_at_the_pinned_commit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    init(tmp_path, ref=A_COMMIT)
    with caplog.at_level(logging.WARNING, logger="pre_commit"):
        config = load_config(tmp_path / ".pre-commit-config.yaml")  # pre-commit's own loader
    (repo,) = config["repos"]
    assert repo["repo"] == "https://github.com/meshcanary/meshcanary"
    assert repo["rev"] == A_COMMIT
    assert [h["id"] for h in repo["hooks"]] == ["meshcanary-check", "meshcanary-render"]
    assert caplog.messages == []  # a commit SHA is no "mutable reference"


def test_pre_commit_warns_about_a_commit_left_unset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    init(tmp_path / "repo", origin=Origin(_copy_of_the_package(tmp_path / "meshcanary")))
    with caplog.at_level(logging.WARNING, logger="pre_commit"):
        config = load_config(tmp_path / "repo" / ".pre-commit-config.yaml")
    assert config["repos"][0]["rev"] == UNSET
    assert [m for m in caplog.messages if "mutable reference" in m]


def test_workflow_checks_pull_requests_without_expressions_in_scripts(tmp_path: Path) -> None:
    init(tmp_path, ref=A_COMMIT)
    workflow = yaml.safe_load((tmp_path / WORKFLOW).read_text())
    assert list(workflow[True]) == ["pull_request", "push"]  # YAML 1.1 reads `on` as true
    assert workflow["permissions"] == {"contents": "read"}
    # Expressions only where no shell reads them: a new push replaces the pull request's run.
    assert workflow["concurrency"] == {
        "group": "meshcanary-${{ github.event.pull_request.number || github.ref }}",
        "cancel-in-progress": True,
    }
    (job,) = workflow["jobs"].values()
    assert job["timeout-minutes"] == 15
    steps = job["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert "meshcanary check --format github" in runs
    assert not [r for r in runs if re.search(r"\$\{\{", r)]
    assert not [s for s in steps if "${{" in json.dumps(s.get("env", {}))]
    (checkout,) = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"] == {"persist-credentials": False}
    (setup,) = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
    # Keyed on the workflow itself, which holds MESHCANARY_REF: a new commit, a new cache.
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["cache-dependency-path"] == WORKFLOW
    # The check's records, restored before it and saved after it, under one key.
    restore, save = [s for s in steps if s.get("uses", "").startswith("actions/cache/")]
    assert restore["with"]["path"] == save["with"]["path"] == "~/.cache/meshcanary"
    assert restore["with"]["key"] == save["with"]["key"]
    assert steps.index(restore) < steps.index(next(s for s in steps if s.get("id") == "check"))


def test_the_scaffolds_actions_are_pinned_as_this_repositorys_are(tmp_path: Path) -> None:
    init(tmp_path, ref=A_COMMIT)
    ours = {
        line.strip().removeprefix("- ")
        for path in OURS.glob("*.yml")
        for line in path.read_text(encoding="utf-8").splitlines()
        if "uses:" in line
    }
    scaffolded = [
        line.strip().removeprefix("- ")
        for line in (tmp_path / WORKFLOW).read_text(encoding="utf-8").splitlines()
        if "uses:" in line
    ]
    assert len(scaffolded) == 4
    assert [line for line in scaffolded if line not in ours] == []


def test_a_commit_given_is_written_everywhere_and_nothing_else_is_said(tmp_path: Path) -> None:
    done = scaffold(tmp_path, ref=A_COMMIT.upper())
    assert (done.pin.sha, done.pin.reason, done.notes) == (A_COMMIT, "--ref", [])
    assert set(_pins(tmp_path).values()) == {A_COMMIT}
    everything = "".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file())
    assert UNSET not in everything and "SET ME" not in everything


@pytest.mark.parametrize(
    "ref",
    ["v0.1.0", "main", A_COMMIT[:7], A_COMMIT + "0", A_COMMIT[:-1] + "g", f"{A_COMMIT}\n"],
)
def test_a_ref_that_is_not_a_full_commit_sha_is_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(InputError, match=r"--ref.*is not a full commit SHA") as refused:
        init(tmp_path / "new", ref=ref)
    assert "a tag or a branch can move" in str(refused.value)
    assert not (tmp_path / "new").exists()


@in_this_checkout
def test_an_editable_install_in_this_checkout_pins_its_head(tmp_path: Path) -> None:
    head = git(ROOT, "rev-parse", "HEAD").strip()
    running = Origin.running()
    # The test environment's meshcanary is this checkout's, installed editable: its metadata
    # has no commit (pip records the folder only), so the checkout's HEAD is the answer.
    assert running.package == ROOT / "gen" / "meshcanary"
    assert running.direct_url is None
    assert find_commit(running).sha == head

    done = scaffold(tmp_path)  # the default: the running meshcanary
    assert done.pin.sha == head
    assert done.pin.reason == f"HEAD of the meshcanary checkout at {ROOT}"
    assert set(_pins(tmp_path).values()) == {head}
    (note,) = done.notes
    assert note.severity is Severity.INFO
    assert note.format() == (
        f"{WORKFLOW}:{note.location.line}:{note.location.column}: info: "
        f"pinned meshcanary {head}: HEAD of the meshcanary checkout at {ROOT}"
    )
    line = (tmp_path / WORKFLOW).read_text().splitlines()[note.location.line - 1]
    assert line[note.location.column - 1 :] == head


@in_this_checkout
def test_a_hooks_git_variables_do_not_change_the_commit_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inside a git hook (pre-commit running init, say) GIT_DIR names the hook's repository.
    other = commit_all(write(tmp_path / "other" / "README.md", "other\n").parent)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    head = git(ROOT, "rev-parse", "HEAD").strip()
    assert find_commit(Origin(ROOT / "gen" / "meshcanary")).sha == head


def test_a_copy_without_git_pins_nothing_and_says_so(tmp_path: Path) -> None:
    # What a wheel install or an unpacked sdist looks like from inside: the code, no history.
    package = _copy_of_the_package(tmp_path / "site-packages" / "meshcanary")
    root = tmp_path / "new"
    done = scaffold(root, origin=Origin(package))
    assert done.pin.sha is None
    assert str(package) in done.pin.reason
    assert set(_pins(root).values()) == {UNSET}
    for name in (WORKFLOW, ".pre-commit-config.yaml", "README.md"):
        text = (root / name).read_text(encoding="utf-8")
        assert "`meshcanary init` could not tell which commit it runs from" in text, name
        assert str(tmp_path) not in text, name  # local paths stay out of committed files
    (note,) = done.notes
    assert note.severity is Severity.WARNING
    assert "\n" not in note.format()  # one line
    assert note.format().startswith(f"{WORKFLOW}:{note.location.line}:{note.location.column}: ")
    assert f"replace {UNSET} here, in .pre-commit-config.yaml and in README.md" in note.message
    line = (root / WORKFLOW).read_text().splitlines()[note.location.line - 1]
    assert line.strip() == f"MESHCANARY_REF: {UNSET}"
    assert line[note.location.column - 1 :] == UNSET
    # The placeholder still renders and checks like any scaffold.
    render(root, [])
    assert [p.format() for p in check(root, [], CheckOptions()).problems] == []


def test_a_copy_in_another_repository_counts_only_where_meshcanary_has_it_committed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(tmp_path_factory, monkeypatch)
    repo = commit_all(write(tmp_path / "repo" / "README.md", "someone's repository\n").parent)
    # At meshcanary's place but never committed there: that repository's HEAD is not this code.
    package = _copy_of_the_package(repo / "gen" / "meshcanary")
    assert find_commit(Origin(package)).sha is None
    # Committed at another place (vendored): not a checkout of meshcanary either.
    vendored = _copy_of_the_package(repo / "vendor" / "gen" / "meshcanary")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "vendor meshcanary")
    assert find_commit(Origin(vendored)).sha is None
    # Committed at its place: a checkout of meshcanary (a clone, a fork), pinned at HEAD.
    head = git(repo, "rev-parse", "HEAD").strip()
    pin = find_commit(Origin(package))
    assert (pin.sha, pin.reason) == (head, f"HEAD of the meshcanary checkout at {repo}")


def _direct_url(url: str, commit: str = A_COMMIT, vcs: str = "git") -> str:
    """direct_url.json as pip writes it for `pip install "meshcanary @ git+URL@REF"`."""
    return json.dumps(
        {"url": url, "vcs_info": {"vcs": vcs, "commit_id": commit, "requested_revision": "main"}}
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/meshcanary/meshcanary",
        "https://github.com/meshcanary/meshcanary.git",
        "ssh://git@github.com/meshcanary/meshcanary.git",
        "git@github.com:meshcanary/meshcanary.git",
    ],
)
def test_a_git_install_pins_the_commit_pip_recorded(tmp_path: Path, url: str) -> None:
    package = _copy_of_the_package(tmp_path / "site-packages" / "meshcanary")
    root = tmp_path / "new"
    done = scaffold(root, origin=Origin(package, _direct_url(url)))
    assert (done.pin.sha, done.pin.reason) == (
        A_COMMIT,
        f"the commit pip installed from {REPOSITORY}",
    )
    assert set(_pins(root).values()) == {A_COMMIT}
    assert [n.severity for n in done.notes] == [Severity.INFO]


@in_this_checkout
def test_a_git_install_wins_over_a_checkout_it_sits_in(tmp_path: Path) -> None:
    origin = Origin(ROOT / "gen" / "meshcanary", _direct_url(REPOSITORY))
    assert find_commit(origin).sha == A_COMMIT


@pytest.mark.parametrize(
    ("direct_url", "reason"),
    [
        # Another repository's commit may not exist in meshcanary's; its URL may hold a token.
        (_direct_url("https://x-access-token:s3cret@git.example/meshcanary.git"), "another git"),
        (_direct_url("https://github.com/someone/meshcanary"), "another git"),
        (_direct_url(REPOSITORY, commit=A_COMMIT[:12]), "neither"),
        (_direct_url(REPOSITORY, vcs="hg"), "neither"),
        (json.dumps({"url": "file:///src/meshcanary", "dir_info": {}}), "neither"),  # pip install .
        (json.dumps({"url": "https://files.example/m.whl", "archive_info": {}}), "neither"),
        ("{not json", "neither"),
        ("[]", "neither"),
    ],
)
def test_other_installs_pin_nothing(tmp_path: Path, direct_url: str, reason: str) -> None:
    package = _copy_of_the_package(tmp_path / "site-packages" / "meshcanary")
    root = tmp_path / "new"
    done = scaffold(root, origin=Origin(package, direct_url))
    assert done.pin.sha is None
    assert done.pin.reason.startswith(
        {"another git": "installed from another git repository", "neither": str(package)}[reason]
    )
    assert set(_pins(root).values()) == {UNSET}
    written = "".join(p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file())
    assert "s3cret" not in written and "someone" not in written


@in_this_checkout
def test_the_cli_pins_the_running_commit(cli: Callable[..., Outcome], tmp_path: Path) -> None:
    outcome = cli("init", tmp_path / "new")
    assert outcome.code == 0, outcome.err
    assert set(_pins(tmp_path / "new").values()) == {git(ROOT, "rev-parse", "HEAD").strip()}


def test_readme_tells_the_next_steps(tmp_path: Path) -> None:
    init(tmp_path, service="shop", ref=A_COMMIT)
    readme = (tmp_path / "README.md").read_text()
    for step in ("meshcanary render", "meshcanary check", "pre-commit install", "import"):
        assert step in readme


def test_a_git_folder_is_allowed_anything_else_refused(tmp_path: Path) -> None:
    (tmp_path / "ok" / ".git").mkdir(parents=True)
    assert init(tmp_path / "ok")
    taken = tmp_path / "taken"
    write(taken / "notes.txt", "mine\n")
    with pytest.raises(InputError, match=r"is not empty \(notes\.txt\)"):
        init(taken)
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
    with pytest.raises(InputError, match="not a folder"):
        init(taken / "notes.txt")


def test_names_must_be_dns_labels(tmp_path: Path) -> None:
    with pytest.raises(InputError, match='service "Hello"'):
        init(tmp_path / "a", service="Hello")
    with pytest.raises(InputError, match='environment "prod_eu"'):
        init(tmp_path / "b", environments=("dev", "prod_eu"))
    with pytest.raises(InputError, match="named twice"):
        init(tmp_path / "c", environments=("dev", "dev"))
    assert not any((tmp_path / name).exists() for name in "abc")


def test_init_refuses_a_ref_that_is_not_a_commit(tmp_path: Path, cli) -> None:
    outcome = cli("init", tmp_path / "shop", "--ref", "v0.1.0")
    assert outcome.code == 2
    assert "--ref" in outcome.err
    assert not (tmp_path / "shop").exists() or not any((tmp_path / "shop").iterdir())


def test_init_pins_the_ref_it_is_given(tmp_path: Path, cli) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    outcome = cli("init", tmp_path / "shop", "--ref", sha)
    assert outcome.code == 0, outcome.err
    assert f"rev: {sha}" in (tmp_path / "shop" / ".pre-commit-config.yaml").read_text()
