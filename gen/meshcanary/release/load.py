"""Find the environments of a repository and load their release files into the model.

Every problem of every file is collected before anything stops, so one run shows them all.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS, environment_names
from meshcanary.names import is_dns_label
from meshcanary.problem import Location, Problem
from meshcanary.release import analysis, gateway_api, routing, schema
from meshcanary.release import patch as version_patch
from meshcanary.release.model import (
    DEFAULT_ANALYSIS,
    GATEWAY_API,
    ISTIO,
    MESH,
    Environment,
    Gateway,
    HeaderMatch,
    Mirror,
    Release,
    Rollout,
    Version,
)
from meshcanary.source import SourceDoc, load_mapping

ISTIO_ONLY = (
    "routing",
    "hosts",
    "gateways",
    "ports",
    "trafficPolicy",
    "timeout",
    "retries",
    "match",
    "mirror",
    "requests",
    "rewrite",
    "corsPolicy",
    "requestHeaders",
    "responseHeaders",
)


@dataclass(frozen=True)
class LoadedEnvironment:
    environment: Environment
    releases: tuple[Release, ...]


def _rollout(data: dict[str, Any] | None) -> Rollout:
    data = data or {}
    return Rollout(data.get("maxSurge"), data.get("maxUnavailable"), data.get("minReadySeconds"))


def _steps(doc: SourceDoc, path: list[str | int], problems: list[Problem]) -> tuple[int, ...]:
    node: Any = doc.data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    steps = tuple(node or ())
    for index in range(1, len(steps)):
        if steps[index] <= steps[index - 1]:
            problems.append(
                Problem(
                    doc.location([*path, index]),
                    f"canary steps must increase: {steps[index]} follows {steps[index - 1]}",
                    "list the weights the canary moves through, such as [10, 25, 50, 100]",
                )
            )
            break
    return steps


def _environment(root: Path, name: str, problems: list[Problem]) -> Environment | None:
    display = f"{ENVIRONMENTS}/{name}/{ENVIRONMENT_FILE}"
    doc = load_mapping(_own_file(root, display), display)
    found = schema.check("environment", doc)
    problems.extend(found)
    if found:
        return None
    data = doc.data
    defaults = data.get("defaults", {})
    gateways = tuple(
        Gateway(gw_name, dict(spec.get("selector", {})), list(spec["servers"]))
        for gw_name, spec in data.get("gateways", {}).items()
    )
    if not is_dns_label(name):
        problems.append(
            Problem(
                Location(display),
                f'environment name "{name}" is not a DNS-1123 label',
                "rename the folder: lower-case letters, digits and '-'",
            )
        )
    steps = _steps(doc, ["defaults", "canary", "steps"], problems)
    return Environment(
        name=name,
        path=display,
        namespace=data["namespace"],
        istio_api_version=data.get("istioApiVersion", "networking.istio.io/v1"),
        kubernetes_version=data.get("kubernetesVersion"),
        gateways=gateways,
        rollout=_rollout(defaults.get("rollout")),
        steps=steps,
        source=doc,
        max_step=data.get("policy", {}).get("maxStep"),
        rule_severities=tuple(sorted(data.get("policy", {}).get("rules", {}).items())),
        remote_bases=tuple(data.get("remoteBases", ())),
        routing=data.get("routing", ISTIO),
        gateway_class=data.get("gatewayClassName", "istio"),
        analysis=analysis.analysis(doc, ["defaults", "canary", "analysis"], problems, None),
    )


def environment(root: Path, name: str) -> Environment:
    """One environment's settings, without its releases; InputError when its file is bad."""
    problems: list[Problem] = []
    found = _environment(root, name, problems)
    if found is None or problems:
        raise InputError(problems)
    return found


def _inside(root: Path, relative: str) -> Path | None:
    """The base folder if `relative` names one inside the repository, else None."""
    if Path(relative).is_absolute():
        return None
    resolved = (root / relative).resolve()
    try:
        resolved.relative_to(root.resolve())
    except ValueError:
        return None
    return resolved


def _own_file(root: Path, display: str) -> Path:
    """`root/display`; an InputError when a symbolic link takes it out of the repository."""
    try:
        inside = _inside(root, display)
    except RuntimeError:  # a symbolic link loop: reading the file reports it
        return root / display
    if inside is None:
        raise InputError(
            [
                Problem(
                    Location(display),
                    "leads outside the repository through a symbolic link",
                    "keep release and environment files in the repository itself",
                )
            ]
        )
    return root / display


