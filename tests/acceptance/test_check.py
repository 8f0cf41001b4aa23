"""`meshcanary check`: the repository pipeline on real kustomize builds."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import ROOT, write


def _findings(outcome) -> list[dict]:
    return json.loads(outcome.out)["findings"]


def _line(path: Path, needle: str) -> int:
    return next(
        i + 1
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines())
        if needle in line
    )


def test_the_repositorys_own_examples_are_clean(cli) -> None:
    outcome = cli("--repo", ROOT, "check", "--summary")
    assert outcome.code == 0, outcome.out + outcome.err
    assert outcome.out.splitlines()[-1].startswith("Summary: 53 resources found")


def test_stale_render_points_at_the_line_that_differs(example_repo: Path, cli) -> None:
    release = example_repo / "environments/prod/micro-api.yaml"
    release.write_text(
        release.read_text(encoding="utf-8")
        .replace("weight: 70}", "weight: 60}")
        .replace("weight: 30}", "weight: 40}"),
        encoding="utf-8",
    )
    outcome = cli("--repo", example_repo, "check", "--format", "json")
    assert outcome.code == 1
    (stale,) = [f for f in _findings(outcome) if f["rule"] == "render-fresh"]
    target = example_repo / "deploy/overlays/prod/micro-api/virtualservice.yaml"
    assert stale["file"] == "deploy/overlays/prod/micro-api/virtualservice.yaml"
    assert stale["line"] == _line(target, "weight: 70")
    assert "environments/prod/micro-api.yaml" in stale["message"]


def test_finding_in_a_base_is_located_in_the_base_once(example_repo: Path, cli) -> None:
    service = example_repo / "deploy/base/micro-api/service.yaml"
    service.write_text(
        service.read_text(encoding="utf-8").replace("targetPort: 19090", "targetPort: 9090"),
        encoding="utf-8",
    )
    outcome = cli("--repo", example_repo, "check", "--format", "json")
    assert outcome.code == 1
    found = [f for f in _findings(outcome) if f["rule"] == "service-target-port"]
    assert {(f["file"], f["line"], f["column"]) for f in found} == {
        ("deploy/base/micro-api/service.yaml", _line(service, "targetPort: 9090"), 19)
    }
    # Once for the Service of every version in each environment, and once more for each
    # version's own Service where the Gateway API routes (ambient), which names its Deployment.
    assert sorted(f["message"].rpartition("(")[2] for f in found) == [
        "micro-api-v1: 19090/http)",
        "micro-api-v1: 19090/http, micro-api-v2: 19090/http)",
        "micro-api-v2: 19090/http)",
    ]


def test_what_the_release_file_sets_is_located_in_the_release_file(example_repo: Path, cli) -> None:
    release = example_repo / "environments/staging/micro-api.yaml"
    release.write_text(
        release.read_text(encoding="utf-8").replace("micro-api:1.1,", "micro-api:latest,"),
        encoding="utf-8",
    )
    assert cli("--repo", example_repo, "render").code == 0
    outcome = cli("--repo", example_repo, "check", "--format", "json")
    tags = [f for f in _findings(outcome) if f["rule"] == "mutable-image-tag"]
    line = _line(release, "micro-api:latest")
    column = release.read_text(encoding="utf-8").splitlines()[line - 1].index("registry") + 1
    assert [(f["file"], f["line"], f["column"]) for f in tags] == [
        ("environments/staging/micro-api.yaml", line, column)
    ]
    assert tags[0]["hint"].startswith("pin `image:`")
    assert tags[0]["resource"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "micro-api-v1",
        "namespace": "micro-staging",
    }


def test_changed_paths_limit_what_is_built(example_repo: Path, cli) -> None:
    # Break prod only; a change in dev must not report it.
    service = example_repo / "deploy/overlays/prod/micro-api/virtualservice.yaml"
    service.write_text(
        service.read_text(encoding="utf-8").replace("weight: 30", "weight: 20"), encoding="utf-8"
    )
    dev = cli("--repo", example_repo, "check", "--summary", "environments/dev/checkout.yaml")
    assert dev.code == 0, dev.out
    assert "Summary: 5 resources found" in dev.out  # dev's gateway and checkout overlay only
    prod = cli(
        "--repo", example_repo, "check", "--format", "json", "environments/prod/micro-api.yaml"
    )
    assert prod.code == 1
    assert {f["rule"] for f in _findings(prod)} >= {"weights-sum-100", "render-fresh"}
    base = cli("--repo", example_repo, "check", "--summary", "deploy/base/checkout/service.yaml")
    assert (
        "Summary: 31 resources found" in base.out
    )  # checkout in four environments, and the gateways


def test_unrelated_paths_check_nothing(example_repo: Path, cli) -> None:
    (example_repo / "README.md").write_text("# deployments\n", encoding="utf-8")
    outcome = cli("--repo", example_repo, "check", "--summary", "README.md")
    assert outcome.code == 0
    assert "Summary: 0 resource found" in outcome.out


def test_environment_can_turn_a_rule_down(example_repo: Path, cli) -> None:
    folder = example_repo / "deploy/overlays/staging/micro-api/v1/kustomization.yaml"
    folder.write_text(
        folder.read_text(encoding="utf-8").replace('newTag: "1.1"', "newTag: latest"),
        encoding="utf-8",
    )
    environment = example_repo / "environments/staging/environment.yaml"
    environment.write_text(
        environment.read_text(encoding="utf-8").replace(
            "  maxStep: 25", '  maxStep: 25\n  rules:\n    mutable-image-tag: "off"'
        ),
        encoding="utf-8",
    )
    outcome = cli("--repo", example_repo, "check", "--format", "json")
    assert not [f for f in _findings(outcome) if f["rule"] == "mutable-image-tag"]


def test_kustomize_failure_is_a_finding(example_repo: Path, cli) -> None:
    (example_repo / "deploy/base/checkout/deployment.yaml").unlink()
    outcome = cli("--repo", example_repo, "check", "--format", "json")
    assert outcome.code != 0
    # Render cannot read the base either: that is bad input, reported before anything is built.
    assert "deploy/base/checkout" in outcome.err or any(
        f["rule"] == "kustomize-build" for f in _findings(outcome)
    )


def test_bad_release_file_is_exit_2(example_repo: Path, cli) -> None:
    write(
        example_repo / "environments/prod/micro-api.yaml",
        (example_repo / "environments/prod/micro-api.yaml")
        .read_text(encoding="utf-8")
        .replace("weight: 30}", "weight: 20}"),
    )
    outcome = cli("--repo", example_repo, "check")
    assert outcome.code == 2
    assert "environments/prod/micro-api.yaml:" in outcome.err and "weights sum to 90" in outcome.err


# The kubeconform binary cannot be installed here, so this stand-in on PATH plays it: it reads
# each file it is given and answers in kubeconform's documented `-output json` format, calling
# a VirtualService invalid at /spec/http/0/route/0/weight. The mapping code is the real one.
STAND_IN = """#!{python}
import json, sys, yaml
results = []
for name in [a for a in sys.argv[1:] if a.endswith(".yaml")]:
    doc = yaml.safe_load(open(name))
    bad = doc["kind"] == "VirtualService"
    results.append({{"filename": name, "kind": doc["kind"], "name": doc["metadata"]["name"],
        "version": doc["apiVersion"], "status": "statusInvalid" if bad else "statusValid",
        "msg": "", "validationErrors": [{{"path": "/spec/http/0/route/0/weight", "msg": "stand-in says no"}}] if bad else []}})
