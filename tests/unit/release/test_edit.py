"""Round-trip edits of release files: only the intended characters change, byte for byte.

Every expected text is the input edited by hand (string replacement in the test), never the
output of the code under test; the result must still load and pass the release schema.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from meshcanary.release import edit, schema, traffic
from meshcanary.release.load import load
from meshcanary.release.model import Release, Version
from meshcanary.release.splice import EditRefused
from meshcanary.source import load_mapping
from tests.support import ROOT


def _one_line_versions(path: Path) -> bool:
    """Whether each version of the file is written on one line (`v1: {image: ...}`): the
    expectations below are computed line by line. Block-style versions (a version with a
    patch) are covered by BLOCK and the patch tests (test_patch_edits.py)."""
    versions = yaml.safe_load(path.read_text(encoding="utf-8"))["versions"]
    text = path.read_text(encoding="utf-8")
    return all(f"  {name}: {{" in text for name in versions)


EXAMPLES = sorted(
    p
    for p in (ROOT / "environments").glob("*/*.yaml")
    if p.name != "environment.yaml" and _one_line_versions(p)
)
NEW_IMAGE = "registry.example/micro-api:9.9"


def parsed(text: str, folder: Path, name: str = "micro-api.yaml") -> dict[str, Any]:
    """The file's data as meshcanary's loader reads it; asserts the release schema holds."""
    path = folder / name
    path.write_bytes(text.encode("utf-8"))
    doc = load_mapping(path, name)
    assert schema.check("release", doc) == [], text
    return doc.data


def version_weights(data: dict[str, Any]) -> dict[str, int]:
    return {name: spec["weight"] for name, spec in data["versions"].items()}


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, (old, text)
    return text.replace(old, new)


def assert_set_weights(
    text: str, changes: list[tuple[str, str]], weights: dict[str, int], folder: Path
) -> None:
    """`set_weights(text, weights)` is `text` with each (old, new) of `changes` replaced once,
    and it loads with those weights."""
    expected = text
    for old, new in changes:
        expected = replace_once(expected, old, new)
    result = edit.set_weights(text, weights)
    assert result == expected
    assert version_weights(parsed(result, folder)) == weights


def with_line_edited(text: str, starts: str, old: str, new: str) -> str:
    """`text` with `old` replaced by `new` in the one line that starts with `starts`."""
    lines = text.splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.lstrip(" ").startswith(starts)]
    assert len(found) == 1, (starts, text)
    line = lines[found[0]]
    assert line.count(old) == 1, (old, line)
    lines[found[0]] = line.replace(old, new)
    return "".join(lines)


def without_line(text: str, starts: str) -> str:
    lines = text.splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.lstrip(" ").startswith(starts)]
    assert len(found) == 1, (starts, text)
    del lines[found[0]]
    return "".join(lines)


def with_line_after(text: str, starts: str, new_line: str) -> str:
    lines = text.splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.lstrip(" ").startswith(starts)]
    assert len(found) == 1, (starts, text)
    lines.insert(found[0] + 1, new_line)
    return "".join(lines)


# --- the example release files ----------------------------------------------------------------


@pytest.fixture(params=EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def example(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str, dict[str, Any]]:
    path: Path = request.param
    text = path.read_text(encoding="utf-8")
    return path, text, parsed(text, tmp_path)


def _reloads_in_repo(tmp_path: Path, example_path: Path, text: str) -> Release:
    """The edited file, put back into a copy of the repository, loads with the whole loader."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "environments", repo / "environments")
    shutil.copytree(ROOT / "deploy" / "base", repo / "deploy" / "base")
    relative = example_path.relative_to(ROOT)
    (repo / relative).write_bytes(text.encode("utf-8"))
    (loaded,) = load(repo, [example_path.parent.name])
    return next(r for r in loaded.releases if r.path == relative.as_posix())


def test_set_weights_on_every_example(example: Any, tmp_path: Path) -> None:
    path, text, data = example
    old = version_weights(data)
    names = list(old)
    new = {name: 0 for name in names}
    new[names[-1] if old[names[-1]] != 100 else names[0]] = 100
    expected = text
    for name in names:
        expected = with_line_edited(
            expected, f"{name}: {{", f"weight: {old[name]}}}", f"weight: {new[name]}}}"
        )
    result = edit.set_weights(text, new)
    assert result == expected
    assert version_weights(parsed(result, tmp_path)) == new
    release = _reloads_in_repo(tmp_path, path, result)
    assert traffic.weights(release) == new


def test_unchanged_weights_leave_every_example_as_it_is(example: Any) -> None:
    _, text, data = example
    assert edit.set_weights(text, version_weights(data)) == text


def test_set_image_on_every_example(example: Any, tmp_path: Path) -> None:
    _, text, data = example
    name, spec = list(data["versions"].items())[-1]
    expected = with_line_edited(
        text, f"{name}: {{", f"image: {spec['image']},", f"image: {NEW_IMAGE},"
    )
    result = edit.set_image(text, name, NEW_IMAGE)
    assert result == expected
    assert parsed(result, tmp_path)["versions"][name]["image"] == NEW_IMAGE


def test_set_replicas_on_every_example(example: Any, tmp_path: Path) -> None:
    _, text, data = example
    name, spec = next(iter(data["versions"].items()))
    if "replicas" in spec:
        old = spec["replicas"]
        expected = with_line_edited(
            text, f"{name}: {{", f"replicas: {old},", f"replicas: {old + 1},"
        )
    else:  # method: replicas files: the field is added after the image, in FIELD_ORDER
        old = None
        expected = with_line_edited(
            text, f"{name}: {{", f"{spec['image']}, ", f"{spec['image']}, replicas: 1, "
        )
    result = edit.set_replicas(text, name, 1 if old is None else old + 1)
    assert result == expected
    assert parsed(result, tmp_path)["versions"][name]["replicas"] == (1 if old is None else old + 1)


