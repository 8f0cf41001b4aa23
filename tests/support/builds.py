"""What a check builds: the overlay folders handed to kustomize, recorded as the run goes."""

from __future__ import annotations

import pytest

from meshcanary.check import pipeline


def recorded_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders every later check in the test builds, in order (the real builds run)."""
    built: list[str] = []
    real = pipeline.build

    def recorded(root, units, jobs=None, builder=None):  # type: ignore[no-untyped-def]
        built.extend(u.folder for u in units)
        return real(root, units, jobs, builder)

    monkeypatch.setattr(pipeline, "build", recorded)
    return built
