"""A release file's `ignore: {rule-id: reason}` silences a rule for every object of its
service, as the `meshcanary.dev/ignore` annotation does for one object."""

from __future__ import annotations

import json
from pathlib import Path

RELEASE = "environments/prod/micro-api.yaml"
OTHER = "environments/prod/checkout.yaml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _check(repo: Path, cli) -> tuple[int, list[dict]]:
    rendered = cli("--repo", repo, "render")
    assert rendered.code == 0, rendered.err
    outcome = cli("--repo", repo, "check", "--no-cache", "--format", "json")
    assert outcome.code in (0, 1), outcome.err
    return outcome.code, json.loads(outcome.out)["findings"]


def _latest(repo: Path) -> None:
    """Both prod services run a `latest` image: a mutable-image-tag finding each."""
    _edit(repo / RELEASE, "micro-api:1.3,", "micro-api:latest,")
    text = (repo / OTHER).read_text(encoding="utf-8")
    image = next(line for line in text.splitlines() if "image:" in line)
    tag = image.split("image: ")[1].split(",")[0].rsplit(":", 1)[1]
    _edit(repo / OTHER, f":{tag},", ":latest,")


def test_ignore_silences_the_rule_on_its_service_only(example_repo: Path, cli) -> None:
    _latest(example_repo)
    code, found = _check(example_repo, cli)
    files = sorted(f["file"] for f in found if f["rule"] == "mutable-image-tag")
    assert (code, files) == (0, [OTHER, RELEASE])  # both (warnings), before the ignore

    _edit(
        example_repo / RELEASE,
        "versions:",
        "ignore:\n  mutable-image-tag: prod follows the vendor's rolling tag until it pins one\n"
        "versions:",
    )
    code, found = _check(example_repo, cli)
    assert [f["file"] for f in found if f["rule"] == "mutable-image-tag"] == [OTHER]


def test_ignore_without_the_finding_changes_nothing(example_repo: Path, cli) -> None:
    _edit(
        example_repo / RELEASE, "versions:", "ignore: {mutable-image-tag: vendor tags}\nversions:"
    )
    code, found = _check(example_repo, cli)
    assert (code, found) == (0, [])


def test_an_unknown_rule_in_ignore_is_named_at_its_key(example_repo: Path, cli) -> None:
    _edit(
        example_repo / RELEASE, "versions:", "ignore:\n  mutable-image-tags: vendor tags\nversions:"
    )
    code, found = _check(example_repo, cli)
    (finding,) = found
    lines = (example_repo / RELEASE).read_text(encoding="utf-8").splitlines()
    line = lines.index("  mutable-image-tags: vendor tags") + 1
    assert (code, finding["rule"], finding["file"], finding["line"], finding["column"]) == (
        1,
        "suppression-reason",
        RELEASE,
        line,
        3,
    )
    assert "unknown rule 'mutable-image-tags'" in finding["message"]
    assert finding["hint"] == "did you mean 'mutable-image-tag'?"


def test_an_ignore_without_a_reason_is_an_error_at_its_key(example_repo: Path, cli) -> None:
    _edit(example_repo / RELEASE, "versions:", 'ignore:\n  mutable-image-tag: " "\nversions:')
    outcome = cli("--repo", example_repo, "render")
    lines = (example_repo / RELEASE).read_text(encoding="utf-8").splitlines()
    line = lines.index('  mutable-image-tag: " "') + 1
    assert outcome.code == 2
    assert outcome.err.startswith(
        f'{RELEASE}:{line}:22: error: ignore: "mutable-image-tag" gives no reason\n'
    )
    assert "hint: write why micro-api is an exception: mutable-image-tag: <reason>" in outcome.err
