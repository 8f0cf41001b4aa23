"""Hostile and broken release files, environment files and bases: exit 2, located, bounded.

The companion of `test_bad_input.py` (whose helpers, in tests/support/bad_input.py, these
cases reuse and whose cases they do not repeat): every YAML error class, alias bombs, deep
nesting, huge numbers, NaN and infinities, YAML 1.1 readings, broken encodings, and files or
paths that are not what they seem - FIFOs, devices, dangling links, link loops, links and
`../` out of the repository.

Each case checks exit 2, only `file:line:col: error:` lines (positions worked out by hand
from the input, in the comments), no traceback, and that nothing under the repository or
beside it was written. Big inputs are generated into tmp_path, never committed; the cases
that could blow up run again in a process of their own, measured: the bytes they read and
their memory stay within bounds.

Which file cannot be read, and how (we run as root, which ignores permissions): a FIFO (a
reader would wait forever for a writer), a character device made with mknod, a dangling
symbolic link, a symbolic link loop, and a directory.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.support import write
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
from tests.support.bounds import measured

MIB = 1024 * 1024
LIMIT = 4 * MIB  # source.MAX_BYTES, written out: the message must say it
HOSTILE = "deploy/base/hostile"  # a base only prod's micro-api uses, so one message per problem
HOSTILE_RELEASE = edit("deploy/base/micro-api", HOSTILE)

# Nine levels of nine: 9**9 (387 million) leaves. Lines 1-9, one anchor each; "f: " is three
# characters, so each value (its anchor) starts at column 4. The nodes are counted as they are
# expanded: a..e make 74,732 (10 + 91 + 820 + 7,381 + 66,430), f's 597,871 cross 200,000.
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi", strict=True)
)

# The service file of the hostile base. Lines: 1 apiVersion 2 kind 3 metadata 4 name 5 spec
# 6 selector 7 app 8 ports 9 - name 10 port 11 targetPort.
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: micro-api
spec:
  selector:
    app: micro-api
  ports:
    - name: http
      port: 80
      targetPort: 19090
"""
# Lines: 1 apiVersion 2 kind 3 resources: 4 - deployment.yaml 5 - service.yaml
KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - service.yaml
"""


def base_file(name: str) -> str:
    return f"{HOSTILE}/{name}"


# ---------------------------------------------------------------------------------------
# Set-ups: each gets the repository (a copy of the examples, prod's micro-api as in RELEASE)


def hostile_base(repo: Path) -> Path:
    """deploy/base/hostile, a working copy of micro-api's base, used by prod's micro-api."""
    folder = repo / HOSTILE
    if not folder.exists():
        shutil.copytree(repo / "deploy" / "base" / "micro-api", folder)
        write(folder / "service.yaml", SERVICE)
        write(folder / "kustomization.yaml", KUSTOMIZATION)
        write(repo / RELEASE_PATH, HOSTILE_RELEASE)
    return folder


def in_base(name: str, text: str | bytes):
    def setup(repo: Path) -> None:
        path = hostile_base(repo) / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return setup


def base_kustomization(text: str):
    def setup(repo: Path) -> None:
        outside_base(repo)
        write(hostile_base(repo) / "kustomization.yaml", text)

    return setup


def replaced(relative: str, make) -> object:
    """A set-up that removes `relative` and lets `make(path, repo)` put something in its place."""

    def setup(repo: Path) -> None:
        if relative.startswith(HOSTILE):
            hostile_base(repo)
        path = repo / relative
        path.unlink()
        make(path, repo)

    return setup


def fifo(path: Path, _repo: Path) -> None:
    os.mkfifo(path)


def device(path: Path, _repo: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # what /dev/zero is
    except PermissionError:
        pytest.skip("mknod needs root")


def dangling(path: Path, repo: Path) -> None:
    path.symlink_to(repo / "nothing-here.yaml")


def loop(path: Path, _repo: Path) -> None:
    path.symlink_to(path)


def directory(path: Path, _repo: Path) -> None:
    path.mkdir()


def link_outside(path: Path, repo: Path) -> None:
    """A link to a copy of the same file beside the repository: only its place is wrong."""
    target = repo.parent / f"outside-{path.name}"
    target.write_text(ENVIRONMENT if path.name == "environment.yaml" else RELEASE, encoding="utf-8")
    path.symlink_to(target)


def link_outside_base(name: str):
    def make(path: Path, repo: Path) -> None:
        path.symlink_to(outside_base(repo) / name)

    return make


def link_to_dev_zero(path: Path, _repo: Path) -> None:
    path.symlink_to("/dev/zero")


def prod_folder_outside(repo: Path) -> None:
    shutil.move(repo / PROD, repo.parent / "prod")
    (repo / PROD).symlink_to(repo.parent / "prod", target_is_directory=True)


def fifo_base(repo: Path) -> None:
    os.mkfifo(repo / "deploy" / "base" / "fifo")


def looping_base(repo: Path) -> None:
    (repo / "deploy" / "base" / "loop").symlink_to(repo / "deploy" / "base" / "loop")


def nested_escape(repo: Path) -> None:
    """A plain base whose sub-folder's kustomization reaches out of the repository."""
    outside_base(repo)
    write(hostile_base(repo) / "kustomization.yaml", "resources:\n  - ../common\n")
    write(repo / "deploy/base/common/kustomization.yaml", "resources:\n  - ../../../../elsewhere\n")


