"""The DNS-1123 label: the name Kubernetes gives Services, namespaces and the like, which a
release's service, environment and version names must be."""

from __future__ import annotations

import re

# As text, for the patterns built from labels (DNS names, gateway references).
LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL = re.compile(LABEL)


def is_dns_label(text: str) -> bool:
    """Whether `text` is a DNS-1123 label: lower-case letters, digits and '-', starting and
    ending with a letter or digit, at most 63 characters."""
    return len(text) <= 63 and _LABEL.fullmatch(text) is not None
