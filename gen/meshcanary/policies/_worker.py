"""The process policies are evaluated in, so that an evaluation can be stopped at its budget.

cel-expr-python has no cost limit and no way to interrupt an evaluation, and it holds Python's
lock while an expression runs: nested loops of `replace()` on a large string run for minutes
in one call that neither a signal handler nor a thread can cut short. So policies run in a
worker process, one per meshcanary process, started when first needed and kept across policy
sets; when a policy outlives its budget the parent kills the worker, and the next policy gets
a new one.

Only plain values cross the boundary: a policy's expression sources (`Code`, compiled in the
worker and cached there), the resources of an evaluation (the `object`s and `objects`, sent
once per set) and, for each resource a policy selects, its `Case`. Back come the `Outcome`s
of each case, sent as soon as the case is done, so those received are complete. Before each
expression the worker writes which case and expression it is at into a page shared with the
parent: a stopped run says where it was, and every case before that one was checked and its
outcomes received.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import mmap
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from meshcanary.errors import ToolError

# How long a new worker may take to import the engine before it is given up on.
STARTUP_TIMEOUT = 60.0
# Case position and expression number the worker is at; -1 when none yet.
_PROGRESS = struct.Struct("qq")
# Compiled policies a worker keeps; a long test session loads thousands.
_CACHE_SIZE = 1000
_serials = itertools.count()


@dataclass(frozen=True)
class Code:
    """A policy's expressions as the worker compiles them, numbered by their place in `sources`."""

    sources: tuple[tuple[str, str], ...]  # the CEL text and the type it must return
    conditions: tuple[int, ...]
    variables: tuple[tuple[str, int], ...]  # name, expression
    validations: tuple[tuple[int, int, int | None], ...]  # index, expression, messageExpression
    uses_objects: bool


@dataclass(frozen=True)
class Objects:
    """The resources of one evaluation; sent to a worker once, whatever the number of policies."""

    items: list[dict[str, Any]]
    serial: int = field(default_factory=lambda: next(_serials))


@dataclass(frozen=True)
class Case:
    """One resource a policy selects: its place in `Objects`, its oldObject and the request."""

    index: int
    old: dict[str, Any] | None
    request: dict[str, Any]
    skipped: frozenset[int]  # validations suppressed on the resource


@dataclass(frozen=True)
class Failed:
    """An expression that failed while it ran (failurePolicy decides what that means)."""

    expression: int
    validation: int | None  # None for a matchCondition or a variable
    text: str


@dataclass(frozen=True)
class Denied:
    """A validation that returned false."""

    validation: int
    message: str | None  # what its messageExpression gave, when that is a non-empty string


Outcome = Failed | Denied


@dataclass(frozen=True)
class Stop:
    """Where a run ended early: every case before `case` was checked, none from it on."""

    case: int
    expression: int | None  # the expression running then, when one was
    ended_by: str | None  # None: the budget; else what ended the worker (SIGKILL, exit code 1)


@dataclass(frozen=True)
class Result:
    outcomes: tuple[tuple[int, tuple[Outcome, ...]], ...]  # case position, what it found
    stop: Stop | None


# Messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ready:
    pass


@dataclass(frozen=True)
class _Resources:
    """More resources of the set `serial` (of `count`): the ones the next run needs."""

    serial: int
    count: int
    items: dict[int, dict[str, Any]]


@dataclass(frozen=True)
class _Run:
    code: Code
    cases: tuple[Case, ...]
    budget: float


@dataclass(frozen=True)
class _Checked:
    case: int
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True)
class _Done:
    pass


# The worker -------------------------------------------------------------------------------


def serve(channel: int, progress_file: int) -> None:
    """The worker's loop: runs in, outcomes out, until the parent closes the channel."""
    from meshcanary.policies import _cel

    # Ctrl-C reaches the whole process group: the parent handles it, and ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engine = _cel.Engine()
    connection = Connection(channel)
    progress = mmap.mmap(progress_file, _PROGRESS.size)
    compiled: dict[Code, list[Any]] = {}
    resources = _Resources(-1, 0, {})  # of the set being evaluated, as they came
    everything: list[dict[str, Any]] | None = None  # `objects`, once a policy uses it
    connection.send(_Ready())
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):  # the parent is done, or gone
            return
        if isinstance(message, _Resources):
            if message.serial == resources.serial:
                message = _Resources(
                    message.serial, message.count, {**resources.items, **message.items}
                )
            resources, everything = message, None
            continue
        run: _Run = message
        if run.code not in compiled:
            if len(compiled) >= _CACHE_SIZE:
                compiled.clear()
            compiled[run.code] = [engine.compile(text, expect) for text, expect in run.code.sources]
        if run.code.uses_objects and everything is None:
            everything = [resources.items[i] for i in range(resources.count)]
        _limit_cpu(run.budget)
        evaluate = _Evaluator(engine, compiled[run.code], progress)
        for position, case in enumerate(run.cases):
            evaluate.case = position
            _PROGRESS.pack_into(progress, 0, position, -1)
            found = _check(
                run.code, resources.items, everything or [], case, evaluate, _cel.EvaluationError
            )
            if found:
                connection.send(_Checked(position, found))
        _PROGRESS.pack_into(progress, 0, len(run.cases), -1)
        connection.send(_Done())


