"""`meshcanary status`: who gets which share of the traffic, per environment."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from meshcanary.release.load import LoadedEnvironment
from meshcanary.render.overlay import replica_split


@dataclass(frozen=True)
class Row:
    environment: str
    service: str
    method: str
    version: str
    image: str
    replicas: int
    weight: int
    share: float  # percent of traffic the version actually gets: the weight, or its share of pods


def rows(environments: list[LoadedEnvironment]) -> list[Row]:
    table: list[Row] = []
    for loaded in environments:
        for release in loaded.releases:
            split = None if release.uses_istio else replica_split(release)
            for version in release.versions:
                replicas = version.replicas or 0 if split is None else split.replicas[version.name]
                share = (
                    float(version.weight) if split is None else round(split.share(version.name), 2)
                )
                table.append(
                    Row(
                        loaded.environment.name,
                        release.service,
                        release.method,
                        version.name,
                        version.image,
                        replicas,
                        version.weight,
                        share,
                    )
                )
    return table


def as_json(table: list[Row]) -> dict[str, Any]:
    environments: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        entry = asdict(row)
        del entry["environment"]
        environments.setdefault(row.environment, []).append(entry)
    return {"environments": environments}
