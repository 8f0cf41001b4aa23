"""Push an edit's branch to a remote: never forced, with git's reason when it is refused."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from meshcanary.gitops.session import PUSH_TIMEOUT_SECONDS, GitError, gist, joined, opened


def push(root: Path, remote: str, branch: str) -> None:
    """Push `branch` to the same name on `remote` and set it as upstream; never forced.

    A rejected push (the branch there has other commits), an unknown remote and an
    unreachable remote are GitErrors with git's message; the local branch stays as it is.
    """
    with opened(root) as session:
        remotes = session.remotes()
        if remote not in remotes:
            known = f"known remotes: {', '.join(remotes)}" if remotes else "there are none"
            raise GitError(
                f"no git remote named {remote!r} ({known})",
                f"add it with `git remote add {remote} URL`, or choose another remote",
            )
        if session.rev(f"refs/heads/{branch}") is None:
            raise GitError(f"no local branch {branch!r} to push", "commit on it first")
        kept = f"your branch {branch} is kept as it is"
        # Full ref names on both sides and no leading "+": git refuses anything but a
        # fast-forward, whatever the branch is called.
        ref = f"refs/heads/{branch}"
        status, out, err = session.run(
            "push",
            "--set-upstream",
            "--",
            remote,
            f"{ref}:{ref}",
            timeout=PUSH_TIMEOUT_SECONDS,
            env={"GIT_TERMINAL_PROMPT": "0"},
        )
        if status == 0:
            return
        text = joined(err, out)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        refused = next((ln for ln in lines if ln.startswith("! [")), None)
        said = [ln[len("remote:") :].strip() for ln in lines if ln.startswith("remote:")]
        said = [ln for ln in said if ln]
        if refused and "[rejected]" in refused:
            raise GitError(
                f"{remote} refused {branch}: the branch there has commits this one does not "
                f"have ({refused})",
                f"someone pushed to {branch} first and meshcanary never force-pushes; {kept}: "
                f"compare with `git fetch {remote} {branch}`, then delete or rename yours and "
                "run again",
                text,
            )
        if refused:
            why = f" ({said[0]})" if said else ""
            raise GitError(
                f"{remote} rejected {branch}: {refused}{why}",
                f"the remote's rules (a hook, a protected branch) refused it; {kept}",
                text,
            )
        raise GitError(
            f"cannot push {branch} to {remote}: {_transport_gist(lines, status)}",
            f"check the remote's URL (`git remote get-url {remote}`) and your access; {kept}: "
            f"push it later with `git push -u {remote} {branch}`",
            text,
        )


def _transport_gist(lines: Sequence[str], status: int) -> str:
    # The transport (ssh, the dynamic linker of a helper) says why before git's own "fatal:".
    for line in lines:
        if not line.startswith(("hint:", "warning:", "Warning:", "remote:")):
            return line
    return f"git push exited with code {status}"


def pending_on_remote(root: Path, remote: str, branch: str) -> bool:
    """Whether `remote` has `branch` with commits HEAD does not have: a change pushed earlier
    whose pull request is not merged yet. A branch whose tip HEAD holds already (merged, and
    kept) is not pending: a new commit on it pushes as a fast-forward."""
    with opened(root) as session:
        ref = f"refs/heads/{branch}"
        environment = {"GIT_TERMINAL_PROMPT": "0"}
        status, out, err = session.run(
            "ls-remote", "--heads", "--", remote, ref, timeout=PUSH_TIMEOUT_SECONDS, env=environment
        )
        if status != 0:
            raise GitError(
                f"cannot list the branches of {remote}: {gist(err, out, status)}",
                f"check the remote's URL (`git remote get-url {remote}`) and your access",
                joined(err, out),
            )
        tips = [line.split("\t")[0] for line in out.splitlines() if line.endswith(f"\t{ref}")]
        if not tips:
            return False
        if session.run("cat-file", "-e", f"{tips[0]}^{{commit}}")[0] != 0:
            status, out, err = session.run(
                "fetch", "--quiet", "--no-tags", "--", remote, ref,
                timeout=PUSH_TIMEOUT_SECONDS, env=environment,
            )  # fmt: skip
            if status != 0:
                raise GitError(
                    f"cannot fetch {branch} from {remote}: {gist(err, out, status)}",
                    f"check the remote's URL (`git remote get-url {remote}`) and your access",
                    joined(err, out),
                )
        status, _, _ = session.run("merge-base", "--is-ancestor", tips[0], "HEAD")
        return status != 0
