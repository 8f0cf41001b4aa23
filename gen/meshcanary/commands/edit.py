"""The edit commands: start, step, set-weights, promote, rollback, retire.

Each edit changes one release file (keeping every comment and the file's style), renders and
checks the result in a scratch copy of the environment, and only then writes the release file
and what it rendered there: the service's folder, in one swap (the whole environment only when
its own files change too). With --commit it commits exactly those paths on a branch named from
the environment, service and target, started from the base branch (the one the user is on, or
the one an earlier edit's branch started from) and left checked out; --push pushes it;
--pr-title/--pr-body write the PR text, and $GITHUB_OUTPUT gets branch, base and title.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from meshcanary.commands import EditOptions
from meshcanary.errors import InputError, MeshcanaryError
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS, GATEWAYS, HASHES_FILE, OVERLAYS
from meshcanary.names import is_dns_label
from meshcanary.problem import Problem, Severity
from meshcanary.release import edit, traffic
from meshcanary.release.load import load
from meshcanary.release.model import Release
from meshcanary.release.splice import EditRefused
from meshcanary.render import swap, tree
from meshcanary.report import Report

if TYPE_CHECKING:
    from meshcanary.analysis.decide import Decision
    from meshcanary.render.repository import RenderResult

# (release, its text) -> (new text, the weights before and after, a short target for names).
# A change the release cannot take raises EditRefused, which `apply` locates at the file.
Transform = Callable[[Release, str], tuple[str, traffic.WeightChange, str]]


@dataclass(frozen=True)
class EditResult:
    release: Release
    change: traffic.WeightChange
    message: str  # e.g. prod/micro-api: v2 30% -> 50%
    diff: str  # unified diff of the release file and the rendered files
    report: Report  # what check found in the edited copy
    written: bool
    paths: tuple[str, ...] = ()
    branch: str | None = None
    sha: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    base: str | None = None  # the branch `branch` started from, which its pull request targets
    pushed: str | None = None  # the remote `branch` was pushed to


def _release(root: Path, environment: str, service: str) -> Release:
    """The one release an edit changes, loaded alone: an environment may hold thousands."""
    folder = root / ENVIRONMENTS / environment
    known = sorted(
        p.name.removesuffix(".yaml")
        for p in folder.glob("*.yaml")
        if p.name != ENVIRONMENT_FILE and folder.is_dir()
    )
    if not is_dns_label(service) or service not in known:
        close = difflib.get_close_matches(service, known, n=1)
        listed = ", ".join(known[:5]) + (f" and {len(known) - 5} more" if len(known) > 5 else "")
        hint = f'did you mean "{close[0]}"?' if close else f"services: {listed or 'none'}"
        raise InputError(f'no release "{service}" in {ENVIRONMENTS}/{environment}/\n  hint: {hint}')
    (loaded,) = load(root, [environment], {environment: {service}})
    return loaded.releases[0]


def _leaves(root: Path, path: Path) -> bool:
    """Whether `path`, through symbolic links, is outside the repository at `root`."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real != top and not real.startswith(top.rstrip(os.sep) + os.sep)


def _scratch(root: Path, release: Release, target: Path) -> None:
    """What one service renders and checks from, copied to `target`.

    The environment file, the release file, the service's overlay and the environment's
    gateways (with the hash file, so the copies count as meshcanary's), and the base: an edit
    costs the same in an environment of three services or of three thousand.
    """
    env = release.environment.name
    copies = [
        f"{ENVIRONMENTS}/{env}/{ENVIRONMENT_FILE}",
        release.path,
        f"{OVERLAYS}/{env}/{HASHES_FILE}",
        f"{OVERLAYS}/{env}/{release.service}",
        f"{OVERLAYS}/{env}/{GATEWAYS}",
        release.base,
    ]
    for path in copies:
        source, destination = root / path, target / path
        try:
            # A link out of the repository is copied as a link, never followed: what it
            # names is not read, and the check in the copy refuses it as it would here.
            if _leaves(root, source) and not os.path.lexists(destination):
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(os.readlink(source), destination)
            elif source.is_dir() and not destination.exists():
                shutil.copytree(source, destination, symlinks=True)
            elif source.is_file():
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
        except (OSError, shutil.Error) as exc:
            # Changed under our feet (a base removed since it was read): nothing is written yet.
            raise InputError(f"cannot copy {path} to check the edit: {exc}") from None


