"""`meshcanary import`: existing manifests of an application → bases, release files and the
environment's Gateways, proven equivalent by a render (`--verify`).

The command's one step and its report; `meshcanary.importer` does the reading, the notes and
the writing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meshcanary import importer
from meshcanary.errors import InputError
from meshcanary.importer import ImportResult
from meshcanary.importer.context import DROPPED, NORMALIZED, REFUSED
from meshcanary.problem import Location, Problem, printable


def import_manifests(
    root: Path,
    files: Sequence[Path],
    environment: str,
    services: Sequence[str] = (),
    namespace: str | None = None,
    *,
    drops: Sequence[str] = (),
    canaries: Sequence[str] = (),
    verify: bool = True,
) -> ImportResult:
    """Import `files` into `environment` of the repository at `root`."""
    return importer.import_manifests(
        root,
        files,
        environment,
        services,
        namespace,
        drops=drops,
        canary=_canaries(canaries, services),
        verify=verify,
    )


def _canaries(given: Sequence[str], services: Sequence[str]) -> dict[str, str]:
    """`--canary SERVICE=VERSION`, or `--canary VERSION` when one service is imported."""
    found: dict[str, str] = {}
    for text in given:
        service, equals, version = text.partition("=")
        if not equals:
            if len(services) != 1:
                raise InputError(
                    [
                        Problem(
                            Location("--canary"),
                            f"--canary {text} names no service",
                            "write --canary SERVICE=VERSION (or import one --service)",
                        )
                    ]
                )
            service, version = services[0], text
        found[service] = version
    return found


def exit_code(result: ImportResult) -> int:
    return 0 if result.ok else 1


def report(result: ImportResult, environment: str) -> str:
    """The import as a short table: what became what, what was normalized, dropped, refused."""
    lines: list[str] = []
    for service in result.services:
        lines.append(f"service {service.service}: {service.order}")
        for source, rendered in service.deployments:
            shown = source or "(no name)"
            same = "" if source == rendered else f" -> Deployment {rendered}"
            lines.append(f"  Deployment {shown}{same}")
        for kept in service.objects:
            lines.append(f"  {kept} (in the base)")
        if service.base_reused:
            lines.append(f"  base deploy/base/{service.service} exists, the same: reused")
    found = counts(result)
    lines.append(
        f"{found[NORMALIZED]} normalized, {found[DROPPED]} dropped (--drop), "
        f"{found[REFUSED]} refused"
    )
    for drop in result.unused_drops:
        lines.append(f"--drop {drop} matches nothing that was refused")
    if result.verified:
        lines.append("verify: the rendered tree is equivalent to the manifests")
    elif result.differences:
        lines.append(f"verify: {len(result.differences)} difference(s); nothing written")
    if not result.ok:
        lines.append("nothing written")
    else:
        lines.append(f"imported into {environment}; next: meshcanary render && meshcanary check")
    return "\n".join(printable(line) for line in lines)


def as_json(result: ImportResult, environment: str) -> str:
    """The import for automation: a stable shape, sorted keys."""

    def note(problem: Problem) -> dict[str, Any]:
        location = problem.location
        return {
            "file": location.file,
            "line": location.line,
            "column": location.column,
            "kind": problem.rule.removeprefix("import-") if problem.rule else "note",
            "message": problem.message,
            "hint": problem.hint or None,
            "path": problem.path,
        }

    data: dict[str, Any] = {
        "environment": environment,
        "ok": result.ok,
        "written": list(result.written),
        "verified": result.verified,
        "services": [
            {
                "service": s.service,
                "versions": list(s.versions),
                "stable": s.versions[0],
                "canary": s.versions[-1] if len(s.versions) > 1 else None,
                "order": s.order,
                "deployments": [{"from": a, "to": b} for a, b in s.deployments],
                "objects": list(s.objects),
                "baseReused": s.base_reused,
            }
            for s in result.services
        ],
        "notes": [note(n) for n in result.notes],
        "differences": [note(d) for d in result.differences],
        "unusedDrops": list(result.unused_drops),
    }
    return json.dumps(data, indent=2, sort_keys=True)


def counts(result: ImportResult) -> Mapping[str, int]:
    """How many notes of each kind: normalized, dropped, refused."""
    return {
        rule: sum(1 for n in result.notes if n.rule == rule)
        for rule in (NORMALIZED, DROPPED, REFUSED)
    }
