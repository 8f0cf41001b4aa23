"""Which Kubernetes schemas validate: the bundled versions, and versions outside them."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.errors import InputError
from meshcanary.validate import catalog
from tests.support import ROOT

SERVICE = ROOT / "deploy/base/micro-api/service.yaml"


def test_a_version_outside_the_bundled_range_is_an_error_naming_it(cli) -> None:
    """Before, 1.40.0 silently validated against 1.37's schemas."""
    outcome = cli("lint", "-k", "1.40.0", str(SERVICE))
    assert outcome.code == 2
    low, high = catalog.bundled_versions()[0], catalog.bundled_versions()[-1]
    assert outcome.err == (
        f"error: Kubernetes 1.40.0 schemas are not bundled: the bundled versions are "
        f"{low[0]}.{low[1]} to {high[0]}.{high[1]}; choose one of them, or give "
        "--schema-location\n"
    )


def test_an_older_version_is_an_error_too() -> None:
    with pytest.raises(InputError, match="the bundled versions are"):
        catalog.bundled_version("1.10.0")


def test_a_version_inside_the_range_uses_its_minor() -> None:
    low = catalog.bundled_versions()[0]
    chosen, note = catalog.bundled_version(f"{low[0]}.{low[1]}.99")
    assert chosen == "{}.{}.{}".format(*low)
    assert note == ""


def test_the_environment_version_is_held_to_the_range(example_repo: Path, cli) -> None:
    env = example_repo / "environments/prod/environment.yaml"
    env.write_text(
        env.read_text().replace("kubernetesVersion: 1.31.0", "kubernetesVersion: 1.99.0")
    )
    outcome = cli("--repo", example_repo, "check", "--no-cache")
    assert outcome.code == 2
    assert "Kubernetes 1.99.0 schemas are not bundled" in outcome.err