def _service_changes(rendered: RenderResult, release: Release) -> list[tree.Plan]:
    """The scratch render's changes to the service's own files and the gateways, without
    the hash files: what a reviewer reads."""
    overlay = f"{OVERLAYS}/{release.environment.name}"
    mine = (f"{overlay}/{release.service}/", f"{overlay}/{GATEWAYS}/")
    return [
        tree.Plan(
            item.folder,
            {},
            tuple(
                c
                for c in item.changes
                if c.path.startswith(mine)
                and not tree.is_hash_file(c.path.removeprefix(f"{overlay}/"))
            ),
            (),
        )
        for item in rendered.plans
    ]


def apply(
    root: Path,
    environment: str,
    service: str,
    transform: Transform,
    *,
    options: EditOptions | None = None,
) -> EditResult:
    """Edit one release file, render, check, write, and optionally commit: under the lock."""
    from meshcanary.lock import exclusive

    with exclusive(root):
        return _apply(root, environment, service, transform, options or EditOptions())


def _apply(
    root: Path,
    environment: str,
    service: str,
    transform: Transform,
    options: EditOptions,
) -> EditResult:
    from meshcanary import check
    from meshcanary.render import repository

    release = _release(root, environment, service)
    overlay = f"{OVERLAYS}/{environment}"
    paths = (release.path, overlay)
    if options.commit and not options.dry_run:
        from meshcanary import gitops

        # Before the transform: after an edit that was killed before its commit, "commit or
        # stash the uncommitted changes" helps; "v2 is already at 40%" would mislead.
        gitops.preflight(root, list(paths), branch=options.branch)
        # Each edit's branch starts from the base: on an earlier edit's branch, go back first
        # and read the release as the base has it.
        if gitops.return_to_base(root).left is not None:
            release = _release(root, environment, service)
    source = root / release.path
    before = source.read_bytes().decode("utf-8")
    try:
        after, change, target = transform(release, before)
    except EditRefused as exc:
        raise InputError([Problem(release.source.location([]), exc.message)]) from None
    with tempfile.TemporaryDirectory(prefix="meshcanary-edit-") as folder:
        scratch = Path(folder)
        _scratch(root, release, scratch)
        (scratch / release.path).write_text(after, encoding="utf-8", newline="")
        rendered = repository.render(scratch, [environment], force=True)
        # Judged against HEAD, as the pre-commit hook and CI will judge it: no weight moves
        # more than the environment's maxStep in one change.
        judged = check.CheckOptions(
            base="HEAD",
            base_repository=root,
            base_changed=(release.path, f"{OVERLAYS}/{environment}/{service}"),
        )
        report = check.check(scratch, [release.path], judged)
    # The diff a reviewer will see: the release file, then the generated files.
    release_change = tree.Change(release.path, before, after)
    diff = tree.unified_diff([tree.Plan(overlay, {}, (release_change,), ())])
    diff += tree.unified_diff(_service_changes(rendered, release))
    message = f"{environment}/{service}: {change.describe()}"
    errors = report.at_least(Severity.ERROR)
    result = EditResult(release, change, message, diff, report, written=False, paths=paths)
    if options.dry_run or errors:
        return result
    # What the scratch copy rendered and checked is what is written here, not rendered again.
    # Hand edits in the service's own files stop the edit before anything is written; any
    # elsewhere in the environment, when it is rendered whole, stop that render, which then
    # puts the release back.
    repository.recover(root)
    update = repository.plan_service(root, rendered, service)
    if update.plan.conflicts and not options.force:
        raise InputError(list(update.plan.conflicts))
    swap.write_atomically(root, source, after)
    try:
        repository.write_service(root, update, force=options.force)
    except MeshcanaryError:
        # The folder (or the environment) was written whole or not at all (a full disk, a base
        # gone since the check): with the release file's old text back, the edit leaves
        # nothing behind.
        swap.write_atomically(root, source, before)
        raise
    result = EditResult(release, change, message, diff, report, written=True, paths=paths)
    if options.commit:
        result = _commit(root, result, target, options, before)
    return result


