"""`meshcanary import`: existing manifests of one service → a Kustomize base and a release file.

The command's one step; `meshcanary.importer` does the reading, the notes and the writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from meshcanary import importer
from meshcanary.importer import ImportResult


def import_manifests(
    root: Path,
    files: Sequence[Path],
    environment: str,
    service: str | None = None,
    namespace: str | None = None,
) -> ImportResult:
    """Import `files` as one service of `environment` in the repository at `root`."""
    return importer.import_manifests(root, files, environment, service, namespace)
