"""Many overlays built by few kustomize processes: batches of overlays, split back by origin.

One kustomize process costs about 0.15 s to start and build one overlay; one root listing 25
overlays builds them in about 0.2 s, while roots of hundreds slow down quadratically. A batch
root lives in a temporary folder, asks kustomize for origin annotations, and each object goes
back to its overlay by the file it came from. Each overlay is resolved first: one that names
something refused is not built, and its problems are its result. A batch that fails is built
again one overlay at a time, so each error lands on its own overlay.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcanary import kustomize, progress
from meshcanary.kustomize.contain import Resolver

BATCH = 25
ORIGIN = "config.kubernetes.io/origin"


@dataclass(frozen=True)
class Overlay:
    """A folder to build: a service overlay, or an environment's gateways."""

    folder: str  # repository-relative, deploy/overlays/<env>/<service>
    group: str  # overlays of one group (an environment) may share a batch; others never do
    prefixes: tuple[str, ...] = ()  # https prefixes of remote bases: the environment's
    base: str | None = None  # repository-relative folder whose objects are also this overlay's

    @property
    def built_as(self) -> tuple[str, str, tuple[str, ...]]:
        """What decides what kustomize gives for it (`base` only says which objects are whose)."""
        return self.folder, self.group, self.prefixes


@contextmanager
def early(root: Path, overlays: Sequence[Overlay], builder: kustomize.Builder) -> Iterator[None]:
    """Start building `overlays` now, each in a batch of its own, for a run that has yet to
    work out what it builds: a guess (the pre-commit hook's, from the paths it is given).

    Each is resolved first, as every build is: a guess builds nothing a run would refuse.
    `build` takes the result of an overlay it is asked for that is built the same way, as its
    own batch would give it; the others are stopped and dropped when the block ends (a run
    answered from the cache takes none). An overlay started already by an enclosing block
    is left to it.
    """
    import tempfile

    fresh = [o for o in overlays if o.built_as not in builder.early]
    if not fresh:  # all started by an enclosing block (the CLI's, for `check`)
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="meshcanary-early-"))
    mine: list[tuple[str, str, tuple[str, ...]]] = []
    try:
        for index, overlay in enumerate(fresh):
            target = _batch_root(root, folder / f"overlay-{index}", [overlay])
            started = builder.start(target)
            if started is not None:
                builder.early[overlay.built_as] = (target, started)
                mine.append(overlay.built_as)
        yield
    finally:
        for key in mine:
            left = builder.early.pop(key, None)
            if left is not None:
                left[1].stop()  # a guess not taken: its kustomize killed, what it gave dropped
        shutil.rmtree(folder, ignore_errors=True)


