"""Where `check` points each built-in rule's findings: where a person edits.

A field the release or environment file decides points there (the renderer records which key
decided it); a field the base decides points into the base. Each rule gets a copy of the
examples edited so that it fires, and its finding's `file:line:col` is asserted. A rule that
only a hand edit of a generated file can set off says so; render-fresh reports the edit, and
the finding points where the field is rendered from.
"""

from __future__ import annotations

import copy
import itertools
import re
import shutil
from pathlib import Path

import pytest
import yaml

from meshcanary import rules
from meshcanary.render.provenance import Provenance
from tests.support import ROOT
from tests.support.locations import BASE, RELEASE, edit, findings, places, render, where

ENVIRONMENT = "/environment.yaml"
GATEWAY_API_ENV = "ambient"


def test_every_rule_has_a_location_test() -> None:
    # A test named after the rule, here or in a test file beside another rule family's.
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tested |= set(re.findall(r"^def test_(\w+)\(", path.read_text(encoding="utf-8"), re.M))
    missing = [r.ID for r in rules.all_rules() if r.ID.replace("-", "_") not in tested]
    assert not missing, f"no test of where these rules point: {missing}"


# Decided by the base ------------------------------------------------------------------------


def test_deployment_selector_matches_template(example_repo: Path, cli) -> None:
    deployment = example_repo / BASE / "deployment.yaml"
    edit(
        deployment,
        "    matchLabels:\n      app: micro-api\n",
        "    matchLabels:\n      app: micro-api\n      tier: web\n",
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "deployment-selector-matches-template")
    # Every version of every environment, one line of the base.
    assert places(found) == {where(example_repo, f"{BASE}/deployment.yaml", "tier: web")}


def test_port_name_protocol(example_repo: Path, cli) -> None:
    edit(example_repo / BASE / "service.yaml", "- name: http", "- name: web")
    found = findings(example_repo, cli, "port-name-protocol")
    assert places(found) == {where(example_repo, f"{BASE}/service.yaml", "- name: web", "web")}


def test_service_target_port(example_repo: Path, cli) -> None:
    edit(example_repo / BASE / "service.yaml", "targetPort: 19090", "targetPort: 9090")
    found = findings(example_repo, cli, "service-target-port")
    assert places(found) == {
        where(example_repo, f"{BASE}/service.yaml", "targetPort: 9090", "9090")
    }


def test_resource_name(example_repo: Path, cli) -> None:
    # A name of spaces kustomize accepts, in a ConfigMap of the base.
    (example_repo / BASE / "settings.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " "\ndata:\n  mode: fast\n',
        encoding="utf-8",
    )
    edit(
        example_repo / BASE / "kustomization.yaml",
        "  - service.yaml\n",
        "  - service.yaml\n  - settings.yaml\n",
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "resource-name")
    assert places(found) == {where(example_repo, f"{BASE}/settings.yaml", 'name: " "', '" "')}


def test_suppression_reason(example_repo: Path, cli) -> None:
    edit(
        example_repo / BASE / "deployment.yaml",
        "  name: micro-api\n",
        "  name: micro-api\n  annotations:\n    meshcanary.dev/ignore: mutable-image-tag\n",
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "suppression-reason")
    place = where(example_repo, f"{BASE}/deployment.yaml", "meshcanary.dev/ignore", "mutable")
    assert places(found) == {place}


def test_service_selects_all_versions(example_repo: Path, cli) -> None:
    # Only a hand edit of a generated file can set it off: the renderer refuses a base whose
    # Service selects `version` or a label its pods lack. Here the Service's folder adds a
    # selector label; the finding points at the base Service's selector, whose object it is.
    edit(
        example_repo / "deploy/overlays/prod/micro-api/_service/kustomization.yaml",
        "resources:\n",
        "labels:\n  - pairs: {tier: web}\n    includeSelectors: true\nresources:\n",
    )
    found = findings(example_repo, cli, "service-selects-all-versions")
    place = where(example_repo, f"{BASE}/service.yaml", "app: micro-api", after="selector:")
    assert places(found) == {place}