def _commit(
    root: Path, result: EditResult, target: str, options: EditOptions, before: str
) -> EditResult:
    from meshcanary import gitops
    from meshcanary.render import repository

    release = result.release
    environment, service = release.environment.name, release.service
    branch = options.branch or gitops.branch_name(environment, service, target)
    try:
        committed = gitops.commit(root, list(result.paths), result.message, branch, options.date)
    except gitops.GitError as exc:
        # Nothing was committed (a hook refused, git was locked): take the edit back as well,
        # or running the command again would be refused for uncommitted changes in its paths.
        kept = f"{release.path} and {OVERLAYS}/{environment}/ are as they were"
        try:
            swap.write_atomically(root, root / release.path, before)
            repository.render_service(root, environment, service)
        except MeshcanaryError as failed:
            kept = f"the edit stays uncommitted in the work tree ({failed.text.splitlines()[0]})"
        hint = (
            exc.hint.replace(gitops.FILES_KEPT, kept)
            if gitops.FILES_KEPT in exc.hint
            else "; ".join(filter(None, [exc.hint, kept]))
        )
        raise gitops.GitError(exc.message, hint, exc.output) from None
    title, body = _pr_text(result, committed.branch, committed.previous_branch, options.evidence)
    outputs = {"branch": committed.branch, "base": committed.previous_branch, "title": title}
    # Written before the push: after a failed one, the user pushes by hand and still has them.
    if options.pr_title:
        options.pr_title.write_text(title + "\n", encoding="utf-8")
    if options.pr_body:
        options.pr_body.write_text(body, encoding="utf-8")
        outputs["body-file"] = str(options.pr_body)
    if options.push:
        try:
            gitops.push(root, options.push, committed.branch)
        except gitops.GitError as exc:
            # The commit stands: say where it is, as the success line would have.
            where = (
                f"the edit is committed as {committed.sha[:12]} on {committed.branch} (from "
                f"{committed.previous_branch}), which is checked out"
            )
            raise gitops.GitError(
                exc.message, "; ".join(filter(None, [where, exc.hint])), exc.output
            ) from None
    if options.github_output:
        gitops.write_github_output(options.github_output, outputs)
    return EditResult(
        release,
        result.change,
        result.message,
        result.diff,
        result.report,
        written=True,
        paths=result.paths,
        branch=committed.branch,
        sha=committed.sha,
        extra=outputs,
        base=committed.previous_branch,
        pushed=options.push,
    )


def _pr_text(result: EditResult, branch: str, base: str, evidence: str) -> tuple[str, str]:
    """The pull request's title and body for an edit on `branch`, to merge into `base`."""
    from meshcanary import gitops

    release = result.release
    environment, service = release.environment.name, release.service
    # The release read before the edit has no image for a version the edit adds.
    images = {**{v.name: v.image for v in release.versions}, **result.change.images}
    checks = [
        ("render", "fresh"),
        ("kustomize build", "ok"),
        (
            "schemas and rules",
            "clean"
            if not result.report.problems
            else f"{len(result.report.problems)} finding(s), none an error",
        ),
    ]
    pull = gitops.PullRequest(
        environment=environment,
        service=service,
        before=dict(result.change.before),
        after=dict(result.change.after),
        images=images,
        checks=checks,
        branch=branch,
        base_branch=base,
    )
    title, body = gitops.pr_title(pull), gitops.pr_body(pull)
    if evidence:
        body = f"{body.rstrip()}\n\n{evidence}"
    return title, body


# Transforms ------------------------------------------------------------------------------


def set_weights(weights: dict[str, int]) -> Transform:
    def run(release: Release, text: str) -> tuple[str, traffic.WeightChange, str]:
        after = traffic.plan_set(release, weights)
        return _weights(release, text, after)

    return run


def step(to: int | None, next_step: bool) -> Transform:
    def run(release: Release, text: str) -> tuple[str, traffic.WeightChange, str]:
        after = traffic.plan_step(release, to=to, next_step=next_step)
        return _weights(release, text, after)

    return run


def promote() -> Transform:
    return lambda release, text: _weights(release, text, traffic.plan_promote(release))


def rollback() -> Transform:
    return lambda release, text: _weights(release, text, traffic.plan_rollback(release))


def _weights(
    release: Release, text: str, after: dict[str, int]
) -> tuple[str, traffic.WeightChange, str]:
    before = {v.name: v.weight for v in release.versions}
    change = traffic.WeightChange(before, after)
    canary = release.canary.name
    return edit.set_weights(text, after), change, f"{canary}-{after[canary]}"


def start(version: str, image: str, replicas: int | None, first_step: bool) -> Transform:
    def run(release: Release, text: str) -> tuple[str, traffic.WeightChange, str]:
        before = {v.name: v.weight for v in release.versions}
        after = traffic.plan_start(release, version, first_step)
        count: int | None = replicas
        if count is None and release.uses_istio:
            count = release.canary.replicas or 1
        text = edit.add_version(
            text, version, image, after[version], count if release.uses_istio else None
        )
        others = {k: v for k, v in after.items() if k != version}
        if others != before:
            text = edit.set_weights(text, others)
        change = traffic.WeightChange(before, after, images={version: image})
        return text, change, f"{version}-start"

    return run


