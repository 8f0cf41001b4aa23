"""`render` writes only the service folders that changed, each in a swap of its own, when the
environment's own files stay as they are: the other services' files keep their inodes (and
`check`'s memo of their digests). The result, the output and the guarantees are a whole
render's: every conflict stops the render before its first write, and a render killed between
two swaps is finished by the next."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import Outcome, write
from tests.support.locations import edit

OVERLAYS = Path("deploy/overlays")
PROD = OVERLAYS / "prod"
MICRO_API = "environments/prod/micro-api.yaml"
CHECKOUT = "environments/prod/checkout.yaml"


def _move_micro_api(repo: Path) -> None:
    edit(repo / MICRO_API, "replicas: 3, weight: 70}", "replicas: 3, weight: 60}")
    edit(repo / MICRO_API, "replicas: 3, weight: 30}", "replicas: 3, weight: 40}")


def _move_checkout(repo: Path) -> None:
    edit(repo / CHECKOUT, "replicas: 4, weight: 100}", "replicas: 4, weight: 80}")
    edit(repo / CHECKOUT, "replicas: 1, weight: 0}", "replicas: 1, weight: 20}")


def _inodes(folder: Path) -> dict[str, int]:
    """Every file and folder under `folder` (itself included, as "."): its inode."""
    found = {".": folder.stat().st_ino}
    found.update(
        {p.relative_to(folder).as_posix(): p.stat().st_ino for p in sorted(folder.rglob("*"))}
    )
    return found


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` but those of staging folders (.<env>.<token>.new and alike)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.relative_to(folder).parts[0].startswith(".")
    }


def _fresh(repo: Path, tmp_path: Path, cli: Callable[..., Outcome]) -> dict[str, bytes]:
    """The overlays a render from nothing writes for the repository's release files now."""
    copy = tmp_path / "fresh"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(repo / "environments", copy / "environments")
    shutil.copytree(repo / "deploy/base", copy / "deploy/base")
    assert cli("--repo", copy, "render").code == 0
    return _files(copy / OVERLAYS)


def _outside(inodes: dict[str, int], *folders: str) -> dict[str, int]:
    return {
        path: inode
        for path, inode in inodes.items()
        if not any(path == f or path.startswith(f"{f}/") for f in folders)
    }


def _render(
    repo: Path,
    tmp_path: Path,
    cli: Callable[..., Outcome],
    swapped: tuple[str, ...],
    *flags: str,
) -> tuple[Outcome, dict[str, int], dict[str, int]]:
    """Render the repository, changed already; check that it wrote what a render from nothing
    writes, and that every file and folder outside the `swapped` ones (under deploy/overlays)
    is the one it was. The inodes before and after, for more."""
    overlays = repo / OVERLAYS
    before = _inodes(overlays)
    expected = _fresh(repo, tmp_path, cli)

    done = cli("--repo", repo, "render", *flags)

    assert done.code == 0, done.err
    after = _inodes(overlays)
    assert _outside(after, *swapped) == _outside(before, *swapped)
    assert _files(overlays) == expected
    return done, before, after


