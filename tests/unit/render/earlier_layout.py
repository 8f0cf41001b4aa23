"""A rendered tree as meshcanary wrote it before hash files per service folder: for the tests
that a repository rendered by that version keeps working."""

from __future__ import annotations

import json
from pathlib import Path

HASHES = ".meshcanary.json"


def to_earlier_layout(overlays: Path) -> None:
    """Move the hashes of every service folder under `overlays` into its environment's hash
    file, as one file for the whole environment, byte for byte as the earlier version wrote it."""
    for environment in sorted(overlays.iterdir()):
        top = environment / HASHES
        if not top.is_file():
            continue
        files: dict[str, str] = json.loads(top.read_text(encoding="utf-8"))["files"]
        for own in sorted(environment.glob(f"*/{HASHES}")):
            recorded = json.loads(own.read_text(encoding="utf-8"))["files"]
            files.update({f"{own.parent.name}/{path}": value for path, value in recorded.items()})
            own.unlink()
        text = json.dumps({"generator": "meshcanary", "files": files}, indent=2, sort_keys=True)
        top.write_text(text + "\n", encoding="utf-8")


def in_earlier_layout(overlays: Path) -> bool:
    """Whether no service folder under `overlays` has a hash file of its own."""
    return not list(overlays.glob(f"*/*/{HASHES}"))
