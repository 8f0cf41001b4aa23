"""`meshcanary lint`: schema validation and built-in rules on any manifests.

Inputs are files, folders (searched for .yaml, .yml and .json), Kustomize folders (built
first) and `-` for standard input. Unreadable or unparseable input is bad input (exit 2);
what is wrong inside well-formed resources is a finding. One bad file does not stop the run:
its problems (rule `input`) are in the report, sorted by file among the findings of every
file that could be read, and the exit code is still 2.
"""

from __future__ import annotations

import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from meshcanary import kustomize
from meshcanary.errors import InputError
from meshcanary.kustomize.contain import KUSTOMIZATION_NAMES
from meshcanary.manifest import Parsed, parse_text
from meshcanary.problem import Location, Problem
from meshcanary.report import Report, ResourceResult, RuleInfo, Status
from meshcanary.source import decode
from meshcanary.validate import Options, Verdict

SUFFIXES = (".yaml", ".yml", ".json")
INPUT = "input"  # the rule of a problem with the input itself (Problem's default)


@dataclass(frozen=True)
class LintOptions:
    validation: Options = field(default_factory=Options)
    rules: bool = True
    severities: dict[str, str] = field(default_factory=dict)
    ignore_filename_patterns: tuple[str, ...] = ()  # regular expressions, as in kubeconform
    policies: tuple[Path, ...] = ()  # folders of ValidatingAdmissionPolicies


def _display(path: Path) -> str:
    return path.as_posix()


def read_inputs(
    paths: Sequence[str], stdin: str | None = None, ignore: Sequence[str] = ()
) -> tuple[Parsed, bool]:
    """Parse every input; returns what was read and whether it came from standard input."""
    parsed = Parsed()
    patterns = []
    for pattern in ignore:
        try:
            patterns.append(re.compile(pattern))
        except re.error as exc:
            raise InputError(f'--ignore-filename-pattern "{pattern}": {exc}') from None
    from_stdin = False
    if not paths:
        paths = ["-"]
    for given in paths:
        if given == "-":
            from_stdin = True
            if stdin is None and sys.stdin.isatty():
                raise InputError("no input: give files or folders, or pipe manifests to stdin")
            text = stdin if stdin is not None else sys.stdin.read()
            parse_text(text, "stdin", parsed)
            continue
        path = Path(given)
        if path.is_dir():
            _read_folder(path, parsed, patterns)
        elif any(p.search(given) for p in patterns):
            continue
        elif path.is_file():
            _read_file(path, _display(path), parsed)
        else:
            parsed.problems.append(Problem(Location(given), _missing(path)))
    return parsed, from_stdin


def _missing(path: Path) -> str:
    """Why a path that is neither a file nor a folder cannot be read."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "is a symbolic link to nothing" if path.is_symlink() else "no such file or folder"
    except OSError as exc:  # a symbolic link loop, say
        return f"cannot read: {exc.strerror or exc}"
    # Reading a FIFO would wait for a writer forever.
    return "is a FIFO, not a file" if stat.S_ISFIFO(info.st_mode) else "is not a regular file"


def _read_file(path: Path, display: str, parsed: Parsed) -> None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        parsed.problems.append(Problem(Location(display), f"cannot read: {exc.strerror or exc}"))
        return
    try:
        text = decode(raw, display)
    except InputError as exc:
        parsed.problems.extend(exc.problems)
        return
    parse_text(text, display, parsed)


def _repository(folder: Path) -> Path:
    """The repository a folder belongs to (the nearest one with .git), else the folder."""
    real = folder.resolve()
    return next((p for p in (real, *real.parents) if (p / ".git").exists()), real)


def _read_folder(folder: Path, parsed: Parsed, ignore: Sequence[re.Pattern[str]] = ()) -> None:
    if any((folder / name).is_file() for name in KUSTOMIZATION_NAMES):
        # Built only after every path it names is resolved inside its repository; nothing
        # remote is fetched for lint.
        target = kustomize.Target(folder, _display(folder))
        result = kustomize.builder(_repository(folder)).build(target)
        if result.problems:
            parsed.problems.extend(result.problems)
            return
        if not result.ok:
            parsed.problems.append(
                Problem(Location(_display(folder)), f"kustomize build failed: {result.error}")
            )
            return
        parse_text(result.output, _display(folder), parsed)
        return
    for path in sorted(folder.rglob("*")):
        shown = _display(path)
        if path.is_file() and path.suffix in SUFFIXES and not any(p.search(shown) for p in ignore):
            _read_file(path, shown, parsed)


def lint(paths: Sequence[str], options: LintOptions, stdin: str | None = None) -> Report:
    """Read, validate in-process, run the rules, report."""
    from meshcanary.validate.embedded import EmbeddedValidator

    parsed, from_stdin = read_inputs(paths, stdin, options.ignore_filename_patterns)
    validator = EmbeddedValidator(options.validation)
    verdicts = [validator.validate(resource) for resource in parsed.resources]
    return assemble(parsed, from_stdin, verdicts, options)


def assemble(
    parsed: Parsed, from_stdin: bool, verdicts: Sequence[Verdict], options: LintOptions
) -> Report:
    """One report from the schema verdicts of `parsed.resources`, the rules' findings, and
    the problems of the input that could not be read (`unreadable`)."""
    from meshcanary import rules

    found: list[Problem] = []
    checked = [
        r for r, v in zip(parsed.resources, verdicts, strict=True) if v.status is not Status.SKIPPED
    ]
    if options.rules:
        found = rules.run(rules.Scope(checked), options.severities)
    if options.policies:
        from meshcanary import policies

        found += policies.load(list(options.policies), Path.cwd()).evaluate(checked)
    by_resource: dict[tuple[str, object], list[Problem]] = {}
    for problem in found:
        by_resource.setdefault((problem.location.file, problem.resource), []).append(problem)
    results = tuple(
        ResourceResult(
            resource.file,
            resource.ref,
            verdict.status,
            (*verdict.problems, *by_resource.pop((resource.file, resource.ref), [])),
        )
        for resource, verdict in zip(parsed.resources, verdicts, strict=True)
    )
    problems = sorted(
        [p for v in verdicts for p in v.problems] + found + unreadable(parsed),
        key=Problem.sort_key,
    )
    infos = tuple(
        RuleInfo(rule.ID, rule.SEVERITY, rule.SUMMARY, (rule.__doc__ or "").strip())
        for rule in rules.all_rules()
    )
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


def unreadable(parsed: Parsed) -> list[Problem]:
    """The problems of input that could not be read or parsed, once each, as rule `input`."""
    # A base that two Kustomize folders share fails once for each: say it once.
    unique = dict.fromkeys(
        p if p.rule == INPUT else replace(p, rule=INPUT) for p in parsed.problems
    )
    return list(unique)