# Decided by the release file ----------------------------------------------------------------


def test_mutable_image_tag(example_repo: Path, cli) -> None:
    release = example_repo / RELEASE
    edit(release, "micro-api:1.3,", "micro-api:latest,")
    render(example_repo, cli)
    (found,) = findings(example_repo, cli, "mutable-image-tag")
    assert places([found]) == {where(example_repo, RELEASE, "micro-api:latest", "registry")}
    assert found["hint"].startswith("pin `image:`")
    assert found["resource"]["name"] == "micro-api-v2" and found["path"].endswith("/image")


def test_mesh_unweighted(example_repo: Path, cli) -> None:
    edit(example_repo / RELEASE, "gateways: [micro-gateway, mesh]", "gateways: [micro-gateway]")
    render(example_repo, cli)
    (found,) = findings(example_repo, cli, "mesh-unweighted")
    assert places([found]) == {where(example_repo, RELEASE, "gateways:")}
    assert found["hint"].startswith("add `mesh` to `gateways:` in the release file")


def test_gateway_exists(example_repo: Path, cli) -> None:
    edit(example_repo / RELEASE, "[micro-gateway, mesh]", "[default/edge-gateway, mesh]")
    render(example_repo, cli)
    found = findings(example_repo, cli, "gateway-exists")
    assert places(found) == {where(example_repo, RELEASE, "gateways:", "default/edge-gateway")}
    assert found[0]["hint"].startswith("in `gateways:`")


def test_hosts_gateways_agree(example_repo: Path, cli) -> None:
    edit(example_repo / RELEASE, "  - api.example.com\n", "")
    render(example_repo, cli)
    found = findings(example_repo, cli, "hosts-gateways-agree")
    # At the binding, micro-gateway in `gateways:`; the hint names `hosts:`.
    assert places(found) == {where(example_repo, RELEASE, "gateways:", "micro-gateway")}
    assert "`hosts:` in the release file" in found[0]["hint"]


def test_weight_without_replicas(example_repo: Path, cli) -> None:
    edit(example_repo / RELEASE, "micro-api:1.3, replicas: 3", "micro-api:1.3, replicas: 0")
    render(example_repo, cli)
    found = findings(example_repo, cli, "weight-without-replicas")
    assert places(found) == {where(example_repo, RELEASE, "replicas: 0", "30")}
    assert "`replicas:`" in found[0]["hint"]


def test_duplicate_resources(example_repo: Path, cli) -> None:
    # checkout's base also defines a VirtualService micro-api: micro-api's own comes second,
    # and is named by the release file's `service:`.
    (example_repo / "deploy/base/checkout/routes.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: micro-api\n"
        "spec:\n  hosts: [micro-api]\n  http:\n    - route:\n"
        "        - destination: {host: micro-api}\n",
        encoding="utf-8",
    )
    edit(
        example_repo / "deploy/base/checkout/kustomization.yaml",
        "  - service.yaml\n",
        "  - service.yaml\n  - routes.yaml\n",
    )
    render(example_repo, cli)
    found = [f for f in findings(example_repo, cli, "duplicate-resources") if "prod" in f["file"]]
    assert places(found) == {where(example_repo, RELEASE, "service:", "micro-api")}
    assert "deploy/base/checkout/routes.yaml:4" in found[0]["message"]


def test_subset_selects_one_deployment(example_repo: Path, cli) -> None:
    # A second service whose base's pods carry micro-api's `app` label: micro-api's subset v1
    # selects both services' v1.
    copy = example_repo / "deploy/base/micro-api-copy"
    shutil.copytree(example_repo / BASE, copy)
    for name in ("deployment.yaml", "service.yaml"):
        edit(copy / name, "  name: micro-api\n", "  name: micro-api-copy\n")
    (example_repo / "environments/prod/micro-api-copy.yaml").write_text(
        "service: micro-api-copy\nbase: deploy/base/micro-api-copy\nversions:\n"
        "  v1: {image: registry.example/micro-api:1.1, replicas: 1, weight: 100}\n",
        encoding="utf-8",
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "subset-selects-one-deployment")
    assert places(found) == {
        where(example_repo, RELEASE, "  v1:", "v1"),
        where(example_repo, "environments/prod/micro-api-copy.yaml", "  v1:", "v1"),
    }


