"""Property-based tests (hypothesis) of the emitter, the renderer and the rendered Kustomize tree.

1. The emitter writes YAML that YAML 1.2 and YAML 1.1 readers both read back as the same value.
2. Rendering is deterministic and idempotent; the order of keys in the input does not matter
   (except the order of `versions`).
3. `kustomize build` of a rendered service overlay is consistent with the release file.
4. Invalid input is refused with exit 2 and a located message, and nothing is written.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import random
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import MantissaNoDotYAML1_1Warning

from meshcanary.render import emit
from meshcanary.render.emit import document, scalar
from tests.support import ROOT, Outcome, by_kind, kustomize_build

# Tests that render or run kustomize: no deadline, and no "explain" phase (it reruns a failing
# example many times to tell which parts matter, which costs minutes with kustomize).
SLOW = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """render fsyncs every file it writes; that is slow on CI disks and not what these
    properties are about (tests of the atomic swap live elsewhere)."""
    monkeypatch.setattr("meshcanary.render.tree.os.fsync", lambda _fd: None)


def load_yaml(text: str, version: tuple[int, int] | None = None) -> Any:
    """Read one YAML document with ruamel's safe loader, in YAML 1.2 or (version=(1, 1)) 1.1."""
    yaml = YAML(typ="safe", pure=True)
    if version is not None:
        yaml.version = version
    with warnings.catch_warnings():
        # ruamel reads 1e+16 as a float in 1.1 mode but warns; test_float_is_yaml11_syntax
        # checks that separately.
        warnings.simplefilter("ignore", MantissaNoDotYAML1_1Warning)
        return yaml.load(text)


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types: 1 != 1.0 != True, and floats by value."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def dump_yaml(data: Any) -> str:
    """Block-style YAML of plain data, keys in insertion order (as a person would write it)."""
    yaml = YAML()
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def snapshot(folder: Path, *, folders: bool = False) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (and every folder, with `folders=True`)."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix() + ("/" if p.is_dir() else ""): (
            b"" if p.is_dir() else p.read_bytes()
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file() or (folders and p.is_dir())
    }


# --------------------------------------------------------------------------------------------
# 1. The emitter
# --------------------------------------------------------------------------------------------

# Strings YAML 1.1 or 1.2 readers turn into booleans, nulls, numbers or timestamps.
RESERVED = [
    *"y Y n N yes Yes YES no No NO true True TRUE false False FALSE on On ON off Off OFF".split(),  # noqa: SIM905
    *"null Null NULL ~ .inf -.Inf +.INF .nan .NaN NaN inf Infinity".split(),  # noqa: SIM905
    *"0 00 -0 +0 0. .0 1. 1e3 1E+3 1e-3 1.5 -1 +1 .5 1_000 0x1F 0X1f 0o17 0b101 017 08".split(),  # noqa: SIM905
    *"1:20 190:20:30.15 -1:2 1:2:3:4 1e 1x e1 0x 0b 0o _ __ _1 1_".split(),  # noqa: SIM905
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "2001-1-1",
    "2001-12-14T21:59:43Z",
]
# ... and strings with YAML syntax in them, or characters YAML treats specially.
TRICKY = [
    *RESERVED,
    *"= << - -- --- ... ? ! & * | > % @ ` # , [ ] { } : :: 'a' \"a\"".split(),  # noqa: SIM905
    "- a",
    "-a",
    "-1a",
    "--a",
    "a: b",
    "a:b",
    "a:",
    ":a",
    "a #b",
    "a#b",
    "#a",
    "? a",
    "!tag",
    "&anchor",
    "*alias",
    "%YAML 1.1",
    "@a",
    "a,b",
    "a\tb",
    " a",
    "a ",
    "",
    " ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "a\nb",
    "\na",
    "\n  a",
    "\n\n  a\nb",
    "a\n",
    "a\n  b",
    " a\nb",
    "a \nb",
    "\u2028",
    "a\u2029b",
    "a\x85b",
    "a\x7fb",
    "a\x80b",
    "\x9f",
    "\ufeff",
    "a\ufeffb",
    "\ufffe",
    "\uffff",
    "\x00",
    "\x1b[0m",
    "é",
    "中文",
    "🙂",
    "a\\b",
    "a/b",
    "$(VAR)",
    "${VAR}",
    "sha256:0123",
    "registry.example/micro-api:1.3",
    "ROUND_ROBIN",
    "5xx,connect-failure",
    "25%",
]

YAML_ALPHABET = st.sampled_from(
    [*"aAyYnNeExXoObBtTfF019-_.:+#&*!|>%@`'\" \t\n~=<?,[]{}\\/$", "\u2028", "\x85", "é", "\x7f"]
)

STRINGS = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=16),
    st.text(alphabet=YAML_ALPHABET, max_size=10),
    st.from_regex(emit._PLAIN, fullmatch=True).filter(lambda s: len(s) <= 24),
    st.integers().map(str),
    st.floats(allow_nan=False).map(repr),
    st.from_regex(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9:.]{0,12})?", fullmatch=True),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    STRINGS,
)
KEYS = STRINGS
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=16,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=5)


def _round_trip(value: dict[str, Any], version: tuple[int, int] | None) -> None:
    text = document(value, "header line\n\nsecond line")
    note(f"emitted:\n{text}")
    try:
        back = load_yaml(text, version)
    except Exception as exc:  # any reader error is a counterexample
        raise AssertionError(f"YAML {version or '1.2'} cannot read the output: {exc}") from None
    assert same(back, value), f"YAML {version or '1.2'} read back {back!r}"


@pytest.mark.slow
@settings(max_examples=200)
# Counterexamples found by this file, kept as explicit examples.
@example({"k": "\n :"})  # literal block: the leading spaces of " :" are lost
@example({"k": "a\x85b"})  # NEL written raw: read back as "a b"
@example({"k": "a\x7fb"})  # DEL written raw: not allowed in a YAML stream
@given(DOCUMENTS)
def test_emit_round_trips_in_yaml12(value: dict[str, Any]) -> None:
    _round_trip(value, None)


@pytest.mark.slow
@settings(max_examples=200)
# Counterexamples found by this file, kept as explicit examples.
@example({"k": "\n :"})  # literal block: the leading spaces of " :" are lost
@example({"k": "a\x85b"})  # NEL written raw: read back as "a b"
@example({"k": "a\x7fb"})  # DEL written raw: not allowed in a YAML stream
@given(DOCUMENTS)
def test_emit_round_trips_in_yaml11(value: dict[str, Any]) -> None:
    _round_trip(value, (1, 1))


