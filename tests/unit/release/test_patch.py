"""A version's patch of its Deployment, as the release file loads it: kept whole, and refused
at the key that touches what the release or the base owns."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.errors import InputError
from meshcanary.release.load import load
from tests.support import write

HEAD = """\
service: micro-api
base: deploy/base/micro-api
versions:
  v1: {image: registry.example/micro-api:1.1, replicas: 3, weight: 100}
  v2:
    image: registry.example/micro-api:1.3
    replicas: 1
    weight: 0
    patch:
"""
RELEASE = "environments/prod/micro-api.yaml"


def _load(repo: Path, patch: str) -> list[str]:
    """The problems loading a release whose v2 patch is `patch` (indented under `patch:`)."""
    write(repo / RELEASE, HEAD + "".join(f"      {line}\n" for line in patch.splitlines()))
    try:
        load(repo)
    except InputError as exc:
        return [p.format() for p in exc.problems]
    return []


def test_patch_is_kept_whole_with_its_directives(empty_repo: Path) -> None:
    patch = (
        "spec:\n"
        "  template:\n"
        "    metadata: {labels: {track: canary}, annotations: {a: b}}\n"
        "    spec:\n"
        "      containers:\n"
        "        - name: micro-api\n"
        "          env:\n"
        "            - {name: OLD, $patch: delete}\n"
        "            - {name: MODE, value: fast}\n"
        "          resources: {limits: {cpu: 0.5}}\n"
        "        - {name: sidecar, $patch: delete}\n"
        "metadata: {labels: {tier: canary}}\n"
    )
    assert _load(empty_repo, patch) == []
    (environment,) = load(empty_repo)
    (release,) = environment.releases
    stable, canary = release.versions
    assert stable.patch is None
    assert canary.patch == {
        "spec": {
            "template": {
                "metadata": {"labels": {"track": "canary"}, "annotations": {"a": "b"}},
                "spec": {
                    "containers": [
                        {
                            "name": "micro-api",
                            "env": [
                                {"name": "OLD", "$patch": "delete"},
                                {"name": "MODE", "value": "fast"},
                            ],
                            "resources": {"limits": {"cpu": 0.5}},
                        },
                        {"name": "sidecar", "$patch": "delete"},
                    ]
                },
            }
        },
        "metadata": {"labels": {"tier": "canary"}},
    }


# (patch, line and column of the refused key, counted from `patch:`'s first line, message)
REFUSED = [
    ("apiVersion: apps/v2\n", (1, 7), "sets apiVersion, which the release owns"),
    ("kind: StatefulSet\n", (1, 7), "sets kind, which the release owns"),
    ("metadata: {name: other}\n", (1, 18), "sets metadata.name, which the release owns"),
    ("metadata:\n  namespace: x\n", (2, 9), "sets metadata.namespace, which the release owns"),
    ("spec: {replicas: 4}\n", (1, 14), "sets spec.replicas, which the release owns"),
    ("spec:\n  selector: {matchLabels: {a: b}}\n", (2, 9), "sets spec.selector"),
    (
        "spec: {template: {metadata: {labels: {app: other}}}}\n",
        (1, 45),
        "sets spec.template.metadata.labels.app, which the release owns",
    ),
    (
        "spec: {template: {metadata: {labels: {version: v9}}}}\n",
        (1, 45),
        "sets spec.template.metadata.labels.version",
    ),
    ("$patch: replace\nspec: {}\n", (1, 7), "has $patch in its top level"),
    ("$retainKeys: [spec]\n", (1, 7), "has $retainKeys in its top level"),
    ("metadata: {$patch: delete}\n", (1, 18), "has $patch in metadata"),
    (
        "spec: {template: {spec: {$patch: replace, containers: []}}}\n",
        (1, 32),
        "has $patch in spec.template.spec",
    ),
    ("spec: {template: null}\n", (1, 14), "sets spec.template to null"),
    (
        "spec: {template: {metadata: {labels: [app]}}}\n",
        (1, 36),
        "sets spec.template.metadata.labels to a list",
    ),
    (
        "spec: {template: {spec: {containers: {name: x}}}}\n",
        (1, 32),
        "sets spec.template.spec.containers to {'name': 'x'}",
    ),
    (
        "spec: {template: {spec: {containers: [{image: x}]}}}\n",
        (1, 45),
        "spec.template.spec.containers[0] in the patch of v2 names no container",
    ),
    (
        "spec: {template: {spec: {containers: [{$patch: replace}]}}}\n",
        (1, 45),
        "names no container",
    ),
    (
        "spec: {template: {spec: {containers: [{name: a, $patch: replace}]}}}\n",
        (1, 55),
        "has $patch: replace on container a",
    ),
    ("metadata: {annotations: {since: 2024-01-01}}\n", (1, 39), "which no Kubernetes field"),
    (
        'metadata: {annotations: {config.kubernetes.io/local-config: "true"}}\n',
        (1, 32),
        "sets annotation config.kubernetes.io/local-config",
    ),
]


@pytest.mark.parametrize(("patch", "at", "message"), REFUSED, ids=[r[2] for r in REFUSED])
def test_patch_touching_what_the_release_owns_is_refused(
    empty_repo: Path, patch: str, at: tuple[int, int], message: str
) -> None:
    (found,) = _load(empty_repo, patch)
    first = HEAD.count("\n") + at[0]
    assert found.startswith(f"{RELEASE}:{first}:{at[1]}: error: ")
    assert message in found.splitlines()[0]


def test_every_refusal_is_reported(empty_repo: Path) -> None:
    found = _load(empty_repo, "kind: Job\nspec: {replicas: 2}\n")
    assert [f.split(": error: ")[1].splitlines()[0] for f in found] == [
        "the patch of v2 sets kind, which the release owns",
        "the patch of v2 sets spec.replicas, which the release owns",
    ]
    assert "hint: set versions.v2.replicas instead" in found[1]


def test_empty_patch_is_a_schema_error(empty_repo: Path) -> None:
    (found,) = _load(empty_repo, "{}\n")
    assert found.startswith(f'{RELEASE}:10:7: error: "patch" must not be empty')
