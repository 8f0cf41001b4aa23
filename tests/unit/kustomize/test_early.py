"""kustomize.early: the hook's overlays guessed from its paths and built while the release files
load; a build taken only for the overlay it was asked for, and nothing built that a run would
refuse."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary import kustomize
from meshcanary.kustomize import batch, early
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


def test_a_guess_not_taken_is_stopped_not_waited_for(
    example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guess the run does not take (it was answered from the cache, or it built something
    else) is killed when the block ends: the run does not wait for a build it drops. A
    program that sleeps stands for a slow kustomize: stopping it is what is tested."""
    slow = tmp_path / "slow-kustomize"
    slow.write_text("#!/bin/sh\nexec sleep 60\n", encoding="utf-8")
    slow.chmod(0o755)
    with kustomize.run_settings(allow_remote=False, timeout=None, kustomize=str(slow)):
        builder = kustomize.builder(example_repo)
        began = time.monotonic()
        with batch.early(example_repo, _overlays(["micro-api"]), builder):
            ((_, started),) = builder.early.values()
            time.sleep(0.5)  # the process has started
        assert time.monotonic() - began < 30
        assert builder.early == {}
        result = started.built.result(timeout=0)
    assert not result.ok  # killed: what it gave is dropped


def test_a_guess_stopped_before_its_process_starts_runs_nothing() -> None:
    handle = kustomize._Handle()
    handle.stop()
    result = kustomize._run(Path("/nowhere"), "overlay", False, handle)
    assert result.error == "not built: stopped before it started"


def test_a_block_inside_another_leaves_the_outer_blocks_guesses_to_it(
    example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI guesses before the pipeline is imported, and `check` guesses again for callers
    without the CLI: the inner block starts nothing the outer started, and leaves it be."""
    ran = _counting(monkeypatch)
    builder = kustomize.Builder(example_repo)
    outer = _overlays(["micro-api"])
    with batch.early(example_repo, outer, builder):
        with batch.early(example_repo, _overlays(["micro-api", "_gateways"]), builder):
            assert len(ran) <= 2
            assert set(builder.early) == {o.built_as for o in _overlays(["micro-api", "_gateways"])}
        assert set(builder.early) == {outer[0].built_as}  # the inner's guess is gone, not this
        results = batch.build(example_repo, outer, builder=builder)
    assert len(ran) == 2  # micro-api once, _gateways once
    assert results[0].ok and results[0].documents


def test_the_hook_starts_kustomize_before_the_pipeline_is_imported(example_repo: Path) -> None:
    """kustomize takes longer than the rest of a hook's run: it starts before the check
    pipeline's 50 ms of imports (a new process, so that nothing is imported already)."""
    script = (
        "import sys\n"
        "from meshcanary import kustomize\n"
        "start = kustomize.Builder.start\n"
        "def started(self, target):\n"
        "    print('pipeline imported' if 'meshcanary.check' in sys.modules else 'not yet')\n"
        "    return start(self, target)\n"
        "kustomize.Builder.start = started\n"
        "from meshcanary.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    paths = ["environments/prod/micro-api.yaml", f"{PROD}/micro-api/virtualservice.yaml"]
    done = subprocess.run(
        [sys.executable, "-c", script, "-C", str(example_repo), "check", "--no-cache", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["not yet", "not yet"]  # micro-api and _gateways


def test_a_hook_answered_from_the_cache_stops_its_guesses(
    example_repo: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = ["environments/prod/micro-api.yaml", f"{PROD}/micro-api/virtualservice.yaml"]
    first = cli("-C", example_repo, "check", *paths)
    stopped: list[kustomize.Started] = []
    stop = kustomize.Started.stop

    def recorded(self: kustomize.Started) -> None:
        stopped.append(self)
        stop(self)

    monkeypatch.setattr(kustomize.Started, "stop", recorded)
    again = cli("-C", example_repo, "check", *paths)
    assert again == first and first.code == 0
    assert len(stopped) == 2  # the guesses of micro-api and _gateways, neither taken
