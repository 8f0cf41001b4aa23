"""`meshcanary lint`: schema validation and built-in rules on any manifests.

Inputs are files, folders (searched for .yaml, .yml and .json), Kustomize folders (built
first) and `-` for standard input. Unreadable or unparseable input is bad input (exit 2);
what is wrong inside well-formed resources is a finding. One bad file does not stop the run:
its problems (rule `input`) are in the report, sorted by file among the findings of every
file that could be read, and the exit code is still 2.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshcanary.inputs import read_inputs
from meshcanary.lint import LintOptions, assemble
from meshcanary.report import Report


def lint(paths: Sequence[str], options: LintOptions, stdin: str | None = None) -> Report:
    """Read, validate in-process, run the rules, report."""
    from meshcanary.validate.embedded import EmbeddedValidator

    parsed, from_stdin = read_inputs(paths, stdin, options.ignore_filename_patterns)
    validator = EmbeddedValidator(options.validation)
    verdicts = [validator.validate(resource) for resource in parsed.resources]
    return assemble(parsed, from_stdin, verdicts, options)