@settings(max_examples=100)
@given(DOCUMENTS, st.text(max_size=40))
def test_emit_is_deterministic(value: dict[str, Any], header: str) -> None:
    first = document(value, header)
    again = document(json.loads(json.dumps(value)), header)  # an equal value, built anew
    assert first == again
    assert first.endswith("\n")
    assert "\r" not in first.replace("\\r", "")


@settings(max_examples=300)
@given(STRINGS)
def test_scalar_string_reads_back_as_the_same_string_everywhere(text: str) -> None:
    """A string as a mapping value, a list item and a key; YAML 1.2 and 1.1."""
    value = {text: text, "list": [text, [text]], "nested": {"k": text}}
    for version in (None, (1, 1)):
        try:
            back = load_yaml(document(value), version)
        except Exception as exc:
            raise AssertionError(f"YAML {version or '1.2'} cannot read {text!r}: {exc}") from None
        assert same(back, value), (version, document(value), back)


# Multi-line strings: the emitter writes some as literal blocks (`|-`).
MULTILINE = st.text(
    alphabet=st.sampled_from([" ", "a", "\n", "#", ":", "-", "é", "'"]), min_size=1, max_size=14
).filter(lambda s: "\n" in s)


@settings(max_examples=300)
@example("\n :")
@example("\n\n  a\nb")
@given(MULTILINE)
def test_multiline_strings_read_back(text: str) -> None:
    value = {"k": text, "list": [{"k": text}, text], "nested": {"deeper": {"k": text}}}
    for version in (None, (1, 1)):
        emitted = document(value)
        try:
            back = load_yaml(emitted, version)
        except Exception as exc:
            raise AssertionError(f"YAML {version or '1.2'} cannot read:\n{emitted}{exc}") from None
        assert same(back, value), (version, emitted, back)


@given(st.sampled_from(RESERVED))
def test_reserved_words_are_quoted(text: str) -> None:
    """Words YAML 1.1 or 1.2 reads as booleans, nulls, numbers or timestamps are not plain."""
    written = scalar(text)
    for version in (None, (1, 1)):
        back = load_yaml(f"k: {written}\n", version)["k"]
        assert same(back, text), (version, written, back)


def test_reader_modes_are_what_they_claim() -> None:
    """Sanity check of the 1.1 reader this file relies on: it does read yes and 1:20 as data."""
    assert load_yaml("a: yes\nb: 1:20\nc: 0x1F\n", (1, 1)) == {"a": True, "b": 80, "c": 31}
    assert load_yaml("a: yes\nb: 1:20\nc: 0x1F\n") == {"a": "yes", "b": "1:20", "c": 31}


@settings(max_examples=300)
@example(1e-05)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_is_yaml11_syntax(number: float) -> None:
    """YAML 1.1 floats need a dot in the mantissa (yaml.org/type/float.html); 1e+16 is a string
    to PyYAML and strict 1.1 readers, and ruamel warns about it."""
    written = scalar(number)
    assert re.fullmatch(r"[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?", written), written
    with warnings.catch_warnings():
        warnings.simplefilter("error", MantissaNoDotYAML1_1Warning)
        back = YAML(typ="safe", pure=True)
        back.version = (1, 1)
        assert same(back.load(f"k: {written}\n")["k"], number)


@settings(max_examples=50)
@example(1023, "é")
@given(st.integers(min_value=1, max_value=2000), st.sampled_from(["k", "é", "a b"]))
def test_long_keys_read_back(length: int, unit: str) -> None:
    """YAML limits implicit keys to 1024 characters; longer keys need an explicit `? ` key."""
    key = (unit * length)[:length]
    value = {key: 1, "nested": {key: [key]}}
    assert same(load_yaml(document(value)), value)


def test_empty_document_reads_back_as_empty_mapping() -> None:
    assert load_yaml(document({})) == {}
    assert load_yaml(document({}, "header")) == {}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), object(), b"x"])
def test_scalar_refuses_what_it_cannot_write(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        scalar(bad)


# --------------------------------------------------------------------------------------------
# Strategies for repositories: environment.yaml and valid release files
# --------------------------------------------------------------------------------------------

BASES: dict[str, dict[str, Any]] = {
    # service name -> what its base in deploy/base/ holds
    "micro-api": {"container": "micro-api", "ports": [19090], "image": "registry.example/api"},
    "checkout": {"container": "checkout", "ports": [80, 9090], "image": "registry.example/co"},
}

DNS_LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
# Names YAML or the renderer could trip over, and ordinary ones.
VERSION_NAMES = st.one_of(
    st.sampled_from(
        [
            *["v1", "v2", "v3", "canary", "stable", "yes", "no", "on", "off", "true", "null"],
            *["y", "1", "10", "007", "1e3", "0x1f", "0b1", "1-2", "v1-2-3", "a" * 40],
        ]
    ),
    DNS_LABEL,
)
TAGS = st.one_of(
    st.sampled_from(["1.3", "1.10", "2.4.1", "1", "1e3", "true", "latest-ok", "v1_2", "0x1F"]),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
DIGESTS = st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True)
HOSTS = st.builds(
    lambda wildcard, labels: ("*." if wildcard else "") + ".".join(labels),
    st.booleans(),
    st.lists(DNS_LABEL, min_size=1, max_size=3),
)
DURATIONS = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,2})?(ms|s|m|h)", fullmatch=True)
INT_OR_PERCENT = st.one_of(st.integers(0, 5), st.from_regex(r"[0-9]{1,3}%", fullmatch=True))
TRAFFIC_POLICIES = st.sampled_from(
    [
        {"loadBalancer": {"simple": "ROUND_ROBIN"}},
        {"loadBalancer": {"simple": "LEAST_REQUEST"}},
        {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}},
        {"connectionPool": {"tcp": {"maxConnections": 100}, "http": {"maxRetries": 3}}},
        {
            "outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s"},
            "tls": {"mode": "ISTIO_MUTUAL"},
        },
    ]
)
HEADER_NAMES = st.one_of(
    st.sampled_from(["x-canary", "user-agent", "x-user.id", "x_team", "end-user"]),
    st.from_regex(r"[a-z0-9][-a-z0-9_.]{0,12}", fullmatch=True),
).filter(lambda h: h != "cookie")  # a "cookie" header has its own test below
COOKIE_NAMES = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}", fullmatch=True)
# Header values in the consistency property: printable text, spaces, quotes, unicode letters.
# Arbitrary text (control characters...) goes through kustomize in its own property.
SAFE_TEXT = st.text(
    alphabet=st.characters(
        categories=["L", "N", "P", "S", "Zs"], exclude_characters="\u2028\u2029\x85\xa0"
    ),
    max_size=12,
)
SAFE_COOKIE_VALUES = SAFE_TEXT.filter(lambda s: re.fullmatch(r'[^;, \t"\\]*', s) is not None)
ENV_NAMES = st.one_of(st.sampled_from(["prod", "dev", "staging", "e2e"]), DNS_LABEL)


