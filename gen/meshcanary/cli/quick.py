"""`lint` and `check` without Typer, when what their arguments ask is plain to see.

Importing Typer and the command modules and building the command take about 80 ms, more
than the rest of `lint` on one small file, and the pre-commit hook pays them on every
commit. A run of `lint` or `check` whose every argument this table reads for sure calls the
same code the Typer commands call (`cli/judge.py`), with the values Typer would pass. Anything
else goes to Typer, so that help, completion, usage errors and their messages stay Typer's:
an option the table does not know, `--help`, a value it cannot convert exactly as Typer does,
a value that starts with a dash, an option given twice that takes one value, and any run with
the program's environment variables set. `tests/unit/cli/test_quick.py` holds the table equal
to the Typer commands' parameters, and what it reads equal to what Typer passes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from meshcanary.cli import judge
from meshcanary.cli.coercion import DECIMAL, WHOLE
from meshcanary.cli.common import settle

# Read by Typer from the environment: a run with any of them set goes to Typer.
ENVIRONMENT = ("MESHCANARY_ALLOW_REMOTE", "MESHCANARY_TIMEOUT", "MESHCANARY_KUSTOMIZE")
_COMPLETION = "_MESHCANARY_COMPLETE"


class _Unsure(Exception):
    """Typer reads these arguments."""


@dataclass(frozen=True)
class Option:
    """One option as Typer declares it: where its value goes, and how it is read."""

    dest: str
    names: tuple[str, ...]
    convert: Callable[[str], Any] | None = None  # None: a flag
    default: Any = None
    many: bool = False


def _text(value: str) -> str:
    return value


def _path(value: str) -> Path:
    if not value:
        raise _Unsure
    return Path(value)


def _directory(value: str) -> Path:
    # Typer refuses an existing file here, with its own message; and the callback one that
    # does not exist.
    if not os.path.isdir(value):
        raise _Unsure
    return Path(value)


# The spellings cli/coercion.py converts itself (plain ASCII digits, no sign, no exponent),
# at least 1 as both options that take a number ask.
def _at_least_one(value: str) -> float:
    if not DECIMAL.fullmatch(value) or float(value) < 1:
        raise _Unsure
    return float(value)


def _whole_at_least_one(value: str) -> int:
    if not WHOLE.fullmatch(value) or int(value) < 1:
        raise _Unsure
    return int(value)


def _choice(kind: type[StrEnum]) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        if value not in kind._value2member_map_:
            raise _Unsure
        return kind(value)

    return convert


def _shard(value: str) -> Any:
    from meshcanary.commands.check import Shard

    try:
        return Shard.parse(value)
    except ValueError:
        raise _Unsure from None


PROGRAM = (
    Option("repo", ("--repo", "-C"), _directory),
    Option("allow_remote", ("--allow-remote",), default=False),
    Option("timeout", ("--timeout",), _at_least_one, default=900),
    Option("quiet", ("--quiet", "-q"), default=False),
    Option("kustomize_program", ("--kustomize",), _text),
)
_JUDGING = (
    Option("output", ("--format", "-o"), _choice(judge.ReportFormat), judge.TEXT),
    Option("summary", ("--summary",), default=False),
    Option("kubernetes_version", ("--kubernetes-version", "-k"), _text),
    Option("strict", ("--strict",), default=False),
    Option("schema_location", ("--schema-location",), _text, many=True),
    Option("skip", ("--skip",), _text, many=True),
    Option("reject", ("--reject",), _text, many=True),
    Option("ignore_missing_schemas", ("--ignore-missing-schemas",), default=False),
    Option("crd", ("--crd",), _path, many=True),
    Option("validator", ("--validator",), _choice(judge.Validator), judge.Validator.embedded),
    Option("fail_on", ("--fail-on",), _choice(judge.FailOn), judge.FailOn.error),
    Option("policies", ("--policies",), _path, many=True),
)
COMMANDS: dict[str, tuple[Option, ...]] = {
    "lint": (
        *_JUDGING,
        Option("no_rules", ("--no-rules",), default=False),
        Option("ignore_filename_pattern", ("--ignore-filename-pattern",), _text, many=True),
        Option("jobs", ("--jobs", "-j"), _text, "auto"),
    ),
    "check": (
        *_JUDGING,
        Option("jobs", ("--jobs", "-j"), _whole_at_least_one),
        Option("base", ("--base",), _text),
        Option("no_base", ("--no-base",), default=False),
        Option("no_cache", ("--no-cache",), default=False),
        Option("shard", ("--shard",), _shard),
        Option("staged", ("--staged",), default=False),
    ),
}


@dataclass(frozen=True)
class Reading:
    """What a run's arguments ask: the program's options, the command, its options and paths."""

    program: dict[str, Any]
    command: str
    options: dict[str, Any]
    paths: list[str]


def read(args: Sequence[str]) -> Reading | None:
    """The run `args` ask for, when every one of them is read for sure; else None (Typer)."""
    if _COMPLETION in os.environ or any(name in os.environ for name in ENVIRONMENT):
        return None
    try:
        program, rest = _parse(args, PROGRAM, interspersed=False)
        if not rest or rest[0] not in COMMANDS:
            return None
        options, paths = _parse(rest[1:], COMMANDS[rest[0]], interspersed=True)
    except _Unsure:
        return None
    return Reading(program, rest[0], options, paths)


def _parse(
    args: Sequence[str], options: tuple[Option, ...], *, interspersed: bool
) -> tuple[dict[str, Any], list[str]]:
    """Options with their defaults filled in, and the other arguments in order."""
    named = {name: option for option in options for name in option.names}
    values: dict[str, Any] = {}
    others: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            if not interspersed:
                raise _Unsure
            others += args[index:]
            break
        if arg == "-" or not arg.startswith("-"):
            others.append(arg)
            if not interspersed:
                others += args[index:]
                break
            continue
        name, equals, attached = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        option = named.get(name)
        if option is None:
            raise _Unsure
        value: Any = True
        if option.convert is not None:
            if not equals:
                if index == len(args) or args[index].startswith("-"):
                    raise _Unsure
                attached = args[index]
                index += 1
            value = option.convert(attached)
        elif equals:
            raise _Unsure
        if option.many:
            values.setdefault(option.dest, []).append(value)
        elif option.dest in values:
            raise _Unsure
        else:
            values[option.dest] = value
    for option in options:
        values.setdefault(option.dest, option.default)
    return values, others


def run(reading: Reading) -> int:
    """Run what `read` found, as the Typer app would: the callback's settings, then the
    command; its exit code."""
    program = reading.program
    command = judge.lint if reading.command == "lint" else judge.check
    try:
        with contextlib.ExitStack() as stack:
            for held in settle(
                program["repo"],
                allow_remote=program["allow_remote"],
                timeout=program["timeout"],
                quiet=program["quiet"],
                kustomize=program["kustomize_program"],
                command=reading.command,
            ):
                stack.enter_context(held)
            return command(reading.paths or None, **reading.options)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        # The reader went away (`| head`): exit 1 without a second error at shutdown, as
        # Typer does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
