"""Benchmark meshcanary on a synthetic monorepo, against what a user would script instead.

    python bench/benchmark.py                      # 1000 services x 3 environments, 5 runs
    python bench/benchmark.py --services 100 --environments 2 --runs 3
    python bench/benchmark.py --lint-only             # only the lint corpora, in a minute or two
    python bench/benchmark.py --analysis-only         # analyze over 100 canaries, real Prometheus

Generates N services x E environments in the real release-file format (every 50th service with
three versions, header routes and mirroring), then measures each command as a subprocess:
wall time (median of the runs, with min and max) and peak memory (max RSS of the process).
Baselines run in the same invocation: `kubectl kustomize` of each service overlay piped into
`kubernetes-validate` (on a subset when it is too slow, extrapolated per service, and said so;
a share of the subset after each cold `check`, so that both are timed over the same minutes),
and `kubernetes-validate` on the resources `lint` reads. Prints one table; writes it as JSON.

Two generated lint corpora follow (`--lint-resources`, default 20,000 each; `--lint-only` runs
just these rows): small resources of many services, as `render` makes them (a Service, two or
three Deployments, a DestinationRule and a VirtualService each), all in ONE namespace and the
same spread over 20; and realistic ones of about 1.6 KB (Deployments with probes, volumes with
`defaultMode: 0644`, resources and env, and their Services, a file per app) in 20 namespaces.
Their rows give resources per second.

`--analysis-only` times `analyze` over `--canaries` canaries (default 100) of one environment
against a real Prometheus (Debian's `prometheus` and `promtool` on PATH) over an hour of Istio's
metrics backfilled for their 200 Deployments, each canary's step a dated commit; its peer, in
the same run, asks the same server what a script without batching would: one instant query per
check and version. The server's own request counter says how many queries each made.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
MESHCANARY = str(BIN / "meshcanary")
KUBECTL = shutil.which("kubectl", path=str(BIN)) or "kubectl"
KUBERNETES_VALIDATE = str(BIN / "kubernetes-validate")

BASE_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}, team: bench}}
    spec:
      containers:
        - name: {name}
          image: registry.example/{name}:1.0.0
          ports: [{{name: http, containerPort: 8080}}]
          resources:
            requests: {{cpu: 100m, memory: 64Mi}}
            limits: {{cpu: 200m, memory: 128Mi}}
"""
BASE_SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""
RELEASE = """# yaml-language-server: $schema=../../schemas/release.schema.json
service: {name}
base: deploy/base/{name}
gateways: [mesh]
canary: {{steps: [10, 25, 50, 100]}}
{extra}versions:
{versions}"""


def generate(root: Path, services: int, environments: int) -> None:
    for index in range(services):
        name = f"svc-{index:04d}"
        base = root / "deploy" / "base" / name
        base.mkdir(parents=True)
        (base / "kustomization.yaml").write_text("resources: [deployment.yaml, service.yaml]\n")
        (base / "deployment.yaml").write_text(BASE_DEPLOYMENT.format(name=name))
        (base / "service.yaml").write_text(BASE_SERVICE.format(name=name))
    for env_index in range(environments):
        env = f"env-{env_index}"
        folder = root / "environments" / env
        folder.mkdir(parents=True)
        (folder / "environment.yaml").write_text(
            f"namespace: {env}\nkubernetesVersion: 1.31.0\n"
            "defaults:\n  rollout: {maxSurge: 1, maxUnavailable: 0}\n"
        )
        for index in range(services):
            name = f"svc-{index:04d}"
            if index % 50 == 0:
                versions = (
                    f"  v1: {{image: registry.example/{name}:1.0.0, replicas: 3, weight: 60}}\n"
                    f"  v2: {{image: registry.example/{name}:1.1.0, replicas: 2, weight: 30}}\n"
                    f"  v3: {{image: registry.example/{name}:1.2.0, replicas: 1, weight: 10}}\n"
                )
                extra = (
                    "match:\n  - {version: v3, headers: {x-canary: {exact: always}}}\n"
                    "mirror: {version: v3, percent: 5}\n"
                )
            else:
                versions = (
                    f"  v1: {{image: registry.example/{name}:1.0.0, replicas: 2, weight: 90}}\n"
                    f"  v2: {{image: registry.example/{name}:1.1.0, replicas: 1, weight: 10}}\n"
                )
                extra = ""
            (folder / f"{name}.yaml").write_text(
                RELEASE.format(name=name, extra=extra, versions=versions)
            )