def test_add_and_remove_a_version_on_every_example(example: Any, tmp_path: Path) -> None:
    path, text, data = example
    last = list(data["versions"])[-1]
    has_replicas = "replicas" in data["versions"][last]
    replicas = 2 if has_replicas else None
    field = ", replicas: 2" if has_replicas else ""
    expected = with_line_after(
        text, f"{last}: {{", f"  v9: {{image: {NEW_IMAGE}{field}, weight: 0}}\n"
    )
    added = edit.add_version(text, "v9", NEW_IMAGE, 0, replicas)
    assert added == expected
    assert list(parsed(added, tmp_path)["versions"]) == [*data["versions"], "v9"]
    assert _reloads_in_repo(tmp_path, path, added).canary.name == "v9"
    # Removing what was added gives back the original, byte for byte.
    assert edit.remove_version(added, "v9") == text


def test_remove_the_stable_version_of_every_example(example: Any, tmp_path: Path) -> None:
    path, text, data = example
    names = list(data["versions"])
    first, last = names[0], names[-1]
    weights = version_weights(data)
    moved = {first: 0, last: weights[last] + weights[first]}
    shifted = edit.set_weights(text, moved)
    result = edit.remove_version(shifted, first)
    assert result == without_line(shifted, f"{first}: {{")
    assert list(parsed(result, tmp_path)["versions"]) == names[1:]
    assert traffic.weights(_reloads_in_repo(tmp_path, path, result))[last] == moved[last]


# --- hand-written files in every style --------------------------------------------------------

COMMENTED = """\
# yaml-language-server: $schema=../../schemas/release.schema.json
# micro-api, with comments everywhere
service: micro-api   # the service
base: deploy/base/micro-api

# the versions, stable first
versions:   # ordered
  # stable
  v1: {image: registry.example/micro-api:1.1, replicas: 3, weight: 70}  # stable

  # the canary
  v2: {image: registry.example/micro-api:1.3, replicas: 3, weight: 30}  # canary	(tab)
# end of versions
canary: {steps: [10, 25, 50, 100]}  # the plan
"""

BLOCK = """\
service: micro-api
base: deploy/base/micro-api
versions:
  v1:
    image: registry.example/micro-api:1.1
    replicas: 3
    weight: 70
  v2:
    image: registry.example/micro-api:1.3
    replicas: 3
    weight: 30
"""

BLOCK_COMMENTED = """\
service: micro-api
versions:
    # stable: v1
    v1:
        image: "registry.example/micro-api:1.1"   # pinned
        replicas: 3       # three pods
        weight:    70     # most of the traffic

    # the canary
    v2:   # v2
        # the image under test
        image: 'registry.example/micro-api:1.3'
        replicas: 1
        weight:    30
        # raised step by step
base: deploy/base/micro-api
"""

FLOW_VERSIONS = """\
service: micro-api
base: deploy/base/micro-api
versions: {v1: {image: registry.example/micro-api:1.1, replicas: 3, weight: 70}, v2: {image: registry.example/micro-api:1.3, replicas: 3, weight: 30}}
"""

SPACED = """\
service: micro-api
base: deploy/base/micro-api
versions:
  v1:   { image: registry.example/micro-api:1.1 ,  replicas:  3 ,  weight:    70 }
  v2:   { image: registry.example/micro-api:1.3 ,  replicas:  3 ,  weight:    30 }
"""


@pytest.mark.parametrize(
    ("text", "changes", "weights"),
    [
        pytest.param(
            BLOCK,
            [("weight: 70", "weight: 45"), ("weight: 30", "weight: 55")],
            {"v1": 45, "v2": 55},
            id="in-a-block-release",
        ),
        pytest.param(
            SPACED,
            [("weight:    70 }", "weight:    100 }"), ("weight:    30 }", "weight:    0 }")],
            {"v1": 100, "v2": 0},
            id="with-unusual-spacing",
        ),
        pytest.param(
            FLOW_VERSIONS,
            [("weight: 70}", "weight: 20}"), ("weight: 30}", "weight: 80}")],
            {"v1": 20, "v2": 80},
            id="in-a-flow-versions-mapping",
        ),
    ],
)
def test_set_weights(
    tmp_path: Path, text: str, changes: list[tuple[str, str]], weights: dict[str, int]
) -> None:
    assert_set_weights(text, changes, weights, tmp_path)


def test_set_weights_keeps_comments_everywhere(tmp_path: Path) -> None:
    expected = replace_once(COMMENTED, "weight: 70}", "weight: 50}")
    expected = replace_once(expected, "weight: 30}", "weight: 50}")
    assert edit.set_weights(COMMENTED, {"v1": 50, "v2": 50}) == expected
    assert_set_weights(
        BLOCK_COMMENTED,
        [("weight:    70 ", "weight:    5 "), ("weight:    30\n", "weight:    95\n")],
        {"v1": 5, "v2": 95},
        tmp_path,
    )


def test_quoted_weights_become_integers(tmp_path: Path) -> None:
    # A quoted number is a string, which the schema refuses: the edit writes an integer.
    quoted = replace_once(COMMENTED, "weight: 70}", 'weight: "70"}')
    quoted = replace_once(quoted, "weight: 30}", "weight: '30'}")
    assert_set_weights(
        quoted,
        [('weight: "70"}', "weight: 60}"), ("weight: '30'}", "weight: 40}")],
        {"v1": 60, "v2": 40},
        tmp_path,
    )
    # The same value as a string still changes: "70" is not the integer 70.
    assert edit.set_weights(quoted, {"v1": 70}) == replace_once(quoted, '"70"', "70")