print(json.dumps({{"resources": results}}))
sys.exit(1 if any(r["status"] != "statusValid" for r in results) else 0)
"""


def test_check_with_kubeconform_maps_back_to_the_release_file(
    example_repo: Path, cli, tmp_path: Path, monkeypatch
) -> None:
    import os
    import stat
    import sys

    script = write(tmp_path / "bin" / "kubeconform", STAND_IN.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    outcome = cli(
        "--repo",
        example_repo,
        "check",
        "--validator",
        "kubeconform",
        "--format",
        "json",
        "environments/prod/micro-api.yaml",
    )
    assert outcome.code == 1, outcome.err
    (finding,) = [f for f in _findings(outcome) if f["rule"] == "schema"]
    # /spec/http/0/route/0/weight is v1's weight, written in the release file.
    target = example_repo / "environments/prod/micro-api.yaml"
    assert (finding["file"], finding["line"], finding["message"]) == (
        "environments/prod/micro-api.yaml",
        _line(target, "weight: 70"),
        "stand-in says no",
    )


def test_batched_build_gives_each_overlay_exactly_its_own_objects(example_repo: Path) -> None:
    from meshcanary.check.build import build
    from meshcanary.check.scope import affected
    from meshcanary.kustomize import Builder, Target
    from meshcanary.release.load import load

    units = affected(example_repo, load(example_repo), [])
    assert units, "no overlay to build: the comparison below would be vacuous"
    batched = build(example_repo, units)
    alone = Builder(example_repo).build_many(
        [Target(example_repo / u.folder, u.folder) for u in units]
    )
    import yaml

    for unit, together, single in zip(units, batched, alone, strict=True):
        assert together.ok and single.ok
        assert list(yaml.safe_load_all(together.output)) == list(
            yaml.safe_load_all(single.output)
        ), unit.folder


def test_a_broken_overlay_in_a_batch_is_reported_on_its_own(example_repo: Path, cli) -> None:
    kustomization = example_repo / "deploy/overlays/prod/checkout/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text(encoding="utf-8") + "- missing.yaml\n", encoding="utf-8"
    )
    outcome = cli("--repo", example_repo, "check", "--format", "json", "--summary")
    builds = [f for f in _findings(outcome) if f["rule"] == "kustomize-build"]
    assert [f["file"] for f in builds] == ["deploy/overlays/prod/checkout/kustomization.yaml"]
    assert "missing.yaml" in builds[0]["message"]
    # Every other overlay of prod was still built and checked.
    assert json.loads(outcome.out)["summary"]["resources"] == 53 - 6


def test_repository_policies_see_the_base_branch_as_old_object(example_repo: Path, cli) -> None:
    import os
    import shutil
    import subprocess

    shutil.copytree(ROOT / "policies", example_repo / "policies")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "start"],
    ):
        subprocess.run(["git", "-C", str(example_repo), *args], check=True, env=env)
    release = example_repo / "environments/prod/micro-api.yaml"
    release.write_text(
        release.read_text(encoding="utf-8")
        .replace("weight: 70}", "weight: 20}")
        .replace("weight: 30}", "weight: 80}"),
        encoding="utf-8",
    )
    assert cli("--repo", example_repo, "render").code == 0
    # Judged alone, the tree is fine: there is nothing to compare with.
    assert cli("--repo", example_repo, "check", "--no-base").code == 0
    # By default it is judged against HEAD, as an explicit --base HEAD does.
    for args in ([], ["--base", "HEAD"]):
        outcome = cli("--repo", example_repo, "check", *args, "--format", "json")
        assert outcome.code == 1
        steps = [f for f in _findings(outcome) if f["rule"].startswith("max-weight-step/")]
        # The policy's fieldPath is a weight: the release file's.
        assert steps and steps[0]["file"] == "environments/prod/micro-api.yaml"
        # And the built-in check says it at the release file's weight line: of the version
        # gaining traffic (the stable's loss is the same move).
        [v2] = [f for f in _findings(outcome) if f["rule"] == "weight-step"]
        assert (v2["file"], v2["message"]) == (
            "environments/prod/micro-api.yaml",
            "v2 moves from 30% to 80% since HEAD: 50 points, and "
            "environments/prod/environment.yaml allows 25 in one change",
        )


def test_policy_test_command_runs_the_repositorys_policy_tests(cli) -> None:
    outcome = cli("--repo", ROOT, "policy", "test")
    assert outcome.code == 0, outcome.out
    assert "require-team-label" in outcome.out and ", 0 failed" in outcome.out


def test_a_second_check_of_unchanged_inputs_reads_the_cache(
    example_repo: Path, cli, monkeypatch
) -> None:
    from meshcanary.check import pipeline

    first = cli("--repo", example_repo, "check", "--format", "json")
    calls: list[int] = []
    real = pipeline.run

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run", counted)
    again = cli("--repo", example_repo, "check", "--format", "json")
    assert (again.code, again.out) == (first.code, first.out)
    assert calls == []  # answered from the cache
    # Any change to an input (here a base the release files name) is a new key.
    service = example_repo / "deploy/base/micro-api/service.yaml"
    service.write_text(
        service.read_text(encoding="utf-8").replace("targetPort: 19090", "targetPort: 9090"),
        encoding="utf-8",
    )
    changed = cli("--repo", example_repo, "check", "--format", "json")
    assert calls == [1]
    assert changed.code == 1 and "service-target-port" in changed.out
    # Options are part of the key; --no-cache never reads it.
    cli("--repo", example_repo, "check", "--strict", "--format", "json")
    assert calls == [1, 1]
    cli("--repo", example_repo, "check", "--no-cache", "--format", "json")
    assert calls == [1, 1, 1]


def test_a_corrupt_cache_entry_is_ignored(
    example_repo: Path, cli, tmp_path: Path, monkeypatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MESHCANARY_CACHE_DIR", str(cache))
    first = cli("--repo", example_repo, "check", "--format", "json")
    entries = sorted(cache.glob("*.json"))
    assert entries, f"the first check cached nothing in {cache}"  # else nothing is corrupted
    for entry in entries:
        entry.write_text("{not json", encoding="utf-8")
    again = cli("--repo", example_repo, "check", "--format", "json")
    assert (again.code, again.out) == (first.code, first.out)


def test_a_base_path_with_a_hash_keeps_findings_in_the_base(example_repo: Path, cli) -> None:
    """kustomize quotes such a path in its origin annotations; read unquoted, every finding
    of the base went to the first overlay of the batch (deploy/overlays/dev/_gateways:1:1)."""
    base = example_repo / "deploy/base/check #out"
    (example_repo / "deploy/base/checkout").rename(base)
    for release in (example_repo / "environments").glob("*/checkout.yaml"):
        text = release.read_text(encoding="utf-8")
        release.write_text(
            text.replace("base: deploy/base/checkout", 'base: "deploy/base/check #out"'),
            encoding="utf-8",
        )
    service = base / "service.yaml"
    text = service.read_text(encoding="utf-8")
    service.write_text(text.replace("- name: http\n", "- name: web\n", 1), encoding="utf-8")
    assert cli("--repo", example_repo, "render").code == 0
    outcome = cli("--repo", example_repo, "check", "--no-cache", "--format", "json", "--summary")
    ports = [f for f in _findings(outcome) if f["rule"] == "port-name-protocol"]
    assert ports, outcome.out
    assert {f["file"] for f in ports} == {"deploy/base/check #out/service.yaml"}, ports


def test_the_cache_key_never_reads_a_file_outside_the_repository(
    example_repo: Path, tmp_path: Path
) -> None:
    """A base file that links out counts by what the link says, not by what it names."""
    from meshcanary.check import cache

    outside = tmp_path / "outside.yaml"
    outside.write_text("first\n", encoding="utf-8")
    link = example_repo / "deploy/base/micro-api/linked.yaml"
    link.symlink_to(outside)

    def key() -> str:
        return cache.key(example_repo, "{}", [], [], "kustomize")

    first = key()
    outside.write_text("second, and longer\n", encoding="utf-8")
    assert key() == first
    link.unlink()
    link.symlink_to(tmp_path / "elsewhere.yaml")
    assert key() != first


def test_a_rollback_is_never_held_back_by_max_step(example_repo: Path, cli) -> None:
    from tests.support import commit_all

    commit_all(example_repo)
    release = example_repo / "environments/prod/micro-api.yaml"
    text = release.read_text(encoding="utf-8")
    # 30 points back to the stable version: more than maxStep (25), and a rollback.
    release.write_text(
        text.replace("weight: 70}", "weight: 100}").replace("weight: 30}", "weight: 0}")
    )
    assert cli("--repo", example_repo, "render").code == 0
    outcome = cli("--repo", example_repo, "check", "--format", "json")
    assert [f for f in _findings(outcome) if f["rule"] == "weight-step"] == []
    # The other way, 30 points onto the canary, is held back, at the canary's weight.
    release.write_text(
        text.replace("weight: 70}", "weight: 40}").replace("weight: 30}", "weight: 60}")
    )
    assert cli("--repo", example_repo, "render").code == 0
    outcome = cli("--repo", example_repo, "check", "--format", "json")
    steps = [f for f in _findings(outcome) if f["rule"] == "weight-step"]
    assert [f["message"].split(" since")[0] for f in steps] == ["v2 moves from 30% to 60%"]


def test_a_plan_that_steps_past_max_step_is_reported_where_it_is_written(
    example_repo: Path, cli
) -> None:
    """Before, the examples' own plan (10, 25, 50, 100) jumped 50 points where their maxStep
    is 25: `step --next` took the jump."""
    env = example_repo / "environments/staging/environment.yaml"
    env.write_text(env.read_text().replace("[10, 25, 50, 75, 100]", "[10, 25, 50, 100]"))
    outcome = cli("--repo", example_repo, "check", "--no-base", "--format", "json")
    plans = [f for f in _findings(outcome) if f["rule"] == "weight-step"]
    assert [(f["file"], f["line"], f["message"]) for f in plans] == [
        (
            "environments/staging/environment.yaml",
            19,
            "the canary plan moves from 50% to 100% in one step, and "
            "environments/staging/environment.yaml allows 25 points in one change",
        )
    ]
    # A release's own plan that stops short of 100%: promote is the last step.
    release = example_repo / "environments/prod/checkout.yaml"
    release.write_text(release.read_text().replace("[5, 20, 40, 60, 80, 100]", "[5, 20, 40, 60]"))
    outcome = cli("--repo", example_repo, "check", "--no-base", "--format", "json")
    plans = [f for f in _findings(outcome) if f["file"] == "environments/prod/checkout.yaml"]
    assert [f["message"] for f in plans] == [
        "the canary plan moves from 60% to 100% in one step, and "
        "environments/prod/environment.yaml allows 25 points in one change"
    ]