# Lint corpora -------------------------------------------------------------------------------

SMALL_SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {namespace}
spec:
  ports:
  - name: http
    port: 80
    targetPort: http
  selector:
    app: {name}
"""
SMALL_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    version: {version}
  name: {name}-{version}
  namespace: {namespace}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
      version: {version}
  strategy:
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
    type: RollingUpdate
  template:
    metadata:
      labels:
        app: {name}
        team: bench
        version: {version}
    spec:
      containers:
      - image: registry.example/{name}:{tag}
        name: {name}
        ports:
        - containerPort: 8080
          name: http
        resources:
          limits:
            cpu: 200m
            memory: 128Mi
          requests:
            cpu: 100m
            memory: 64Mi
"""
SMALL_SUBSET = """  - labels:
      app: {name}
      team: bench
      version: {version}
    name: {version}
"""
SMALL_ROUTE = """    - destination:
        host: {name}.{namespace}.svc.cluster.local
        subset: {version}
      weight: {weight}
"""


def small_corpus(path: Path, resources: int, namespaces: int) -> int:
    """`render`'s output for enough services to make `resources` objects, in one file: every
    50th service has three versions, the others two. Returns how many objects it wrote."""
    written = 0
    with path.open("w", encoding="utf-8") as out:
        index = 0
        while written < resources:
            name, namespace = f"svc-{index:05d}", f"ns-{index % namespaces:02d}"
            versions = (
                [("v1", "1.0.0", 3, 60), ("v2", "1.1.0", 2, 30), ("v3", "1.2.0", 1, 10)]
                if index % 50 == 0
                else [("v1", "1.0.0", 2, 90), ("v2", "1.1.0", 1, 10)]
            )
            documents = [SMALL_SERVICE.format(name=name, namespace=namespace)]
            for version, tag, replicas, _ in versions:
                documents.append(
                    SMALL_DEPLOYMENT.format(
                        name=name, namespace=namespace, version=version, tag=tag, replicas=replicas
                    )
                )
            documents.append(
                "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
                f"  name: {name}\n  namespace: {namespace}\nspec:\n"
                f"  host: {name}.{namespace}.svc.cluster.local\n  subsets:\n"
                + "".join(SMALL_SUBSET.format(name=name, version=v) for v, *_ in versions)
            )
            documents.append(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
                f"  name: {name}\n  namespace: {namespace}\nspec:\n  gateways:\n  - mesh\n"
                f"  hosts:\n  - {name}.{namespace}.svc.cluster.local\n  http:\n"
                "  - name: weighted\n    route:\n"
                + "".join(
                    SMALL_ROUTE.format(name=name, namespace=namespace, version=v, weight=w)
                    for v, _, _, w in versions
                )
            )
            out.write("---\n".join(documents) + "---\n")
            written += len(documents)
            index += 1
    return written


REALISTIC_SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    app: {name}
    app.kubernetes.io/name: {name}
    app.kubernetes.io/part-of: shop
    app.kubernetes.io/managed-by: meshcanary
  annotations:
    owner: team-{team}@example.com
spec:
  type: ClusterIP
  selector:
    app: {name}
  ports:
  - name: http
    port: 80
    targetPort: http
    protocol: TCP
  - name: grpc-internal
    port: 9090
    targetPort: grpc
    protocol: TCP
