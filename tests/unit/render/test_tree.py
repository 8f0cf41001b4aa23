"""Writing the tree: deterministic, minimal diffs, atomic, and never clobbering a person's edit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshcanary.render import swap, tree
from meshcanary.render.repository import render
from tests.support import isolate_git, write

PROD = Path("deploy/overlays/prod")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _set_weights(repo: Path, v1: int, v2: int) -> None:
    path = repo / "environments/prod/micro-api.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("replicas: 3, weight: 70}", f"replicas: 3, weight: {v1}}}")
    text = text.replace("replicas: 3, weight: 30}", f"replicas: 3, weight: {v2}}}")
    path.write_text(text, encoding="utf-8")


def test_second_render_is_a_no_op(example_repo: Path, cli) -> None:
    before = _snapshot(example_repo / "deploy")
    stamps = {p: p.stat().st_mtime_ns for p in (example_repo / "deploy").rglob("*") if p.is_file()}
    outcome = cli("--repo", example_repo, "render")
    assert outcome.code == 0
    assert "no file(s) changed" in outcome.err
    assert _snapshot(example_repo / "deploy") == before
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_render_from_scratch_gives_the_same_bytes(example_repo: Path, cli) -> None:
    before = _snapshot(example_repo / "deploy" / "overlays")
    import shutil

    shutil.rmtree(example_repo / "deploy" / "overlays")
    assert cli("--repo", example_repo, "render").code == 0
    assert _snapshot(example_repo / "deploy" / "overlays") == before


def test_weight_change_touches_only_weight_lines(example_repo: Path, cli) -> None:
    _set_weights(example_repo, 50, 50)
    check = cli("--repo", example_repo, "render", "--check")
    assert check.code == 1
    changed = [
        line
        for line in check.out.splitlines()
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    vs = [line for line in changed if "weight" in line]
    assert vs == [
        "-      weight: 70",
        "+      weight: 50",
        "-      weight: 30",
        "+      weight: 50",
    ]
    # Only the VirtualService and its folder's hash of it change.
    files = [line[6:] for line in check.out.splitlines() if line.startswith("+++ ")]
    assert files == [f"{PROD}/micro-api/.meshcanary.json", f"{PROD}/micro-api/virtualservice.yaml"]
    assert "render is stale" in check.err


def test_image_change_touches_one_new_tag_line(example_repo: Path, cli) -> None:
    path = example_repo / "environments/prod/micro-api.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("micro-api:1.3", "micro-api:1.4"), encoding="utf-8"
    )
    check = cli("--repo", example_repo, "render", "--check")
    assert check.code == 1
    body = [
        line
        for line in check.out.splitlines()
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    yaml_lines = [line for line in body if "sha256" not in line]
    assert yaml_lines == ['-  newTag: "1.3"', '+  newTag: "1.4"']


def test_check_writes_nothing(example_repo: Path, cli) -> None:
    _set_weights(example_repo, 40, 60)
    before = _snapshot(example_repo)
    assert cli("--repo", example_repo, "render", "--check").code == 1
    assert _snapshot(example_repo) == before


def test_render_writes_the_change_and_then_is_fresh(example_repo: Path, cli) -> None:
    _set_weights(example_repo, 40, 60)
    outcome = cli("--repo", example_repo, "render")
    assert outcome.code == 0
    assert outcome.out.splitlines() == [
        f"update  {PROD}/micro-api/.meshcanary.json",
        f"update  {PROD}/micro-api/virtualservice.yaml",
    ]
    assert "weight: 60" in (example_repo / PROD / "micro-api/virtualservice.yaml").read_text(
        encoding="utf-8"
    )
    assert cli("--repo", example_repo, "render", "--check").code == 0


def test_hand_edited_file_is_reported_not_overwritten(example_repo: Path, cli) -> None:
    target = example_repo / PROD / "micro-api/virtualservice.yaml"
    edited = target.read_text(encoding="utf-8").replace("weight: 30", "weight: 31")
    target.write_text(edited, encoding="utf-8")
    _set_weights(example_repo, 40, 60)
    before = _snapshot(example_repo)
    outcome = cli("--repo", example_repo, "render")
    assert outcome.code == 2
    # Without git the message points at the first line that differs from the new output.
    line = edited.splitlines().index("      weight: 70") + 1
    assert outcome.err.splitlines()[0] == (
        f"{PROD}/micro-api/virtualservice.yaml:{line}:1: error: edited by hand since meshcanary wrote it"
    )
    assert "make the change in environments/prod/micro-api.yaml instead" in outcome.err
    assert _snapshot(example_repo) == before

    forced = cli("--repo", example_repo, "render", "--force")
    assert forced.code == 0
    assert "weight: 60" in target.read_text(encoding="utf-8")
    assert cli("--repo", example_repo, "render", "--check").code == 0


def test_hand_edit_is_located_exactly_in_a_git_repository(example_repo: Path, cli) -> None:
    import subprocess

    git = ["git", "-C", str(example_repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    target = example_repo / PROD / "micro-api/virtualservice.yaml"
    edited = target.read_text(encoding="utf-8").replace("weight: 30", "weight: 31")
    target.write_text(edited, encoding="utf-8")
    _set_weights(example_repo, 40, 60)
    outcome = cli("--repo", example_repo, "render")
    assert outcome.code == 2
    line = edited.splitlines().index("      weight: 31") + 1
    assert outcome.err.startswith(
        f"{PROD}/micro-api/virtualservice.yaml:{line}:1: error: edited by hand"
    )


def test_hand_edit_that_matches_the_new_output_is_accepted(example_repo: Path, cli) -> None:
    _set_weights(example_repo, 40, 60)
    target = example_repo / PROD / "micro-api/virtualservice.yaml"
    target.write_text(
        target.read_text(encoding="utf-8")
        .replace("weight: 70", "weight: 40")
        .replace("weight: 30", "weight: 60"),
        encoding="utf-8",
    )
    assert cli("--repo", example_repo, "render").code == 0
    assert cli("--repo", example_repo, "render", "--check").code == 0


def test_files_no_longer_produced_are_removed(example_repo: Path, cli) -> None:
    (example_repo / "environments/prod/checkout.yaml").unlink()
    outcome = cli("--repo", example_repo, "render")
    assert outcome.code == 0
    assert not (example_repo / PROD / "checkout").exists()
    assert f"delete  {PROD}/checkout/virtualservice.yaml" in outcome.out
    manifest = json.loads((example_repo / PROD / ".meshcanary.json").read_text(encoding="utf-8"))
    assert not [p for p in manifest["files"] if p.startswith("checkout/")]
    kustomization = (example_repo / PROD / "kustomization.yaml").read_text(encoding="utf-8")
    assert "checkout" not in kustomization


def test_removed_environment_folder_is_removed(example_repo: Path, cli) -> None:
    import shutil

    shutil.rmtree(example_repo / "environments/dev")
    assert cli("--repo", example_repo, "render").code == 0
    assert not (example_repo / "deploy/overlays/dev").exists()
    assert (example_repo / PROD).is_dir()


def test_files_a_person_added_are_kept(example_repo: Path, cli) -> None:
    extra = write(example_repo / PROD / "micro-api/notes.md", "why we pinned v1\n")
    _set_weights(example_repo, 40, 60)
    outcome = cli("--repo", example_repo, "render")
    assert outcome.code == 0
    assert extra.read_text(encoding="utf-8") == "why we pinned v1\n"
    assert (
        f"{PROD}/micro-api/notes.md:1:1: warning: not written by meshcanary; left in place"
        in outcome.err
    )


def test_existing_file_not_written_by_meshcanary_is_not_overwritten(
    example_repo: Path, cli
) -> None:
    (example_repo / PROD / "micro-api/.meshcanary.json").unlink()
    target = example_repo / PROD / "micro-api/virtualservice.yaml"
    target.write_text("# mine\n", encoding="utf-8")
    outcome = cli("--repo", example_repo, "render")
    assert outcome.code == 2
    assert "virtualservice.yaml:1:1: error: exists but was not written by meshcanary" in outcome.err
    assert target.read_text(encoding="utf-8") == "# mine\n"


@pytest.mark.parametrize("folder", ["", "micro-api/"], ids=["environment", "service"])
def test_missing_manifest_is_rebuilt_when_files_match(example_repo: Path, cli, folder: str) -> None:
    manifest = example_repo / PROD / f"{folder}.meshcanary.json"
    text = manifest.read_text(encoding="utf-8")
    manifest.unlink()
    assert cli("--repo", example_repo, "render").code == 0
    assert manifest.read_text(encoding="utf-8") == text


def test_render_of_one_environment_leaves_the_others(example_repo: Path, cli) -> None:
    _set_weights(example_repo, 40, 60)
    staging = example_repo / "environments/staging/micro-api.yaml"
    staging.write_text(
        staging.read_text(encoding="utf-8").replace("weight: 50}", "weight: 5}", 1),
        encoding="utf-8",
    )
    before = _snapshot(example_repo / "deploy/overlays/staging")
    outcome = cli("--repo", example_repo, "render", "prod")
    assert outcome.code == 0
    assert _snapshot(example_repo / "deploy/overlays/staging") == before


def test_interrupted_swap_is_recovered_to_a_whole_tree(example_repo: Path, cli) -> None:
    """A render killed between the two renames of the swap leaves .prod.old; the next run restores it."""
    overlays = example_repo / "deploy/overlays"
    before = _snapshot(overlays / "prod")
    os.replace(overlays / "prod", overlays / ".prod.old")
    write(overlays / ".prod.new" / "half-written.yaml", "apiVersion: v")
    assert cli("--repo", example_repo, "render").code == 0
    assert _snapshot(overlays / "prod") == before
    assert sorted(p.name for p in overlays.iterdir()) == ["ambient", "dev", "prod", "staging"]


def test_swap_killed_after_the_new_tree_is_in_place_keeps_the_new_tree(example_repo: Path) -> None:
    overlays = example_repo / "deploy/overlays"
    _set_weights(example_repo, 40, 60)
    result = render(example_repo, ["prod"])
    assert result.stale
    write(overlays / ".prod.old" / "micro-api/virtualservice.yaml", "old\n")
    swap.recover(example_repo, "deploy/overlays")
    assert not (overlays / ".prod.old").exists()
    assert "weight: 60" in (overlays / "prod/micro-api/virtualservice.yaml").read_text(
        encoding="utf-8"
    )


def test_plan_reports_changes_without_touching_disk(example_repo: Path) -> None:
    generated = {"kustomization.yaml": "# x\n"}
    item = tree.plan(example_repo, "deploy/overlays/new-env", generated, {})
    assert [c.action for c in item.changes] == ["create", "create"]
    assert not (example_repo / "deploy/overlays/new-env").exists()


def test_a_second_writer_waits_then_fails_clearly(example_repo: Path, cli, monkeypatch) -> None:
    import fcntl
    import subprocess
    import sys

    from meshcanary.lock import lock_path

    monkeypatch.setenv("MESHCANARY_LOCK_TIMEOUT", "0.5")
    _set_weights(example_repo, 40, 60)
    before = _snapshot(example_repo)
    with open(lock_path(example_repo), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # another writer holds the lock
        script = Path(sys.executable).parent / "meshcanary"
        done = subprocess.run(
            [str(script), "--repo", str(example_repo), "render"],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 2
    assert "another meshcanary command is writing" in done.stderr
    assert _snapshot(example_repo) == before
    # Once the lock is free the writer goes ahead.
    assert cli("--repo", example_repo, "render").code == 0


# --- CRLF checkouts ---------------------------------------------------------------------------

SCRIPT = Path(sys.executable).parent / "meshcanary"
RELEASE = "environments/prod/micro-api.yaml"
VIRTUALSERVICE = f"{PROD}/micro-api/virtualservice.yaml"


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def _meshcanary(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "--repo", str(repo), *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("checkout", ["core.autocrlf=true", ".gitattributes eol=crlf"])
def test_a_crlf_checkout_is_fresh_keeps_its_line_ends_and_still_finds_hand_edits(
    example_repo: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    checkout: str,
) -> None:
    """Guarantee: in a clone whose work tree has CRLF line ends (core.autocrlf=true, as Git
    for Windows sets it, or `* text eol=crlf` in .gitattributes) while the repository holds
    LF, the tree meshcanary rendered is fresh: `render --check` and `check` pass and `render`
    changes nothing. A real hand edit is still found, at its line; an edit writes only what
    it changes, so git lists only the release file, the VirtualService and the manifest."""
    isolate_git(tmp_path_factory, monkeypatch)
    if checkout.startswith(".gitattributes"):
        write(example_repo / ".gitattributes", "* text eol=crlf\n")
    _git(example_repo, "init", "-q")
    _git(example_repo, "add", "-A")
    _git(example_repo, "commit", "-qm", "start")
    clone = tmp_path / "clone"
    if checkout.startswith("core.autocrlf"):
        _git(tmp_path, "-c", "core.autocrlf=true", "clone", "-q", str(example_repo), str(clone))
        _git(clone, "config", "core.autocrlf", "true")  # for the commands after the clone
    else:
        _git(tmp_path, "clone", "-q", str(example_repo), str(clone))
    target = clone / VIRTUALSERVICE
    assert b"\r\n" in target.read_bytes()
    assert b"\r\n" not in _git(clone, "show", f"HEAD:{VIRTUALSERVICE}").encode()
    before = _snapshot(clone / "deploy")

    fresh = _meshcanary(clone, "render", "--check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "render is fresh" in fresh.stderr
    again = _meshcanary(clone, "render")
    assert again.returncode == 0, again.stderr
    assert "no file(s) changed" in again.stderr
    assert _snapshot(clone / "deploy") == before
    checked = _meshcanary(clone, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    edited = target.read_bytes().replace(b"weight: 30", b"weight: 31")
    target.write_bytes(edited)
    (clone / RELEASE).write_bytes(
        (clone / RELEASE).read_bytes().replace(b"weight: 70}", b"weight: 60}")
    )
    (clone / RELEASE).write_bytes(
        (clone / RELEASE).read_bytes().replace(b"weight: 30}", b"weight: 40}")
    )
    refused = _meshcanary(clone, "render")
    assert refused.returncode == 2, refused.stderr
    line = edited.split(b"\r\n").index(b"      weight: 31") + 1
    assert refused.stderr.startswith(
        f"{VIRTUALSERVICE}:{line}:1: error: edited by hand since meshcanary wrote it"
    ), refused.stderr
    assert _snapshot(clone / "deploy") == {
        **before,
        "overlays/prod/micro-api/virtualservice.yaml": edited,
    }
    _git(clone, "checkout", "--", VIRTUALSERVICE, RELEASE)

    edit = _meshcanary(clone, "set-weights", "prod", "micro-api", "v1=60", "v2=40")
    assert edit.returncode == 0, edit.stderr
    changed = sorted(line[3:] for line in _git(clone, "status", "--porcelain").splitlines())
    assert changed == sorted([RELEASE, f"{PROD}/micro-api/.meshcanary.json", VIRTUALSERVICE])
    assert b"\r\n" in (clone / PROD / "micro-api/destinationrule.yaml").read_bytes()
    assert _meshcanary(clone, "render", "--check").returncode == 0


def test_recover_leaves_a_link_named_like_a_staging_folder_alone(
    example_repo: Path, tmp_path: Path
) -> None:
    """Guarantee: a symbolic link named like a staging folder (a pull request can commit one)
    is never put in place of a missing environment folder, nor followed to delete what it
    points to: recover leaves the link and its target as they are."""
    import shutil

    overlays = example_repo / "deploy/overlays"
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "kustomization.yaml", "resources: []\n")
    shutil.rmtree(overlays / "prod")
    (overlays / ".prod.old").symlink_to(elsewhere)
    (overlays / ".dev.0123456789abcdef.new").symlink_to(elsewhere)
    swap.recover(example_repo, "deploy/overlays")
    assert not os.path.lexists(overlays / "prod")
    assert (overlays / ".prod.old").is_symlink()
    assert (overlays / ".dev.0123456789abcdef.new").is_symlink()
    assert _snapshot(elsewhere) == {"kustomization.yaml": b"resources: []\n"}


# ---------------------------------------------------------------------------------------
# Generated paths that are not files of the repository: never read, never shown

OUTSIDE_TEXT = "s3cr3t-outside-the-repository"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    return write(tmp_path / "outside" / "secret.json", f'{{"token": "{OUTSIDE_TEXT}"}}\n')


@pytest.mark.parametrize(
    "generated",
    ["deploy/overlays/prod/.meshcanary.json", "deploy/overlays/prod/micro-api/virtualservice.yaml"],
)
def test_a_generated_file_that_is_a_link_out_is_not_read(
    example_repo: Path, cli, secret_file: Path, generated: str
) -> None:
    """Before, `render --check` printed the outside file's contents in its diff."""
    path = example_repo / generated
    path.unlink()
    path.symlink_to(secret_file)
    outcome = cli("--repo", example_repo, "render", "--check")
    assert outcome.code == 1
    assert OUTSIDE_TEXT not in outcome.out + outcome.err
    assert "(a symbolic link, not read)" in outcome.out
    check = cli("--repo", example_repo, "check", "--no-cache")
    assert OUTSIDE_TEXT not in check.out + check.err