def test_a_tagged_quoted_weight_keeps_its_quotes(tmp_path: Path) -> None:
    tagged = replace_once(BLOCK, "weight: 70", 'weight: !!int "70"')
    assert_set_weights(
        tagged,
        [('!!int "70"', '!!int "65"'), ("weight: 30", "weight: 35")],
        {"v1": 65, "v2": 35},
        tmp_path,
    )


def test_crlf_line_endings_stay(tmp_path: Path) -> None:
    crlf = COMMENTED.replace("\n", "\r\n")
    assert_set_weights(
        crlf,
        [("weight: 70}", "weight: 10}"), ("weight: 30}", "weight: 90}")],
        {"v1": 10, "v2": 90},
        tmp_path,
    )
    block = BLOCK_COMMENTED.replace("\n", "\r\n")
    added = edit.add_version(block, "v3", NEW_IMAGE, 0, 1)
    assert added == replace_once(
        block,
        "        # raised step by step\r\n",
        "        # raised step by step\r\n"
        "    v3:\r\n"
        f"        image: '{NEW_IMAGE}'\r\n"
        "        replicas: 1\r\n"
        "        weight: 0\r\n",
    )
    assert "\n" not in added.replace("\r\n", "")
    assert list(parsed(added, tmp_path)["versions"]) == ["v1", "v2", "v3"]


def test_a_byte_order_mark_stays(tmp_path: Path) -> None:
    bom = "\ufeff" + COMMENTED
    expected = "\ufeff" + replace_once(COMMENTED, "registry.example/micro-api:1.3", NEW_IMAGE)
    result = edit.set_image(bom, "v2", NEW_IMAGE)
    assert result == expected
    assert parsed(result, tmp_path)["versions"]["v2"]["image"] == NEW_IMAGE
    both = "\ufeff" + BLOCK.replace("\n", "\r\n")
    expected = "\ufeff" + replace_once(BLOCK, "weight: 70", "weight: 0").replace("\n", "\r\n")
    expected = replace_once(expected, "weight: 30", "weight: 100")
    assert edit.set_weights(both, {"v1": 0, "v2": 100}) == expected


def test_set_image_keeps_the_quoting(tmp_path: Path) -> None:
    result = edit.set_image(BLOCK_COMMENTED, "v1", NEW_IMAGE)
    assert result == replace_once(
        BLOCK_COMMENTED, '"registry.example/micro-api:1.1"', f'"{NEW_IMAGE}"'
    )
    result = edit.set_image(BLOCK_COMMENTED, "v2", NEW_IMAGE)
    assert result == replace_once(
        BLOCK_COMMENTED, "'registry.example/micro-api:1.3'", f"'{NEW_IMAGE}'"
    )
    assert parsed(result, tmp_path)["versions"]["v2"]["image"] == NEW_IMAGE


def test_an_image_that_cannot_stand_plain_is_quoted(tmp_path: Path) -> None:
    # Not a valid image, but the text must still read back as exactly what was set.
    for odd in ("a, b: c", "x #y", "@at", "1.5", "true"):
        for text in (COMMENTED, BLOCK):
            result = edit.set_image(text, "v1", odd)
            expected = replace_once(text, "registry.example/micro-api:1.1", f'"{odd}"')
            assert result == expected
            path = tmp_path / "odd.yaml"
            path.write_text(result, encoding="utf-8")
            assert load_mapping(path, "odd.yaml").data["versions"]["v1"]["image"] == odd


def test_set_replicas_in_block_and_flow(tmp_path: Path) -> None:
    assert edit.set_replicas(BLOCK, "v2", 7) == replace_once(
        BLOCK, "replicas: 3\n    weight: 30", "replicas: 7\n    weight: 30"
    )
    assert edit.set_replicas(SPACED, "v1", 12) == replace_once(
        SPACED, "replicas:  3 ,  weight:    70", "replicas:  12 ,  weight:    70"
    )
    # A block version without replicas gets the line after its image, at its indentation.
    no_replicas = BLOCK.replace("    replicas: 3\n", "")
    result = edit.set_replicas(no_replicas, "v1", 2)
    assert result == replace_once(
        no_replicas,
        "micro-api:1.1\n",
        "micro-api:1.1\n    replicas: 2\n",
    )
    assert parsed(result, tmp_path)["versions"]["v1"]["replicas"] == 2
    # An empty value is filled in after its colon.
    empty = replace_once(BLOCK, "replicas: 3\n    weight: 70", "replicas:\n    weight: 70")
    assert edit.set_replicas(empty, "v1", 4) == BLOCK.replace(
        "replicas: 3\n    weight: 70", "replicas: 4\n    weight: 70"
    )


def test_add_version_in_block_style(tmp_path: Path) -> None:
    result = edit.add_version(BLOCK, "v3", NEW_IMAGE, 0, 1)
    assert result == BLOCK + f"  v3:\n    image: {NEW_IMAGE}\n    replicas: 1\n    weight: 0\n"
    assert parsed(result, tmp_path)["versions"]["v3"] == {
        "image": NEW_IMAGE,
        "replicas": 1,
        "weight": 0,
    }
    # The new entry goes after the comment lines indented under the last entry, with the
    # last entry's indentation and the quoting of its image; without replicas when None.
    result = edit.add_version(BLOCK_COMMENTED, "v3", NEW_IMAGE, 10, None)
    assert result == replace_once(
        BLOCK_COMMENTED,
        "        # raised step by step\n",
        f"        # raised step by step\n    v3:\n        image: '{NEW_IMAGE}'\n        weight: 10\n",
    )
    assert parsed(result, tmp_path)["versions"]["v3"] == {"image": NEW_IMAGE, "weight": 10}


