"""`meshcanary diff`: what would change in the cluster, per resource, between a ref and now.

Both trees are built with kustomize (every service overlay and the gateways), so the diff is
of the objects Argo CD or Flux would apply, not of the files that produce them.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from meshcanary import baseline, kustomize, manifest
from meshcanary.errors import InputError
from meshcanary.layout import ENVIRONMENTS, OVERLAYS
from meshcanary.problem import printable, printable_lines

if TYPE_CHECKING:
    from meshcanary.render.repository import RenderResult

# Not ResourceRef: the same object served at another apiVersion on either side is one change.
Key = tuple[str, str, str]  # kind, namespace, name


@dataclass(frozen=True)
class ResourceDiff:
    key: Key
    action: str  # added, removed, changed
    diff: str


def _units(root: Path) -> list[tuple[str, Path]]:
    overlays = root / OVERLAYS
    if not overlays.is_dir():
        return []
    return [
        (f"{env.name}/{unit.name}", unit)
        for env in sorted(overlays.iterdir())
        if env.is_dir() and not env.name.startswith(".")
        for unit in sorted(env.iterdir())
        if unit.is_dir() and (unit / "kustomization.yaml").is_file()
    ]


def built(root: Path, jobs: int | None = None, repo: Path | None = None) -> dict[Key, str]:
    """Every object the tree at `root` renders to, as sorted-key YAML, by (kind, ns, name).

    `root` may be a ref's tree exported to a temporary folder: it is resolved as its own
    repository, with the remote bases the environment files of `repo` (the working tree)
    allow.
    """
    units = _units(root)
    builder = kustomize.builder(root)
    targets = [
        kustomize.Target(path, f"{OVERLAYS}/{label}", _remote_bases(repo or root, label))
        for label, path in units
    ]
    objects: dict[Key, str] = {}
    for result in builder.build_many(targets, jobs):
        if result.problems:
            raise InputError(result.problems)
        if not result.ok:
            raise InputError(f"{result.folder}: kustomize build failed: {result.error}")
        for document in manifest.objects(result.output):
            meta = document.get("metadata") or {}
            key = (
                str(document.get("kind", "")),
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
            )
            objects[key] = yaml.safe_dump(document, sort_keys=True)
    return objects


def _remote_bases(repo: Path, label: str) -> tuple[str, ...]:
    """The environment's remoteBases, read only when the run allows remote bases at all."""
    if not kustomize.settings.allow_remote:
        return ()
    from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS
    from meshcanary.release.load import environment

    env = label.split("/", 1)[0]
    if not (repo / ENVIRONMENTS / env / ENVIRONMENT_FILE).is_file():
        return ()
    return environment(repo, env).remote_bases


def export(root: Path, ref: str, target: Path) -> None:
    """The generated tree (deploy/) of `ref` extracted into `target`."""
    baseline.resolve(root, ref, required=True, changed=()).export(["deploy"], target)


@dataclass(frozen=True)
class Diff:
    changes: list[ResourceDiff]
    # Generated files that differ from what the release files render to: when there are any,
    # the working tree's side is a fresh render of its release files, not the stale tree...
    stale: int = 0
    # ... unless some were edited by hand: then it is the tree as it is, edits and all.
    edited: int = 0


def diff(root: Path, base: str = "HEAD", jobs: int | None = None) -> Diff:
    """What would change in the cluster between `base` and the working tree, once rendered.

    A release file edited without `render` changes nothing under deploy/overlays/ yet: the
    working tree's side is then rendered from its release files in a scratch copy, so the
    diff shows the edit, and `stale` says how many generated files are behind. A generated
    file edited by hand is what Argo CD would apply: then the tree is compared as it is.
    """
    from meshcanary.render import repository

    with tempfile.TemporaryDirectory(prefix="meshcanary-diff-") as folder:
        export(root, base, Path(folder))
        before = built(Path(folder), jobs, root)
    plan = repository.plan(root)
    stale = sum(len(p.changes) for p in plan.plans)
    edited = sum(len(p.conflicts) for p in plan.plans)
    if stale and not edited:
        with tempfile.TemporaryDirectory(prefix="meshcanary-rendered-") as scratch:
            copy = Path(scratch)
            _copy_inputs(root, plan, copy)
            repository.render(copy, force=True)
            after = built(copy, jobs, root)
    else:
        after = built(root, jobs)
    return Diff(_compare(before, after, base), stale, edited)


def _copy_inputs(root: Path, plan: RenderResult, target: Path) -> None:
    """What a render of `root` reads and writes: environments/, deploy/ and every base."""
    import shutil

    folders = {ENVIRONMENTS, "deploy"} | {
        release.base for loaded in plan.environments for release in loaded.releases
    }
    for folder in sorted(folders):
        source, destination = root / folder, target / folder
        if source.is_dir() and not destination.exists():
            shutil.copytree(source, destination, symlinks=True)


def _compare(before: dict[Key, str], after: dict[Key, str], base: str) -> list[ResourceDiff]:
    changes: list[ResourceDiff] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        action = "added" if old is None else "removed" if new is None else "changed"
        kind, namespace, name = key
        label = f"{kind} {namespace + '/' if namespace else ''}{name}"
        text = "".join(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"{base}: {label}",
                tofile=f"working tree: {label}",
            )
        )
        changes.append(ResourceDiff(key, action, text))
    return changes


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in re.findall("`+", text)), default=0)


def _code(text: str) -> str:
    """`text` as Markdown inline code, the only way names reach the comment outside a block.

    Inside a code span nothing is a link, an image, HTML or emphasis. `printable` keeps it on
    one line (a line break would end the heading it is in), and the span is opened and closed
    by more backticks than any run inside it, padded when the text starts or ends with one.
    """
    text = printable(text)
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" or (text[:1] == text[-1:] == " ") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def markdown(changes: list[ResourceDiff], base: str) -> str:
    """The diff as Markdown for a pull-request comment.

    Kinds, namespaces and names are whatever the manifests say, so everything that quotes them
    is code: names are inline code (`_code`), and each diff is a fenced block whose fence is
    longer than any run of backticks in it, so no line of the diff can close it. The diff's
    lines go through `printable_lines` too: no control or bidi character reaches the comment,
    and none of them is a workflow command when the Markdown is printed in a CI log.
    """
    if not changes:
        return f"No change to the rendered resources since {_code(base)}.\n"
    lines = [f"Rendered resources changed since {_code(base)}: {len(changes)}", ""]
    for change in changes:
        kind, namespace, name = change.key
        label = f"{kind} {namespace + '/' if namespace else ''}{name}"
        body = printable_lines(change.diff.rstrip("\n"))
        fence = "`" * max(3, _longest_backticks(body) + 1)
        lines += [
            f"#### {change.action}: {_code(label)}",
            "",
            f"{fence}diff",
            body,
            fence,
            "",
        ]
    return "\n".join(lines)
