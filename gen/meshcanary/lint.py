"""What `lint` checks and how its findings become one report, whichever validator ran.

`LintOptions` says which checks run; `parse_and_validate` parses the documents read and
validates each resource: in worker processes when there are enough to pay for them, else in a
forked copy while this process runs the rules (`validating`), or in-process with one job;
`assemble` joins the schema verdicts (the embedded validator's or kubeconform's), the built-in
rules' and policies' findings, and the problems of input that could not be read, into one
`Report`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from meshcanary import lifetime, validating
from meshcanary.errors import MeshcanaryError
from meshcanary.inputs import Read, unreadable
from meshcanary.manifest import Document, Parsed, Resource, parse_documents
from meshcanary.problem import Problem
from meshcanary.report import Report, ResourceResult, Status
from meshcanary.rules import next_claim, no_cycle_collection
from meshcanary.validate import Options, Verdict
from meshcanary.validating import Validating

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

    from meshcanary.validate.embedded import EmbeddedValidator


@dataclass(frozen=True)
class LintOptions:
    validation: Options = field(default_factory=Options)
    rules: bool = True
    severities: dict[str, str] = field(default_factory=dict)
    ignore_filename_patterns: tuple[str, ...] = ()  # regular expressions, as in kubeconform
    policies: tuple[Path, ...] = ()  # folders of ValidatingAdmissionPolicies
    jobs: int = 1  # processes that parse and validate, then share out the rules


def assemble(
    parsed: Parsed,
    from_stdin: bool,
    verdicts: Sequence[Verdict] | Validating,
    options: LintOptions,
) -> Report:
    """One report from the schema verdicts of `parsed.resources` (made already, or still being
    made in another process), the rules' findings (the rules shared out between `options.jobs`
    processes), and the problems of the input that could not be read (`unreadable`)."""
    from meshcanary import rules

    found: list[Problem] = []
    beside: Validating | None = None
    if isinstance(verdicts, Validating):
        beside, skipped = verdicts, verdicts.skipped
    else:
        made, skipped = verdicts, [v.status is Status.SKIPPED for v in verdicts]
    checked = [r for r, skip in zip(parsed.resources, skipped, strict=True) if not skip]
    try:
        if options.rules:
            scope = rules.Scope(checked)
            found = rules.run(scope, options.severities, jobs=options.jobs)
            lifetime.keep(scope)  # its indexes, which the rules built
        if options.policies:
            from meshcanary import policies

            found += policies.load(list(options.policies), Path.cwd()).evaluate(checked)
    except BaseException:
        if beside is not None:
            beside.stop()
        raise
    if beside is not None:
        made = beside.result()
    by_resource: dict[tuple[str, object], list[Problem]] = {}
    for problem in found:
        by_resource.setdefault((problem.location.file, problem.resource), []).append(problem)
    results = tuple(
        ResourceResult(
            resource.file,
            resource.ref,
            verdict.status,
            (*verdict.problems, *by_resource.pop((resource.file, resource.ref), []))
            if by_resource
            else verdict.problems,
        )
        for resource, verdict in zip(parsed.resources, made, strict=True)
    )
    problems = sorted(
        [p for v in made for p in v.problems] + found + unreadable(parsed),
        key=Problem.sort_key,
    )
    infos = rules.infos()
    return Report(
        problems=tuple(problems),
        results=results,
        files=parsed.files,
        stdin=from_stdin,
        rules=infos,
        checks=(
            "schema",
            *(("rules",) if options.rules else ()),
            *(("policies",) if options.policies else ()),
        ),
    )


# Parsing and validating in worker processes -------------------------------------------------

# Below this much YAML the workers are not started: each is a fork that compiles its own
# schemas, and the objects come back pickled. An estimate, not measured at the boundary: on 2
# idle cores two workers took 8 % off a 9 MB file and 15 % off 53 MB of files, and made the
# run slower on a machine whose cores were busy.
PARALLEL_MIN_BYTES = 2_000_000
# Pieces per process: enough that the one that finishes first is not left idle long.
PIECES_PER_JOB = 8
# This process claims pieces too, beside its workers; tests turn it off so that the workers
# read every piece of a small input.
PARSE_HERE = True


def parse_and_validate(
    read: Read, validation: Options, jobs: int, beside: Validating | None = None
) -> tuple[Parsed, list[Verdict] | Validating]:
    """The resources of `read` and each one's schema verdict, in the order they were read.

    With `jobs` above 1 and enough text, pieces of `read` are parsed and validated in `jobs`
    worker processes; what they send back is put together in order, so the result is the one
    this process would have made alone. With less text, this process parses, and a forked
    copy of it validates while this one runs the rules: `beside`, forked by the CLI before
    lint's imports, or one forked here. A copy the input is not for is stopped.
    """
    from meshcanary.validate.embedded import EmbeddedValidator

    # Made here even when workers validate: a bad --crd or schema location stops the run here.
    validator = EmbeddedValidator(validation)
    pieces = _pieces(read.documents, jobs)
    if len(pieces) < 2:
        parsed = Parsed(files=read.files)
        documents = _documents(read.documents)
        with no_cycle_collection():
            if beside is None and documents:
                beside = validating.fork(validation, jobs)  # forked while this process parses
            if beside is not None and documents:
                try:
                    parse_documents(read.documents, parsed)
                    beside.send(documents, parsed.resources, validator)
                except BaseException:
                    beside.stop()
                    raise
                return parsed, beside
            if beside is not None:
                beside.stop()  # nothing to validate
            parse_documents(read.documents, parsed)
            return parsed, [validator.validate(r) for r in parsed.resources]
    if beside is not None:
        beside.stop()  # workers validate what they parse
    return _in_workers(read, pieces, validator, validation, jobs)


def _pieces(documents: list[Document | Problem], jobs: int) -> list[list[Document | Problem]]:
    """`documents` cut in consecutive pieces of about equal text, or one piece when there is
    too little text (or one job) for workers to pay."""
    total = sum(len(d.text) for d in documents if isinstance(d, Document))
    if jobs < 2 or total < PARALLEL_MIN_BYTES:
        return [documents]
    target = total // (jobs * PIECES_PER_JOB) + 1
    pieces: list[list[Document | Problem]] = [[]]
    size = 0
    for document in documents:
        if size >= target:
            pieces.append([])
            size = 0
        pieces[-1].append(document)
        if isinstance(document, Document):
            size += len(document.text)
    return pieces


def _documents(piece: list[Document | Problem]) -> list[Document]:
    return [d for d in piece if isinstance(d, Document)]


@dataclass(frozen=True)
class _Part:
    """What a worker sends back for one piece: each object with the position of its document
    among the piece's documents (which, with their text, are here already) in `objects`, the
    problems met parsing, and each object's verdict.

    `objects` is a list of (document, List item, object) in `marshal`'s format, which reads
    back three to five times faster than pickle's. It writes every value the loader makes:
    JSON's (maps, lists, strings, numbers, booleans, null; the loader refuses other tags and
    reads a timestamp as a string), nested at most `MAX_DEPTH` deep, far below its limit."""

    objects: bytes
    problems: list[Problem]
    verdicts: list[Verdict]


@dataclass(frozen=True)
class _Work:
    """What every process of a run shares: the pieces, and a count of those claimed."""

    pieces: list[list[Document | Problem]]
    claimed: Synchronized[int]

    def claim(self) -> int | None:
        """The index of the next piece nobody has taken, or None when all are taken."""
        index = next_claim(self.claimed)
        return index if index < len(self.pieces) else None


_worker: tuple[EmbeddedValidator, _Work] | None = None  # a worker's own, made at its start


def _start_worker(validation: Options, work: _Work) -> None:
    from meshcanary.validate.embedded import EmbeddedValidator

    global _worker  # the worker's own, made once at its start
    _worker = (EmbeddedValidator(validation), work)


def _parsed_piece(
    piece: list[Document | Problem], validator: EmbeddedValidator
) -> tuple[Parsed, list[Verdict]]:
    parsed = Parsed()
    parse_documents(piece, parsed)
    return parsed, [validator.validate(r) for r in parsed.resources]


def _parse_claimed() -> list[tuple[int, _Part]]:
    """In a worker: parse and validate pieces nobody has taken, one at a time, until none is
    left; sent back together, so that the parent's threads are not woken for each piece."""
    import marshal

    assert _worker is not None  # noqa: S101 - set by _start_worker
    validator, work = _worker
    done: list[tuple[int, _Part]] = []
    while (index := work.claim()) is not None:
        piece = work.pieces[index]
        with no_cycle_collection():
            parsed, verdicts = _parsed_piece(piece, validator)
        positions = {id(d): position for position, d in enumerate(_documents(piece))}
        objects = [(positions[id(r.document)], r.item, r.data) for r in parsed.resources]
        done.append((index, _Part(marshal.dumps(objects), parsed.problems, verdicts)))
    return done