def test_a_generated_file_that_is_a_fifo_does_not_hang_render(example_repo: Path) -> None:
    path = example_repo / "deploy/overlays/prod/micro-api/virtualservice.yaml"
    path.unlink()
    os.mkfifo(path)
    done = subprocess.run(
        [sys.executable, "-m", "meshcanary", "--repo", str(example_repo), "render", "--check"],
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails here
        check=False,
    )
    assert done.returncode == 1, done.stderr
    # Not a file meshcanary wrote: the render makes it anew.
    assert done.stdout.startswith(
        "--- /dev/null\n+++ b/deploy/overlays/prod/micro-api/virtualservice.yaml\n"
    )


def test_an_environment_folder_that_leads_out_is_refused(
    example_repo: Path, cli, secret_file: Path
) -> None:
    overlay = example_repo / "deploy/overlays/prod"
    outside = secret_file.parent
    for child in overlay.iterdir():  # the look of an overlay, outside the repository
        if child.is_file():
            (outside / child.name).write_bytes(child.read_bytes())
    (outside / "micro-api").mkdir()
    (outside / "micro-api" / "virtualservice.yaml").write_text(
        OUTSIDE_TEXT + "\n", encoding="utf-8"
    )
    import shutil

    shutil.rmtree(overlay)
    overlay.symlink_to(outside)
    for args in (("render", "--check"), ("render",), ("check", "--no-cache")):
        outcome = cli("--repo", example_repo, *args)
        assert outcome.code == 2, (args, outcome)
        assert outcome.err.startswith(
            "deploy/overlays/prod:1:1: error: leads outside the repository through a symbolic link"
        ), (args, outcome.err)
        assert OUTSIDE_TEXT not in outcome.out + outcome.err
    assert (outside / "micro-api" / "virtualservice.yaml").read_text() == OUTSIDE_TEXT + "\n"


def test_a_service_folder_that_leads_out_is_not_walked_by_the_hook(
    example_repo: Path, secret_file: Path
) -> None:
    """`check PATH` compares only the named service's folder: one that is a link is listed,
    not followed. Before, its files were read: here one of them is a link to /dev/zero, and
    reading it never ends."""
    import shutil

    service = example_repo / "deploy/overlays/prod/micro-api"
    shutil.rmtree(service)
    (secret_file.parent / "virtualservice.yaml").symlink_to("/dev/zero")
    service.symlink_to(secret_file.parent)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "meshcanary", "--repo", str(example_repo)),
            *("check", "--no-cache", "environments/prod/micro-api.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,  # reading /dev/zero would end here
        check=False,
    )
    assert done.returncode in (1, 2), done.stderr
    assert OUTSIDE_TEXT not in done.stdout + done.stderr
