"""The pull request's title and body, and the `$GITHUB_OUTPUT` lines a workflow reads.

Everything that goes into the pull request's title and body is treated as text someone else
wrote (environment folders, service and version names, images, branch names): code spans long
enough for any backticks inside, no line breaks in the title, `|` escaped in table cells.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshcanary.errors import MeshcanaryError


@dataclass(frozen=True)
class PullRequest:
    """What a traffic change did, for the pull request's title and body."""

    environment: str
    service: str
    before: dict[str, int]
    after: dict[str, int]
    images: dict[str, str]
    checks: list[tuple[str, str]]
    branch: str
    base_branch: str


# A name that reads the same in Markdown, a Mermaid chart and a shell: shown as it is.
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _shown(text: str) -> str:
    r"""`text` on one line: what is not printable (line breaks, control and format characters,
    such as a right-to-left override) written as its Python escape, `\n` or `\u202e`."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _code(text: str) -> str:
    """`text` as one Markdown code span, whatever backticks or spaces it holds.

    The fence is one backtick longer than the longest run inside; a space on each side keeps
    a leading or trailing backtick off the fence (CommonMark takes one such space off again).
    """
    text = _shown(text)
    if not text:
        return '`""`'
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padded = text.strip(" ") and (text[0] in "` " or text[-1] in "` ")
    return f"{fence} {text} {fence}" if padded else f"{fence}{text}{fence}"


def _name(text: str) -> str:
    """A version (or other) name in running Markdown: as it is when plain, else a code span."""
    return text if _PLAIN.fullmatch(text) else _code(text)


def _cell(markdown: str) -> str:
    # GFM splits a table row at every `|` not escaped, inside a code span too.
    return markdown.replace("|", "\\|")


def _label(text: str) -> str:
    """A name inside a Mermaid chart, where it sits between double quotes on one line."""
    return text if _PLAIN.fullmatch(text) else re.sub(r"[^A-Za-z0-9._ -]", "_", text) or "_"


def _versions(pr: PullRequest) -> list[str]:
    """Every version of the change, in the release file's order, removed ones where they were."""
    return [*pr.before, *(v for v in pr.after if v not in pr.before)]


def pr_title(pr: PullRequest) -> str:
    """`prod/micro-api: v2 30% -> 50%`: each version whose weight moved, added or removed.

    With two versions before and after, the first's move mirrors the second's, so only the
    second (the canary) is named. When no weight moved, the title gives the weights. One line,
    whatever the names hold.
    """
    parts: list[str] = []
    for version in _versions(pr):
        was, now = pr.before.get(version), pr.after.get(version)
        if was is None and now is not None:
            parts.append(f"{_shown(version)} added at {now}%")
        elif now is None:
            parts.append(f"{_shown(version)} removed")
        elif was != now:
            parts.append(f"{_shown(version)} {was}% -> {now}%")
    if len(pr.before) == 2 and list(pr.before) == list(pr.after) and len(parts) == 2:
        parts = parts[1:]
    if not parts:
        weights = ", ".join(f"{_shown(v)} {w}%" for v, w in pr.after.items())
        parts = [f"{weights} (weights unchanged)"]
    return f"{_shown(pr.environment)}/{_shown(pr.service)}: {', '.join(parts)}"


def _weight_cell(was: int | None, now: int | None) -> str:
    if was is None:
        return f"new → {now}%"
    if now is None:
        return f"{was}% → removed"
    return f"{was}% (unchanged)" if was == now else f"{was}% → {now}%"


# Okabe and Ito's colours, told apart with the common colour-vision deficiencies and on
# GitHub's light and dark backgrounds. The Nth version of a change (in `_versions` order) has
# the Nth colour in both charts, so a version reads as the same colour before and after.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#999999")
# Mermaid's pie has twelve colour slots, `pie1` to `pie12`; past them it starts over.
_PIE_SLOTS = 12


def _colours(versions: Sequence[str]) -> dict[str, str]:
    return {v: _PALETTE[i % len(_PALETTE)] for i, v in enumerate(versions)}


def _pie(heading: str, weights: Mapping[str, int], colours: Mapping[str, str]) -> list[str]:
    """A Mermaid pie of `weights`, each version in its colour from `colours`, 0% ones too.

    Mermaid does not colour slices in the order they are written: it sorts them by value,
    largest first, and hands out `pie1`, `pie2`... in that order (the newest also leaves
    slices under 1% out of the circle and gives them the next slots in its legend). Written
    here largest first, ties in the release's order and versions at 0% last, the slots
    follow the lines whichever Mermaid draws it; each chart then sets slot N to the colour of
    its Nth line. `showData` puts each value in the legend, so a version at 0% reads as 0.
    """
    if not any(weight > 0 for weight in weights.values()):
        return [f"{heading}: no version receives traffic.", ""]
    ranked = sorted(weights.items(), key=lambda item: -item[1])
    slots = ", ".join(
        f"'pie{slot}': '{colours[version]}'"
        for slot, (version, _) in enumerate(ranked[:_PIE_SLOTS], start=1)
    )
    return [
        "```mermaid",
        f"%%{{init: {{'themeVariables': {{{slots}}}}}}}%%",
        "pie showData",
        f"    title {heading}",
        *(f'    "{_label(version)}" : {weight}' for version, weight in ranked),
        "```",
        "",
    ]


