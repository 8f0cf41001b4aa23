"""A version's differences from the base as a strategic-merge patch, applied by the real
kustomize: the patch must turn the base's Deployment into the version's, exactly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.importer.patches import patch
from meshcanary.render.emit import document
from tests.support import kustomize_build, write

BASE: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "ratings"},
    "spec": {
        "selector": {"matchLabels": {"app": "ratings"}},
        "template": {
            "metadata": {"labels": {"app": "ratings"}},
            "spec": {
                "securityContext": {"runAsUser": 1000},
                "containers": [
                    {
                        "name": "ratings",
                        "image": "ratings:1",
                        "args": ["--one"],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 9080}],
                    },
                    {"name": "sidecar", "image": "side:1"},
                ],
            },
        },
    },
}


def _changed(change: Any) -> dict[str, Any]:
    other = copy.deepcopy(BASE)
    change(other["spec"]["template"]["spec"])
    return other


def _env(pod: dict[str, Any]) -> None:
    pod["containers"][0]["env"][1]["value"] = "3"
    pod["containers"][0]["env"].append({"name": "C", "value": "4"})


def _drop_env(pod: dict[str, Any]) -> None:
    del pod["containers"][0]["env"][0]


def _reorder_env(pod: dict[str, Any]) -> None:
    pod["containers"][0]["env"].reverse()


def _args(pod: dict[str, Any]) -> None:
    pod["containers"][0]["args"] = ["--two", "--three"]


def _security(pod: dict[str, Any]) -> None:
    del pod["securityContext"]


def _resources(pod: dict[str, Any]) -> None:
    pod["containers"][1]["resources"] = {"limits": {"cpu": "100m"}}


CHANGES = {
    "env value changed and added": _env,
    "env removed": _drop_env,
    "env reordered": _reorder_env,
    "args replaced": _args,
    "securityContext removed": _security,
    "second container's resources": _resources,
}


def test_the_same_deployment_needs_no_patch() -> None:
    assert patch(BASE, copy.deepcopy(BASE)) is None


def test_elements_are_patched_on_their_merge_key_and_all_named_to_keep_the_order() -> None:
    found = patch(BASE, _changed(_env))
    assert found == {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "ratings",
                            "env": [
                                {"name": "A"},
                                {"name": "B", "value": "3"},
                                {"name": "C", "value": "4"},
                            ],
                        },
                        {"name": "sidecar"},
                    ]
                }
            }
        }
    }


def test_a_removed_key_is_null_and_a_removed_element_a_delete() -> None:
    assert patch(BASE, _changed(_security)) == {
        "spec": {"template": {"spec": {"securityContext": None}}}
    }
    removed = patch(BASE, _changed(_drop_env))
    assert removed is not None
    ratings, _ = removed["spec"]["template"]["spec"]["containers"]
    assert ratings["env"] == [{"name": "B"}, {"name": "A", "$patch": "delete"}]


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_kustomize_applies_the_patch_to_give_the_version(tmp_path: Path, name: str) -> None:
    other = _changed(CHANGES[name])
    found = patch(BASE, other)
    assert found is not None
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ratings"}, **found}
    write(tmp_path / "deployment.yaml", document(BASE))
    kustomization = {"resources": ["deployment.yaml"], "patches": [{"patch": document(body)}]}
    write(tmp_path / "kustomization.yaml", yaml.safe_dump(kustomization))
    (built,) = kustomize_build(tmp_path)
    assert built == other
