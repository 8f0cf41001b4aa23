"""`meshcanary status`: who gets which share of the traffic, per environment.

For each version: its role (the first version of a release file is the stable one, the last
the canary), its weight and the share of traffic that gives it, the requests pinned to it by
`match` rules and the copy `mirror` sends it. For each canary: the step of the plan
(`canary.steps`) it stands at. For each environment: whether deploy/overlays/<env>/ is what
the release files render to, and which services differ.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.layout import GATEWAYS, HASHES_FILE, OVERLAYS
from meshcanary.problem import Problem, printable
from meshcanary.release import model
from meshcanary.release.load import LoadedEnvironment, load
from meshcanary.release.model import GATEWAY_API, HeaderMatch, Release
from meshcanary.render import repository
from meshcanary.render.overlay import replica_split
from meshcanary.render.tree import Plan

STABLE, CANARY = "stable", "canary"


@dataclass(frozen=True)
class Condition:
    """One condition of a `match` rule: on the uri, method or authority, a request header,
    one cookie, or a query parameter."""

    on: str  # request (uri, method, authority), header, cookie or query
    name: str
    match: str  # exact, prefix or regex, as Istio's StringMatch names them
    value: str

    def describe(self) -> str:
        shown = (
            printable(self.name) if self.on == "request" else f"{self.on} {printable(self.name)}"
        )
        if self.match == "exact":
            return f"{shown}={printable(self.value)}"
        return f"{shown} {self.match} {printable(self.value)}"


@dataclass(frozen=True)
class Pin:
    """A `match` rule: the requests that meet all its conditions go to one version."""

    rule: str
    conditions: tuple[Condition, ...]

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.conditions)


@dataclass(frozen=True)
class Step:
    """Where the canary's weight stands on the release's `canary.steps`."""

    steps: tuple[int, ...]
    weight: int

    @property
    def index(self) -> int | None:
        """1-based step the weight is at; 0 before the first step; None off the plan."""
        if not self.steps:
            return None
        if self.weight == 0:
            return 0
        return self.steps.index(self.weight) + 1 if self.weight in self.steps else None

    def describe(self) -> str:
        listed = ", ".join(map(str, self.steps))
        if not self.steps:
            return f"no plan ({self.weight}%; no canary.steps)"
        if self.index is None:
            return f"off plan ({self.weight}%; steps {listed})"
        if self.index == 0:
            return f"before step 1 of {len(self.steps)} (0%; steps {listed})"
        return f"step {self.index} of {len(self.steps)} ({self.weight}%)"


@dataclass(frozen=True)
class Row:
    environment: str
    service: str
    method: str
    version: str
    image: str
    replicas: int
    weight: int
    share: float  # percent of traffic the version actually gets: the weight, or its share of pods
    role: str | None = None  # stable (the first version), canary (the last), or neither
    pinned: tuple[Pin, ...] = ()  # match rules that send their requests to this version
    mirrored: float | None = None  # percent of requests of which it gets a copy
    plan: Step | None = None  # the canary's only
    routing: str | None = None  # the API its routes are in (istio, gateway-api); None: no routes


@dataclass(frozen=True)
class Freshness:
    """How deploy/overlays/<env>/ compares with what the release files render to."""

    environment: str
    services: tuple[str, ...]  # service folders (and _gateways) that differ
    files: tuple[str, ...]  # files of the environment folder itself that differ
    gone: bool = False  # the environment is no longer in environments/: render removes it

    @property
    def stale(self) -> bool:
        return bool(self.services or self.files or self.gone)

    def describe(self) -> str:
        if self.gone:
            return f"removed from environments/; render deletes {OVERLAYS}/{self.environment}"
        if not self.stale:
            return "render is fresh"
        parts = ["the gateways" if name == GATEWAYS else printable(name) for name in self.services]
        if self.files:
            parts.append(", ".join(printable(name) for name in self.files))
        return f"render is stale for {', '.join(parts)}; run `meshcanary render`"


@dataclass(frozen=True)
class Status:
    rows: tuple[Row, ...]
    # By environment; None when the release files cannot be rendered (`problems` says why).
    render: dict[str, Freshness] | None
    problems: tuple[Problem, ...] = ()


def status(root: Path, names: Sequence[str] = ()) -> Status:
    """The traffic of every version of `names` (all environments when empty), and freshness."""
    try:
        result = repository.plan(root, names)
    except InputError as exc:
        # The release files load (else this raises too) but a base does not render: the
        # weights are still worth showing.
        return Status(tuple(rows(load(root, names))), None, exc.problems)
    return Status(tuple(rows(list(result.environments))), freshness(result.plans))


def freshness(plans: Sequence[Plan]) -> dict[str, Freshness]:
    found: dict[str, Freshness] = {}
    for plan in plans:
        env = plan.folder.rsplit("/", 1)[-1]
        services: set[str] = set()
        files: set[str] = set()
        for change in plan.changes:
            path = change.path.removeprefix(plan.folder + "/")
            if "/" in path:
                services.add(path.split("/", 1)[0])
            else:
                files.add(path)
        if services or len(files) > 1:
            # The environment's hash file changes with its own files (kustomization.yaml,
            # _gateways/): not news beside them. A service's is in its folder, counted there.
            files.discard(HASHES_FILE)
        found[env] = Freshness(env, tuple(sorted(services)), tuple(sorted(files)), not plan.files)
    return found


def rows(environments: list[LoadedEnvironment]) -> list[Row]:
    table: list[Row] = []
    for loaded in environments:
        for release in loaded.releases:
            split = None if release.uses_istio else replica_split(release)
            plan = Step(release.steps, release.canary.weight) if len(release.versions) > 1 else None
            for version in release.versions:
                replicas = version.replicas or 0 if split is None else split.replicas[version.name]
                share = (
                    float(version.weight) if split is None else round(split.share(version.name), 2)
                )
                role = _role(release, version.name)
                table.append(
                    Row(
                        loaded.environment.name,
                        release.service,
                        release.method,
                        version.name,
                        version.image,
                        replicas,
                        version.weight,
                        share,
                        role,
                        tuple(
                            Pin(m.name, _conditions(m.condition))
                            for m in release.matches
                            if m.version == version.name
                        ),
                        float(release.mirror.percent)
                        if release.mirror and release.mirror.version == version.name
                        else None,
                        plan if role == CANARY else None,
                        routing=release.routing if release.uses_istio else None,
                    )
                )
    return table


def _role(release: Release, version: str) -> str | None:
    if version == release.stable.name:
        return STABLE
    return CANARY if version == release.canary.name else None


# How the loader writes `cookies: {name: value}` as a condition on the Cookie header.
_COOKIE = re.compile(r"\^\(\.\*;\\s\*\)\?(?P<pair>.*)\(\\s\*;\.\*\)\?\$")
_METACHARACTERS = r".^$*+?()[]{}|\/"


def _escape(text: str) -> str:
    return "".join(f"\\{c}" if c in _METACHARACTERS else c for c in text)


def _conditions(condition: model.Condition) -> tuple[Condition, ...]:
    """A pin's conditions as the release file says them: on the request's uri, method and
    authority, then its headers (a cookie as a cookie) and query parameters."""
    found = [
        Condition("request", name, match.kind, match.value)
        for name, match in (
            ("uri", condition.uri),
            ("method", condition.method),
            ("authority", condition.authority),
        )
        if match is not None
    ]
    found += [_condition(h) for h in condition.headers]
    found += [Condition("query", q.param, q.kind, q.value) for q in condition.query_params]
    return tuple(found)


def _condition(header: HeaderMatch) -> Condition:
    """The condition as the release file says it: a cookie, rather than the regex for it."""
    found = _COOKIE.fullmatch(header.value) if header.header == "cookie" else None
    if found and header.kind == "regex":
        pair = re.sub(r"\\(.)", r"\1", found["pair"])
        name, _, value = pair.partition("=")
        # Only a pattern the loader wrote reads back: a hand-written regex stays one.
        if f"{_escape(name)}={_escape(value)}" == found["pair"]:
            return Condition("cookie", name, "exact", value)
    return Condition("header", header.header, header.kind, header.value)


def as_json(report: Status) -> dict[str, Any]:
    """The rows by environment, as before; `render` is None when it cannot be told."""
    environments: dict[str, list[dict[str, Any]]] = {}
    for row in report.rows:
        environments.setdefault(row.environment, []).append(
            {
                "service": row.service,
                "method": row.method,
                "routing": row.routing,
                "version": row.version,
                "image": row.image,
                "replicas": row.replicas,
                "weight": row.weight,
                "share": row.share,
                "role": row.role,
                "pinned": [
                    {
                        "rule": pin.rule,
                        "conditions": [
                            {"on": c.on, "name": c.name, "match": c.match, "value": c.value}
                            for c in pin.conditions
                        ],
                    }
                    for pin in row.pinned
                ],
                "mirrored": row.mirrored,
                "plan": None
                if row.plan is None
                else {"steps": list(row.plan.steps), "step": row.plan.index},
            }
        )
    fresh = (
        None
        if report.render is None
        else {
            env: {
                "stale": item.stale,
                "services": list(item.services),
                "files": list(item.files),
                "removed": item.gone,
            }
            for env, item in sorted(report.render.items())
        }
    )
    return {"environments": environments, "render": fresh}


COLUMNS = ("SERVICE", "VERSION", "ROLE", "WEIGHT", "TRAFFIC", "PODS", "IMAGE")
_RIGHT = {"WEIGHT", "TRAFFIC", "PODS"}
_BOLD, _GREEN, _YELLOW, _RED, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[0m"
_ROLE_COLORS = {STABLE: _GREEN, CANARY: _YELLOW}


def text(report: Status, *, width: int | None = None, color: bool = False) -> str:
    """A table per environment, then a line per canary step, pinned route and mirror.

    With no `width` (piped output), every row is one line, whatever its length: the same
    output for the same repository. With a `width` (a terminal), the image moves to a line of
    its own when a row does not fit, longer lines are wrapped, and no line is wider.
    """
    lines: list[str] = []
    render = report.render or {}
    for env in dict.fromkeys([*(r.environment for r in report.rows), *sorted(render)]):
        table = [r for r in report.rows if r.environment == env]
        fresh = render.get(env)
        if lines:
            lines.append("")
        said = fresh.describe() if fresh is not None else "render fails (the errors are on stderr)"
        style = _RED if fresh is None or fresh.stale else _BOLD
        lines.extend(
            f"{style}{line}{_RESET}" if color else line
            for line in _wrap(f"environment {printable(env)}: {said}", width)
        )
        if not table:
            continue
        lines.extend(_table(table, width, color))
        routed = [r.service for r in table if r.routing == GATEWAY_API]
        if routed:
            names = ", ".join(printable(s) for s in dict.fromkeys(routed))
            lines.extend(_wrap(f"routed with the Gateway API: {names}", width))
        for row in table:
            service, version = printable(row.service), printable(row.version)
            notes = [f"{service}: {version} is {row.plan.describe()}"] if row.plan else []
            notes += [
                f"{service}: pinned to {version}: requests with {pin.describe()} "
                f"(match {printable(pin.rule)})"
                for pin in row.pinned
            ]
            if row.mirrored is not None:
                notes.append(
                    f"{service}: mirrored to {version}: a copy of {row.mirrored:g}% of "
                    "requests (its answers are dropped)"
                )
            lines.extend(wrapped for note in notes for wrapped in _wrap(note, width))
    return "".join(line + "\n" for line in lines)


def _table(table: list[Row], width: int | None, color: bool) -> list[str]:
    cells = [
        (
            printable(r.service),
            printable(r.version),
            r.role or "",
            str(r.weight),
            f"{r.share:g}%",
            str(r.replicas),
            printable(r.image),
        )
        for r in table
    ]
    rows = [COLUMNS, *cells]
    sizes = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    inline = width is None or sum(sizes) + 2 * (len(sizes) - 1) <= width
    # Too wide for the terminal: the image, the longest cell, goes on a line of its own.
    shown = len(COLUMNS) if inline else len(COLUMNS) - 1
    lines: list[str] = []
    for number, row in enumerate(rows):
        padded = [
            row[i].rjust(sizes[i]) if COLUMNS[i] in _RIGHT else row[i].ljust(sizes[i])
            for i in range(shown)
        ]
        line = "  ".join(padded).rstrip()
        if width is not None and len(line) > width:
            line = _cut(line, width, right=True)
        elif color and number == 0:
            line = f"{_BOLD}{line}{_RESET}"
        elif color and row[2] in _ROLE_COLORS:
            padded[2] = f"{_ROLE_COLORS[row[2]]}{padded[2]}{_RESET}"
            line = "  ".join(padded).rstrip()
        lines.append(line)
        if not inline and number > 0 and width is not None:
            lines.append(_cut(f"    image {row[-1]}", width, right=False))
    return lines


def _cut(line: str, width: int, *, right: bool) -> str:
    """`line` in `width` characters: its end (right) or, for an image, its start replaced."""
    if len(line) <= width:
        return line
    if right:
        return line[: max(width - 1, 0)] + "…"
    # The tag, at the end of an image, is what tells versions apart.
    head = "    image …"
    if width <= len(head):
        return line[:width]
    return head + line[len(line) - (width - len(head)) :]


def _wrap(line: str, width: int | None) -> list[str]:
    if width is None:
        return [line]
    return textwrap.wrap(
        line,
        max(width, 1),
        subsequent_indent="    " if width > 8 else "",
        break_on_hyphens=False,
        break_long_words=True,
    )