def huge_release(repo: Path) -> None:
    """A 50 MiB release file: the release, then comment lines."""
    with (repo / RELEASE_PATH).open("w", encoding="utf-8") as out:
        out.write(RELEASE)
        line = "#" + "x" * 1023 + "\n"
        for _ in range(50 * 1024):
            out.write(line)


def huge_base_file(repo: Path) -> None:
    with (hostile_base(repo) / "service.yaml").open("a", encoding="utf-8") as out:
        line = "#" + "x" * 1023 + "\n"
        for _ in range(50 * 1024):
            out.write(line)


# Deep nesting in block style: line 14 "trafficPolicy:", then line 14+i holds "k<i>:" indented
# 2*i spaces. Levels count every node: the top-level mapping is 1, the mapping that holds k<i>
# is i+1 and the key k<i> itself i+2. The first beyond 64 is the key k63: line 77, column 127.
DEEP_BLOCK = RELEASE + "trafficPolicy:\n" + "".join(f"{'  ' * i}k{i}:\n" for i in range(1, 100))

# A long ladder of readable but huge numbers.
GOOGOL = "1" + "0" * 100

ENV_LATIN_1 = insert_after(1, "# owner: José\n", ENVIRONMENT).encode("latin-1")

CASES = [
    # --- YAML errors, one per class ruamel raises -------------------------------------
    Case(
        "reader-control-character",
        # "    weight: 3" is 13 characters; the BEL is the 14th.
        (at(13, 14, "invalid YAML: control character U+0007 is not allowed"),),
        release(edit("weight: 30", "weight: 3\x070")),
    ),
    Case(
        "reader-nul-character",
        (at(13, 14, "control character U+0000"),),
        release(edit("weight: 30", "weight: 3\x000")),
    ),
    Case(
        "scanner-unclosed-quote",
        # The string runs to the end of the file: line 14 (after the last newline), column 1.
        (at(14, 1, "invalid YAML: found unexpected end of stream"),),
        release(edit("weight: 30", 'weight: "30')),
    ),
    Case(
        "scanner-unknown-escape",
        # The quote is at column 13, the backslash at 14, the unknown "q" at 15.
        (at(13, 15, "found unknown escape character 'q'"),),
        release(edit("weight: 30", 'weight: "\\q"')),
    ),
    Case(
        "scanner-unclosed-flow-mapping",
        # "retries: " is 9 characters: the { is at column 10 of the inserted line 5.
        (at(5, 10, "this { is never closed", "add the missing }"),),
        release(insert_after(4, "retries: {attempts: 2\n")),
    ),
    Case(
        "parser-flow-mapping-missing-comma",
        # Closed on its own line, so not "never closed": the ':' after perTryTimeout, column 36
        # ("retries: {" is 10 characters, "attempts: 2 perTryTimeout" 25 more).
        (
            at(
                5,
                36,
                "invalid YAML: expected ',' or '}', but got ':' (while parsing a flow mapping)",
            ),
        ),
        release(insert_after(4, "retries: {attempts: 2 perTryTimeout: 1s}\n")),
    ),
    Case(
        "parser-flow-node-at-end",
        # `x: [` ends the file: the parser stops at the end, line 15, and names no bracket.
        (at(15, 1, "invalid YAML: expected the node content, but found '<stream end>'"),),
        release(RELEASE + "x: [\n"),
    ),
    Case(
        "parser-bad-indentation",
        # Three spaces instead of four: the key starts at column 4.
        (at(13, 4, "invalid YAML: expected <block end>, but found '<block mapping start>'"),),
        release(edit("    weight: 30", "   weight: 30")),
    ),
    Case(
        "parser-stray-closing-bracket",
        (at(14, 1, "expected <block end>, but found ']'"),),
        release(RELEASE + "]\n"),
    ),
    Case(
        "parser-yaml-2-directive",
        (at(1, 1, "found incompatible YAML document (version 1.* is required)"),),
        release("%YAML 2.0\n---\n" + RELEASE),
    ),
    Case(
        "composer-undefined-alias",
        # "x: " is 3 characters; the alias is at column 4 of line 14.
        (at(14, 4, "found undefined alias 'nope'"),),
        release(RELEASE + "x: *nope\n"),
    ),
    Case(
        "composer-deep-flow-nesting",
        # "trafficPolicy: " is 15 characters; bracket k is at column 15+k and level k+1 (the
        # top-level mapping is level 1), so the 64th bracket, column 79, is the first too deep.
        (at(14, 79, "nested more than 64 levels deep", "look for unclosed brackets"),),
        release(RELEASE + "trafficPolicy: " + "[" * 5000 + "]" * 5000 + "\n"),
    ),
    Case(
        "composer-deep-flow-mapping-unclosed",
        # "trafficPolicy: " then "{a: " repeated: brace k opens level k+1 at column 16+4*(k-1),
        # and its key "a" (level k+2) follows at 17+4*(k-1): the 63rd brace's key, column 265,
        # is the first node beyond 64 levels.
        (at(14, 265, "nested more than 64 levels deep"),),
        release(RELEASE + "trafficPolicy: " + "{a: " * 3000 + "\n"),
    ),
    Case(
        "composer-deep-block-nesting",
        (at(77, 127, "nested more than 64 levels deep"),),
        release(DEEP_BLOCK),
    ),
    Case(
        "constructor-int-tag-on-a-word",
        (at(13, 13, 'invalid YAML: cannot read "thirty" as an integer'),),
        release(edit("weight: 30", "weight: !!int thirty")),
    ),
    Case(
        "constructor-bool-tag-on-a-word",
        (at(13, 13, 'cannot read "maybe" as a boolean'),),
        release(edit("weight: 30", "weight: !!bool maybe")),
    ),
    Case(
        "constructor-float-tag-on-a-word",
        (at(13, 13, 'cannot read "x" as a number'),),
        release(edit("weight: 30", "weight: !!float x")),
    ),
    Case(
        "constructor-impossible-date",
        (at(13, 13, 'cannot read "2024-13-45" as a date: month must be in 1..12'),),
        release(edit("weight: 30", "weight: 2024-13-45")),
    ),
    Case(
        "environment-duplicate-key",
        (Expect(ENVIRONMENT_PATH, 10, 1, 'duplicate key "namespace"', "the first is at line 1"),),
        {ENVIRONMENT_PATH: ENVIRONMENT + "namespace: other\n"},
    ),
    # --- aliases --------------------------------------------------------------------------
    Case(
        "billion-laughs",
        (at(6, 4, "more than 200000 YAML nodes (alias bomb?)"),),
        release(BOMB + RELEASE),
    ),
    Case(
        "billion-laughs-in-environment",
        # ENVIRONMENT has 9 lines; the bomb's f is line 9+6.
        (Expect(ENVIRONMENT_PATH, 15, 4, "more than 200000 YAML nodes"),),
        {ENVIRONMENT_PATH: ENVIRONMENT + BOMB},
    ),
    Case(
        "reused-anchor-is-no-warning",
        # YAML lets an anchor be defined again: only the two unknown fields are reported, and
        # no warning text reaches stderr.
        (at(14, 1, 'unknown field "x"'), at(15, 1, 'unknown field "y"')),
        release(RELEASE + "x: &a 1\ny: &a 2\n"),
    ),
    # --- numbers ----------------------------------------------------------------------------
    Case(
        "weight-huge-integer",
        (at(13, 13, "as an integer: integers are limited to 4300 digits"),),
        release(edit("weight: 30", "weight: " + "9" * 50_000)),
    ),
    Case(
        "weight-googol",
        (at(13, 13, f'"weight" must be at most 100, found {GOOGOL}'),),
        release(edit("weight: 30", f"weight: {GOOGOL}")),
    ),
    Case(
        "weight-nan",
        (at(13, 13, '"weight" must be an integer, found a number NaN'),),
        release(edit("weight: 30", "weight: .nan")),
    ),
    Case(
        "weight-infinity",
        # One message: "at most 100" would only repeat that infinity is no integer.
        (at(13, 13, '"weight" must be an integer, found a number Infinity'),),
        release(edit("weight: 30", "weight: .inf")),
    ),
    Case(
        "weight-minus-infinity",
        (at(13, 13, '"weight" must be an integer, found a number -Infinity'),),
        release(edit("weight: 30", "weight: -.Inf")),
    ),
    Case(
        "replicas-overflowing-float",
        # 1e400 is read as a float, which overflows to infinity. "    replicas: " is 14.
        (at(12, 15, '"replicas" must be an integer, found a number Infinity'),),
        release(edit("replicas: 3\n    weight: 30", "replicas: 1e400\n    weight: 30")),
    ),
    Case(
        "mirror-percent-infinity",
        # "mirror: {version: v2, percent: " is 31 characters.
        (at(5, 32, '"percent" must be at most 100, found inf'),),
        release(insert_after(4, "mirror: {version: v2, percent: .inf}\n")),
    ),
    Case(
        "replicas-quoted-number",
        (at(12, 15, '"replicas" must be an integer, found a string "3"', "without quotes"),),
        release(edit("replicas: 3\n    weight: 30", 'replicas: "3"\n    weight: 30')),
    ),
    Case(
        "min-ready-seconds-with-unit",
        # "rollout: {minReadySeconds: " is 27 characters.
        (at(5, 28, '"minReadySeconds" must be an integer, found a string "5s"'),),
        release(insert_after(4, "rollout: {minReadySeconds: 5s}\n")),
    ),
    Case(
        "weight-leading-zero-is-decimal",
        # YAML 1.2: 036 is thirty-six (YAML 1.1 read it as octal 30).
        (at(13, 13, "weights sum to 106, not 100 (v1 70 + v2 36)"),),
        release(edit("weight: 30", "weight: 036")),
    ),
    Case(
        "weight-sexagesimal-is-a-string",
        # YAML 1.1 read 0:30 as thirty (base 60); 1.2 as text.
        (at(13, 13, '"weight" must be an integer, found a string "0:30"'),),
        release(edit("weight: 30", "weight: 0:30")),
    ),
    # --- YAML 1.1 booleans -------------------------------------------------------------
    Case(
        "weight-yes",
        (at(13, 13, '"weight" must be an integer, found a string "yes"'),),
        release(edit("weight: 30", "weight: yes")),
    ),
    Case(
        "replicas-on",
        (at(12, 15, '"replicas" must be an integer, found a string "on"'),),
        release(edit("replicas: 3\n    weight: 30", "replicas: on\n    weight: 30")),
    ),
    Case(
        "environment-max-step-no",
        # "  maxStep: " is 11 characters.
        (Expect(ENVIRONMENT_PATH, 9, 12, '"maxStep" must be an integer, found a string "no"'),),
        {ENVIRONMENT_PATH: edit("maxStep: 25", "maxStep: no", ENVIRONMENT)},
    ),
    Case(
        "yaml-1-1-directive-makes-yes-a-boolean",
        # With %YAML 1.1 the key yes is true; two directive lines push v2 to line 12.
        (at(12, 3, '"True" is not a valid version name', "DNS-1123"),),
        release("%YAML 1.1\n---\n" + edit("  v2:", "  yes:")),
    ),
    # --- keys that are not strings -----------------------------------------------------
    Case(
        "integer-key",
        (at(14, 1, 'unknown field "1"'),),
        release(RELEASE + "1: one\n"),
    ),
    Case(
        "null-key",
        (at(14, 1, 'unknown field "None"'),),
        release(RELEASE + "~: nothing\n"),
    ),
    Case(
        "sequence-key",
        (at(14, 1, "unknown field \"('a', 'b')\""),),
        release(RELEASE + "[a, b]: 1\n"),
    ),
    # --- encodings ------------------------------------------------------------------------
    Case(
        "utf-16",
        # UTF-16 starts with the byte order mark ff fe.
        (at(1, 1, "not UTF-8: byte 0xff cannot be decoded", "save the file as UTF-8"),),
        release(RELEASE.encode("utf-16")),
    ),
    Case(
        "overlong-utf-8",
        # "# x" is 3 characters; the overlong slash c0 af starts at column 4.
        (at(3, 4, "not UTF-8: byte 0xc0 cannot be decoded"),),
        release(insert_after(2, "# x/\n").encode().replace(b"x/", b"x\xc0\xaf")),
    ),
    Case(
        "utf-8-encoded-surrogate",
        (at(3, 4, "not UTF-8: byte 0xed cannot be decoded"),),
        release(insert_after(2, "# x!\n").encode().replace(b"x!", b"x\xed\xa0\x80")),
    ),
    Case(
        "environment-latin-1",
        # "# owner: Jos" is 12 characters; the é is at line 2, column 13.
        (Expect(ENVIRONMENT_PATH, 2, 13, "not UTF-8: byte 0xe9", "save the file as UTF-8"),),
        {ENVIRONMENT_PATH: ENV_LATIN_1},
    ),
    Case(
        "byte-order-mark-inside",
        # Two files joined: the second one's byte order mark starts line 10.
        (at(10, 1, "byte order mark (U+FEFF) inside the file"),),
        release(edit("  v2:", "\ufeff  v2:")),
    ),
    # --- files that are not regular files, or not ours -------------------------------------
    Case(
        "release-is-a-fifo",
        (at(1, 1, "is a FIFO, not a YAML file"),),
        setup=replaced(RELEASE_PATH, fifo),
    ),
    Case(
        "release-is-a-character-device",
        (at(1, 1, "is a device or socket, not a YAML file"),),
        setup=replaced(RELEASE_PATH, device),
    ),
    Case(
        "release-dangling-symlink",
        (at(1, 1, "is a symbolic link to nothing"),),
        setup=replaced(RELEASE_PATH, dangling),
    ),
    Case(
        "release-symlink-loop",
        (at(1, 1, "cannot read: Too many levels of symbolic links"),),
        setup=replaced(RELEASE_PATH, loop),
    ),
    Case(
        "release-symlink-out-of-repository",
        (at(1, 1, "leads outside the repository through a symbolic link"),),
        setup=replaced(RELEASE_PATH, link_outside),
    ),
    Case(
        "release-symlink-to-dev-zero",
        (at(1, 1, "leads outside the repository through a symbolic link"),),
        setup=replaced(RELEASE_PATH, link_to_dev_zero),
    ),
    Case(
        "release-50-mib",
        (at(1, 1, f"bytes; the limit is {LIMIT}"),),
        setup=huge_release,
    ),
    Case(
        "environment-file-is-a-directory",
        # Once skipped, which made render delete deploy/overlays/prod as an orphan.
        (Expect(ENVIRONMENT_PATH, 1, 1, "is a directory, not a YAML file"),),
        setup=replaced(ENVIRONMENT_PATH, directory),
    ),
    Case(
        "environment-file-is-a-fifo",
        (Expect(ENVIRONMENT_PATH, 1, 1, "is a FIFO, not a YAML file"),),
        setup=replaced(ENVIRONMENT_PATH, fifo),
    ),
    Case(
        "environment-file-symlink-out-of-repository",
        (Expect(ENVIRONMENT_PATH, 1, 1, "leads outside the repository"),),
        setup=replaced(ENVIRONMENT_PATH, link_outside),
    ),
    Case(
        "environment-folder-symlink-out-of-repository",
        (Expect(ENVIRONMENT_PATH, 1, 1, "leads outside the repository"),),
        setup=prod_folder_outside,
    ),
    # --- base: paths in the release --------------------------------------------------------
    Case(
        "base-deep-parent-path",
        (at(2, 7, 'base "deploy/base/../../../elsewhere" is outside the repository'),),
        release(edit("deploy/base/micro-api", "deploy/base/../../../elsewhere")),
        setup=outside_base,
    ),
    Case(
        "base-nul-character",
        (at(2, 7, 'base "deploy/base/\\u0000x" is not a usable path: it holds a NUL character'),),
        release(edit("deploy/base/micro-api", '"deploy/base/\\0x"')),
    ),
    Case(
        "base-name-too-long",
        (at(2, 7, "is not a usable path: File name too long"),),
        release(edit("deploy/base/micro-api", "a" * 5000)),
    ),
    Case(
        "base-symlink-loop",
        (at(2, 7, 'base "deploy/base/loop" is not a usable path: a symbolic link loop'),),
        release(edit("deploy/base/micro-api", "deploy/base/loop")),
        setup=looping_base,
    ),
    Case(
        "base-is-a-fifo",
        (at(2, 7, 'base "deploy/base/fifo" is not a folder'),),
        release(edit("deploy/base/micro-api", "deploy/base/fifo")),
        setup=fifo_base,
    ),
    # --- base: its kustomization and files --------------------------------------------------
    Case(
        "base-resource-folder-out-of-repository",
        # deploy/base/hostile/../../../../ is the folder that holds the repository.
        # "  - " is 4 characters: the entry of line 5 is at column 5.
        (
            Expect(
                base_file("kustomization.yaml"),
                5,
                5,
                'resources entry "../../../../elsewhere" is outside the repository',
            ),
        ),
        setup=base_kustomization(KUSTOMIZATION.replace("service.yaml", "../../../../elsewhere")),
    ),
    Case(
        "base-resource-file-out-of-repository",
        (
            Expect(
                base_file("kustomization.yaml"),
                5,
                5,
                'resources entry "../../../../elsewhere/service.yaml" is outside',
            ),
        ),
        setup=base_kustomization(
            KUSTOMIZATION.replace("- service.yaml", "- ../../../../elsewhere/service.yaml")
        ),
    ),
    Case(
        "base-resource-absolute-path",
        (Expect(base_file("kustomization.yaml"), 5, 5, "is an absolute path"),),
        setup=base_kustomization(KUSTOMIZATION.replace("- service.yaml", "- /etc/hostname")),
    ),
    Case(
        "base-component-out-of-repository",
        # Components make the base need kustomize; its folders are checked all the same.
        (
            Expect(
                base_file("kustomization.yaml"),
                7,
                5,
                'components entry "../../../../elsewhere" is outside the repository',
            ),
        ),
        setup=base_kustomization(KUSTOMIZATION + "components:\n  - ../../../../elsewhere\n"),
    ),
    Case(
        "base-nested-kustomization-out-of-repository",
        (
            Expect(
                "deploy/base/common/kustomization.yaml",
                2,
                5,
                'resources entry "../../../../elsewhere" is outside the repository',
            ),
        ),
        setup=nested_escape,
    ),
    Case(
        "base-resource-symlink-out-of-repository",
        (
            Expect(
                base_file("kustomization.yaml"), 5, 5, 'resources entry "service.yaml" is outside'
            ),
        ),
        setup=replaced(base_file("service.yaml"), link_outside_base("service.yaml")),
    ),
    Case(
        "base-kustomization-symlink-out-of-repository",
        (Expect(base_file("kustomization.yaml"), 1, 1, "is outside the repository"),),
        setup=replaced(base_file("kustomization.yaml"), link_outside_base("kustomization.yaml")),
    ),
    Case(
        "base-resource-nul-character",
        # 'resources: ["' is 13 characters... the entry's quote is at column 13.
        (
            Expect(
                base_file("kustomization.yaml"),
                1,
                13,
                'resources entry "a\\u0000b.yaml" is not a usable path',
            ),
        ),
        setup=base_kustomization('resources: ["a\\0b.yaml"]\n'),
    ),
    Case(
        "base-resource-is-a-fifo",
        (
            Expect(
                base_file("kustomization.yaml"), 5, 5, 'entry "service.yaml" is a FIFO, not a file'
            ),
        ),
        setup=replaced(base_file("service.yaml"), fifo),
    ),
    Case(
        "base-resource-dangling-symlink",
        (
            Expect(
                base_file("kustomization.yaml"),
                5,
                5,
                'entry "service.yaml" is a symbolic link to nothing',
            ),
        ),
        setup=replaced(base_file("service.yaml"), dangling),
    ),
    Case(
        "base-resource-50-mib",
        (Expect(base_file("service.yaml"), 1, 1, f"bytes; the limit is {LIMIT}"),),
        setup=huge_base_file,
    ),
    Case(
        "base-resource-latin-1",
        # "# owner: Jos" is 12 characters.
        (Expect(base_file("service.yaml"), 1, 13, "not UTF-8: byte 0xe9"),),
        setup=in_base("service.yaml", ("# owner: José\n" + SERVICE).encode("latin-1")),
    ),
    Case(
        "base-resource-yaml-error",
        # "  name: micro-api" is 17 characters: the second ": " is at line 4, column 18.
        (Expect(base_file("service.yaml"), 4, 18, "invalid YAML: mapping values are not allowed"),),
        setup=in_base("service.yaml", edit("name: micro-api", "name: micro-api: v2", SERVICE)),
    ),
    Case(
        "base-resource-control-character",
        # "  name: micro-api" is 17 characters: the BEL is at line 5, column 18 (libyaml gives
        # its offset in bytes of UTF-8, counted back to characters after the "é" of line 1).
        (
            Expect(
                base_file("service.yaml"),
                5,
                18,
                "invalid YAML: control character U+0007 is not allowed",
                "remove it",
            ),
        ),
        setup=in_base(
            "service.yaml",
            "# owner: José\n" + edit("name: micro-api", "name: micro-api\x07", SERVICE),
        ),
    ),
    Case(
        "base-resource-deep-nesting",
        # "x: " then brackets; libyaml stops past 1000 levels, and the top-level mapping is the
        # first: the 1000th bracket (column 3+1000) is the 1001st level.
        (Expect(base_file("service.yaml"), 12, 1003, "exceeded maximum nesting depth"),),
        setup=in_base("service.yaml", SERVICE + "x: " + "[" * 20000 + "]" * 20000 + "\n"),
    ),
    Case(
        "base-kustomization-yaml-error",
        # " bad: [" is indented one space: the parser fails at that key, line 6 column 2.
        (Expect(base_file("kustomization.yaml"), 6, 2, "invalid YAML: did not find expected key"),),
        setup=base_kustomization(KUSTOMIZATION + " bad: [\n"),
    ),
    Case(
        "base-kustomization-is-a-fifo",
        (Expect(base_file("kustomization.yaml"), 1, 1, "is a FIFO, not a YAML file"),),
        setup=replaced(base_file("kustomization.yaml"), fifo),
    ),
    Case(
        "base-generator-not-a-mapping",
        # Not something meshcanary reads: kustomize decides, and says why at the release's base.
        (at(2, 7, 'kustomize cannot build base "deploy/base/hostile"'),),
        setup=base_kustomization(KUSTOMIZATION + "configMapGenerator: [1, 2]\n"),
    ),
]


