"""The repository's lock (lock.py): where it lives, who waits for whom, and lock files that
are not what they should be.

Real git repositories (worktrees, submodules) and the installed `meshcanary` script in
processes of its own; a user who cannot open a file is `nobody` (through setpriv) when the
tests run as root, who ignores permission bits.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from meshcanary import lock
from tests.support import SYSTEM_TMP, isolate_git
from tests.support.bounds import count_calls

SCRIPT = Path(sys.executable).parent / "meshcanary"
NOBODY = 65534
STRANGER = 12345  # a user id no test runs as


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No one's own git configuration, and a lock that never makes a test wait long."""
    isolate_git(tmp_path_factory, monkeypatch)
    monkeypatch.setenv("MESHCANARY_LOCK_TIMEOUT", "10")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def common_dir(folder: Path) -> Path:
    """What git itself says is the repository's common folder, seen from `folder`."""
    return Path(git(folder, "rev-parse", "--path-format=absolute", "--git-common-dir")).resolve()


def meshcanary(
    repo: Path, *args: str, user: int | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`meshcanary --repo REPO ARGS...` as a process of its own (as `user` when given)."""
    prefix = []
    if user is not None:
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    return subprocess.run(
        [*prefix, str(SCRIPT), "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
        timeout=120,
    )


@contextmanager
def held_elsewhere(repo: Path, mode: str) -> Iterator[None]:
    """The repository's lock held (`exclusive` or `shared`) by another process, until the end."""
    code = (
        "import sys\nfrom pathlib import Path\nfrom meshcanary import lock\n"
        "with getattr(lock, sys.argv[2])(Path(sys.argv[1])):\n"
        "    print('held', flush=True)\n    sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(repo), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline() == "held\n"
        yield
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(folder).parts
    }


def assert_one_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one `error: ` line and its hint, no traceback."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert lines[1].startswith("  hint: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


@pytest.fixture
def repo(example_repo: Path) -> Path:
    """The example's prod environment, rendered and committed, stale by one weight change."""
    for folder in (example_repo / "environments", example_repo / "deploy/overlays"):
        for entry in folder.iterdir():
            if entry.name != "prod":
                shutil.rmtree(entry)
    git(example_repo, "init", "-q")
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-qm", "start")
    release = example_repo / "environments/prod/micro-api.yaml"
    release.write_text(
        release.read_text(encoding="utf-8")
        .replace("weight: 70}", "weight: 60}")
        .replace("weight: 30}", "weight: 40}"),
        encoding="utf-8",
    )
    return example_repo


@pytest.fixture
def world_readable(tmp_path: Path) -> Iterator[Path]:
    """A folder outside pytest's (private) temporary folder that another user can enter."""
    folder = Path(tempfile.mkdtemp(prefix="meshcanary-lock-", dir=SYSTEM_TMP))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _as_root() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("another user's files need root (to chown) and setpriv (to run as nobody)")


# --- where the lock lives --------------------------------------------------------------------


def test_every_worktree_submodule_and_subfolder_finds_the_lock_in_the_common_git_folder(
    repo: Path, tmp_path: Path
) -> None:
    """Guarantee: the lock of a repository is one file for all its work trees, whatever
    TMPDIR says: in the folder `git rev-parse --git-common-dir` names, for the main work
    tree, a linked worktree (whose `.git` is a file), a subfolder of either, a worktree
    whose `.git` names its folder relatively, a path through a symbolic link, and a
    submodule (its own repository)."""
    worktree = tmp_path / "worktree"
    git(repo, "worktree", "add", "-q", str(worktree), "-b", "other")
    assert (worktree / ".git").is_file()
    relative = tmp_path / "relative"
    git(repo, "worktree", "add", "-q", str(relative), "-b", "third")
    gitdir = (relative / ".git").read_text(encoding="utf-8").removeprefix("gitdir: ").strip()
    (relative / ".git").write_text(
        f"gitdir: {os.path.relpath(gitdir, relative)}\n", encoding="utf-8"
    )
    link = tmp_path / "link"
    link.symlink_to(worktree)
    library = tmp_path / "library"
    library.mkdir()
    git(library, "init", "-q")
    git(library, "commit", "-q", "--allow-empty", "-m", "library")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    submodule = repo / "lib"
    assert (submodule / ".git").is_file()

    expected = (repo / ".git").resolve() / "meshcanary.lock"
    for root in (repo, worktree, worktree / "deploy", relative, link, repo / "environments"):
        assert common_dir(root) / "meshcanary.lock" == expected, root
        assert lock.lock_path(root) == expected, root
    assert lock.lock_path(submodule) == common_dir(submodule) / "meshcanary.lock"
    assert lock.lock_path(submodule) != expected


def test_without_git_the_lock_stays_in_the_temporary_folder(example_repo: Path) -> None:
    """Guarantee: a repository that git does not know keeps its lock in the temporary folder,
    named after the repository's path, as before."""
    path = lock.lock_path(example_repo)
    assert path.parent == Path(tempfile.gettempdir())
    assert path.name.startswith("meshcanary-") and path.name.endswith(".lock")
    assert lock.lock_path(example_repo / "environments" / "..") == path


def test_the_suites_lock_files_stay_in_its_own_temporary_folder(
    example_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The suite makes thousands of repositories without git: their lock files go to the
    session's folder, which pytest removes with its old runs, not to the system's."""
    assert lock.lock_path(example_repo).is_relative_to(tmp_path_factory.getbasetemp())


# --- readers and writers -----------------------------------------------------------------


def test_readers_wait_for_a_writer_and_a_writer_for_readers(repo: Path) -> None:
    """Guarantee: while a writer holds the lock, `check`, `build`, `diff`, `status` and
    `render --check` wait for it (and stop clearly when they cannot wait longer); while a
    reader holds it, a writer waits; readers do not wait for each other."""
    readers = [["check"], ["build"], ["diff"], ["status"], ["render", "--check"]]
    with held_elsewhere(repo, "exclusive"):
        for args in readers:
            done = meshcanary(repo, *args, MESHCANARY_LOCK_TIMEOUT="0.3")
            assert done.returncode == 2, (args, done.stderr)
            assert "another meshcanary command is writing in" in done.stderr, args
            assert "Traceback" not in done.stderr
    before = snapshot(repo)
    with held_elsewhere(repo, "shared"):
        writer = meshcanary(repo, "render", MESHCANARY_LOCK_TIMEOUT="0.3")
        assert writer.returncode == 2, writer.stderr
        assert f"another meshcanary command is reading {repo}" in writer.stderr
        assert snapshot(repo) == before
        reader = meshcanary(repo, "render", "--check", MESHCANARY_LOCK_TIMEOUT="0.3")
        assert reader.returncode == 1, reader.stderr  # stale, and not kept waiting
    assert meshcanary(repo, "render").returncode == 0


def test_a_shared_request_inside_the_exclusive_lock_is_granted_at_once(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guarantee: the lock is re-entrant within a process: an edit that renders and then
    checks under its exclusive lock never waits for itself; the lock stays exclusive until
    the outermost hold ends. An exclusive request inside a shared hold is a programming
    error (flock would let go of the lock to convert it), not a wait."""
    with lock.exclusive(repo):
        acquired = count_calls(monkeypatch, lock, "_acquire")
        waited = count_calls(monkeypatch, lock, "_wait")
        with lock.shared(repo), lock.exclusive(repo), lock.shared(repo):
            pass
        # At once: the holds inside neither open the lock file again nor wait on it.
        assert (len(acquired), len(waited)) == (0, 0)
        # Another open file of the lock is another holder: it finds the lock still exclusive.
        with open(lock.lock_path(repo), "rb") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    inside = pytest.raises(RuntimeError, match="exclusive lock inside a shared")
    with lock.shared(repo), inside, lock.exclusive(repo):
        pass
    assert meshcanary(repo, "status", MESHCANARY_LOCK_TIMEOUT="0.3").returncode == 0


# --- lock files that are not what they should be --------------------------------------------


def _fifo(path: Path, _elsewhere: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path, _elsewhere: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


def _dangling(path: Path, elsewhere: Path) -> None:
    path.symlink_to(elsewhere / "created-through-the-link")


def _folder(path: Path, _elsewhere: Path) -> None:
    path.mkdir()
    (path / "inside").write_text("x", encoding="utf-8")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_folder, "it is a folder"),
        (_dangling, "it is a symbolic link, which meshcanary does not follow there"),
        (_fifo, "it is not a regular file"),
        (_socket, "it is not a regular file"),
    ],
    ids=["folder", "dangling-link", "fifo", "socket"],
)
@pytest.mark.parametrize("command", [["render"], ["check"], ["render", "--check"]])
def test_a_lock_path_that_is_not_a_file_stops_readers_and_writers_with_one_clear_line(
    repo: Path, tmp_path: Path, make: object, says: str, command: list[str]
) -> None:
    """Guarantee: a lock path in `.git/` that is a folder, a dangling link, a FIFO or a socket
    stops a writer and a reader at once (no waiting on a FIFO) with exit 2, one `error:`
    line naming the lock file and why, a hint, and no traceback; nothing is written, and
    nothing is created where a link points."""
    path = repo / ".git" / "meshcanary.lock"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    make(path, elsewhere)  # type: ignore[operator]
    before = snapshot(repo)
    done = meshcanary(repo, *command)
    assert_one_error(done, f"cannot use the lock file {path}: {says}")
    assert snapshot(repo) == before
    assert list(elsewhere.iterdir()) == []


