"""A real Prometheus for the tests: series backfilled with promtool, a server on a loopback port.

`backfill` writes TSDB blocks from OpenMetrics text (`metrics.py`) with `promtool tsdb
create-blocks-from openmetrics`; `start` runs `prometheus` over them, with no scrape targets,
until `Server.stop`. What promtool 2.42 does that shapes this:

- it reads its whole input once for every 2 h block it writes, so a long span is cheaper as one
  text per block (`metrics.openmetrics_blocks`);
- a sample older than the one before it in its series is dropped without a word (exit 0), so
  `backfill` counts the samples promtool says it wrote against the lines it was given;
- the text must end with `# EOF`;
- running it twice over the same span writes overlapping blocks, which Prometheus merges when
  it queries them: backfill a span once.

Tests get a server from the `prometheus` fixture (`tests/conftest.py`); `require_tools` is what
it does when `prometheus` or `promtool` is missing: skip with a message locally, fail in CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.metrics import Workload, openmetrics_blocks

TOOLS = ("prometheus", "promtool")
# Retention counts back from the newest sample, not from today: the backfilled day is older than
# the default 15 days once the tests are run later, and must never be deleted under them.
RETENTION = "100y"
CONFIG = "global:\n  scrape_interval: 30s\n  evaluation_interval: 30s\n"


def require_tools() -> None:
    """Skip the test (fail it in CI, where CI is "true") when prometheus or promtool is missing."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    message = (
        f"{' and '.join(missing)} not on PATH: the metric tests need a real Prometheus "
        "(`apt-get install prometheus` brings both, or put a release's binaries on PATH)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def backfill(text: str, tsdb_dir: Path) -> int:
    """Write `text`'s samples into blocks in `tsdb_dir`; returns how many samples were written."""
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    source = tsdb_dir.parent / f"{tsdb_dir.name}.openmetrics"
    source.write_text(text, encoding="utf-8")
    try:
        done = subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        source.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"promtool failed (exit {done.returncode}):\n{done.stderr}")
    # Its table: ULID, min time, max time, duration, samples, chunks, series, size.
    rows = [line.split() for line in done.stdout.splitlines()[1:] if line.strip()]
    written = sum(int(row[4]) for row in rows)
    given = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    if written != given:
        raise RuntimeError(
            f"promtool wrote {written} of {given} samples (out of order ones are dropped):\n"
            f"{done.stdout}{done.stderr}"
        )
    return written


def backfill_workloads(
    workloads: Iterable[Workload], start: float, end: float, tsdb_dir: Path
) -> int:
    """Backfill `workloads`' series over [start, end) into `tsdb_dir`, one text per block."""
    return sum(backfill(text, tsdb_dir) for text in openmetrics_blocks(list(workloads), start, end))


@dataclass
class Server:
    """A running prometheus: its base URL, process and log."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """End the process: terminated, killed when it is not gone within 10 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start(tsdb_dir: Path, work_dir: Path, *flags: str, within: float = 60.0) -> Server:
    """Run prometheus over `tsdb_dir` on a free loopback port until it is ready.

    `flags` are added to its command line (`--query.max-samples=100`). A port taken between
    choosing it and prometheus binding it is retried with another one."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "prometheus.yml"
    config.write_text(CONFIG, encoding="utf-8")
    log = work_dir / "prometheus.log"
    for _attempt in range(3):
        url = f"http://127.0.0.1:{_free_port()}"
        command = [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tsdb_dir}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address={url.removeprefix('http://')}",
            *flags,
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=work_dir)
        server = Server(url, process, log)
        deadline = time.monotonic() + within
        while process.poll() is None and time.monotonic() < deadline:
            if _ready(url):
                return server
            time.sleep(0.1)
        server.stop()
        said = log.read_text(encoding="utf-8", errors="replace")
        if "address already in use" not in said:
            break
    tail = "\n".join(said.splitlines()[-30:])
    raise RuntimeError(
        f"prometheus did not become ready within {within:.0f} s "
        f"(exit code {process.returncode}); its log ({log}):\n{tail}"
    )
