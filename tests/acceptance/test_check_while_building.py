"""What a check does while kustomize builds (the render comparison, the release checks, the
schemas read ahead) changes nothing it reports, errors included."""

from __future__ import annotations

from pathlib import Path

RELEASE = "environments/prod/micro-api.yaml"
SERVICE = "deploy/overlays/prod/micro-api/virtualservice.yaml"


def test_a_kustomize_that_cannot_run_is_the_runs_error(example_repo: Path, cli) -> None:
    # The committed tree is stale too: found while the build fails, and not what is said.
    (example_repo / SERVICE).write_text("stale\n", encoding="utf-8")
    missing = example_repo / "no-kustomize"
    outcome = cli("--repo", example_repo, "--kustomize", missing, "check", RELEASE, SERVICE)
    assert (outcome.code, outcome.out) == (2, "")
    assert outcome.err == f"error: --kustomize {missing}: not an executable program\n"


def test_a_crd_that_cannot_be_read_is_said_once(example_repo: Path, cli) -> None:
    folder = example_repo / "crds"
    folder.mkdir()
    outcome = cli("--repo", example_repo, "check", "--crd", folder, RELEASE, SERVICE)
    assert (outcome.code, outcome.out) == (2, "")
    assert outcome.err == f"error: --crd {folder}: not a regular file\n"
