"""Istio resources of a release: the DestinationRule, the VirtualService, and Gateways, each
with where its fields were decided (render/provenance.py)."""

from __future__ import annotations

from typing import Any

from meshcanary.positions import JsonPath
from meshcanary.release.model import (
    Condition,
    Environment,
    Gateway,
    HeaderOperations,
    Match,
    Port,
    Release,
    Rewrite,
)
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
            destination["port"] = {"number": port.target}
            key = "destinationPort" if port.destination_port is not None else "port"
            self.recorder.add([*at, "port"], [*self.port_at(port), key])
        return destination

    def port_match(self, at: Path, port: Port | None) -> dict[str, Any]:
        if port is None:
            return {}
        self.recorder.add([*at, "port"], [*self.port_at(port), "port"])
        return {"port": port.number}

    def condition(
        self, at: Path, condition: Condition, written: Path, port: Port | None
    ) -> dict[str, Any]:
        """One Istio match: `condition` (written at `written`), and the port's."""
        record = self.recorder.add
        rule = _written(self.release, written)
        match: dict[str, Any] = {}
        for key, value in (
            ("uri", condition.uri),
            ("method", condition.method),
            ("authority", condition.authority),
        ):
            if value is not None:
                match[key] = {value.kind: value.value}
                record([*at, key], [*written, key], verbatim=True)
        if condition.headers:
            match["headers"] = {h.header: {h.kind: h.value} for h in condition.headers}
            for header in condition.headers:
                given = header.header in rule.get("headers", {})
                decided = [*written, "headers", header.header] if given else [*written, "cookies"]
                record([*at, "headers", header.header], decided, verbatim=given)
        if condition.query_params:
            match["queryParams"] = {q.param: {q.kind: q.value} for q in condition.query_params}
            record([*at, "queryParams"], [*written, "queryParams"], verbatim=True)
        if condition.ignore_uri_case:
            match["ignoreUriCase"] = True
            record([*at, "ignoreUriCase"], [*written, "ignoreUriCase"])
        match.update(self.port_match(at, port))
        return match

    def options(self, at: Path, pin: int | None) -> dict[str, Any]:
        """The route options of the weighted route (no pin) or of the `pin`-th match, each
        recorded where it was written: on the pin, else at the top level."""
        release = self.release
        merged = release.route_options(release.matches[pin] if pin is not None else None)

        def decided(key: str, field: str) -> Path:
            return option_written(release, pin, key, field)

        extras: dict[str, Any] = {}
        if merged.timeout:
            extras["timeout"] = merged.timeout
            self.recorder.add([*at, "timeout"], decided("timeout", "timeout"))
        if merged.retries:
            retries: dict[str, Any] = {"attempts": merged.retries.attempts}
            if merged.retries.per_try_timeout:
                retries["perTryTimeout"] = merged.retries.per_try_timeout
            if merged.retries.retry_on:
                retries["retryOn"] = merged.retries.retry_on
            extras["retries"] = retries
            self.recorder.add([*at, "retries"], decided("retries", "retries"), verbatim=True)
        if merged.rewrite:
            extras["rewrite"] = _rewrite(merged.rewrite)
            self.recorder.add([*at, "rewrite"], decided("rewrite", "rewrite"), verbatim=True)
        if merged.cors is not None:
            extras["corsPolicy"] = dict(merged.cors)
            self.recorder.add([*at, "corsPolicy"], decided("corsPolicy", "cors"), verbatim=True)
        headers: dict[str, Any] = {}
        for side, key, field, operations in (
            ("request", "requestHeaders", "request_headers", merged.request_headers),
            ("response", "responseHeaders", "response_headers", merged.response_headers),
        ):
            if operations is not None:
                headers[side] = _operations(operations)
                self.recorder.add([*at, "headers", side], decided(key, field), verbatim=True)
        if headers:
            extras["headers"] = headers
        return extras

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

    def pin(
        self, at: Path, index: int, match: Match, port: Port | None, suffix: str
    ) -> dict[str, Any]:
        """Requests that match go to one version, before the weights."""
        written: Path = ["match", index]
        self.recorder.add(at, written)
        rule = self.release.source.data["match"][index]
        if "name" in rule:
            self.recorder.add([*at, "name"], [*written, "name"])
        condition = self.condition([*at, "match", 0], match.condition, written, port)
        self.recorder.add([*at, "route"], [*written, "version"])
        destination = self.destination([*at, "route", 0, "destination"], match.version, port)
        return {
            "name": f"{match.name}{suffix}",
            "match": [condition],
            "route": [{"destination": destination}],
            **self.options(at, index),
        }

    def weighted_route(self, at: Path, port: Port | None, suffix: str) -> dict[str, Any]:
        release = self.release
        self.recorder.add(at, ["versions"], key=True)
        route: dict[str, Any] = {"name": f"weighted{suffix}"}
        if suffix and port is not None:
            self.recorder.add([*at, "name"], [*self.port_at(port), "port"])
        if release.requests:
            # Any one of the conditions (Istio ORs the entries of `match`), each on the port.
            self.recorder.add([*at, "match"], ["requests"])
            route["match"] = [
                self.condition([*at, "match", index], condition, ["requests", index], port)
                for index, condition in enumerate(release.requests)
            ]
        elif port is not None:
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
        route.update(self.options(at, None))
        return route

    def transport(self, at: Path, port: Port, hosts: tuple[str, ...]) -> dict[str, Any]:
        """A TCP or TLS route: the port (and for TLS the SNI names), and the weights."""
        self.recorder.add(at, ["versions"], key=True)
        self.recorder.add([*at, "match"], self.port_at(port))
        match = self.port_match([*at, "match", 0], port)
        if port.protocol == "tls":
            match["sniHosts"] = list(port.sni_hosts or hosts)
            data = self.release.source.data
            sni_at: Path = [*at, "match", 0, "sniHosts"]
            if port.sni_hosts:
                self.recorder.add(sni_at, [*self.port_at(port), "sniHosts"], verbatim=True)
            elif "hosts" in data:
                self.recorder.add(sni_at, ["hosts"], verbatim=True)
            else:
                self.recorder.add(sni_at, ["base"])
        return {"match": [match], "route": self.weighted([*at, "route"], port)}