@pytest.fixture
def repo(example_repo: Path) -> Path:
    """The example repository with prod's environment and micro-api release as above."""
    write(example_repo / ENVIRONMENT_PATH, ENVIRONMENT)
    write(example_repo / RELEASE_PATH, RELEASE)
    return example_repo


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(cli, repo, case: Case):
    set_up(repo, case)
    found, err = run_bad(cli, repo, *case.args)
    assert_only_expected(found, case, err)


def test_there_are_enough_cases():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_hostile_base_itself_renders(cli, repo):
    hostile_base(repo)
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 0, outcome.err


# ---------------------------------------------------------------------------------------
# Accepted: what looks odd but means the same


def test_cr_and_mixed_line_ends_render_like_lf(cli, repo):
    """Old Mac line ends (CR alone), and CRLF mixed with LF, mean what LF means."""
    assert cli("--repo", repo, "render").code == 0
    rendered = snapshot(repo / "deploy" / "overlays")
    (repo / RELEASE_PATH).write_bytes(RELEASE.replace("\n", "\r").encode())
    mixed = ENVIRONMENT.replace("\n", "\r\n", 4)
    (repo / ENVIRONMENT_PATH).write_bytes(mixed.encode())
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 0, outcome.err
    assert "no file(s) changed" in outcome.err
    assert_unchanged(rendered, snapshot(repo / "deploy" / "overlays"))


