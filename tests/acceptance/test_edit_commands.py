"""The edit commands end to end: real files, real kustomize, real git and a bare remote."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.render.earlier_layout import to_earlier_layout

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def _git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return done.stdout


def _snapshot(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


def _commit(repo: Path, message: str = "step") -> None:
    """Land the edit so far: each edit is judged against HEAD, as its pull request would be."""
    _git(repo, "commit", "-qam", message)


def _max_step(repo: Path, env: str, points: int) -> None:
    """Set an environment's policy.maxStep (the examples' is 25), and commit it."""
    path = repo / "environments" / env / "environment.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("maxStep: 25", f"maxStep: {points}"), encoding="utf-8")
    _commit(repo, f"{env}: maxStep {points}")


@pytest.fixture
def repo(example_repo: Path, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    _git(example_repo, "init", "-q", "-b", "main")
    _git(example_repo, "config", "user.name", "Test")
    _git(example_repo, "config", "user.email", "test@example.com")
    _git(example_repo, "add", "-A")
    _git(example_repo, "commit", "-qm", "start")
    _git(example_repo, "remote", "add", "origin", str(remote))
    _git(example_repo, "push", "-q", "origin", "main")
    return example_repo


def test_step_next_commits_pushes_and_writes_the_pr(
    repo: Path, cli, tmp_path: Path, monkeypatch
) -> None:
    release = repo / "environments/prod/micro-api.yaml"
    before = release.read_text(encoding="utf-8")
    output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    body = tmp_path / "pr.md"
    outcome = cli(
        "--repo",
        repo,
        "step",
        "prod",
        "micro-api",
        "--next",
        "--commit",
        "--push",
        "origin",
        "--pr-body",
        body,
    )
    assert outcome.code == 0, outcome.err
    assert outcome.out == "prod/micro-api: v2 30% -> 50%\n"
    # Only the two weight scalars of the release file changed, byte for byte.
    assert release.read_text(encoding="utf-8") == before.replace(
        "replicas: 3, weight: 70}", "replicas: 3, weight: 50}"
    ).replace("replicas: 3, weight: 30}", "replicas: 3, weight: 50}")
    branch = "meshcanary/prod/micro-api/v2-50"
    assert _git(repo, "branch", "--show-current").strip() == branch
    assert _git(repo, "log", "-1", "--format=%s").strip() == "prod/micro-api: v2 30% -> 50%"
    files = _git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert files == [
        "deploy/overlays/prod/micro-api/.meshcanary.json",
        "deploy/overlays/prod/micro-api/virtualservice.yaml",
        "environments/prod/micro-api.yaml",
    ]
    assert (
        _git(repo, "ls-remote", "origin", branch).split()[0]
        == _git(repo, "rev-parse", "HEAD").strip()
    )
    text = body.read_text(encoding="utf-8")
    assert "| v2 | 30% → 50% |" in text
    assert text.count("```mermaid") == 2
    assert "meshcanary set-weights prod micro-api v1=70 v2=30" in text
    lines = output.read_text(encoding="utf-8")
    assert f"branch={branch}\n" in lines
    assert f"body-file={body}\n" in lines
    assert cli("--repo", repo, "render", "--check").code == 0


def test_dry_run_prints_the_diff_and_writes_nothing(repo: Path, cli) -> None:
    before = _snapshot(repo)
    outcome = cli("--repo", repo, "set-weights", "prod", "micro-api", "v1=50", "v2=50", "--dry-run")
    assert outcome.code == 0
    assert (
        "-  v1: {image: registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.1, replicas: 3, weight: 70}"
        in outcome.out
    )
    assert "+      weight: 50" in outcome.out
    assert _snapshot(repo) == before


def test_weights_that_do_not_sum_to_100_change_nothing(repo: Path, cli) -> None:
    before = _snapshot(repo)
    outcome = cli("--repo", repo, "set-weights", "prod", "micro-api", "v1=40", "v2=40")
    assert outcome.code == 2
    assert "100" in outcome.err
    assert _snapshot(repo) == before


def test_a_failing_check_writes_nothing(repo: Path, cli) -> None:
    release = repo / "environments/prod/checkout.yaml"
    release.write_text(
        release.read_text(encoding="utf-8").replace(
            "replicas: 1, weight: 0}", "replicas: 0, weight: 0}"
        ),
        encoding="utf-8",
    )
    assert cli("--repo", repo, "render").code == 0
    _git(repo, "commit", "-qam", "scale v2 to zero")
    before = _snapshot(repo)
    outcome = cli("--repo", repo, "step", "prod", "checkout", "--to", "5", "--commit")
    assert outcome.code == 1
    assert "weight-without-replicas" in outcome.err
    assert "nothing written" in outcome.err
    assert _snapshot(repo) == before
    assert _git(repo, "branch", "--show-current").strip() == "main"


def test_dirty_release_file_is_refused_before_anything_changes(repo: Path, cli) -> None:
    release = repo / "environments/prod/micro-api.yaml"
    release.write_text(release.read_text(encoding="utf-8") + "# a note\n", encoding="utf-8")
    before = _snapshot(repo)
    outcome = cli("--repo", repo, "step", "prod", "micro-api", "--to", "40", "--commit")
    assert outcome.code == 2
    assert "uncommitted changes" in outcome.err
    assert _snapshot(repo) == before


def test_rejected_push_keeps_the_local_branch(repo: Path, cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(
        ["git", "clone", "-q", str(tmp_path / "remote.git"), str(other)],
        check=True,
        env={**os.environ, **IDENTITY},
    )
    _git(other, "switch", "-q", "-c", "meshcanary/prod/micro-api/v2-40")
    (other / "README.md").write_text("someone else\n", encoding="utf-8")
    _git(other, "add", "README.md")
    subprocess.run(
        ["git", "-C", str(other), "commit", "-qm", "theirs"],
        check=True,
        env={**os.environ, **IDENTITY},
    )
    _git(other, "push", "-q", "origin", "meshcanary/prod/micro-api/v2-40")
    outcome = cli(
        "--repo", repo, "step", "prod", "micro-api", "--to", "40", "--commit", "--push", "origin"
    )
    assert outcome.code == 2
    assert "never" in outcome.err.lower() or "refused" in outcome.err
    assert (
        _git(repo, "log", "-1", "--format=%s", "meshcanary/prod/micro-api/v2-40").strip()
        == "prod/micro-api: v2 30% -> 40%"
    )


def test_promote_rollback_start_and_retire(repo: Path, cli) -> None:
    # 50% -> 100% in one change is more than staging's maxStep (25): refused, nothing written.
    refused = cli("--repo", repo, "promote", "staging", "micro-api")
    assert refused.code == 1
    assert "v2 moves from 50% to 100% since HEAD: 50 points" in refused.err
    assert cli("--repo", repo, "step", "staging", "micro-api", "--next").code == 0  # 75%
    _commit(repo)
    assert cli("--repo", repo, "promote", "staging", "micro-api").code == 0
    text = (repo / "environments/staging/micro-api.yaml").read_text(encoding="utf-8")
    assert (
        "micro-api:1.1, replicas: 2, weight: 0}" in text
        and "micro-api:1.3, replicas: 2, weight: 100}" in text
    )
    assert cli("--repo", repo, "rollback", "staging", "micro-api").code == 0
    text = (repo / "environments/staging/micro-api.yaml").read_text(encoding="utf-8")
    assert (
        "micro-api:1.1, replicas: 2, weight: 100}" in text
        and "micro-api:1.3, replicas: 2, weight: 0}" in text
    )
    started = cli(
        "--repo",
        repo,
        "start",
        "staging",
        "micro-api",
        "v3",
        "--image",
        "registry.example/micro-api:1.4",
    )
    assert started.code == 0, started.err
    text = (repo / "environments/staging/micro-api.yaml").read_text(encoding="utf-8")
    assert text.endswith("  v3: {image: registry.example/micro-api:1.4, replicas: 2, weight: 0}\n")
    assert (repo / "deploy/overlays/staging/micro-api/v3/kustomization.yaml").is_file()
    refused = cli("--repo", repo, "retire", "staging", "micro-api", "v1")
    assert refused.code == 2
    assert "100% of the traffic" in refused.err
    assert cli("--repo", repo, "retire", "staging", "micro-api", "v3").code == 0
    assert not (repo / "deploy/overlays/staging/micro-api/v3").exists()
    assert cli("--repo", repo, "check").code == 0


def test_unknown_service_and_missing_step_are_exit_2(repo: Path, cli) -> None:
    assert cli("--repo", repo, "step", "prod", "nope", "--next").code == 2
    assert cli("--repo", repo, "step", "prod", "micro-api").code == 2
    assert (
        cli("--repo", repo, "step", "prod", "micro-api", "--to", "40", "--push", "origin").code == 2
    )


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("micro-apii", 'did you mean "micro-api"?'),
        ("../../../etc/passwd", "services: checkout, micro-api"),
        ("/etc/passwd", "services: checkout, micro-api"),
    ],
)
def test_a_service_name_is_only_ever_a_release_of_the_environment(
    repo: Path, cli, name: str, hint: str
) -> None:
    before = _snapshot(repo)
    outcome = cli("--repo", repo, "set-weights", "prod", name, "v1=50", "v2=50")
    assert outcome.code == 2
    assert outcome.err.splitlines() == [
        f'error: no release "{name}" in environments/prod/',
        f"  hint: {hint}",
    ]
    assert _snapshot(repo) == before


def test_an_edit_copies_only_its_service_to_check_it(repo: Path, cli, monkeypatch) -> None:
    from meshcanary.commands import edit as command

    copied: list[str] = []
    real = command._scratch

    def recorded(root: Path, release, target: Path) -> None:
        real(root, release, target)
        copied.extend(
            p.relative_to(target).as_posix()
            for p in target.rglob("*.yaml")
            if "environments" in p.parts
        )

    monkeypatch.setattr(command, "_scratch", recorded)
    assert cli("--repo", repo, "set-weights", "prod", "micro-api", "v1=60", "v2=40").code == 0
    assert sorted(copied) == [
        "environments/prod/environment.yaml",
        "environments/prod/micro-api.yaml",
    ]
    assert cli("--repo", repo, "check").code == 0


# --- issue 12: what a terminal user reads --------------------------------------------------


def test_start_and_retire_commits_say_what_happened(repo: Path, cli, tmp_path: Path) -> None:
    """Their commit messages said "weights unchanged", and start's PR body had no image."""
    title, body = tmp_path / "title.txt", tmp_path / "body.md"
    image = "registry.example/micro-api:1.4"
    started = cli(
        "--repo", repo, "start", "prod", "micro-api", "v3", "--image", image,
        "--commit", "--pr-title", title, "--pr-body", body,
    )  # fmt: skip
    assert started.code == 0, started.err
    message = f"prod/micro-api: start v3 at 0% (image {image})"
    assert started.out == message + "\n"
    assert _git(repo, "log", "-1", "--format=%s").strip() == message
    assert title.read_text(encoding="utf-8") == "prod/micro-api: v3 added at 0%\n"
    text = body.read_text(encoding="utf-8")
    assert f"| v3 | new → 0% | `{image}` |" in text
    assert text.endswith(
        "Revert this pull request, or run `meshcanary retire prod micro-api v3`.\n"
    )

    # dev's v2 has all the traffic: v1 can go. The edit starts again from main.
    retired = cli(
        "--repo", repo, "retire", "dev", "micro-api", "v1",
        "--commit", "--pr-title", title, "--pr-body", body,
    )  # fmt: skip
    assert retired.code == 0, retired.err
    assert retired.out == "dev/micro-api: retire v1\n"
    assert _git(repo, "log", "-1", "--format=%s").strip() == "dev/micro-api: retire v1"
    assert _git(repo, "log", "-1", "--format=%P").strip() == _git(repo, "rev-parse", "main").strip()
    assert title.read_text(encoding="utf-8") == "dev/micro-api: v1 removed\n"
    text = body.read_text(encoding="utf-8")
    assert "| v1 | 0% → removed |" in text
    assert text.endswith(
        "Revert this pull request.\n"
        "Only reverting the pull request brings back v1, which this change removes.\n"
    )


