"""Validate release and environment files against their JSON Schemas, with positions.

jsonschema's messages talk about instances and properties; these talk about the file: an
unknown field names the closest known one, a wrong type says what was found.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from meshcanary.problem import Problem
from meshcanary.resources import data_dir
from meshcanary.source import TYPE_WORDS, SourceDoc, type_name

if TYPE_CHECKING:
    # Python's jsonschema runs only to explain a file jsonschema-rs refused (or one holding a
    # float): a conforming file never imports it, nor its referencing and attrs.
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator
    from referencing import Registry

SCHEMA_BASE = "https://meshcanary.dev/schemas/"


def _is_integer(_checker: Any, instance: object) -> bool:
    # JSON Schema counts 30.0 as an integer; a weight written 30.0 is a typo, so refuse it.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _pattern(
    _validator: Any, pattern: str, instance: object, _schema: Any
) -> Iterator[ValidationError]:
    from jsonschema import ValidationError

    # ECMA-262's `$` ends the text; Python's also matches before a final newline, which
    # would let "micro-dev\n" pass here while the quick validator (Rust regex) refuses it.
    if isinstance(instance, str) and not re.search(
        re.sub(r"(?<!\\)\$$", r"\\Z", pattern), instance
    ):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _strict() -> Any:
    from jsonschema import Draft202012Validator, validators

    return validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator,
        validators={"pattern": _pattern},
        type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    )


@cache
def _schemas() -> dict[str, Any]:
    """Every bundled schema by its URI, parsed once for both validators."""
    return {
        SCHEMA_BASE + path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(data_dir("schemas").glob("*.schema.json"))
    }


@cache
def _registry() -> Registry[Any]:
    from referencing import Registry, Resource

    resources = [(uri, Resource.from_contents(c)) for uri, c in _schemas().items()]
    registry: Registry[Any] = Registry().with_resources(resources)
    return registry


@cache
def validator(name: str) -> Validator:
    """A compiled validator for `release` or `environment`."""
    schema = _registry().contents(f"{SCHEMA_BASE}{name}.schema.json")
    result: Validator = _strict()(schema, registry=_registry())
    return result


_NAME_NOUNS = {
    "versions": "version name",
    "gateways": "gateway name",
    "headers": "header name",
    "cookies": "cookie name",
    "rules": "rule ID",
}


def _field(error: ValidationError) -> str:
    named = [p for p in error.absolute_path if isinstance(p, str)]
    return f'"{named[-1]}"' if named else "the document"


def _closest(word: str, choices: list[str]) -> str:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f'did you mean "{found[0]}"?' if found else ""


def _problems(error: ValidationError, doc: SourceDoc) -> Iterator[Problem]:
    path = list(error.absolute_path)
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    at = doc.location(path)
    if keyword == "additionalProperties" and isinstance(instance, dict):
        known = sorted(schema.get("properties", {}))
        patterns = schema.get("patternProperties", {})
        for name in instance:
            if name in known or patterns:
                continue
            hint = _closest(str(name), known) or (
                f"allowed here: {', '.join(known)}" if known else ""
            )
            yield Problem(doc.location([*path, name], key=True), f'unknown field "{name}"', hint)
        return
    if keyword == "required":
        quoted = re.match(r"'([^']*)'", error.message)
        missing = quoted.group(1) if quoted else error.message
        where = f" in {_field(error)}" if path else ""
        yield Problem(at, f'missing required field "{missing}"{where}')
        return
    if keyword == "type":
        expected = error.validator_value
        words = (
            " or ".join(TYPE_WORDS.get(str(t), str(t)) for t in expected)
            if isinstance(expected, list)
            else TYPE_WORDS.get(str(expected), str(expected))
        )
        found = type_name(instance)
        shown = f" {json.dumps(instance)}" if isinstance(instance, str | int | float) else ""
        hint = ""
        if isinstance(instance, str) and expected in ("integer", "number"):
            hint = "write the number without quotes or a unit"
        elif isinstance(instance, float) and expected == "integer":
            hint = "write a whole number"
        yield Problem(at, f"{_field(error)} must be {words}, found {found}{shown}", hint)
        return
    if keyword == "enum":
        choices = [str(c) for c in schema.get("enum", [])]
        yield Problem(
            at,
            f"{_field(error)} must be one of {', '.join(choices)}; found {json.dumps(instance)}",
            _closest(str(instance), choices),
        )
        return
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if schema.get("type") == "integer" and not _is_integer(None, instance):
            return  # .inf for an integer: the type error says it all, once
        words = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "more than",
            "exclusiveMaximum": "less than",
        }[keyword]
        yield Problem(
            at, f"{_field(error)} must be {words} {error.validator_value}, found {instance}"
        )
        return
    if "propertyNames" in error.absolute_schema_path:
        noun = _NAME_NOUNS.get(str(path[-1]) if path else "", "name")
        description = schema.get("description", "")
        yield Problem(
            doc.location([*path, str(instance)], key=True),
            f'"{instance}" is not a valid {noun}',
            description,
        )
        return
    if keyword in ("pattern", "minLength", "maxLength", "not"):
        description = schema.get("description", "")
        yield Problem(at, f"{json.dumps(instance)} is not a valid {_field(error)}", description)
        return
    if keyword == "uniqueItems":
        yield Problem(at, f"{_field(error)} lists the same item twice")
        return
    if keyword in ("minItems", "minProperties"):
        yield Problem(at, f"{_field(error)} must not be empty")
        return
    if keyword == "maxProperties":
        names = list(schema.get("properties", {}))
        limit = error.validator_value
        message = (
            f"{_field(error)} must have exactly one of: {', '.join(names)}"
            if names and limit == 1
            else f"{_field(error)} may have at most {limit} entr{'y' if limit == 1 else 'ies'}"
        )
        yield Problem(at, message, schema.get("description", ""))
        return
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    if keyword == "anyOf" and all(
        isinstance(branch, dict) and set(branch) == {"required"} for branch in branches
    ):
        needed = [str(name) for branch in branches for name in branch["required"]]
        yield Problem(at, f"{_field(error)} needs one of: {', '.join(needed)}")
        return
    if keyword == "dependentRequired":
        quoted = re.match(r"'([^']*)' is a dependency of '([^']*)'", error.message)
        if quoted:
            wanted, given = quoted.groups()
            yield Problem(
                doc.location([*path, given], key=True), f'"{given}" needs "{wanted}" beside it'
            )
            return
    alternatives = [
        " with ".join(str(name) for name in branch["required"])
        for branch in branches
        if isinstance(branch, dict) and branch.get("required")
    ]
    if keyword == "oneOf" and alternatives:
        # A choice between objects (an analysis check): name the choices, not the branches'
        # own messages, which speak of the other branches' fields.
        yield Problem(
            at,
            f"{_field(error)} must be exactly one of: {', '.join(alternatives)}; "
            f"found {json.dumps(instance)}",
            schema.get("description", ""),
        )
        return
    if keyword == "oneOf":
        yield Problem(
            at,
            f"{_field(error)} must be a whole number or a percentage such as 25%, found {json.dumps(instance)}",
        )
        return
    yield Problem(at, f"{_field(error)}: {error.message}")


@cache
def _quick(name: str) -> Any:
    """jsonschema-rs over the same schemas: a hundred times faster, but without the messages."""
    import jsonschema_rs

    schemas = _schemas()
    registry = jsonschema_rs.Registry(list(schemas.items()))
    return jsonschema_rs.validator_for(
        schemas[f"{SCHEMA_BASE}{name}.schema.json"], registry=registry
    )


def _has_float(value: object) -> bool:
    """Whether `value` holds a whole number written as a float (30.0), which jsonschema-rs
    takes for an integer; 0.5 is no integer to either validator."""
    if isinstance(value, float):
        return value.is_integer() or value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def check(name: str, doc: SourceDoc) -> list[Problem]:
    """Every schema problem of `doc`, located; empty when it conforms."""
    # A conforming file (nearly every one) is told by jsonschema-rs; Python's jsonschema
    # runs only to say what is wrong. jsonschema-rs counts 30.0 as an integer, which _Strict
    # refuses, so a file holding such a float always takes the slow road.
    if not _has_float(doc.data) and _quick(name).is_valid(doc.data):
        return []
    problems: list[Problem] = []
    for error in validator(name).iter_errors(doc.data):
        problems.extend(_problems(error, doc))
    # One wrong value can break several keywords; report each position once.
    unique: dict[tuple[object, ...], Problem] = {}
    for problem in problems:
        unique.setdefault((problem.location, problem.message), problem)
    return sorted(unique.values(), key=Problem.sort_key)