def weight_splits(n: int) -> st.SearchStrategy[list[int]]:
    """n integer weights in 0..100 that sum to 100."""

    def split(cuts: list[int]) -> list[int]:
        bounds = [0, *sorted(cuts), 100]
        return [b - a for a, b in itertools.pairwise(bounds)]

    return st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1).map(split)


@st.composite
def images(draw: st.DrawFn, service: str) -> str:
    """An image with a tag (and maybe a digest); tagless images have their own test."""
    repository = draw(
        st.sampled_from(
            [
                BASES[service]["image"],
                f"registry.example/shop/{service}",
                f"localhost:5000/{service}",
                service,
                f"r.example/a.b/c-d_e/{service}",
            ]
        )
    )
    tag = draw(TAGS)
    digest = draw(st.none() | DIGESTS)
    return repository + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@st.composite
def match_rules(
    draw: st.DrawFn, names: list[str], header_values: st.SearchStrategy[str]
) -> dict[str, Any]:
    rule: dict[str, Any] = {"version": draw(st.sampled_from(names))}
    parts = draw(
        st.sets(st.sampled_from(["name", "headers", "cookies"]), min_size=1).filter(
            lambda s: s != {"name"}
        )
    )
    if "name" in parts:
        rule["name"] = draw(DNS_LABEL)
    if "headers" in parts:
        rule["headers"] = draw(
            st.dictionaries(
                HEADER_NAMES,
                st.builds(
                    # Istio refuses an empty prefix or regex; an empty exact value is one.
                    lambda kind, value: {kind if value else "exact": value},
                    st.sampled_from(["exact", "prefix", "regex"]),
                    header_values,
                ),
                min_size=1,
                max_size=3,
            )
        )
    if "cookies" in parts:
        cookie_values = header_values.filter(lambda s: re.fullmatch(r'[^;, \t"\\]*', s) is not None)
        # The schema allows one cookie per rule (several need a lookahead RE2 does not have).
        rule["cookies"] = draw(st.dictionaries(COOKIE_NAMES, cookie_values, min_size=1, max_size=1))
    return rule


@st.composite
def release_files(
    draw: st.DrawFn,
    service: str,
    gateways: list[str],
    *,
    version_names: st.SearchStrategy[str] = VERSION_NAMES,
    header_values: st.SearchStrategy[str] = SAFE_TEXT,
) -> dict[str, Any]:
    """A release file that the schema and the loader's semantic rules accept."""
    count = draw(st.sampled_from([2, 1, 3, 4, 2]))
    names = draw(st.lists(version_names, min_size=count, max_size=count, unique=True))
    weights = draw(weight_splits(count))
    method = draw(st.sampled_from(["istio", "istio", "istio", "replicas"]))
    versions: dict[str, Any] = {}
    for name, weight in zip(names, weights, strict=True):
        spec: dict[str, Any] = {"image": draw(images(service)), "weight": weight}
        if method == "istio":
            spec["replicas"] = draw(st.integers(0, 6))
        versions[name] = spec
    base = draw(
        st.sampled_from(
            [f"deploy/base/{service}", f"deploy/base/{service}/", f"./deploy/base/{service}"]
        )
    )
    data: dict[str, Any] = {"service": service, "base": base}
    if method == "replicas" or draw(st.booleans()):
        data["method"] = method
    if method == "replicas":
        data["replicas"] = draw(st.integers(0, 40))
    else:
        if draw(st.booleans()):
            data["hosts"] = draw(st.lists(HOSTS, min_size=1, max_size=3, unique=True))
        if draw(st.booleans()):
            data["gateways"] = draw(
                st.lists(st.sampled_from(gateways), min_size=1, max_size=3, unique=True)
            )
        if draw(st.booleans()):
            ports = draw(
                st.lists(
                    st.sampled_from(BASES[service]["ports"]),
                    min_size=1,
                    max_size=len(BASES[service]["ports"]),
                    unique=True,
                )
            )
            data["ports"] = [
                {"port": p} | draw(st.sampled_from([{}, {"protocol": "http"}, {"protocol": "tcp"}]))
                for p in ports
            ]
        if draw(st.booleans()):
            data["trafficPolicy"] = draw(TRAFFIC_POLICIES)
        if draw(st.booleans()):
            data["timeout"] = draw(DURATIONS)
        if draw(st.booleans()):
            retries: dict[str, Any] = {"attempts": draw(st.integers(0, 100))}
            if draw(st.booleans()):
                retries["perTryTimeout"] = draw(DURATIONS)
            if draw(st.booleans()):
                retries["retryOn"] = draw(
                    st.sampled_from(["5xx", "5xx,connect-failure", "gateway-error,reset"])
                )
            data["retries"] = retries
        if draw(st.booleans()):
            data["match"] = draw(
                st.lists(match_rules(names, header_values), min_size=1, max_size=3)
            )
        if draw(st.booleans()):
            percent = draw(
                st.integers(1, 100)
                | st.floats(min_value=0, max_value=100, exclude_min=True)
                | st.sampled_from([0.1, 0.5, 12.5, 33.3, 99.99, 100.0])
            )
            data["mirror"] = {"version": draw(st.sampled_from(names)), "percent": percent}
        if data.get("ports") and all(p.get("protocol") == "tcp" for p in data["ports"]):
            # HTTP route settings with no HTTP port are refused (tested where that is said).
            for key in ("timeout", "retries", "match", "mirror"):
                data.pop(key, None)
    if draw(st.booleans()):
        data["container"] = BASES[service]["container"]
    if draw(st.booleans()):
        rollout: dict[str, Any] = {}
        if draw(st.booleans()):
            rollout["maxSurge"] = draw(INT_OR_PERCENT)
        if draw(st.booleans()):
            rollout["maxUnavailable"] = draw(INT_OR_PERCENT)
        if draw(st.booleans()):
            rollout["minReadySeconds"] = draw(st.integers(0, 600))
        data["rollout"] = rollout
    if draw(st.booleans()):
        steps = draw(st.lists(st.integers(1, 100), min_size=1, max_size=5, unique=True))
        data["canary"] = {"steps": sorted(steps)}
    data["versions"] = versions
    # Keys in a random order: a person may write them in any order.
    keys = draw(st.permutations(list(data)))
    return {k: data[k] for k in keys}


