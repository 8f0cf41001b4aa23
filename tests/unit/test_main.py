"""The console script leaves without tearing the interpreter down, and loses nothing by it:
the output is all written, the exit handlers run, the exit code is the command's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ARTICLE, BOOKINFO


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


def test_the_handlers_run_and_the_output_is_flushed_before_it_leaves() -> None:
    done = _python(
        "import atexit, sys\n"
        "from meshcanary.__main__ import leave\n"
        "atexit.register(print, 'the handler ran')\n"
        "print('out', end='')\n"
        "print('err', end='', file=sys.stderr)\n"
        "leave(5)\n"
        "print('not reached')\n"
    )
    assert (done.returncode, done.stdout, done.stderr) == (5, "outthe handler ran\n", "err")


def test_it_leaves_as_usual_while_another_thread_runs() -> None:
    done = _python(
        "import threading, time\n"
        "from meshcanary.__main__ import leave\n"
        "worker = threading.Thread(target=lambda: (time.sleep(0.2), print('the thread ended')))\n"
        "worker.start()\n"
        "leave(3)\n"
        "print('returned')\n"
        "raise SystemExit(3)\n"
    )
    assert (done.returncode, done.stdout) == (3, "returned\nthe thread ended\n")


def test_a_long_report_through_the_console_script_is_all_there(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("meshcanary")
    target = tmp_path / "report.json"
    with target.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            [str(script), "lint", "-o", "json", *map(str, ARTICLE.glob("*.yaml")), str(BOOKINFO)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr  # the article's manifests have findings
    report = json.loads(target.read_text(encoding="utf-8"))
    assert len(report["findings"]) > 5
    assert target.stat().st_size > 8192  # more than one buffer's worth