def test_a_push_says_where_it_went(repo: Path, cli) -> None:
    outcome = cli(
        "--repo", repo, "step", "prod", "micro-api", "--next", "--commit", "--push", "origin"
    )
    assert outcome.code == 0, outcome.err
    branch = "meshcanary/prod/micro-api/v2-50"
    sha = _git(repo, "rev-parse", "HEAD").strip()
    assert outcome.err.splitlines() == [
        f"committed {sha[:12]} on {branch} (from main)",
        f"pushed {branch} to origin",
    ]
    assert _git(repo, "ls-remote", "origin", branch).split()[0] == sha


def test_a_failed_push_says_which_branch_holds_the_commit(repo: Path, cli, tmp_path: Path) -> None:
    _git(repo, "remote", "add", "gone", str(tmp_path / "no-such-remote.git"))
    body = tmp_path / "body.md"
    outcome = cli(
        "--repo", repo, "step", "prod", "micro-api", "--next",
        "--commit", "--push", "gone", "--pr-body", body,
    )  # fmt: skip
    assert outcome.code == 2
    branch = "meshcanary/prod/micro-api/v2-50"
    sha = _git(repo, "rev-parse", "HEAD").strip()
    error, hint = outcome.err.splitlines()
    assert error.startswith(f"error: cannot push {branch} to gone: ")
    assert hint.startswith(
        f"  hint: the edit is committed as {sha[:12]} on {branch} (from main), which is "
        "checked out; "
    )
    assert f"`git push -u gone {branch}`" in hint
    assert _git(repo, "branch", "--show-current").strip() == branch
    # The pull request's text is there for when the branch is pushed by hand.
    assert "| v2 | 30% → 50% |" in body.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--push", "origin"], "--push needs --commit"),
        (["--pr-body", "{tmp}/body.md"], "--pr-body needs --commit"),
        (["--pr-title", "{tmp}/title.txt"], "--pr-title needs --commit"),
        (["--branch", "mine"], "--branch needs --commit"),
        (
            ["--pr-title", "{tmp}/title.txt", "--pr-body", "{tmp}/body.md"],
            "--pr-title and --pr-body need --commit",
        ),
    ],
)
def test_git_options_without_commit_are_refused_before_anything_is_written(
    repo: Path, cli, tmp_path: Path, options: list[str], said: str
) -> None:
    """--pr-body without --commit wrote the edit and no body: refused like --push is."""
    before = _snapshot(repo)
    given = [option.format(tmp=tmp_path) for option in options]
    outcome = cli("--repo", repo, "step", "prod", "micro-api", "--to", "40", *given)
    assert outcome.code == 2
    assert outcome.err == f"error: {said}\n"
    assert outcome.out == ""
    assert _snapshot(repo) == before
    assert not (tmp_path / "body.md").exists() and not (tmp_path / "title.txt").exists()


