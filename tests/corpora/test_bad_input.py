"""Bad input to `meshcanary render`: exit 2, a located message, and nothing written.

Every case writes one malformed file (or sets up one bad repository layout) into a copy of
the example repository, runs `meshcanary render` in-process and checks that:

- the exit code is 2 and nothing goes to stdout;
- stderr holds only `file:line:col: error: message` lines (each optionally followed by an
  indented `  hint: ...` line), with a repository-relative file and no Python traceback;
- each expected problem is reported at the exact 1-based line and column of the offending
  place, worked out by hand from the input below (never copied from the program's output);
- no file under the repository (or beside it) was created, changed or removed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ARTICLE, write
from tests.support.bad_input import (
    ENVIRONMENT,
    ENVIRONMENT_PATH,
    PROD,
    RELEASE,
    RELEASE_PATH,
    Case,
    Expect,
    assert_only_expected,
    assert_reported,
    assert_unchanged,
    at,
    edit,
    insert_after,
    outside_base,
    parse_errors,
    release,
    run_bad,
    set_up,
    snapshot,
)

# Releases that split by replica counts. Lines: 1 service 2 base 3 method 4 versions,
# 5 v1: 6 image 7 weight, 8 v2: 9 image 10 weight.
REPLICAS_RELEASE = """\
service: micro-api
base: deploy/base/micro-api
method: replicas
versions:
  v1:
    image: registry.example/micro-api:1.1
    weight: 70
  v2:
    image: registry.example/micro-api:1.3
    weight: 30
"""

NBSP = "\u00a0"


def symlinked_base(repo: Path) -> None:
    (repo / "deploy" / "base" / "linked").symlink_to(outside_base(repo), target_is_directory=True)


def bare_base(repo: Path) -> None:
    folder = repo / "deploy" / "base" / "bare"
    folder.mkdir()
    shutil.copy(repo / "deploy" / "base" / "micro-api" / "deployment.yaml", folder)


def prod_1(repo: Path) -> None:
    shutil.copytree(repo / PROD, repo / "environments" / "Prod_1")


def directory_release(repo: Path) -> None:
    (repo / PROD / "extra.yaml").mkdir()


MATCH_V3 = """\
match:
  - version: v3
    headers:
      x-canary: {exact: always}
