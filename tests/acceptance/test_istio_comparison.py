"""The README's comparison with istioctl analyze shows what `lint` really says on its input."""

from __future__ import annotations

import re

from tests.support import ROOT


def test_the_readme_shows_lints_real_findings(cli) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Compared with istioctl analyze", 1)[1]
    shown = re.search(r"```text\n(.*?)```", section, re.S)
    assert shown is not None
    outcome = cli("lint", str(ROOT / "examples" / "istio-analyze"))
    assert outcome.code == 1
    findings = [
        line.replace(str(ROOT) + "/", "")
        for line in outcome.out.splitlines()
        if not line.startswith("  hint:") and ": " in line and "[" in line
    ]
    assert findings == shown[1].splitlines()