def test_a_one_release_change_swaps_only_its_service_folder(
    example_repo: Path, tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    _move_micro_api(example_repo)

    # Every other file and folder is the one it was, the environment's folder included.
    done, before, after = _render(example_repo, tmp_path, cli, ("prod/micro-api",))

    assert done.out == (
        f"update  {PROD}/micro-api/.meshcanary.json\nupdate  {PROD}/micro-api/virtualservice.yaml\n"
    )
    assert done.err == "rendered 4 environment(s): 2 file(s) changed\n"
    assert after["prod/micro-api"] != before["prod/micro-api"]  # swapped in whole
    assert cli("--repo", example_repo, "render", "--check").code == 0


def test_two_changed_services_are_swapped_each_alone(
    example_repo: Path, tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    _move_micro_api(example_repo)
    _move_checkout(example_repo)

    done, _, _ = _render(example_repo, tmp_path, cli, ("prod/micro-api", "prod/checkout"))

    assert done.out == "".join(
        f"update  {PROD}/{path}\n"
        for path in (
            "checkout/.meshcanary.json",
            "checkout/virtualservice.yaml",
            "micro-api/.meshcanary.json",
            "micro-api/virtualservice.yaml",
        )
    )
    assert done.err == "rendered 4 environment(s): 4 file(s) changed\n"


def _add_orders(repo: Path) -> None:
    shutil.copytree(repo / "deploy/base/checkout", repo / "deploy/base/orders")
    text = (repo / CHECKOUT).read_text(encoding="utf-8")
    text = text.replace("service: checkout", "service: orders")
    (repo / "environments/prod/orders.yaml").write_text(
        text.replace("base: deploy/base/checkout", "base: deploy/base/orders"), encoding="utf-8"
    )


def _remove_checkout(repo: Path) -> None:
    (repo / CHECKOUT).unlink()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_add_orders, id="a-service-added"),
        pytest.param(_remove_checkout, id="a-service-removed"),
    ],
)
def test_a_service_added_or_removed_renders_the_environment_whole(
    example_repo: Path,
    tmp_path: Path,
    cli: Callable[..., Outcome],
    change: Callable[[Path], None],
) -> None:
    """The environment's kustomization.yaml lists its services: it changes with them, and the
    environment's folder is swapped whole, as before per-service swaps."""
    change(example_repo)
    _move_micro_api(example_repo)

    done, before, after = _render(example_repo, tmp_path, cli, ("prod",))

    assert f"update  {PROD}/kustomization.yaml\n" in done.out
    assert after["prod"] != before["prod"]  # the environment's folder, swapped whole
    assert cli("--repo", example_repo, "render", "--check").code == 0


def _hand_edit_micro_api(repo: Path) -> bytes:
    target = repo / PROD / "micro-api/virtualservice.yaml"
    target.write_text(
        target.read_text(encoding="utf-8").replace("weight: 30", "weight: 31"), encoding="utf-8"
    )
    return target.read_bytes()


