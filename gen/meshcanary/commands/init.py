"""`meshcanary init`: scaffold a new GitOps repository that renders and checks cleanly.

Writes one service (a Kustomize base with a Deployment and a Service, and a release file with
a single version at 100%) in each environment, the JSON Schemas editors use for completion,
pre-commit hooks, a pull-request workflow and a README with the next steps. Everything it
writes is a starting point people own and edit; the generated overlays come from
`meshcanary render`.

The workflow, the hooks and the README install meshcanary from its git repository at one
commit (`Pin`): meshcanary is published nowhere else, and a commit SHA, unlike a tag or a
branch, cannot move. The commit is `--ref` when given, else the one the running meshcanary was
built from when that can be known for certain (`find_commit`); otherwise init writes a marked
placeholder and says so rather than guess one that may not exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from meshcanary.errors import InputError
from meshcanary.names import is_dns_label
from meshcanary.problem import Location, Problem, Severity
from meshcanary.release.model import DEFAULT_MAX_STEP, DEFAULT_STEPS
from meshcanary.resources import data_dir

REPOSITORY = "https://github.com/meshcanary/meshcanary"
IMAGE_TAG = "1.0.0"
SCHEMAS = ("release.schema.json", "environment.schema.json")
WORKFLOW = ".github/workflows/meshcanary.yml"
PRE_COMMIT = ".pre-commit-config.yaml"
# What the scaffold says where a commit SHA belongs when none is known: it fails loudly where
# it is used (the workflow's own check, `git checkout` in pre-commit and pip), never silently.
UNSET = "SET-ME-TO-A-MESHCANARY-COMMIT-SHA"
# The actions the workflow uses, by full commit SHA with the tag in the comment: the pins of
# this repository's own workflows (tests/unit/commands/test_init.py keeps them equal).
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0"
CACHE_RESTORE = "actions/cache/restore@5a3ec84eff668545956fd18022155c47e93e2684 # v4.2.3"
CACHE_SAVE = "actions/cache/save@5a3ec84eff668545956fd18022155c47e93e2684 # v4.2.3"
_SHA = re.compile(r"[0-9a-f]{40}")
# Where the package sits in meshcanary's repository; a checkout that has it elsewhere is not one.
_PACKAGE_PATH = "gen/meshcanary/"
# REPOSITORY as pip records a git install of it (PEP 610 `url`): https, ssh or scp-like, with
# or without `.git`. Any other URL is another repository, whose commits REPOSITORY may lack.
_REPOSITORY_URL = re.compile(
    r"(https://|ssh://git@|git@)github\.com[/:]meshcanary/meshcanary(\.git)?/?", re.IGNORECASE
)
_GIT_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Origin:
    """Where the running meshcanary came from: the folder of its package, and the installed
    distribution's `direct_url.json` (PEP 610) when that distribution is the one running."""

    package: Path
    direct_url: str | None = None

    @classmethod
    def running(cls) -> Origin:
        package = Path(__file__).resolve().parents[1]
        try:
            installed = distribution("meshcanary")
        except PackageNotFoundError:
            return cls(package)
        # Another copy than the one running may be installed (PYTHONPATH, a source tree): its
        # metadata would pin someone else's commit. An editable install's files are elsewhere.
        located = Path(str(installed.locate_file("meshcanary/__init__.py"))).resolve()
        if located != package / "__init__.py":
            return cls(package)
        return cls(package, installed.read_text("direct_url.json"))


@dataclass(frozen=True)
class Pin:
    """The meshcanary commit a scaffold installs (`sha`, None when unknown) and how it was
    found, or why it could not be (`reason`, one line)."""

    sha: str | None
    reason: str


@dataclass(frozen=True)
class Scaffold:
    """What `scaffold` did: the paths written (relative, in order), the commit pinned, and
    notes for the user, one line each: which commit was found and how (none for `--ref`), or
    a warning that it must be set by hand."""

    written: list[str]
    pin: Pin
    notes: list[Problem] = field(default_factory=list)


