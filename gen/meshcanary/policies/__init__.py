"""User policies: Kubernetes ValidatingAdmissionPolicies (CEL), evaluated offline.

`load(folders, root)` reads the `ValidatingAdmissionPolicy` and
`ValidatingAdmissionPolicyBinding` documents (admissionregistration.k8s.io/v1) of `*.yaml`
directly inside the folders, checks them against the Kubernetes schema and compiles every
expression once; `PolicySet.evaluate(resources, previous)` returns findings as `Problem`s
(rule ID `<policy>/<validation index>`). The CEL engine is imported by `load()` only.

Expressions see `object`, `oldObject` (from `previous`, else null), `variables`, `request`
(kind, resource, name, namespace, operation, empty userInfo, dryRun) and `objects`, every
resource evaluated together (an environment). Operation is UPDATE when `previous` holds the
object, else CREATE. A namespace is known only by name: selectors see the one label
`kubernetes.io/metadata.name`. Not supported: `paramKind`/`paramRef`, `auditAnnotations`,
`authorizer`, the Kubernetes `quantity`, `url` and `ip` libraries.

Policy tests (`meshcanary policy test [DIR]`, DIR defaults to `policies`)::

    policies/
      require-team-label.yaml            the policy (and its bindings)
      tests/
        require-team-label/              one folder per policy, named after it
          pass/*.yaml                    resources on which the policy must find nothing
          fail/*.yaml                    resources on which it must find something
          fail/bad.previous.yaml         optional: the base-branch objects (`oldObject`)
                                         for bad.yaml; never a case of its own

A fixture file's resources are evaluated together (they are `objects`). A fail fixture
states what it expects in comments: `# expect: <substring of the message>` (one per
line; each must be found in some finding) and optionally `# expect-line: <n>` (a finding
must be on that line of the fixture). Bindings apply in tests as they do in a cluster.
"""

from __future__ import annotations

from meshcanary.policies.policy import (
    DEFAULT_TIMEOUT,
    Policy,
    PolicySet,
    PreviousKey,
    key_of,
    load,
    plural,
)
from meshcanary.policies.testing import TestCase, TestReport, run_tests

__all__ = [
    "DEFAULT_TIMEOUT",
    "Policy",
    "PolicySet",
    "PreviousKey",
    "TestCase",
    "TestReport",
    "key_of",
    "load",
    "plural",
    "run_tests",
]