@dataclass
class Scenario:
    env: str
    environment: dict[str, Any]
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return str(self.environment["namespace"])


@st.composite
def scenarios(draw: st.DrawFn, **release_options: Any) -> Scenario:
    env = draw(ENV_NAMES)
    gateway_names = draw(
        st.lists(
            st.sampled_from(["public", "micro-gateway", "edge-1", "gw"]) | DNS_LABEL,
            min_size=1,
            max_size=2,
            unique=True,
        ).filter(lambda names: "mesh" not in names)
    )
    environment: dict[str, Any] = {"namespace": draw(DNS_LABEL)}
    environment["gateways"] = {
        name: {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["a.example"]}
            ],
        }
        for name in gateway_names
    }
    if draw(st.booleans()):
        environment["defaults"] = {
            "rollout": {"maxSurge": 1, "maxUnavailable": draw(INT_OR_PERCENT)},
            "canary": {"steps": [10, 50, 100]},
        }
    services = draw(st.lists(st.sampled_from(sorted(BASES)), min_size=1, max_size=2, unique=True))
    choices = ["mesh", *gateway_names, "istio-system/shared-gw"]
    releases = {
        service: draw(release_files(service, choices, **release_options)) for service in services
    }
    return Scenario(env, environment, releases)


def make_repo(folder: Path, scenario: Scenario) -> Path:
    """A repository with the example bases, one environment, and the scenario's release files."""
    repo = folder / "repo"
    shutil.copytree(ROOT / "deploy" / "base", repo / "deploy" / "base")
    env_dir = repo / "environments" / scenario.env
    env_dir.mkdir(parents=True)
    (env_dir / "environment.yaml").write_text(dump_yaml(scenario.environment), encoding="utf-8")
    for service, data in scenario.releases.items():
        (env_dir / f"{service}.yaml").write_text(
            "# yaml-language-server: $schema=../../schemas/release.schema.json\n" + dump_yaml(data),
            encoding="utf-8",
        )
    return repo


def small_scenario(
    versions: dict[str, dict[str, Any]], *, service: str = "micro-api", **extra: Any
) -> Scenario:
    """One istio release of `service` in environment prod, namespace shop."""
    release = {"service": service, "base": f"deploy/base/{service}", **extra}
    release["versions"] = versions
    return Scenario("prod", {"namespace": "shop"}, {service: release})


def two_versions(**extra: Any) -> Scenario:
    return small_scenario(
        {
            "v1": {"image": "registry.example/api:1", "replicas": 1, "weight": 90},
            "v2": {"image": "registry.example/api:2", "replicas": 1, "weight": 10},
        },
        **extra,
    )


def render_ok(cli: Callable[..., Outcome], repo: Path, *args: str) -> Outcome:
    done = cli("--repo", repo, "render", *args)
    assert done.code == 0, done.err
    assert "Traceback" not in done.err
    return done


# --------------------------------------------------------------------------------------------
# 2. Determinism and idempotency of render
# --------------------------------------------------------------------------------------------

# Maps whose content meshcanary copies into the output as written; their key order is the
# user's to choose and may show in the output (the semantic test below covers them).
COPIED = {"trafficPolicy", "headers", "cookies", "selector", "servers"}


def shuffled(value: Any, rnd: random.Random, *, keep: frozenset[str], key: str = "") -> Any:
    """`value` with the keys of every mapping in a new order, except under `keep` keys and
    `versions` (whose order is meaningful: oldest first)."""
    if key in keep:
        return value
    if isinstance(value, dict):
        keys = list(value)
        if key != "versions":
            rnd.shuffle(keys)
        return {k: shuffled(value[k], rnd, keep=keep, key=k) for k in keys}
    if isinstance(value, list):
        return [shuffled(item, rnd, keep=keep, key=key) for item in value]
    return value


def reordered(scenario: Scenario, rnd: random.Random, keep: frozenset[str]) -> Scenario:
    environment = {
        k: v if k == "gateways" else shuffled(v, rnd, keep=keep, key=k)
        for k, v in scenario.environment.items()
    }
    keys = list(environment)
    rnd.shuffle(keys)
    return Scenario(
        scenario.env,
        {k: environment[k] for k in keys},
        {s: shuffled(d, rnd, keep=keep) for s, d in scenario.releases.items()},
    )


@pytest.mark.slow
@settings(SLOW, max_examples=30)
@given(scenario=scenarios(), rnd=st.randoms(use_true_random=False))
def test_render_is_idempotent_and_deterministic(
    cli: Callable[..., Outcome], scenario: Scenario, rnd: random.Random
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "a", scenario)
        render_ok(cli, repo)
        rendered = snapshot(repo / "deploy" / "overlays")
        assert rendered, "render wrote nothing"
        assert not [p for p in rendered if p.startswith(".")], "staging folders left behind"

        # A second render changes nothing.
        fresh = render_ok(cli, repo, "--check")
        assert fresh.out == "", fresh.out
        again = render_ok(cli, repo)
        assert again.out == "", again.out
        assert snapshot(repo / "deploy" / "overlays") == rendered

        # The same release files with their keys in another order (except `versions` and the
        # maps copied as written), in a fresh repository: the same bytes.
        other = make_repo(Path(tmp) / "b", reordered(scenario, rnd, frozenset(COPIED)))
        render_ok(cli, other)
        assert snapshot(other / "deploy" / "overlays") == rendered

        # Reordering headers and trafficPolicy too may reorder the output, but the rendered
        # resources mean the same (cookies are left alone: they become one regex).
        third = make_repo(Path(tmp) / "c", reordered(scenario, rnd, frozenset({"cookies"})))
        render_ok(cli, third)
        other_files = snapshot(third / "deploy" / "overlays")
        assert sorted(other_files) == sorted(rendered)
        for path, text in rendered.items():
            if not path.endswith(".meshcanary.json"):
                assert load_yaml(text.decode()) == load_yaml(other_files[path].decode()), path


