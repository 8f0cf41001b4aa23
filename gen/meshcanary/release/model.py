"""The typed model of an environment and the releases in it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshcanary.source import SourceDoc

MESH = "mesh"
# The APIs a release's routes are rendered in (`routing:`).
ISTIO = "istio"
GATEWAY_API = "gateway-api"
# What a new environment starts with (`init`, and `import` into an environment it creates):
# the canary plan `step --next` follows, and the largest move of one change.
DEFAULT_STEPS = (10, 25, 50, 75, 100)
DEFAULT_MAX_STEP = 25


@dataclass(frozen=True)
class Version:
    name: str
    image: str
    weight: int
    replicas: int | None
    # A strategic-merge patch of this version's Deployment, without apiVersion, kind and
    # metadata.name (the renderer adds the base's); load.py refuses what the release owns.
    patch: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class HeaderMatch:
    header: str
    kind: str  # exact, prefix or regex, as Istio's StringMatch names them
    value: str


@dataclass(frozen=True)
class StringMatch:
    kind: str  # exact, prefix or regex, as Istio's StringMatch names them
    value: str


@dataclass(frozen=True)
class QueryMatch:
    param: str
    kind: str  # exact or regex: Istio matches no query parameter by prefix
    value: str


@dataclass(frozen=True)
class Condition:
    """Conditions on a request that must all hold: one Istio HTTPMatchRequest (its port
    aside, which the renderer adds per port)."""

    uri: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    # A pin's `cookies:` become a regex on the cookie header here, as Istio matches them.
    headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[QueryMatch, ...] = ()
    ignore_uri_case: bool = False


@dataclass(frozen=True)
class Rewrite:
    uri: str | None = None
    uri_regex: tuple[str, str] | None = None  # (RE2 match, replacement)
    authority: str | None = None


@dataclass(frozen=True)
class HeaderOperations:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Retries:
    attempts: int
    per_try_timeout: str | None
    retry_on: str | None


# The keys of a release file that are route options, as RouteOptions names them.
ROUTE_OPTIONS = {
    "timeout": "timeout",
    "retries": "retries",
    "rewrite": "rewrite",
    "corsPolicy": "cors",
    "requestHeaders": "request_headers",
    "responseHeaders": "response_headers",
}


@dataclass(frozen=True)
class RouteOptions:
    """Options of an HTTP route, as one place of a release file (its top level, or a pin)
    sets them; None: not set there."""

    timeout: str | None = None
    retries: Retries | None = None
    rewrite: Rewrite | None = None
    # An Istio CorsPolicy, copied as written.
    cors: Mapping[str, Any] | None = field(default=None, hash=False)
    request_headers: HeaderOperations | None = None
    response_headers: HeaderOperations | None = None

    def over(self, defaults: RouteOptions) -> RouteOptions:
        """These options, each unset one taken from `defaults` (a pin's over the release's)."""
        return RouteOptions(
            **{
                name: getattr(self, name)
                if getattr(self, name) is not None
                else getattr(defaults, name)
                for name in ROUTE_OPTIONS.values()
            }
        )


@dataclass(frozen=True)
class Match:
    """A pin: requests meeting `condition` go to `version`, with the pin's own options."""

    name: str
    version: str
    headers: tuple[HeaderMatch, ...]  # the condition's, cookies included
    condition: Condition = Condition()
    options: RouteOptions = RouteOptions()  # the pin's own; Release.route_options merges


@dataclass(frozen=True)
class Mirror:
    version: str
    percent: float


@dataclass(frozen=True)
class Port:
    number: int
    protocol: str  # http, grpc (an HTTP route for Istio), tcp or tls
    destination_port: int | None = None  # the Service port routed to; None: `number`
    sni_hosts: tuple[str, ...] = ()  # tls: the SNI names matched; empty: the release's hosts

    @property
    def target(self) -> int:
        """The Service port the route sends to."""
        return self.destination_port if self.destination_port is not None else self.number


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