@dataclass
class _Evaluator:
    """Runs expression `number` of the policy, saying first where it is."""

    engine: Any
    programs: list[Any]
    progress: mmap.mmap
    case: int = -1

    def __call__(self, number: int, data: dict[str, Any]) -> Any:
        _PROGRESS.pack_into(self.progress, 0, self.case, number)
        return self.engine.evaluate(self.programs[number], data)


def _limit_cpu(budget: float) -> None:
    # A second bound, kept by the kernel: should the parent stop watching (suspended, or
    # killed while an evaluation runs), SIGXCPU ends the worker soon after the budget.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + budget) + 2
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    with contextlib.suppress(ValueError, OverflowError):  # centuries: the parent's bound only
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _check(
    code: Code,
    held: Mapping[int, dict[str, Any]],
    everything: list[dict[str, Any]],
    case: Case,
    evaluate: Callable[[int, dict[str, Any]], Any],
    errors: type[Exception],
) -> tuple[Outcome, ...]:
    """One policy on one resource, in the API server's order (conditions, variables, validations)."""
    data: dict[str, Any] = {
        "object": held[case.index],
        "oldObject": case.old,
        "request": case.request,
        "variables": {},
        "objects": everything if code.uses_objects else [],
        "namespaceObject": None,
    }
    for number in code.conditions:
        try:
            if evaluate(number, data) is not True:
                return ()
        except errors as exc:
            return (Failed(number, None, str(exc)),)
    computed: dict[str, Any] = {}
    for name, number in code.variables:
        try:
            computed[name] = evaluate(number, data)
        except errors as exc:
            # The API server evaluates variables lazily; an unusable one fails the policy.
            return (Failed(number, None, str(exc)),)
        data["variables"] = dict(computed)
    found: list[Outcome] = []
    for index, number, message_number in code.validations:
        if index in case.skipped:
            continue
        try:
            result = evaluate(number, data)
        except errors as exc:
            found.append(Failed(number, index, str(exc)))
            continue
        if result is True:
            continue
        if result is not False:
            found.append(Failed(number, index, f"returned {result!r}, not a bool"))
            continue
        message = None
        if message_number is not None:
            try:
                text = evaluate(message_number, data)
            except errors:  # as in the API server: the finding falls back to `message`
                text = None
            if isinstance(text, str) and text.strip():
                message = text.strip()
        found.append(Denied(index, message))
    return tuple(found)


# The parent's side ------------------------------------------------------------------------

# The worker needs the engine, not the packages: running `meshcanary.policies/__init__` would
# load the YAML reader and the rules for nothing, a tenth of a second of every run, and
# `meshcanary.validate/__init__` (over the environment in `validate.cel`) the report types.
_STARTER = """\
import importlib.util, json, sys
sys.path[:] = json.loads(sys.argv[1])
for name in ("meshcanary.policies", "meshcanary.validate"):
    sys.modules[name] = importlib.util.module_from_spec(importlib.util.find_spec(name))
from meshcanary.policies._worker import serve
serve(int(sys.argv[2]), int(sys.argv[3]))
"""


