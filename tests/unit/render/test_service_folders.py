"""Hash files per service folder: one service written alone, and trees in the earlier layout
(one hash file for the whole environment) read, checked and moved without false reports."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from meshcanary.release.load import load
from meshcanary.render import repository, swap, tree
from meshcanary.render.overlay import environment_files
from tests.support import write
from tests.unit.render.earlier_layout import in_earlier_layout, to_earlier_layout

OVERLAYS = Path("deploy/overlays")
PROD = OVERLAYS / "prod"
RELEASE = "environments/prod/micro-api.yaml"
VIRTUALSERVICE = PROD / "micro-api/virtualservice.yaml"


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`: its bytes and its time stamp."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _set_weights(repo: Path, v1: int, v2: int) -> None:
    path = repo / RELEASE
    text = path.read_text(encoding="utf-8")
    text = text.replace("replicas: 3, weight: 70}", f"replicas: 3, weight: {v1}}}")
    path.write_text(text.replace("replicas: 3, weight: 30}", f"replicas: 3, weight: {v2}}}"))


def _hand_edit(repo: Path) -> str:
    target = repo / VIRTUALSERVICE
    edited = target.read_text(encoding="utf-8").replace("weight: 30", "weight: 31")
    target.write_text(edited, encoding="utf-8")
    return edited


def test_each_service_folder_holds_the_hashes_of_its_own_files(example_repo: Path) -> None:
    own = json.loads((example_repo / PROD / "micro-api/.meshcanary.json").read_text())
    assert sorted(own["files"]) == sorted(
        p.relative_to(example_repo / PROD / "micro-api").as_posix()
        for p in (example_repo / PROD / "micro-api").rglob("*")
        if p.is_file() and p.name != ".meshcanary.json"
    )
    top = json.loads((example_repo / PROD / ".meshcanary.json").read_text())
    assert sorted(top["files"]) == [
        "_gateways/kustomization.yaml",
        "_gateways/micro-gateway.yaml",
        "kustomization.yaml",
    ]


def test_a_tree_in_the_earlier_layout_is_fresh_and_render_moves_only_its_hashes(
    example_repo: Path, cli
) -> None:
    overlays = example_repo / OVERLAYS
    fresh = _snapshot(overlays)
    to_earlier_layout(overlays)
    earlier = _snapshot(overlays)
    assert earlier != fresh

    checked = cli("--repo", example_repo, "render", "--check")
    assert checked.code == 0, checked.out
    assert checked.out == ""
    assert f"{PROD}/.meshcanary.json:1:1: info: holds the hashes of every service" in checked.err
    status = json.loads(cli("--repo", example_repo, "status", "-o", "json").out)
    assert not any(env["stale"] for env in status["render"].values())
    assert cli("--repo", example_repo, "check", "--no-cache").code == 0
    assert _snapshot(overlays) == earlier  # none of them wrote

    assert cli("--repo", example_repo, "render").code == 0
    assert not in_earlier_layout(overlays)
    moved = _snapshot(overlays)
    # The hash files as a render from nothing writes them; every other file untouched.
    assert {p: text for p, (text, _) in moved.items()} == {
        p: text for p, (text, _) in fresh.items()
    }
    assert {p: v for p, v in moved.items() if not p.endswith(".meshcanary.json")} == {
        p: v for p, v in earlier.items() if not p.endswith(".meshcanary.json")
    }
    again = cli("--repo", example_repo, "render")
    assert "no file(s) changed" in again.err
    assert "info:" not in again.err


def test_a_hand_edit_in_the_earlier_layout_is_still_found(example_repo: Path, cli) -> None:
    to_earlier_layout(example_repo / OVERLAYS)
    edited = _hand_edit(example_repo)
    line = edited.splitlines().index("      weight: 31") + 1

    assert cli("--repo", example_repo, "render", "--check").code == 1
    status = json.loads(cli("--repo", example_repo, "status", "-o", "json").out)
    assert status["render"]["prod"]["services"] == ["micro-api"]
    checked = cli("--repo", example_repo, "check", "--no-cache", RELEASE)
    assert checked.code == 1
    assert f"{VIRTUALSERVICE}:{line}:1: error: virtualservice.yaml differs from what" in checked.out
    _set_weights(example_repo, 40, 60)
    line = edited.splitlines().index("      weight: 70") + 1  # the first to differ now
    refused = cli("--repo", example_repo, "render")
    assert refused.code == 2
    assert refused.err.startswith(f"{VIRTUALSERVICE}:{line}:1: error: edited by hand since")
    assert (example_repo / VIRTUALSERVICE).read_text(encoding="utf-8") == edited
    assert in_earlier_layout(example_repo / OVERLAYS)  # nothing written


def test_a_service_folders_own_hash_file_decides_what_is_ours_in_it(
    example_repo: Path, cli
) -> None:
    """A digest in micro-api's hash file that no longer matches its VirtualService makes
    that file a hand edit, and only that one: checkout's folder is judged by its own."""
    own = example_repo / PROD / "micro-api/.meshcanary.json"
    recorded = json.loads(own.read_text(encoding="utf-8"))
    recorded["files"]["virtualservice.yaml"] = "sha256:" + "0" * 64
    own.write_text(json.dumps(recorded), encoding="utf-8")
    _set_weights(example_repo, 40, 60)
    refused = cli("--repo", example_repo, "render")
    assert refused.code == 2
    assert refused.err.startswith(f"{VIRTUALSERVICE}:")
    assert "edited by hand since meshcanary wrote it" in refused.err
    assert "checkout" not in refused.err


