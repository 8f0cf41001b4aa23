"""What a `check` over everything holds while it runs (check/cache.py, check/units.py): not
the stat signature of every file once the memo of digests is saved, and no text of an
environment's records before each is written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from meshcanary.check import cache, units
from meshcanary.manifest import Document, Resource
from meshcanary.render import repository
from meshcanary.render.provenance import Provenance
from tests.support.bounds import count_calls

FILES = {
    "environments/dev/environment.yaml": "namespace: dev\n",
    "environments/dev/api.yaml": "service: api\nbase: deploy/base/api\n",
    "deploy/base/api/kustomization.yaml": "resources: [service.yaml]\n",
    "deploy/base/api/service.yaml": "kind: Service\n",
    "policies/README.md": "none yet\n",
}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Files here were all written within the last second, which the memo would not keep;
    # pretend they settled long ago so that it does.
    monkeypatch.setattr(cache.Memo, "SETTLED_NS", -(10**12))
    repo = tmp_path / "repo"
    for name, text in FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    return repo


def _remembered(memo: cache.Memo) -> set[str]:
    return set(json.loads(memo.path.read_text(encoding="utf-8")))


def _digest(repo: Path, name: str) -> str:
    return hashlib.sha256((repo / name).read_bytes()).hexdigest()


def test_a_run_over_everything_lets_the_signatures_go_once_the_memo_is_saved(
    tree: Path,
) -> None:
    files = cache.Files(tree)
    cache.key(tree, "{}", [], [], "kustomize", files=files)
    memo = files.memo
    assert _remembered(memo) == set(FILES)
    # Each file's stat signature is in the memo's file now, not in memory ...
    assert memo.known == {} and memo.fresh == {}
    # ... and what the run asks again is still answered: each digest, each release's base.
    assert files.under("deploy/base/api") == {
        name: _digest(tree, name) for name in FILES if name.startswith("deploy/base/api/")
    }
    assert memo.bases == {"environments/dev/api.yaml": "deploy/base/api"}


def test_a_file_found_after_the_memo_was_saved_joins_the_entries_on_file(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = cache.Files(tree)
    cache.key(tree, "{}", [], [], "kustomize", files=files)
    # A kustomization may name a folder outside environments/, deploy/ and policies/: the
    # record of its unit then asks for its digests after the memo was saved.
    (tree / "vendor").mkdir()
    (tree / "vendor" / "extra.yaml").write_text("kind: ConfigMap\n", encoding="utf-8")
    assert files.under("vendor") == {"vendor/extra.yaml": _digest(tree, "vendor/extra.yaml")}
    files.memo.save(complete=False)
    assert _remembered(files.memo) == {*FILES, "vendor/extra.yaml"}
    # The next run reads none of them again.
    expected = {name: _digest(tree, name) for name in _remembered(files.memo)}
    reads = count_calls(monkeypatch, Path, "read_bytes")
    again = cache.Memo(tree)
    assert {name: again.entry(name, tree / name) for name in expected} == expected
    assert reads.made == []


def test_a_record_holds_no_text_of_its_provenance_until_it_is_written(
    example_repo: Path,
) -> None:
    rendered = repository.plan(example_repo, ["prod"])
    keys = [key for key, origins in rendered.provenance.items() if "micro-api" in origins.owner]
    assert keys
    resources = [
        Resource(
            {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}},
            Document("deploy/overlays/prod/micro-api", "", 1, index),
        )
        for index, (_, kind, namespace, name) in enumerate(keys)
    ]
    made = units.Decided(rendered.provenance, "prod", keys)
    # What the render holds already, not a copy: the text is made as the record is written.
    assert not isinstance(made, str)
    record = units.UnitRecord(
        "prod", "micro-api", None, None, {}, [], resources, [], {}, made, final=True
    )
    stored = units.Stored(units.EnvironmentRecord("prod", {}, [], None), {"micro-api": record})
    units.write(example_repo, "key", stored)
    kept = units.read(example_repo, "key", "prod")
    assert kept is not None
    (written,) = kept.units.values()
    assert isinstance(written.provenance, str)
    # Read back, it says where each field was decided, as the render does.
    decoded = units.StoredProvenance(example_repo, Provenance())
    decoded.keep(written)
    for key in keys:
        assert decoded.of(*key) == rendered.provenance.of(*key)