"""
REALISTIC_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}-{version}
  namespace: {namespace}
  labels:
    app: {name}
    version: {version}
    app.kubernetes.io/name: {name}
    app.kubernetes.io/part-of: shop
  annotations:
    owner: team-{team}@example.com
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
      version: {version}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: {name}
        version: {version}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9102"
    spec:
      serviceAccountName: {name}
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        fsGroup: 10001
      containers:
      - name: {name}
        image: registry.example/shop/{name}:{tag}
        imagePullPolicy: IfNotPresent
        ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        - name: grpc
          containerPort: 9090
          protocol: TCP
        env:
        - name: SERVICE_NAME
          value: {name}
        - name: LOG_LEVEL
          value: info
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: DATABASE_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {name}-db
              key: password
        resources:
          requests:
            cpu: 250m
            memory: 256Mi
          limits:
            cpu: "1"
            memory: 512Mi
        readinessProbe:
          httpGet:
            path: /healthz/ready
            port: http
          initialDelaySeconds: 5
          periodSeconds: 10
        livenessProbe:
          httpGet:
            path: /healthz/live
            port: http
          initialDelaySeconds: 15
          periodSeconds: 20
          failureThreshold: 3
        volumeMounts:
        - name: config
          mountPath: /etc/{name}
          readOnly: true
        - name: tmp
          mountPath: /tmp
      volumes:
      - name: config
        configMap:
          name: {name}-config
          defaultMode: 0644
      - name: tmp
        emptyDir: {{}}
"""


def realistic_corpus(folder: Path, resources: int, namespaces: int = 20) -> int:
    """About 1.6 KB a resource: a file per app with its Service and two versions' Deployments,
    apps spread over `namespaces`. Returns how many objects it wrote."""
    folder.mkdir(parents=True)
    written, index = 0, 0
    while written < resources:
        name, namespace = f"app-{index:05d}", f"team-{index % namespaces:02d}"
        team = index % namespaces
        documents = [REALISTIC_SERVICE.format(name=name, namespace=namespace, team=team)]
        for version, tag, replicas in (("v1", "2.4.1", 3), ("v2", "2.5.0", 1)):
            documents.append(
                REALISTIC_DEPLOYMENT.format(
                    name=name,
                    namespace=namespace,
                    team=team,
                    version=version,
                    tag=tag,
                    replicas=replicas,
                )
            )
        (folder / f"{name}.yaml").write_text("---\n".join(documents), encoding="utf-8")
        written += len(documents)
        index += 1
    return written


def lint_rows(root: Path, resources: int, runs: int) -> list[dict[str, Any]]:
    """`lint` on the generated corpora, in resources per second."""
    rows: list[dict[str, Any]] = []
    corpora = []
    one = root / "lint-one-namespace.yaml"
    corpora.append(("small, one namespace", one, small_corpus(one, resources, 1)))
    spread = root / "lint-20-namespaces.yaml"
    corpora.append(("small, 20 namespaces", spread, small_corpus(spread, resources, 20)))
    realistic = root / "lint-realistic"
    count = realistic_corpus(realistic, resources)
    size = sum(p.stat().st_size for p in realistic.iterdir()) / count
    corpora.append((f"realistic ({size / 1024:.1f} KB each)", realistic, count))
    for label, path, count in corpora:
        row = measure(
            f"lint, {count} {label}",
            [MESHCANARY, "lint", str(path)],
            root,
            runs,
            expect=None,
        )
        row["resources_per_s"] = round(count / row["median_s"])
        rows.append(row)
    return rows


