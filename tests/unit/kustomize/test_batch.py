"""kustomize.batch: overlays built BATCH at a time, each given back exactly its own objects."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary import kustomize
from meshcanary.kustomize import batch
from tests.support import ROOT


def test_batches_hold_at_most_batch_overlays_of_one_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "bench" / "benchmark.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(tmp_path, 30, 2)
    subprocess.run(
        [str(Path(sys.executable).parent / "meshcanary"), "--repo", tmp_path, "render"],
        check=True,
        capture_output=True,
        env=os.environ | {"MESHCANARY_CACHE_DIR": str(tmp_path / ".cache")},
    )
    overlays = [
        batch.Overlay(
            f"deploy/overlays/{env}/svc-{index:04d}", env, (), f"deploy/base/svc-{index:04d}"
        )
        for env in ("env-0", "env-1")
        for index in range(30)
    ]
    listed: list[str] = []  # what each kustomize process is given to build
    real = kustomize._run

    def counted(folder: Path, *args: Any) -> kustomize.BuildResult:
        listing = (folder / "kustomization.yaml").read_text(encoding="utf-8")
        envs = {line.split("/")[-2] for line in listing.splitlines() if line.startswith("- ")}
        listed.append(f"{listing.count(chr(10) + '- ')} in {' '.join(sorted(envs))}")
        return real(folder, *args)

    monkeypatch.setattr(kustomize, "_run", counted)
    results = batch.build(tmp_path, overlays, jobs=2)
    monkeypatch.setattr(kustomize, "_run", real)
    # 25 and 5 overlays of each environment; never one batch across two.
    assert sorted(listed) == ["25 in env-0", "25 in env-1", "5 in env-0", "5 in env-1"]
    assert all(result.ok and result.documents for result in results)
    # The first and last overlays of each batch give what they give when built alone.
    builder = kustomize.Builder(tmp_path)
    for index in (0, 24, 25, 29, 30, 54, 55, 59):
        overlay, result = overlays[index], results[index]
        alone = builder.build(kustomize.Target(tmp_path / overlay.folder, overlay.folder))
        assert list(result.documents or ()) == [d for d in yaml.safe_load_all(alone.text) if d]
