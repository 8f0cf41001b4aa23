"""Kubernetes' semver library: `semver(s)`, `semver(s, normalize)`, `isSemver(s)`,
`isSemver(s, normalize)` and, on a Semver, `major()`, `minor()`, `patch()`, `compareTo()`,
`isLessThan()` and `isGreaterThan()`.

Versions are read as the API server reads them (blang/semver: `1.2.3`, `1.0.0-rc.1+build.5`);
with `normalize` a leading `v`, missing minor or patch and leading zeros are accepted. Two
versions are equal when they compare equal: build metadata is ignored.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from cel_expr_python import cel

from meshcanary.validate.cel import opaque
from meshcanary.validate.cel.opaque import BOOL, INT, STRING, TYPE, function, member

KIND = "kubernetes.Semver"
_DIGITS = frozenset("0123456789")
_ALPHANUMERIC = _DIGITS | frozenset("-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class Version(NamedTuple):
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...]

    def text(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.pre)}" if self.pre else core


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # as Go's %q shows most strings


def _number(text: str, part: str) -> int:
    if not set(text) <= _DIGITS:
        raise ValueError(f"Invalid character(s) found in {part} number {_quoted(text)}")
    if len(text) > 1 and text[0] == "0":
        raise ValueError(
            f"{part.capitalize()} number must not contain leading zeroes {_quoted(text)}"
        )
    if not text or int(text) >= 2**64:
        why = "invalid syntax" if not text else "value out of range"
        raise ValueError(f"strconv.ParseUint: parsing {_quoted(text)}: {why}")
    return int(text)


def parse(text: str, normalize: bool = False) -> Version:
    """A version as blang/semver's Parse reads it; ValueError with its message if not one."""
    if normalize:
        text = _normalized(text)
    if not text:
        raise ValueError("Version string empty")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise ValueError("No Major.Minor.Patch elements found")
    major, minor = _number(parts[0], "major"), _number(parts[1], "minor")
    rest, _, build = parts[2].partition("+")
    patch_text, dash, pre_text = rest.partition("-")
    patch = _number(patch_text, "patch")
    pre = tuple(pre_text.split(".")) if dash else ()
    for identifier in pre:
        if not identifier:
            raise ValueError("Prerelease is empty")
        if set(identifier) <= _DIGITS:
            if len(identifier) > 1 and identifier[0] == "0":
                raise ValueError(
                    "Numeric PreRelease version must not contain leading zeroes "
                    + _quoted(identifier)
                )
        elif not set(identifier) <= _ALPHANUMERIC:
            raise ValueError(f"Invalid character(s) found in prerelease {_quoted(identifier)}")
    if "+" in parts[2]:
        for identifier in build.split("."):
            if not identifier:
                raise ValueError("Build meta data is empty")
            if not set(identifier) <= _ALPHANUMERIC:
                raise ValueError(
                    f"Invalid character(s) found in build meta data {_quoted(identifier)}"
                )
    return Version(major, minor, patch, pre)


def _normalized(text: str) -> str:
    parts = text.removeprefix("v").split(".", 2)
    for index, part in enumerate(parts):
        if len(part) > 1:
            part = part.lstrip("0")
            if not part or part[0] not in _DIGITS:
                part = "0" + part
            parts[index] = part
    if len(parts) < 3:
        if any(c in parts[-1] for c in "+-"):
            raise ValueError("short version cannot contain PreRelease/Build meta data")
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def _order(version: Version) -> tuple[Any, ...]:
    # A release is above its pre-releases; numeric identifiers are below alphanumeric ones.
    identifiers = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.pre)
    return (version.major, version.minor, version.patch, not version.pre, identifiers)


def compare(left: str, right: str) -> int:
    """-1, 0 or 1 as the version whose text is `left` is below, at or above `right`'s."""
    a, b = _order(parse(left)), _order(parse(right))
    return (a > b) - (a < b)


def _int64(value: int) -> int:
    return value - 2**64 if value >= 2**63 else value  # as Go's int64(uint64) wraps


def library() -> Any:
    def semver(text: str, normalize: bool = False) -> dict[str, str]:
        return opaque.wrap(KIND, parse(text, normalize).text())

    def is_semver(text: str, normalize: bool = False) -> bool:
        try:
            parse(text, normalize)
        except ValueError:
            return False
        return True

    def part(name: str) -> Any:
        return lambda version: _int64(getattr(parse(opaque.unwrap(KIND, version)), name))

    return cel.CelExtension(
        "kubernetes.semver",
        [
            cel.FunctionDecl(
                "semver",
                [
                    function("semver", TYPE, [STRING], semver),
                    function("semver", TYPE, [STRING, BOOL], semver),
                ],
            ),
            cel.FunctionDecl(
                "isSemver",
                [
                    function("isSemver", BOOL, [STRING], is_semver),
                    function("isSemver", BOOL, [STRING, BOOL], is_semver),
                ],
            ),
            cel.FunctionDecl("major", [member("major", INT, [TYPE], part("major"))]),
            cel.FunctionDecl("minor", [member("minor", INT, [TYPE], part("minor"))]),
            cel.FunctionDecl("patch", [member("patch", INT, [TYPE], part("patch"))]),
        ],
    )