def init(
    target: Path,
    *,
    service: str = "hello",
    environments: Sequence[str] = ("dev", "prod"),
    ref: str | None = None,
    origin: Origin | None = None,
) -> list[str]:
    """Scaffold a repository in `target`; returns the paths written (see `scaffold`)."""
    done = scaffold(target, service=service, environments=environments, ref=ref, origin=origin)
    return done.written


def scaffold(
    target: Path,
    *,
    service: str = "hello",
    environments: Sequence[str] = ("dev", "prod"),
    ref: str | None = None,
    origin: Origin | None = None,
) -> Scaffold:
    """Scaffold a repository in `target` (empty or missing).

    `ref`: the meshcanary commit the workflow installs and the hooks run, a full commit SHA;
    None looks for the commit of `origin` (default: the running meshcanary). Refuses
    (InputError) a target that holds anything but `.git`, names that are not DNS-1123 labels
    and a `ref` that is not a full SHA, before writing anything.
    """
    _check_names(service, environments)
    _check_ref(ref)
    _check_empty(target)
    pin = Pin(ref.lower(), "--ref") if ref else find_commit(origin or Origin.running())
    files = _files(service, list(environments), pin.sha or UNSET)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Scaffold(list(files), pin, _notes(files[WORKFLOW], pin, given=bool(ref)))


def find_commit(origin: Origin) -> Pin:
    """The commit of REPOSITORY that `origin`'s code was built from, when certain.

    A git install from REPOSITORY: the commit pip recorded (`vcs_info.commit_id`). A source
    checkout (an editable install, or running from the tree): the checkout's HEAD, when the
    package is at its place in that checkout and in HEAD. Anything else (a wheel, a copy
    without `.git`, a git install from another repository) gives no SHA: its commit cannot be
    known offline, and a guess would be one that may not exist.
    """
    installed = _installed_commit(origin.direct_url)
    if installed is not None:
        return installed
    head = _checkout_head(origin.package)
    if head is not None:
        return head
    return Pin(
        None, f"{origin.package} is neither a git install of {REPOSITORY} nor in its checkout"
    )


def _installed_commit(direct_url: str | None) -> Pin | None:
    if direct_url is None:
        return None
    try:
        recorded = json.loads(direct_url)
        url, vcs = str(recorded["url"]), recorded["vcs_info"]
        kind, commit = vcs["vcs"], str(vcs["commit_id"]).lower()
    except (ValueError, TypeError, KeyError):
        return None  # not a VCS install (a wheel, a folder, an editable one), or unreadable
    if kind != "git" or not _SHA.fullmatch(commit):
        return None
    if not _REPOSITORY_URL.fullmatch(url):
        # Not copied into the scaffold either: such a URL may carry a token.
        return Pin(None, f"installed from another git repository than {REPOSITORY}")
    return Pin(commit, f"the commit pip installed from {REPOSITORY}")


