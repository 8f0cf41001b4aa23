"""A forked copy of the process that validates `lint`'s resources while the process itself
parses them and runs the rules (`Validating`), and the processes `lint` may use (`jobs_count`).

On small input most of `lint`'s time is start-up, and validation's share of it (importing
jsonschema-rs, 13 to 20 ms, then reading and compiling the schemas) is about the rules'
(importing them, 12 ms, and running them). The CLI forks the copy before it imports the
rest of `lint`, so that the copy imports jsonschema-rs and makes its validator meanwhile; once
the input is read and parsed, the copy is sent the documents and the objects (`send`), and
its verdicts come back (`result`). The rules need of them only which resources are skipped,
told here without a schema (`EmbeddedValidator.skips`).

This module imports little, so that the fork comes early: what the copy needs it imports
itself, while this process goes on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from meshcanary.errors import InputError
from meshcanary.lifetime import can_fork

if TYPE_CHECKING:
    from meshcanary.manifest import Document, Resource
    from meshcanary.validate import Options, Verdict
    from meshcanary.validate.embedded import EmbeddedValidator

AUTO = "auto"
# Tests turn it off to have this process validate small input itself.
ENABLED = True


def jobs_count(value: str) -> int:
    """`--jobs`: a number of processes, or `auto` for one per CPU this process may use."""
    if value == AUTO:
        if hasattr(os, "sched_getaffinity"):  # the CPUs this process may run on (Linux)
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise InputError(f"--jobs {value!r}: give a number of processes (1 or more), or auto")
    return int(value)


def fork(validation: Options, jobs: int) -> Validating | None:
    """A copy forked to validate; None when one process is asked for, or none may be forked."""
    return Validating(validation) if jobs > 1 and ENABLED and can_fork() else None


@contextlib.contextmanager
def beside(validation: Options, jobs: int) -> Iterator[Validating | None]:
    """`fork`, for a block: when it ends, a copy whose verdicts were not taken (an error,
    input it was not for) is stopped and waited for."""
    validating = fork(validation, jobs)
    try:
        yield validating
    finally:
        if validating is not None:
            validating.stop()


class Validating:
    """The verdicts of the resources it is sent, made by a forked copy of this process.

    When the copy fails for any reason (killed, an error), this process validates after all,
    and meets the error itself.
    """

    def __init__(self, validation: Options) -> None:
        self.resources: list[Resource] = []
        self.skipped: list[bool] = []
        self._validator: EmbeddedValidator | None = None
        self._objects = -1  # this process → the copy: what it parsed; -1 once closed
        self._pid: int | None = None  # None: no copy (it could not be made, or was stopped)
        try:
            objects, self._objects = os.pipe()
        except OSError:
            return  # out of file descriptors: validated here, after the rules
        _widen(self._objects)
        try:
            self._reading, verdicts = os.pipe()  # the copy → this process: the verdicts
        except OSError:
            os.close(objects)
            os.close(self._objects)
            self._objects = -1
            return
        try:
            self._pid = os.fork()
        except OSError:
            for fd in (objects, self._objects, self._reading, verdicts):
                os.close(fd)
            self._objects = -1
            return  # out of processes or memory: validated here, after the rules
        if self._pid == 0:  # the copy: validate, send the verdicts, leave without cleaning up
            code = 1
            try:
                os.close(self._objects)
                os.close(self._reading)
                _validate_sent(objects, verdicts, validation)
                code = 0
            finally:
                os._exit(code)
        os.close(objects)
        os.close(verdicts)

    def send(
        self, documents: Sequence[Document], resources: list[Resource], validator: EmbeddedValidator
    ) -> None:
        """The documents read and the resources parsed from them, to the copy; `validator`
        (this process's own) tells which are skipped, and validates here should the copy
        fail."""
        import marshal

        self.resources, self._validator = resources, validator
        self.skipped = [validator.skips(r) for r in resources]
        if self._pid is None:
            return
        positions = {id(d): position for position, d in enumerate(documents)}
        try:
            # Each object with the position of its document, as a worker sends them (`_Part`).
            sent = marshal.dumps(
                (
                    [(d.file, d.text, d.first_line, d.index) for d in documents],
                    [(positions[id(r.document)], r.item, r.data) for r in resources],
                )
            )
        except ValueError:  # not the loader's values after all: validated here
            self.stop()
            return
        view = memoryview(sent)
        try:
            while view:
                view = view[os.write(self._objects, view) :]
        except OSError:
            pass  # the copy has gone (killed): `result` validates here
        finally:
            os.close(self._objects)
            self._objects = -1

    def result(self) -> list[Verdict]:
        """The copy's verdicts once it has sent them all, or this process's own."""
        if self._pid is not None:
            with os.fdopen(self._reading, "rb") as pipe:
                sent = pipe.read()
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
            if status == 0 and sent:
                return _received_verdicts(sent)
        validator = self._validator
        assert validator is not None  # noqa: S101 - given with the resources (`send`)
        return [validator.validate(r) for r in self.resources]

    def stop(self) -> None:
        """Stop the copy and wait for it to end: the run stops without its verdicts (an error
        in the parse or the rules, Ctrl-C, input the copy is not for), and validating them
        here after all would only delay that."""
        if self._pid is None:
            return
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        if self._objects >= 0:
            os.close(self._objects)
            self._objects = -1
        os.close(self._reading)
        os.waitpid(self._pid, 0)
        self._pid = None


# What the pipe to the copy holds, so that this process's `send` does not wait for the copy
# to finish its imports and read (the documents and objects of 500 small resources are 158 kB;
# at 64 kB, Linux's default, the process waited 7 to 8 ms). 1 MiB is what Linux allows an
# unprivileged process by default (/proc/sys/fs/pipe-max-size); more waits for the copy.
PIPE_BYTES = 1 << 20


def _widen(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or not allowed: the pipe's own size, and `send` may wait


def _validate_sent(objects: int, verdicts: int, validation: Options) -> None:
    """In the copy: import jsonschema-rs and make the validator while the parent reads and
    parses, then validate the objects it sends, and send their verdicts back. Nothing sent
    (the parent stopped) sends nothing."""
    import marshal

    import jsonschema_rs  # noqa: F401 - imported now, so that it is ready when the objects come

    from meshcanary.manifest import Document, Resource
    from meshcanary.validate.embedded import EmbeddedValidator

    validator = EmbeddedValidator(validation)
    with os.fdopen(objects, "rb") as pipe:
        sent = pipe.read()
    if not sent:
        raise EOFError("the parent sent no objects")
    # Bytes the parent of this forked copy wrote, never read from anywhere else.
    texts, parsed = marshal.loads(sent)  # noqa: S302
    documents = [Document(*text) for text in texts]
    resources = [Resource(data, documents[position], item) for position, item, data in parsed]
    _send_verdicts(verdicts, [validator.validate(r) for r in resources])


def _send_verdicts(fd: int, verdicts: list[Verdict]) -> None:
    """Each verdict's status, and the problems of those that have any, pickled only then:
    on input without them neither process imports pickle (2 ms each)."""
    import marshal

    found = [(index, v.problems) for index, v in enumerate(verdicts) if v.problems]
    if found:
        import pickle

        problems = pickle.dumps(found, pickle.HIGHEST_PROTOCOL)
    else:
        problems = b""
    with os.fdopen(fd, "wb") as pipe:
        pipe.write(marshal.dumps(([v.status.value for v in verdicts], problems)))


def _received_verdicts(sent: bytes) -> list[Verdict]:
    """What `_send_verdicts` sent, as it was."""
    import marshal

    from meshcanary.report import Status
    from meshcanary.validate import Verdict

    # Bytes this run's own forked copy wrote, never read from anywhere else.
    statuses, problems = marshal.loads(sent)  # noqa: S302
    plain = {status.value: Verdict(status) for status in Status}  # frozen: one is shared
    verdicts = [plain[status] for status in statuses]
    if problems:
        import pickle

        for index, found in pickle.loads(problems):  # noqa: S301 - as above
            verdicts[index] = Verdict(Status(statuses[index]), found)
    return verdicts