def _check_base(root: Path, doc: SourceDoc, base: str, problems: list[Problem]) -> None:
    # Where `base:` is, only when something is wrong with it: a position parses the file's
    # node tree, which a thousand good release files need not pay for.
    def at() -> Location:
        return doc.location(["base"])

    try:
        folder = _inside(root, base)
        is_folder = folder is not None and folder.is_dir()
    except (OSError, ValueError, RuntimeError) as exc:
        # A NUL character, a name too long for the file system, a symbolic link loop.
        reason = {ValueError: "it holds a NUL character", RuntimeError: "a symbolic link loop"}
        shown = json.dumps(base if len(base) <= 80 else f"{base[:60]}...")
        problems.append(
            Problem(
                at(),
                f"base {shown} is not a usable path: "
                f"{reason.get(type(exc)) or getattr(exc, 'strerror', None) or exc}",
                "use a path such as deploy/base/<service>",
            )
        )
        return
    if folder is None:
        problems.append(
            Problem(
                at(),
                f'base "{base}" is outside the repository',
                "use a path such as deploy/base/<service>",
            )
        )
        return
    if not is_folder:
        what = "is not a folder" if folder.exists() else "does not exist"
        problems.append(
            Problem(at(), f'base "{base}" {what}', "create it, or run `meshcanary import`")
        )
        return
    if not any(
        # lexists: a FIFO or a dangling link in its place is reported when the base is read.
        os.path.lexists(folder / n)
        for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
    ):
        problems.append(
            Problem(
                at(), f'base "{base}" has no kustomization.yaml', "a base is a Kustomize folder"
            )
        )


def _check_weights(doc: SourceDoc, versions: tuple[Version, ...], problems: list[Problem]) -> None:
    total = sum(v.weight for v in versions)
    if total == 100:
        return
    parts = " + ".join(f"{v.name} {v.weight}" for v in versions)
    canary = versions[-1]
    fixed = 100 - (total - canary.weight)
    hint = (
        f"set {canary.name} to {fixed} so the weights sum to 100"
        if 0 <= fixed <= 100
        else "weights are percentages of the traffic; make them sum to 100"
    )
    problems.append(
        Problem(
            doc.location(["versions", canary.name, "weight"]),
            f"weights sum to {total}, not 100 ({parts})",
            hint,
        )
    )


def _release(root: Path, env: Environment, display: str, problems: list[Problem]) -> Release | None:
    doc = load_mapping(_own_file(root, display), display)
    found = schema.check("release", doc)
    problems.extend(found)
    if found:
        return None
    data = doc.data
    before = len(problems)
    stem = Path(display).stem
    service = data["service"]
    if service != stem:
        problems.append(
            Problem(
                doc.location(["service"]),
                f'service "{service}" does not match the file name {Path(display).name}',
                f"rename the file to {service}.yaml or set service: {stem}",
            )
        )
    method = data.get("method", "istio")
    versions = tuple(
        Version(name, spec["image"], spec["weight"], spec.get("replicas"), spec.get("patch"))
        for name, spec in data["versions"].items()
    )
    names = [v.name for v in versions]
    _check_base(root, doc, data["base"], problems)
    _check_weights(doc, versions, problems)
    for version in versions:
        if version.patch is not None:
            problems.extend(version_patch.problems(doc, version.name, version.patch))
    if method == "istio":
        for version in versions:
            if version.replicas is None:
                problems.append(
                    Problem(
                        doc.location(["versions", version.name]),
                        f'version "{version.name}" needs "replicas"',
                        "with method: istio each version sets its own replica count",
                    )
                )
        if "replicas" in data:
            problems.append(
                Problem(
                    doc.location(["replicas"], key=True),
                    '"replicas" at the top level is for method: replicas',
                    "set replicas on each version instead",
                )
            )
    else:
        if "replicas" not in data:
            problems.append(
                Problem(
                    doc.location(["method"]),
                    'method: replicas needs "replicas", the pods to share out between versions',
                )
            )
        for version in versions:
            if version.replicas is not None:
                problems.append(
                    Problem(
                        doc.location(["versions", version.name, "replicas"], key=True),
                        "with method: replicas the weights decide each version's replicas",
                        'remove it and set "replicas" at the top level',
                    )
                )
        for key in ISTIO_ONLY:
            if key in data:
                problems.append(
                    Problem(
                        doc.location([key], key=True),
                        f'"{key}" needs method: istio; replica splitting has no routes',
                    )
                )
    for index, rule in enumerate(data.get("match", [])):
        if "cookie" in rule.get("headers", {}) and "cookies" in rule:
            problems.append(
                Problem(
                    doc.location(["match", index, "cookies"], key=True),
                    "a rule cannot set both cookies and a cookie header condition",
                    "move the condition into headers.cookie.regex, or use cookies alone",
                )
            )
        if rule["version"] not in names:
            problems.append(
                _unknown_version(doc, ["match", index, "version"], rule["version"], names)
            )
    routing_api = data.get("routing", env.routing)
    if method == "istio":
        problems.extend(routing.problems(doc))
        if routing_api == GATEWAY_API:
            problems.extend(gateway_api.problems(doc))
    mirror = data.get("mirror")
    if mirror and mirror["version"] not in names:
        problems.append(_unknown_version(doc, ["mirror", "version"], mirror["version"], names))
    gateways = tuple(data.get("gateways", [MESH]))
    declared = [g.name for g in env.gateways]
    for index, name in enumerate(gateways):
        if name != MESH and "/" not in name and name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = (
                f'did you mean "{close[0]}"?'
                if close
                else f"declare it under gateways: in {env.path}, or write <namespace>/{name} for one managed elsewhere"
            )
            problems.append(
                Problem(
                    doc.location(["gateways", index]),
                    f'gateway "{name}" is not declared in {env.path}',
                    hint,
                )
            )
    release_steps = _steps(doc, ["canary", "steps"], problems)
    steps = release_steps or env.steps
    judged = analysis.analysis(doc, ["canary", "analysis"], problems, steps)
    if judged is None and steps:
        judged = env.analysis or DEFAULT_ANALYSIS
    for rule, reason in (data.get("ignore") or {}).items():
        if not reason.strip():
            problems.append(
                Problem(
                    doc.location(["ignore", rule]),
                    f'ignore: "{rule}" gives no reason',
                    f"write why {service} is an exception: {rule}: <reason>",
                )
            )
    container = data.get("container")
    if len(problems) > before:
        return None
    return Release(
        environment=env,
        path=display,
        service=service,
        base=data["base"].rstrip("/"),
        method=method,
        # Empty: the renderer uses the base Service's cluster-local name.
        hosts=tuple(data.get("hosts", [])),
        gateways=gateways,
        ports=routing.ports(data.get("ports", [])),
        traffic_policy=data.get("trafficPolicy"),
        options=routing.options(data),
        requests=tuple(routing.condition(c) for c in data.get("requests", [])),
        matches=routing.pins(data.get("match", [])),
        mirror=Mirror(mirror["version"], mirror["percent"]) if mirror else None,
        replicas=data.get("replicas"),
        container=container,
        rollout=_rollout(data.get("rollout")).merged_over(env.rollout),
        steps=steps,
        versions=versions,
        source=doc,
        ignore=dict(data.get("ignore") or {}),
        routing=routing_api,
        analysis=judged,
    )