def test_a_conflict_in_the_second_service_stops_the_write_of_the_first(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    """checkout's folder would be swapped first, micro-api's second: micro-api's hand edit
    stops the render before checkout's folder is written."""
    overlays = example_repo / OVERLAYS
    _move_micro_api(example_repo)
    _move_checkout(example_repo)
    edited = _hand_edit_micro_api(example_repo)
    files, inodes = _files(overlays), _inodes(overlays)

    refused = cli("--repo", example_repo, "render")

    assert refused.code == 2
    assert refused.err.startswith(f"{PROD}/micro-api/virtualservice.yaml:")
    assert "edited by hand since meshcanary wrote it" in refused.err
    assert _files(overlays) == files
    assert _inodes(overlays) == inodes
    assert (example_repo / PROD / "micro-api/virtualservice.yaml").read_bytes() == edited


def test_force_overwrites_the_hand_edit_and_still_swaps_only_the_changed_services(
    example_repo: Path, tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    _move_micro_api(example_repo)
    _move_checkout(example_repo)
    _hand_edit_micro_api(example_repo)

    _render(example_repo, tmp_path, cli, ("prod/micro-api", "prod/checkout"), "--force")


# A render in a process of its own that kills itself (SIGKILL) once both service folders are
# staged: before the first is swapped in ("staged"), or between the two swaps ("between").
_KILLED_RENDER = textwrap.dedent(
    """
    import os, signal, sys
    from meshcanary.__main__ import main
    from meshcanary.render import swap

    repo, kill_at = sys.argv[1], int(sys.argv[2])
    swaps = []
    put_in_place = swap._Swap.put_in_place

    def counted(self):
        swaps.append(self.folder)
        if len(swaps) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        put_in_place(self)

    swap._Swap.put_in_place = counted
    sys.exit(main(["--repo", repo, "render"]))
    """
)


@pytest.mark.parametrize(("where", "swapped"), [("staged", 0), ("between", 1)])
def test_a_render_killed_between_two_service_swaps_is_finished_by_the_next(
    example_repo: Path, tmp_path: Path, cli: Callable[..., Outcome], where: str, swapped: int
) -> None:
    overlays = example_repo / OVERLAYS
    old = _files(overlays)
    _move_micro_api(example_repo)
    _move_checkout(example_repo)
    new = _fresh(example_repo, tmp_path, cli)

    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_RENDER, str(example_repo), str(swapped + 1)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # checkout's folder is swapped first: the new one after the first swap; micro-api's is
    # the old one. Each folder is whole.
    now = _files(overlays)
    first = ("prod/checkout/",) if swapped else ()
    for path, text in now.items():
        assert text == (new if path.startswith(first) else old)[path], (where, path)
    assert now.keys() == old.keys()
    # Both staging folders are left: micro-api's new tree, and checkout's (the old tree once
    # the new one is swapped in).
    staging = sorted(p.name.split(".")[2] for p in overlays.iterdir() if p.name.startswith("."))
    assert staging == ["checkout", "micro-api"]
    stale = cli("--repo", example_repo, "render", "--check")
    assert stale.code == 1
    assert f"+++ b/{PROD}/micro-api/virtualservice.yaml" in stale.out
    assert (f"+++ b/{PROD}/checkout/virtualservice.yaml" in stale.out) == (not swapped)

    again = cli("--repo", example_repo, "render")

    assert again.code == 0, again.err
    changed = 2 if swapped else 4
    assert again.err == f"rendered 4 environment(s): {changed} file(s) changed\n"
    assert sorted(os.listdir(overlays)) == [
        "ambient",
        "dev",
        "prod",
        "staging",
    ]  # no staging folder
    assert _files(overlays) == new
    assert cli("--repo", example_repo, "render", "--check").code == 0


@contextmanager
def _small_disk(folder: Path) -> Iterator[Path]:
    """A tmpfs of 2 MiB at `folder`: a disk that fills up for real (mounting needs root)."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"a full disk is a small tmpfs, and mounting one failed: {mounted.stderr}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def _fill(disk: Path, leave_pages: int) -> Path:
    """Fill `disk` up, then free `leave_pages` pages of 4 KiB; tmpfs counts them exactly."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    os.truncate(filler, max(0, filler.stat().st_size - leave_pages * 4096))
    return filler


def test_a_disk_that_fills_up_while_two_service_folders_are_staged_changes_neither(
    example_repo: Path, tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    """Both folders are staged before either is swapped in: with any room left on the disk,
    the render writes both or fails, leaving both as they were and no staging folder.

    micro-api's folder holds a large file a person added, copied into its staging folder: were
    the folders staged and swapped one at a time, checkout's would fit and micro-api's not.
    """
    notes = write(example_repo / PROD / "micro-api/notes.txt", "x" * 40_000)
    _move_micro_api(example_repo)
    _move_checkout(example_repo)
    old = _files(example_repo / OVERLAYS)
    new = {**_fresh(example_repo, tmp_path, cli), "prod/micro-api/notes.txt": notes.read_bytes()}
    outcomes = set()
    with _small_disk(tmp_path / "disk") as disk:
        for leave_pages in range(0, 40, 2):
            repo = disk / "repo"
            shutil.rmtree(repo, ignore_errors=True)
            shutil.copytree(example_repo, repo)
            filler = _fill(disk, leave_pages)
            done = cli("--repo", repo, "render")
            filler.unlink()
            overlays = repo / OVERLAYS
            assert sorted(os.listdir(overlays)) == ["ambient", "dev", "prod", "staging"], (
                leave_pages
            )
            if done.code == 0:
                assert _files(overlays) == new, leave_pages
            else:
                assert done.code == 2, done.err
                assert "No space left on device" in done.err, done.err
                assert _files(overlays) == old, leave_pages
            outcomes.add(done.code)
    assert outcomes == {0, 2}  # the range reaches from too little room to enough