def test_a_three_version_rollout_says_where_the_traffic_goes_and_its_advice_works(
    repo: Path, cli
) -> None:
    """staging/checkout runs v1 60%, v2 30%, v3 10%: each step says which version keeps the
    rest; where a step cannot go, its advice (promote, then retire) is a command that works.
    (Promote moves v3 from 50% to 100%: more than the examples' maxStep of 25, so it is raised
    here; the weight-step check has tests of its own.)"""
    where = ("--repo", repo)
    _max_step(repo, "staging", 100)
    first = cli(*where, "step", "staging", "checkout", "--next")
    assert first.code == 0, first.err
    assert first.out == (
        "staging/checkout: v3 10% -> 25%; v1 (stable) keeps the rest, 60% -> 45%; v2 stays at 30%\n"
    )
    assert cli(*where, "step", "staging", "checkout", "--next").code == 0  # v3 at 50%
    blocked = cli(*where, "step", "staging", "checkout", "--next")
    assert blocked.code == 2
    # The plan's next step, 75%, would leave v2 less than it has: lower it, or promote v3.
    assert blocked.err.endswith(
        "v3 at 75% would leave 25% for the other versions, but v2 already takes 30%; "
        "lower it first, or give v3 at most 70%\n"
    )
    promoted = cli(*where, "promote", "staging", "checkout")
    assert promoted.code == 0, promoted.err
    assert promoted.out == "staging/checkout: v1 20% -> 0%, v2 30% -> 0%, v3 50% -> 100%\n"
    done = cli(*where, "step", "staging", "checkout", "--next")
    assert done.code == 2
    assert "promote" not in done.err
    assert done.err.endswith(
        "the rollout is done: retire the old versions with "
        "`meshcanary retire staging checkout v1` and `meshcanary retire staging checkout v2`\n"
    )
    again = cli(*where, "promote", "staging", "checkout")
    assert again.code == 2
    assert "nothing to promote; retire the old versions with" in again.err
    for version in ("v1", "v2"):
        retired = cli(*where, "retire", "staging", "checkout", version)
        assert retired.code == 0, retired.err
        assert retired.out == f"staging/checkout: retire {version}\n"
    assert cli(*where, "render", "--check").code == 0


