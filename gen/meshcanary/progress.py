"""How far a long run has got: the core says it, the command line may show it.

The core never prints. It calls `start` and `advance`; by default they do nothing. The
command line installs a `Display` (a Rich progress bar on stderr) when stderr is a terminal,
and only then: piped output, CI logs and tests see nothing of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import TaskID


class Display(Protocol):
    def start(self, what: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class _Silent:
    def start(self, what: str, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


_display: Display = _Silent()


_quiet = threading.local()


def start(what: str, total: int) -> None:
    """A stage of `total` steps begins (the previous one, if any, is done)."""
    if not getattr(_quiet, "on", False):
        _display.start(what, total)


def advance(count: int = 1) -> None:
    """`count` more steps of the current stage are done; safe from any thread."""
    if not getattr(_quiet, "on", False):
        _display.advance(count)


@contextmanager
def quiet() -> Iterator[None]:
    """What this thread does in the block is not shown: work done beside a stage that another
    thread shows (`check` renders while kustomize builds)."""
    saved = getattr(_quiet, "on", False)
    _quiet.on = True
    try:
        yield
    finally:
        _quiet.on = saved


class _Bar:
    """A Rich progress bar on stderr, one line per stage, cleared when the run ends."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: TaskID | None = None

    def start(self, what: str, total: int) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.update(self._task, completed=self._progress.tasks[-1].total)
            self._task = self._progress.add_task(what, total=total)

    def advance(self, count: int) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.advance(self._task, count)

    @contextmanager
    def shown(self) -> Iterator[None]:
        with self._progress:
            yield


@contextmanager
def bar() -> Iterator[None]:
    """Show a progress bar on stderr while the block runs."""
    global _display
    shown = _Bar()
    saved, _display = _display, shown
    try:
        with shown.shown():
            yield
    finally:
        _display = saved
