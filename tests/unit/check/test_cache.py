"""`check`'s cache (check/cache.py): the memo of input files' digests, trusted only while a
file's stat is unchanged and pruned of files that are gone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from meshcanary.check import cache


def test_the_memo_trusts_a_file_only_while_its_stat_is_unchanged(
    example_repo: Path, cli, monkeypatch
) -> None:
    # Files here were all written within the last second, which the memo would not trust;
    # pretend they settled long ago so that it does.
    monkeypatch.setattr(cache.Memo, "SETTLED_NS", -(10**12))
    first = cli("--repo", example_repo, "check", "--format", "json")
    assert first.code == 0
    reads: list[str] = []
    real = Path.read_bytes

    def counted(self: Path) -> bytes:
        reads.append(self.name)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counted)
    assert cli("--repo", example_repo, "check", "--format", "json").out == first.out
    assert reads == []  # every digest came from the memo
    # Same size, same modification time, other bytes: the change time still gives it away.
    service = example_repo / "deploy/base/micro-api/service.yaml"
    before = service.stat()
    service.write_text(
        service.read_text(encoding="utf-8").replace("targetPort: 19090", "targetPort: 19091"),
        encoding="utf-8",
    )
    os.utime(service, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert service.stat().st_size == before.st_size
    changed = cli("--repo", example_repo, "check", "--format", "json")
    assert changed.code == 1 and "service-target-port" in changed.out


def test_the_memo_forgets_files_that_are_gone_after_a_full_run(
    example_repo: Path, cli, monkeypatch
) -> None:
    monkeypatch.setattr(cache.Memo, "SETTLED_NS", -(10**12))
    notes = example_repo / "deploy/notes.txt"
    notes.write_text("kept by a person\n", encoding="utf-8")

    def remembered() -> set[str]:
        (memo,) = cache.folder().glob("files-*.json")
        return set(json.loads(memo.read_text(encoding="utf-8")))

    cli("--repo", example_repo, "check")
    assert "deploy/notes.txt" in remembered()
    notes.unlink()
    # A hook's narrow run saw only its service: it keeps what it did not look at.
    cli("--repo", example_repo, "check", "environments/prod/micro-api.yaml")
    assert "deploy/notes.txt" in remembered()
    assert "environments/dev/checkout.yaml" in remembered()
    cli("--repo", example_repo, "check")
    assert "deploy/notes.txt" not in remembered()
    assert "environments/dev/checkout.yaml" in remembered()
