"""The options every command shares: kustomize's reach `lint` when it builds a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.__main__ import main
from tests.support import ARTICLE, ROOT

FOLDER = ROOT / "deploy" / "overlays" / "prod"  # a Kustomize folder: lint builds it


def test_lint_builds_a_folder_with_the_kustomize_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-kustomize"
    assert main(["--kustomize", str(missing), "lint", str(FOLDER)]) == 2
    assert f"--kustomize {missing}: not an executable program" in capsys.readouterr().err


def test_lint_of_files_never_runs_kustomize(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-kustomize"
    assert main(["--kustomize", str(missing), "lint", str(ARTICLE / "micro-api-canary.yaml")]) == 0
    assert capsys.readouterr().err == ""
