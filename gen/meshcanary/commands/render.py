"""`meshcanary render`: release files in, deploy/overlays/<env>/ out.

The command is `plan` (`--check`) or `render`, as the repository's render step has them.
"""

from __future__ import annotations

from meshcanary.render.repository import plan, render

__all__ = ["plan", "render"]
