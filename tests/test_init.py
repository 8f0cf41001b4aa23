"""`meshcanary init`: a new repository that renders, builds and checks cleanly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from meshcanary import __version__
from meshcanary.commands.check import CheckOptions, check
from meshcanary.commands.init import init
from meshcanary.commands.render import render
from meshcanary.errors import InputError
from tests.conftest import by_kind, kustomize_build, write


def test_scaffold_renders_builds_and_checks_clean(tmp_path: Path) -> None:
    root = tmp_path / "new"
    written = init(root)
    assert sorted(written) == sorted(
        str(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file()
    )
    assert {
        "environments/dev/environment.yaml",
        "environments/dev/hello.yaml",
        "environments/prod/environment.yaml",
        "environments/prod/hello.yaml",
        "deploy/base/hello/kustomization.yaml",
        "deploy/base/hello/deployment.yaml",
        "deploy/base/hello/service.yaml",
        ".pre-commit-config.yaml",
        ".github/workflows/meshcanary.yml",
        "README.md",
    } <= set(written)

    result = render(root, [])
    assert sorted(e.environment.name for e in result.environments) == ["dev", "prod"]
    assert not render(root, []).stale  # a second render changes nothing
    report = check(root, [], CheckOptions())
    assert [p.format() for p in report.problems] == []

    for env in ("dev", "prod"):
        built = kustomize_build(root / "deploy/overlays" / env / "hello")
        (deployment,) = by_kind(built, "Deployment")
        assert deployment["metadata"]["name"] == "hello-v1"
        assert deployment["metadata"]["namespace"] == env
        assert deployment["spec"]["template"]["metadata"]["labels"] == {
            "app": "hello",
            "version": "v1",
        }
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "registry.example/hello:1.0.0"
        assert container["resources"]["limits"]
        (service,) = by_kind(built, "Service")
        assert service["spec"]["selector"] == {"app": "hello"}
        assert service["spec"]["ports"][0]["name"] == "http"
        (route,) = by_kind(built, "VirtualService")
        assert [d["weight"] for d in route["spec"]["http"][0]["route"]] == [100]


def test_release_files_say_one_version_at_100(tmp_path: Path) -> None:
    init(tmp_path, service="shop", environments=("staging",))
    text = (tmp_path / "environments/staging/shop.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/release.schema.json\n")
    release = yaml.safe_load(text)
    assert release["service"] == "shop"
    assert release["base"] == "deploy/base/shop"
    assert release["versions"] == {
        "v1": {"image": "registry.example/shop:1.0.0", "replicas": 2, "weight": 100}
    }
    # The `$schema` lines point at copies inside the new repository.
    assert (tmp_path / "schemas/release.schema.json").is_file()
    assert (tmp_path / "schemas/environment.schema.json").is_file()


def test_pre_commit_uses_meshcanarys_hooks(tmp_path: Path) -> None:
    init(tmp_path)
    config = yaml.safe_load((tmp_path / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"] == "https://github.com/meshcanary/meshcanary"
    assert repo["rev"] == f"v{__version__}"
    assert [h["id"] for h in repo["hooks"]] == ["meshcanary-check", "meshcanary-render"]


def test_workflow_checks_pull_requests_without_expressions_in_scripts(tmp_path: Path) -> None:
    init(tmp_path)
    text = (tmp_path / ".github/workflows/meshcanary.yml").read_text()
    assert "${{" not in text
    workflow = yaml.safe_load(text)
    assert list(workflow[True]) == ["pull_request"]  # YAML 1.1 reads `on` as true
    assert workflow["permissions"] == {"contents": "read"}
    runs = [s["run"] for s in workflow["jobs"]["check"]["steps"] if "run" in s]
    assert "meshcanary check --format github" in runs
    assert not [r for r in runs if re.search(r"\$\{\{", r)]


def test_readme_tells_the_next_steps(tmp_path: Path) -> None:
    init(tmp_path, service="shop")
    readme = (tmp_path / "README.md").read_text()
    for step in ("meshcanary render", "meshcanary check", "pre-commit install", "import"):
        assert step in readme


def test_a_git_folder_is_allowed_anything_else_refused(tmp_path: Path) -> None:
    (tmp_path / "ok" / ".git").mkdir(parents=True)
    assert init(tmp_path / "ok")
    taken = tmp_path / "taken"
    write(taken / "notes.txt", "mine\n")
    with pytest.raises(InputError, match=r"is not empty \(notes\.txt\)"):
        init(taken)
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
    with pytest.raises(InputError, match="not a folder"):
        init(taken / "notes.txt")


def test_names_must_be_dns_labels(tmp_path: Path) -> None:
    with pytest.raises(InputError, match='service "Hello"'):
        init(tmp_path / "a", service="Hello")
    with pytest.raises(InputError, match='environment "prod_eu"'):
        init(tmp_path / "b", environments=("dev", "prod_eu"))
    with pytest.raises(InputError, match="named twice"):
        init(tmp_path / "c", environments=("dev", "dev"))
    assert not any((tmp_path / name).exists() for name in "abc")
