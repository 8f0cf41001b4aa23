"""Container images are pinned: no missing tag, no `latest`, no `-SNAPSHOT`.

A canary compares two versions; that only means something when each version is one fixed
image. `latest`, a missing tag (which means `latest`) and Maven-style `-SNAPSHOT` tags are
rebuilt under the same name, so a pod restarted tomorrow runs different code than the one
you measured, and a rollback to the "old" version may pull the new one. The article this
project started from deploys `micro-api:1.1-SNAPSHOT` with `imagePullPolicy: Always`.

Every `containers[].image` and `initContainers[].image` of a Pod, of a pod template
(Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, …) and of a CronJob's job template is
checked; the tag is compared case-insensitively. An image pinned by digest (`@sha256:…`) is
fine whatever its tag. So is `image: auto` on a container named `istio-proxy`: that is Istio's
placeholder for gateway injection, which the injector replaces with the proxy image of the
control plane when the pod is created (Istio's own analyzer, IST0146, reads it the same way).
`auto` on any other container is an image named `auto` with no tag.

Fix: deploy an immutable release tag (`1.1.0`) or pin the digest.

Istio: none; stricter than istioctl analyze, which does not judge application images.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "mutable-image-tag"
SEVERITY = Severity.WARNING
SUMMARY = "images have an immutable tag (not missing, `latest` or `-SNAPSHOT`)"
HINT = "use a release tag that is never rebuilt (e.g. `1.4.2`) or pin the image by digest"
RELEASE_HINT = "pin `image:` to a digest or to a release tag that is never rebuilt (e.g. `1.4.2`)"

# Istio's gateway injection: the injector fills in the image of this container.
PROXY = "istio-proxy"
AUTO = "auto"


def check(scope: Scope) -> Iterator[Finding]:
    for resource in scope.resources:
        path = _pod_spec_path(resource)
        if path is None:
            continue
        for field in ("initContainers", "containers"):
            containers = resource.get(*path, field)
            if not isinstance(containers, list):
                continue
            for index, container in enumerate(containers):
                image = container.get("image") if isinstance(container, dict) else None
                if not isinstance(image, str) or not image.strip():
                    continue
                if image == AUTO and container.get("name") == PROXY:
                    continue
                problem = mutable(image.strip())
                if problem:
                    yield Finding(
                        resource,
                        [*path, field, index, "image"],
                        f"image {image} {problem}",
                    )


def _pod_spec_path(resource: Resource) -> list[str | int] | None:
    if resource.kind == "Pod":
        return ["spec"]
    if resource.kind == "CronJob":
        return ["spec", "jobTemplate", "spec", "template", "spec"]
    if isinstance(resource.get("spec", "template", "spec"), dict):
        return ["spec", "template", "spec"]
    return None


def mutable(image: str) -> str:
    """Why `image` is mutable, or "" when it is pinned."""
    if "@" in image:
        return ""
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return "has no tag, so it means `latest`"
    tag = name.rsplit(":", 1)[1].lower()
    if tag == "latest":
        return "uses tag `latest`"
    if tag.endswith("-snapshot"):
        return "uses a -SNAPSHOT tag, which is rebuilt under the same name"
    return ""
