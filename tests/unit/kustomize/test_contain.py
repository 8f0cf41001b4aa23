"""Nothing a kustomization names runs a program, reads outside the repository or reaches out.

A pull request's author controls every kustomization in the repository: bases and committed
overlays. These are the attacks a reviewer found, each run through every command that builds
(render, check, the pre-commit hook's `check PATH`, step, diff, build), with the real
kustomize and real git.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from meshcanary.kustomize.contain import Remotes, Resolver, looks_remote
from tests.support import commit_all, write
from tests.support.bounds import count_calls

BASE = "deploy/base/micro-api/kustomization.yaml"
OVERLAY = "deploy/overlays/prod/micro-api/kustomization.yaml"
BASE_TEXT = "resources:\n  - deployment.yaml\n  - service.yaml\n"


@pytest.fixture
def repo(example_repo: Path) -> Path:
    """The examples in a git repository with one commit (diff and step need a HEAD)."""
    return commit_all(example_repo)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the repository holding a kustomization with a secret-looking object."""
    folder = tmp_path / "outside"
    write(folder / "kustomization.yaml", "resources: [cm.yaml]\n")
    write(
        folder / "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\ndata: {token: s3cr3t}\n",
    )
    return folder


@pytest.fixture
def upload_pack(tmp_path: Path) -> tuple[str, Path]:
    """The critical payload: a ref that git takes for `--upload-pack=<command>`, and its mark.

    A real repository for kustomize to fetch from, so that git gets as far as running the
    command; the command creates the mark file.
    """
    source = tmp_path / "source"
    write(source / "x" / "kustomization.yaml", "resources: []\n")
    commit_all(source)
    mark = tmp_path / "PWNED"
    return f"file://{source}//x?ref=--upload-pack=touch${{IFS}}{mark}", mark


