"""`meshcanary init`: scaffold a new GitOps repository that renders and checks cleanly.

Writes one service (a Kustomize base with a Deployment and a Service, and a release file with
a single version at 100%) in each environment, the JSON Schemas editors use for completion,
pre-commit hooks, a pull-request workflow and a README with the next steps. Everything it
writes is a starting point people own and edit; the generated overlays come from
`meshcanary render`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from meshcanary import __version__
from meshcanary.errors import InputError
from meshcanary.problem import Location, Problem
from meshcanary.resources import data_dir

REPOSITORY = "https://github.com/meshcanary/meshcanary"
IMAGE_TAG = "1.0.0"
SCHEMAS = ("release.schema.json", "environment.schema.json")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def init(
    target: Path, *, service: str = "hello", environments: Sequence[str] = ("dev", "prod")
) -> list[str]:
    """Scaffold a repository in `target` (empty or missing); returns the paths written.

    Paths are relative to `target`, in the order written. Refuses (InputError) a target that
    holds anything but `.git`, and names that are not DNS-1123 labels.
    """
    _check_names(service, environments)
    _check_empty(target)
    files = _files(service, list(environments))
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


def _check_names(service: str, environments: Sequence[str]) -> None:
    problems: list[Problem] = []
    if not environments:
        problems.append(Problem(Location("--environment"), "name at least one environment"))
    named = [("service", service), *(("environment", e) for e in environments)]
    for what, name in named:
        if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
            problems.append(
                Problem(
                    Location(f"--{what}"),
                    f'{what} "{name}" is not a DNS-1123 label',
                    "lower-case letters, digits and '-', starting and ending with a letter or digit",
                )
            )
    for name in sorted({e for e in environments if list(environments).count(e) > 1}):
        problems.append(Problem(Location("--environment"), f'environment "{name}" is named twice'))
    if problems:
        raise InputError(problems)


def _check_empty(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise InputError([Problem(Location(str(target)), "exists and is not a folder")])
    if not target.is_dir():
        return
    present = sorted(p.name for p in target.iterdir() if p.name != ".git")
    if present:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise InputError(
            [
                Problem(
                    Location(str(target)),
                    f"is not empty ({shown}); init scaffolds a new repository",
                    "choose an empty folder; for existing manifests use `meshcanary import`",
                )
            ]
        )


def _files(service: str, environments: list[str]) -> dict[str, str]:
    files: dict[str, str] = {}
    for env in environments:
        files[f"environments/{env}/environment.yaml"] = _environment(env)
        files[f"environments/{env}/{service}.yaml"] = _release(service, env)
    base = f"deploy/base/{service}"
    files[f"{base}/kustomization.yaml"] = _kustomization(service)
    files[f"{base}/deployment.yaml"] = _deployment(service)
    files[f"{base}/service.yaml"] = _service(service)
    for name in SCHEMAS:
        # Copied so the `$schema` line of each file works offline and matches this version.
        files[f"schemas/{name}"] = (data_dir("schemas") / name).read_text(encoding="utf-8")
    files[".pre-commit-config.yaml"] = _pre_commit()
    files[".github/workflows/meshcanary.yml"] = _workflow()
    files["README.md"] = _readme(service, environments)
    return files


def _environment(env: str) -> str:
    return f"""\
# yaml-language-server: $schema=../../schemas/environment.schema.json
# Settings every release in the {env} environment shares.
# The namespace every rendered resource of {env} goes to:
namespace: {env}
istioApiVersion: networking.istio.io/v1     # v1beta1 for Istio before 1.22
# gateways:                                 # Istio Gateways to render, by name; releases bind
#   public:                                 # to them with `gateways: [public, mesh]`
#     selector: {{istio: ingressgateway}}
#     servers:
#       - port: {{number: 80, name: http, protocol: HTTP}}
#         hosts: [{env}.example.com]
defaults:
  canary: {{steps: [10, 25, 50, 100]}}        # what `step --next` moves a canary through
"""


def _release(service: str, env: str) -> str:
    return f"""\