# Only a hand edit of a generated file sets these off: the release file cannot express it.
# render-fresh reports the edited file; the finding points where the field is rendered from.


def test_weights_sum_100(example_repo: Path, cli) -> None:
    routes = example_repo / "deploy/overlays/prod/micro-api/virtualservice.yaml"
    edit(routes, "weight: 30", "weight: 20")
    found = findings(example_repo, cli, "weights-sum-100")
    assert places(found) == {where(example_repo, RELEASE, "  v2:", "30")}
    assert "edited by hand" in found[0]["hint"]
    stale = findings(example_repo, cli, "render-fresh")
    assert {f["file"] for f in stale} == {"deploy/overlays/prod/micro-api/virtualservice.yaml"}


def test_subset_exists(example_repo: Path, cli) -> None:
    rule = example_repo / "deploy/overlays/prod/micro-api/destinationrule.yaml"
    edit(rule, "name: v2", "name: v2-old")
    found = findings(example_repo, cli, "subset-exists")
    assert places(found) == {where(example_repo, RELEASE, "  v2:", "v2")}
    assert "edited by hand" in found[0]["hint"]


# Decided by the environment file -------------------------------------------------------------


def test_a_gateways_finding_points_into_the_environment_file(example_repo: Path, cli) -> None:
    shutil.copytree(ROOT / "policies", example_repo / "policies")
    environment = example_repo / "environments/prod/environment.yaml"
    edit(environment, "hosts: [api.example.com]", 'hosts: ["*"]')
    render(example_repo, cli)
    found = findings(example_repo, cli, "no-wildcard-gateway-hosts/0")
    place = where(example_repo, "environments/prod/environment.yaml", "servers:")
    assert places(found) == {place}


# The map the renderer hands on, held to what it renders ---------------------------------------

Place = tuple[str, tuple[str | int, ...]]  # a file, and a key path in it

# Fields two keys decide; the map names one of them (the one a finding there is about).
ALSO_DECIDED_BY = {
    # <service>-<version>: the map names the version.
    ("service",): [("Deployment", r"metadata/name")],
    # <Service of the base>.<namespace>.svc.cluster.local (and the hosts it is the default
    # of): the map names the base.
    ("namespace",): [
        ("DestinationRule", r"spec/host"),
        ("VirtualService", r"spec/hosts/\d+"),
        ("VirtualService", r"spec/(http|tcp)/\d+/(route/\d+/destination|mirror)/host"),
    ],
    # A pinned route's name ends in its port when there are several: the map names the match.
    ("ports", "*"): [("VirtualService", r"spec/http/\d+/name")],
    # A container's name in a version's patch is its merge key: another name adds a container
    # (kustomize puts the patch's first), so the list itself changes.
    ("versions", "*", "patch"): [("Deployment", r"spec/template/spec/containers")],
}