def _append(path: Path, line: str) -> int:
    """Add `line` to the file; returns its line number."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text + line + "\n", encoding="utf-8")
    return text.count("\n") + 1


COMMANDS: dict[str, tuple[str, ...]] = {
    "render": ("render",),
    "check": ("check", "--no-cache"),
    "hook": ("check", "--no-cache", "environments/prod/micro-api.yaml", BASE),
    "step": ("step", "prod", "micro-api", "--to", "40"),
    "diff": ("diff",),
    "build": ("build",),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_base_line_runs_no_command(repo: Path, cli, upload_pack, command: str) -> None:
    payload, mark = upload_pack
    line = _append(repo / BASE, f'  - "{payload}"')
    outcome = cli("--repo", repo, *COMMANDS[command])
    assert not mark.exists(), "git ran the command in the ref"
    assert outcome.code in (1, 2)
    assert f"{BASE}:{line}:5: error: remote entry" in outcome.out + outcome.err


@pytest.mark.parametrize("command", ["check", "build", "diff"])
def test_a_hand_edited_overlay_runs_no_command(repo, cli, upload_pack, command: str) -> None:
    payload, mark = upload_pack
    text = (repo / OVERLAY).read_text(encoding="utf-8")
    (repo / OVERLAY).write_text(
        text.replace("resources:\n", f'resources:\n- "{payload}"\n'), encoding="utf-8"
    )
    line = text[: text.index("resources:\n")].count("\n") + 2
    outcome = cli("--repo", repo, *COMMANDS[command])
    assert not mark.exists()
    assert outcome.code in (1, 2)
    assert f"{OVERLAY}:{line}:3:" in outcome.out + outcome.err


def test_a_remote_entry_is_refused_with_a_hint(repo: Path, cli) -> None:
    line = _append(repo / BASE, "  - github.com/example/bases/micro-api?ref=v1")
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 2
    assert outcome.err == (
        f'{BASE}:{line}:5: error: remote entry "github.com/example/bases/micro-api?ref=v1" is '
        "refused: remote entries are fetched only with --allow-remote\n"
        "  hint: copy the base into this repository; to fetch it, list its https prefix under "
        "remoteBases in the environment file and run with --allow-remote\n"
    )


# Each: the base's kustomization, the line and column of the problem, and what it says. All
# of them built the outside ConfigMap into the overlay, or read outside files, before.
BYPASSES: dict[str, tuple[str, int, int, str]] = {
    # Go's JSON decoder matches field names whatever their case.
    "field-in-capitals": (
        "Resources: [deployment.yaml, service.yaml, ../../../../outside]\n",
        1,
        1,
        '"Resources" is spelt differently from "resources"',
    ),
    "field-with-long-s": (
        "re\u017fources: [deployment.yaml, service.yaml, ../../../../outside]\n",
        1,
        1,
        "is spelt differently",
    ),
    # go-yaml lets a later merge key override the keys before it.
    "merge-key": (BASE_TEXT + "<<: {resources: [../../../../outside]}\n", 4, 1, "merge key"),
    "helm": (
        BASE_TEXT + "helmCharts: [{name: x, valuesFile: ../../../../outside/cm.yaml}]\n",
        4,
        13,
        "helm charts are not built",
    ),
    "generator-file-outside": (
        BASE_TEXT + "configMapGenerator: [{name: x, files: [../../../../outside/cm.yaml]}]\n",
        4,
        40,
        'configMapGenerator file entry "../../../../outside/cm.yaml" is outside',
    ),
    "generator-key-file-outside": (
        BASE_TEXT + "configMapGenerator: [{name: x, files: [k=../../../../outside/cm.yaml]}]\n",
        4,
        40,
        "is outside the repository",
    ),
    "env-file-outside": (
        BASE_TEXT + "secretGenerator: [{name: x, envs: [../../../../outside/cm.yaml]}]\n",
        4,
        36,
        "is outside the repository",
    ),
    "generator-field-case": (
        BASE_TEXT + "configMapGenerator: [{name: x, Files: [../../../../outside/cm.yaml]}]\n",
        4,
        32,
        '"Files" is unknown',
    ),
    "patch-url": (
        BASE_TEXT + "patches: [{path: 'https://example.com/p.yaml'}]\n",
        4,
        18,
        "names something to fetch",
    ),
    "patch-outside": (
        BASE_TEXT + "patches: [{path: ../../../../outside/cm.yaml}]\n",
        4,
        18,
        "is outside the repository",
    ),
    "strategic-merge-url": (
        BASE_TEXT + "patchesStrategicMerge: ['https://example.com/p.yaml']\n",
        4,
        25,
        "names something to fetch",
    ),
    "crd-url": (
        BASE_TEXT + "crds: ['http://example.com/crd.yaml']\n",
        4,
        8,
        "names something to fetch",
    ),
    "openapi-outside": (
        BASE_TEXT + "openapi: {path: ../../../../outside/cm.yaml}\n",
        4,
        17,
        "is outside the repository",
    ),
    "replacement-outside": (
        BASE_TEXT + "replacements: [{path: ../../../../outside/cm.yaml}]\n",
        4,
        23,
        "is outside the repository",
    ),
    "plugin-not-builtin": (
        BASE_TEXT
        + "generators:\n- |\n  apiVersion: example.com/v1\n  kind: Exec\n  metadata: {name: x}\n",
        6,
        3,
        "is not one of kustomize's builtins",
    ),
    "plugin-builtin-path-outside": (
        BASE_TEXT
        + "transformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: x}\n  path: ../../../../outside/cm.yaml\n",
        9,
        9,
        "is outside the repository",
    ),
    "plugin-path-case": (
        BASE_TEXT
        + "transformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: x}\n  Path: ../../../../outside/cm.yaml\n",
        9,
        3,
        '"Path" is spelt differently',
    ),
    # kustomize reads the first document, and the last of two equal keys.
    "second-document": (
        "resources: [deployment.yaml, service.yaml]\n---\nresources: [../../../../outside]\n",
        3,
        1,
        "a second YAML document",
    ),
    "repeated-key": (
        BASE_TEXT + "resources: [../../../../outside]\n",
        4,
        13,
        "is outside the repository",
    ),
    "unknown-field": (
        BASE_TEXT + "vendored: [../../../../outside]\n",
        4,
        1,
        '"vendored" is unknown',
    ),
}


@pytest.mark.parametrize("case", sorted(BYPASSES))
def test_a_base_cannot_reach_outside(repo: Path, outside: Path, cli, case: str) -> None:
    text, line, column, message = BYPASSES[case]
    (repo / BASE).write_text(text, encoding="utf-8")
    for command in ("render", "build"):
        outcome = cli("--repo", repo, command)
        assert outcome.code == 2, (command, outcome)
        first = outcome.err.splitlines()[0]
        assert first.startswith(f"{BASE}:{line}:{column}: error: "), (command, outcome.err)
        assert message in first, (command, outcome.err)
        assert "s3cr3t" not in outcome.out + outcome.err
    assert not any("stolen" in p.read_text() for p in (repo / "deploy/overlays").rglob("*.yaml"))


def _link(repo: Path, name: str, target: Path) -> None:
    os.symlink(target, repo / "deploy/base/micro-api" / name)


LINKS: dict[str, Callable[[Path, Path], str]] = {
    # Entries that looked remote were skipped by the old containment check.
    "named-like-a-forge": lambda repo, out: (_link(repo, "github.com", out), "github.com")[1],
    "named-with-a-colon": lambda repo, out: (_link(repo, "evil:", out), "evil:")[1],
}


@pytest.mark.parametrize("case", sorted(LINKS))
def test_a_link_that_looks_remote_is_not_followed(repo, outside, cli, case: str) -> None:
    entry = LINKS[case](repo, outside)
    line = _append(repo / BASE, f'  - "{entry}"')
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 2
    assert outcome.err.startswith(f"{BASE}:{line}:5: error: remote entry"), outcome.err
    check = cli("--repo", repo, "check", "--no-cache")
    assert check.code == 2
    assert "stolen" not in check.out


def test_dot_dot_is_read_the_way_kustomize_reads_it(repo: Path, outside: Path, cli) -> None:
    """`deep/../../../../outside`: through the link `deep` it stays in the repository; read
    lexically, as kustomize's Go does, it leaves it."""
    deep = repo / "deploy/base/micro-api/a/b/c"
    deep.mkdir(parents=True)
    os.symlink(deep, repo / "deploy/base/micro-api/deep")
    (repo / "outside").symlink_to(outside)  # what the path names when read through the link
    entry = "deep/../../../../outside"
    assert os.path.realpath(repo / "deploy/base/micro-api" / entry).startswith(str(repo))
    line = _append(repo / BASE, f"  - {entry}")
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 2
    assert outcome.err.startswith(f"{BASE}:{line}:5: error: resources entry"), outcome.err
    assert "is outside the repository" in outcome.err


