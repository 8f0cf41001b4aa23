"""The files an import writes: the base (Deployment, Service, what the pods need,
kustomization), the release file, and the environment file (new, or with Gateways added)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, ScalarNode

from meshcanary.errors import InputError
from meshcanary.importer import patches
from meshcanary.importer.classify import ISTIO_KINDS, ByKind
from meshcanary.importer.context import Context, dotted, refused
from meshcanary.importer.gateways import Gateways
from meshcanary.importer.objects import note_server_fields, stripped
from meshcanary.importer.support import Supporting
from meshcanary.importer.versions import Version, normalised
from meshcanary.manifest import Resource
from meshcanary.mesh import labels
from meshcanary.problem import Location, Problem
from meshcanary.release import schema
from meshcanary.release.model import DEFAULT_MAX_STEP, DEFAULT_STEPS
from meshcanary.render.emit import document

DEFAULT_ISTIO_API = "networking.istio.io/v1"
RELEASE_MODELINE = "yaml-language-server: $schema=../../schemas/release.schema.json"
ENVIRONMENT_MODELINE = "yaml-language-server: $schema=../../schemas/environment.schema.json"
KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


def base_files(
    ctx: Context,
    service: Resource,
    versions: list[Version],
    kept: Sequence[Supporting] = (),
    release: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The base: the stable version's Deployment without what a version sets, the Service,
    and what the pods need. Another version's differences go into its patch in `release`."""
    _version_patches(ctx, versions, release)
    deployment = _base_deployment(ctx, versions[0])
    note_server_fields(ctx.notes, service)
    service_data = stripped(service.data)
    selector = (service_data.get("spec") or {}).get("selector")
    if isinstance(selector, dict) and "version" in selector:
        selector.pop("version")
        ctx.refuse(
            service,
            ["spec", "selector", "version"],
            f"Service {service.name} selects version {service.get('spec', 'selector', 'version')}; "
            "the base's Service selects every version, and the routes pick one",
            key=True,
        )
    head = ctx.header + "\nHumans own this base; meshcanary never writes here."
    files = {
        f"{ctx.base}/deployment.yaml": document(deployment),
        f"{ctx.base}/service.yaml": document(service_data),
    }
    for kind, group in _by_kind(kept).items():
        files[f"{ctx.base}/{kind.lower()}.yaml"] = "---\n".join(document(d) for d in group)
    resources = sorted(path.rsplit("/", 1)[1] for path in files)
    kustomization = {**KUSTOMIZATION, "resources": resources}
    return {f"{ctx.base}/kustomization.yaml": document(kustomization, head), **files}


