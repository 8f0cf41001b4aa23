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
`kubernetes.io/metadata.name`. Kubernetes' CEL libraries (lists, regex, URLs, quantity, IP
and CIDR, semver, sets, optional types; `validate/cel/`) are the same as CRD rules get. Not
supported: `paramKind`/`paramRef`, `auditAnnotations`, `authorizer`, `image()`, the `format.*`
named formats.

Limits, so that a policy cannot hang or exhaust CI (each refusal is located in the policy):

- when a policy loads (the engine): expressions of at most 100,000 code points, nested at
  most 32 levels (parentheses, calls, macros);
- when a policy loads (`_cost`, like the API server's estimated cost check): no value an
  expression builds may exceed MAX_SIZE (10,000,000 bytes or items) beyond what is
  proportional to the input, grow to more than MAX_GROWTH (100) times the input, grow with
  the square of the input, or accumulate geometrically in a loop; the work of one
  evaluation not proportional to the input is at most MAX_COST (100,000,000 steps), the
  nodes inside comprehensions counted 10,000 times;
- when it runs: 10,000 comprehension iterations per evaluation, shared by all the
  comprehensions of the expression ("Iteration budget exceeded", a finding under
  failurePolicy Fail), and DEFAULT_TIMEOUT (5 s; MESHCANARY_POLICY_TIMEOUT sets another) of
  wall-clock time per policy over one set of resources. Policies run in a worker process
  that is killed at the budget, inside an evaluation if need be (the engine itself cannot
  be interrupted): an error at the expression that was running, whatever the
  failurePolicy, says which resource it was on and how many were not checked; the findings
  on the resources checked before it stand, and the next policy runs in a new worker.

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

from meshcanary.policies.match import resource_plural
from meshcanary.policies.policy import (
    DEFAULT_TIMEOUT,
    Policy,
    PolicySet,
    PreviousKey,
    key_of,
    load,
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
    "resource_plural",
    "run_tests",
]