# ---------------------------------------------------------------------------------------
# Bounded: the cases that could hang or blow up, in a process of their own

BOUNDED = {c.id: c for c in CASES}
PEAK_MIB = 300
# What a render reads besides the files a case makes: the modules it imports on the way, the
# schemas, the repository (about 6 MiB). A file read past the 4 MiB limit, or /dev/zero,
# goes far beyond.
READ_MIB = 32


@pytest.mark.parametrize(
    "case_id",
    [
        "billion-laughs",
        "composer-deep-flow-nesting",
        "weight-huge-integer",
        "release-50-mib",
        "release-is-a-fifo",
        "release-symlink-to-dev-zero",
        "base-resource-50-mib",
        "base-resource-is-a-fifo",
        "base-resource-deep-nesting",
    ],
)
def test_hostile_input_is_refused_in_bounded_time_and_memory(repo, case_id: str):
    case = BOUNDED[case_id]
    set_up(repo, case)
    before = snapshot(repo.parent)
    run = measured("--repo", repo, "render")  # in a process of its own, a hang guarded
    assert run.code == 2, run.err
    # The bound each case meets is in its message (the nodes, the depth, the digits, the
    # bytes a file may have, a file that is not one); the work stays within it.
    assert run.read < READ_MIB * MIB, run
    assert run.peak_kib < PEAK_MIB * 1024, run
    found = parse_errors(run.err)
    for expect in case.expect:
        assert_reported(found, expect, run.err)
    assert_unchanged(before, snapshot(repo.parent))


def test_a_broken_environment_file_does_not_delete_its_tree(cli, repo):
    """An environment.yaml that cannot be read is an error, not a removed environment."""
    (repo / ENVIRONMENT_PATH).unlink()
    (repo / ENVIRONMENT_PATH).symlink_to(repo / "gone.yaml")
    overlay = repo / "deploy" / "overlays" / "prod"
    assert overlay.is_dir()
    found, err = run_bad(cli, repo, "render")
    assert_reported(found, Expect(ENVIRONMENT_PATH, 1, 1, "is a symbolic link to nothing"), err)
    assert overlay.is_dir()


@pytest.mark.parametrize("args", [("render", "--check"), ("status",)])
def test_other_readers_refuse_a_release_linked_out_of_the_repository(cli, repo, args):
    replaced(RELEASE_PATH, link_outside)(repo)
    found, err = run_bad(cli, repo, *args)
    assert_reported(found, at(1, 1, "leads outside the repository"), err)