def run(args: list[str], cwd: Path, stdin: bytes | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in KiB, and exit code of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(
        args,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if stdin:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss, process.returncode


def measure(
    name: str,
    args: list[str],
    cwd: Path,
    runs: int,
    prepare: Any = None,
    expect: int | None = 0,
    between: Any = None,
) -> dict[str, Any]:
    """`runs` timed runs of `args`; `prepare` before each, untimed, and `between(n)` after
    the n-th (a peer measured alternately with it, so that both see the machine alike)."""
    times, memory = [], []
    for number in range(runs):
        if prepare:
            prepare()
        seconds, rss, code = run(args, cwd)
        if expect is not None and code != expect:
            raise SystemExit(f"{name}: exit code {code}, expected {expect}: {' '.join(args)}")
        times.append(seconds)
        memory.append(rss)
        if between:
            between(number)
    return {
        "name": name,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "peak_mib": round(max(memory) / 1024, 1),
        "runs": runs,
    }


def naive(root: Path, overlays: list[Path]) -> float:
    """kubectl kustomize | kubernetes-validate for each overlay: the script a user writes."""
    start = time.perf_counter()
    for overlay in overlays:
        built = subprocess.run(
            [KUBECTL, "kustomize", str(overlay)], capture_output=True, check=True
        ).stdout
        subprocess.run(
            [KUBERNETES_VALIDATE, "-k", "1.31.0", "-"],
            input=built,
            capture_output=True,
            check=False,
        )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--environments", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--naive-subset",
        type=int,
        default=50,
        help="services per environment for the naive baseline",
    )
    parser.add_argument("--output", type=Path, default=Path("bench/results.json"))
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="only render and check, cold: for time per service at several sizes",
    )
    parser.add_argument(
        "--lint-only",
        action="store_true",
        help="only the rows of lint on the generated corpora (small and realistic)",
    )
    parser.add_argument(
        "--analysis-only",
        action="store_true",
        help="only analyze over --canaries canaries, against a real Prometheus",
    )
    parser.add_argument("--canaries", type=int, default=100)
    parser.add_argument(
        "--lint-resources",
        type=int,
        default=20_000,
        help="objects in each generated lint corpus",
    )
    options = parser.parse_args()
    rows: list[dict[str, Any]] = []
    if options.analysis_only:
        from analyze_bench import analysis_rows

        with tempfile.TemporaryDirectory(prefix="meshcanary-bench-") as folder:
            rows, ratios = analysis_rows(Path(folder), options.canaries, options.runs, measure)
        return _finish(options, rows, ratios)
    if options.lint_only:
        with tempfile.TemporaryDirectory(prefix="meshcanary-bench-") as folder:
            rows = lint_rows(Path(folder), options.lint_resources, options.runs)
        return _finish(options, rows, {})
    with tempfile.TemporaryDirectory(prefix="meshcanary-bench-") as folder:
        root = Path(folder)
        generate(root, options.services, options.environments)
        overlays_dir = root / "deploy" / "overlays"
        release = root / "environments" / "env-0" / "svc-0001.yaml"
        original = release.read_text()

        def cold() -> None:
            shutil.rmtree(overlays_dir, ignore_errors=True)

        rows.append(
            measure("render (cold)", [MESHCANARY, "render"], root, options.runs, prepare=cold)
        )
        rows.append(
            measure(
                "render --check (nothing changed)",
                [MESHCANARY, "render", "--check"],
                root,
                options.runs,
            )
        )
        cache = root / "cache"
        os.environ["MESHCANARY_CACHE_DIR"] = str(cache)

        def no_cache() -> None:
            shutil.rmtree(cache, ignore_errors=True)

        # The naive baseline runs in pieces, one after each cold check, rather than at
        # another time of the run: this machine's speed drifts by a quarter within the hour,
        # and the ratio between the two was decided by when each ran.
        subset = min(options.naive_subset, options.services)
        overlays = [
            overlays_dir / f"env-{e}" / f"svc-{i:04d}"
            for e in range(options.environments)
            for i in range(subset)
        ]
        naive_seconds: list[float] = []

        def naive_piece(number: int) -> None:
            naive_seconds.append(naive(root, overlays[number :: options.runs]))

        rows.append(
            measure(
                "check (cold, no cache)",
                [MESHCANARY, "check"],
                root,
                options.runs,
                prepare=no_cache,
                between=None if options.scaling else naive_piece,
            )
        )
        overlays_total = options.services * options.environments
        rows[-1]["ms_per_overlay"] = round(rows[-1]["median_s"] / overlays_total * 1000, 1)
        if options.scaling:
            return _finish(options, rows, {})
        rows.append(
            measure("check (again, nothing changed)", [MESHCANARY, "check"], root, options.runs)
        )

        def one_service_changed() -> None:
            # A pull request that moves one canary: its release file and its render. The
            # records of the run before stay; its whole report is dropped, so the check
            # cannot answer from that.
            text = release.read_text()
            moved = text.replace("weight: 90", "weight: 85").replace("weight: 10}", "weight: 15}")
            release.write_text(moved if moved != text else original)
            subprocess.run(
                [MESHCANARY, "render", "env-0"], cwd=root, capture_output=True, check=True
            )
            for report in cache.glob("*.json"):
                if re.fullmatch(r"[0-9a-f]{64}\.json", report.name):
                    report.unlink()

        rows.append(
            measure(
                "check after a one-service change (records of the run before)",
                [MESHCANARY, "check"],
                root,
                options.runs,
                prepare=one_service_changed,
            )
        )
        one_service_changed()
        incremental = subprocess.run(
            [MESHCANARY, "check", "--format", "json"], cwd=root, capture_output=True
        ).stdout
        afresh = subprocess.run(
            [MESHCANARY, "check", "--format", "json", "--no-cache"], cwd=root, capture_output=True
        ).stdout
        identical = incremental == afresh
        rows.append(
            measure(
                "check --shard 1/2 (cold): one job of a 2-job CI matrix",
                [MESHCANARY, "check", "--shard", "1/2"],
                root,
                options.runs,
                prepare=no_cache,
            )
        )

        def one_change() -> None:
            release.write_text(
                original.replace("weight: 90", "weight: 80").replace("weight: 10}", "weight: 20}")
            )
            subprocess.run(
                [MESHCANARY, "render", "env-0"], cwd=root, capture_output=True, check=True
            )
            no_cache()  # a commit changes a file: the hook never finds its report cached

        rows.append(
            measure(
                "pre-commit hook: check of one changed release file",
                [
                    MESHCANARY,
                    "check",
                    "environments/env-0/svc-0001.yaml",
                    "deploy/overlays/env-0/svc-0001/virtualservice.yaml",
                ],
                root,
                options.runs,
                prepare=one_change,
            )
        )

        def weights_back() -> None:
            # Exit 2 when the weights are 90/10 already; the measured edit then moves them.
            subprocess.run(
                [MESHCANARY, "set-weights", "env-0", "svc-0001", "v1=90", "v2=10"],
                cwd=root,
                capture_output=True,
                check=False,
            )

        rows.append(
            measure(
                f"set-weights, one service of {options.services}",
                [MESHCANARY, "set-weights", "env-0", "svc-0001", "v1=80", "v2=20"],
                root,
                options.runs,
                prepare=weights_back,
            )
        )
        # lint: every rendered resource of one environment, built once into one file.
        built = subprocess.run(
            [KUBECTL, "kustomize", str(overlays_dir / "env-0")], capture_output=True, check=True
        ).stdout
        manifests = root / "all.yaml"
        manifests.write_bytes(built)
        count = built.count(b"\nkind: ") + built.startswith(b"kind: ")
        lint = measure(
            f"lint ({count} resources)",
            [MESHCANARY, "lint", str(manifests)],
            root,
            options.runs,
            expect=None,
        )
        lint["resources_per_s"] = round(count / lint["median_s"])
        rows.append(lint)
        policies = Path(__file__).resolve().parent.parent / "policies"
        with_policies = measure(
            f"lint ({count} resources) with the {len(list(policies.glob('*.yaml')))} example policies",
            [MESHCANARY, "lint", "--policies", str(policies), str(manifests)],
            root,
            options.runs,
            expect=None,
        )
        extra = with_policies["median_s"] - lint["median_s"]
        with_policies["policy_evaluations_per_s"] = (
            round(count * len(list(policies.glob("*.yaml"))) / extra) if extra > 0 else None
        )
        rows.append(with_policies)
        # lint of one small file (one Deployment of the build): start-up, as an editor runs it.
        one = root / "one-deployment.yaml"
        one.write_bytes(
            next(d for d in built.split(b"\n---\n") if b"\nkind: Deployment\n" in b"\n" + d)
        )
        rows.append(
            measure(
                "lint of one small file (a Deployment)",
                [MESHCANARY, "lint", str(one)],
                root,
                options.runs,
            )
        )
        rows.append(measure("meshcanary --version", [MESHCANARY, "--version"], root, options.runs))
        rows.append(measure("meshcanary --help", [MESHCANARY, "--help"], root, options.runs))

        # Baselines, same machine, same run.
        seconds = sum(naive_seconds)
        total_units = options.services * options.environments
        rows.append(
            {
                "name": f"baseline: kubectl kustomize | kubernetes-validate, {len(overlays)} overlays (a share after each cold check), extrapolated to {total_units}",
                "median_s": round(seconds / len(overlays) * total_units, 1),
                "measured_s": round(seconds, 2),
                "runs": 1,
            }
        )
        sample = root / "sample.yaml"
        documents = built.split(b"\n---\n")[:500]
        sample.write_bytes(b"\n---\n".join(documents))
        # Alternately, a run of each in turn: this machine's speed drifts within minutes, and
        # at 500 resources the ratio is start-up against start-up.
        peer = [KUBERNETES_VALIDATE, "-k", "1.31.0", str(sample)]
        peer_times: list[float] = []
        ours = measure(
            "lint, the same 500 resources",
            [MESHCANARY, "lint", str(sample)],
            root,
            options.runs,
            expect=None,
            between=lambda _: peer_times.append(run(peer, root)[0]),
        )
        baseline_lint = {
            "name": "baseline: kubernetes-validate, 500 resources (a run after each of lint's)",
            "median_s": round(statistics.median(peer_times), 3),
            "min_s": round(min(peer_times), 3),
            "max_s": round(max(peer_times), 3),
            "runs": len(peer_times),
        }
        rows += [baseline_lint, ours]
        # The same comparison on every resource of the environment, which the `lint` row
        # above measures: at 500 resources our start-up (0.1 s) is most of our time.
        baseline_all = measure(
            f"baseline: kubernetes-validate, the same {count} resources as lint",
            [KUBERNETES_VALIDATE, "-k", "1.31.0", str(manifests)],
            root,
            1,
            expect=None,
        )
        rows.append(baseline_all)
        rows += lint_rows(root, options.lint_resources, options.runs)

    by_name = {r["name"]: r for r in rows}
    check_cold = by_name["check (cold, no cache)"]["median_s"]
    baseline = next(r for r in rows if r["name"].startswith("baseline: kubectl"))
    ratios = {
        "check cold vs kustomize|kubernetes-validate": round(baseline["median_s"] / check_cold, 1),
        "check again / check cold": round(
            by_name["check (again, nothing changed)"]["median_s"] / check_cold, 3
        ),
        "lint vs kubernetes-validate (500 resources)": round(
            baseline_lint["median_s"] / ours["median_s"], 1
        ),
        f"lint vs kubernetes-validate ({count} resources)": round(
            baseline_all["median_s"] / lint["median_s"], 1
        ),
        "check after a one-service change: the report of --no-cache": identical,
    }
    return _finish(options, rows, ratios)


def _finish(options: argparse.Namespace, rows: list[dict[str, Any]], ratios: dict[str, Any]) -> int:
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "services": options.services,
        "environments": options.environments,
        "rows": rows,
        "ratios": ratios,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(r["name"]) for r in rows)
    print(f"{'measurement':<{width}}  median s   peak MiB")
    for row in rows:
        print(f"{row['name']:<{width}}  {row['median_s']:>8}   {row.get('peak_mib', '-'):>8}")
    for name, value in ratios.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
