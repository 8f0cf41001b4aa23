"""The work a run did, counted; and a guard for a run that should be bounded but hangs.

Tests of a bound assert on work (how many nodes the loader built, how many evaluations or
kustomize runs there were, what the engine says stopped it), never on elapsed seconds, which
depend on the machine and on what else it runs.
"""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest


@dataclass
class Calls:
    """The calls made to one function, each as its arguments."""

    made: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.made)


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> Calls:
    """Record every call of `owner.name` (a module's function or a class's method), then make it."""
    real = getattr(owner, name)
    calls = Calls()

    @functools.wraps(real)
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.made.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


class Hung(Exception):
    """A run the test expected to be bounded was still going when the guard ran out."""


@contextmanager
def hang_guard(seconds: int = 120) -> Iterator[None]:
    """Stop an in-process run that hangs, so that the suite goes on and the test fails.

    A guard, not an assertion: far beyond any bound under test (the test asserts on the
    outcome that says the run was stopped), as `timeout=` is for a subprocess.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return

    def hung(_signal: int, _frame: FrameType | None) -> None:
        raise Hung(f"still running after {seconds} s: a hang, not a bound")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# Runs meshcanary's `main` in this process and writes what it measured to the file named
# first: the exit code; VmHWM, the high-water mark of this process's own memory (not
# ru_maxrss: Linux carries the forking test runner's size across exec into it, so a test
# runner grown past a bound failed every case); the bytes the run read (rchar: files, pipes);
# and what the manifest loader built: documents, the nodes of the text it visited, and the
# most values one document holds once its aliases are expanded.
_PROBE = """
import json, resource, sys
from meshcanary import fastyaml, manifest
from meshcanary.__main__ import main

built = {"documents": 0, "nodes": 0, "values": 0}
Builder = manifest._Builder
real_init, real_call = Builder.__init__, Builder.__call__

def init(self, loader):
    built["documents"] += 1
    real_init(self, loader)

def call(self, node, depth=0):
    built["nodes"] += 1
    try:
        return real_call(self, node, depth)
    finally:
        if depth == 0:
            built["values"] = max(built["values"], self.total)

Builder.__init__, Builder.__call__ = init, call

# The fast reader builds a document without a node tree: it counts once it returns one (None
# is a document without nodes, which the Builder never sees; when the fast reader is unsure,
# the Builder builds the document).
real_load = fastyaml.Reader.load

def load(self, text):
    value = real_load(self, text)
    if value is not None:
        built["documents"] += 1
    return value

fastyaml.Reader.load = load

def rchar():
    with open("/proc/self/io", encoding="ascii") as io:
        return next(int(l.split()[1]) for l in io if l.startswith("rchar:"))

before = rchar()
code = main(sys.argv[2:])
read = rchar() - before
try:
    with open("/proc/self/status", encoding="ascii") as status:
        peak_kib = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
except OSError:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"code": code, "peak_kib": peak_kib, "read": read, **built}, out)
"""


@dataclass(frozen=True)
class Measured:
    """One run of `main` in a process of its own, and the work it did."""

    code: int
    out: str
    err: str
    peak_kib: int  # the process's peak memory
    read: int  # bytes it read while `main` ran
    documents: int  # YAML documents the manifest loader built
    nodes: int  # nodes of their text it visited: an alias counts once, not as what it expands to
    values: int  # the most values one document held, aliases expanded


def measured(*args: str | Path) -> Measured:
    """`meshcanary ARGS...` in a new process, measured."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "measured.json"
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(report), *map(str, args)],
            capture_output=True,
            text=True,
            # A guard, not the assertion: a run that hangs fails here, not the whole suite.
            timeout=120,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        found = json.loads(report.read_text(encoding="utf-8"))
    return Measured(out=done.stdout, err=done.stderr, **found)