def test_add_version_in_flow_style(tmp_path: Path) -> None:
    result = edit.add_version(COMMENTED, "v3", NEW_IMAGE, 0, 2)
    assert result == replace_once(
        COMMENTED,
        "# canary\t(tab)\n",
        f"# canary\t(tab)\n  v3: {{image: {NEW_IMAGE}, replicas: 2, weight: 0}}\n",
    )
    assert list(parsed(result, tmp_path)["versions"]) == ["v1", "v2", "v3"]
    # Spacing inside the braces follows the entry before.
    result = edit.add_version(SPACED, "v3", NEW_IMAGE, 0, 2)
    assert result == SPACED + f"  v3: {{ image: {NEW_IMAGE} ,  replicas: 2 ,  weight: 0 }}\n"
    # A flow mapping of versions gets one more pair.
    result = edit.add_version(FLOW_VERSIONS, "v3", NEW_IMAGE, 0, 2)
    assert result == replace_once(
        FLOW_VERSIONS,
        "weight: 30}}",
        f"weight: 30}}, v3: {{image: {NEW_IMAGE}, replicas: 2, weight: 0}}}}",
    )
    assert list(parsed(result, tmp_path)["versions"]) == ["v1", "v2", "v3"]


def test_add_version_at_the_end_of_a_file_without_a_final_line_break(tmp_path: Path) -> None:
    text = BLOCK.rstrip("\n")
    result = edit.add_version(text, "v3", NEW_IMAGE, 0, 1)
    assert result == text + f"\n  v3:\n    image: {NEW_IMAGE}\n    replicas: 1\n    weight: 0"
    assert edit.remove_version(result, "v3") == text
    line = (
        COMMENTED.rstrip("\n")
        .replace("# end of versions\ncanary: {steps: [10, 25, 50, 100]}  # the plan", "")
        .rstrip("\n")
    )
    result = edit.add_version(line, "v3", NEW_IMAGE, 0, 1)
    assert result == line + f"\n  v3: {{image: {NEW_IMAGE}, replicas: 1, weight: 0}}"
    assert list(parsed(result, tmp_path)["versions"]) == ["v1", "v2", "v3"]


def test_remove_version_takes_its_heading_comment_when_a_blank_line_sets_it_apart(
    tmp_path: Path,
) -> None:
    text = edit.set_weights(COMMENTED, {"v1": 100, "v2": 0})
    result = edit.remove_version(text, "v2")
    expected = without_line(without_line(text, "# the canary"), "v2: {")
    assert result == expected
    assert version_weights(parsed(result, tmp_path)) == {"v1": 100}


def test_remove_version_keeps_a_comment_right_under_versions(tmp_path: Path) -> None:
    # `# stable` may be about the list as well as about v1: it stays.
    text = edit.set_weights(COMMENTED, {"v1": 0, "v2": 100})
    result = edit.remove_version(text, "v1")
    assert result == without_line(text, "v1: {")
    assert "  # stable\n" in result
    assert version_weights(parsed(result, tmp_path)) == {"v2": 100}


def test_remove_version_keeps_a_comment_right_under_the_previous_entry() -> None:
    text = """\
versions:
  v1: {image: registry.example/micro-api:1.1, replicas: 3, weight: 100}
  # is this about v1 or v2?
  v2: {image: registry.example/micro-api:1.3, replicas: 3, weight: 0}
"""
    assert edit.remove_version(text, "v2") == without_line(text, "v2: {")


def test_remove_a_block_version_with_its_comments(tmp_path: Path) -> None:
    text = edit.set_weights(BLOCK_COMMENTED, {"v1": 100, "v2": 0})
    result = edit.remove_version(text, "v2")
    start = text.index("    # the canary\n")
    end = text.index("base: deploy")
    assert result == text[:start] + text[end:]
    assert version_weights(parsed(result, tmp_path)) == {"v1": 100}
    text = edit.set_weights(BLOCK_COMMENTED, {"v1": 0, "v2": 100})
    result = edit.remove_version(text, "v1")
    start = text.index("    v1:\n")
    end = text.index("\n\n    # the canary") + 1  # the blank line stays
    assert result == text[:start] + text[end:]
    assert "# stable: v1" in result  # right under versions:, so it stays
    assert version_weights(parsed(result, tmp_path)) == {"v2": 100}


def test_remove_a_version_from_a_flow_versions_mapping(tmp_path: Path) -> None:
    text = edit.set_weights(FLOW_VERSIONS, {"v1": 100, "v2": 0})
    result = edit.remove_version(text, "v2")
    start = text.index(", v2:")
    end = text.index("}}") + 1
    assert result == text[:start] + text[end:]
    assert version_weights(parsed(result, tmp_path)) == {"v1": 100}
    text = edit.set_weights(FLOW_VERSIONS, {"v1": 0, "v2": 100})
    result = edit.remove_version(text, "v1")
    assert result == text[: text.index("v1:")] + text[text.index("v2:") :]
    assert version_weights(parsed(result, tmp_path)) == {"v2": 100}


def test_remove_version_with_crlf_and_a_bom(tmp_path: Path) -> None:
    text = "\ufeff" + edit.set_weights(COMMENTED, {"v1": 100, "v2": 0}).replace("\n", "\r\n")
    result = edit.remove_version(text, "v2")
    expected = without_line(without_line(text, "# the canary"), "v2: {")
    assert result == expected
    assert version_weights(parsed(result, tmp_path)) == {"v1": 100}


