"""`migrate ENV --to gateway-api|istio`: one environment's routing API switched in one change,
with real kustomize, real git and a bare remote; refused, with nothing written, where the
release files say what the other API has no place for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import commit_all, git

DEV = "environments/dev/environment.yaml"


def _snapshot(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


@pytest.fixture
def repo(example_repo: Path, tmp_path: Path) -> Path:
    """The examples, committed on main and pushed to a bare remote, origin."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    commit_all(example_repo)
    git(example_repo, "remote", "add", "origin", str(remote))
    git(example_repo, "push", "-q", "origin", "main")
    return example_repo


def test_an_environment_moves_to_the_gateway_api_in_one_commit(
    repo: Path, cli, tmp_path: Path
) -> None:
    before = (repo / DEV).read_text(encoding="utf-8")
    body = tmp_path / "body.md"

    done = cli(
        "--repo", repo, "migrate", "dev", "--to", "gateway-api",
        "--commit", "--push", "origin", "--pr-body", body,
    )  # fmt: skip

    assert done.code == 0, done.err
    assert done.out == "dev: routing istio -> gateway-api\n"
    # One line added to the environment file, its comments and layout as they were.
    after = (repo / DEV).read_text(encoding="utf-8")
    assert after.replace("routing: gateway-api\n", "", 1) == before
    assert "istioApiVersion: networking.istio.io/v1\nrouting: gateway-api\n" in after
    assert cli("--repo", repo, "render", "--check").code == 0
    assert cli("--repo", repo, "check", "--no-cache").code == 0
    assert (repo / "deploy/overlays/dev/micro-api/routes.yaml").is_file()
    assert not (repo / "deploy/overlays/dev/micro-api/virtualservice.yaml").exists()
    # Committed on a branch of its own, pushed; the work tree is clean.
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    assert branch == "meshcanary/dev/routing/gateway-api"
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "ls-remote", "origin", branch).strip()
    changed = git(repo, "diff", "--name-only", "main", branch).split()
    assert DEV in changed
    assert all(p == DEV or p.startswith("deploy/overlays/dev/") for p in changed)
    # The body says what appears and what disappears.
    text = body.read_text(encoding="utf-8")
    added = text.split("Objects added")[1].split("Objects removed")[0]
    removed = text.split("Objects removed")[1]
    assert "`HTTPRoute micro-api (gateway.networking.k8s.io/v1)`" in added
    assert "`Service micro-api-v2 (v1)`" in added
    assert "`Gateway micro-gateway (gateway.networking.k8s.io/v1)`" in added
    assert "`VirtualService micro-api (networking.istio.io/v1)`" in removed
    assert "`Gateway micro-gateway (networking.istio.io/v1)`" in removed
    assert "Deployment" not in text  # the workloads stay as they are
    # The traffic: every request routed as before, but for in-mesh calls to the ingress host.
    traffic = text.split("Traffic")[1].split("Objects added")[0]
    assert [line for line in traffic.splitlines() if line.startswith("- ")] == [
        "- `http api.dev.example.com via mesh` is not routed any more (an in-mesh Gateway API "
        "route binds to its Service's own name)"
    ]
    assert "traffic: http api.dev.example.com via mesh is not routed any more" in done.err


def test_the_body_names_requests_that_would_reach_something_else(repo: Path, cli, tmp_path) -> None:
    """A pin after a prefix condition: Istio's `prefix: /api` takes /apix, the Gateway API's
    PathPrefix does not; the body says which route changes, before the review."""
    release = repo / "environments/dev/micro-api.yaml"
    text = release.read_text(encoding="utf-8")
    release.write_text(
        text.replace(
            "gateways: [micro-gateway, mesh]\n",
            "gateways: [mesh]\nrequests:\n  - uri: {prefix: /api}\n",
        ),
        encoding="utf-8",
    )
    assert cli("--repo", repo, "-q", "render", "dev").code == 0
    git(repo, "commit", "-qam", "micro-api serves /api")
    body = tmp_path / "body.md"
    done = cli(
        "--repo", repo, "migrate", "dev", "--to", "gateway-api", "--commit", "--pr-body", body
    )
    assert done.code == 0, done.err
    lines = [
        line
        for line in body.read_text(encoding="utf-8").split("Objects added")[0].splitlines()
        if line.startswith("- ")
    ]
    assert lines == [
        "- `http api.dev.example.com via mesh` is not routed any more (an in-mesh Gateway API "
        "route binds to its Service's own name)",
        "- `http micro-api.micro-dev.svc.cluster.local via mesh`: a request to /apix reaches "
        "something else",
    ]


def test_a_dry_run_shows_the_change_and_writes_nothing(repo: Path, cli) -> None:
    before = _snapshot(repo)
    done = cli("--repo", repo, "migrate", "dev", "--to", "gateway-api", "--dry-run")
    assert done.code == 0, done.err
    assert "+routing: gateway-api" in done.out
    assert "+++ b/deploy/overlays/dev/micro-api/routes.yaml" in done.out
    assert _snapshot(repo) == before


def test_what_the_other_api_has_no_place_for_stops_it_with_nothing_written(repo: Path, cli) -> None:
    before = _snapshot(repo)
    done = cli("--repo", repo, "migrate", "staging", "--to", "gateway-api", "--commit")
    assert done.code == 2
    assert done.err.startswith("environments/staging/checkout.yaml:10:1: error: retries:")
    assert _snapshot(repo) == before
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_back_to_istio_needs_the_gateway_pods_selector(repo: Path, cli) -> None:
    before = _snapshot(repo)
    done = cli("--repo", repo, "migrate", "ambient", "--to", "istio")
    assert done.code == 2
    assert "gateway micro-gateway needs a selector" in done.err
    assert _snapshot(repo) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dev", "--to", "istio"), "already routed with istio"),
        (("dev", "--to", "linkerd"), "--to 'linkerd': give istio or gateway-api"),
        (("dev", "--to", "gateway-api", "--push", "origin"), "--push needs --commit"),
    ],
)
def test_no_change_or_an_unknown_api_is_refused(
    repo: Path, cli, args: tuple[str, ...], message: str
) -> None:
    done = cli("--repo", repo, "migrate", *args)
    assert done.code == 2
    assert message in done.err
