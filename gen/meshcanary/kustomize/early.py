"""kustomize started on the overlays a narrowed check will most likely build, from its paths
alone, before the release files are loaded and rendered.

The pre-commit hook names one service's release file and overlay; the overlay (and its
environment's gateways, which its routes bind to) is what the run builds, but the run knows
that only after loading and rendering the environment: about 0.1 s during which kustomize
could already be building. A guess costs nothing to be wrong about: each guessed overlay is
resolved before it is built, as every build is, and `kustomize.batch.build` takes a result
only for an overlay it is asked for, built the same way; a wrong guess is a build killed
and dropped. The CLI guesses for `check` before it imports the pipeline; `check` guesses
again for callers without the CLI, which starts nothing the CLI started.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS, GATEWAYS, OVERLAYS

# More services than this, and the run is no hook's: batches build them as well.
MOST = 4
_OVERLAYS = PurePosixPath(OVERLAYS).parts


def guess(root: Path, paths: Sequence[str]) -> list[str]:
    """The overlay folders a check of `paths` builds, when the paths name one environment's
    services and nothing else (no environment file, base or policy); else none."""
    environments: set[str] = set()
    services: set[str] = set()
    for raw in paths:
        parts = PurePosixPath(raw).parts
        if len(parts) == 3 and parts[0] == ENVIRONMENTS and parts[2] != ENVIRONMENT_FILE:
            environment, service = parts[1], parts[2].removesuffix(".yaml")
        elif len(parts) >= 5 and parts[:2] == _OVERLAYS and parts[3] != GATEWAYS:
            environment, service = parts[2], parts[3]
        else:
            return []
        environments.add(environment)
        services.add(service)
    if len(environments) != 1 or len(services) > MOST:
        return []
    (environment,) = environments
    folders = [f"{OVERLAYS}/{environment}/{name}" for name in (GATEWAYS, *sorted(services))]
    return [f for f in folders if (root / f / "kustomization.yaml").is_file()]


@contextmanager
def builds(root: Path, paths: Sequence[str]) -> Iterator[None]:
    """The guessed overlays building while the block runs (see `guess`)."""
    folders = guess(root, paths) if paths else []
    if not folders:
        yield
        return
    from meshcanary import kustomize
    from meshcanary.kustomize import batch

    environment = PurePosixPath(folders[0]).parts[2]
    overlays = [batch.Overlay(folder, environment) for folder in folders]
    with batch.early(root, overlays, kustomize.builder(root)):
        yield