def test_a_link_in_the_temporary_folder_is_not_followed_to_a_file_of_ours(
    example_repo: Path, tmp_path: Path
) -> None:
    """Guarantee: without git the lock lives in the temporary folder, where another user can
    put a link at its name in advance; meshcanary does not follow it (the file it points to
    keeps its bytes and its time stamp) and stops with one clear line."""
    shared_tmp = tmp_path / "shared-tmp"
    shared_tmp.mkdir(mode=0o1777)
    ours = tmp_path / "ours.txt"
    ours.write_text("precious\n", encoding="utf-8")
    stamp = ours.stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(shared_tmp))
        path = lock.lock_path(example_repo)
    assert path.parent == shared_tmp
    path.symlink_to(ours)
    for command in (["render"], ["check"]):
        done = meshcanary(example_repo, *command, TMPDIR=str(shared_tmp))
        assert_one_error(done, f"cannot use the lock file {path}: it is a symbolic link")
    assert ours.read_text(encoding="utf-8") == "precious\n"
    assert ours.stat().st_mtime_ns == stamp


def _readable_repo(repo: Path, place: Path) -> Path:
    """`repo` moved to `place`, readable (not writable) by everyone."""
    moved = Path(shutil.copytree(repo, place / "repo", symlinks=True))
    for folder, _, files in os.walk(moved):
        os.chmod(folder, 0o755)  # noqa: S103 - readable by the other user is the point
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return moved


