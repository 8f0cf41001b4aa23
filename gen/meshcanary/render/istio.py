"""Istio resources of a release: the DestinationRule, the VirtualService, and Gateways."""

from __future__ import annotations

from typing import Any

from meshcanary.release.model import Environment, Gateway, Match, Port, Release


def fqdn(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def destination_rule(release: Release, host: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": host}
    if release.traffic_policy:
        spec["trafficPolicy"] = release.traffic_policy
    spec["subsets"] = [
        {"name": v.name, "labels": {**pod_labels, "version": v.name}} for v in release.versions
    ]
    return {
        "apiVersion": release.environment.istio_api_version,
        "kind": "DestinationRule",
        "metadata": {"name": release.service},
        "spec": spec,
    }


def _destination(host: str, subset: str, port: Port | None) -> dict[str, Any]:
    destination: dict[str, Any] = {"host": host, "subset": subset}
    if port is not None:
        destination["port"] = {"number": port.number}
    return destination


def _port_match(port: Port | None) -> dict[str, Any]:
    return {"port": port.number} if port is not None else {}


def _http_extras(release: Release) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if release.timeout:
        extras["timeout"] = release.timeout
    if release.retries:
        retries: dict[str, Any] = {"attempts": release.retries.attempts}
        if release.retries.per_try_timeout:
            retries["perTryTimeout"] = release.retries.per_try_timeout
        if release.retries.retry_on:
            retries["retryOn"] = release.retries.retry_on
        extras["retries"] = retries
    return extras


def _pin(match: Match, host: str, port: Port | None, suffix: str) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "headers": {h.header: {h.kind: h.value} for h in match.headers},
        **_port_match(port),
    }
    return {
        "name": f"{match.name}{suffix}",
        "match": [condition],
        "route": [{"destination": _destination(host, match.version, port)}],
    }


def virtual_service(release: Release, host: str, hosts: tuple[str, ...]) -> dict[str, Any]:
    """Pinned routes first (Istio takes the first route that matches), then the weights."""
    http: list[dict[str, Any]] = []
    tcp: list[dict[str, Any]] = []
    ports: tuple[Port | None, ...] = release.ports or (None,)
    extras = _http_extras(release)
    for port in ports:
        suffix = f"-{port.number}" if port is not None and len(ports) > 1 else ""
        weighted = [
            {"destination": _destination(host, v.name, port), "weight": v.weight}
            for v in release.versions
        ]
        if port is not None and port.protocol == "tcp":
            tcp.append({"match": [_port_match(port)], "route": weighted})
            continue
        http.extend({**_pin(m, host, port, suffix), **extras} for m in release.matches)
        route: dict[str, Any] = {"name": f"weighted{suffix}"}
        if port is not None:
            route["match"] = [_port_match(port)]
        route["route"] = weighted
        if release.mirror:
            route["mirror"] = _destination(host, release.mirror.version, port)
            route["mirrorPercentage"] = {"value": float(release.mirror.percent)}
        route.update(extras)
        http.append(route)
    spec: dict[str, Any] = {"hosts": list(hosts), "gateways": list(release.gateways)}
    if http:
        spec["http"] = http
    if tcp:
        spec["tcp"] = tcp
    return {
        "apiVersion": release.environment.istio_api_version,
        "kind": "VirtualService",
        "metadata": {"name": release.service},
        "spec": spec,
    }


def gateway(environment: Environment, declared: Gateway) -> dict[str, Any]:
    return {
        "apiVersion": environment.istio_api_version,
        "kind": "Gateway",
        "metadata": {"name": declared.name},
        "spec": {"selector": declared.selector, "servers": declared.servers},
    }