# --- refusals ---------------------------------------------------------------------------------


def test_unknown_versions_are_named() -> None:
    with pytest.raises(EditRefused, match=r'unknown version "v3" \(the release has v1, v2\)'):
        edit.set_weights(COMMENTED, {"v1": 100, "v3": 0})
    with pytest.raises(EditRefused, match='"v7"'):
        edit.set_image(BLOCK, "v7", NEW_IMAGE)
    with pytest.raises(EditRefused, match='"v7"'):
        edit.set_replicas(BLOCK, "v7", 1)
    with pytest.raises(EditRefused, match='"v7"'):
        edit.remove_version(BLOCK, "v7")


@pytest.mark.parametrize("weight", [-1, 101, True, 2.5, "50"])
def test_weights_out_of_range_are_refused(weight: Any) -> None:
    with pytest.raises(EditRefused, match="whole number from 0 to 100"):
        edit.set_weights(BLOCK, {"v1": weight})


def test_bad_replicas_and_images_are_refused() -> None:
    with pytest.raises(EditRefused, match="replicas"):
        edit.set_replicas(BLOCK, "v1", -1)
    with pytest.raises(EditRefused, match="one line"):
        edit.set_image(BLOCK, "v1", "a\nb")
    with pytest.raises(EditRefused, match="one line"):
        edit.set_image(BLOCK, "v1", "")


def test_adding_a_version_twice_is_refused() -> None:
    with pytest.raises(EditRefused, match='version "v2" already exists'):
        edit.add_version(BLOCK, "v2", NEW_IMAGE, 0, 1)
    with pytest.raises(EditRefused, match="DNS-1123"):
        edit.add_version(BLOCK, "V3", NEW_IMAGE, 0, 1)


def test_removing_a_version_that_match_and_mirror_name_is_refused() -> None:
    text = (ROOT / "environments/prod/checkout.yaml").read_text(encoding="utf-8")
    with pytest.raises(EditRefused) as raised:
        edit.remove_version(text, "v2")
    message = str(raised.value)
    assert 'version "v2" is still named by' in message
    assert 'match rule 1 ("testers")' in message
    assert 'match rule 2 ("testers-cookie")' in message
    assert "the mirror" in message
    staging = (ROOT / "environments/staging/checkout.yaml").read_text(encoding="utf-8")
    with pytest.raises(EditRefused, match=r"named by match rule 1;"):
        edit.remove_version(edit.set_weights(staging, {"v1": 70, "v3": 0}), "v3")


def test_removing_a_version_with_traffic_or_the_only_one_is_refused() -> None:
    with pytest.raises(EditRefused, match=r'"v2" still receives 30% of the traffic'):
        edit.remove_version(BLOCK, "v2")
    only = edit.remove_version(edit.set_weights(BLOCK, {"v1": 100, "v2": 0}), "v2")
    with pytest.raises(EditRefused, match="only version"):
        edit.remove_version(only, "v1")


def test_anchors_and_merge_keys_are_not_edited_behind_the_user_s_back() -> None:
    text = """\
versions:
  v1: &stable {image: registry.example/micro-api:1.1, replicas: 3, weight: 70}
  v2: {<<: *stable, image: registry.example/micro-api:1.3, weight: 30}
"""
    with pytest.raises(EditRefused, match="anchor"):
        edit.set_weights(text, {"v1": 60})
    with pytest.raises(EditRefused, match="anchor"):
        edit.remove_version(text.replace("70}", "0}").replace("30}", "100}"), "v1")
    # v2's own fields are its own; a field it inherits is added to it.
    assert edit.set_weights(text, {"v2": 40}) == replace_once(text, "weight: 30}", "weight: 40}")
    assert edit.set_replicas(text, "v2", 1) == replace_once(
        text, "1.3, weight", "1.3, replicas: 1, weight"
    )


def test_text_that_is_not_a_release_is_refused() -> None:
    with pytest.raises(EditRefused, match="not valid YAML"):
        edit.set_weights("versions: {v1: [", {"v1": 100})
    with pytest.raises(EditRefused, match="mapping at the top level"):
        edit.set_weights("- a\n", {"v1": 100})
    with pytest.raises(EditRefused, match="no versions"):
        edit.set_weights("service: a\n", {"v1": 100})
    with pytest.raises(
        EditRefused, match=r'not valid YAML at line 12, column 1: duplicate key "versions"$'
    ):
        edit.set_weights(BLOCK + "versions: {}\n", {"v1": 100})


# --- planning ---------------------------------------------------------------------------------


def _release(env: str, service: str) -> Release:
    (loaded,) = load(ROOT, [env])
    return next(r for r in loaded.releases if r.service == service)


def _with(
    release: Release, weights: dict[str, int], steps: tuple[int, ...] | None = None
) -> Release:
    versions = tuple(
        Version(name, f"registry.example/{release.service}:{i}", weight, 1)
        for i, (name, weight) in enumerate(weights.items())
    )
    return dataclasses.replace(
        release, versions=versions, steps=release.steps if steps is None else steps
    )


PROD = _release("prod", "micro-api")  # v1 70, v2 30; steps 10, 25, 50, 100
THREE = _release("staging", "checkout")  # v1 60, v2 30, v3 10


def test_step_to_a_weight() -> None:
    assert traffic.plan_step(PROD, to=50) == {"v1": 50, "v2": 50}
    assert list(traffic.plan_step(PROD, to=0)) == ["v1", "v2"]
    # Middle versions keep their weights; the stable takes the rest.
    assert traffic.plan_step(THREE, to=50) == {"v1": 20, "v2": 30, "v3": 50}
    assert traffic.plan_step(THREE, to=70) == {"v1": 0, "v2": 30, "v3": 70}