def retire(version: str) -> Transform:
    def run(release: Release, text: str) -> tuple[str, traffic.WeightChange, str]:
        found = release.version(version)
        if found is None:
            raise InputError(f'{release.path}: no version "{version}"')
        if found.weight > 0:
            raise InputError(
                f'{release.path}: version "{version}" still gets {found.weight}% of the traffic; '
                "move it away first (rollback, promote or set-weights)"
            )
        if len(release.versions) == 1:
            raise InputError(f'{release.path}: "{version}" is the only version')
        before = {v.name: v.weight for v in release.versions}
        after = {k: w for k, w in before.items() if k != version}
        return (
            edit.remove_version(text, version),
            traffic.WeightChange(before, after),
            f"retire-{version}",
        )

    return run


def decided(decision: Decision) -> Transform:
    """What `analyze` decided for a release, refused when its weights changed since."""
    from meshcanary.analysis.decide import PROMOTE, ROLLBACK

    def run(release: Release, text: str) -> tuple[str, traffic.WeightChange, str]:
        if (release.canary.name, release.canary.weight) != (decision.canary, decision.weight):
            raise EditRefused(
                f"the analysis read {decision.canary} at {decision.weight}%, but the release "
                f"now has {release.canary.name} at {release.canary.weight}%; analyze again"
            )
        if decision.decision == ROLLBACK:
            return _weights(release, text, traffic.plan_rollback(release))
        if decision.decision == PROMOTE:
            return _weights(release, text, traffic.plan_promote(release))
        return _weights(release, text, traffic.plan_step(release, to=decision.target))

    return run


@dataclass(frozen=True)
class Advanced:
    """One decision of `advance`, and the edit that carried it out (None: it holds).

    `waiting`: the branch of this very change is on the remote with commits the base lacks
    (its pull request is not merged yet): nothing is committed again, and the body is written
    afresh, with the new evidence, for the pull request to be opened or updated. `error`: why
    the edit failed; the other services' are carried out all the same.
    """

    decision: Decision
    result: EditResult | None
    pr_body: Path | None = None
    waiting: str | None = None
    title: str | None = None
    error: str | None = None


def _target(decision: Decision) -> int:
    from meshcanary.analysis.decide import PROMOTE, ROLLBACK

    if decision.decision == ROLLBACK:
        return 0
    return 100 if decision.decision == PROMOTE else decision.target or 0


def advance(
    root: Path,
    decisions: Sequence[Decision],
    options: EditOptions,
    *,
    rollback_direct: bool = False,
    several_bodies: bool = False,
) -> list[Advanced]:
    """Carry out each decision that changes weights, one edit (and branch) per service.

    `several_bodies`: the PR body path names a file per service (`<stem>-<service><suffix>`).
    `rollback_direct`: a rollback is committed on the base branch itself, and pushed there.
    A service whose edit fails (refused, a hook, a push the remote rejects) says why in its
    `error`; the next one is carried out all the same.
    """
    from meshcanary.analysis.decide import ADVANCE, PROMOTE, ROLLBACK

    done: list[Advanced] = []
    for decision in decisions:
        if decision.decision not in (ADVANCE, PROMOTE, ROLLBACK):
            done.append(Advanced(decision, None))
            continue
        body = options.pr_body
        if body is not None and several_bodies:
            body = body.with_name(f"{body.stem}-{decision.service}{body.suffix}")
        try:
            done.append(_advance_one(root, decision, options, body, rollback_direct))
        except MeshcanaryError as exc:
            done.append(Advanced(decision, None, error=exc.text.splitlines()[0]))
    return done


def _advance_one(
    root: Path, decision: Decision, options: EditOptions, body: Path | None, direct: bool
) -> Advanced:
    from meshcanary import gitops
    from meshcanary.analysis.decide import ROLLBACK
    from meshcanary.analysis.output import evidence

    chosen = dataclasses.replace(options, pr_body=body, evidence=evidence(decision))
    change = decided(decision)
    if decision.decision == ROLLBACK and direct and options.commit:
        chosen = dataclasses.replace(chosen, branch=gitops.return_to_base(root).branch)
    elif options.commit and options.push and not options.dry_run:
        target = f"{decision.canary}-{_target(decision)}"
        branch = options.branch or gitops.branch_name(
            decision.environment, decision.service, target
        )
        base = gitops.return_to_base(root).branch
        if gitops.pending_on_remote(root, options.push, branch):
            dry = dataclasses.replace(chosen, dry_run=True, commit=False, push=None)
            result = apply(root, decision.environment, decision.service, change, options=dry)
            title, text = _pr_text(result, branch, base, dry.evidence)
            if body is not None:
                body.write_text(text, "utf-8")
            return Advanced(decision, result, body, waiting=branch, title=title)
    result = apply(root, decision.environment, decision.service, change, options=chosen)
    kept = body if options.commit else None
    return Advanced(decision, result, kept, title=result.extra.get("title"))
