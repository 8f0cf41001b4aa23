"""The incremental check (check/units.py): a run over everything from the records of an
earlier run gives the report a run without them gives, and builds only what changed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshcanary.check import cache
from tests.support import ROOT
from tests.support.builds import recorded_builds


def _repository(folder: Path) -> Path:
    """The examples (environments, bases, overlays, policies) as a committed git work tree."""
    repo = folder / "repo"
    for part in ("environments", "deploy", "policies"):
        shutil.copytree(ROOT / part, repo / part)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "examples"], cwd=repo, check=True)
    return repo


def _inputs(repo: Path) -> list[str]:
    return sorted(
        p.relative_to(repo).as_posix()
        for part in ("environments", "deploy", "policies")
        for p in (repo / part).rglob("*")
        if p.is_file()
    )


def _bump(text: str) -> str:
    """The first number of the text after its first key, one more."""
    found = re.search(r"(?<=: )(\d+)\b", text)
    if found is None:
        return text + "\n# touched\n"
    return text[: found.start()] + str(int(found.group()) + 1) + text[found.end() :]


# Each change of one input file: what it does to the file's text (None: remove the file).
CHANGES: dict[str, Callable[[str], str | None]] = {
    "comment": lambda text: text + "\n# touched\n",
    "number": _bump,
    "word": lambda text: text.replace("v2", "v9", 1).replace("http", "grpc", 1),
    "remove": lambda text: None,
    "empty": lambda text: "",
}


def _change(repo: Path, name: str, how: str) -> None:
    path = repo / name
    changed = CHANGES[how](path.read_text(encoding="utf-8"))
    if changed is None:
        path.unlink()
    else:
        path.write_text(changed, encoding="utf-8")


def _reports(
    cli, repo: Path, *extra: str, report: str = "json"
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """The report from the records, then the report of a run that reads and writes none."""
    kept = cli("--repo", repo, "check", "--format", report, *extra)
    afresh = cli("--repo", repo, "check", "--format", report, "--no-cache", *extra)
    return (kept.code, kept.out, kept.err), (afresh.code, afresh.out, afresh.err)


@settings(
    max_examples=int(os.environ.get("MESHCANARY_PROPERTY_EXAMPLES", "6")),
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    changes=st.lists(
        st.tuples(st.integers(min_value=0), st.sampled_from(sorted(CHANGES)), st.booleans()),
        min_size=2,
        max_size=2,
    )
)
def test_a_run_from_records_reports_what_a_run_afresh_reports(cli, changes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        repo = _repository(Path(folder))
        # The records of a run over everything, with no baseline and with HEAD's.
        assert cli("--repo", repo, "check", "--no-base").code in (0, 1)
        assert cli("--repo", repo, "check").code in (0, 1)
        for index, how, against_head in changes:
            names = _inputs(repo)
            _change(repo, names[index % len(names)], how)
            extra = () if against_head else ("--no-base",)
            # Every finding (JSON), and every object in the order reported (JUnit).
            for report in ("json", "junit"):
                kept, afresh = _reports(cli, repo, *extra, report=report)
                assert kept == afresh, (names[index % len(names)], how, against_head, report)


def test_after_a_one_service_change_only_its_overlay_is_built(
    cli, tmp_path: Path, monkeypatch
) -> None:
    repo = _repository(tmp_path)
    first = cli("--repo", repo, "check", "--no-base", "--format", "json")
    built = recorded_builds(monkeypatch)
    # Nothing changed but the report's own cache: every unit comes from its record.
    for report in cache.folder().glob("[0-9a-f]*.json"):
        report.unlink()
    again = cli("--repo", repo, "check", "--no-base", "--format", "json")
    assert (again.code, again.out) == (first.code, first.out)
    assert built == []
    base = repo / "deploy/base/checkout/deployment.yaml"
    base.write_text(base.read_text().replace("memory:", "memory: ", 1))
    changed = cli("--repo", repo, "check", "--no-base", "--format", "json")
    # checkout's base is in every environment: its four overlays, and no other.
    assert sorted(built) == [
        f"deploy/overlays/{env}/checkout" for env in ("ambient", "dev", "prod", "staging")
    ]
    assert (changed.code, changed.out) == (first.code, first.out)


def test_a_folder_a_kustomization_names_from_elsewhere_is_an_input(cli, tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    shared = repo / "deploy/common/migrate"
    shared.mkdir(parents=True)
    (shared / "kustomization.yaml").write_text("resources: [job.yaml]\n")
    job = shared / "job.yaml"
    job.write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec:\n"
        "  template:\n    spec:\n      restartPolicy: Never\n"
        "      containers: [{name: migrate, image: 'busybox:1.36'}]\n"
    )
    kustomization = repo / "deploy/base/checkout/kustomization.yaml"
    text = kustomization.read_text()
    kustomization.write_text(
        text.replace("  - service.yaml\n", "  - service.yaml\n  - ../../common/migrate\n")
    )
    kept, afresh = _reports(cli, repo, "--no-base")
    assert kept == afresh
    assert "busybox:latest" not in kept[1]
    # Only the file outside the base changes: the overlays that read it are built again.
    job.write_text(job.read_text().replace("busybox:1.36", "busybox:latest"))
    kept, afresh = _reports(cli, repo, "--no-base")
    assert kept == afresh
    assert "busybox:latest" in kept[1], kept  # mutable-image-tag, from the change


def test_records_that_cannot_be_read_or_were_made_otherwise_are_not_used(
    cli, tmp_path: Path
) -> None:
    repo = _repository(tmp_path)
    first = cli("--repo", repo, "check", "--no-base", "--format", "json")
    records = sorted(cache.folder().glob("units-*.json"))
    assert len(records) == 4  # one an environment
    records[0].write_text("{not json", encoding="utf-8")
    data = json.loads(records[1].read_text(encoding="utf-8"))
    data["key"] = "made under other settings"
    records[1].write_text(json.dumps(data), encoding="utf-8")
    for report in cache.folder().glob("[0-9a-f]*.json"):
        report.unlink()
    again = cli("--repo", repo, "check", "--no-base", "--format", "json")
    assert (again.code, again.out) == (first.code, first.out)


def test_a_finding_on_a_kept_service_points_into_its_release_file(cli, tmp_path: Path) -> None:
    """The rules run again over an environment with one changed service; a finding on
    another service's object is placed where that service's record says its field was
    decided, as a run afresh places it."""
    repo = _repository(tmp_path)
    release = repo / "environments/dev/micro-api.yaml"
    release.write_text(release.read_text().replace("micro-api:1.1,", "micro-api:latest,"))
    assert cli("--repo", repo, "render").code == 0
    first = cli("--repo", repo, "check", "--no-base", "--format", "json")
    mutable = [f for f in json.loads(first.out)["findings"] if f["rule"] == "mutable-image-tag"]
    assert [(f["file"], f["line"]) for f in mutable] == [("environments/dev/micro-api.yaml", 10)]
    other = repo / "environments/dev/checkout.yaml"
    other.write_text(
        other.read_text().replace("weight: 75", "weight: 70").replace("weight: 25", "weight: 30")
    )
    assert cli("--repo", repo, "render").code == 0
    kept, afresh = _reports(cli, repo, "--no-base")
    assert kept == afresh
    assert json.loads(kept[1])["findings"] == json.loads(first.out)["findings"]
