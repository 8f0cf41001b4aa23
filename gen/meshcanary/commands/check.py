"""`meshcanary check`: the repository pipeline, from release files to one report.

The command is `check` with its options and a `--shard` parsed into a `Shard`; the pipeline
itself is meshcanary.check.
"""

from __future__ import annotations

from meshcanary.check import CheckOptions, check
from meshcanary.check.scope import Shard

__all__ = ["CheckOptions", "Shard", "check"]
