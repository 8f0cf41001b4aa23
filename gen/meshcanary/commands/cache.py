"""A content-hash cache of `check` reports: a second run over unchanged inputs reads the report.

The key covers what can change a report: meshcanary's version, the options, the changed
paths given, the kustomize binary, and the bytes of every file under environments/, deploy/,
policies/, each release file's base, and any --policies or --crd file. A base that pulls in
files from elsewhere (`resources: ../../shared/x`) is the one input it cannot see: run
`check --no-cache` when such a file changes. The cache lives outside the
repository (`$MESHCANARY_CACHE_DIR`, else `$XDG_CACHE_HOME/meshcanary`, else
`~/.cache/meshcanary`); deleting it only costs time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from meshcanary import __version__
from meshcanary.problem import Location, Problem, ResourceRef, Severity
from meshcanary.report import Report, ResourceResult, RuleInfo, Status

FORMAT = 1
_BASE = re.compile(r"""^base:[ \t]*["']?([^"'\s#]+)""", re.MULTILINE)


def folder() -> Path:
    configured = os.environ.get("MESHCANARY_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meshcanary"


def key(root: Path, options: str, paths: list[str], extra_files: list[Path], tool: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}\0{__version__}\0{options}\0{sorted(paths)}\0{tool}\0".encode())
    tool_path = Path(tool)
    if tool_path.is_file():
        stat = tool_path.stat()
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    files: list[Path] = []
    for top in ("environments", "deploy", "policies"):
        base = root / top
        if base.is_dir():
            files.extend(p for p in base.rglob("*") if p.is_file())
    files.extend(p for p in extra_files if p.is_file())
    environments = root / "environments"
    for release in sorted(environments.glob("*/*.yaml")) if environments.is_dir() else ():
        found = _BASE.search(release.read_text(encoding="utf-8", errors="replace"))
        folder = (root / found.group(1)).resolve() if found else None
        if folder is not None and folder.is_dir() and folder.is_relative_to(root.resolve()):
            files.extend(p for p in folder.rglob("*") if p.is_file())
    files = list(dict.fromkeys(p.resolve() for p in files))
    for path in sorted(files):
        digest.update(path.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _problem(problem: Problem) -> dict[str, Any]:
    ref = problem.resource
    return {
        "location": [problem.location.file, problem.location.line, problem.location.column],
        "message": problem.message,
        "hint": problem.hint,
        "rule": problem.rule,
        "severity": problem.severity.value,
        "resource": [ref.api_version, ref.kind, ref.name, ref.namespace] if ref else None,
        "path": problem.path,
    }


def _unproblem(data: dict[str, Any]) -> Problem:
    ref = data["resource"]
    return Problem(
        location=Location(*data["location"]),
        message=data["message"],
        hint=data["hint"],
        rule=data["rule"],
        severity=Severity(data["severity"]),
        resource=ResourceRef(*ref) if ref else None,
        path=data["path"],
    )


def dump(report: Report) -> str:
    return json.dumps(
        {
            "problems": [_problem(p) for p in report.problems],
            "results": [
                {
                    "file": r.file,
                    "resource": [
                        r.resource.api_version,
                        r.resource.kind,
                        r.resource.name,
                        r.resource.namespace,
                    ],
                    "status": r.status.value,
                    "problems": [_problem(p) for p in r.problems],
                }
                for r in report.results
            ],
            "files": report.files,
            "stdin": report.stdin,
            "rules": [[i.id, i.severity.value, i.summary, i.help] for i in report.rules],
            "checks": list(report.checks),
        }
    )


def load(text: str) -> Report:
    data = json.loads(text)
    return Report(
        problems=tuple(_unproblem(p) for p in data["problems"]),
        results=tuple(
            ResourceResult(
                r["file"],
                ResourceRef(*r["resource"]),
                Status(r["status"]),
                tuple(_unproblem(p) for p in r["problems"]),
            )
            for r in data["results"]
        ),
        files=data["files"],
        stdin=data["stdin"],
        rules=tuple(RuleInfo(i[0], Severity(i[1]), i[2], i[3]) for i in data["rules"]),
        checks=tuple(data["checks"]),
    )


def read(name: str) -> Report | None:
    path = folder() / f"{name}.json"
    try:
        return load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(name: str, report: Report) -> None:
    target = folder()
    try:
        target.mkdir(parents=True, exist_ok=True)
        temporary = target / f".{name}.{os.getpid()}.tmp"
        temporary.write_text(dump(report), encoding="utf-8")
        os.replace(temporary, target / f"{name}.json")
    except OSError:
        pass  # a cache that cannot be written only costs time
