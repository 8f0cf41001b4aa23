"""Start-up: a run on good input imports what it uses, and nothing else.

The pre-commit hook and `lint` of one file are mostly start-up, so every package imported
and not used is felt on each commit. Each run here is a fresh interpreter that runs the
command and writes down `sys.modules` at its end; the packages named must not be in it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from meshcanary.__main__ import main
from meshcanary.report import FORMATS
from tests.support import ARTICLE, ROOT, commit_all, git, isolate_git

# Runs the command as the console script does, then lists every module it imported.
WRAPPER = (
    "import json, sys\n"
    "from meshcanary.__main__ import main\n"
    "code = main(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w', encoding='utf-8') as listing:\n"
    "    json.dump(sorted(sys.modules), listing)\n"
    "raise SystemExit(code)\n"
)

# Never on good input: Typer's pydantic path (cli/coercion.py converts the options), Python's
# jsonschema and its referencing (jsonschema-rs says a file conforms), GitPython (plain git
# answers a hook), Rich (no output is styled by it).
NEVER = ("pydantic", "pydantic_core", "jsonschema", "referencing", "git", "rich")
# Each format's module is imported when that format is asked for.
OTHER_FORMATS = tuple(FORMATS[name].partition(":")[0] for name in FORMATS if name != "text")
# The CEL engine runs a CRD's validation rules: loaded when an object has a field one is on.
CEL = "meshcanary.validate.cel"
# A VirtualService whose route has a timeout, a field with a rule (`duration(self) >= ...`).
ROUTE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - route:
    - destination: {host: web}
"""
# A Deployment with nothing to report, its numbers and its boolean in YAML 1.1's spellings.
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 0x3
  revisionHistoryLimit: 012
  progressDeadlineSeconds: 1_200
  minReadySeconds: 1:00
  paused: no
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.4.2
          ports:
            - containerPort: 8080