"""

CASES = [
    # --- YAML syntax ----------------------------------------------------------------
    Case(
        "yaml-syntax-error",
        # "base: deploy/base/micro-api" is 27 characters; the stray ": " starts at column 28.
        (at(2, 28, "invalid YAML: mapping values are not allowed here"),),
        release(edit("micro-api\nhosts", "micro-api: extra\nhosts")),
    ),
    Case(
        "tab-after-colon",
        # "    weight:" is 11 characters; the tab stands at column 12.
        (at(9, 12, "tab character where YAML needs a space", "replace the tab"),),
        release(edit("    weight: 70", "    weight:\t70")),
    ),
    Case(
        "unclosed-flow-sequence",
        # The [ of line 3 is never closed; it is at column 8 ("hosts: " is 7 characters).
        (at(3, 8, "this [ is never closed", "add the missing ]"),),
        release(edit("local]", "local,")),
    ),
    Case(
        "tab-indentation",
        (at(8, 1, "tab character where YAML needs a space", "replace the tab"),),
        release(edit("    replicas: 3\n    weight: 70", "\treplicas: 3\n    weight: 70")),
    ),
    Case(
        "nbsp-indentation",
        # Two ordinary spaces, then two non-breaking ones: the first is at column 3.
        (
            at(
                12,
                3,
                "non-breaking space (U+00A0) where YAML needs an ordinary space (1 more in this file)",
                "replace each with a space",
            ),
        ),
        release(
            edit("    replicas: 3\n    weight: 30", f"  {NBSP * 2}replicas: 3\n    weight: 30")
        ),
    ),
    Case(
        "nbsp-after-colon",
        # "    weight:" is 11 characters.
        (at(13, 12, "non-breaking space (U+00A0)", "copied from a web page"),),
        release(edit("weight: 30", f"weight:{NBSP}30")),
    ),
    # --- duplicate keys -------------------------------------------------------------
    Case(
        "duplicate-key-top-level",
        (at(3, 1, 'duplicate key "base"', "the first is at line 2"),),
        release(insert_after(2, "base: deploy/base/checkout\n")),
    ),
    Case(
        "duplicate-version",
        (at(14, 3, 'duplicate key "v2"', "the first is at line 10"),),
        release(
            RELEASE + "  v2:\n    image: registry.example/micro-api:1.4\n    replicas: 1\n"
            "    weight: 0\n"
        ),
    ),
    # --- unknown fields -------------------------------------------------------------
    Case(
        "unknown-field-top-level",
        (at(4, 1, 'unknown field "gatways"', 'did you mean "gateways"?'),),
        release(edit("gateways:", "gatways:")),
    ),
    Case(
        "unknown-field-in-version",
        (
            # The mapping of v2 starts at its first key, line 11 column 5.
            at(11, 5, 'missing required field "weight" in "v2"'),
            at(13, 5, 'unknown field "wieght"', 'did you mean "weight"?'),
        ),
        release(edit("weight: 30", "wieght: 30")),
    ),
    Case(
        "unknown-field-in-retries",
        # "retries: {attempts: 2, " is 23 characters.
        (at(5, 24, 'unknown field "perTryTimout"', 'did you mean "perTryTimeout"?'),),
        release(insert_after(4, "retries: {attempts: 2, perTryTimout: 2s}\n")),
    ),
    # --- wrong types ------------------------------------------------------------------
    Case(
        "weight-percent-string",
        # "    weight: " is 12 characters: values on weight lines start at column 13.
        (
            at(
                13,
                13,
                '"weight" must be an integer, found a string "30%"',
                "without quotes or a unit",
            ),
        ),
        release(edit("weight: 30", "weight: 30%")),
    ),
    Case(
        "weight-float",
        (at(13, 13, '"weight" must be an integer, found a number 30.5', "whole number"),),
        release(edit("weight: 30", "weight: 30.5")),
    ),
    Case(
        "weight-whole-float",
        (at(13, 13, '"weight" must be an integer, found a number 30.0', "whole number"),),
        release(edit("weight: 30", "weight: 30.0")),
    ),
    Case(
        "replicas-string",
        # "    replicas: " is 14 characters.
        (at(12, 15, '"replicas" must be an integer, found a string "three"'),),
        release(edit("replicas: 3\n    weight: 30", "replicas: three\n    weight: 30")),
    ),
    Case(
        "versions-list",
        (at(6, 3, '"versions" must be a mapping, found a list'),),
        release(edit("  v1:\n", "  - name: v1\n").replace("  v2:\n", "  - name: v2\n")),
    ),
    Case(
        "versions-more-than-sixteen",
        # 10,000 versions rendered in 10 s, then `check` ran for 608 s: bounded. The versions
        # mapping starts on line 6, at its first key.
        (at(6, 3, '"versions" may have at most 16 entries'),),
        release(
            RELEASE.split("  v1:")[0]
            + "".join(
                f"  v{i}: {{image: registry.example/micro-api:1.{i}, replicas: 1, "
                f"weight: {100 if i == 1 else 0}}}\n"
                for i in range(1, 18)
            )
        ),
    ),
    Case(
        "hosts-empty-value",
        # Nothing after "hosts:" on line 3: the message belongs on that line (at the key), not
        # on the next key's line.
        (at(3, 1, '"hosts" must be a list, found null'),),
        release(edit("hosts: [micro-api.default.svc.cluster.local]", "hosts:")),
    ),
    Case(
        "versions-empty-value-at-end-of-file",
        # "versions:" is the last line (5); there is no line 6.
        (at(5, 1, '"versions" must be a mapping, found null'),),
        release(RELEASE.split("  v1:")[0]),
    ),
    Case(
        "hosts-string",
        (at(3, 8, '"hosts" must be a list, found a string'),),
        release(edit("hosts: [micro-api.default.svc.cluster.local]", "hosts: micro-api")),
    ),
    # --- weights --------------------------------------------------------------------
    Case(
        "weights-out-of-range",
        (
            at(9, 13, '"weight" must be at most 100, found 120'),
            at(13, 13, '"weight" must be at least 0, found -20'),
        ),
        release(edit("weight: 70", "weight: 120").replace("weight: 30", "weight: -20")),
    ),
    Case(
        "weights-sum-below-100",
        (at(13, 13, "weights sum to 90, not 100 (v1 70 + v2 20)", "set v2 to 30"),),
        release(edit("weight: 30", "weight: 20")),
    ),
    Case(
        "weights-sum-above-100",
        (at(13, 13, "weights sum to 120, not 100 (v1 70 + v2 50)", "set v2 to 30"),),
        release(edit("weight: 30", "weight: 50")),
    ),
    Case(
        "gateways-listed-twice",
        (at(4, 11, '"gateways" lists the same item twice'),),
        release(edit("[micro-gateway, mesh]", "[mesh, mesh]")),
    ),
    Case(
        "check-mode-weights-sum",
        (at(13, 13, "weights sum to 90, not 100 (v1 70 + v2 20)", "set v2 to 30"),),
        release(edit("weight: 30", "weight: 20")),
        args=("render", "--check"),
    ),
    # --- names ----------------------------------------------------------------------
    Case(
        "service-name-invalid",
        (at(1, 10, '"Micro_API" is not a valid "service"', "DNS-1123"),),
        release(edit("service: micro-api", "service: Micro_API")),
    ),
    Case(
        "version-name-invalid",
        (at(6, 3, '"V1" is not a valid', "DNS-1123"),),
        release(edit("  v1:", "  V1:")),
    ),
    Case(
        "environment-folder-name-invalid",
        (
            Expect(
                "environments/Prod_1/environment.yaml",
                1,
                1,
                'environment name "Prod_1" is not a DNS-1123 label',
                "rename the folder",
            ),
        ),
        setup=prod_1,
    ),
    Case(
        "service-not-file-name",
        (
            at(
                1,
                10,
                'service "micro-app" does not match the file name micro-api.yaml',
                "rename the file to micro-app.yaml or set service: micro-api",
            ),
        ),
        release(edit("service: micro-api", "service: micro-app")),
    ),
    # --- bases ----------------------------------------------------------------------
    Case(
        "base-missing",
        (at(2, 7, 'base "deploy/base/nothing" does not exist'),),
        release(edit("deploy/base/micro-api", "deploy/base/nothing")),
    ),
    Case(
        "base-parent-folder",
        (at(2, 7, 'base "../elsewhere" is outside the repository'),),
        release(edit("deploy/base/micro-api", "../elsewhere")),
        setup=outside_base,
    ),
    Case(
        "base-absolute-path",
        (at(2, 7, "is outside the repository"),),
        release(edit("deploy/base/micro-api", "{outside}")),
        setup=outside_base,
    ),
    Case(
        "base-symlink-out-of-repository",
        (at(2, 7, 'base "deploy/base/linked" is outside the repository'),),
        release(edit("deploy/base/micro-api", "deploy/base/linked")),
        setup=symlinked_base,
    ),
    Case(
        "base-without-kustomization",
        (at(2, 7, 'base "deploy/base/bare" has no kustomization.yaml'),),
        release(edit("deploy/base/micro-api", "deploy/base/bare")),
        setup=bare_base,
    ),
    # --- the command line -----------------------------------------------------------
    Case(
        "unknown-environment",
        (
            Expect(
                "environments/nope",
                1,
                1,
                'unknown environment "nope"',
                "known: ambient, dev, prod, staging",
            ),
        ),
        args=("render", "nope"),
    ),
    Case(
        "unknown-environment-typo",
        (Expect("environments/prdo", 1, 1, 'unknown environment "prdo"', 'did you mean "prod"?'),),
        args=("render", "prdo"),
    ),
    # --- files that hold no mapping -----------------------------------------------------
    Case(
        "empty-file",
        (at(1, 1, "file is empty"),),
        release(""),
    ),
    Case(
        "comments-only",
        (at(1, 1, "file is empty"),),
        release("# yaml-language-server: $schema=../../schemas/release.schema.json\n# todo\n"),
    ),
    Case(
        "latin-1",
        # "# owner: Jos" is 12 characters; the é (byte 0xe9 in latin-1) is at column 13.
        (at(3, 13, "not UTF-8: byte 0xe9 cannot be decoded", "save the file as UTF-8"),),
        release(insert_after(2, "# owner: José Müller\n").encode("latin-1")),
    ),
    Case(
        "latin-1-after-utf-8",
        # A file edited by two editors: "ï" is UTF-8 (two bytes), "é" latin-1. Columns count
        # characters, as in every other message: "# naïve caf" is 11 characters, so 12.
        (at(3, 12, "not UTF-8: byte 0xe9", "save the file as UTF-8"),),
        release(insert_after(2, "# naïve café\n").encode("utf-8").replace("é".encode(), b"\xe9")),
    ),
    Case(
        "release-file-is-directory",
        (Expect(f"{PROD}/extra.yaml", 1, 1, "is a directory, not a YAML file"),),
        setup=directory_release,
    ),
    Case(
        "yml-extension",
        (
            Expect(
                f"{PROD}/extra.yml", 1, 1, "release files end in .yaml", "rename it to extra.yaml"
            ),
        ),
        {f"{PROD}/extra.yml": edit("service: micro-api", "service: extra")},
    ),
    Case(
        "multiple-documents",
        # Lines 1-13 are the release, 14 is "---", the second document starts on line 15.
        (at(15, 1, "expected one YAML document, found several"),),
        release(RELEASE + "---\nservice: micro-api\n"),
    ),
    Case(
        "multiple-documents-second-is-scalar",
        (at(15, 1, "expected one YAML document, found several"),),
        release(RELEASE + "---\nmicro-api\n"),
    ),
    Case(
        "top-level-list",
        (at(1, 1, "expected a mapping at the top level, found a list"),),
        release("- service: micro-api\n  base: deploy/base/micro-api\n"),
    ),
    Case(
        "top-level-scalar",
        (at(1, 1, "expected a mapping at the top level, found a string"),),
        release("micro-api\n"),
    ),
    # --- references -------------------------------------------------------------------
    Case(
        "gateway-not-declared-close",
        # "gateways: [" is 11 characters.
        (
            at(
                4,
                12,
                f'gateway "micro-gatewy" is not declared in {ENVIRONMENT_PATH}',
                'did you mean "micro-gateway"?',
            ),
        ),
        release(edit("[micro-gateway, mesh]", "[micro-gatewy, mesh]")),
    ),
    Case(
        "gateway-not-declared",
        # "gateways: [mesh, " is 17 characters.
        (
            at(
                4,
                18,
                f'gateway "public" is not declared in {ENVIRONMENT_PATH}',
                "declare it under gateways:",
            ),
        ),
        release(edit("[micro-gateway, mesh]", "[mesh, public]")),
    ),
    Case(
        "match-unknown-version",
        # "  - version: " is 13 characters.
        (at(6, 14, 'version "v3" is not one of the release\'s versions (v1, v2)'),),
        release(insert_after(4, MATCH_V3)),
    ),
    Case(
        "mirror-unknown-version",
        # "mirror: {version: " is 18 characters.
        (at(5, 19, 'version "v9" is not one of the release\'s versions (v1, v2)'),),
        release(insert_after(4, "mirror: {version: v9, percent: 20}\n")),
    ),
    # --- method -----------------------------------------------------------------------
    Case(
        "replicas-method-without-replicas",
        (at(3, 9, 'method: replicas needs "replicas"'),),
        release(REPLICAS_RELEASE),
    ),
    Case(
        "replicas-method-with-version-replicas",
        # After inserting "replicas: 4" as line 4, v1 starts on line 6 and its image on 7.
        (at(8, 5, "with method: replicas the weights decide each version's replicas"),),
        release(
            insert_after(7, "    replicas: 3\n", insert_after(3, "replicas: 4\n", REPLICAS_RELEASE))
        ),
    ),
    Case(
        "replicas-method-with-istio-field",
        (at(5, 1, '"hosts" needs method: istio'),),
        release(
            insert_after(
                4,
                "hosts: [micro-api.default.svc.cluster.local]\n",
                insert_after(3, "replicas: 4\n", REPLICAS_RELEASE),
            )
        ),
    ),
    Case(
        "istio-version-without-replicas",
        # Without line 12, v2's mapping starts at its image, line 11 column 5.
        (at(11, 5, 'version "v2" needs "replicas"', "with method: istio"),),
        release(edit("    replicas: 3\n    weight: 30", "    weight: 30")),
    ),
    Case(
        "istio-top-level-replicas",
        (at(5, 1, '"replicas" at the top level is for method: replicas'),),
        release(insert_after(4, "replicas: 4\n")),
    ),
    Case(
        "canary-steps-not-increasing",
        # "canary: {steps: [10, 50, " is 25 characters.
        (at(5, 26, "canary steps must increase: 25 follows 50"),),
        release(insert_after(4, "canary: {steps: [10, 50, 25, 100]}\n")),
    ),
    # --- environment.yaml ---------------------------------------------------------------
    Case(
        "environment-unknown-field",
        (Expect(ENVIRONMENT_PATH, 8, 1, 'unknown field "polcy"', 'did you mean "policy"?'),),
        {ENVIRONMENT_PATH: edit("policy:", "polcy:", ENVIRONMENT)},
    ),
    Case(
        "environment-missing-namespace",
        (Expect(ENVIRONMENT_PATH, 1, 1, 'missing required field "namespace"'),),
        {ENVIRONMENT_PATH: edit("namespace: default\n", "", ENVIRONMENT)},
    ),
    Case(
        "environment-canary-steps-not-increasing",
        # "  canary: {steps: [10, " is 23 characters.
        (Expect(ENVIRONMENT_PATH, 11, 24, "canary steps must increase: 10 follows 10"),),
        {ENVIRONMENT_PATH: ENVIRONMENT + "defaults:\n  canary: {steps: [10, 10]}\n"},
    ),
]


@pytest.fixture
def repo(example_repo: Path) -> Path:
    """The example repository with prod's environment and micro-api release set to ours."""
    write(example_repo / ENVIRONMENT_PATH, ENVIRONMENT)
    write(example_repo / RELEASE_PATH, RELEASE)
    return example_repo