@settings(SLOW, max_examples=10)
@given(
    names=st.lists(
        st.sampled_from(["public", "micro-gateway", "edge-1", "gw"]),
        min_size=2,
        max_size=3,
        unique=True,
    ),
    rnd=st.randoms(use_true_random=False),
)
def test_order_of_environment_gateways_does_not_matter(
    cli: Callable[..., Outcome], names: list[str], rnd: random.Random
) -> None:
    """environment.yaml's `gateways:` is a mapping by name: writing them in another order
    should not change the rendered bytes."""
    gateway = {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["a.example"]}],
    }
    scenario = two_versions(gateways=["mesh", names[0]])
    scenario.environment["gateways"] = {name: gateway for name in names}
    shuffled_names = list(names)
    rnd.shuffle(shuffled_names)
    environment = {**scenario.environment, "gateways": {n: gateway for n in shuffled_names}}
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "a", scenario)
        render_ok(cli, repo)
        other = make_repo(Path(tmp) / "b", Scenario("prod", environment, scenario.releases))
        render_ok(cli, other)
        assert snapshot(other / "deploy" / "overlays") == snapshot(repo / "deploy" / "overlays")


# --------------------------------------------------------------------------------------------
# 3. Consistency of the kustomize build of a service overlay
# --------------------------------------------------------------------------------------------


def subset_of(small: dict[str, Any], big: dict[str, Any]) -> bool:
    return all(k in big and big[k] == v for k, v in small.items())


def expected_headers(rule: dict[str, Any]) -> dict[str, dict[str, str]]:
    headers = {name: dict(condition) for name, condition in rule.get("headers", {}).items()}
    return headers


def cookie_header(pairs: dict[str, str], before: str = "", after: str = "") -> str:
    return "; ".join(
        [*([before] if before else []), *(f"{k}={v}" for k, v in pairs.items())]
        + ([after] if after else [])
    )


def check_apportionment(weights: dict[str, int], total: int, counts: dict[str, int]) -> None:
    """Replica split: sums to total; each version's pods are floor or ceil of its quota; and
    the largest gap between share and weight is the smallest any split can reach."""
    assert sum(counts.values()) == total, (counts, total)
    quotas = {v: w * total / 100 for v, w in weights.items()}
    for version, count in counts.items():
        assert math.floor(quotas[version]) <= count <= math.ceil(quotas[version]), (
            version,
            count,
            quotas[version],
        )
        if total:
            assert abs(100 * count / total - weights[version]) <= 100 / total + 1e-9
    if not total:
        return
    floors = {v: math.floor(q) for v, q in quotas.items()}
    extra = total - sum(floors.values())
    best = min(
        max(abs(floors[v] + (v in up) - quotas[v]) for v in quotas)
        for up in itertools.combinations(quotas, extra)
    )
    achieved = max(abs(counts[v] - quotas[v]) for v in quotas)
    assert achieved <= best + 1e-9, (counts, quotas)