def test_step_to_the_next_step_of_the_plan() -> None:
    assert traffic.plan_step(PROD, next_step=True) == {"v1": 50, "v2": 50}
    assert traffic.plan_step(THREE, next_step=True) == {"v1": 45, "v2": 30, "v3": 25}
    between = _with(PROD, {"v1": 88, "v2": 12})
    assert traffic.plan_step(between, next_step=True) == {"v1": 75, "v2": 25}
    assert traffic.plan_step(_with(PROD, {"v1": 100, "v2": 0}), next_step=True) == {
        "v1": 90,
        "v2": 10,
    }


def test_steps_that_make_no_sense_are_refused() -> None:
    with pytest.raises(EditRefused, match=r"v2 already receives all the traffic, the last step"):
        traffic.plan_step(_release("dev", "micro-api"), next_step=True)
    with pytest.raises(EditRefused, match="no canary steps"):
        traffic.plan_step(_with(PROD, {"v1": 70, "v2": 30}, steps=()), next_step=True)
    with pytest.raises(EditRefused, match=r"v2 is already at 30%"):
        traffic.plan_step(PROD, to=30)
    with pytest.raises(
        EditRefused,
        match=r"leave 20% .* but v2 already takes 30%; lower it first, or give v3 at most 70%",
    ):
        traffic.plan_step(THREE, to=80)
    with pytest.raises(EditRefused, match="not both"):
        traffic.plan_step(PROD, to=50, next_step=True)
    with pytest.raises(EditRefused, match="next step"):
        traffic.plan_step(PROD)
    with pytest.raises(EditRefused, match="whole number from 0 to 100"):
        traffic.plan_step(PROD, to=120)
    with pytest.raises(EditRefused, match="one version"):
        traffic.plan_step(_with(PROD, {"v1": 100}), to=50)


def test_promote_and_rollback() -> None:
    assert traffic.plan_promote(PROD) == {"v1": 0, "v2": 100}
    assert traffic.plan_promote(THREE) == {"v1": 0, "v2": 0, "v3": 100}
    assert traffic.plan_rollback(PROD) == {"v1": 100, "v2": 0}
    assert traffic.plan_rollback(THREE) == {"v1": 70, "v2": 30, "v3": 0}
    with pytest.raises(EditRefused, match="already receives all the traffic"):
        traffic.plan_promote(_release("dev", "micro-api"))
    with pytest.raises(EditRefused, match="nothing to roll back"):
        traffic.plan_rollback(_release("prod", "checkout"))
    with pytest.raises(EditRefused, match="one version"):
        traffic.plan_promote(_with(PROD, {"v1": 100}))


def test_set_weights_plan() -> None:
    assert traffic.plan_set(PROD, {"v1": 40, "v2": 60}) == {"v1": 40, "v2": 60}
    assert traffic.plan_set(THREE, {"v1": 50, "v3": 20}) == {"v1": 50, "v2": 30, "v3": 20}
    with pytest.raises(EditRefused, match=r"weights would sum to 120, not 100 \(v1 70 \+ v2 50\)"):
        traffic.plan_set(PROD, {"v2": 50})
    with pytest.raises(EditRefused, match=r'unknown version "v9" \(the release has v1, v2\)'):
        traffic.plan_set(PROD, {"v9": 50})
    with pytest.raises(EditRefused, match="nothing to change"):
        traffic.plan_set(PROD, {"v1": 70})
    with pytest.raises(EditRefused, match="whole number"):
        traffic.plan_set(PROD, {"v1": -10, "v2": 110})
    with pytest.raises(EditRefused, match="at least one"):
        traffic.plan_set(PROD, {})


def test_start_plan() -> None:
    assert traffic.plan_start(PROD, "v3", first_step=False) == {"v1": 70, "v2": 30, "v3": 0}
    assert traffic.plan_start(PROD, "v3", first_step=True) == {"v1": 60, "v2": 30, "v3": 10}
    checkout = _release("prod", "checkout")  # its own plan starts at 5
    assert traffic.plan_start(checkout, "v3", first_step=True) == {"v1": 95, "v2": 0, "v3": 5}
    with pytest.raises(EditRefused, match='"v2" already exists'):
        traffic.plan_start(PROD, "v2", first_step=False)
    with pytest.raises(EditRefused, match="which has only 0%"):
        traffic.plan_start(_release("dev", "micro-api"), "v3", first_step=True)
    with pytest.raises(EditRefused, match="no canary steps"):
        traffic.plan_start(_with(PROD, {"v1": 100}, steps=()), "v2", first_step=True)
    with pytest.raises(EditRefused, match="DNS-1123"):
        traffic.plan_start(PROD, "V3", first_step=False)


def test_weight_change_describes_the_canary() -> None:
    change = traffic.WeightChange.of(PROD, traffic.plan_step(PROD, to=50))
    assert change.moved() == [("v1", 70, 50), ("v2", 30, 50)]
    assert change.describe() == "v2 30% -> 50%"
    assert f"prod/micro-api: {change.describe()}" == "prod/micro-api: v2 30% -> 50%"
    assert traffic.WeightChange.of(THREE, traffic.plan_promote(THREE)).describe() == (
        "v1 60% -> 0%, v2 30% -> 0%, v3 10% -> 100%"
    )
    started = traffic.WeightChange.of(PROD, traffic.plan_start(PROD, "v3", first_step=True))
    # The stable only makes room for it.
    assert started.describe() == "start v3 at 10%; v1 (stable) keeps the rest, 70% -> 60%"
    assert started.moved() == [("v1", 70, 60), ("v3", 0, 10)]
    middle = traffic.WeightChange.of(THREE, traffic.plan_set(THREE, {"v2": 20, "v3": 20}))
    assert middle.describe() == "v2 30% -> 20%, v3 10% -> 20%"
    two = traffic.WeightChange(
        {"v1": 100}, traffic.plan_start(_with(PROD, {"v1": 100}), "v2", True)
    )
    assert two.describe() == "start v2 at 10%; v1 (stable) keeps the rest, 100% -> 90%"
    retired = traffic.WeightChange({"v1": 100, "v2": 0}, {"v1": 100})
    assert retired.moved() == []
    assert retired.describe() == "retire v2"
    same = traffic.WeightChange({"v1": 70, "v2": 30}, {"v1": 70, "v2": 30})
    assert same.describe() == "weights unchanged"