def _changed_value(value: object) -> object:
    """Another valid value of the same kind: a count, a percentage, a duration, a name."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    text = str(value)
    if text.endswith("%"):
        return f"{int(text[:-1]) + 5}%"
    if text[:-1].isdigit() and text[-1] in "sm":
        return f"{int(text[:-1]) + 2}{text[-1]}"
    return f"{text}x"


def _other_version(data: dict, name: str) -> str:
    return next(v for v in data["versions"] if v != name)


def _shift_weight(data: dict, file: str, name: str | None = None) -> list[Place]:
    """One point of traffic from one version to another, so the weights still sum to 100."""
    versions = data["versions"]
    giver = name if name and versions[name]["weight"] > 0 else None
    giver = giver or next(v for v, spec in versions.items() if spec["weight"] > 0)
    taker = name if name and name != giver else next(v for v in versions if v != giver)
    versions[giver]["weight"] -= 1
    versions[taker]["weight"] += 1
    return [(file, ("versions", giver, "weight")), (file, ("versions", taker, "weight"))]


def _rename_version(data: dict, file: str, old: str) -> list[Place]:
    new = f"{old}x"
    data["versions"] = {(new if k == old else k): v for k, v in data["versions"].items()}
    places: list[Place] = [(file, ("versions", old))]
    for index, rule in enumerate(data.get("match", [])):
        if rule["version"] == old:
            rule["version"] = new
            places.append((file, ("match", index, "version")))
    if data.get("mirror", {}).get("version") == old:
        data["mirror"]["version"] = new
        places.append((file, ("mirror", "version")))
    return places


def _release_change(repo: Path, file: str, at: tuple, data: dict) -> list[Place]:
    """Change the release file's value at `at` (in `data`); the places that changed."""
    match at:
        case ("service",):
            data["service"] = f"{data['service']}x"
            (repo / file).unlink()
            return [(file, at)]  # written under its new name by the caller
        case ("base",):
            base = f"{data['base']}-{file.split('/')[1]}"
            shutil.copytree(repo / data["base"], repo / base)
            edit(
                repo / base / "service.yaml",
                "kind: Service\nmetadata:\n  name: ",
                "kind: Service\nmetadata:\n  name: renamed-",
            )
            data["base"] = base
        case ("hosts",):
            data["hosts"][-1] = f"x{data['hosts'][-1]}"
        case ("gateways",):
            listed = data["gateways"]
            data["gateways"] = listed[::-1] if len(listed) > 1 else [*listed, "micro-gateway"]
        case ("replicas",):
            # Shared out by weight: doubled, every version's share changes.
            data["replicas"] = data["replicas"] * 2 or 4
        case ("retries",):
            data["retries"]["attempts"] += 1
        case ("trafficPolicy",):
            data["trafficPolicy"]["loadBalancer"] = {"simple": "LEAST_CONN"}
        case ("versions",):
            return _shift_weight(data, file)
        case ("versions", version):
            return _rename_version(data, file, version)
        case ("versions", version, "weight"):
            return _shift_weight(data, file, version)
        case ("versions", version, "image"):
            data["versions"][version]["image"] += ".9"
        case ("match", index, "version"):
            rule = data["match"][index]
            rule["version"] = _other_version(data, rule["version"])
        case ("match", index, key, *_) if key not in ("name", "headers", "cookies"):
            _change_inside(data, at)  # a condition or route option of the pin's own
        case ("match", index, *_):
            rule = data["match"][index]
            if at[2:] == ("name",):
                rule["name"] += "x"
            else:
                conditions = rule["headers"] if "headers" in rule else rule["cookies"]
                first = next(iter(conditions))
                if isinstance(conditions[first], dict):
                    kind = next(iter(conditions[first]))
                    conditions[first][kind] += "x"
                else:
                    conditions[first] += "x"
        case ("mirror",) | ("mirror", "version"):
            data["mirror"]["version"] = _other_version(data, data["mirror"]["version"])
        case ("mirror", *_):
            data["mirror"]["percent"] = data["mirror"]["percent"] % 90 + 5
        case ("ports", index, *_):
            data["ports"][index]["port"] += 1
        case ("rollout", *keys):
            rollout = data["rollout"]
            key = keys[0] if keys else next(iter(rollout))
            rollout[key] = _changed_value(rollout[key])
        case _:
            _change_inside(data, at)
    return [(file, at)]


def _change_inside(data: dict, at: tuple) -> None:
    """Change the value at `at`: a scalar, or the first scalar inside a mapping or list
    (`rewrite: {uri: /}`, `requests[0].uri: {prefix: /api}`)."""
    value = _get(data, at)
    while isinstance(value, dict | list) and value:
        at = (*at, next(iter(value)) if isinstance(value, dict) else 0)
        value = _get(data, at)
    _set(data, at, _changed_value(value))


