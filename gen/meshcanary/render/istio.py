"""Istio resources of a release: the DestinationRule, the VirtualService, and Gateways, each
with where its fields were decided (render/provenance.py)."""

from __future__ import annotations

from typing import Any

from meshcanary.positions import JsonPath
from meshcanary.release.model import Environment, Gateway, Match, Port, Release
from meshcanary.render.provenance import Generated, Recorder

Path = list[str | int]


def fqdn(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def _common(recorder: Recorder, environment: Environment) -> None:
    """Origins every object of an environment shares: its namespace and Istio apiVersion."""
    data = environment.source.data
    if "istioApiVersion" in data:
        recorder.add(["apiVersion"], ["istioApiVersion"], source=environment.source)
    recorder.add(["metadata", "namespace"], ["namespace"], source=environment.source)


def _versions(release: Release, recorder: Recorder, at: Path) -> None:
    """Origins of the routes at `at` (`at`[j] to the release's j-th version)."""
    for index, version in enumerate(release.versions):
        recorder.add([*at, index], ["versions", version.name], key=True)


def destination_rule(release: Release, host: str, pod_labels: dict[str, str]) -> Generated:
    recorder = Recorder(release.source)
    _common(recorder, release.environment)
    recorder.add(["metadata", "name"], ["service"])
    recorder.add(["spec", "host"], ["base"])
    spec: dict[str, Any] = {"host": host}
    if release.traffic_policy:
        spec["trafficPolicy"] = release.traffic_policy
        recorder.add(["spec", "trafficPolicy"], ["trafficPolicy"], verbatim=True)
    spec["subsets"] = [
        {"name": v.name, "labels": {**pod_labels, "version": v.name}} for v in release.versions
    ]
    _versions(release, recorder, ["spec", "subsets"])
    body = {
        "apiVersion": release.environment.istio_api_version,
        "kind": "DestinationRule",
        "metadata": {"name": release.service},
        "spec": spec,
    }
    return Generated(body, recorder.origins([]))


class _Routes:
    """The VirtualService's routes as they are built, and where each part was decided."""

    def __init__(self, release: Release, host: str, recorder: Recorder) -> None:
        self.release = release
        self.host = host
        self.recorder = recorder
        self.ports: tuple[Port | None, ...] = release.ports or (None,)

    def port_at(self, port: Port | None) -> Path:
        return ["ports", self.ports.index(port)] if port is not None else []

    def destination(self, at: Path, subset: str, port: Port | None) -> dict[str, Any]:
        destination: dict[str, Any] = {"host": self.host, "subset": subset}
        self.recorder.add([*at, "host"], ["base"])
        if port is not None:
            destination["port"] = {"number": port.number}
            self.recorder.add([*at, "port"], [*self.port_at(port), "port"])
        return destination

    def port_match(self, at: Path, port: Port | None) -> dict[str, Any]:
        if port is None:
            return {}
        self.recorder.add([*at, "port"], [*self.port_at(port), "port"])
        return {"port": port.number}

    def weighted(self, at: Path, port: Port | None) -> list[dict[str, Any]]:
        """A destination per version, with its weight."""
        routes = []
        for index, version in enumerate(self.release.versions):
            decided: JsonPath = ["versions", version.name]
            self.recorder.add([*at, index], decided, key=True)
            self.recorder.add([*at, index, "weight"], [*decided, "weight"])
            self.recorder.add([*at, index, "destination", "subset"], decided, key=True)
            destination = self.destination([*at, index, "destination"], version.name, port)
            routes.append({"destination": destination, "weight": version.weight})
        return routes

    def extras(self, at: Path) -> dict[str, Any]:
        release = self.release
        extras: dict[str, Any] = {}
        if release.timeout:
            extras["timeout"] = release.timeout
            self.recorder.add([*at, "timeout"], ["timeout"])
        if release.retries:
            retries: dict[str, Any] = {"attempts": release.retries.attempts}
            if release.retries.per_try_timeout:
                retries["perTryTimeout"] = release.retries.per_try_timeout
            if release.retries.retry_on:
                retries["retryOn"] = release.retries.retry_on
            extras["retries"] = retries
            self.recorder.add([*at, "retries"], ["retries"], verbatim=True)
        return extras

    def pin(
        self, at: Path, index: int, match: Match, port: Port | None, suffix: str
    ) -> dict[str, Any]:
        """Requests that match go to one version, before the weights."""
        written: Path = ["match", index]
        self.recorder.add(at, written)
        rule = self.release.source.data["match"][index]
        if "name" in rule:
            self.recorder.add([*at, "name"], [*written, "name"])
        condition: dict[str, Any] = {}
        headers: dict[str, Any] = {}
        for header in match.headers:
            headers[header.header] = {header.kind: header.value}
            given = header.header in rule.get("headers", {})
            decided = [*written, "headers", header.header] if given else [*written, "cookies"]
            self.recorder.add([*at, "match", 0, "headers", header.header], decided)
        condition["headers"] = headers
        condition.update(self.port_match([*at, "match", 0], port))
        self.recorder.add([*at, "route"], [*written, "version"])
        destination = self.destination([*at, "route", 0, "destination"], match.version, port)
        return {
            "name": f"{match.name}{suffix}",
            "match": [condition],
            "route": [{"destination": destination}],
            **self.extras(at),
        }

    def weighted_route(self, at: Path, port: Port | None, suffix: str) -> dict[str, Any]:
        release = self.release
        self.recorder.add(at, ["versions"], key=True)
        route: dict[str, Any] = {"name": f"weighted{suffix}"}
        if suffix and port is not None:
            self.recorder.add([*at, "name"], [*self.port_at(port), "port"])
        if port is not None:
            route["match"] = [self.port_match([*at, "match", 0], port)]
            self.recorder.add([*at, "match"], self.port_at(port))
        route["route"] = self.weighted([*at, "route"], port)
        if release.mirror:
            mirror = release.mirror
            self.recorder.add([*at, "mirror"], ["mirror"])
            route["mirror"] = self.destination([*at, "mirror"], mirror.version, port)
            self.recorder.add([*at, "mirror", "subset"], ["mirror", "version"])
            route["mirrorPercentage"] = {"value": float(mirror.percent)}
            self.recorder.add([*at, "mirrorPercentage"], ["mirror", "percent"])
        route.update(self.extras(at))
        return route


def virtual_service(release: Release, host: str, hosts: tuple[str, ...]) -> Generated:
    """Pinned routes first (Istio takes the first route that matches), then the weights."""
    recorder = Recorder(release.source)
    _common(recorder, release.environment)
    recorder.add(["metadata", "name"], ["service"])
    data = release.source.data
    # Without `hosts` the base's Service names the host; without `gateways`, meshcanary's
    # default (`mesh`) applies, and the file's top is where to write them out.
    if "hosts" in data:
        recorder.add(["spec", "hosts"], ["hosts"], verbatim=True)
    else:
        recorder.add(["spec", "hosts"], ["base"])
    if "gateways" in data:
        recorder.add(["spec", "gateways"], ["gateways"], verbatim=True)
    build = _Routes(release, host, recorder)
    http: list[dict[str, Any]] = []
    tcp: list[dict[str, Any]] = []
    for port in build.ports:
        suffix = f"-{port.number}" if port is not None and len(build.ports) > 1 else ""
        if port is not None and port.protocol == "tcp":
            at: Path = ["spec", "tcp", len(tcp)]
            recorder.add(at, ["versions"], key=True)
            recorder.add([*at, "match"], build.port_at(port))
            match = build.port_match([*at, "match", 0], port)
            tcp.append({"match": [match], "route": build.weighted([*at, "route"], port)})
            continue
        for index, pinned in enumerate(release.matches):
            http.append(build.pin(["spec", "http", len(http)], index, pinned, port, suffix))
        http.append(build.weighted_route(["spec", "http", len(http)], port, suffix))
    spec: dict[str, Any] = {"hosts": list(hosts), "gateways": list(release.gateways)}
    if http:
        spec["http"] = http
    if tcp:
        spec["tcp"] = tcp
    body = {
        "apiVersion": release.environment.istio_api_version,
        "kind": "VirtualService",
        "metadata": {"name": release.service},
        "spec": spec,
    }
    return Generated(body, recorder.origins([]))


def gateway(environment: Environment, declared: Gateway) -> Generated:
    recorder = Recorder(environment.source)
    _common(recorder, environment)
    written: Path = ["gateways", declared.name]
    recorder.add(["metadata", "name"], written, key=True)
    recorder.add(["spec", "selector"], [*written, "selector"], verbatim=True)
    recorder.add(["spec", "servers"], [*written, "servers"], verbatim=True)
    body = {
        "apiVersion": environment.istio_api_version,
        "kind": "Gateway",
        "metadata": {"name": declared.name},
        "spec": {"selector": declared.selector, "servers": declared.servers},
    }
    return Generated(body, recorder.origins(written, key=True))