def _headers(rule: dict[str, Any]) -> tuple[HeaderMatch, ...]:
    """A pin's header conditions, its cookies among them (routing.condition says how)."""
    return routing.condition(rule).headers


def _unknown_version(doc: SourceDoc, path: list[str | int], name: str, names: list[str]) -> Problem:
    return Problem(
        doc.location(path),
        f'version "{name}" is not one of the release\'s versions ({", ".join(names)})',
        f"add it under versions: or name one of {', '.join(names)}",
    )


def load(
    root: Path, names: Sequence[str] = (), only: Mapping[str, Collection[str]] | None = None
) -> list[LoadedEnvironment]:
    """Load the named environments (all when none are named) and every release in them.

    `only` narrows an environment to some of its services (by release file name), for a check
    of what a few changed files affect; the checks between releases then see only those.
    """
    known = environment_names(root)
    if not known and not names:
        raise InputError(
            [
                Problem(
                    Location(ENVIRONMENTS),
                    "no environments found",
                    "create environments/<env>/environment.yaml, or pass --repo",
                )
            ]
        )
    problems: list[Problem] = []
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = (
                f'did you mean "{close[0]}"?' if close else f"known: {', '.join(known) or 'none'}"
            )
            problems.append(
                Problem(Location(f"{ENVIRONMENTS}/{name}"), f'unknown environment "{name}"', hint)
            )
    if problems:
        raise InputError(problems)
    loaded: list[LoadedEnvironment] = []
    for name in sorted(set(names)) if names else known:
        try:
            env = _environment(root, name, problems)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        releases: list[Release] = []
        bases: dict[str, str] = {}
        # Names, not paths: sorting a thousand Path objects takes milliseconds.
        for file_name in sorted(os.listdir(root / ENVIRONMENTS / name)):
            display = f"{ENVIRONMENTS}/{name}/{file_name}"
            if file_name == ENVIRONMENT_FILE or file_name.startswith("."):
                continue
            stem, suffix = os.path.splitext(file_name)
            if suffix == ".yml":
                problems.append(
                    Problem(
                        Location(display),
                        "release files end in .yaml",
                        f"rename it to {stem}.yaml",
                    )
                )
                continue
            if suffix != ".yaml":
                continue
            if env is None or (only and name in only and stem not in only[name]):
                continue
            try:
                release = _release(root, env, display, problems)
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            if release is None:
                continue
            other = bases.setdefault(release.base, release.path)
            if other != release.path:
                # Both overlays would hold the base's Service: one environment, one owner.
                problems.append(
                    Problem(
                        release.source.location(["base"]),
                        f'base "{release.base}" is already used by {other} in this environment',
                        "give each service of an environment a base of its own",
                    )
                )
                continue
            releases.append(release)
        if env is not None:
            loaded.append(LoadedEnvironment(env, tuple(releases)))
    if problems:
        raise InputError(problems)
    return loaded