def test_promote_works_where_step_advises_it(repo: Path, cli) -> None:
    """At the last step of a plan that stops short of 100%, step says "promote it"."""
    _max_step(repo, "prod", 50)
    release = repo / "environments/prod/micro-api.yaml"
    release.write_text(
        release.read_text(encoding="utf-8").replace(
            "versions:\n", "canary: {steps: [10, 25, 50]}\nversions:\n"
        ),
        encoding="utf-8",
    )
    assert cli("--repo", repo, "step", "prod", "micro-api", "--next").code == 0  # v2 at 50%
    _commit(repo)
    advised = cli("--repo", repo, "step", "prod", "micro-api", "--next")
    assert advised.code == 2
    assert "at or past the last step of the plan (10, 25, 50); promote it" in advised.err
    promoted = cli("--repo", repo, "promote", "prod", "micro-api")
    assert promoted.code == 0, promoted.err
    assert promoted.out == "prod/micro-api: v2 50% -> 100%\n"


def test_edits_of_a_release_using_every_routing_field(repo: Path, cli) -> None:
    from tests.support.routing import EVERY_ROUTE_FIELD, RELEASE, install

    install(repo)
    _commit(repo, "checkout: every routing field")
    _max_step(repo, "staging", 100)
    path = repo / RELEASE
    routing = EVERY_ROUTE_FIELD[: EVERY_ROUTE_FIELD.index("versions:")]

    def changed_lines(before: str) -> list[str]:
        after = path.read_text(encoding="utf-8")
        assert after.startswith(routing), "an edit changed the routing fields"
        return [b for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b]

    before = path.read_text(encoding="utf-8")
    assert cli("--repo", repo, "step", "staging", "checkout", "--next").code == 0
    # A weight change touches only weight lines: v1 and v3, 60/10 -> 45/25.
    assert changed_lines(before) == [
        "  v1: {image: registry.example/shop/checkout:2.4.1, replicas: 2, weight: 45}",
        "  v3: {image: registry.example/shop/checkout:2.6.0-rc.1, replicas: 1, weight: 25}",
    ]
    _commit(repo)
    for command in (["promote"], ["rollback"], ["set-weights", "v1=70", "v2=30"]):
        before = path.read_text(encoding="utf-8")
        outcome = cli("--repo", repo, *command[:1], "staging", "checkout", *command[1:])
        assert outcome.code == 0, (command, outcome.err)
        assert all("weight:" in line for line in changed_lines(before)), command
        _commit(repo)
    # v3 has no traffic now, but the pin "rc" still sends requests to it.
    refused = cli("--repo", repo, "retire", "staging", "checkout", "v3")
    assert refused.code == 2
    assert 'version "v3" is still named by match rule 1 ("rc")' in refused.err
    started = cli(
        "--repo", repo, "start", "staging", "checkout", "v4", "--image", "registry.example/c:3"
    )
    assert started.code == 0, started.err
    _commit(repo)
    assert cli("--repo", repo, "retire", "staging", "checkout", "v4").code == 0
    assert path.read_text(encoding="utf-8").startswith(routing)
    rendered = (repo / "deploy/overlays/staging/checkout/virtualservice.yaml").read_text("utf-8")
    assert "sniHosts:" in rendered and "ignoreUriCase: true" in rendered
    assert cli("--repo", repo, "check").code == 0


