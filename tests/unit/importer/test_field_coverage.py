"""Nothing is dropped silently: every field of every input object is carried over (change it,
and what import writes changes) or a note stands at it (normalized, dropped or refused).

Each field of each sample is changed in turn, the import run again, and its files compared
with the unchanged import's. A field whose change neither changes the files nor meets a note
at or above it is a field import loses without a word.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.errors import InputError
from meshcanary.importer import import_manifests
from meshcanary.importer.context import NORMALIZED, REFUSED
from meshcanary.manifest import pointer
from tests.support import BOOKINFO, DATA

GATEWAY_API = DATA / "gateway-api-import"
SAMPLES: dict[str, tuple[list[Path], tuple[str, ...]]] = {
    "bookinfo": (
        [
            BOOKINFO / "bookinfo.yaml",
            BOOKINFO / "destination-rule-all.yaml",
            BOOKINFO / "bookinfo-gateway.yaml",
            BOOKINFO / "virtual-service-reviews-80-20.yaml",
        ],
        (
            "DestinationRule/ratings:spec.subsets[1]",
            "DestinationRule/ratings:spec.subsets[2]",
            "DestinationRule/ratings:spec.subsets[3]",
            "DestinationRule/details:spec.subsets[1]",
        ),
    ),
    "bookinfo-jason": (
        [
            BOOKINFO / "bookinfo.yaml",
            BOOKINFO / "destination-rule-all.yaml",
            BOOKINFO / "virtual-service-reviews-test-v2.yaml",
        ],
        (
            "DestinationRule/ratings:spec.subsets[1]",
            "DestinationRule/ratings:spec.subsets[2]",
            "DestinationRule/ratings:spec.subsets[3]",
            "DestinationRule/details:spec.subsets[1]",
        ),
    ),
    "ratings-v2": (
        [
            BOOKINFO / "bookinfo.yaml",
            BOOKINFO / "bookinfo-ratings-v2.yaml",
            BOOKINFO / "destination-rule-all.yaml",
        ],
        ("DestinationRule/ratings:spec.subsets", "DestinationRule/details:spec.subsets"),
    ),
    "helloworld": (
        [DATA / "helloworld" / "helloworld.yaml", DATA / "helloworld" / "helloworld-gateway.yaml"],
        (),
    ),
    "tcp-echo": (
        [DATA / "tcp-echo" / "tcp-echo-services.yaml", DATA / "tcp-echo" / "tcp-echo-20-v2.yaml"],
        (),
    ),
    # The Gateway API shape: every field it carries over stands in one of these.
    "gateway-api-web": ([GATEWAY_API / "web.yaml"], ()),
    "gateway-api-echo": ([GATEWAY_API / "echo.yaml"], ()),
    "gateway-api-grpc": ([GATEWAY_API / "grpc.yaml"], ()),
    "helloworld-gateway-api": (
        [
            DATA / "helloworld" / "helloworld.yaml",
            DATA / "helloworld-gateway-api" / "helloworld-versions.yaml",
            DATA / "helloworld-gateway-api" / "helloworld-route.yaml",
        ],
        (),
    ),
}

Path_ = tuple[str | int, ...]


def _leaves(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None:
        return "x"
    return f"{value}-x"


def _set(document: Any, path: Path_, value: Any) -> None:
    for part in path[:-1]:
        document = document[part]
    document[path[-1]] = value


def _run(
    root: Path, files: list[Path], drops: tuple[str, ...]
) -> tuple[dict[str, bytes], list[Any]] | None:
    """What the import writes, and its notes; None when it stops on bad input."""
    root.mkdir()
    try:
        result = import_manifests(root, files, "staging", drops=drops, verify=False)
    except InputError:
        return None
    written = {p: (root / p).read_bytes() for p in result.written}
    return written, list(result.notes)


@pytest.mark.slow
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_every_field_is_carried_over_or_noted(tmp_path: Path, sample: str) -> None:
    sources, drops = SAMPLES[sample]
    documents = {
        path.name: [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        for path in sources
    }
    inputs = tmp_path / "inputs"
    inputs.mkdir()

    def write(changed: dict[str, list[Any]]) -> list[Path]:
        paths = []
        for name, docs in changed.items():
            path = inputs / name
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
            paths.append(path)
        return paths

    baseline = _run(tmp_path / "baseline", write(documents), drops)
    assert baseline is not None
    base_files, _ = baseline
    assert base_files, "the unchanged sample imports"
    silent: list[str] = []
    runs = 0
    for name, docs in documents.items():
        for index, document in enumerate(docs):
            identity = (document.get("kind"), (document.get("metadata") or {}).get("name"))
            for path, value in _leaves(document):
                changed = copy.deepcopy(documents)
                _set(changed[name][index], path, _changed(value))
                runs += 1
                outcome = _run(tmp_path / f"run{runs}", write(changed), drops)
                if outcome is None:
                    continue  # refused outright: the value mattered
                files, notes = outcome
                if files != base_files:
                    continue
                where = pointer(list(path))
                mutated = changed[name][index]
                identities = {
                    identity,
                    (mutated.get("kind"), (mutated.get("metadata") or {}).get("name")),
                }
                if any(
                    (n.resource.kind, n.resource.name) in identities
                    and n.path is not None
                    and (where == n.path or where.startswith(f"{n.path}/") or not n.path)
                    for n in notes
                    if n.resource is not None
                ):
                    continue
                silent.append(f"{name} {identity[0]}/{identity[1]} {where} = {value!r}")
    assert runs > 50
    assert not silent, "\n".join(silent)


# The Gateway API shape ------------------------------------------------------------------------
#
# Every field of the HTTPRoute, GRPCRoute, TCPRoute, TLSRoute and Gateway schemas (the v1.6.1
# standard channel in schemas/crds/) is classified: carried over (each such field stands in a
# sample, whose every field the test above changes in turn), normalized (a note at it, same
# meaning) or refused (a refusal at it or above it). A path names a field and all under it;
# the longest path that names a field decides.

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "crds" / "gateway.networking.k8s.io"
CARRIED, NORMALIZED_, REFUSED_ = "carried", "normalized", "refused"


_PARENTS = {
    "spec.parentRefs[].group": CARRIED,  # "" (the Service: mesh) or a Gateway's
    "spec.parentRefs[].kind": CARRIED,
    "spec.parentRefs[].name": CARRIED,
    "spec.parentRefs[].namespace": CARRIED,  # a Gateway of another namespace: namespace/name
    "spec.parentRefs[].port": CARRIED,  # ports[].port
    "spec.parentRefs[].sectionName": NORMALIZED_,  # the port of the listener it names
}
_BACKENDS = {
    "spec.rules[].backendRefs[].group": CARRIED,  # "" only: a version's Service
    "spec.rules[].backendRefs[].kind": CARRIED,
    "spec.rules[].backendRefs[].name": CARRIED,  # the version whose Service it is
    "spec.rules[].backendRefs[].namespace": CARRIED,  # the route's own only
    "spec.rules[].backendRefs[].port": CARRIED,  # ports[].destinationPort
    "spec.rules[].backendRefs[].weight": CARRIED,  # versions.<v>.weight
}
_FILTERS = {
    "spec.rules[].backendRefs[].filters": REFUSED_,
    "spec.rules[].filters[].type": CARRIED,
    "spec.rules[].filters[].extensionRef": REFUSED_,
    "spec.rules[].filters[].requestHeaderModifier": CARRIED,  # requestHeaders
    "spec.rules[].filters[].responseHeaderModifier": CARRIED,  # responseHeaders
    "spec.rules[].filters[].requestMirror": CARRIED,  # mirror
    "spec.rules[].name": CARRIED,  # a pin's name
    "spec.hostnames": CARRIED,  # hosts
}
FIELDS: dict[str, dict[str, str]] = {
    "HTTPRoute": {
        **_PARENTS,
        **_BACKENDS,
        **_FILTERS,
        "spec.rules[].filters[].cors": CARRIED,  # corsPolicy
        "spec.rules[].filters[].urlRewrite": CARRIED,  # rewrite
        "spec.rules[].filters[].requestRedirect": REFUSED_,
        "spec.rules[].matches": CARRIED,  # a pin's conditions, or requests
        "spec.rules[].timeouts.request": CARRIED,  # timeout
        "spec.rules[].timeouts.backendRequest": REFUSED_,
    },
    "GRPCRoute": {
        **_PARENTS,
        **_BACKENDS,
        **_FILTERS,
        "spec.rules[].matches": CARRIED,  # the method as a uri, headers
    },
    "TCPRoute": {**_PARENTS, **_BACKENDS, "spec.rules[].name": NORMALIZED_},
    "TLSRoute": {
        **_PARENTS,
        **_BACKENDS,
        "spec.rules[].name": NORMALIZED_,
        "spec.hostnames": CARRIED,  # ports[].sniHosts
    },
    "Gateway": {
        "spec.gatewayClassName": CARRIED,  # the environment's gatewayClassName
        "spec.listeners[].name": CARRIED,  # servers[].port.name
        "spec.listeners[].hostname": CARRIED,  # servers[].hosts
        "spec.listeners[].port": CARRIED,
        "spec.listeners[].protocol": CARRIED,
        "spec.listeners[].tls.mode": CARRIED,  # SIMPLE or PASSTHROUGH
        "spec.listeners[].tls.certificateRefs": CARRIED,  # credentialName (one Secret)
        "spec.listeners[].tls.options": REFUSED_,
        "spec.listeners[].allowedRoutes": NORMALIZED_,  # the default only; else refused
        "spec.addresses": REFUSED_,
        "spec.infrastructure": REFUSED_,
        "spec.allowedListeners": REFUSED_,
        "spec.tls": REFUSED_,
    },
}
SCHEMA_FILES = {
    "HTTPRoute": "httproute_v1.json",
    "GRPCRoute": "grpcroute_v1.json",
    "TCPRoute": "tcproute_v1.json",
    "TLSRoute": "tlsroute_v1.json",
    "Gateway": "gateway_v1.json",
}
# What each normalized or refused field is set to in a sample to see its note.
EXAMPLES: dict[str, Any] = {
    "spec.rules[].backendRefs[].filters": [{"type": "RequestHeaderModifier"}],
    "spec.rules[].filters[].extensionRef": {"group": "x.io", "kind": "F", "name": "f"},
    "spec.rules[].filters[].requestRedirect": {"scheme": "https"},
    "spec.rules[].timeouts.backendRequest": "2s",
    "spec.rules[].name": "a-rule",
    "spec.parentRefs[].sectionName": "http",
    "spec.listeners[].tls.options": {"x.io/y": "z"},
    "spec.listeners[].allowedRoutes": {"namespaces": {"from": "Same"}},
    "spec.addresses": [{"value": "10.0.0.1"}],
    "spec.infrastructure": {"labels": {"a": "b"}},
    "spec.allowedListeners": {"namespaces": {"from": "All"}},
    "spec.tls": {"frontend": {"default": {"validation": {}}}},
}
# Where a kind's sample needs a value of its own (a port name of its Service).
KIND_EXAMPLES: dict[tuple[str, str], Any] = {
    ("GRPCRoute", "spec.parentRefs[].sectionName"): "grpc",
    ("TCPRoute", "spec.parentRefs[].sectionName"): "tcp",
    ("TLSRoute", "spec.parentRefs[].sectionName"): "tls",
}
# The sample each kind's example goes into.
EXAMPLE_SAMPLES = {
    "HTTPRoute": "gateway-api-web",
    "GRPCRoute": "gateway-api-echo",
    "TCPRoute": "gateway-api-echo",
    "TLSRoute": "gateway-api-echo",
    "Gateway": "gateway-api-web",
}


def _schema_fields(schema: dict[str, Any], path: str = "spec") -> Iterator[str]:
    for key, value in (schema.get("properties") or {}).items():
        yield f"{path}.{key}"
        yield from _schema_fields(value, f"{path}.{key}")
    if "items" in schema:
        yield from _schema_fields(schema["items"], f"{path}[]")


def _decided(kind: str, field: str) -> str | None:
    """The classification of `field`: that of the longest path naming it."""
    found = [p for p in FIELDS[kind] if field == p or field.startswith((f"{p}.", f"{p}["))]
    return FIELDS[kind][max(found, key=len)] if found else None


def test_every_gateway_api_schema_field_is_classified() -> None:
    unclassified: list[str] = []
    for kind, name in SCHEMA_FILES.items():
        schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
        fields = list(_schema_fields(schema["properties"]["spec"]))
        assert len(fields) > 10
        # `spec.rules` itself holds fields: each of them is classified (parents with a
        # classified field under them are containers only).
        leaves = [f for f in fields if not any(g.startswith((f"{f}.", f"{f}[")) for g in fields)]
        unclassified += [f"{kind} {f}" for f in leaves if _decided(kind, f) is None]
        unknown = [p for p in FIELDS[kind] if p not in fields]
        assert not unknown, f"{kind}: no such field in the schema: {unknown}"
    assert not unclassified, "\n".join(unclassified)


def _in_sample(document: Any, field: str) -> bool:
    """Whether `field` (a schema path) has a value in `document`."""
    values = [document]
    for part in field.split("."):
        name, items = part.removesuffix("[]"), part.endswith("[]")
        found = []
        for value in values:
            if isinstance(value, dict) and name in value:
                child = value[name]
                found += child if items and isinstance(child, list) else [child]
        values = found
    return bool(values)


def _documents(sample: str) -> list[dict[str, Any]]:
    return [
        d
        for path in SAMPLES[sample][0]
        for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if d
    ]


def test_every_carried_gateway_api_field_stands_in_a_sample() -> None:
    """So that the test above changes it: a carried field no sample holds is untested."""
    documents = [d for sample in SAMPLES if "gateway-api" in sample for d in _documents(sample)]
    missing = [
        f"{kind} {field}"
        for kind, fields in FIELDS.items()
        for field, decided in fields.items()
        if decided == CARRIED
        and not any(d.get("kind") == kind and _in_sample(d, field) for d in documents)
    ]
    assert not missing, "\n".join(missing)


def _put(document: Any, field: str, value: Any) -> list[str | int]:
    """`value` at `field` in `document` (the last entry of each list, made when missing);
    the path it was put at."""
    path: list[str | int] = []
    parts = field.split(".")
    for number, part in enumerate(parts):
        name, items = part.removesuffix("[]"), part.endswith("[]")
        last = number == len(parts) - 1
        if last and not items:
            document[name] = copy.deepcopy(value)
            return [*path, name]
        child = document.setdefault(name, [{}] if items else {})
        path.append(name)
        if items:
            if not child:
                child.append({})
            path.append(len(child) - 1)
            child = child[-1]
        document = child
    return path


@pytest.mark.parametrize(
    ("kind", "field"),
    [(k, f) for k, fields in FIELDS.items() for f, d in fields.items() if d != CARRIED],
    ids=[f"{k} {f}" for k, fields in FIELDS.items() for f, d in fields.items() if d != CARRIED],
)
def test_each_noted_gateway_api_field_meets_its_note(tmp_path: Path, kind: str, field: str) -> None:
    sample = EXAMPLE_SAMPLES[kind]
    documents = _documents(sample)
    target = next(d for d in documents if d.get("kind") == kind)
    where = pointer(_put(target, field, KIND_EXAMPLES.get((kind, field), EXAMPLES[field])))
    source = tmp_path / "input.yaml"
    source.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    root = tmp_path / "repo"
    root.mkdir()
    result = import_manifests(root, [source], "staging", verify=False)
    wanted = {NORMALIZED_: NORMALIZED, REFUSED_: REFUSED}[FIELDS[kind][field]]
    name = target["metadata"]["name"]
    found = [
        n
        for n in result.notes
        if n.resource is not None
        and (n.resource.kind, n.resource.name) == (kind, name)
        and n.rule == wanted
        and n.path is not None
        and (where == n.path or where.startswith(f"{n.path}/"))
    ]
    assert found, f"no {wanted} note at {where}: {[str(n) for n in result.notes]}"