def build(
    root: Path,
    overlays: Sequence[Overlay],
    jobs: int | None = None,
    builder: kustomize.Builder | None = None,
) -> list[kustomize.BuildResult]:
    """kustomize output of each overlay, in order, built in batches of up to BATCH overlays.

    The objects of a built batch come parsed (`documents`), without their origin annotations.
    """
    import tempfile

    import yaml

    # Imported here, not with the module: the hook's guesses start before it is needed.
    from meshcanary.manifest import BadDocument, objects

    builder = builder or kustomize.builder(root)
    outputs: dict[int, kustomize.BuildResult] = {}
    batches: list[list[Overlay]] = []
    targets: list[kustomize.Target] = []
    progress.start("kustomize build", len(overlays))

    def batch_roots(folder: Path) -> Iterator[kustomize.Target]:
        """Each batch's root, written as soon as the batch is full: it builds while the next
        overlays are resolved."""
        batch: list[Overlay] = []
        for overlay in [*overlays_left, None]:
            if overlay is not None:
                refused = builder.refused(_target(root, overlay))
                if refused:
                    outputs[id(overlay)] = kustomize.BuildResult(
                        overlay.folder, "", refused[0].message, None, refused
                    )
                    progress.advance()
                    continue
            if batch and (
                overlay is None or len(batch) == BATCH or batch[0].group != overlay.group
            ):
                batches.append(batch)
                targets.append(_batch_root(root, folder / f"batch-{len(batches)}", batch))
                yield targets[-1]
                batch = []
            if overlay is not None:
                batch.append(overlay)

    def take(batch: list[Overlay], target: kustomize.Target, result: kustomize.BuildResult) -> bool:
        """Each overlay's own objects of a batch's build into `outputs`; False when it failed
        (its overlays are then built one by one, so each problem lands on its overlay)."""
        if not result.ok:
            return False
        split: dict[int, list[dict[str, Any]]] = {id(o): [] for o in batch}
        try:
            documents = objects(result.text)
        except (yaml.YAMLError, BadDocument):
            return False
        for document in documents:
            owner = _owner(root, target.folder, batch, document, builder.resolver)
            split[id(owner)].append(document)
        for overlay in batch:
            outputs[id(overlay)] = kustomize.BuildResult(
                overlay.folder, "", "", tuple(split[id(overlay)])
            )
        return True

    # What was started early and is asked for now; an early build that failed is built again
    # as the others are, so that its error is the one a run without the guess gives.
    for overlay in overlays:
        started = builder.early.pop(overlay.built_as, None)
        if started is not None and take([overlay], started[0], started[1].built.result()):
            progress.advance()
    overlays_left = [o for o in overlays if id(o) not in outputs]

    with tempfile.TemporaryDirectory(prefix="meshcanary-build-") as folder:
        results = builder.build_many(batch_roots(Path(folder)), jobs)
        retry: list[Overlay] = []
        for target, batch, result in zip(targets, batches, results, strict=True):
            if not take(batch, target, result):
                retry.extend(batch)
    if retry:
        progress.start("kustomize build, one overlay at a time", len(retry))
        for overlay, result in zip(
            retry, builder.build_many([_target(root, o) for o in retry], jobs), strict=True
        ):
            outputs[id(overlay)] = result
    return [outputs[id(o)] for o in overlays]


def _batch_root(root: Path, batch_root: Path, batch: list[Overlay]) -> kustomize.Target:
    """A kustomization in a temporary folder listing the batch's overlays, with origins."""
    batch_root.mkdir()
    listed = "".join(
        f"- {json.dumps(os.path.relpath(root / o.folder, batch_root))}\n" for o in batch
    )
    (batch_root / "kustomization.yaml").write_text(
        f"buildMetadata: [originAnnotations]\nresources:\n{listed}", encoding="utf-8"
    )
    return kustomize.Target(
        batch_root, batch[0].folder, batch[0].prefixes, tuple(root / o.folder for o in batch)
    )


def _target(root: Path, overlay: Overlay) -> kustomize.Target:
    return kustomize.Target(root / overlay.folder, overlay.folder, overlay.prefixes)


def _owner(
    root: Path,
    batch_root: Path,
    batch: list[Overlay],
    document: dict[str, object],
    resolver: Resolver,
) -> Overlay:
    """The overlay an object of a batch build belongs to, by the file kustomize read it from:
    in the overlay's folder or its base, else in a folder its kustomizations include."""
    import yaml

    metadata = document.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    origin = annotations.pop(ORIGIN, "") if isinstance(annotations, dict) else ""
    if isinstance(metadata, dict) and annotations == {}:
        del metadata["annotations"]
    source = ""
    try:
        # A small YAML mapping of kustomize's; a path with " #" in it comes quoted.
        described = yaml.safe_load(str(origin)) if origin else None
    except yaml.YAMLError:
        described = None
    if isinstance(described, dict):
        source = str(described.get("path") or described.get("configuredIn") or "")
    if source:
        path = os.path.normpath(batch_root / source)
        relative = Path(os.path.relpath(path, root)).as_posix()
        for overlay in batch:
            if relative.startswith(overlay.folder + "/"):
                return overlay
            if overlay.base is not None and relative.startswith(overlay.base.rstrip("/") + "/"):
                return overlay
        folder = os.path.dirname(os.path.relpath(os.path.realpath(path), resolver.root))
        for overlay in batch:
            if folder in resolver.reached(root / overlay.folder)[0]:
                return overlay
    return batch[0]
