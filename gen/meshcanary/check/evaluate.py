"""A check's judgement of one environment's built objects: schema validation of each
(`validate`), then the built-in rules and the policies over them together (`judge`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshcanary import rules
from meshcanary.manifest import Resource
from meshcanary.problem import Problem, ResourceRef
from meshcanary.report import ResourceResult, Status
from meshcanary.validate import Options, Verdict
from meshcanary.validate.embedded import EmbeddedValidator

if TYPE_CHECKING:
    from meshcanary.policies import PolicySet
    from meshcanary.policies.policy import PreviousKey
    from meshcanary.release.load import LoadedEnvironment


class Validators:
    """A run's embedded validators, one per environment's options: a schema is compiled once
    a run, whether for the read-ahead while kustomize builds or for the first object of its
    kind, and not again for the next environment."""

    def __init__(self, validation: Options) -> None:
        self.validation = validation
        self._made: dict[Options, EmbeddedValidator] = {}

    def options(self, loaded: LoadedEnvironment) -> Options:
        """The run's options, with the environment's Kubernetes version unless one is given."""
        validation, version = self.validation, loaded.environment.kubernetes_version
        if validation.kubernetes_version is None and version:
            return replace(validation, kubernetes_version=version)
        return validation

    def of(self, loaded: LoadedEnvironment) -> EmbeddedValidator:
        validation = self.options(loaded)
        made = self._made.get(validation)
        if made is None:
            made = self._made[validation] = EmbeddedValidator(validation)
        return made


def validate(
    loaded: LoadedEnvironment,
    resources: Sequence[Resource],
    validators: Validators,
    kubeconform: bool,
    relocate: Callable[[Problem], Problem],
    known: Mapping[Resource, Verdict],
) -> list[Verdict]:
    """The schema verdict of each resource, its findings relocated; `known` ones as they are."""
    unknown = [r for r in resources if r not in known]
    fresh: list[Verdict]
    if not unknown:
        fresh = []
    elif kubeconform:
        fresh = _kubeconform(unknown, validators.options(loaded))
    else:
        validator = validators.of(loaded)
        fresh = [validator.validate(r) for r in unknown]
    made = {
        r: replace(v, problems=tuple(map(relocate, v.problems)))
        for r, v in zip(unknown, fresh, strict=True)
    }
    return [known[r] if r in known else made[r] for r in resources]


def judge(
    loaded: LoadedEnvironment,
    related: Sequence[Resource],
    context: Collection[Resource],
    policy_set: PolicySet | None,
    previous: Mapping[PreviousKey, dict[str, Any]],
    *,
    relocate: Callable[[Problem], Problem],
    silenced: Callable[[Problem], bool],
) -> list[Problem]:
    """The built-in rules' and the policies' findings over an environment's objects."""
    severities = dict(loaded.environment.rule_severities)
    found = rules.run(rules.Scope(related), severities)
    if policy_set is not None:
        found += policy_set.evaluate(related, previous)
    found = [relocate(p) for p in found if not silenced(p)]
    if context:
        # Findings on objects that are here only as context belong to another run; a
        # finding on no object of the run (a policy stopped by its budget) stays.
        checked = {r.ref for r in related if r not in context}
        others = {r.ref for r in related} - checked
        found = [p for p in found if p.resource is None or p.resource not in others]
    return found


def results(
    resources: Sequence[Resource], verdicts: Sequence[Verdict], found: Sequence[Problem]
) -> list[ResourceResult]:
    """A result per resource: its verdict, and the rule and policy findings on it."""
    by_resource: dict[ResourceRef, list[Problem]] = {}
    for problem in found:
        if problem.resource is not None:
            by_resource.setdefault(problem.resource, []).append(problem)
    return [
        ResourceResult(
            resource.file,
            resource.ref,
            verdict.status,
            (*verdict.problems, *by_resource.get(resource.ref, [])),
        )
        for resource, verdict in zip(resources, verdicts, strict=True)
    ]


def _kubeconform(resources: list[Resource], validation: Options) -> list[Verdict]:
    """Verdicts of the kubeconform binary on built resources, mapped back by position."""
    import yaml

    from meshcanary.validate import kubeconform

    with tempfile.TemporaryDirectory(prefix="meshcanary-") as folder:
        files = []
        for index, resource in enumerate(resources):
            path = Path(folder) / f"{index:06d}.yaml"
            path.write_text(yaml.safe_dump(resource.data, sort_keys=False), encoding="utf-8")
            files.append(str(path))
        output = kubeconform.run(files, validation, None)
    by_file = {str(entry.get("filename")): entry for entry in output.get("resources") or []}
    return [
        kubeconform.verdict(resource, by_file[name]) if name in by_file else Verdict(Status.VALID)
        for resource, name in zip(resources, files, strict=True)
    ]
