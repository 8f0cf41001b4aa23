"""Option values converted as Typer converts them, without importing pydantic to do it.

Typer (0.2x) converts every value that is not a plain flag through a pydantic TypeAdapter,
and building the first one imports pydantic: about 90 ms of every run, more than the rest of
`lint` on one file. The values meshcanary's options take (text, whole and decimal numbers,
paths, choices, and lists of these) are converted here, by the functions Typer's adapters
call, to the values those adapters return. A value of any other kind, and every value that
one of these conversions refuses, goes to Typer's own conversion, so its results and its
error messages stay Typer's. `tests/unit/cli/test_coercion.py` holds both ways equal on every
parameter of the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

if TYPE_CHECKING:
    from typer._click import Context
    from typer._coercion import RuntimeParam, TypeDescriptor
    from typer.core import _TyperParameter
    from typer.models import ParameterInfo

# Plain ASCII digits only, short enough for a machine number: every other spelling (signs,
# underscores, exponents, whitespace, `inf`) is left to pydantic's own reading of it.
WHOLE = re.compile(r"0|[1-9][0-9]{0,17}")
DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")


class _Unsure(Exception):
    """This value is converted by Typer's own path."""


def install() -> None:
    """Make the Typer of this process convert option values here first.

    A no-op on a Typer without the pydantic path (before 0.2x), which converts through click.
    """
    try:
        from typer import _coercion, core
    except ImportError:  # pragma: no cover - an older Typer
        return
    current = getattr(core, "build_runtime_param", None)
    if current is None or getattr(current, "meshcanary", False):
        return
    typer_build = _coercion.build_runtime_param

    @dataclass(frozen=True)
    class Quick(_coercion.RuntimeParam):
        """A parameter's conversion: the common values here, the rest by Typer."""

        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
            try:
                return _value(value, self.annotation, self.parameter_info, param, ctx)
            except _Unsure:
                # Rare (a mistyped value ends the run), so Typer's adapter is built only here.
                return typer_build(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def build(descriptor: TypeDescriptor) -> RuntimeParam:
        if descriptor.file_annotation is not None:
            return typer_build(descriptor)  # opens files; never pydantic for the file itself
        return Quick(
            parameter_info=descriptor.parameter_info,
            annotation=descriptor.annotation,
            descriptor=descriptor,
        )

    build.meshcanary = True  # type: ignore[attr-defined]
    # Where Typer's parameters look it up when they first convert a value.
    setattr(core, "build_runtime_param", build)  # noqa: B010 - not an exported name


def _value(
    value: Any,
    annotation: Any,
    info: ParameterInfo,
    param: _TyperParameter | None,
    ctx: Context | None,
) -> Any:
    """`value` as Typer's adapter for `annotation` returns it, or `_Unsure`."""
    if info.parser is not None:
        raise _Unsure
    origin = get_origin(annotation)
    if origin is list:
        (item,) = get_args(annotation)
        items = value if isinstance(value, list | tuple) else [value]
        return [_leaf(one, item, info, param, ctx) for one in items]
    if origin is not None:
        raise _Unsure
    return _leaf(value, annotation, info, param, ctx)


def _leaf(
    value: Any,
    annotation: Any,
    info: ParameterInfo,
    param: _TyperParameter | None,
    ctx: Context | None,
) -> Any:
    from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path

    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return coerce_cli_choice(
                value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError:
            raise _Unsure from None
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Unsure
    if annotation is int or annotation is float:
        return _number(value, annotation, info)
    if isinstance(annotation, type) and routes_to_path(annotation, info):
        path_type: Any = info.path_type
        if path_type is None and issubclass(annotation, Path):
            path_type = annotation
        if path_type is Path and isinstance(value, str) and value and "\0" not in value:
            value = Path(value)  # what pydantic makes of a str for a Path
        elif not (path_type in (None, str) or (path_type is Path and isinstance(value, Path))):
            raise _Unsure
        from typer._click.exceptions import BadParameter

        try:
            return coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)
        except BadParameter:
            raise _Unsure from None  # Typer says it again, naming the value as it was given
    raise _Unsure


def _number(value: Any, annotation: type[int] | type[float], info: ParameterInfo) -> Any:
    if info.clamp or isinstance(value, bool):
        raise _Unsure
    pattern = WHOLE if annotation is int else DECIMAL
    given = isinstance(value, int) or (annotation is float and isinstance(value, float))
    if not given and not (isinstance(value, str) and pattern.fullmatch(value)):
        raise _Unsure
    number = annotation(value)
    if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
        raise _Unsure  # Typer's message says which bound
    return number