# The checks a plan with steps gets when it writes no `analysis`, modelled on Flagger's
# built-in metrics: request-success-rate ≥ 99 and request-duration (p99) ≤ 500 ms.
SUCCESS_RATE = "success-rate"
LATENCY = "latency"
QUERY = "query"


@dataclass(frozen=True)
class Check:
    """One check of a canary's metrics, per window.

    `min`/`max` are absolute bounds; `below_stable`/`above_stable` compare the canary with the
    stable version's value in the same window (the canary may be at most that far below, or
    above, it). A success rate is in percent, a latency in ms, a query in its own unit.
    """

    name: str
    kind: str  # SUCCESS_RATE, LATENCY or QUERY
    min: float | None = None
    max: float | None = None
    below_stable: float | None = None
    above_stable: float | None = None
    percentile: float = 99.0  # LATENCY
    query: str | None = None  # QUERY: PromQL with {{ namespace }}, {{ workloads }}, {{ window }}
    workload_label: str = "destination_workload"  # QUERY: the label naming the Deployment

    @property
    def relative(self) -> bool:
        return self.below_stable is not None or self.above_stable is not None


@dataclass(frozen=True)
class Analysis:
    """How each step of a canary is judged from its metrics (`canary.analysis`)."""

    interval: float  # seconds a step runs at least before it advances
    window: float  # seconds each query reads back
    failure_limit: int  # failed windows in a row that roll back
    min_requests: int  # the canary's requests in a window below which nothing is judged
    checks: tuple[Check, ...]
    written: bool = True  # False: the defaults, for a plan that says nothing
    # Whose report the built-in checks read: `destination` (the server's sidecar) or
    # `waypoint` (ambient mode's waypoint proxies, where there are no sidecars).
    reporter: str = "destination"
    # More label matchers every built-in query gets (a shared Prometheus's `cluster`, say).
    labels: tuple[tuple[str, str], ...] = ()


DEFAULT_ANALYSIS = Analysis(
    interval=600.0,
    window=300.0,
    failure_limit=3,
    min_requests=100,
    checks=(
        Check(SUCCESS_RATE, SUCCESS_RATE, min=99.0),
        Check("latency-p99", LATENCY, max=500.0),
    ),
    written=False,
)


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
    routing: str = ISTIO  # the releases' routes: ISTIO or GATEWAY_API, unless a release says
    gateway_class: str = "istio"  # gatewayClassName of its Gateway API Gateways
    analysis: Analysis | None = None  # defaults.canary.analysis

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
    options: RouteOptions  # the top level's: the weighted route's, and each pin's default
    requests: tuple[Condition, ...]  # which requests the weighted route serves; empty: all
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
    routing: str = ISTIO  # ISTIO: a VirtualService and a DestinationRule; GATEWAY_API: HTTPRoutes
    # How `analyze` judges its steps: its own, else the environment's, else DEFAULT_ANALYSIS
    # when it has steps; None without steps.
    analysis: Analysis | None = None

    @property
    def timeout(self) -> str | None:
        return self.options.timeout

    @property
    def retries(self) -> Retries | None:
        return self.options.retries

    def route_options(self, pin: Match | None = None) -> RouteOptions:
        """The options of the weighted route (no pin), or of `pin`."""
        return self.options if pin is None else pin.options.over(self.options)

    @property
    def uses_istio(self) -> bool:
        """Whether routes carry the weights (method: istio), in either routing API."""
        return self.method == "istio"

    @property
    def uses_gateway_api(self) -> bool:
        """Whether its routes are Gateway API routes to one Service per version."""
        return self.uses_istio and self.routing == GATEWAY_API

    def version(self, name: str) -> Version | None:
        return next((v for v in self.versions if v.name == name), None)

    @property
    def stable(self) -> Version:
        return self.versions[0]

    @property
    def canary(self) -> Version:
        return self.versions[-1]