"""
# Imports the modules named, and nothing else: what they import as they load.
ALONE = (
    "import importlib, json, sys\n"
    "for name in sys.argv[2:]:\n"
    "    importlib.import_module(name)\n"
    "with open(sys.argv[1], 'w', encoding='utf-8') as listing:\n"
    "    json.dump(sorted(sys.modules), listing)\n"
)


@pytest.fixture
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path_factory, monkeypatch)


def _imported(listing: Path, *args: str, cwd: Path) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(listing), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert listing.exists(), done.stderr
    return done.returncode, set(json.loads(listing.read_text(encoding="utf-8")))


def _imported_alone(listing: Path, modules: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", ALONE, str(listing), *modules],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(listing.read_text(encoding="utf-8")))


def _among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages))


def test_lint_of_a_good_file(tmp_path: Path) -> None:
    code, modules = _imported(
        tmp_path / "modules.json", "lint", str(ARTICLE / "micro-api-canary.yaml"), cwd=tmp_path
    )
    assert code == 0
    assert "meshcanary.report.text" in modules  # the run did get to its report
    # lint reads manifests with the fast reader, and with libyaml where it finds something
    # (positions): ruamel is for release files. kustomize builds only a folder given; a
    # Deployment has no CRD validation rules.
    lazy = ("meshcanary.kustomize", "meshcanary.validate.crd_rules", CEL)
    assert _among(modules, (*NEVER, "ruamel", *OTHER_FORMATS, *lazy)) == []


ANCHOR = ("  labels: {app: web}\nspec:", "  labels: &app {app: web}\nspec:")


@pytest.mark.parametrize(
    ("changes", "code", "pyyaml"),
    [
        ((), 0, False),  # the fast reader reads it all: PyYAML is never imported
        # PyYAML reads what the fast reader leaves (an anchor and its alias) ...
        ((ANCHOR, ("      labels: {app: web}", "      labels: *app")), 0, True),
        # ... and finds the place of a finding.
        ((("replicas: 0x3", "replicas: '3'"),), 1, True),
    ],
    ids=["read-fast", "an-anchor", "a-finding"],
)
def test_lint_imports_pyyaml_only_for_what_the_fast_reader_leaves(
    changes: tuple[tuple[str, str], ...], code: int, pyyaml: bool, tmp_path: Path
) -> None:
    text = DEPLOYMENT
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "deployment.yaml").write_text(text, encoding="utf-8")
    # One process: with more, a forked copy validates, and finds the place of a finding.
    done, modules = _imported(
        tmp_path / "modules.json", "lint", "--jobs", "1", "deployment.yaml", cwd=tmp_path
    )
    assert done == code
    assert "meshcanary.report.text" in modules  # the run did get to its report
    assert ("yaml" in modules) is pyyaml
    assert _among(modules, ("ruamel",)) == []


@pytest.mark.parametrize(("replicas", "code"), [("3", 0), ("'3'", 1)])
def test_with_two_jobs_a_forked_copy_validates(replicas: str, code: int, tmp_path: Path) -> None:
    """The rules run here while a forked copy imports jsonschema-rs and validates: the
    verdict comes back (a finding is exit 1), and this process never imports the validator."""
    text = DEPLOYMENT.replace("replicas: 0x3", f"replicas: {replicas}")
    (tmp_path / "deployment.yaml").write_text(text, encoding="utf-8")
    args = ("-o", "json", "deployment.yaml")
    done, beside = _imported(tmp_path / "beside.json", "lint", "--jobs", "2", *args, cwd=tmp_path)
    alone, here = _imported(tmp_path / "here.json", "lint", "--jobs", "1", *args, cwd=tmp_path)
    assert (done, alone) == (code, code)
    assert "jsonschema_rs" not in beside
    assert "jsonschema_rs" in here
    # Verdicts come back as marshal's statuses; pickle only carries problems when there are.
    assert ("pickle" in beside) is (code == 1)
    assert "difflib" not in beside  # nothing to suggest


def test_the_validating_copy_is_forked_before_lints_imports(tmp_path: Path) -> None:
    """The copy imports jsonschema-rs and makes its validator while this process imports
    the rest of `lint`, reads and parses: it is forked before `meshcanary.lint` is imported."""
    text = DEPLOYMENT.replace("replicas: 0x3", "replicas: '3'")
    (tmp_path / "deployment.yaml").write_text(text, encoding="utf-8")
    script = (
        "import sys\n"
        "from meshcanary import validating\n"
        "made = validating.Validating.__init__\n"
        "def forking(self, validation):\n"
        "    print('lint imported' if 'meshcanary.lint' in sys.modules else 'not yet')\n"
        "    made(self, validation)\n"
        "validating.Validating.__init__ = forking\n"
        "from meshcanary.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "lint", "--jobs", "2", "-o", "json", "deployment.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr  # the copy's verdict: a string for replicas
    assert done.stdout.startswith("not yet\n")


def test_lint_of_a_kustomize_folder_loads_the_kustomize_runner(tmp_path: Path) -> None:
    code, modules = _imported(
        tmp_path / "modules.json", "lint", str(ROOT / "deploy/overlays/prod"), cwd=tmp_path
    )
    assert code == 0
    assert "meshcanary.kustomize" in modules


@pytest.mark.parametrize(("timeout", "loaded"), [("", False), ("    timeout: 5s\n", True)])
def test_the_cel_engine_loads_for_a_field_with_a_rule(
    timeout: str, loaded: bool, tmp_path: Path
) -> None:
    (tmp_path / "route.yaml").write_text(ROUTE + timeout, encoding="utf-8")
    code, modules = _imported(
        tmp_path / "modules.json", "lint", "--jobs", "1", "route.yaml", cwd=tmp_path
    )
    assert code == 0
    assert (CEL in modules) is loaded


@pytest.mark.usefixtures("isolated_git")
def test_the_hook_of_one_release_file(example_repo: Path, tmp_path: Path) -> None:
    commit_all(example_repo)
    release = example_repo / "environments" / "prod" / "micro-api.yaml"
    text = release.read_text(encoding="utf-8")
    changed = text.replace("weight: 70}", "weight: 60}").replace("weight: 30}", "weight: 40}")
    assert changed != text
    release.write_text(changed, encoding="utf-8")
    assert main(["-C", str(example_repo), "-q", "render", "prod"]) == 0
    git(example_repo, "add", "-A")

    code, modules = _imported(tmp_path / "modules.json", "check", "--staged", cwd=example_repo)
    assert code == 0
    assert "meshcanary.kustomize.batch" in modules  # it built the changed overlay
    # Release files are read by libyaml and typed by ruamel's rules, without ruamel.
    assert _among(modules, (*NEVER, *OTHER_FORMATS, "ruamel")) == []
    # PyYAML is used as the hook runs (libyaml composes the release files; kustomize/batch.py
    # reads the origins of a batch build), but none of the modules the run imported imports
    # it, or ruamel, as it loads.
    ours = sorted(m for m in modules if m.partition(".")[0] == "meshcanary")
    assert len(ours) > 50
    assert _among(_imported_alone(tmp_path / "alone.json", ours), ("yaml", "ruamel")) == []


@pytest.mark.parametrize("args", [["--help"], ["lint", "--help"], ["--version"]])
def test_help_and_version(args: list[str], tmp_path: Path) -> None:
    code, modules = _imported(tmp_path / "modules.json", *args, cwd=tmp_path)
    assert code == 0
    # Help reads the options of the program and of one command: no YAML, no command's code.
    assert _among(modules, (*NEVER, "ruamel", "yaml", "meshcanary.commands")) == []
