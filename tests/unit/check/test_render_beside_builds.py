"""check renders each environment while kustomize builds its overlays from disk, and judges
it while kustomize builds the next one's: the same report as before, the release files' errors
still the run's, and every environment's in one."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from meshcanary.check import locate, pipeline
from meshcanary.errors import MeshcanaryError
from meshcanary.render import overlay, repository
from tests.support.bounds import count_calls

ENVIRONMENTS = ("ambient", "dev", "prod", "staging")


def _without_service(repo: Path) -> None:
    kustomization = repo / "deploy" / "base" / "checkout" / "kustomization.yaml"
    text = kustomization.read_text()
    assert "  - service.yaml\n" in text
    kustomization.write_text(text.replace("  - service.yaml\n", ""))


def test_the_render_runs_while_kustomize_builds(
    cli, example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = threading.Event()
    seen: list[bool] = []
    build, rendered = pipeline.build, repository.rendered

    def building(*args: Any, **kwargs: Any) -> Any:
        started.set()
        return build(*args, **kwargs)

    def rendering(*args: Any, **kwargs: Any) -> Any:
        seen.append(started.wait(timeout=30))  # kustomize's thread is on its way first
        return rendered(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build", building)
    monkeypatch.setattr(repository, "rendered", rendering)
    outcome = cli("-C", example_repo, "check", "--no-cache", "--format", "json")
    assert outcome.code == 0, outcome.err
    assert seen and all(seen)


def test_a_render_refused_is_the_runs_error_for_every_environment(cli, example_repo: Path) -> None:
    _without_service(example_repo)
    outcome = cli("-C", example_repo, "check", "--no-cache")
    assert outcome.code == 2
    lines = [line for line in outcome.err.splitlines() if "must hold exactly one Service" in line]
    # Each environment with a checkout release, in one error: the first refused does not stop
    # the others from being read.
    assert sorted(line.split(":")[0] for line in lines) == sorted(
        str(Path("environments") / env / "checkout.yaml") for env in ENVIRONMENTS
    )
    assert outcome.out == ""


def test_a_render_refused_comes_before_a_build_that_cannot_run(
    cli, example_repo: Path, tmp_path: Path
) -> None:
    # The builds start first now; their error (no kustomize) must not hide the release
    # files', which came first when nothing was built before the render.
    _without_service(example_repo)
    missing = tmp_path / "no-such-kustomize"
    outcome = cli("-C", example_repo, "--kustomize", missing, "check", "--no-cache")
    assert outcome.code == 2
    assert "must hold exactly one Service" in outcome.err
    assert "no-such-kustomize" not in outcome.err


def test_a_render_error_not_about_a_place_stops_the_run(
    cli, example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Gathered with the other environments' errors, an error without a place in a file
    # would add nothing, and the run would end as if clean.
    from meshcanary.errors import InputError

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise InputError("cannot render: the disk went away")

    monkeypatch.setattr(repository, "rendered", refused)
    outcome = cli("-C", example_repo, "check", "--no-cache")
    assert (outcome.code, outcome.out) == (2, "")
    assert outcome.err == "error: cannot render: the disk went away\n"


def test_an_environment_is_judged_while_the_next_one_builds(
    cli, example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = count_calls(monkeypatch, pipeline, "build")
    judge = pipeline._Step.judge
    started_when_judged: list[int] = []

    def judging(self: pipeline._Step, ready: pipeline._Built) -> Any:
        started_when_judged.append(len(builds))
        return judge(self, ready)

    monkeypatch.setattr(pipeline._Step, "judge", judging)
    outcome = cli("-C", example_repo, "check", "--no-cache", "--format", "json")
    assert outcome.code == 0, outcome.err
    # Each environment once the next one's builds have started; the last after them all.
    assert started_when_judged == [2, 3, 4, 4]


def test_a_judging_that_fails_waits_for_the_next_environments_builds(
    cli, example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = pipeline._Step.start
    builds: list[Any] = []

    def starting(self: pipeline._Step, *args: Any) -> pipeline._Started:
        started = start(self, *args)
        builds.append(started.building)
        return started

    def failing(self: pipeline._Step, ready: pipeline._Built) -> Any:
        raise MeshcanaryError("the judging fell over")

    monkeypatch.setattr(pipeline._Step, "start", starting)
    monkeypatch.setattr(pipeline._Step, "judge", failing)
    outcome = cli("-C", example_repo, "check", "--no-cache")
    assert (outcome.code, outcome.out) == (2, "")
    assert "the judging fell over" in outcome.err
    # The first environment's judging failed while the second's overlays were building: the
    # run ends once they are built, leaving no kustomize behind it.
    assert len(builds) == 2 and all(build.done() for build in builds)


def test_each_base_is_read_once_for_every_environment(
    cli, example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_calls(monkeypatch, overlay, "read_base")
    parsed = count_calls(monkeypatch, locate, "parse_text")  # where findings would point
    outcome = cli("-C", example_repo, "check", "--no-cache", "--format", "json")
    assert outcome.code == 0, outcome.err
    base_files = [args[1] for args, _ in parsed.made if args[1].startswith("deploy/base/")]
    assert base_files and sorted(base_files) == sorted(set(base_files))
    assert sorted(args[1] for args, _ in reads.made) == [
        "deploy/base/checkout",
        "deploy/base/micro-api",
    ]
