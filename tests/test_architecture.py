"""The import graph runs one way: read from the source, every edge checked against the layers.

docs/architecture.md draws the same layers. A module imports only from lower layers (and its
own package); commands are leaves that import no other command; nothing but the CLI imports a
command. An edge that breaks this fails here with the file and line that adds it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGE = ROOT / "gen" / "meshcanary"

# Lowest first. A unit is a top-level module or package of meshcanary ("meshcanary" itself is
# the package's __init__, which holds __version__).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("meshcanary", "problem"),
    ("errors", "layout", "progress", "names", "resources", "positions", "fastyaml", "lifetime"),
    ("yaml11",),  # raises `fastyaml`'s Unsure, read by `manifest`: a layer between the two
    ("source", "manifest"),
    ("mesh", "report", "lock", "baseline", "gitops", "kustomize", "release"),
    ("routing_gateway", "registry"),  # read `mesh`, read by `routing` and `rules`
    ("workspace", "rules", "inputs", "validate", "routing"),
    ("policies", "render", "equivalence", "reach", "validating"),
    ("lint",),
    ("check", "importer", "analysis"),
    ("commands",),
    ("cli",),
    ("__main__",),
)
LAYER = {unit: index for index, units in enumerate(LAYERS) for unit in units}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    name = ".".join(parts)
    return name.removesuffix(".__init__")


def _unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__version__":
        return "meshcanary"
    return parts[1]


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every meshcanary module the file imports, where it does (function-level imports too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "meshcanary":
                yield from ((f"meshcanary.{alias.name}", node.lineno) for alias in node.names)
            elif node.module.startswith("meshcanary."):
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("meshcanary."):
                    yield alias.name, node.lineno


def _edges() -> list[tuple[str, int, str, str]]:
    """(file, line, importing module, imported module) for every import between modules."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        shown = path.relative_to(ROOT).as_posix()
        found += [(shown, line, _module(path), target) for target, line in _imports(path)]
    return found


def violations(edges: list[tuple[str, int, str, str]]) -> list[str]:
    wrong = []
    for file, line, source, target in edges:
        here, there = _unit(source), _unit(target)
        if here == "commands" and there == "commands" and source != "meshcanary.commands":
            if target not in ("meshcanary.commands", source):
                wrong.append(f"{file}:{line}: a command imports another: {target}")
            continue
        if here == there:
            continue
        if here not in LAYER or there not in LAYER:
            wrong.append(f"{file}:{line}: {here} or {there} has no layer; add it to LAYERS")
        elif LAYER[there] >= LAYER[here]:
            wrong.append(f"{file}:{line}: {here} (layer {LAYER[here]}) imports {target}")
    return wrong


def test_every_import_points_down() -> None:
    edges = _edges()
    assert len(edges) > 200  # the walk found the package's imports
    assert violations(edges) == []


def test_every_unit_has_a_layer() -> None:
    units = {_unit(_module(path)) for path in PACKAGE.rglob("*.py")}
    assert units - set(LAYER) == set()
    assert set(LAYER) - units == set(), "a layer names a unit that does not exist"


@pytest.mark.parametrize(
    ("edge", "says"),
    [
        (("a.py", 3, "meshcanary.commands.edit", "meshcanary.commands.check"), "a command"),
        (("a.py", 3, "meshcanary.check.pipeline", "meshcanary.commands.render"), "check"),
        (("a.py", 3, "meshcanary.rules.weights_sum", "meshcanary.check"), "rules"),
        (("a.py", 3, "meshcanary.source", "meshcanary.manifest"), "source"),
        (("a.py", 3, "meshcanary.shiny", "meshcanary.errors"), "no layer"),
    ],
)
def test_an_upward_or_sideways_edge_is_caught(edge: tuple[str, int, str, str], says: str) -> None:
    (found,) = violations([edge])
    assert found.startswith("a.py:3: ") and says in found
    # ... and the same edge pointing down is fine (sideways, within a layer, is not).
    file, line, source, target = edge
    if says in ("check", "rules"):
        assert violations([(file, line, target, source)]) == []


def test_no_module_is_over_700_lines() -> None:
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert max(sizes.values()) > 300  # the walk read the modules
    assert {name: n for name, n in sizes.items() if n > 700} == {}
