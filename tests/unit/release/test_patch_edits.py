"""Edits of a release whose versions carry patches: a new version starts without one, a
retired version takes its patch (and its comments) with it, weight changes leave patches
byte for byte."""

from __future__ import annotations

from meshcanary.release import edit
from meshcanary.source import parse_mapping

TEXT = """\
service: micro-api
base: deploy/base/micro-api
versions:
  v1:
    image: registry.example/micro-api:1.1
    replicas: 3
    weight: 80
    # v1 still reads the old database
    patch:
      spec:
        template:
          spec:
            containers:
              - name: micro-api
                env:
                  - {name: DB, value: old}   # until the migration
                  - name: LEGACY
                    $patch: delete
                # probes of 1.1 are slower
                readinessProbe: {initialDelaySeconds: 30}
  v2:
    image: registry.example/micro-api:1.3
    replicas: 1
    weight: 20
    patch:
      metadata:
        annotations: {note: canary}
# end of the release
"""
V1_PATCH = TEXT[TEXT.index("    # v1 still") : TEXT.index("  v2:\n")]


def test_start_adds_a_version_without_a_patch() -> None:
    text = edit.add_version(TEXT, "v3", "registry.example/micro-api:1.4", 0, 1)
    assert text == TEXT.replace(
        "        annotations: {note: canary}\n",
        "        annotations: {note: canary}\n"
        "  v3:\n"
        "    image: registry.example/micro-api:1.4\n"
        "    replicas: 1\n"
        "    weight: 0\n",
    )
    data = parse_mapping(text, "x").data
    assert "patch" not in data["versions"]["v3"]
    assert data["versions"]["v2"]["patch"] == {"metadata": {"annotations": {"note": "canary"}}}


def test_start_after_a_version_whose_patch_ends_the_file() -> None:
    text = TEXT.removesuffix("# end of the release\n")
    added = edit.add_version(text, "v3", "registry.example/micro-api:1.4", 0, 1)
    assert added.endswith(
        "        annotations: {note: canary}\n  v3:\n    image: registry.example/micro-api:1.4\n"
        "    replicas: 1\n    weight: 0\n"
    )


def test_weight_changes_leave_patches_as_written() -> None:
    text = edit.set_weights(TEXT, {"v1": 0, "v2": 100})
    assert text == TEXT.replace("weight: 80", "weight: 0").replace("weight: 20", "weight: 100")
    assert V1_PATCH in text


def test_retiring_a_version_takes_its_patch_and_comments() -> None:
    text = edit.set_weights(TEXT, {"v1": 0, "v2": 100})
    retired = edit.remove_version(text, "v1")
    assert retired == (
        "service: micro-api\n"
        "base: deploy/base/micro-api\n"
        "versions:\n"
        "  v2:\n"
        "    image: registry.example/micro-api:1.3\n"
        "    replicas: 1\n"
        "    weight: 100\n"
        "    patch:\n"
        "      metadata:\n"
        "        annotations: {note: canary}\n"
        "# end of the release\n"
    )


def test_retiring_the_last_version_keeps_the_others_patches() -> None:
    text = edit.remove_version(TEXT.replace("weight: 20", "weight: 0"), "v2")
    assert text == TEXT[: TEXT.index("  v2:\n")] + "# end of the release\n"
    assert parse_mapping(text, "x").data["versions"]["v1"]["patch"]["spec"]