# --- issue 16: an edit writes its service's folder alone -----------------------------------


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file and folder under `folder`: its inode, and a file's time stamp (a swap puts
    new ones in place; a folder's own time stamp changes with any entry in it)."""
    return {
        p.relative_to(folder).as_posix(): (
            p.stat().st_ino,
            0 if p.is_dir() else p.stat().st_mtime_ns,
        )
        for p in [folder, *sorted(folder.rglob("*"))]
    }


def test_an_edit_swaps_its_service_folder_alone(repo: Path, cli) -> None:
    overlays = repo / "deploy/overlays"
    before = _stamps(overlays)
    outcome = cli("--repo", repo, "set-weights", "prod", "micro-api", "v1=60", "v2=40")
    assert outcome.code == 0, outcome.err
    after = _stamps(overlays)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    # The service's folder was swapped in whole: every entry in it is new, nothing outside is.
    assert changed == sorted(p for p in before if p.startswith("prod/micro-api")), changed
    assert sorted(_git(repo, "status", "--porcelain").splitlines()) == [
        " M deploy/overlays/prod/micro-api/.meshcanary.json",
        " M deploy/overlays/prod/micro-api/virtualservice.yaml",
        " M environments/prod/micro-api.yaml",
    ]
    assert cli("--repo", repo, "render", "--check").code == 0