def _checkout_head(package: Path) -> Pin | None:
    if _git(package, "rev-parse", "--show-prefix") != _PACKAGE_PATH:
        return None  # not in a git work tree, or at another place in it than in meshcanary's
    head = _git(package, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head is None or not _SHA.fullmatch(head):
        return None  # no commit yet, or a SHA-256 repository
    # A copy dropped at the same place into a repository that never committed it is not that
    # repository's code.
    if _git(package, "cat-file", "-e", f"{head}:{_PACKAGE_PATH}__init__.py") is None:
        return None
    top = _git(package, "rev-parse", "--show-toplevel")
    return Pin(head, f"HEAD of the meshcanary checkout at {top}")


def _git(folder: Path, *args: str) -> str | None:
    """git's output in `folder` without the trailing newline, or None when git fails."""
    try:
        done = subprocess.run(  # noqa: S603 - git from PATH, an argument list
            ["git", "-C", str(folder), *args],  # noqa: S607 - git from PATH
            capture_output=True,
            check=False,
            timeout=_GIT_TIMEOUT_SECONDS,
            # Inside a git hook, GIT_DIR and friends point at the hook's repository, not ours.
            env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace").removesuffix("\n")


def _notes(workflow: str, pin: Pin, *, given: bool) -> list[Problem]:
    """What the user should know about the pin, at the line of the workflow that holds it."""
    if given:
        return []
    setting = f"MESHCANARY_REF: {pin.sha or UNSET}"
    line, text = next((n, t) for n, t in enumerate(workflow.splitlines(), 1) if setting in t)
    where = Location(WORKFLOW, line, text.index(setting) + len("MESHCANARY_REF: ") + 1)
    if pin.sha:
        return [
            Problem(where, f"pinned meshcanary {pin.sha}: {pin.reason}", severity=Severity.INFO)
        ]
    message = (
        f"no meshcanary commit to pin ({pin.reason}): replace {UNSET} here, in {PRE_COMMIT} "
        f"and in README.md with a commit SHA of {REPOSITORY}"
    )
    return [Problem(where, message, severity=Severity.WARNING)]


def _check_names(service: str, environments: Sequence[str]) -> None:
    problems: list[Problem] = []
    if not environments:
        problems.append(Problem(Location("--environment"), "name at least one environment"))
    named = [("service", service), *(("environment", e) for e in environments)]
    for what, name in named:
        if not is_dns_label(name):
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


def _check_ref(ref: str | None) -> None:
    if ref is not None and not _SHA.fullmatch(ref.lower()):
        raise InputError(
            [
                Problem(
                    Location("--ref"),
                    f'"{ref}" is not a full commit SHA',
                    f"give the 40 hex digits of a commit of {REPOSITORY}: a tag or a branch can "
                    "move, and meshcanary publishes no releases to install by version",
                )
            ]
        )


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


def _files(service: str, environments: list[str], commit: str) -> dict[str, str]:
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
    files[PRE_COMMIT] = _pre_commit(commit)
    files[WORKFLOW] = _workflow(commit)
    files["README.md"] = _readme(service, environments, commit)
    return files


_STEPS = ", ".join(map(str, DEFAULT_STEPS))


def _environment(env: str) -> str:
    return f"""\
# yaml-language-server: $schema=../../schemas/environment.schema.json
# Settings every release in the {env} environment shares.
# The namespace every rendered resource of {env} goes to:
namespace: {env}
istioApiVersion: networking.istio.io/v1     # v1beta1 for Istio before 1.22
# routing: gateway-api                      # HTTPRoutes instead of VirtualServices (Istio's
#                                           # ambient mode, Linkerd, Cilium, Envoy Gateway)
# gateways:                                 # Istio Gateways to render, by name; releases bind
#   public:                                 # to them with `gateways: [public, mesh]`
#     selector: {{istio: ingressgateway}}
#     servers:
#       - port: {{number: 80, name: http, protocol: HTTP}}
#         hosts: [{env}.example.com]
defaults:
  canary: {{steps: [{_STEPS}]}}    # what `step --next` moves a canary through
policy:
  maxStep: {DEFAULT_MAX_STEP}     # no weight moves more than {DEFAULT_MAX_STEP} points in one change (check, hook, edits)
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


def _pre_commit(commit: str) -> str:
    return f"""\
# Checks each commit that touches environments/ or deploy/: `pre-commit install` once.
repos:
  - repo: {REPOSITORY}
    # A commit, not a tag or branch: it cannot move. The same one as MESHCANARY_REF in
    # {WORKFLOW}, so the hooks and the pull-request check agree.{_unset_comment(commit, 4)}
    rev: {commit}
    hooks:
      - id: meshcanary-check
      - id: meshcanary-render
"""


def _workflow(commit: str) -> str:
    # Values reach the shell through env only: nothing from the event is pasted into a script.
    return f"""\
# Checks every pull request: release files, render freshness, kustomize build, schemas and
# rules, reported as annotations on the changed lines.
name: meshcanary
on:
  pull_request:
  # Each push to the main branch leaves the records a pull request's check starts from
  # (name your default branch here if it is another).
  push:
    branches: [main]
# Read-only: annotations come from the workflow commands meshcanary prints, which need no token.
permissions:
  contents: read
# A new push to a pull request replaces its running check.
concurrency:
  group: meshcanary-${{{{ github.event.pull_request.number || github.ref }}}}
  cancel-in-progress: true
jobs:
  check:
    name: meshcanary check
    runs-on: ubuntu-latest
    timeout-minutes: 15
    steps:
      # Actions are pinned by full commit SHA (the tag is in the comment) so that a moved tag
      # cannot change what runs here.
      - uses: {CHECKOUT}
        with:
          persist-credentials: false                # nothing here pushes: no token in .git
      - uses: {SETUP_PYTHON}
        with:
          python-version: "3.12"
          # pip's downloads and the wheel it builds from the commit below, keyed on this file
          # (rename the path with it): a new MESHCANARY_REF starts a new cache.
          cache: pip
          cache-dependency-path: {WORKFLOW}
      - name: Install meshcanary
        env:
          # The meshcanary commit to install: a full commit SHA, which cannot move. Keep it
          # equal to `rev:` in {PRE_COMMIT}.{_unset_comment(commit, 10)}
          MESHCANARY_REF: {commit}
        run: |
          if [[ ! "$MESHCANARY_REF" =~ ^[0-9a-f]{{40}}$ ]]; then
            echo "::error file={WORKFLOW}::set MESHCANARY_REF to a commit SHA of {REPOSITORY}"
            exit 1
          fi
          python -m pip install "meshcanary @ git+{REPOSITORY}@$MESHCANARY_REF"
      # The records of earlier checks (each overlay's findings, kept by the digests of exactly
      # the files it read): a check after a one-service change builds that service again,
      # not every overlay. They are data, used only where the files still have those digests.
      - name: Restore the records of earlier checks
        uses: {CACHE_RESTORE}
        with:
          path: ~/.cache/meshcanary
          key: meshcanary-check-${{{{ github.sha }}}}
          restore-keys: meshcanary-check-
      - name: Check
        id: check
        run: meshcanary check --format github
      # Findings fail the check, and its records are still worth keeping.
      - name: Save the records of this check
        if: ${{{{ !cancelled() && steps.check.outcome != 'skipped' }}}}
        uses: {CACHE_SAVE}
        with:
          path: ~/.cache/meshcanary
          key: meshcanary-check-${{{{ github.sha }}}}
"""


def _unset_comment(commit: str, indent: int) -> str:
    """Comment lines (each after a newline) that mark a placeholder commit; none for a SHA."""
    if commit != UNSET:
        return ""
    pad = "\n" + " " * indent + "# "
    return (
        f"{pad}SET ME: `meshcanary init` could not tell which commit it runs from."
        f"{pad}Replace {UNSET} with a full commit SHA of"
        f"{pad}{REPOSITORY}, here and wherever else it appears."
    )


def _readme_unset(commit: str) -> str:
    if commit != UNSET:
        return ""
    return (
        f" `meshcanary init` could not tell which commit it runs from: first replace"
        f"\n   {UNSET} with a full commit SHA of {REPOSITORY} in all three."
    )


def _readme(service: str, environments: list[str], commit: str) -> str:
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
| `deploy/overlays/<env>/` | versioned Deployments, DestinationRule, VirtualService (or, with `routing: gateway-api`, a Service per version and HTTPRoutes) | `meshcanary render` |
| `schemas/` | JSON Schemas your editor uses to complete and check the files above | `meshcanary init` |

## Next steps

1. Install meshcanary and render the overlays:

   ```sh
   python3 -m venv .venv && .venv/bin/pip install "meshcanary @ git+{REPOSITORY}@{commit}"
   .venv/bin/meshcanary render
   .venv/bin/meshcanary check
   ```

   The workflow installs the same commit (`MESHCANARY_REF` in `{WORKFLOW}`) and
   pre-commit runs its hooks (`rev:` in `{PRE_COMMIT}`): to move to another, change all
   three.{_readme_unset(commit)}

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
