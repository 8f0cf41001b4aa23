"""check.early: the hook's overlays guessed from its paths and built while the release files
load; a build taken only for the overlay it was asked for, and nothing built that a run would
refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary import kustomize
from meshcanary.check import early
from meshcanary.kustomize import batch
from tests.support import write

PROD = "deploy/overlays/prod"


@pytest.mark.parametrize(
    ("paths", "guessed"),
    [
        (["environments/prod/micro-api.yaml"], [f"{PROD}/_gateways", f"{PROD}/micro-api"]),
        (
            ["environments/prod/micro-api.yaml", f"{PROD}/micro-api/virtualservice.yaml"],
            [f"{PROD}/_gateways", f"{PROD}/micro-api"],
        ),
        (
            [f"{PROD}/checkout/v1/kustomization.yaml", "environments/prod/micro-api.yaml"],
            [f"{PROD}/_gateways", f"{PROD}/checkout", f"{PROD}/micro-api"],
        ),
        # A service with no overlay yet: only what exists is built.
        (["environments/prod/new-service.yaml"], [f"{PROD}/_gateways"]),
        # What the run works out from loaded files: nothing guessed.
        (["environments/prod/environment.yaml"], []),
        (["deploy/base/micro-api/deployment.yaml"], []),
        ([f"{PROD}/_gateways/gateway.yaml"], []),
        ([f"{PROD}/kustomization.yaml"], []),
        (["policies/max-weight-step.yaml"], []),
        (["environments/prod/micro-api.yaml", "environments/dev/micro-api.yaml"], []),
        ([f"environments/prod/s{i}.yaml" for i in range(early.MOST + 1)], []),
    ],
)
def test_the_guess_is_one_environments_named_services_and_its_gateways(
    example_repo: Path, paths: list[str], guessed: list[str]
) -> None:
    assert early.guess(example_repo, paths) == guessed


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders kustomize is run on, as it runs (the real kustomize)."""
    ran: list[Path] = []
    real = kustomize._run

    def counted(folder: Path, *args: Any) -> kustomize.BuildResult:
        ran.append(folder)
        return real(folder, *args)

    monkeypatch.setattr(kustomize, "_run", counted)
    return ran


def _overlays(names: list[str]) -> list[batch.Overlay]:
    return [batch.Overlay(f"{PROD}/{name}", "prod") for name in names]


def test_a_guessed_build_is_taken_and_gives_what_a_batch_gives(
    example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _overlays(["_gateways", "micro-api"])
    afresh = batch.build(example_repo, asked, builder=kustomize.Builder(example_repo))
    ran = _counting(monkeypatch)
    builder = kustomize.Builder(example_repo)
    with batch.early(example_repo, _overlays(["micro-api", "_gateways"]), builder):
        started = len(ran)
        results = batch.build(example_repo, asked, builder=builder)
        assert len(ran) == started == 2  # both were built early, nothing again
    assert results == afresh
    assert all(r.ok and r.documents for r in results)


def test_a_guess_not_asked_for_is_dropped(
    example_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked = _overlays(["micro-api"])
    afresh = batch.build(example_repo, asked, builder=kustomize.Builder(example_repo))
    ran = _counting(monkeypatch)
    builder = kustomize.Builder(example_repo)
    with batch.early(example_repo, _overlays(["checkout", "micro-api"]), builder):
        results = batch.build(example_repo, asked, builder=builder)
    assert results == afresh
    assert len(ran) == 2  # the guess of checkout, waited for; micro-api's taken
    assert builder.early == {}
    # Built the same way or not taken: other remote prefixes make another build.
    with batch.early(example_repo, asked, builder):
        other = [batch.Overlay(f"{PROD}/micro-api", "prod", ("https://example.com/",))]
        assert batch.build(example_repo, other, builder=builder) == afresh
    assert len(ran) == 4


def test_a_guess_that_failed_is_built_again_for_its_error(
    example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(example_repo / PROD / "micro-api" / "virtualservice.yaml", "kind: [unclosed\n")
    asked = _overlays(["micro-api"])
    afresh = batch.build(example_repo, asked, builder=kustomize.Builder(example_repo))
    assert not afresh[0].ok
    builder = kustomize.Builder(example_repo)
    with batch.early(example_repo, asked, builder):
        assert batch.build(example_repo, asked, builder=builder) == afresh


def test_a_guess_builds_nothing_the_resolver_refuses(
    example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kustomization = example_repo / PROD / "micro-api" / "kustomization.yaml"
    listed = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
    listed["resources"].append("../../../../../outside")
    kustomization.write_text(yaml.safe_dump(listed), encoding="utf-8")
    asked = _overlays(["micro-api"])
    ran = _counting(monkeypatch)
    builder = kustomize.Builder(example_repo)
    with batch.early(example_repo, asked, builder):
        assert ran == [] and builder.early == {}
        refused = batch.build(example_repo, asked, builder=builder)
    assert ran == []
    assert refused[0].problems and "outside" in refused[0].error


def test_the_hooks_report_is_the_same_with_and_without_the_guess(
    example_repo: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One finding from a build (a Service's targetPort) and one of a stale render.
    service = example_repo / "deploy" / "base" / "micro-api" / "service.yaml"
    service.write_text(service.read_text(encoding="utf-8").replace("19090", "9090"))
    virtual = example_repo / PROD / "micro-api" / "virtualservice.yaml"
    virtual.write_text(virtual.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    args = ["-C", example_repo, "check", "--format", "json"]
    paths = ["environments/prod/micro-api.yaml", f"{PROD}/micro-api/virtualservice.yaml"]
    ran = _counting(monkeypatch)
    guessed = cli(*args, *paths)
    assert len(ran) == 2  # the guess (gateways, micro-api) was taken
    assert cli(*args, "--no-cache", *paths) == guessed
    assert len(ran) == 4
    monkeypatch.setattr(early, "guess", lambda root, paths: [])
    unguessed = cli(*args, "--no-cache", *paths)
    assert len(ran) == 5  # one batch of both
    assert guessed == unguessed
    assert guessed.code == 1 and '"service-target-port"' in guessed.out
    assert '"render-fresh"' in guessed.out
