"""Problems: bad data found in a file, with the position it was found at."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Location:
    """A position in a file; line and column count from 1, as editors show them."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, reported as `file:line:col: message`."""

    location: Location
    message: str
    hint: str = ""
    rule: str = "input"
    severity: Severity = Severity.ERROR

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