def check_service_overlay(
    scenario: Scenario, service: str, data: dict[str, Any], resources: list[dict[str, Any]]
) -> None:
    names = list(data["versions"])
    namespace = scenario.namespace
    for resource in resources:
        assert resource["metadata"].get("namespace") == namespace, resource["metadata"]

    deployments = by_kind(resources, "Deployment")
    by_name = {d["metadata"]["name"]: d for d in deployments}
    assert len(deployments) == len(names)
    assert sorted(by_name) == sorted(f"{service}-{v}" for v in names)
    pod_labels: dict[str, dict[str, Any]] = {}
    for version in names:
        deployment = by_name[f"{service}-{version}"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.get("version") == version and "app" in selector
        assert labels.get("version") == version and "app" in labels
        assert subset_of(selector, labels)
        pod_labels[version] = labels
        # The image the release asks for is the one that runs.
        container_name = data.get("container", BASES[service]["container"])
        containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
        assert containers[container_name]["image"] == data["versions"][version]["image"]
        # Rolling-update settings: the release's over the environment's defaults.
        defaults = scenario.environment.get("defaults", {}).get("rollout", {})
        rollout = {**defaults, **data.get("rollout", {})}
        spec = deployment["spec"]
        if "minReadySeconds" in rollout:
            assert spec["minReadySeconds"] == rollout["minReadySeconds"]
        for key in ("maxSurge", "maxUnavailable"):
            if key in rollout:
                assert spec["strategy"]["rollingUpdate"][key] == rollout[key]

    replicas = {v: by_name[f"{service}-{v}"]["spec"]["replicas"] for v in names}
    if data.get("method", "istio") == "istio":
        assert replicas == {v: s["replicas"] for v, s in data["versions"].items()}
    else:
        weights = {v: s["weight"] for v, s in data["versions"].items()}
        check_apportionment(weights, data["replicas"], replicas)

    services = by_kind(resources, "Service")
    assert len(services) == 1, [s["metadata"]["name"] for s in services]
    selector = services[0]["spec"]["selector"]
    assert "version" not in selector
    for version in names:
        assert subset_of(selector, pod_labels[version]), (selector, pod_labels[version])

    rules = by_kind(resources, "DestinationRule")
    routes = by_kind(resources, "VirtualService")
    if data.get("method", "istio") != "istio":
        assert rules == [] and routes == []
        return
    assert len(rules) == 1 and len(routes) == 1
    host = f"{service}.{namespace}.svc.cluster.local"
    rule = rules[0]["spec"]
    assert rule["host"] == host
    assert rule.get("trafficPolicy") == data.get("trafficPolicy")
    subsets = {s["name"]: s["labels"] for s in rule["subsets"]}
    assert [s["name"] for s in rule["subsets"]] == names
    for version in names:
        assert subsets[version] == pod_labels[version]
        selected = [
            d
            for d in deployments
            if subset_of(subsets[version], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(selected) == 1, version

    spec = routes[0]["spec"]
    assert spec["hosts"] == data.get("hosts", [host])
    assert spec["gateways"] == data.get("gateways", ["mesh"])
    http = spec.get("http", [])
    tcp = spec.get("tcp", [])
    for route in [*http, *tcp]:
        for destination in [r["destination"] for r in route["route"]]:
            assert destination["host"] == host
            assert destination["subset"] in subsets
        if "mirror" in route:
            assert route["mirror"]["subset"] in subsets

    ports = data.get("ports") or [None]
    # Weighted routes carry a weight on each destination; pinned routes have one, unweighted.
    weighted = [r for r in http if all("weight" in d for d in r["route"])] + tcp
    assert len(weighted) == len(ports)
    weights = [s["weight"] for s in data["versions"].values()]
    for route in weighted:
        assert [r["weight"] for r in route["route"]] == weights
        assert [r["destination"]["subset"] for r in route["route"]] == names
        assert sum(r["weight"] for r in route["route"]) == 100

    extras: dict[str, Any] = {}
    if "timeout" in data:
        extras["timeout"] = data["timeout"]
    if "retries" in data:
        extras["retries"] = data["retries"]
    matches = data.get("match", [])
    http_index = 0
    for port in ports:
        if port is not None and port.get("protocol") == "tcp":
            continue
        for index, match in enumerate(matches):
            route = http[http_index]
            http_index += 1
            assert [r["destination"]["subset"] for r in route["route"]] == [match["version"]]
            headers = route["match"][0]["headers"]
            for name, condition in expected_headers(match).items():
                assert headers.get(name) == condition, (name, headers)
            if "cookies" in match:
                pattern = headers["cookie"]["regex"]
                cookies = match["cookies"]
                assert re.fullmatch(pattern, cookie_header(cookies, "a=1", "z=2"))
                assert re.fullmatch(pattern, cookie_header(dict(reversed(cookies.items()))))
                first = next(iter(cookies))
                changed = {**cookies, first: cookies[first] + "x"}
                assert not re.fullmatch(pattern, cookie_header(changed))
            assert route["name"].startswith(match.get("name", f"pin-{match['version']}-{index}"))
            for key, value in extras.items():
                assert route[key] == value
        route = http[http_index]
        http_index += 1
        assert route["name"].startswith("weighted")
        assert all("weight" in d for d in route["route"])
        for key, value in extras.items():
            assert route[key] == value
        if "mirror" in data:
            assert route["mirror"]["subset"] == data["mirror"]["version"]
            assert route["mirrorPercentage"]["value"] == float(data["mirror"]["percent"])
    assert http_index == len(http)


def render_and_build(
    cli: Callable[..., Outcome], folder: Path, scenario: Scenario
) -> dict[str, list[dict[str, Any]]]:
    repo = make_repo(folder, scenario)
    render_ok(cli, repo)
    overlays = repo / "deploy" / "overlays" / scenario.env
    return {service: kustomize_build(overlays / service) for service in scenario.releases}


@pytest.mark.slow
@settings(SLOW, max_examples=30)
@given(scenario=scenarios())
def test_kustomize_build_is_consistent_with_the_release(
    cli: Callable[..., Outcome], scenario: Scenario
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        built = render_and_build(cli, Path(tmp), scenario)
    for service, resources in built.items():
        note(f"{service}: {json.dumps(resources, indent=1)[:4000]}")
        check_service_overlay(scenario, service, scenario.releases[service], resources)


@settings(SLOW, max_examples=10)
@given(scenario=scenarios())
def test_environment_overlay_builds(cli: Callable[..., Outcome], scenario: Scenario) -> None:
    """The aggregate deploy/overlays/<env>/ builds too: no resource twice, the Gateways once."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), scenario)
        render_ok(cli, repo)
        resources = kustomize_build(repo / "deploy" / "overlays" / scenario.env)
    ids = [(r["kind"], r["metadata"]["name"]) for r in resources]
    assert len(ids) == len(set(ids))
    assert sorted(g["metadata"]["name"] for g in by_kind(resources, "Gateway")) == sorted(
        scenario.environment["gateways"]
    )


# Arbitrary text (a raw U+00A0 in a release file is refused by design, so it is left out).
# Left out: U+00A0, which release files refuse on purpose, and NEL, LS and PS, which YAML 1.1
# readers (ruamel among them) take as line breaks inside the release file itself.
ANY_TEXT = st.one_of(st.text(max_size=12), st.sampled_from(TRICKY)).filter(
    lambda s: not any(c in s for c in "\xa0\x85\u2028\u2029")
)


@settings(SLOW, max_examples=15)
@example(conditions=[("exact", "\x7f")])
@example(conditions=[("exact", "\ufffe")])  # a non-character: Go's YAML reader refuses it
@given(
    conditions=st.lists(
        st.tuples(st.sampled_from(["exact", "prefix", "regex"]), ANY_TEXT).filter(
            lambda condition: condition[0] == "exact" or condition[1] != ""
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_header_value_survives_kustomize(
    cli: Callable[..., Outcome], conditions: list[tuple[str, str]]
) -> None:
    """Header match values of any text reach the built VirtualService unchanged (the emitter's
    output is read by kustomize's Go YAML reader, not only by ruamel); a value with a control
    character, which neither HTTP nor kustomize can carry, is refused at the release file."""
    headers = {f"x-h{i}": {kind: value} for i, (kind, value) in enumerate(conditions)}
    scenario = two_versions(match=[{"version": "v2", "headers": headers}])
    control = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ufffe\uffff]")
    with tempfile.TemporaryDirectory() as tmp:
        if any(control.search(value) for _kind, value in conditions):
            done = cli("--repo", make_repo(Path(tmp), scenario), "render")
            assert done.code == 2, done.err
            assert "control characters" in done.err
            return
        built = render_and_build(cli, Path(tmp), scenario)["micro-api"]
    pinned = by_kind(built, "VirtualService")[0]["spec"]["http"][0]
    assert pinned["match"][0]["headers"] == headers


SIMPLE_IMAGES = st.builds(
    lambda repository, tag, digest: repository + tag + digest,
    st.sampled_from(["registry.example/api", "localhost:5000/api", "api"]),
    st.sampled_from(["", ":1.3", ":latest", ":0x1F"]),
    st.sampled_from(["", "@sha256:" + "0123456789abcdef" * 4]),
)


@settings(SLOW, max_examples=12)
@example(first="registry.example/api", second="api:1.3", container=False)
@given(first=SIMPLE_IMAGES, second=SIMPLE_IMAGES, container=st.booleans())
def test_built_image_is_the_release_image(
    cli: Callable[..., Outcome], first: str, second: str, container: bool
) -> None:
    """Whatever form the image takes (tag, digest or both), the pods run exactly it; an image
    with neither is refused, since it would run whatever `latest` is (or the base's tag)."""
    extra = {"container": "micro-api"} if container else {}
    pinned = [i for i in (first, second) if ":" in i.rsplit("/", 1)[-1] or "@" in i]
    if len(pinned) < 2:
        with tempfile.TemporaryDirectory() as tmp:
            scenario = small_scenario(
                {
                    "v1": {"image": first, "replicas": 1, "weight": 50},
                    "v2": {"image": second, "replicas": 1, "weight": 50},
                },
                **extra,
            )
            done = cli("--repo", make_repo(Path(tmp), scenario), "render")
        assert done.code == 2, done.err
        assert 'is not a valid "image"' in done.err
        return
    scenario = small_scenario(
        {
            "v1": {"image": first, "replicas": 1, "weight": 50},
            "v2": {"image": second, "replicas": 1, "weight": 50},
        },
        **extra,
    )
    with tempfile.TemporaryDirectory() as tmp:
        built = render_and_build(cli, Path(tmp), scenario)["micro-api"]
    images = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in by_kind(built, "Deployment")
    }
    assert images == {"micro-api-v1": first, "micro-api-v2": second}


@settings(SLOW, max_examples=10)
@example(names=["service"], method="istio")
@given(
    names=st.lists(
        st.one_of(st.sampled_from(["service", "v1", "canary"]), DNS_LABEL),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    method=st.sampled_from(["istio", "replicas"]),
)
def test_every_dns_label_is_a_usable_version_name(
    cli: Callable[..., Outcome], names: list[str], method: str
) -> None:
    """The schema allows any DNS-1123 label as a version name, including `service`, the name
    of the folder that holds the Service. Refusing one with a message would be fine too."""
    versions = {
        name: {"image": f"registry.example/api:{i}", "weight": 100 if i == 0 else 0}
        | ({"replicas": 1} if method == "istio" else {})
        for i, name in enumerate(names)
    }
    extra: dict[str, Any] = {"method": "replicas", "replicas": 3} if method == "replicas" else {}
    scenario = small_scenario(versions, **extra)
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), scenario)
        done = cli("--repo", repo, "render")
        assert "Traceback" not in done.err
        if done.code == 2:
            return  # refused with a message: acceptable
        assert done.code == 0, done.err
        resources = kustomize_build(repo / "deploy" / "overlays" / "prod" / "micro-api")
    check_service_overlay(scenario, "micro-api", scenario.releases["micro-api"], resources)


@settings(SLOW, max_examples=5)
@example(alias="api", together=False)
@given(alias=st.sampled_from(["api", "api-v2", "payments"]), together=st.booleans())
def test_deployments_are_named_after_the_service(
    cli: Callable[..., Outcome], alias: str, together: bool
) -> None:
    """The schema says `Deployments are named <service>-<version>`; a release whose base is
    named otherwise (or is shared with another release) must still get its own names."""
    scenario = two_versions()
    releases = {alias: {**scenario.releases["micro-api"], "service": alias}}
    if together:
        releases["micro-api"] = scenario.releases["micro-api"]
    scenario = Scenario("prod", scenario.environment, releases)
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), scenario)
        done = cli("--repo", repo, "render")
        assert "Traceback" not in done.err
        if done.code == 2:
            return  # refused with a message: acceptable
        assert done.code == 0, done.err
        overlays = repo / "deploy" / "overlays" / "prod"
        resources = kustomize_build(overlays / alias)
        names = sorted(d["metadata"]["name"] for d in by_kind(resources, "Deployment"))
        assert names == [f"{alias}-v1", f"{alias}-v2"]
        everything = kustomize_build(overlays)  # no two releases render the same resource
    ids = [(r["kind"], r["metadata"]["name"]) for r in everything]
    assert len(ids) == len(set(ids))


def rendered_virtual_service(
    cli: Callable[..., Outcome], folder: Path, scenario: Scenario, service: str
) -> dict[str, Any]:
    repo = make_repo(folder, scenario)
    render_ok(cli, repo)
    path = repo / "deploy" / "overlays" / scenario.env / service / "virtualservice.yaml"
    return dict(load_yaml(path.read_text(encoding="utf-8")))


SIMPLE_COOKIES = st.dictionaries(
    st.sampled_from(["canary", "user", "a.b", "x-y", "tester", "k"]),
    st.sampled_from(["always", "1", "", "a=b", "é", "x(y)"]),
    min_size=1,
    max_size=1,
)


@settings(SLOW, max_examples=10)
@given(
    cookies=SIMPLE_COOKIES,
    header=st.sampled_from(["exact", "prefix", "regex"]),
    value=st.sampled_from(["session=abc", "beta", ".*tester=1.*"]),
)
def test_cookie_and_cookie_header_conditions_both_apply(
    cli: Callable[..., Outcome], cookies: dict[str, str], header: str, value: str
) -> None:
    """A rule with `headers: {cookie: ...}` and `cookies:` must keep both conditions (all
    conditions of a rule must hold), or be refused with a message."""
    rule = {"version": "v2", "headers": {"cookie": {header: value}}, "cookies": cookies}
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), two_versions(match=[rule]))
        done = cli("--repo", repo, "render")
        assert "Traceback" not in done.err
        if done.code == 2:
            return  # refused with a message: acceptable
        path = repo / "deploy" / "overlays" / "prod" / "micro-api" / "virtualservice.yaml"
        spec = load_yaml(path.read_text(encoding="utf-8"))["spec"]
    conditions = spec["http"][0]["match"]
    kept = [c for c in conditions if c.get("headers", {}).get("cookie") == {header: value}]
    assert kept, conditions


