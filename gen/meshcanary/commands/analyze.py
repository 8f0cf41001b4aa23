"""`meshcanary analyze ENV [SVC]`: each canary's checks, read from Prometheus, and the decision.

Nothing is written: the decisions are printed (text, or the JSON contract of
analysis/output.py). `advance` (commands/edit.py) carries them out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from meshcanary.analysis import output
from meshcanary.analysis.decide import Decision
from meshcanary.analysis.prometheus import Prometheus
from meshcanary.analysis.run import analyze as run_analysis
from meshcanary.analysis.run import parse_replay, parse_time
from meshcanary.errors import InputError

# The variable a bearer token is read from unless --token-env names another.
TOKEN_VARIABLE = "PROMETHEUS_TOKEN"  # noqa: S105 - a variable's name, not a token


@dataclass(frozen=True)
class Source:
    """Where the metrics are: the URL, and the name of the variable holding a bearer token (a
    token never travels on the command line, where `ps` and shell history would show it)."""

    url: str
    token_variable: str = TOKEN_VARIABLE
    ca_file: Path | None = None
    timeout: float = 30.0

    def client(self) -> Prometheus:
        """The client; the URL and the CA file are checked here (InputError, exit 2)."""
        if not self.url:
            raise InputError("--prometheus URL is needed (or set PROMETHEUS_URL)")
        return Prometheus(
            self.url,
            token=os.environ.get(self.token_variable) or None,
            timeout=self.timeout,
            ca_file=str(self.ca_file) if self.ca_file else None,
        )


def decisions(
    root: Path,
    environment: str,
    service: str | None,
    source: Source,
    at: str | None = None,
    replay: str | None = None,
    every: str = "10m",
) -> list[Decision]:
    """The decisions at `at` (now when None), or at each time of the `replay` range."""
    if at is not None and replay is not None:
        raise InputError("give --at or --replay, not both")
    if replay is not None:
        times: list[float | None] = list(parse_replay(replay, every).times)
    else:
        times = [None if at is None else parse_time(at)]
    return run_analysis(root, environment, service, source.client(), times)


def shown(found: list[Decision], form: str, replay: bool) -> str:
    return output.as_json(found) if form == "json" else output.as_text(found, replay=replay)


def exit_code(found: list[Decision]) -> int:
    """1 when a query failed for some canary (it holds, with no verdict), else 0."""
    return 1 if any(d.error for d in found) else 0
