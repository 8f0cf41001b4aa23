"""`import --verify`: the proof, on the user's own manifests, that what import writes renders
back to what it read.

The files an import would write go into a scratch folder with the environment file and the
imported services' bases, which is rendered and built with kustomize; each service's overlay
(and the environment's Gateways) is then compared with the objects it was imported from (meshcanary.equivalence). A difference at
a field a note already explains (normalized, or dropped with --drop) is expected; any other one
is a failure, and the import writes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from meshcanary import equivalence, kustomize
from meshcanary.errors import InputError
from meshcanary.importer.context import BASES, NORMALIZED, REFUSED, Context
from meshcanary.layout import GATEWAYS, OVERLAYS
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.problem import Problem, Severity

RULE = "import-verify"


def verify(
    root: Path,
    written: Mapping[str, str],
    inputs: Mapping[str, list[Resource]],
    ctx: Context,
    renamed: Mapping[str, str] | None = None,
) -> list[Problem]:
    """The differences between each service's input objects and its rendered overlay that no
    note explains; empty when the import is proven."""
    from meshcanary.render import repository

    with tempfile.TemporaryDirectory(prefix="meshcanary-import-") as folder:
        scratch = Path(folder)
        # Only what the imported services render from: the environment file and their bases
        # (a reused base is not among the written files). The environment's other releases,
        # and every other environment, are no part of the proof.
        for relative in [ctx.env_path, *(f"{BASES}/{service}" for service in inputs)]:
            source = root / relative
            if relative in written or not source.exists():
                continue
            if source.is_dir():
                shutil.copytree(source, scratch / relative, symlinks=True)
            else:
                (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, scratch / relative)
        for relative, text in written.items():
            path = scratch / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        repository.render(scratch, [ctx.environment], force=True)
        built = _build(scratch, ctx.environment, [*inputs, GATEWAYS])
    explained = [n for n in ctx.notes.problems if n.rule != REFUSED and n.resource is not None]
    problems: list[Problem] = []
    for service, expected in inputs.items():
        # The environment's other Gateways (declared before this import) are not compared.
        imported = {r.name for r in expected if r.kind == "Gateway"}
        gateways = [r for r in built.get(GATEWAYS, []) if r.name in imported]
        actual = built.get(service, []) + gateways
        if not any(r.kind == "DestinationRule" for r in expected):
            # Without a DestinationRule among the manifests, import reads a subset as the pods'
            # version label (a note says so at each subset): compare the routes that way.
            expected = [*expected, *(r for r in actual if r.kind == "DestinationRule")]
        for difference in equivalence.compare(
            expected,
            actual,
            namespace=ctx.target_namespace,
            deployment_names=renamed,
            # Every object of a version's folder carries its version label; the input's
            # Deployment may carry it on its pods only.
            added_labels=("version",),
        ):
            if _explained(difference, explained):
                continue
            problems.append(
                Problem(
                    difference.location,
                    f"verify: {difference.kind} {difference.name} {difference.pointer or '/'}: "
                    f"{difference.message} (input: {difference.expected}; rendered: "
                    f"{difference.actual})",
                    "the rendered tree would not do what the manifests do; please report this "
                    "import as a meshcanary bug, with the manifests",
                    rule=RULE,
                    severity=Severity.ERROR,
                    resource=difference.ref,
                    path=difference.pointer,
                )
            )
    return sorted(dict.fromkeys(problems), key=Problem.sort_key)


def _build(root: Path, environment: str, units: Sequence[str]) -> dict[str, list[Resource]]:
    """Each overlay's objects, as kustomize builds them."""
    builder = kustomize.builder(root)
    targets = []
    for unit in units:
        folder = root / OVERLAYS / environment / unit
        if (folder / "kustomization.yaml").is_file():
            targets.append(kustomize.Target(folder, f"{OVERLAYS}/{environment}/{unit}"))
    found: dict[str, list[Resource]] = {}
    for result in builder.build_many(targets, None):
        if result.problems:
            raise InputError(result.problems)
        if not result.ok:
            raise InputError(f"{result.folder}: kustomize build failed: {result.error}")
        parsed = Parsed()
        parse_text(result.output, f"{result.folder} (built)", parsed)
        found[Path(result.folder).name] = list(parsed.resources)
    return found


def _explained(difference: equivalence.Difference, notes: Sequence[Problem]) -> bool:
    """Whether a note (normalized or dropped) stands at the difference's field or above it."""
    where = difference.pointer
    for note in notes:
        if note.resource != difference.ref or note.path is None:
            continue
        if note.rule == NORMALIZED and not note.path:
            continue  # "imported once", "added to the environment": not a field's change
        if where == note.path or where.startswith(note.path + "/"):
            return True
    return False