def test_the_starting_point_is_valid(cli, repo):
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 0, outcome.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(cli, repo, case: Case):
    set_up(repo, case)
    found, err = run_bad(cli, repo, *case.args)
    assert_only_expected(found, case, err)


def test_nbsp_in_a_real_release_file(cli, repo):
    """The real example release with one line's indentation pasted from a web page."""
    original = (repo / PROD / "checkout.yaml").read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("  v2:"))
    lines[number - 1] = NBSP * 2 + lines[number - 1][2:]
    write(repo / PROD / "checkout.yaml", "".join(lines))
    found, err = run_bad(cli, repo, "render")
    expect = Expect(
        f"{PROD}/checkout.yaml", number, 1, "non-breaking space (U+00A0) where YAML needs an"
    )
    assert_reported(found, expect, err)
    assert "(1 more in this file)" in err
    assert len(found) == 1, err


def test_as_published_seed_file_with_nbsp(cli, repo):
    """A manifest copied from the article, non-breaking spaces and all, placed as a release."""
    seed = ARTICLE / "as-published" / "virtual-service-all.yaml"
    if not seed.is_file():
        pytest.skip(f"{seed} is not there")
    text = seed.read_text(encoding="utf-8")
    (repo / PROD / "virtual-service-all.yaml").write_bytes(seed.read_bytes())
    found, err = run_bad(cli, repo, "render")
    # "apiVersion:" is 11 characters; its non-breaking space is at line 1, column 12.
    assert text.startswith(f"apiVersion:{NBSP}")
    more = text.count(NBSP) - 1
    expect = Expect(
        f"{PROD}/virtual-service-all.yaml",
        1,
        12,
        f"non-breaking space (U+00A0) where YAML needs an ordinary space ({more} more in this file)",
        "copied from a web page",
    )
    assert_reported(found, expect, err)
    assert len(found) == 1, err


