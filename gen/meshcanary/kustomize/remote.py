"""Remote kustomization entries: what looks like something kustomize would fetch, and which
fetches a run allows (see contain.py for why they are refused by default)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from meshcanary.problem import Location

# A ref, version or tag kustomize may pass to `git fetch`: never an option.
_SAFE_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]*")
_SAFE_URL = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[A-Za-z0-9._~/+-]*")
_QUERY_KEYS = frozenset({"ref", "version", "submodules"})


@dataclass(frozen=True)
class Remotes:
    """Which remote entries a build may fetch.

    None, unless the run allows remotes (`--allow-remote`, decided by whoever runs
    meshcanary) and the entry starts with a prefix the environment file lists: a pull request
    can edit the environment file, but not the command line CI runs.
    """

    allowed: bool = False
    prefixes: tuple[str, ...] = ()

    def admits(self, url: str) -> str:
        """Why `url` may not be fetched, or "" when it may."""
        if not self.allowed:
            return "remote entries are fetched only with --allow-remote"
        if not self.prefixes:
            return "no remoteBases prefix is listed in the environment file"
        base, _, query = url.partition("?")
        if not _SAFE_URL.fullmatch(base) or "/../" in base + "/" or "/./" in base + "/":
            return "only plain https URLs are fetched (letters, digits and . _ ~ / + - in the path)"
        if not any(url.startswith(prefix) for prefix in self.prefixes):
            return "it starts with none of the environment's remoteBases prefixes"
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
        if query and not pairs:
            return f"cannot read the query {json.dumps(query)}"
        for key, value in pairs:
            if key not in _QUERY_KEYS:
                return f"the query key {json.dumps(key)} is not one meshcanary passes on"
            if key == "submodules" and value not in ("true", "false"):
                return "submodules must be true or false"
            if key != "submodules" and not _SAFE_REF.fullmatch(value):
                return f"the {key} {json.dumps(value)} could be read as an option of git"
        return ""


NO_REMOTES = Remotes()


@dataclass(frozen=True)
class RemoteEntry:
    """An entry kustomize would fetch, and where it is written."""

    url: str
    location: Location


def looks_remote(entry: str) -> bool:
    """Whether kustomize could take `entry` for something to fetch rather than a local path.

    Broader than kustomize's own parsers (which change between releases): a scheme or an
    scp-like `host:` before the first slash, `//`, a query, `git@`, `_git/`, a `.git`
    component, or a well-known forge's name first.
    """
    first = entry.split("/", 1)[0]
    lowered = entry.lower()
    return (
        ":" in first
        or "@" in first
        or "//" in entry
        or "?" in entry
        or "_git/" in entry
        or re.search(r"\.git(?:/|$)", lowered) is not None
        or lowered.startswith(("github.com", "gitlab.com", "bitbucket.org", "git@"))
    )