# yaml-language-server: $schema=../../schemas/release.schema.json
# {service} in {env}. To start a canary, add a version with a small weight, take as much from
# v1, and open a pull request; `meshcanary render` writes deploy/overlays/{env}/{service}/.
service: {service}
base: deploy/base/{service}
gateways: [mesh]                            # in-mesh callers get the weights
versions:                                   # oldest (stable) first, newest (canary) last
  v1: {{image: registry.example/{service}:{IMAGE_TAG}, replicas: 2, weight: 100}}
"""


def _kustomization(service: str) -> str:
    return f"""\
# The {service} service. People own this base; meshcanary renders one copy of the Deployment
# per live version from it and never writes here.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - service.yaml
"""


def _deployment(service: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {service}
  labels:
    app: {service}
spec:
  replicas: 1                               # each version sets its own in the release file
  selector:
    matchLabels:
      # Each version adds `version: <name>` here and to the pod labels.
      app: {service}
  template:
    metadata:
      labels:
        app: {service}
    spec:
      containers:
        - name: {service}
          # Each version sets its own tag; pin release tags or digests, never latest.
          image: registry.example/{service}:{IMAGE_TAG}
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /
              port: http
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              cpu: 500m
              memory: 256Mi
"""


def _service(service: str) -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata:
  name: {service}
  labels:
    app: {service}
spec:
  ports:
    - name: http                            # the name tells Istio the protocol
      port: 80
      targetPort: http
  # Selects every version: the routes, not the Service, pick one.
  selector:
    app: {service}
"""


def _pre_commit() -> str:
    return f"""\
# Checks each commit that touches environments/ or deploy/: `pre-commit install` once.
repos:
  - repo: {REPOSITORY}
    rev: v{__version__}
    hooks:
      - id: meshcanary-check
      - id: meshcanary-render
"""


def _workflow() -> str:
    # Values reach the shell through env only: nothing from the event is pasted into a script.
    return f"""\
# Checks every pull request: release files, render freshness, kustomize build, schemas and
# rules, reported as annotations on the changed lines.
name: meshcanary
on:
  pull_request:
permissions:
  contents: read
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install meshcanary
        env:
          MESHCANARY_SOURCE: git+{REPOSITORY}@v{__version__}
        run: python -m pip install "meshcanary @ $MESHCANARY_SOURCE"
      - name: Check
        run: meshcanary check --format github
"""


def _readme(service: str, environments: list[str]) -> str:
    first, last = environments[0], environments[-1]
    listed = ", ".join(f"`{e}`" for e in environments)
    return f"""\
# Releases

Canary releases with [meshcanary]({REPOSITORY}): each service's live versions and their
traffic weights are written down per environment ({listed}), and every change is a reviewed
pull request. meshcanary renders them into a Kustomize tree that Argo CD or Flux applies.

| path | what it holds | who writes it |
|---|---|---|
| `environments/<env>/environment.yaml` | namespace, gateways, defaults of one environment | you |
| `environments/<env>/<service>.yaml` | one service: versions, images, replicas, weights | you |
| `deploy/base/<service>/` | the service's Deployment and Service (a Kustomize base) | you |
| `deploy/overlays/<env>/` | versioned Deployments, DestinationRule, VirtualService | `meshcanary render` |
| `schemas/` | JSON Schemas your editor uses to complete and check the files above | `meshcanary init` |

## Next steps

1. Install meshcanary and render the overlays:

   ```sh
   python3 -m venv .venv && .venv/bin/pip install "meshcanary @ git+{REPOSITORY}@v{__version__}"
   .venv/bin/meshcanary render
   .venv/bin/meshcanary check
   ```

2. Replace `registry.example/{service}:{IMAGE_TAG}` in `environments/*/{service}.yaml` with your
   image, adjust `deploy/base/{service}/` (ports, probes, resources) and each environment's
   `namespace`, then render again.
3. Turn on the checks: `pre-commit install` (hooks in `.pre-commit-config.yaml`), and commit
   `.github/workflows/meshcanary.yml`, which checks every pull request.
4. Commit everything, `deploy/overlays/` included, and point one Argo CD Application (or Flux
   Kustomization) at each `deploy/overlays/<env>/<service>/`.
5. Start a canary: in `environments/{first}/{service}.yaml` add
   `v2: {{image: ..., replicas: 1, weight: 10}}` and set v1 to 90; render, commit, open a pull
   request. Step the weights up the same way, then promote to `{last}`.

Services that already run can be brought in with `meshcanary import`.
"""