def option_written(release: Release, pin: int | None, key: str, field: str) -> Path:
    """Where a route option (`key` in the release file, `field` of RouteOptions) of the
    weighted route (no pin) or of the `pin`-th match was written: on the pin, else on top."""
    if pin is not None and getattr(release.matches[pin].options, field) is not None:
        return ["match", pin, key]
    return [key]


def _written(release: Release, path: Path) -> Any:
    """The mapping the release file holds at `path`."""
    value: Any = release.source.data
    for part in path:
        value = value[part]
    return value


def _rewrite(rewrite: Rewrite) -> dict[str, Any]:
    written: dict[str, Any] = {}
    if rewrite.uri is not None:
        written["uri"] = rewrite.uri
    if rewrite.uri_regex is not None:
        written["uriRegexRewrite"] = {
            "match": rewrite.uri_regex[0],
            "rewrite": rewrite.uri_regex[1],
        }
    if rewrite.authority is not None:
        written["authority"] = rewrite.authority
    return written


def _operations(operations: HeaderOperations) -> dict[str, Any]:
    written: dict[str, Any] = {}
    if operations.set:
        written["set"] = dict(operations.set)
    if operations.add:
        written["add"] = dict(operations.add)
    if operations.remove:
        written["remove"] = list(operations.remove)
    return written


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
    routes: dict[str, list[dict[str, Any]]] = {"http": [], "tcp": [], "tls": []}
    for port in build.ports:
        suffix = f"-{port.number}" if port is not None and len(build.ports) > 1 else ""
        if port is not None and port.protocol in ("tcp", "tls"):
            listed = routes[port.protocol]
            listed.append(build.transport(["spec", port.protocol, len(listed)], port, hosts))
            continue
        http = routes["http"]
        for index, pinned in enumerate(release.matches):
            http.append(build.pin(["spec", "http", len(http)], index, pinned, port, suffix))
        http.append(build.weighted_route(["spec", "http", len(http)], port, suffix))
    spec: dict[str, Any] = {"hosts": list(hosts), "gateways": list(release.gateways)}
    spec.update({protocol: listed for protocol, listed in routes.items() if listed})
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