def _environment_change(repo: Path, file: str, at: tuple, data: dict) -> list[Place]:
    """Change the environment file's value at `at`; the places that changed."""
    match at:
        case ("gateways", name):
            data["gateways"][f"{name}x"] = data["gateways"].pop(name)
            places: list[Place] = [(file, at)]
            for release in sorted((repo / file).parent.glob("*.yaml")):
                own = yaml.safe_load(release.read_text(encoding="utf-8"))
                if name in own.get("gateways", []):
                    own["gateways"] = [f"{g}x" if g == name else g for g in own["gateways"]]
                    release.write_text(yaml.safe_dump(own, sort_keys=False), encoding="utf-8")
                    places.append((release.relative_to(repo).as_posix(), ("gateways",)))
            return places
        case ("gateways", name, "selector"):
            selector = data["gateways"][name]["selector"]
            first = next(iter(selector))
            selector[first] += "x"
        case ("gateways", name, "servers"):
            data["gateways"][name]["servers"][0]["hosts"][0] = (
                "x" + data["gateways"][name]["servers"][0]["hosts"][0]
            )
        case ("namespace",):
            data["namespace"] = f"{data['namespace']}x"
        case ("istioApiVersion",):
            data["istioApiVersion"] = "networking.istio.io/v1beta1"
        case ("defaults", "rollout", *keys):
            rollout = data["defaults"]["rollout"]
            key = keys[0] if keys else next(iter(rollout))
            rollout[key] = _changed_value(rollout[key])
        case _:
            _set(data, at, _changed_value(_get(data, at)))
    return [(file, at)]


def _get(data: object, path: tuple) -> object:
    for part in path:
        if isinstance(data, list):
            part = int(part)
            if part >= len(data):
                return None
            data = data[part]
        elif isinstance(data, dict):
            if part not in data:
                return None
            data = data[part]
        else:
            return None
    return data


def _set(data: dict, path: tuple, value: object) -> None:
    parent = _get(data, path[:-1])
    assert isinstance(parent, dict | list), path
    parent[path[-1]] = value  # type: ignore[index]


