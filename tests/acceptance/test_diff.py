"""`meshcanary diff`: rendered, per-resource differences between a git ref and the working tree."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from meshcanary.commands import diff
from meshcanary.problem import printable
from tests.support import commit_all


@pytest.fixture
def repo(example_repo: Path) -> Path:
    return commit_all(example_repo)


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_no_change_says_so(repo: Path, cli) -> None:
    outcome = cli("--repo", repo, "diff", "--format", "markdown")
    assert outcome.code == 0
    assert outcome.out == "No change to the rendered resources since `HEAD`.\n"


def test_weight_change_shows_only_the_virtual_service(repo: Path, cli) -> None:
    release = repo / "environments/prod/micro-api.yaml"
    _edit(release, "weight: 70}", "weight: 60}")
    _edit(release, "weight: 30}", "weight: 40}")
    assert cli("--repo", repo, "render").code == 0
    outcome = cli("--repo", repo, "diff", "--format", "markdown")
    assert outcome.code == 0
    assert outcome.out.startswith("Rendered resources changed since `HEAD`: 1\n")
    assert "#### changed: `VirtualService default/micro-api`" in outcome.out
    changed = [
        line for line in outcome.out.splitlines() if line.startswith(("+ ", "- ", "+  ", "-  "))
    ]
    assert changed == [
        "-      weight: 70",
        "+      weight: 60",
        "-      weight: 30",
        "+      weight: 40",
    ]


def test_image_change_and_new_version_show_their_deployments(repo: Path, cli) -> None:
    release = repo / "environments/staging/micro-api.yaml"
    _edit(
        release,
        "micro-api:1.3, replicas: 2, weight: 50}",
        "micro-api:1.4, replicas: 2, weight: 50}",
    )
    assert cli("--repo", repo, "render").code == 0
    outcome = cli("--repo", repo, "diff")
    assert outcome.code == 0
    assert "working tree: Deployment micro-staging/micro-api-v2" in outcome.out
    changed = [
        line.split(": ", 1)[-1]
        for line in outcome.out.splitlines()
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        "registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.3",
        "registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.4",
    ]
    assert "1 resource(s) differ from HEAD" in outcome.err


def test_removed_service_is_reported_as_removed(repo: Path, cli) -> None:
    (repo / "environments/dev/checkout.yaml").unlink()
    assert cli("--repo", repo, "render").code == 0
    outcome = cli("--repo", repo, "diff", "--format", "markdown")
    assert "#### removed: `Deployment micro-dev/checkout-v1`" in outcome.out
    assert "#### removed: `Service micro-dev/checkout`" in outcome.out


def test_unknown_ref_is_exit_2(repo: Path, cli) -> None:
    outcome = cli("--repo", repo, "diff", "--base", "no-such-branch")
    assert outcome.code == 2
    assert "Traceback" not in outcome.err


# --- hostile names in the Markdown ----------------------------------------------------------

# A kind and a name that try to leave the heading and the code block: a fence, an image, raw
# HTML, a link, table pipes, a terminal hyperlink and a bidi override.
HOSTILE_KIND = "Config```Map|x"
HOSTILE_NAME = (
    "evil\n```\n![x](http://evil/x.png)\n<img src=x onerror=alert(1)>\n"
    "[click](http://evil) www.evil.example |a|b|\n\x1b]8;;http://evil\x07\u202e"
)


def _blocks(text: str) -> list[Token]:
    """The Markdown as a CommonMark reader with GitHub's tables sees it."""
    return MarkdownIt("commonmark").enable("table").parse(text)


def _outline(tokens: list[Token]) -> list[str]:
    """The top-level blocks; and no link, image or HTML in any text outside code blocks."""
    for token in tokens:
        if token.type == "inline":
            assert {child.type for child in token.children or []} <= {"text", "code_inline"}
    return [token.type for token in tokens if token.level == 0 and token.nesting >= 0]


def _unsafe(text: str) -> list[str]:
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def test_hostile_names_stay_in_code(repo: Path, cli) -> None:
    overlay = repo / "deploy/overlays/prod/micro-api"
    config_map = {"apiVersion": "v1", "kind": HOSTILE_KIND, "metadata": {"name": HOSTILE_NAME}}
    (overlay / "extra.yaml").write_text(yaml.safe_dump(config_map), encoding="utf-8")
    _edit(
        overlay / "kustomization.yaml",
        "- virtualservice.yaml",
        "- virtualservice.yaml\n- extra.yaml",
    )
    outcome = cli("--repo", repo, "diff", "--format", "markdown")
    assert outcome.code == 0, outcome.err
    # A hand edit is what would be applied: compared as it is, and said so.
    assert outcome.err.startswith("deploy/overlays/ has 1 file(s) edited by hand"), outcome.err
    assert not _unsafe(outcome.out)
    tokens = _blocks(outcome.out)
    # Only the count line, one heading and one diff block: nothing broke out of either.
    assert _outline(tokens) == ["paragraph_open", "heading_open", "fence"]
    heading = tokens[4].children or []
    label = printable(f"{HOSTILE_KIND} default/{HOSTILE_NAME}")
    assert [(t.type, t.content) for t in heading] == [
        ("text", "added: "),
        ("code_inline", label),
    ]
    fence = tokens[6]
    assert fence.info == "diff"
    assert "+kind: Config```Map|x\n" in fence.content
    assert "+  name: " in fence.content


def test_markdown_fences_outlast_backticks_in_the_diff() -> None:
    change = diff.ResourceDiff(
        ("Kind", "ns", "`x`"), "changed", "--- a\n+++ b\n-````\n+```\n+\x1b[2J\n"
    )
    text = diff.markdown([change], "ref`s")
    assert text.splitlines() == [
        "Rendered resources changed since ``ref`s``: 1",
        "",
        "#### changed: `` Kind ns/`x` ``",
        "",
        "`````diff",
        "--- a",
        "+++ b",
        "-````",
        "+```",
        "+\\x1b[2J",
        "`````",
    ]
    assert _outline(_blocks(text)) == ["paragraph_open", "heading_open", "fence"]
    assert diff.markdown([], "`") == "No change to the rendered resources since `` ` ``.\n"


def test_a_release_file_edited_without_render_shows_its_change(repo: Path, cli) -> None:
    """Before, diff compared the stale overlays and said "0 resource(s) differ"."""
    release = repo / "environments/prod/micro-api.yaml"
    _edit(release, "weight: 70}", "weight: 60}")
    _edit(release, "weight: 30}", "weight: 40}")
    outcome = cli("--repo", repo, "diff")
    assert outcome.code == 0
    assert "-      weight: 70\n+      weight: 60\n" in outcome.out
    assert outcome.err.startswith("deploy/overlays/ is stale (2 file(s)): compared with what")
    assert "1 resource(s) differ from HEAD" in outcome.err
    # Nothing was written: the render happened in a scratch copy.
    assert "weight: 70" in (repo / "deploy/overlays/prod/micro-api/virtualservice.yaml").read_text()
