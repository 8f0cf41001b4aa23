"""`migrate ENV --to gateway-api|istio`: switch an environment's routing API in one reviewed
change.

The environment file gets `routing: <api>` (its comments and layout kept); the environment is
rendered and checked in a scratch copy (its release files, environment file, overlays, bases
and the repository's policies), and only then written here: the environment file, then the
render. With --commit both are committed on a branch of their own, and the pull request's body
says which objects the change adds and removes, as kustomize builds them before and after.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from meshcanary import reach, routing
from meshcanary.commands import EditOptions
from meshcanary.errors import InputError, MeshcanaryError
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS, OVERLAYS
from meshcanary.problem import Problem, Severity
from meshcanary.release import splice
from meshcanary.release.load import load
from meshcanary.release.model import GATEWAY_API, ISTIO, Release
from meshcanary.release.splice import EditRefused
from meshcanary.render import swap, tree
from meshcanary.report import Report

APIS = (ISTIO, GATEWAY_API)
POLICIES = "policies"


@dataclass(frozen=True)
class MigrateResult:
    environment: str
    routing: str
    message: str  # e.g. prod: routing istio -> gateway-api
    diff: str  # of the environment file and of the rendered files
    report: Report  # what check found in the scratch copy
    added: tuple[str, ...] = ()  # objects the change adds, "Kind name", as built
    removed: tuple[str, ...] = ()
    # What the change does to traffic (reach.differences of the two builds), a line each;
    # empty: every request tried reaches the same Deployments, with the same shares.
    traffic: tuple[str, ...] = ()
    written: bool = False
    branch: str | None = None
    sha: str | None = None
    base: str | None = None
    pushed: str | None = None


def set_routing(text: str, api: str) -> str:
    """The environment file's text with `routing: <api>`, every other line as it was."""
    doc = splice.parse(text)
    found = splice.lookup(doc.root, "routing")
    if found is not None:
        _, value = found
        return text[: splice.start_of(value)] + api + text[splice.end_of(value) :]
    # A line of its own, after the API version the releases render (or the namespace).
    for anchor in ("istioApiVersion", "namespace"):
        found = splice.lookup(doc.root, anchor)
        if found is not None:
            end = splice.end_of(found[1])
            line_end = text.find("\n", end)
            at = len(text) if line_end < 0 else line_end + 1
            newline = "" if line_end >= 0 or not text else "\n"
            return f"{text[:at]}{newline}routing: {api}\n{text[at:]}"
    return f"routing: {api}\n{text}"


def migrate(root: Path, environment: str, api: str, options: EditOptions) -> MigrateResult:
    """Switch `environment` to the routing `api`, under the repository's lock."""
    from meshcanary.lock import exclusive

    if api not in APIS:
        raise InputError(f"--to {api!r}: give {' or '.join(APIS)}")
    with exclusive(root):
        return _migrate(root, environment, api, options)


def _migrate(root: Path, environment: str, api: str, options: EditOptions) -> MigrateResult:
    from meshcanary import check
    from meshcanary.render import repository

    env_file = f"{ENVIRONMENTS}/{environment}/{ENVIRONMENT_FILE}"
    overlay = f"{OVERLAYS}/{environment}"
    (loaded,) = load(root, [environment])
    current = loaded.environment.routing
    if current == api:
        raise InputError(
            [Problem(loaded.environment.source.location([]), f"already routed with {api}")]
        )
    paths = (env_file, overlay)
    if options.commit and not options.dry_run:
        from meshcanary import gitops

        gitops.preflight(root, list(paths), branch=options.branch)
    before = (root / env_file).read_bytes().decode("utf-8")
    try:
        after = set_routing(before, api)
    except EditRefused as exc:
        raise InputError([Problem(loaded.environment.source.location([]), exc.message)]) from None
    message = f"{environment}: routing {current} -> {api}"
    with tempfile.TemporaryDirectory(prefix="meshcanary-migrate-") as folder:
        scratch = Path(folder)
        bases = sorted({r.base for r in loaded.releases})
        for path in [f"{ENVIRONMENTS}/{environment}", overlay, POLICIES, *bases]:
            _copy(root, scratch, path)
        (scratch / env_file).write_text(after, encoding="utf-8", newline="")
        rendered = repository.render(scratch, [environment], force=True)
        report = check.check(scratch, [], check.CheckOptions(base=None, cache=False))
        old, new = _built(root, overlay), _built(scratch, overlay)
        added, removed = tuple(sorted(new.names - old.names)), tuple(sorted(old.names - new.names))
        traffic = _traffic(old, new, loaded.releases)
    diff = tree.unified_diff(
        [
            tree.Plan(
                f"{ENVIRONMENTS}/{environment}", {}, (tree.Change(env_file, before, after),), ()
            )
        ]
    )
    diff += tree.unified_diff(list(rendered.plans))
    result = MigrateResult(environment, api, message, diff, report, added, removed, traffic)
    if options.dry_run or report.at_least(Severity.ERROR):
        return result
    repository.recover(root)
    swap.write_atomically(root, root / env_file, after)
    try:
        repository.render(root, [environment], force=options.force)
    except MeshcanaryError:
        swap.write_atomically(root, root / env_file, before)  # the render wrote nothing
        raise
    result = replace(result, written=True)
    if options.commit:
        result = _commit(root, result, paths, options)
    return result


