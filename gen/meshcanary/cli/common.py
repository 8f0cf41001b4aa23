"""What every command of the command line shares: the settings the callback reads, turning a
returned exit code into the process's, and the notes and warnings on stderr.

Nothing here imports Typer: the quick path (`cli/quick.py`) runs `lint` and `check` with it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from meshcanary.problem import Problem
    from meshcanary.workspace import Workspace

F = TypeVar("F", bound=Callable[..., int])


def exits(function: F) -> F:
    """Turn a command's returned exit code into the exit of the process."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        import typer  # loaded already: only Typer calls the commands it wraps

        raise typer.Exit(function(*args, **kwargs))

    return cast(F, wrapper)


class Settings:
    """What the callback read from the options of the program, for every command to use."""

    repo: Path = Path()
    # The repository and the git work tree around it: reports show paths relative to the
    # work tree's top. `base` is the folder the paths a command reports are relative to.
    workspace: Workspace | None = None
    base: Path | None = None
    quiet: bool = False
    # How kustomize runs (--allow-remote, --timeout, --kustomize): see `kustomize_settings`.
    allow_remote: bool = False
    timeout: float | None = None
    kustomize: str | None = None


@contextmanager
def kustomize_settings() -> Iterator[None]:
    """The run's kustomize options in force while it lasts.

    Entering imports the kustomize runner: the callback enters it for every command but
    `lint`, which enters it only for a folder it is given (a Kustomize folder is built).
    """
    from meshcanary import kustomize

    with kustomize.run_settings(
        allow_remote=Settings.allow_remote, timeout=Settings.timeout, kustomize=Settings.kustomize
    ):
        yield


def settle(
    repo: Path | None,
    *,
    allow_remote: bool,
    timeout: float,
    quiet: bool,
    kustomize: str | None,
    command: str | None,
) -> list[AbstractContextManager[Any]]:
    """Read the program's options into `Settings`; the contexts the run is to hold open.

    The Typer callback and the quick path both start a run here.
    """
    from meshcanary.workspace import Workspace, find_root

    if repo is not None and not repo.is_dir():
        from meshcanary.errors import InputError

        raise InputError(f"--repo {repo}: no such directory")
    Settings.repo = repo.resolve() if repo is not None else find_root(Path.cwd())
    Settings.workspace = Workspace.at(Settings.repo)
    Settings.base = Settings.repo
    Settings.quiet = quiet
    Settings.allow_remote = allow_remote
    Settings.timeout = timeout
    Settings.kustomize = kustomize
    held: list[AbstractContextManager[Any]] = []
    if sys.stderr.isatty() and not quiet:
        from meshcanary import progress

        held.append(progress.bar())
    # lint enters them itself, for a folder it is given: linting files loads no kustomize.
    if command != "lint":
        held.append(kustomize_settings())
    return held


class Format(StrEnum):
    text = "text"
    json = "json"


def warn(problems: list[Problem]) -> None:
    """Problems that do not stop the command; with --quiet, only errors among them."""
    from meshcanary.problem import Severity

    for problem in problems:
        if problem.severity is Severity.ERROR or not Settings.quiet:
            print(problem.format(), file=sys.stderr)


def note(text: str) -> None:
    """What a command says it did, on stderr; nothing with --quiet."""
    if not Settings.quiet:
        print(text, file=sys.stderr)


def use_color(stream: Any) -> bool:
    """Colour on a terminal; NO_COLOR turns it off, FORCE_COLOR on (no-color.org, as Rich)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "0") not in ("", "0"):
        return True
    return bool(stream.isatty())