def _revert(pr: PullRequest) -> list[str]:
    """How to undo the change: revert the pull request, or the commands that undo it.

    A command is offered only when it would change something (`set-weights` refuses weights
    that already are) and every word of it is plain, so pasting it runs nothing else. A
    version the change added is taken away again with `retire`; one it removed only a revert
    brings back.
    """
    added = [v for v in pr.after if v not in pr.before]
    removed = [v for v in pr.before if v not in pr.after]
    restorable = sum(pr.before.get(v, 0) for v in pr.after) == sum(pr.before.values())
    moved = any(pr.before.get(v, 0) != weight for v, weight in pr.after.items())
    commands: list[str] = []
    if pr.before and restorable and moved:
        weights = " ".join(f"{v}={pr.before.get(v, 0)}" for v in pr.after)
        commands.append(f"meshcanary set-weights {pr.environment} {pr.service} {weights}")
    if pr.before and restorable:
        commands += [f"meshcanary retire {pr.environment} {pr.service} {v}" for v in added]
    words = [pr.environment, pr.service, *pr.after]
    lines = ["Revert this pull request."]
    if commands and all(_PLAIN.fullmatch(w) for w in words):
        lines = [
            "Revert this pull request, or run "
            + ", then ".join(f"`{command}`" for command in commands)
            + "."
        ]
    if removed:
        lines.append(
            f"Only reverting the pull request brings back {', '.join(_name(v) for v in removed)}, "
            "which this change removes."
        )
    return lines


def pr_body(pr: PullRequest) -> str:
    """The pull request's Markdown: weights before → after, images, charts, checks, revert.

    Names, images and branches are text others wrote: each is a code span (or, when plain, as
    it is) that nothing inside can close, break a table row or start a heading with; the revert
    command is offered only when every word of it is plain, so pasting it runs nothing else.
    """
    versions = _versions(pr)
    lines = [
        f"Traffic change for {_code(pr.service)} in {_code(pr.environment)}: merging "
        f"{_code(pr.branch)} into {_code(pr.base_branch)} applies it.",
        "",
        "| version | weight (before → after) | image |",
        "|---|---|---|",
    ]
    for version in versions:
        image = pr.images.get(version)
        cells = [
            _name(version),
            _weight_cell(pr.before.get(version), pr.after.get(version)),
            _code(image) if image else "—",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    colours = _colours(versions)
    lines += ["", *_pie("Before", pr.before, colours), *_pie("After", pr.after, colours)]
    lines += ["### Checks", ""]
    lines += [f"- {_shown(name)}: {_shown(result)}" for name, result in pr.checks] or [
        "No checks ran."
    ]
    lines += ["", "### How to revert", "", *_revert(pr)]
    return "\n".join(lines) + "\n"


# --- GitHub Actions ----------------------------------------------------------------------

# What GitHub accepts as an output's name: a letter or `_`, then letters, digits, `-` or `_`.
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def write_github_output(path: Path, values: Mapping[str, str]) -> None:
    """Append `values` to the `$GITHUB_OUTPUT` file: `key=value`, or a heredoc when multi-line.

    A multi-line value is written as `key<<DELIMITER`, the value, and `DELIMITER`, with a
    delimiter that occurs nowhere in the value (`MESHCANARY_EOF`, else the first free
    `MESHCANARY_EOF_<n>`): no line of a value can end it early and start an output of its own,
    and the same values always give the same file.
    """
    chunks: list[str] = []
    for key, value in values.items():
        if not _OUTPUT_NAME.fullmatch(key):
            raise ValueError(f"{key!r} cannot be a GitHub Actions output name")
        if "\n" not in value and "\r" not in value:
            chunks.append(f"{key}={value}\n")
            continue
        delimiter = "MESHCANARY_EOF"
        count = 0
        while delimiter in value:
            count += 1
            delimiter = f"MESHCANARY_EOF_{count}"
        chunks.append(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
    try:
        # A file that does not end its last line would glue our first line onto it.
        lead = "\n" if path.exists() and _ends_without_newline(path) else ""
        with path.open("a", encoding="utf-8", newline="\n") as out:
            out.write(lead + "".join(chunks))
    except OSError as exc:
        raise MeshcanaryError(
            f"cannot write the GitHub Actions output file {path}: {exc.strerror or exc}"
        ) from None


def _ends_without_newline(path: Path) -> bool:
    with path.open("rb") as existing:
        existing.seek(0, os.SEEK_END)
        if existing.tell() == 0:
            return False
        existing.seek(-1, os.SEEK_END)
        return existing.read(1) != b"\n"
