"""`meshcanary lint`: schema validation and built-in rules on any manifests.

Inputs are files, folders (searched for .yaml, .yml and .json), Kustomize folders (built
first) and `-` for standard input. Unreadable or unparseable input is bad input (exit 2);
what is wrong inside well-formed resources is a finding. One bad file does not stop the run:
its problems (rule `input`) are in the report, sorted by file among the findings of every
file that could be read, and the exit code is still 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meshcanary import lifetime
from meshcanary.errors import InputError
from meshcanary.inputs import read_documents, read_inputs
from meshcanary.lint import LintOptions, assemble, parse_and_validate
from meshcanary.report import Report, Status

if TYPE_CHECKING:
    from meshcanary.validating import Validating


def lint(
    paths: Sequence[str],
    options: LintOptions,
    stdin: str | None = None,
    beside: Validating | None = None,
) -> Report:
    """Read, parse and validate in-process (or in `options.jobs` workers, or in the forked
    copy `beside`), run the rules, report."""
    read, from_stdin = read_documents(paths, stdin, options.ignore_filename_patterns)
    parsed, verdicts = parse_and_validate(read, options.validation, options.jobs, beside)
    report = assemble(parsed, from_stdin, verdicts, options)
    lifetime.keep(read, parsed)  # the report holds what it needs of them
    return report


def lint_with_kubeconform(paths: Sequence[str], settings: LintOptions) -> Report:
    """`meshcanary lint --validator kubeconform`: kubeconform's verdicts, our positions and rules."""
    from meshcanary.validate import Verdict
    from meshcanary.validate.kubeconform import pattern_arguments, run, verdict

    stdin = sys.stdin.read() if "-" in paths else None
    parsed, from_stdin = read_inputs(paths, stdin, settings.ignore_filename_patterns)
    if parsed.problems:
        raise InputError(parsed.problems)
    output = run(
        list(paths),
        settings.validation,
        stdin,
        pattern_arguments(settings.ignore_filename_patterns),
    )
    entries: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for entry in output.get("resources") or []:
        filename = (
            "stdin"
            if from_stdin and entry.get("filename") in ("stdin", "", None)
            else str(entry.get("filename"))
        )
        key = (filename, str(entry.get("kind", "")), str(entry.get("name", "")))
        entries.setdefault(key, []).append(entry)
    verdicts: list[Verdict] = []
    for resource in parsed.resources:
        queue = entries.get((resource.file, resource.kind, resource.name)) or []
        verdicts.append(verdict(resource, queue.pop(0)) if queue else Verdict(Status.VALID))
    return assemble(parsed, from_stdin, verdicts, settings)