@pytest.mark.parametrize("command", ["check", "build", "diff"])
def test_a_committed_overlay_cannot_name_a_folder_outside(repo, outside, cli, command) -> None:
    text = (repo / OVERLAY).read_text(encoding="utf-8")
    relative = os.path.relpath(outside, repo / OVERLAY).removeprefix("../")
    (repo / OVERLAY).write_text(
        text.replace("resources:\n", f"resources:\n- {relative}\n"), encoding="utf-8"
    )
    line = text[: text.index("resources:\n")].count("\n") + 2
    args = ("diff", "--format", "markdown") if command == "diff" else COMMANDS[command]
    outcome = cli("--repo", repo, *args)
    assert outcome.code in (1, 2)
    assert f"{OVERLAY}:{line}:3:" in outcome.out + outcome.err
    assert "is outside the repository" in outcome.out + outcome.err
    assert "s3cr3t" not in outcome.out + outcome.err


def test_a_fifo_in_a_base_does_not_hang_the_run(repo: Path, cli) -> None:
    os.mkfifo(repo / "deploy/base/micro-api/pipe.yaml")
    line = _append(repo / BASE, "  - pipe.yaml")
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 2
    assert outcome.err.startswith(f"{BASE}:{line}:5: error: resources entry"), outcome.err
    assert "is a FIFO" in outcome.err


def test_a_configmap_file_outside_is_reported_at_the_base_line(repo, outside, cli) -> None:
    """Before, render passed and check reported it at the overlay's first line."""
    text = (
        BASE_TEXT
        + "configMapGenerator:\n  - name: leaked\n    files: [../../../../outside/cm.yaml]\n"
    )
    (repo / BASE).write_text(text, encoding="utf-8")
    outcome = cli("--repo", repo, "check", "--no-cache")
    assert outcome.code == 2
    assert outcome.out == ""
    assert outcome.err.startswith(f"{BASE}:6:13: error: configMapGenerator file entry"), outcome.err