# Syntax RE2 (the regex engine of Envoy and so of Istio's StringMatch.regex) does not support.
RE2_UNSUPPORTED = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]|\(\?P=|\(\?>|[*+?}][+]")


@settings(SLOW, max_examples=10)
@given(cookies=SIMPLE_COOKIES)
def test_generated_regexes_are_re2(cli: Callable[..., Outcome], cookies: dict[str, str]) -> None:
    """Every regex meshcanary itself writes into a VirtualService is valid RE2 (no lookahead,
    lookbehind, backreferences or possessive quantifiers), or Istio rejects the route."""
    with tempfile.TemporaryDirectory() as tmp:
        scenario = two_versions(match=[{"version": "v2", "cookies": cookies}])
        spec = rendered_virtual_service(cli, Path(tmp), scenario, "micro-api")["spec"]
    regexes = [
        (name, match["regex"])
        for route in spec["http"]
        for condition in route.get("match", [])
        for name, match in condition.get("headers", {}).items()
        if "regex" in match
    ]
    assert regexes, spec  # a cookie is matched by a regex: without one, nothing was checked
    for name, regex in regexes:
        assert not RE2_UNSUPPORTED.search(regex), (name, regex)


# --------------------------------------------------------------------------------------------
# 4. Invalid input is refused, located, and changes nothing
# --------------------------------------------------------------------------------------------

UNKNOWN_KEYS = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,10}", fullmatch=True)
BAD_WEIGHTS = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=101),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, 100).map(float),
    st.integers(0, 100).map(str),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(st.integers(0, 100), max_size=2),
    st.just({"value": 50}),
)
_RELEASE_SCHEMA = json.loads((ROOT / "schemas" / "release.schema.json").read_text())
_DEFS = _RELEASE_SCHEMA["$defs"]
# The keys each mapping of a release file knows, as the schema lists them.
KNOWN = {
    "": set(_RELEASE_SCHEMA["properties"]),
    "version": set(_DEFS["version"]["properties"]),
    "retries": set(_DEFS["routeOptions"]["properties"]["retries"]["properties"]),
    "rollout": set(_DEFS["rollout"]["properties"]),
    "mirror": set(_RELEASE_SCHEMA["properties"]["mirror"]["properties"]),
    "port": set(_DEFS["port"]["properties"]),
    "match": set(_DEFS["match"]["properties"]),
    "canary": set(_DEFS["canary"]["properties"]),
}