def test_several_bad_files_are_reported_in_one_run_sorted_by_file(cli, repo):
    write(repo / "environments/staging/micro-api.yaml", edit("weight: 30", "weight: 20"))
    write(repo / RELEASE_PATH, edit("gateways:", "gatways:"))
    checkout = repo / PROD / "checkout.yaml"
    write(checkout, "service: checkout\nbase: deploy/base/checkout\nversions: []\n")
    found, err = run_bad(cli, repo, "render")
    places = [(r.file, r.line, r.column) for r in found]
    assert places == sorted(places), err
    assert_reported(
        found, Expect(f"{PROD}/checkout.yaml", 3, 11, '"versions" must be a mapping'), err
    )
    assert_reported(found, at(4, 1, 'unknown field "gatways"'), err)
    # Staging keeps its own namespace, so its gateway is declared; only the weights are wrong.
    assert_reported(
        found,
        Expect("environments/staging/micro-api.yaml", 13, 13, "weights sum to 90", "set v2 to 30"),
        err,
    )


def test_bom_and_crlf_are_accepted(cli, repo):
    """A byte order mark and Windows line endings mean the same as the plain file."""
    assert cli("--repo", repo, "render").code == 0  # the tree for the plain files
    overlays = repo / "deploy" / "overlays"
    rendered = snapshot(overlays)
    for path in sorted((repo / "environments").glob("*/*.yaml")):
        text = path.read_text(encoding="utf-8")
        path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 0, outcome.err
    assert "Traceback" not in outcome.err
    assert "no file(s) changed" in outcome.err
    assert_unchanged(rendered, snapshot(overlays))


def test_bom_and_crlf_do_not_shift_positions(cli, repo):
    # The byte order mark is not a column: "service: " is 9 characters, the value at 10.
    text = edit("service: micro-api", "service: Micro_API").replace("weight: 30", "weight: 20%")
    (repo / RELEASE_PATH).write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    found, err = run_bad(cli, repo, "render")
    assert_reported(found, at(1, 10, '"Micro_API" is not a valid "service"'), err)
    assert_reported(found, at(13, 13, '"weight" must be an integer, found a string "20%"'), err)


def console_script() -> str:
    beside = Path(sys.executable).parent / "meshcanary"
    found = str(beside) if beside.is_file() else shutil.which("meshcanary")
    if not found:
        pytest.skip("the meshcanary console script is not installed")
    return found


def test_console_script_reports_bad_input(repo):
    write(repo / RELEASE_PATH, edit("weight: 30", "weight: 20"))
    before = snapshot(repo)
    done = subprocess.run(
        [console_script(), "--repo", str(repo), "render"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    found = parse_errors(done.stderr)
    assert_reported(found, at(13, 13, "weights sum to 90, not 100", "set v2 to 30"), done.stderr)
    assert_unchanged(before, snapshot(repo))
