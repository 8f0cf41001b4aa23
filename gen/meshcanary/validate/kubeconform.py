"""Validate with the kubeconform binary and map its JSON output to located findings.

kubeconform reports a JSON Pointer for each error but no line; meshcanary reads the same
inputs itself, so every finding still gets `file:line:col`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from meshcanary.errors import InputError, ToolError
from meshcanary.manifest import Resource, pointer
from meshcanary.problem import Problem, Severity
from meshcanary.report import Status
from meshcanary.validate import Options, Verdict

TIMEOUT_SECONDS = 600
_STATUS = {
    "statusValid": Status.VALID,
    "statusInvalid": Status.INVALID,
    "statusError": Status.ERROR,
    "statusSkipped": Status.SKIPPED,
}


def arguments(options: Options) -> list[str]:
    """kubeconform's flags for `options`."""
    if options.crds:
        raise InputError(
            "--crd works with the embedded validator only; for kubeconform, convert the CRD "
            "with openapi2jsonschema and pass --schema-location"
        )
    args = ["-output", "json", "-verbose", "-summary"]
    if options.kubernetes_version:
        args += ["-kubernetes-version", options.kubernetes_version]
    if options.strict:
        args.append("-strict")
    for location in options.schema_locations:
        args += ["-schema-location", location]
    if options.skip:
        args += ["-skip", ",".join(sorted(options.skip))]
    if options.reject:
        args += ["-reject", ",".join(sorted(options.reject))]
    if options.ignore_missing_schemas:
        args.append("-ignore-missing-schemas")
    return args


def pattern_arguments(patterns: Sequence[str]) -> list[str]:
    return [arg for pattern in patterns for arg in ("-ignore-filename-pattern", pattern)]


def run(
    paths: Sequence[str], options: Options, stdin: str | None, extra: Sequence[str] = ()
) -> dict[str, Any]:
    binary = shutil.which("kubeconform")
    if binary is None:
        raise ToolError(
            "kubeconform not found on PATH: install it, or use --validator embedded (the default)"
        )
    try:
        done = subprocess.run(  # noqa: S603 - binary from PATH, argument list
            [binary, *arguments(options), *extra, *paths],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"cannot run kubeconform: {exc}") from None
    try:
        output: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise ToolError(
            f"kubeconform failed (exit code {done.returncode}): {message[0] if message else 'no output'}"
        ) from None
    return output


def _path(text: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in text.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        parts.append(int(token) if token.isdigit() else token)
    return parts


def verdict(resource: Resource, entry: dict[str, Any]) -> Verdict:
    status = _STATUS.get(str(entry.get("status")), Status.ERROR)
    if status in (Status.VALID, Status.SKIPPED):
        return Verdict(status)
    problems = []
    errors = entry.get("validationErrors") or []
    for error in errors:
        path = _path(str(error.get("path", "")))
        problems.append(
            Problem(
                resource.location(path),
                str(error.get("msg", "invalid")),
                rule="schema",
                severity=Severity.ERROR,
                resource=resource.ref,
                path=pointer(path),
            )
        )
    if not errors:
        problems.append(
            Problem(
                resource.location(["kind"]),
                str(entry.get("msg") or "invalid"),
                rule="schema",
                severity=Severity.ERROR,
                resource=resource.ref,
            )
        )
    return Verdict(status, tuple(problems))