def test_an_edit_of_a_tree_in_the_earlier_layout_moves_the_hashes_and_nothing_else(
    repo: Path, cli
) -> None:
    """A repository rendered before hash files per service folder: the first edit writes the
    whole environment, its commit moves the environment's hashes into its service folders,
    and the tree is then fresh."""
    to_earlier_layout(repo / "deploy/overlays")
    _commit(repo, "rendered by the earlier version")
    outcome = cli("--repo", repo, "set-weights", "prod", "micro-api", "v1=60", "v2=40", "--commit")
    assert outcome.code == 0, outcome.err
    files = _git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert files == [
        "deploy/overlays/prod/.meshcanary.json",
        "deploy/overlays/prod/checkout/.meshcanary.json",
        "deploy/overlays/prod/micro-api/.meshcanary.json",
        "deploy/overlays/prod/micro-api/virtualservice.yaml",
        "environments/prod/micro-api.yaml",
    ]
    assert _git(repo, "status", "--porcelain") == ""
    assert cli("--repo", repo, "render", "--check").code == 0


def test_an_edit_renders_the_whole_environment_when_its_service_list_changed(
    repo: Path, cli
) -> None:
    """A release file removed without a render: the environment's kustomization.yaml would
    change too, so the edit renders the environment whole, as `render` would."""
    _git(repo, "rm", "-q", "environments/prod/checkout.yaml")
    _commit(repo, "checkout leaves prod")
    outcome = cli("--repo", repo, "set-weights", "prod", "micro-api", "v1=60", "v2=40")
    assert outcome.code == 0, outcome.err
    assert not (repo / "deploy/overlays/prod/checkout").exists()
    kustomization = (repo / "deploy/overlays/prod/kustomization.yaml").read_text("utf-8")
    assert "checkout" not in kustomization
    assert cli("--repo", repo, "render", "--check").code == 0
