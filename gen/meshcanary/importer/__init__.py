"""Import: existing manifests of one service → a Kustomize base and a release file.

Reads the Deployments (one per version, told apart by their pods' `version` label), the
Service, and the Istio VirtualService, DestinationRule and Gateways that route to them, and
writes `deploy/base/<service>/`, `environments/<env>/<service>.yaml` and, when the
environment is new, `environments/<env>/environment.yaml`. What the release file cannot say
(an unversioned Deployment next to versioned ones, route conditions other than headers,
fields two versions do not share, ...) is reported as a note at the field it was read from;
nothing is dropped without one. Nothing is written when the input cannot be imported.

A misspelt top-level key (the seed's `meta data:`) is a note, not an error: a version is told
apart by its pods' `version` label and rendered as `<service>-<version>`, so the lost name is
not needed, and the import itself is how such a manifest gets replaced. Bad YAML, no Service,
no version, or a value no release can hold (an upper-case image) stop the import instead.

The steps, in the order they run: `classify` (what was read, which Service), `versions`
(Deployments), `subsets` (the DestinationRule), `gateways`, `release` (the VirtualService and
its `routes`), `emit` (the files).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshcanary.errors import InputError
from meshcanary.importer import classify, emit, gateways, release, subsets, versions
from meshcanary.layout import ENVIRONMENTS
from meshcanary.mesh import labels
from meshcanary.names import is_dns_label
from meshcanary.problem import Location, Problem


@dataclass(frozen=True)
class ImportResult:
    """What `import_manifests` wrote (repository-relative paths) and what it could not carry over."""

    written: tuple[str, ...]
    notes: tuple[Problem, ...]  # located at the source field; sorted by position


def import_manifests(
    root: Path,
    files: Sequence[Path],
    environment: str,
    service: str | None = None,
    namespace: str | None = None,
) -> ImportResult:
    """Import the manifests in `files` (files or folders) as one service of `environment`.

    `service` defaults to the Service's name; `namespace` (for a new environment) to the
    manifests' namespace, else `default`. Raises InputError, writing nothing, when the input
    cannot be read or holds nothing a release can be made of, or when the base or the release
    file already exists.
    """
    problems = [
        Problem(Location(where), f'{what} "{value}" is not a DNS-1123 label', hint)
        for what, value, where, hint in (
            ("environment", environment, ENVIRONMENTS, "lower-case letters, digits and '-'"),
            ("service", service, "--service", "lower-case letters, digits and '-'"),
            ("namespace", namespace, "--namespace", "lower-case letters, digits and '-'"),
        )
        if value is not None and not is_dns_label(value)
    ]
    if problems:
        raise InputError(problems)
    parsed = classify.read(files)
    ctx, resources, service_resource = classify.prepare(
        root, parsed, environment, service, namespace
    )
    selector = labels(service_resource.get("spec", "selector")) or {}
    selector.pop("version", None)
    found = versions.read(ctx, resources["Deployment"], selector)
    rule = subsets.read(ctx, resources["DestinationRule"], found)
    entries = gateways.read(ctx, resources["Gateway"])
    content = release.build(ctx, resources["VirtualService"], found, rule, entries)
    # The release's order (route order, else by name) decides which version the base holds.
    position = list(content["versions"])
    found.sort(key=lambda v: position.index(v.name))
    written = {
        **emit.base_files(ctx, service_resource, found),
        **emit.environment_file(ctx, resources, entries),
        **emit.release_file(ctx, content),
    }
    emit.refuse_existing(ctx, written)
    emit.write(root, written)
    return ImportResult(tuple(written), ctx.notes.in_order())