def _mutate(repo: Path, file: str, at: tuple) -> list[Place]:
    """Change the value at `at` in `file` of the repository `repo`; the places that changed."""
    path = repo / file
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if path.name == "environment.yaml":
        places = _environment_change(repo, file, at, data)
    else:
        places = _release_change(repo, file, at, data)
        path = path.with_name(f"{data['service']}.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return places


def _changes(repo: Path, file: str, keys: list[tuple]) -> list[list[tuple]]:
    """The keys of `file` the map names, grouped by the change that tests them: a key whose
    change is that of a key inside it (`versions` and a version's weight) shares it."""
    data = yaml.safe_load((repo / file).read_text(encoding="utf-8"))
    environment = file.endswith(ENVIRONMENT)
    groups: dict[str, list[tuple]] = {}
    for at in keys:
        # These change other files too: each is a change of its own.
        if at in (("service",), ("base",)) or (
            environment and at[0] == "gateways" and len(at) == 2
        ):
            groups[repr(at)] = [at]
            continue
        changed = copy.deepcopy(data)
        (_environment_change if environment else _release_change)(repo, file, at, changed)
        groups.setdefault(yaml.safe_dump(changed), []).append(at)
    return list(groups.values())


def _leaves(before: object, after: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths at which two JSON values differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(before) + [k for k in after if k not in before]
        return [p for k in keys for p in _leaves(before.get(k), after.get(k), (*path, str(k)))]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        pairs = enumerate(zip(before, after, strict=True))
        return [p for i, (b, a) in pairs for p in _leaves(b, a, (*path, str(i)))]
    return [] if before == after else [path]


def _related(one: Place, other: Place) -> bool:
    """The same key, or one inside the other."""
    (file, a), (other_file, b) = one, other
    return file == other_file and (a[: len(b)] == b or b[: len(a)] == a)


def _also_decided(place: Place, kind: str, leaf: tuple[str, ...]) -> bool:
    _, at = place
    return any(
        len(pattern) <= len(at)
        and all(p in ("*", a) for p, a in zip(pattern, at, strict=False))
        and any(k == kind and re.fullmatch(f, "/".join(leaf)) for k, f in fields)
        for pattern, fields in ALSO_DECIDED_BY.items()
    )


Change = tuple[str, list[tuple]]  # a file, and the keys one change of it tests


def _rounds(original: Path, provenance: Provenance) -> list[dict[str, list[Change]]]:
    """The changes of each round, by environment: in a round an environment changes its
    environment file, or each of its release files (a release's objects are its own), once."""
    keys: dict[str, dict[str, list[tuple]]] = {}  # env → file → the keys the map names
    for (env, *_), origins in provenance.items():
        for origin in origins.fields.values():
            listed = keys.setdefault(env, {}).setdefault(origin.file, [])
            if origin.path not in listed:
                listed.append(origin.path)
    steps: dict[str, list[list[Change]]] = {}
    for env, files in keys.items():
        changes = {
            f: [(f, group) for group in _changes(original, f, at)] for f, at in files.items()
        }
        own = [[c] for f, listed in changes.items() if f.endswith(ENVIRONMENT) for c in listed]
        releases = [listed for f, listed in changes.items() if not f.endswith(ENVIRONMENT)]
        together = itertools.zip_longest(*releases)
        steps[env] = [*own, *([c for c in step if c is not None] for step in together)]
    count = max(len(s) for s in steps.values())
    return [{env: s[i] for env, s in steps.items() if i < len(s)} for i in range(count)]


def _build(root: Path, copies: dict[str, set[str]]) -> dict[str, dict[str, list[dict]]]:
    """copy → environment → its objects in build order, for the named environments of each
    copy of the repository under `root`, all in one run of batches."""
    from meshcanary.check.scope import affected
    from meshcanary.kustomize import batch
    from meshcanary.release.load import load

    units = {
        name: [
            u
            for u in affected(root / name, load(root / name, sorted(envs)), [])
            if u.environment.environment.name in envs
        ]
        for name, envs in copies.items()
    }
    # A base's objects go back to the overlay built from it: a batch per environment.
    overlays = [
        batch.Overlay(
            f"{name}/{u.folder}",
            f"{name}/{u.environment.environment.name}",
            (),
            f"{name}/{u.release.base}" if u.release else None,
        )
        for name, listed in units.items()
        for u in listed
    ]
    results = iter(batch.build(root, overlays))
    built: dict[str, dict[str, list[dict]]] = {}
    for name, listed in units.items():
        for unit in listed:
            result = next(results)
            assert result.ok, (name, unit.folder, result.error)
            env = built.setdefault(name, {}).setdefault(unit.environment.environment.name, [])
            env.extend(result.documents or ())
    return built


@pytest.mark.slow
def test_the_renderers_map_holds_for_every_key_it_names(tmp_path: Path) -> None:
    """For every key the map names on the examples, a change of its value changes each built
    field the map points at it, and every field a change changes is one the map points at a
    changed key (or the base's, when the base is swapped). A layout change the map does not
    follow fails here, not in front of a user."""
    from meshcanary.render.repository import plan, render

    original = tmp_path / "m0"
    for top in ("environments", "deploy"):
        shutil.copytree(ROOT / top, original / top)
    provenance = plan(original).provenance
    # In the environment routed with the Gateway API, every key but the order of `gateways`:
    # its routes do not follow that order (one bound to the Service, one to the Gateways,
    # whatever the order), which is tests/unit/render/test_gateway_api.py's to hold.
    rounds = [
        {
            env: [
                (f, keys)
                for f, keys in changes
                if env != GATEWAY_API_ENV or keys[0][:1] != ("gateways",)
            ]
            for env, changes in round_changes.items()
        }
        for round_changes in _rounds(original, provenance)
    ]
    rounds = [{env: c for env, c in r.items() if c} for r in rounds]
    rounds = [round_changes for round_changes in rounds if round_changes]
    # Per round and environment: the keys tested, and the keys the change changed.
    changed: list[dict[str, list[tuple[list[Place], list[Place]]]]] = []
    for index, round_changes in enumerate(rounds, start=1):
        repo = tmp_path / f"m{index}"
        for top in ("environments", "deploy"):
            shutil.copytree(original / top, repo / top)
        changed.append(
            {
                env: [([(f, at) for at in keys], _mutate(repo, f, keys[0])) for f, keys in listed]
                for env, listed in round_changes.items()
            }
        )
        render(repo)
    copies = {f"m{i}": set(done) for i, done in enumerate(changed, start=1)}
    built = _build(tmp_path, {"m0": {env for done in changed for env in done}, **copies})

    for index, done in enumerate(changed, start=1):
        for env, changes in done.items():
            before, after = built["m0"][env], built[f"m{index}"][env]
            assert [o["kind"] for o in before] == [o["kind"] for o in after], (env, changes)
            tested = {place for keys, _ in changes for place in keys}
            places = [place for _, moved in changes for place in moved]
            swapped = any(at == ("base",) for _, at in tested)
            for old, new in zip(before, after, strict=True):
                meta = old["metadata"]
                origins = provenance.of(env, old["kind"], meta["namespace"], meta["name"])
                assert origins is not None
                # Each field the map points at a changed key changed.
                for field, origin in origins.fields.items():
                    if (origin.file, origin.path) in tested:
                        assert _get(old, field) != _get(new, field), (origin.path, meta, field)
                # Each field that changed is one the map points at a changed key.
                for leaf in _leaves(old, new):
                    found = origins.find(leaf)
                    if found is not None and found[0] is not origins.fallback:
                        if any(_related((found[0].file, found[0].path), p) for p in places):
                            continue
                    elif swapped:
                        continue  # the base decides it, and the base changed
                    if any(_also_decided(p, old["kind"], leaf) for p in places):
                        continue
                    raise AssertionError(f"{changes}: {old['kind']} {meta['name']} {leaf}")


# Keys of the example files the map need not name: they set no field of a rendered object on
# their own.
RENDER_NO_FIELD = {
    # method: replicas renders no Istio object, whose names and hosts they are.
    ("service",): "with the version, a Deployment's name; the map names the version",
    ("base",): "which base: its own files say where its fields are",
    ("kubernetesVersion",): "the schemas `check` validates against",
    ("policy",): "how `check` judges",
    ("remoteBases",): "what kustomize may fetch",
    ("canary",): "the plan `step --next` follows",
    ("defaults", "canary"): "the plan `step --next` follows",
    ("method",): "the shape of the overlay, not a field",
    ("routing",): "the routing API: the shape of the overlay, not a field",
    # With method: replicas the weights share out `replicas`, which the map names.
    ("versions", "*", "weight"): "the share of `replicas` (method: replicas)",
}


def _keys(value: object, path: tuple = ()) -> list[tuple]:
    """The path of every scalar in `value`."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _keys(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _keys(v, (*path, i))]
    return [path]


def test_every_key_of_the_example_files_is_in_the_map() -> None:
    """A key the renderer reads but the map leaves out sends a user to the wrong place;
    each scalar of the example files is named by the map (or inside a key it names, not
    as a version's name), or is listed above with why it sets no field."""
    from meshcanary.render.repository import plan

    provenance = plan(ROOT).provenance
    named: dict[str, set[tuple]] = {}
    for _, origins in provenance.items():
        for origin in origins.fields.values():
            if not origin.key:
                named.setdefault(origin.file, set()).add(origin.path)
    missing = []
    for path in sorted((ROOT / "environments").glob("*/*.yaml")):
        file = path.relative_to(ROOT).as_posix()
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        method = data.get("method", "istio")
        for key in _keys(data):
            if any(key[: len(at)] == at for at in named.get(file, ())):
                continue
            if any(
                len(key) >= len(pattern)
                and all(p in ("*", k) for p, k in zip(pattern, key, strict=False))
                and (pattern[-1] != "weight" or method == "replicas")
                for pattern in RENDER_NO_FIELD
            ):
                continue
            missing.append(f"{file}: {'.'.join(map(str, key))}")
    assert not missing, "keys the map does not name:\n" + "\n".join(missing)
