"""Where things live in a meshcanary repository: names every stage shares, and nothing heavy.

Kept apart so that a `check` answered from its cache can find its inputs without importing
the loaders and the renderer.
"""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENTS = "environments"
ENVIRONMENT_FILE = "environment.yaml"
OVERLAYS = "deploy/overlays"
GATEWAYS = "_gateways"
# The hashes of the files render wrote, one in each service's folder and one in each
# environment's for its own files: how it tells its own stale files from a person's edits.
HASHES_FILE = ".meshcanary.json"


def environment_names(root: Path) -> list[str]:
    """Environments of the repository: folders of environments/ with an environment.yaml."""
    folder = root / ENVIRONMENTS
    if not folder.is_dir():
        return []
    # Any entry named environment.yaml counts, so one that is a folder, a FIFO or a dangling
    # link is reported when read; skipping it would make render delete the environment's tree.
    return sorted(p.name for p in folder.iterdir() if os.path.lexists(p / ENVIRONMENT_FILE))
