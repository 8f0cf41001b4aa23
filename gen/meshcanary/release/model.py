"""The typed model of an environment and the releases in it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshcanary.source import SourceDoc

MESH = "mesh"


@dataclass(frozen=True)
class Version:
    name: str
    image: str
    weight: int
    replicas: int | None


@dataclass(frozen=True)
class HeaderMatch:
    header: str
    kind: str  # exact, prefix or regex, as Istio's StringMatch names them
    value: str


@dataclass(frozen=True)
class Match:
    name: str
    version: str
    headers: tuple[HeaderMatch, ...]


@dataclass(frozen=True)
class Mirror:
    version: str
    percent: float


@dataclass(frozen=True)
class Port:
    number: int
    protocol: str  # http or tcp


@dataclass(frozen=True)
class Retries:
    attempts: int
    per_try_timeout: str | None
    retry_on: str | None


@dataclass(frozen=True)
class Rollout:
    max_surge: int | str | None = None
    max_unavailable: int | str | None = None
    min_ready_seconds: int | None = None

    def merged_over(self, defaults: Rollout) -> Rollout:
        """This rollout's values, falling back to `defaults` field by field."""
        return Rollout(
            self.max_surge if self.max_surge is not None else defaults.max_surge,
            self.max_unavailable if self.max_unavailable is not None else defaults.max_unavailable,
            self.min_ready_seconds
            if self.min_ready_seconds is not None
            else defaults.min_ready_seconds,
        )

    @property
    def empty(self) -> bool:
        return self == Rollout()


@dataclass(frozen=True)
class Gateway:
    name: str
    selector: dict[str, str]
    servers: list[dict[str, Any]]


@dataclass(frozen=True)
class Environment:
    name: str
    path: str  # repository-relative path of environment.yaml
    namespace: str
    istio_api_version: str
    kubernetes_version: str | None
    gateways: tuple[Gateway, ...]
    rollout: Rollout
    steps: tuple[int, ...]
    source: SourceDoc = field(repr=False, compare=False)
    max_step: int | None = None  # largest weight change of one version in one change
    rule_severities: tuple[tuple[str, str], ...] = ()  # rule ID → error, warning, info or off
    remote_bases: tuple[str, ...] = ()  # https prefixes kustomize may fetch, with --allow-remote

    def gateway(self, name: str) -> Gateway | None:
        return next((g for g in self.gateways if g.name == name), None)


@dataclass(frozen=True)
class Release:
    environment: Environment
    path: str  # repository-relative path of the release file
    service: str
    base: str  # repository-relative path of the Kustomize base
    method: str  # istio or replicas
    hosts: tuple[str, ...]  # empty: the base Service's cluster-local name
    gateways: tuple[str, ...]
    ports: tuple[Port, ...]
    traffic_policy: dict[str, Any] | None
    timeout: str | None
    retries: Retries | None
    matches: tuple[Match, ...]
    mirror: Mirror | None
    replicas: int | None
    container: str | None
    rollout: Rollout
    steps: tuple[int, ...]
    versions: tuple[Version, ...]
    source: SourceDoc = field(repr=False, compare=False)
    # Rule ID -> reason: rules silenced for every object of this service.
    ignore: Mapping[str, str] = field(default_factory=dict)

    @property
    def uses_istio(self) -> bool:
        return self.method == "istio"

    def version(self, name: str) -> Version | None:
        return next((v for v in self.versions if v.name == name), None)

    @property
    def stable(self) -> Version:
        return self.versions[0]

    @property
    def canary(self) -> Version:
        return self.versions[-1]