def test_a_lock_file_the_user_cannot_open_stops_readers_and_writers_with_one_clear_line(
    repo: Path, world_readable: Path
) -> None:
    """Guarantee: a lock file the user may not open (another user's, mode 0600) stops a
    writer and a reader with exit 2, one line naming the file and the reason, no traceback."""
    _as_root()
    moved = _readable_repo(repo, world_readable)
    path = moved / ".git" / "meshcanary.lock"
    path.write_bytes(b"")
    os.chown(path, STRANGER, STRANGER)
    path.chmod(0o600)
    cache = world_readable / "cache"
    cache.mkdir(mode=0o1777)
    for command in (["render"], ["check"], ["status"]):
        done = meshcanary(moved, *command, user=NOBODY, MESHCANARY_CACHE_DIR=str(cache))
        assert_one_error(done, f"cannot use the lock file {path}: Permission denied")


def test_a_lock_file_another_user_put_in_the_temporary_folder_is_refused(
    example_repo: Path, world_readable: Path
) -> None:
    """Guarantee: without git, a lock file in the shared temporary folder that belongs to
    another user (who could hold it to stop every command, or make it something else later)
    is refused with one clear line that says whose it is; one of the user's own is used."""
    _as_root()
    moved = _readable_repo(example_repo, world_readable)
    shared_tmp = world_readable / "tmp"
    shared_tmp.mkdir()
    shared_tmp.chmod(0o1777)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(shared_tmp))
        path = lock.lock_path(moved)
    path.write_bytes(b"")
    os.chown(path, STRANGER, STRANGER)
    path.chmod(0o644)  # readable: a read-only descriptor could lock it
    env = {"TMPDIR": str(shared_tmp), "MESHCANARY_CACHE_DIR": str(shared_tmp / "cache")}
    done = meshcanary(moved, "render", "--check", user=NOBODY, **env)
    assert_one_error(
        done, f"cannot use the lock file {path}: it belongs to another user (uid {STRANGER})"
    )
    path.unlink()
    path.write_bytes(b"")
    os.chown(path, NOBODY, NOBODY)
    done = meshcanary(moved, "render", "--check", user=NOBODY, **env)
    assert done.returncode == 0, done.stderr


def test_a_reader_in_a_checkout_it_cannot_write_reads_without_a_lock_file(
    repo: Path, world_readable: Path
) -> None:
    """Guarantee: in a checkout the user cannot write (another user's clone, a read-only
    mount) where no lock file exists yet, the readers still read (no writer can hold a lock
    file that does not exist); a writer stops with one clear line."""
    _as_root()
    moved = _readable_repo(repo, world_readable)
    assert meshcanary(moved, "render").returncode == 0  # fresh, so that check is clean
    (moved / ".git" / "meshcanary.lock").unlink()
    cache = world_readable / "cache"
    cache.mkdir(mode=0o1777)
    env = {"MESHCANARY_CACHE_DIR": str(cache)}
    for command in (["check"], ["render", "--check"], ["status"], ["build"]):
        done = meshcanary(moved, *command, user=NOBODY, **env)
        assert done.returncode == 0, (command, done.stderr)
    assert not (moved / ".git" / "meshcanary.lock").exists()
    path = moved / ".git" / "meshcanary.lock"
    assert_one_error(
        meshcanary(moved, "render", user=NOBODY, **env),
        f"cannot use the lock file {path}: Permission denied",
    )