def test_a_field_specs_path_is_a_field_not_a_file(repo, cli) -> None:
    """A builtin LabelTransformer's fieldSpecs name fields; before, `path: metadata/labels`
    was refused as a file of no repository."""
    write(
        repo / "deploy/base/micro-api/labels.yaml",
        "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: team}\n"
        "labels: {team: payments}\nfieldSpecs: [{path: metadata/labels, create: true}]\n",
    )
    (repo / BASE).write_text(BASE_TEXT + "transformers: [labels.yaml]\n", encoding="utf-8")
    outcome = cli("--repo", repo, "check", "--no-cache", "--no-base", "--format", "json")
    assert outcome.code in (0, 1), outcome.err
    assert outcome.err == ""


# --- Remote bases, allowed --------------------------------------------------------------


ALLOWED = Remotes(True, ("https://github.com/example-org/",))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://github.com/example-org/bases//micro-api?ref=v1.2.0", ""),
        ("https://github.com/example-org/bases?ref=main&submodules=false", ""),
        (
            "https://github.com/example-org/bases?ref=--upload-pack=touch${IFS}/tmp/x",
            "option of git",
        ),
        ("https://github.com/example-org/bases?version=-x", "option of git"),
        ("https://github.com/example-org/bases?timeout=9999", "query key"),
        ("https://github.com/example-org-evil/bases", "none of the environment's"),
        ("https://github.com/example-org/../other/bases", "only plain https URLs"),
        ("https://github.com@evil.example/example-org/bases", "only plain https URLs"),
        ("http://github.com/example-org/bases", "only plain https URLs"),
        ("file:///tmp/example-org/bases", "only plain https URLs"),
        ("git@github.com:example-org/bases.git", "only plain https URLs"),
        ("https://github.com/example-org/bases?ref=v1\nx", "option of git"),
    ],
)
def test_an_allowed_remote_is_a_plain_https_url_with_a_plain_ref(url: str, reason: str) -> None:
    found = ALLOWED.admits(url)
    assert (reason in found) if reason else found == "", found


def test_remotes_need_both_the_run_and_the_environment() -> None:
    url = "https://github.com/example-org/bases?ref=v1"
    assert "--allow-remote" in Remotes(False, ALLOWED.prefixes).admits(url)
    assert "no remoteBases" in Remotes(True, ()).admits(url)


@pytest.mark.parametrize(
    "entry",
    [
        "https://example.com/x",
        "HTTP://example.com/x",
        "file:///tmp/x",
        "git::https://example.com/x",
        "gh:org/repo",
        "git@github.com:org/repo",
        "github.com/org/repo",
        "GitHub.com/org/repo",
        "example.com:org/repo",
        "user@example.com/org/repo",
        "dir//sub",
        "dir?ref=x",
        "host/_git/repo",
        "example.com/org/repo.git",
    ],
)
def test_what_kustomize_could_fetch_looks_remote(entry: str) -> None:
    assert looks_remote(entry)


@pytest.mark.parametrize("entry", ["deployment.yaml", "../base/x", "a/b:c.yaml", "v1", "."])
def test_local_paths_do_not_look_remote(entry: str) -> None:
    assert not looks_remote(entry)


