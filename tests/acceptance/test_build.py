"""`meshcanary build`: every overlay built, in batches as `check` builds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshcanary import kustomize


@pytest.fixture
def kustomize_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders each kustomize process of the test is started on."""
    started: list[str] = []
    real = kustomize._run

    def counted(folder: Path, *args: Any) -> kustomize.BuildResult:
        started.append(folder.name)
        return real(folder, *args)

    monkeypatch.setattr(kustomize, "_run", counted)
    return started


def test_build_runs_one_kustomize_per_batch_not_per_overlay(
    example_repo: Path, cli, kustomize_runs: list[str]
) -> None:
    from meshcanary.commands.build import build
    from meshcanary.release.load import load

    outcome = cli("--repo", example_repo, "build")
    assert outcome.code == 0, outcome.err
    # 12 overlays (2 services and the gateways in each of 4 environments): one batch each.
    assert len(kustomize_runs) == 4, kustomize_runs
    rows = [line for line in outcome.out.splitlines() if "micro-api" in line]
    assert len(rows) == 4 and any("70/30" in row and "v1×3 v2×3" in row for row in rows)
    # Each overlay gets exactly the objects kustomize gives it when built on its own.
    built = build(example_repo, load(example_repo))
    for item in built:
        alone = kustomize.Builder(example_repo).build(
            kustomize.Target(example_repo / item.folder, item.folder)
        )
        assert list(item.resources) == kustomize_documents(alone.text), item.folder
        assert not any(
            "config.kubernetes.io/origin" in (r["metadata"].get("annotations") or {})
            for r in item.resources
        )


def kustomize_documents(text: str) -> list[Any]:
    import yaml

    return [d for d in yaml.safe_load_all(text) if d]


def test_a_broken_overlay_in_a_batch_fails_alone(
    example_repo: Path, cli, kustomize_runs: list[str]
) -> None:
    """kustomize itself refuses it (no resolver finding): the batch is built again one by one."""
    kustomization = example_repo / "deploy/overlays/prod/checkout/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text(encoding="utf-8") + "namePrefix: [oops]\n", encoding="utf-8"
    )
    outcome = cli("--repo", example_repo, "build", "prod")
    assert outcome.code == 2
    assert outcome.err.startswith("deploy/overlays/prod/checkout: error: invalid Kustomization")
    assert outcome.err.endswith("1 overlay(s) failed to build\n")
    assert "micro-api" in outcome.out and "_gateways" in outcome.out
    assert len(kustomize_runs) == 1 + 3  # the batch, then its overlays one by one


def test_a_refused_overlay_is_not_built(example_repo: Path, cli, kustomize_runs: list[str]) -> None:
    (example_repo / "deploy/base/micro-api/service.yaml").unlink()
    outcome = cli("--repo", example_repo, "build", "prod")
    assert outcome.code == 2
    assert outcome.err.startswith(
        'deploy/base/micro-api/kustomization.yaml:7:5: error: resources entry "service.yaml" '
        "names no file or folder\n"
    ), outcome.err
    assert kustomize_runs == ["batch-1"]  # checkout and the gateways, without micro-api
    assert "checkout" in outcome.out and "micro-api" not in outcome.out