def test_start_and_retire_say_what_happened() -> None:
    """Issue 12: `start` and `retire` moved no weight, and said "weights unchanged"."""
    image = "registry.example/micro-api:1.4"
    started = traffic.WeightChange(
        {"v1": 70, "v2": 30}, traffic.plan_start(PROD, "v3", False), images={"v3": image}
    )
    assert started.describe() == f"start v3 at 0% (image {image})"
    first = traffic.WeightChange(
        {"v1": 70, "v2": 30}, traffic.plan_start(PROD, "v3", True), images={"v3": image}
    )
    assert first.describe() == (
        f"start v3 at 10% (image {image}); v1 (stable) keeps the rest, 70% -> 60%"
    )
    assert traffic.WeightChange({"v1": 0, "v2": 100}, {"v2": 100}).describe() == "retire v1"


def test_a_step_with_three_versions_says_which_version_keeps_the_rest() -> None:
    """Issue 12: with a version between stable and canary, `v3 10% -> 25%` hid that v1 gave
    the 15% and v2 kept its share; the stable (the first version) absorbs the difference."""
    planned = traffic.plan_step(THREE, next_step=True)  # v1 60, v2 30, v3 10; steps 10, 25, ...
    assert planned == {"v1": 45, "v2": 30, "v3": 25}
    assert traffic.WeightChange.of(THREE, planned).describe() == (
        "v3 10% -> 25%; v1 (stable) keeps the rest, 60% -> 45%; v2 stays at 30%"
    )
    back = traffic.WeightChange.of(THREE, traffic.plan_rollback(THREE))
    assert back.describe() == (
        "v3 10% -> 0%; v1 (stable) keeps the rest, 60% -> 70%; v2 stays at 30%"
    )
    four = _with(PROD, {"v1": 50, "v2": 20, "v3": 10, "v4": 20})
    assert traffic.WeightChange.of(four, traffic.plan_step(four, to=30)).describe() == (
        "v4 20% -> 30%; v1 (stable) keeps the rest, 50% -> 40%; v2 stays at 20%, v3 stays at 10%"
    )


def test_step_advises_promote_only_when_promote_would_work() -> None:
    """Issue 12: at 100% `step --next` said "promote it", and promote then refused."""
    done = _release("dev", "micro-api")  # v1 0, v2 100: the plan is over
    with pytest.raises(EditRefused) as stepped:
        traffic.plan_step(done, next_step=True)
    assert "promote" not in str(stepped.value)
    assert str(stepped.value) == (
        "v2 already receives all the traffic, the last step of the plan (10, 25, 50, 75, 100); "
        "the rollout is done: retire the old version with `meshcanary retire dev micro-api v1`"
    )
    with pytest.raises(EditRefused, match="nothing to promote; retire the old version with"):
        traffic.plan_promote(done)
    # Past the last step of a plan that stops short of 100%, promote is the advice, and works.
    short = _with(PROD, {"v1": 40, "v2": 60}, steps=(10, 25, 50))
    with pytest.raises(EditRefused, match=r"at or past the last step .*; promote it"):
        traffic.plan_step(short, next_step=True)
    assert traffic.plan_promote(short) == {"v1": 0, "v2": 100}
    # With a middle version, the step to 100% is what promote does: say so.
    three = _with(PROD, {"v1": 0, "v2": 25, "v3": 75})
    with pytest.raises(EditRefused, match=r"v2 already takes 25%; promote v3, or lower it first"):
        traffic.plan_step(three, next_step=True)
    assert traffic.plan_promote(three) == {"v1": 0, "v2": 0, "v3": 100}


def test_a_plan_applies_to_the_text(tmp_path: Path) -> None:
    text = (ROOT / "environments/prod/micro-api.yaml").read_text(encoding="utf-8")
    result = edit.set_weights(text, traffic.plan_step(PROD, next_step=True))
    assert version_weights(parsed(result, tmp_path)) == {"v1": 50, "v2": 50}


# --- properties -------------------------------------------------------------------------------

Piece = str | int  # text, or the index of the version whose weight stands there


@st.composite
def weight_splits(draw: st.DrawFn, count: int) -> list[int]:
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, 100]
    return [bounds[i + 1] - bounds[i] for i in range(count)]


