"""cli/coercion.py converts every option value to what Typer's own (pydantic) path makes of
it, and fails where that path fails, with its message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer import _coercion, core
from typer._click import Context
from typer._click.exceptions import BadParameter

from meshcanary.cli.app import app
from tests.support import ROOT

# Values people type, good and bad: digits with leading zeros, signs, exponents, spaces and
# underscores, non-ASCII digits, choices in another case, files, folders and missing paths.
SAMPLES: tuple[Any, ...] = (
    "0", "1", "04", "7", "900", "1.5", "1.", ".5", "1e3", "-1", "+2", " 2", "2 ", "1_000",
    "", "abc", "inf", "nan", "\u0663", "99999999999999999999999",
    "text", "json", "JSON", "Text", "embedded", "kubeconform", "error", "warning",
    ".", "README.md", "docs", "no/such/path", "-", "a\x00b",
    1, 0, 2.5, True, None, Path("docs"), Path("README.md"),
)  # fmt: skip


def _parameters() -> Iterator[tuple[str, Context, Any]]:
    """Every parameter of every command, with a context of its command."""
    group = typer.main.get_command(app)
    stack: list[tuple[str, Any]] = [("meshcanary", group)]
    while stack:
        name, command = stack.pop()
        context = Context(command)
        for param in command.params:
            if isinstance(param, core._TyperParameter):
                yield f"{name} {param.name}", context, param
        for sub, child in getattr(command, "commands", {}).items():
            stack.append((f"{name} {sub}", child))


def _outcome(build: Any, param: Any, context: Context, value: Any) -> tuple[Any, ...]:
    try:
        made = build(param.type_descriptor).coerce(value, param=param, ctx=context)
    except BadParameter as exc:
        return ("refused", str(exc))
    return ("made", type(made), [type(v) for v in made] if isinstance(made, list) else (), made)


def test_coercion_is_installed() -> None:
    assert core.build_runtime_param is not _coercion.build_runtime_param


def test_every_parameter_converts_as_typer_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the path samples are this repository's files and folders
    checked = 0
    for where, context, param in _parameters():
        values: list[Any] = [param.default, *SAMPLES]
        if param.multiple or param.nargs == -1:
            values += [(s,) for s in SAMPLES if isinstance(s, str)] + [("1", "text", "docs")]
        for value in values:
            ours = _outcome(core.build_runtime_param, param, context, value)
            typers = _outcome(_coercion.build_runtime_param, param, context, value)
            assert ours == typers, (where, value)
            checked += 1
    assert checked > 1000
