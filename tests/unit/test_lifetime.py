"""What a run keeps until its process ends: only when the console script is about to end it."""

from __future__ import annotations

import weakref

import pytest

from meshcanary import lifetime
from meshcanary.manifest import Parsed
from tests.support import ARTICLE


class Held:
    pass


def test_in_process_nothing_is_kept() -> None:
    assert lifetime.LEAVING is False
    held = Held()
    gone = weakref.ref(held)
    lifetime.keep(held)
    del held
    assert gone() is None


def test_a_lint_about_to_leave_keeps_what_it_parsed(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifetime, "LEAVING", True)
    monkeypatch.setattr(lifetime, "_kept", [])
    assert cli("lint", "--jobs", "1", ARTICLE / "micro-api.yaml").code == 1  # its findings
    parsed = [o for o in lifetime._kept if isinstance(o, Parsed)]
    assert len(parsed) == 1
    assert parsed[0].resources  # the resources the report was made of, not freed one by one