@st.composite
def release_templates(draw: st.DrawFn) -> tuple[list[Piece], list[str], list[int]]:
    """A release file in random but valid styles, with the weights left as holes."""
    count = draw(st.integers(1, 4))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    flow_versions = draw(st.booleans())
    comment = st.sampled_from(["", "  # c", "   #\tweight, here", " # {v: 1}, weight: 9"])
    spaces = st.sampled_from([" ", "  ", "    "])
    pieces: list[Piece] = []
    if draw(st.booleans()):
        pieces.append("\ufeff")
    pieces += [f"# yaml-language-server: $schema=../../schemas/release.schema.json{eol}"]
    pieces += [f"service: micro-api{draw(comment)}{eol}", f"base: deploy/base/micro-api{eol}"]
    written = [draw(st.sampled_from(["{w}", '"{w}"', "'{w}'"])) for _ in range(count)]
    names = [f"v{i + 1}" for i in range(count)]

    def fields(index: int, flow: bool) -> list[list[Piece]]:
        image = draw(st.sampled_from(["r.example/a:{n}", '"r.example/a:{n}"', "'r.example/a:{n}'"]))
        order = draw(st.permutations(["image", "replicas", "weight"]))
        out: list[list[Piece]] = []
        for field in order:
            if field == "image":
                out.append([f"image: {image.format(n=index)}"])
            elif field == "replicas" and draw(st.booleans()):
                out.append([f"replicas:{draw(spaces)}{index}"])
            elif field == "weight":
                out.append([f"weight:{draw(spaces)}", index])
        return out

    if flow_versions:
        entries: list[Piece] = ["versions: {"]
        for index, name in enumerate(names):
            if index:
                entries.append(", ")
            entries.append(f"{name}: {{")
            for position, field in enumerate(fields(index, flow=True)):
                entries += ([", "] if position else []) + field
            entries.append("}")
        pieces += [*entries, f"}}{draw(comment)}{eol}"]
    else:
        pieces.append(f"versions:{draw(comment)}{eol}")
        for index, name in enumerate(names):
            if draw(st.booleans()):
                pieces.append(f"{eol}  # about {name}{eol}")
            if draw(st.booleans()):
                pieces.append(f"  {name}:{draw(spaces)}{{")
                for position, field in enumerate(fields(index, flow=True)):
                    pieces += ([", "] if position else []) + field
                pieces.append(f"}}{draw(comment)}{eol}")
            else:
                pieces.append(f"  {name}:{draw(comment)}{eol}")
                for field in fields(index, flow=False):
                    pieces += ["    ", *field, f"{draw(comment)}{eol}"]
    if draw(st.booleans()):
        pieces.append(f"# trailing{eol}canary: {{steps: [10, 25, 50, 100]}}{eol}")
    return pieces, written, draw(weight_splits(count))


def render(pieces: list[Piece], weights: list[str]) -> str:
    return "".join(weights[p] if isinstance(p, int) else p for p in pieces)


def _parse_text(text: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "micro-api.yaml"
        path.write_bytes(text.encode("utf-8"))
        doc = load_mapping(path, "micro-api.yaml")
        assert schema.check("release", doc) == [], text
        return doc.data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(release_templates(), st.data())
def test_set_weights_changes_only_the_weights(
    template: tuple[list[Piece], list[str], list[int]], data: st.DataObject
) -> None:
    pieces, written, old = template
    names = [f"v{i + 1}" for i in range(len(old))]
    before = render(pieces, [w.format(w=old[i]) for i, w in enumerate(written)])
    new = data.draw(weight_splits(len(old)), label="new weights")
    note(before)
    after = edit.set_weights(before, dict(zip(names, new, strict=True)))
    # Byte for byte: the template with the new weights, written as plain integers.
    assert after == render(pieces, [str(w) for w in new])
    assert version_weights(_parse_text(after)) == dict(zip(names, new, strict=True))
    # Only lines holding a weight that changed differ.
    changed_lines = set()
    offset = 0
    for piece in pieces:
        if isinstance(piece, int):
            if written[piece].format(w=old[piece]) != str(new[piece]):
                changed_lines.add(render(pieces, [str(w) for w in new])[:offset].count("\n"))
            offset += len(str(new[piece]))
        else:
            offset += len(piece)
    old_lines, new_lines = before.split("\n"), after.split("\n")
    assert len(old_lines) == len(new_lines)
    differing = {i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b}
    assert differing <= changed_lines


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(release_templates(), st.integers(0, 100), st.none() | st.integers(0, 50))
def test_add_then_remove_gives_back_the_file(
    template: tuple[list[Piece], list[str], list[int]], weight: int, replicas: int | None
) -> None:
    pieces, _, old = template
    before = render(pieces, [str(w) for w in old])
    added = edit.add_version(before, "v9", NEW_IMAGE, weight, replicas)
    note(added)
    versions = _parse_text(added)["versions"]
    assert list(versions)[-1] == "v9"
    assert versions["v9"] == {
        "image": NEW_IMAGE,
        "weight": weight,
        **({} if replicas is None else {"replicas": replicas}),
    }
    # A pure insertion: the old text is what is left around the new entry.
    start = next(
        (i for i, (a, b) in enumerate(zip(before, added, strict=False)) if a != b), len(before)
    )
    inserted = len(added) - len(before)
    assert added[:start] + added[start + inserted :] == before
    if weight == 0:
        assert edit.remove_version(added, "v9") == before


@pytest.mark.parametrize("text", [COMMENTED, BLOCK, BLOCK_COMMENTED, FLOW_VERSIONS, SPACED])
def test_the_hand_written_files_are_valid_release_files(text: str, tmp_path: Path) -> None:
    assert version_weights(parsed(text, tmp_path)) == {"v1": 70, "v2": 30}


def test_a_value_less_explicit_key_is_refused_not_a_crash() -> None:
    # `? weight` in a flow mapping has no `:` to write after: a refusal the edit command
    # reports at the file (before, `str.index` raised a bare ValueError).
    odd = replace_once(COMMENTED, "weight: 70}", "? weight}")
    with pytest.raises(EditRefused, match=r"cannot edit v1\.weight in place"):
        edit.set_weights(odd, {"v1": 60, "v2": 40})
