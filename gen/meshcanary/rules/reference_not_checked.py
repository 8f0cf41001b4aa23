"""A reference into what the input does not hold is said to be unchecked, not passed.

Some references can be checked only against objects another repository usually manages: a
VirtualService's `ns/gateway` in a namespace the input holds nothing of, a route's
destination host in a namespace whose Services the input does not hold, a DestinationRule's
host in a namespace whose Services the input does not hold (or outside the cluster, when the
input holds no ServiceEntry), a Gateway's `credentialName` in a namespace whose Secrets the
input does not hold; and a Gateway API route's parentRef to a Gateway when the input holds no
Gateway (or nothing of its namespace), its backendRef to a kind other than Service or into a
namespace whose Services the input does not hold, and its attachment to a listener that
admits namespaces by label. The rules that check them (`gateway-exists`,
`destination-host-exists`, `destination-rule-host`, `gateway-credential`, `parent-exists`,
`backend-exists`, `reference-granted`, `listener-allows-route`) stay quiet there, since
reporting a missing object that simply lives elsewhere would be a false alarm; this rule says,
at `info`, which references were left unchecked, so that silence is not read as a pass.

Give the run the objects of those namespaces (`meshcanary lint app/ platform/`) to check the
references, or set this rule to `off` where that is known and fine.

Istio: none; istioctl analyze reports such references as missing (IST0101, IST0174), which
offline is the false alarm this rule avoids.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.problem import Severity
from meshcanary.rules import (
    Finding,
    Scope,
    backend_exists,
    destination_host_exists,
    destination_rule_host,
    gateway_credential,
    gateway_exists,
    listener_allows_route,
    parent_exists,
)

ID = "reference-not-checked"
SEVERITY = Severity.INFO
SUMMARY = "references into namespaces the input does not hold are named as not checked"
HINT = "give the run the objects of that namespace, or set reference-not-checked to off"
RELEASE_HINT = (
    "check the namespace's objects together with this environment, or set "
    "`reference-not-checked: off` under `policy.rules` in environment.yaml"
)
ISTIO_CODES: tuple[str, ...] = ()
# The rules whose verdicts this one reads, in the order it reports them.
JUDGES = (
    gateway_exists,
    destination_rule_host,
    gateway_credential,
    destination_host_exists,
    parent_exists,
    listener_allows_route,
    backend_exists,
)


def check(scope: Scope) -> Iterator[Finding]:
    for judge in JUDGES:
        yield from judge.unchecked(scope)