def _in_workers(
    read: Read,
    pieces: list[list[Document | Problem]],
    validator: EmbeddedValidator,
    validation: Options,
    jobs: int,
) -> tuple[Parsed, list[Verdict]]:
    """This process and `jobs - 1` workers claim the pieces one at a time, each parsing and
    validating what it claims; the workers' objects come back as bytes, and everything is put
    together in the order of the pieces."""
    import marshal
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # fork shares what is imported already; elsewhere each worker imports meshcanary anew.
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    work = _Work(pieces, context.Value("i", 0))
    done: dict[int, tuple[Parsed, list[Verdict]]] = {}
    try:
        with (
            ProcessPoolExecutor(jobs - 1, context, _start_worker, (validation, work)) as pool,
            no_cycle_collection(),
        ):
            others = [pool.submit(_parse_claimed) for _ in range(jobs - 1)]
            while PARSE_HERE and (index := work.claim()) is not None:
                done[index] = _parsed_piece(pieces[index], validator)
            for other in others:
                for index, part in other.result():
                    documents = _documents(pieces[index])
                    parsed = Parsed(problems=part.problems)
                    parsed.resources.extend(
                        Resource(data, documents[position], item)
                        # Bytes this run's own worker wrote, never read from anywhere else.
                        for position, item, data in marshal.loads(part.objects)  # noqa: S302
                    )
                    done[index] = (parsed, part.verdicts)
    except BrokenProcessPool:
        raise MeshcanaryError(
            "a lint worker process stopped before it finished (killed, or out of memory)\n"
            "  hint: run again, or with --jobs 1"
        ) from None
    parsed = Parsed(files=read.files)
    verdicts: list[Verdict] = []
    for index in range(len(pieces)):
        piece, piece_verdicts = done[index]
        parsed.resources.extend(piece.resources)
        parsed.problems.extend(piece.problems)
        verdicts.extend(piece_verdicts)
    return parsed, verdicts