class _Worker:
    """One worker process, as its parent sees it."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.gone = False
        self.running = False
        self.held: tuple[int, set[int]] = (-1, set())  # the `Objects` serial and items it has
        self._ready = False
        ours, theirs = socket.socketpair()
        try:
            with tempfile.TemporaryFile() as progress_file:
                os.ftruncate(progress_file.fileno(), _PROGRESS.size)
                self.progress = mmap.mmap(progress_file.fileno(), _PROGRESS.size)
                self.process = subprocess.Popen(  # noqa: S603 (our interpreter, our module)
                    [
                        sys.executable,
                        "-c",
                        _STARTER,
                        json.dumps([p for p in sys.path if isinstance(p, str)]),
                        str(theirs.fileno()),
                        str(progress_file.fileno()),
                    ],
                    pass_fds=(theirs.fileno(), progress_file.fileno()),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
        except OSError as exc:
            ours.close()
            raise ToolError(f"cannot start the process that evaluates policies: {exc}") from None
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        weakref.finalize(self, _end, self.process, self.connection, self.progress)

    def run(self, code: Code, objects: Objects, cases: tuple[Case, ...], budget: float) -> Result:
        self._wait_until_ready()
        try:
            return self._run(code, objects, cases, budget)
        except BaseException:  # Ctrl-C mid-run: what the worker sends next belongs to no run
            self._end()
            raise
        finally:
            self.running = False

    def _run(self, code: Code, objects: Objects, cases: tuple[Case, ...], budget: float) -> Result:
        checked: list[tuple[int, tuple[Outcome, ...]]] = []
        try:
            self._send_resources(code, objects, cases)
            _PROGRESS.pack_into(self.progress, 0, -1, -1)
            self.connection.send(_Run(code, cases, budget))
        except OSError:  # it ended between runs
            return Result((), self._stop(checked, len(cases), killed=False))
        deadline = time.monotonic() + budget
        self.running = True
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or not self.connection.poll(remaining):
                    stop = self._stop(checked, len(cases), killed=True)
                    return Result(tuple(checked), stop)
                message = self.connection.recv()
            except (EOFError, OSError):
                stop = self._stop(checked, len(cases), killed=False)
                return Result(tuple(checked), stop)
            if isinstance(message, _Done):
                return Result(tuple(checked), None)
            checked.append((message.case, message.outcomes))

    def _send_resources(self, code: Code, objects: Objects, cases: tuple[Case, ...]) -> None:
        """Each resource once per set, and only when a policy selects it or reads `objects`."""
        serial, held = self.held
        if serial != objects.serial:
            held = set()
            self.held = (objects.serial, held)
        needed = (
            range(len(objects.items)) if code.uses_objects else sorted({c.index for c in cases})
        )
        missing = {i: objects.items[i] for i in needed if i not in held}
        if missing:
            self.connection.send(_Resources(objects.serial, len(objects.items), missing))
            held.update(missing)

    def _wait_until_ready(self) -> None:
        if self._ready:
            return
        try:
            if not self.connection.poll(STARTUP_TIMEOUT):
                self._end()
                raise ToolError(
                    f"the process that evaluates policies did not start in {STARTUP_TIMEOUT:g} s"
                )
            self.connection.recv()
        except (EOFError, OSError):
            self._end()
            raise ToolError(
                "the process that evaluates policies ended as it started "
                f"(exit code {self.process.returncode}); its error is above"
            ) from None
        self._ready = True

    def _stop(
        self, checked: list[tuple[int, tuple[Outcome, ...]]], cases: int, *, killed: bool
    ) -> Stop | None:
        """End the worker and read what it finished; None when that was the whole run."""
        if killed:
            self.process.kill()
        code = self.process.wait()
        self.gone = True
        finished = False
        try:  # what it sent before it ended; a message cut short is not read
            while not finished and self.connection.poll(0):
                message = self.connection.recv()
                finished = isinstance(message, _Done)
                if isinstance(message, _Checked):
                    checked.append((message.case, message.outcomes))
        except (EOFError, OSError):
            pass
        case, expression = _PROGRESS.unpack_from(self.progress, 0)
        self._end()
        if checked and checked[-1][0] >= case:  # ended between sending a case and the next
            case, expression = checked[-1][0] + 1, -1
        if finished or case >= cases:
            return None
        ended_by = None
        if not killed and code != -signal.SIGXCPU:  # SIGXCPU: its own budget, see _limit_cpu
            ended_by = _signal_name(-code) if code < 0 else f"exit code {code}"
        return Stop(max(case, 0), expression if expression >= 0 else None, ended_by)

    def _end(self) -> None:
        self.gone = True
        _end(self.process, self.connection, self.progress)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _end(process: subprocess.Popen[bytes], connection: Connection, progress: mmap.mmap) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    connection.close()
    if not progress.closed:
        progress.close()


_lock = threading.Lock()
_current: _Worker | None = None


def start() -> None:
    """Start the worker now, so that it loads the engine while the parent works on."""
    with _lock:
        _worker()


def run(code: Code, objects: Objects, cases: tuple[Case, ...], budget: float) -> Result:
    """Evaluate one policy on `cases` in the worker; stopped when it outlives `budget` seconds."""
    if budget <= 0:
        return Result((), Stop(0, None, None))
    with _lock:
        return _worker().run(code, objects, cases, budget)


def _worker() -> _Worker:
    global _current
    worker = _current
    if (
        worker is None
        or worker.gone
        or worker.owner != os.getpid()  # a fork's copy: the worker is its parent's
        or worker.process.poll() is not None
    ):
        worker = _current = _Worker()
    return worker


def running_pid() -> int | None:
    """The worker's process ID while it evaluates a policy (for tests that kill it)."""
    worker = _current
    return worker.process.pid if worker is not None and worker.running else None