def _by_kind(kept: Sequence[Supporting]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in kept:
        grouped.setdefault(str(item.data.get("kind")), []).append(item.data)
    for group in grouped.values():
        group.sort(key=lambda d: str((d.get("metadata") or {}).get("name")))
    return grouped


# What a version's patch may not change: the base and the release own these.
_NOT_PATCHED = (("apiVersion",), ("kind",), ("spec", "selector"))


def _version_patches(ctx: Context, versions: list[Version], release: dict[str, Any] | None) -> None:
    """The base holds the stable version's Deployment; each other version's differences
    (args, env, resources, probes, ...) become its `patch`."""
    first = versions[0]
    reference = normalised(first)
    for other in versions[1:]:
        theirs = normalised(other)
        if other.container != first.container:
            ctx.refuse(
                other.resource,
                ["spec", "template", "spec", "containers", other.container, "image"],
                f"version {other.name} sets the image of container {other.container}, "
                f"{first.name} of container {first.container}: a release sets one container's "
                "image in every version",
            )
            continue
        found = patches.patch(reference, theirs)
        if not found:
            continue
        owned = [p for p in _NOT_PATCHED if _holds(found, p)]
        for path in owned:
            ctx.refuse(
                other.resource,
                list(path),
                f"version {other.name}'s Deployment differs from {first.name}'s at "
                f"{dotted(path)}, which every version shares",
            )
        if owned or release is None:
            continue
        release["versions"][other.name]["patch"] = found
        shown = ", ".join(dotted(p) for p in _diff(reference, theirs))
        ctx.normalize(
            other.resource,
            ["spec"],
            f"version {other.name}'s Deployment differs from {first.name}'s ({shown}): kept "
            f"as versions.{other.name}.patch in the release file",
            key=True,
        )


def _base_deployment(ctx: Context, first: Version) -> dict[str, Any]:
    """The first version's Deployment named after the service, without version labels."""
    deployment = stripped(first.resource.data)
    metadata = deployment.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata.pop("name", None)
    kept = labels(metadata.get("labels")) or {}
    kept.pop("version", None)
    metadata = {"name": ctx.service, **metadata}
    if kept:
        metadata["labels"] = kept
    else:
        metadata.pop("labels", None)
    ordered: dict[str, Any] = {
        "apiVersion": deployment.get("apiVersion", "apps/v1"),
        "kind": "Deployment",
        "metadata": metadata,
    }
    ordered.update({k: v for k, v in deployment.items() if k not in ordered})
    spec = ordered.get("spec") or {}
    for holder in (
        (spec.get("selector") or {}).get("matchLabels"),
        ((spec.get("template") or {}).get("metadata") or {}).get("labels"),
    ):
        if isinstance(holder, dict):
            holder.pop("version", None)
    spec["template"]["spec"]["containers"][first.container]["image"] = first.image
    if "app" not in (labels((spec.get("selector") or {}).get("matchLabels")) or {}):
        raise InputError(
            [
                Problem(
                    first.resource.location(["spec", "selector", "matchLabels"]),
                    "the Deployment's selector has no app label, which a base needs",
                    f"label the selector and the pod template with app: {ctx.service}",
                )
            ]
        )
    return ordered


def _diff(
    one: Any, other: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    """Paths of the outermost fields where `one` and `other` differ."""
    if isinstance(one, dict) and isinstance(other, dict):
        for key in [*one, *(k for k in other if k not in one)]:
            if key not in one or key not in other:
                yield (*path, key)
            else:
                yield from _diff(one[key], other[key], (*path, key))
    elif isinstance(one, list) and isinstance(other, list) and len(one) == len(other):
        for index, (a, b) in enumerate(zip(one, other, strict=True)):
            yield from _diff(a, b, (*path, index))
    elif one != other or type(one) is not type(other):
        yield path


def _holds(data: Any, path: Sequence[str | int]) -> bool:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return False
        data = data[part]
    return True


def release_file(ctx: Context, release: dict[str, Any]) -> dict[str, str]:
    return {ctx.release_path: document(release, f"{RELEASE_MODELINE}\n{ctx.header}")}


def environment_file(
    ctx: Context, resources: ByKind, gateways: Gateways, settings: dict[str, str] | None = None
) -> dict[str, str]:
    """A new environment's file (with `settings`: routing, gatewayClassName); an existing one
    with the imported Gateways it lacks added."""
    api = _istio_api(ctx, resources)
    if ctx.env_data is not None:
        return _existing_environment(ctx, ctx.env_data, resources, gateways, api)
    data: dict[str, Any] = {"namespace": ctx.target_namespace}
    if api is not None:
        data["istioApiVersion"] = api
    data.update(settings or {})
    if gateways:
        data["gateways"] = {name: entry for name, (_, entry) in gateways.items()}
    # What `init` gives a new environment: the plan `step --next` follows, a step's limit.
    data["defaults"] = {"canary": {"steps": list(DEFAULT_STEPS)}}
    data["policy"] = {"maxStep": DEFAULT_MAX_STEP}
    problems = [
        Problem(ctx.origins.fallback, refused(error))
        for error in schema.validator("environment").iter_errors(data)
    ]
    if problems:
        raise InputError(problems)
    return {ctx.env_path: document(data, f"{ENVIRONMENT_MODELINE}\n{ctx.header}")}


def _existing_environment(
    ctx: Context,
    env_data: dict[str, Any],
    resources: ByKind,
    gateways: Gateways,
    api: str | None,
) -> dict[str, str]:
    """The Gateways the environment lacks, added to its file (comments and all kept); a
    refusal for one it declares differently."""
    declared = env_data.get("gateways") or {}
    added: dict[str, Any] = {}
    for name, (resource, entry) in gateways.items():
        if name not in declared:
            added[name] = entry
            ctx.normalize(resource, [], f"Gateway {name} is added to {ctx.env_path}")
        elif declared[name] != entry:
            ctx.refuse(
                resource,
                ["spec"],
                f"Gateway {name} differs from the one {ctx.env_path} declares",
                f"make them the same, or pass --drop 'Gateway/{name}' to keep the declared one",
            )
    env_api = env_data.get("istioApiVersion", DEFAULT_ISTIO_API)
    if api is not None and api != env_api:
        first = next(r for k in ISTIO_KINDS for r in resources[k])
        ctx.normalize(
            first,
            ["apiVersion"],
            f"rendered with {env_api}, the istioApiVersion of {ctx.env_path}",
        )
    if not added:
        return {}
    text = (ctx.root / ctx.env_path).read_text(encoding="utf-8")
    return {ctx.env_path: _add_gateways(text, added)}


def _add_gateways(text: str, added: dict[str, Any]) -> str:
    """`text` with `added` under its `gateways:` (a block mapping), or a `gateways:` at its end."""
    root = YAML(typ="rt").compose(text)
    found = next(
        ((k, v) for k, v in root.value if isinstance(k, ScalarNode) and k.value == "gateways"),
        None,
    )
    block = document(added)
    if found is None or not isinstance(found[1], MappingNode) or not found[1].value:
        head = text if text.endswith("\n") or not text else text + "\n"
        if found is not None:  # `gateways: {}` or empty: write the whole mapping anew
            line_start = text.rfind("\n", 0, found[0].start_mark.index) + 1
            line_end = text.find("\n", found[1].end_mark.index)
            line_end = len(text) if line_end < 0 else line_end + 1
            head = text[:line_start] + text[line_end:]
        return head + document({"gateways": added})
    indent = found[1].value[0][0].start_mark.column
    later = [
        k.start_mark.index for k, _ in root.value if k.start_mark.index > found[0].start_mark.index
    ]
    at = min(later) if later else len(text)
    at = text.rfind("\n", 0, at) + 1 if later else at
    lines = "".join(" " * indent + line + "\n" for line in block.splitlines())
    prefix = text[:at] if text[:at].endswith("\n") or not at else text[:at] + "\n"
    return prefix + lines + text[at:]


def _istio_api(ctx: Context, resources: ByKind) -> str | None:
    istio = [r for kind in ISTIO_KINDS for r in resources[kind]]
    found = {r.api_version for r in istio}
    if not found:
        return None
    if len(found) == 1:
        return found.pop()
    for resource in istio:
        if resource.api_version != DEFAULT_ISTIO_API:
            ctx.normalize(
                resource,
                ["apiVersion"],
                f"Istio objects use several apiVersions ({', '.join(sorted(found))}); the "
                f"environment renders them all as {DEFAULT_ISTIO_API}",
            )
    return DEFAULT_ISTIO_API


def existing(root: Path, files: dict[str, str], contexts: Sequence[Context]) -> set[str]:
    """The bases that exist already and hold what this import would write (a service imported
    into a second environment): reused. InputError for a release file that exists, or a base
    that differs."""
    problems: list[Problem] = []
    reused: set[str] = set()
    for ctx in contexts:
        release = ctx.release_path
        if (root / release).exists():
            problems.append(
                Problem(
                    Location(release),
                    f"{release} already exists",
                    "remove it first, or import into another environment",
                )
            )
        base = root / ctx.base
        if not base.exists():
            continue
        ours = {p: t for p, t in files.items() if p.startswith(f"{ctx.base}/")}
        theirs = {
            f"{ctx.base}/{p.relative_to(base).as_posix()}" for p in base.rglob("*") if p.is_file()
        }
        differing = sorted(
            p
            for p in set(ours) | theirs
            if p not in ours or p not in theirs or not _same_yaml(root / p, ours[p])
        )
        if differing:
            problems.append(
                Problem(
                    Location(differing[0]),
                    f"base {ctx.base} already exists and differs from what this import "
                    f"would write ({', '.join(differing)})",
                    "import with --service NAME to make a base of another name, or make the "
                    "manifests match the base",
                )
            )
        else:
            reused.add(ctx.base)
    if problems:
        raise InputError(problems)
    return reused


def _same_yaml(path: Path, text: str) -> bool:
    """Whether the file at `path` holds the same YAML documents as `text` (comments aside)."""
    try:
        mine = list(yaml.safe_load_all(text))
        theirs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return mine == theirs


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
