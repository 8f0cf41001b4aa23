"""Problems: bad data found in a file, with the position it was found at."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe: error 2, warning 1, info 0."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True, order=True)
class Location:
    """A position in a file; line and column count from 1, as editors show them."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class ResourceRef:
    """Which Kubernetes object a problem is about."""

    api_version: str
    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, reported as `file:line:col: message`.

    `rule` is the ID of the check that found it ("input" for unreadable input, "schema" for
    schema validation, a built-in rule's ID, or a policy's); `path` is a JSON Pointer into
    `resource` when the problem is about one field of a Kubernetes object.
    """

    location: Location
    message: str
    hint: str = ""
    rule: str = "input"
    severity: Severity = Severity.ERROR
    resource: ResourceRef | None = None
    path: str = ""

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.message)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def format(self) -> str:
        """`file:line:col: severity: message`, and the hint on a line of its own."""
        text = f"{self.location}: {self.severity.value}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text