def test_a_service_hash_file_edited_by_hand_makes_the_tree_stale(example_repo: Path, cli) -> None:
    own = example_repo / PROD / "checkout/.meshcanary.json"
    own.write_text("{}\n", encoding="utf-8")
    checked = cli("--repo", example_repo, "render", "--check")
    assert checked.code == 1
    assert f"+++ b/{PROD}/checkout/.meshcanary.json" in checked.out
    assert cli("--repo", example_repo, "render").code == 0  # its files match: ours again
    assert cli("--repo", example_repo, "render", "--check").code == 0


@pytest.mark.parametrize("kind", ["new", "old"])
def test_recover_finishes_a_service_swap_a_kill_cut_short(example_repo: Path, kind: str) -> None:
    """A service's staging folder lies beside the environment's folders, never inside one: a
    new tree left there is removed; an old one whose service folder is missing is put back."""
    overlays = example_repo / OVERLAYS
    before = _snapshot(overlays / "prod")
    staging = overlays / f".prod.micro-api.0123456789abcdef.{kind}"
    if kind == "old":
        os.replace(overlays / "prod/micro-api", staging)
    else:
        write(staging / "virtualservice.yaml", "half: written\n")
    swap.recover(example_repo, str(OVERLAYS))
    assert _snapshot(overlays / "prod") == before
    assert sorted(p.name for p in overlays.iterdir()) == ["ambient", "dev", "prod", "staging"]


def test_the_environment_kustomization_is_known_without_rendering_the_services(
    example_repo: Path,
) -> None:
    for loaded in load(example_repo):
        rendered = environment_files(example_repo, loaded, {})
        services = [release.service for release in loaded.releases]
        assert (
            repository.environment_kustomization(loaded.environment, services)
            == (rendered.files["kustomization.yaml"])
        )


def _service_plan(repo: Path, service: str = "micro-api") -> repository.ServicePlan:
    rendered = repository.plan(repo, ["prod"], {"prod": {service}})
    return repository.plan_service(repo, rendered, service)


def test_one_service_is_written_alone(example_repo: Path) -> None:
    overlays = example_repo / OVERLAYS
    _set_weights(example_repo, 40, 60)
    others = {p: v for p, v in _snapshot(overlays).items() if not p.startswith("prod/micro-api/")}
    environment = (overlays / "prod").stat().st_ino
    update = _service_plan(example_repo)
    assert not update.whole
    assert update.plan.folder == f"{PROD}/micro-api"
    assert [c.path for c in update.plan.changes] == [
        f"{PROD}/micro-api/.meshcanary.json",
        str(VIRTUALSERVICE),
    ]
    repository.write_service(example_repo, update)
    assert (overlays / "prod").stat().st_ino == environment  # swapped inside, not replaced
    assert {
        p: v for p, v in _snapshot(overlays).items() if not p.startswith("prod/micro-api/")
    } == others
    assert "weight: 60" in (example_repo / VIRTUALSERVICE).read_text(encoding="utf-8")
    assert not repository.plan(example_repo).stale


def test_a_file_a_person_added_to_the_service_folder_is_kept(example_repo: Path) -> None:
    notes = write(example_repo / PROD / "micro-api/notes.md", "why we pinned v1\n")
    _set_weights(example_repo, 40, 60)
    update = _service_plan(example_repo)
    assert update.plan.kept == ("notes.md",)
    repository.write_service(example_repo, update)
    assert notes.read_text(encoding="utf-8") == "why we pinned v1\n"


def _remove_checkout(repo: Path) -> None:
    (repo / "environments/prod/checkout.yaml").unlink()


def _rename_gateway_host(repo: Path) -> None:
    path = repo / "environments/prod/environment.yaml"
    text = path.read_text(encoding="utf-8")
    assert "api.example.com" in text
    path.write_text(text.replace("api.example.com", "api.example.org"), encoding="utf-8")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_remove_checkout, id="a-service-removed"),
        pytest.param(_rename_gateway_host, id="a-gateway-changed"),
        pytest.param(lambda repo: to_earlier_layout(repo / OVERLAYS), id="the-earlier-layout"),
    ],
)
def test_the_environment_is_written_whole_when_its_own_files_change(
    example_repo: Path, change: Callable[[Path], None]
) -> None:
    change(example_repo)
    _set_weights(example_repo, 40, 60)
    update = _service_plan(example_repo)
    assert update.whole
    repository.write_service(example_repo, update)
    assert not repository.plan(example_repo).stale
    assert not in_earlier_layout(example_repo / OVERLAYS)


def test_a_service_folder_that_is_a_link_is_left_to_the_whole_render(example_repo: Path) -> None:
    service = example_repo / PROD / "micro-api"
    shutil.move(service, example_repo / "elsewhere")
    service.symlink_to(example_repo / "elsewhere")
    assert _service_plan(example_repo).whole


def test_a_service_folder_that_is_up_to_date_is_not_written_again(example_repo: Path) -> None:
    _set_weights(example_repo, 40, 60)
    update = _service_plan(example_repo)
    tree.apply(example_repo, update.plan)
    stamps = _snapshot(example_repo / OVERLAYS)
    assert not _service_plan(example_repo).plan.changes
    repository.write_service(example_repo, _service_plan(example_repo))
    assert _snapshot(example_repo / OVERLAYS) == stamps