def test_a_remote_that_never_answers_stops_at_the_deadline(
    repo: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With remotes allowed, a server that accepts and never answers holds the run only until
    --timeout; before, each of three builds waited 300 s."""
    import socket

    from meshcanary import kustomize

    runs = count_calls(monkeypatch, kustomize, "_completed")  # (args, limit, env, handle)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    try:
        env = repo / "environments/prod/environment.yaml"
        env.write_text(
            env.read_text(encoding="utf-8") + f"remoteBases: ['https://127.0.0.1:{port}/']\n",
            encoding="utf-8",
        )
        line = _append(repo / BASE, f"  - https://127.0.0.1:{port}/org/bases?ref=v1")
        outcome = cli("--repo", repo, "--allow-remote", "--timeout", "4", "render", "prod")
    finally:
        server.close()
    assert outcome.code == 2
    # Each kustomize process that ran was given what was left of the run's 4 s, not 300 s of
    # its own; a build due after the deadline did not start, and the message says so.
    limits = [args[1] for args, _ in runs.made if args[0][0] == kustomize.command()[0]]
    assert limits and all(0 < limit <= 4 for limit in limits), limits
    assert "deadline (--timeout 4 s)" in outcome.err, outcome.err
    del line


def test_an_allowed_remote_is_handed_to_kustomize(repo: Path, cli) -> None:
    """Allowed by the run and the environment, the entry reaches kustomize (which then fails
    here: this machine has no network), and kustomize is told https only."""
    env = repo / "environments/prod/environment.yaml"
    env.write_text(
        env.read_text(encoding="utf-8") + "remoteBases: ['https://example.invalid/org/']\n",
        encoding="utf-8",
    )
    _append(repo / BASE, "  - https://example.invalid/org/bases?ref=v1")
    refused = cli("--repo", repo, "render", "prod")
    assert "is refused: remote entries are fetched only with --allow-remote" in refused.err
    allowed = cli("--repo", repo, "--allow-remote", "--timeout", "60", "render", "prod")
    assert allowed.code == 2
    assert "is refused" not in allowed.err
    assert 'kustomize cannot build base "deploy/base/micro-api"' in allowed.err


# --- The flags and the environment of every kustomize call ------------------------------

SECRETS = {
    "GH_TOKEN": "ghp_secret1",
    "GITHUB_TOKEN": "ghs_secret2",
    "AWS_SECRET_ACCESS_KEY": "aws_secret3",
    "MY_PASSWORD": "hunter2",
    "GIT_ASKPASS": "/bin/echo",
    "GIT_CONFIG_PARAMETERS": "'core.sshCommand=touch /tmp/x'",
}


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, Path]:
    """A `kustomize` on PATH that logs its arguments and environment, then runs the real one.

    Each call writes its own file: builds run several at once.
    """
    from meshcanary.kustomize import command

    real = command()
    calls = tmp_path / "calls"
    calls.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kustomize"
    real_argv = " ".join(f"'{part}'" for part in real[:2])
    script.write_text(
        "#!/bin/sh\n"
        f'{{ printf "ARGS %s\\n" "$*"; /usr/bin/env | sed "s/^/ENV /"; }} > {calls}/$$\n'
        f'shift\nexec {real_argv} "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return bin_dir, calls


def test_every_kustomize_call_gets_the_flags_and_no_secret(repo, recorded, tmp_path) -> None:
    from meshcanary.kustomize import FLAGS

    bin_dir, call_files = recorded
    # A base kustomize must build (a name prefix), so render calls it too.
    (repo / "deploy/base/checkout/kustomization.yaml").write_text(
        (repo / "deploy/base/checkout/kustomization.yaml").read_text(encoding="utf-8")
        + "commonAnnotations: {owner: shop}\nnamePrefix: ''\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(SECRETS, PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    meshcanary = shutil.which("meshcanary", path=str(Path(sys.executable).parent))
    assert meshcanary is not None
    runs = [
        ["render"],
        ["check", "--no-cache"],
        ["check", "--no-cache", "environments/prod/micro-api.yaml"],
        ["build"],
        ["diff"],
        ["lint", "deploy/overlays/prod/micro-api"],
        ["set-weights", "prod", "micro-api", "v1=60", "v2=40"],
    ]
    calls: list[tuple[str, dict[str, str]]] = []
    for args in runs:
        done = subprocess.run(
            [meshcanary, "--repo", str(repo), *args],
            cwd=repo,
            env=env,
            capture_output=True,
            check=False,
            timeout=300,
        )
        made = sorted(call_files.iterdir())
        assert made, f"{args} ran no kustomize: {done.stderr!r}"
        for call in made:
            lines = call.read_text(encoding="utf-8").splitlines()
            assert lines[0].startswith("ARGS "), lines
            pairs = (line.removeprefix("ENV ").partition("=")[::2] for line in lines[1:])
            calls.append((lines[0].removeprefix("ARGS "), dict(pairs)))
            call.unlink()
    allowed = {"HOME", "XDG_CONFIG_HOME", "KUBERC", "TMPDIR", "LC_ALL", "GOGC", "PWD", "SHLVL"}
    allowed |= {"_"}
    allowed |= {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"}
    for argv, environment in calls:
        assert argv.split()[1 : 1 + len(FLAGS)] == list(FLAGS), argv
        assert set(environment) <= allowed, set(environment) - allowed
        assert "PATH" not in environment  # so it cannot start git, or anything else
        assert environment["HTTPS_PROXY"] == "http://127.0.0.1:9"
        assert not set(SECRETS.values()) & set(environment.values())


def test_kustomize_without_remotes_can_fetch_nothing(tmp_path: Path) -> None:
    """Defence in depth: even an entry the resolver never saw cannot reach the network or git."""
    from meshcanary.kustomize import command, environment

    folder = tmp_path / "k"
    for entry, says in [
        ("https://example.com/x.yaml", "proxyconnect tcp: dial tcp 127.0.0.1:9"),
        ("github.com/example/repo", "no 'git' program on path"),
    ]:
        write(folder / "kustomization.yaml", f"resources: ['{entry}']\n")
        done = subprocess.run(
            [*command(), str(folder)],
            capture_output=True,
            text=True,
            env=environment(False),
            check=False,
            timeout=60,
        )
        assert done.returncode != 0
        assert says in done.stderr, done.stderr


def test_a_folder_is_resolved_once_per_run(repo: Path) -> None:
    resolver = Resolver(repo)
    base = repo / "deploy/base/micro-api"
    assert resolver.check(base) == []
    verdict = resolver._verdicts[(str(base.resolve()), False)]
    assert resolver.check(base) == []
    assert resolver._verdicts[(str(base.resolve()), False)] is verdict
    # Rewritten since: read again.
    (base / "kustomization.yaml").write_text(BASE_TEXT + "  - ../../../x\n", encoding="utf-8")
    assert resolver.check(base)


def test_real_paths_are_the_systems(tmp_path: Path) -> None:
    """The resolver's remembered real paths agree with os.path.realpath, links and .. mixed."""
    import random

    (tmp_path / "a/b/c").mkdir(parents=True)
    (tmp_path / "x").mkdir()
    os.symlink(tmp_path / "a/b/c", tmp_path / "x/deep")
    os.symlink("../a", tmp_path / "x/rel")
    os.symlink("nowhere", tmp_path / "dangling")
    resolver = Resolver(tmp_path)
    parts = ["a", "b", "c", "x", "deep", "rel", "..", ".", "dangling", "nope"]
    pick = random.Random(7)  # noqa: S311 - a fixed sequence of paths, not a secret
    for _ in range(3000):
        path = os.path.join(str(tmp_path), *pick.choices(parts, k=pick.randint(1, 6)))
        assert resolver.real(path) == os.path.realpath(path), path


def test_a_link_loop_is_not_a_usable_path(tmp_path: Path) -> None:
    os.symlink("two", tmp_path / "one")
    os.symlink("one", tmp_path / "two")
    real, reason = Resolver(tmp_path).target(tmp_path, "one")
    assert real is None
    assert reason.startswith("is not a usable path: too many levels of symbolic links")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../../../../../outside/cm.yaml", "goes up with .."),
        ("https://example.com/p.yaml", "names something to fetch"),
    ],
)
def test_a_plugin_folder_is_read_as_configuration(repo: Path, outside, cli, path, message) -> None:
    """`transformers: [folder]` builds the folder and takes its objects for plugin
    configurations: their paths are checked like an inline configuration's."""
    (repo / BASE).write_text(BASE_TEXT + "transformers: [plugins]\n", encoding="utf-8")
    plugins = repo / "deploy/base/micro-api/plugins"
    write(plugins / "kustomization.yaml", "resources: [patch.yaml]\n")
    write(
        plugins / "patch.yaml",
        f"apiVersion: builtin\nkind: PatchTransformer\nmetadata: {{name: x}}\npath: {path}\n",
    )
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 2
    first = outcome.err.splitlines()[0]
    assert first.startswith("deploy/base/micro-api/plugins/patch.yaml:4:7: error: "), outcome.err
    assert message in first


def test_lint_of_a_kustomize_folder_is_resolved_first(repo: Path, outside: Path, cli) -> None:
    """`lint FOLDER` builds a folder with a kustomization: resolved like any other."""
    folder = repo / "deploy/base/micro-api"
    line = _append(folder / "kustomization.yaml", "  - ../../../../outside")
    outcome = cli("lint", str(folder))
    assert outcome.code == 2
    assert "s3cr3t" not in outcome.out + outcome.err
    assert f"kustomization.yaml:{line}:5: error: resources entry" in outcome.err, outcome.err
    assert "is outside the repository" in outcome.err
