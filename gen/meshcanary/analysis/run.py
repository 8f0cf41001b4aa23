"""`analyze` over a repository: which canaries, their steps from Git, their decisions.

Time is given (`--at`) or now; a replay is the same question asked at each time of a range,
with the weights and step starts Git had then, so a backtest decides as a run at that time
would have.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from meshcanary.analysis.decide import Decision
from meshcanary.analysis.evaluate import Target, evaluate, target
from meshcanary.analysis.history import histories
from meshcanary.analysis.prometheus import Prometheus
from meshcanary.errors import InputError
from meshcanary.release import load
from meshcanary.release.analysis import seconds
from meshcanary.release.model import Release

# A replay reads at most this many times: a year at a 10 minute step is far beyond any
# backtest, and a typo in a range must not send a hundred thousand queries.
MAX_REPLAY_TIMES = 5000
# Unix seconds: nine digits or more (since 1973), so that 20261123, a date, is not one.
_UNIX = re.compile(r"^[0-9]{9,12}(\.[0-9]{1,9})?$")


def _refused(message: str, hint: str = "") -> InputError:
    return InputError(f"{message}\n  hint: {hint}" if hint else message)


def parse_time(text: str) -> float:
    """`--at`: RFC 3339 (`2026-11-23T10:00:00Z`, an offset, or none for UTC) or Unix seconds."""
    if _UNIX.match(text):
        return float(text)
    try:
        # RFC 3339 allows a lower-case `t` and `z`, which Python's reader does not.
        when = datetime.fromisoformat(text.upper())
    except ValueError:
        raise _refused(
            f'"{text}" is not a time',
            "give RFC 3339, such as 2026-11-23T10:00:00Z, or Unix seconds (9 digits or more)",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def shown_time(at: float) -> str:
    """RFC 3339 in UTC, to the second (or the millisecond when it has a fraction)."""
    when = datetime.fromtimestamp(at, UTC)
    if at == int(at):
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Replay:
    start: float
    end: float
    every: float

    @property
    def times(self) -> list[float]:
        count = int((self.end - self.start) // self.every) + 1
        return [self.start + index * self.every for index in range(count)]


def parse_replay(text: str, every: str) -> Replay:
    """`--replay FROM..TO` with `--every DURATION`."""
    start_text, dots, end_text = text.partition("..")
    if not dots or not start_text or not end_text:
        raise _refused(
            f'"{text}" is not a range',
            "give FROM..TO, such as 2026-11-23T00:00Z..2026-11-24T00:00Z",
        )
    start, end = parse_time(start_text), parse_time(end_text)
    if end < start:
        raise _refused(f"the replay ends ({end_text}) before it starts ({start_text})")
    try:
        step = seconds(every)
    except ValueError:
        raise _refused(f'--every "{every}" is not a duration', "such as 10m or 1h") from None
    if step <= 0:
        raise _refused("--every must be longer than 0")
    replay = Replay(start, end, step)
    if (end - start) // step + 1 > MAX_REPLAY_TIMES:
        raise _refused(
            f"the replay would read {int((end - start) // step) + 1} times, "
            f"more than {MAX_REPLAY_TIMES}",
            "shorten the range or lengthen --every",
        )
    return replay


def releases(root: Path, environment: str, service: str | None) -> list[Release]:
    """The environment's releases (one, with `service`), refused when there is none."""
    loaded = load.load(root, [environment])[0]
    found = [r for r in loaded.releases if service is None or r.service == service]
    if service is not None and not found:
        names = ", ".join(r.service for r in loaded.releases) or "none"
        raise _refused(
            f'no release "{service}" in environment {environment}',
            f"its releases: {names}",
        )
    return found


def analyze(
    root: Path,
    environment: str,
    service: str | None,
    prometheus: Prometheus,
    times: Sequence[float | None],
) -> list[Decision]:
    """The decision for every canary of the environment (or `service`) at each time (None:
    now, with the work tree's weights), times in order, services in the file's order."""
    chosen = releases(root, environment, service)
    judged = [r.path for r in chosen if r.analysis is not None]
    found = histories(root, judged)
    decisions: list[Decision] = []
    for at in times:
        when = at if at is not None else datetime.now(UTC).timestamp()
        targets: list[Target] = []
        for release in chosen:
            if release.path not in found:
                continue
            canary = target(release, found[release.path], at)
            if canary is not None:
                targets.append(canary)
        decisions += evaluate(prometheus, targets, when)
    return decisions


def canaries(root: Path, environment: str, service: str | None) -> list[str]:
    """The services `analyze` would judge now: a canary between 0% and 100%, with a plan."""
    return [
        r.service
        for r in releases(root, environment, service)
        if r.analysis is not None and len(r.versions) > 1 and 0 < r.canary.weight < 100
    ]