def _copy(root: Path, scratch: Path, path: str) -> None:
    source, destination = root / path, scratch / path
    if not source.exists() or destination.exists():
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.is_dir():
            shutil.copytree(source, destination, symlinks=True)
        else:
            shutil.copy2(source, destination)
    except (OSError, shutil.Error) as exc:
        raise InputError(f"cannot copy {path} to check the change: {exc}") from None


@dataclass(frozen=True)
class _Built:
    """An environment's overlays as kustomize builds them: its objects, and its routes'
    decision tables."""

    names: set[str]  # "Kind name (apiVersion)"
    table: routing.Table | None  # None: the build failed, which check reports


def _built(at: Path, overlay: str) -> _Built:
    from meshcanary import kustomize
    from meshcanary.manifest import Parsed, parse_text

    result = kustomize.builder(at).build(kustomize.Target(at / overlay, overlay))
    if not result.ok:
        return _Built(set(), None)
    parsed = Parsed()
    parse_text(result.output, overlay, parsed)
    return _Built(
        {f"{r.kind} {r.name} ({r.get('apiVersion')})" for r in parsed.resources},
        routing.table(parsed.resources) if not parsed.problems else None,
    )


def _cookies(releases: Sequence[Release]) -> dict[str, tuple[str, ...]]:
    """The cookies the releases' pins match, to try requests with (a regular expression on the
    Cookie header cannot be sampled otherwise)."""
    found = [
        f"{name}={value}"
        for release in releases
        for rule in release.source.data.get("match", [])
        for name, value in (rule.get("cookies") or {}).items()
    ]
    return {"cookie": tuple(dict.fromkeys(found))} if found else {}


def _traffic(before: _Built, after: _Built, releases: Sequence[Release]) -> tuple[str, ...]:
    """What the change does to traffic, a line each: nothing, or each route whose requests
    reach something else (a few examples), and the routes only one side has."""
    if before.table is None or after.table is None:
        return ("not compared: a build failed",)
    found, gone, new = reach.differences(before.table, after.table, _cookies(releases))
    lines = [
        f"`{_where(key)}` is not routed any more"
        + (
            " (an in-mesh Gateway API route binds to its Service's own name)"
            if key[0] == "mesh"
            else ""
        )
        for key in gone
    ]
    lines += [f"`{_where(key)}` is routed, and was not before" for key in new]
    shown: dict[routing.Key, int] = {}
    for difference in found:
        shown[difference.key] = shown.get(difference.key, 0) + 1
        if shown[difference.key] <= 3:
            lines.append(
                f"`{_where(difference.key)}`: a request to {difference.request.path} reaches something else"
            )
    return tuple(lines)


def _where(key: routing.Key) -> str:
    gateway, host, protocol = key
    return f"{protocol} {host} via {gateway}"


def pr_body(result: MigrateResult) -> str:
    """The pull request's Markdown body: what appears and disappears."""
    lines = [
        f"Routes `{result.environment}` with {'the Gateway API' if result.routing == GATEWAY_API else 'Istio VirtualServices'}"
        f" (`routing: {result.routing}` in `{ENVIRONMENTS}/{result.environment}/{ENVIRONMENT_FILE}`).",
        "The release files do not change.",
        "",
        "Traffic, every route's decisions before and after compared on requests drawn from "
        "their conditions:",
        "",
        *(
            [f"- {line}" for line in result.traffic]
            or ["- every request reaches the same Deployments with the same shares"]
        ),
        "",
        f"Objects added ({len(result.added)}):",
        "",
        *(f"- `{name}`" for name in result.added),
        "",
        f"Objects removed ({len(result.removed)}):",
        "",
        *(f"- `{name}`" for name in result.removed),
        "",
        f"Checks: render fresh; kustomize build ok; schemas and rules "
        f"{'clean' if not result.report.problems else str(len(result.report.problems)) + ' finding(s), none an error'}.",
    ]
    return "\n".join(lines) + "\n"


def _commit(
    root: Path, result: MigrateResult, paths: tuple[str, ...], options: EditOptions
) -> MigrateResult:
    from meshcanary import gitops

    branch = options.branch or gitops.branch_name(result.environment, "routing", result.routing)
    committed = gitops.commit(root, list(paths), result.message, branch)
    title = f"{result.environment}: route with {result.routing}"
    if options.pr_title:
        options.pr_title.write_text(title + "\n", encoding="utf-8")
    if options.pr_body:
        options.pr_body.write_text(pr_body(result), encoding="utf-8")
    if options.push:
        gitops.push(root, options.push, committed.branch)
    return replace(
        result,
        branch=committed.branch,
        sha=committed.sha,
        base=committed.previous_branch,
        pushed=options.push,
    )