def get_in(data: Any, path: list[Any]) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def mutations(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A copy of `data` with one mistake, and a description of it."""
    data = json.loads(json.dumps(data))
    names = list(data["versions"])
    version = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["drop", "weight", "unknown"]))
    if kind == "drop":
        required: list[list[Any]] = [
            ["service"],
            ["base"],
            ["versions"],
            ["versions", version, "image"],
            ["versions", version, "weight"],
        ]
        if "retries" in data:
            required.append(["retries", "attempts"])
        if "mirror" in data:
            required += [["mirror", "version"], ["mirror", "percent"]]
        for index in range(len(data.get("ports", []))):
            required.append(["ports", index, "port"])
        for index in range(len(data.get("match", []))):
            required.append(["match", index, "version"])
        path = draw(st.sampled_from(required))
        del get_in(data, path[:-1])[path[-1]]
        return f"drop {path}", data
    if kind == "weight":
        bad = draw(BAD_WEIGHTS)
        data["versions"][version]["weight"] = bad
        return f"weight of {version} = {bad!r}", data
    places: list[tuple[list[Any], str]] = [([], ""), (["versions", version], "version")]
    for key in ("retries", "rollout", "mirror", "canary"):
        if key in data:
            places.append(([key], key))
    places += [(["ports", i], "port") for i in range(len(data.get("ports", [])))]
    places += [(["match", i], "match") for i in range(len(data.get("match", [])))]
    path, schema_name = draw(st.sampled_from(places))
    key = draw(UNKNOWN_KEYS.filter(lambda k: k not in KNOWN[schema_name]))
    target = get_in(data, path)
    target[key] = draw(st.integers() | st.text(max_size=5) | st.none())
    return f"unknown key {key!r} at {path}", data


ERROR_LINE = r"environments/{env}/{file}:\d+:\d+: error: "


def break_release(repo: Path, scenario: Scenario, service: str, broken: Any) -> None:
    release = repo / "environments" / scenario.env / f"{service}.yaml"
    release.write_text(dump_yaml(broken), encoding="utf-8")


def assert_refused_at_the_release(done: Outcome, scenario: Scenario, service: str) -> None:
    """Exit 2, no traceback, and the first line of stderr a located error in the release."""
    assert done.code == 2, (done.code, done.err)
    assert "Traceback" not in done.err
    first = done.err.splitlines()[0] if done.err else ""
    pattern = ERROR_LINE.format(env=re.escape(scenario.env), file=re.escape(f"{service}.yaml"))
    assert re.match(pattern, first), done.err


@pytest.mark.slow
@settings(SLOW, max_examples=50)
@given(scenario=scenarios(), data=st.data())
def test_invalid_release_is_refused_and_nothing_is_written(
    cli: Callable[..., Outcome], scenario: Scenario, data: st.DataObject
) -> None:
    service = data.draw(st.sampled_from(sorted(scenario.releases)), label="service")
    what, broken = data.draw(mutations(scenario.releases[service]), label="mutation")
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), scenario)
        if data.draw(st.booleans(), label="rendered before"):
            render_ok(cli, repo)
        break_release(repo, scenario, service, broken)
        before = snapshot(repo, folders=True)
        done = cli("--repo", repo, "render")
        after = snapshot(repo, folders=True)
    note(f"{what}\n{dump_yaml(broken)}\nstderr:\n{done.err}")
    assert_refused_at_the_release(done, scenario, service)
    assert after == before


@settings(SLOW, max_examples=15)
@given(scenario=scenarios(), data=st.data())
def test_invalid_release_is_refused_by_render_check(
    cli: Callable[..., Outcome], scenario: Scenario, data: st.DataObject
) -> None:
    """`render --check` (what CI runs) refuses the same inputs with exit 2, not 1 or 0."""
    service = data.draw(st.sampled_from(sorted(scenario.releases)), label="service")
    _, broken = data.draw(mutations(scenario.releases[service]), label="mutation")
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), scenario)
        break_release(repo, scenario, service, broken)
        done = cli("--repo", repo, "render", "--check")
        assert not (repo / "deploy" / "overlays").exists()
    assert_refused_at_the_release(done, scenario, service)
