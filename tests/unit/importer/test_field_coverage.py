"""Nothing is dropped silently: every field of every input object is carried over (change it,
and what import writes changes) or a note stands at it (normalized, dropped or refused).

Each field of each sample is changed in turn, the import run again, and its files compared
with the unchanged import's. A field whose change neither changes the files nor meets a note
at or above it is a field import loses without a word.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.errors import InputError
from meshcanary.importer import import_manifests
from meshcanary.manifest import pointer
from tests.support import BOOKINFO, DATA

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
