"""`lint` of small input with two jobs: a forked copy validates while this process runs the
rules, and the report is the one a single process makes."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from meshcanary import lint, validating
from meshcanary.inputs import read_documents
from meshcanary.manifest import Parsed, parse_documents
from meshcanary.report import Status
from meshcanary.validate import Options
from meshcanary.validate.embedded import EmbeddedValidator
from tests.support import ARTICLE, BOOKINFO, DATA, ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the copy is forked")

FIXTURES = DATA / "kubeconform" / "fixtures"
# Kinds with a schema, one without (HTTPProxy), findings of the rules and of the schemas,
# a CRD's schema given with --crd, and a file that cannot be read.
INPUTS = (ARTICLE, BOOKINFO, FIXTURES, "missing.yaml")
# Each set of options, on the command line and as the validator's.
OPTIONS = {
    "defaults": ((), Options()),
    "strict": (("--strict",), Options(strict=True)),
    "skip": (
        ("--skip", "Service,networking.istio.io/v1/VirtualService"),
        Options(skip=("Service", "networking.istio.io/v1/VirtualService")),
    ),
    "reject": (("--reject", "Deployment"), Options(reject=("Deployment",))),
    "ignore-missing": (("--ignore-missing-schemas",), Options(ignore_missing_schemas=True)),
    "ignore-missing-skip-policies": (
        ("--ignore-missing-schemas", "--skip", "Gateway", "--policies", str(ROOT / "policies")),
        Options(ignore_missing_schemas=True, skip=("Gateway",)),
    ),
}


@pytest.fixture
def validated_where(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where each `Validating` got its verdicts: from the copy, or made here after all."""
    where: list[str] = []
    result = validating.Validating.result
    validate = EmbeddedValidator.validate
    parent = os.getpid()

    here: list[int] = []

    def recorded(self: validating.Validating) -> list:  # type: ignore[type-arg]
        before = len(here)
        verdicts = result(self)
        where.append("here" if len(here) > before else "copy")
        return verdicts

    def counted(self: EmbeddedValidator, resource):  # type: ignore[no-untyped-def]
        if os.getpid() == parent:
            here.append(1)
        return validate(self, resource)

    monkeypatch.setattr(validating.Validating, "result", recorded)
    monkeypatch.setattr(EmbeddedValidator, "validate", counted)
    return where


@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.parametrize("output", ["text", "json"])
def test_two_jobs_report_what_one_does(
    cli, output: str, name: str, validated_where: list[str]
) -> None:
    options, _ = OPTIONS[name]
    alone = cli("lint", "-o", output, "--jobs", "1", *options, *INPUTS)
    assert validated_where == []
    beside = cli("lint", "-o", output, "--jobs", "2", *options, *INPUTS)
    assert validated_where == ["copy"]
    assert alone.code == 2  # the file that cannot be read, among the findings
    assert (beside.code, beside.out, beside.err) == (alone.code, alone.out, alone.err)


def test_a_killed_copy_leaves_the_validation_to_this_process(
    cli, monkeypatch: pytest.MonkeyPatch, validated_where: list[str]
) -> None:
    alone = cli("lint", "-o", "json", "--jobs", "1", *INPUTS)
    parent = os.getpid()
    validate = EmbeddedValidator.validate

    def dying(self: EmbeddedValidator, resource):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return validate(self, resource)

    monkeypatch.setattr(EmbeddedValidator, "validate", dying)
    beside = cli("lint", "-o", "json", "--jobs", "2", *INPUTS)
    assert validated_where == ["here"]
    assert (beside.code, beside.out, beside.err) == (alone.code, alone.out, alone.err)


CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: 5}}}
"""


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("not-json", "service-v1.json:1:2: error: not JSON: Expecting property name"),
        ("not-a-schema", "service-v1.json:1:1: error: not a usable JSON Schema: 5 is not valid"),
        ("crd", "widgets.yaml:1:1: error: not a usable JSON Schema: 5 is not valid"),
    ],
)
def test_an_error_in_the_copy_is_met_again_here(
    cli, tmp_path: Path, given: str, error: str
) -> None:
    """A schema the user gave that the copy cannot use (a --schema-location file, a --crd)
    stops the run with the error a single process gives (bad input, said at its place), not
    with a report that lacks its verdicts."""
    if given == "crd":
        (tmp_path / "widgets.yaml").write_text(CRD, encoding="utf-8")
        widget = tmp_path / "widget.yaml"
        widget.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n")
        args: tuple[str, ...] = ("--crd", str(tmp_path / "widgets.yaml"), str(widget))
    else:
        schema = "{not json" if given == "not-json" else '{"type": 5}'
        (tmp_path / "service-v1.json").write_text(schema, encoding="utf-8")
        location = str(tmp_path / "{{ .ResourceKind }}{{ .KindSuffix }}.json")
        args = ("--schema-location", location, str(ARTICLE / "micro-api.yaml"))
    alone = cli("lint", "--jobs", "1", *args)
    beside = cli("lint", "--jobs", "2", *args)
    assert alone.code == 2
    assert error in alone.err
    assert "Traceback" not in alone.err
    assert (beside.code, beside.out, beside.err) == (alone.code, alone.out, alone.err)


@pytest.mark.parametrize("name", OPTIONS)
def test_what_is_skipped_is_told_without_compiling_a_schema(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jsonschema_rs

    read, _ = read_documents([str(p) for p in INPUTS[:-1]])
    parsed = Parsed()
    parse_documents(read.documents, parsed)
    validator = EmbeddedValidator(OPTIONS[name][1])

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled a schema")

    monkeypatch.setattr(jsonschema_rs, "validator_for", refused)
    skipped = [validator.skips(r) for r in parsed.resources]
    monkeypatch.undo()
    statuses = [validator.validate(r).status for r in parsed.resources]
    assert skipped == [s is Status.SKIPPED for s in statuses]
    assert Status.VALID in statuses
    assert any(skipped) is ("skip" in name or "ignore" in name)


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The copies this process forks."""
    pids: list[int] = []
    fork = os.fork

    def recorded_fork() -> int:
        pid = fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded_fork)
    return pids


@pytest.mark.parametrize("where", ["parse", "rules"])
def test_a_run_stopped_before_the_verdicts_stops_the_copy_and_validates_nothing_more(
    cli, monkeypatch: pytest.MonkeyPatch, validated_where: list[str], forked: list[int], where: str
) -> None:
    """An error in the parse or the rules (or Ctrl-C) ends the run at once: the copy is
    stopped and waited for, and this process does not validate what the copy would have."""
    from meshcanary import rules

    def failing(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    if where == "parse":
        monkeypatch.setattr(lint, "parse_documents", failing)
    else:
        monkeypatch.setattr(rules, "run", failing)
    assert cli("lint", "--jobs", "2", *INPUTS).code == 130  # as after Ctrl-C
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):  # waited for already: no such child left
        os.waitpid(forked[0], os.WNOHANG)
    assert validated_where == []  # no verdicts were asked for, here or of the copy


def many_services(folder: Path, count: int) -> Path:
    """`count` Services in one file: more than a pipe holds once parsed (64 KiB)."""
    path = folder / "services.yaml"
    path.write_text(
        "".join(
            f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{n}, namespace: a}}\n"
            f"spec:\n  selector: {{app: s{n}}}\n  ports:\n  - {{name: http, port: 80}}\n"
            for n in range(count)
        ),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("how", ["gone before the objects", "objects marshal refuses"])
def test_objects_the_copy_cannot_have_are_validated_here(
    cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    validated_where: list[str],
    forked: list[int],
    how: str,
) -> None:
    """The copy is forked before the parse and sent the parsed objects: when it has gone by
    then (its pipe is closed), or the objects cannot be sent, this process validates them."""
    import marshal

    services = many_services(tmp_path, 2000)
    args = ("lint", "-o", "json", str(services), *map(str, INPUTS))
    alone = cli(*args, "--jobs", "1")
    if how == "gone before the objects":

        def gone(*args: object) -> None:
            os._exit(1)

        monkeypatch.setattr(validating, "_validate_sent", gone)
    else:
        dumps = marshal.dumps

        def refusing(value: object, *args: int) -> bytes:
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], list):
                raise ValueError("unmarshallable object")  # the documents and objects
            return dumps(value, *args)

        monkeypatch.setattr(marshal, "dumps", refusing)
    beside = cli(*args, "--jobs", "2")
    assert validated_where == ["here"]
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):  # waited for already: no such child left
        os.waitpid(forked[0], os.WNOHANG)
    assert (beside.code, beside.out, beside.err) == (alone.code, alone.out, alone.err)
    assert json.loads(beside.out)["summary"]["valid"] > 2000  # the Services among them


@pytest.mark.parametrize("given", ["nothing to validate", "input for workers"])
def test_a_copy_the_input_is_not_for_is_stopped(
    cli,
    monkeypatch: pytest.MonkeyPatch,
    validated_where: list[str],
    forked: list[int],
    given: str,
) -> None:
    """The CLI forks the copy before it has read the input: when the input turns out to hold
    no document, or enough text for worker processes, the copy is stopped and waited for
    before the run goes on without it."""
    if given == "nothing to validate":
        args: tuple[str, ...] = ("missing.yaml",)  # a problem, and no document
        then = "parse_documents"
    else:
        monkeypatch.setattr(lint, "PARALLEL_MIN_BYTES", 1)
        args = tuple(map(str, INPUTS))
        then = "_in_workers"
    alone = cli("lint", "-o", "json", "--jobs", "1", *args)
    going_on = getattr(lint, then)
    alive: list[bool] = []

    def recorded(*args: object) -> object:
        try:
            alive.append(os.waitpid(forked[0], os.WNOHANG) == (0, 0))
        except ChildProcessError:
            alive.append(False)
        return going_on(*args)

    monkeypatch.setattr(lint, then, recorded)
    beside = cli("lint", "-o", "json", "--jobs", "2", *args)
    assert alive == [False]  # stopped before the run went on
    assert (beside.code, beside.out, beside.err) == (alone.code, alone.out, alone.err)
    assert validated_where == []  # no verdicts of a copy were asked for
    assert forked  # the copy (and, for workers, the pool's processes)
    for pid in forked:
        with pytest.raises(ChildProcessError):  # waited for already: no such child left
            os.waitpid(pid, os.WNOHANG)


def test_called_without_the_cli_the_copy_is_forked_after_the_read(
    validated_where: list[str], forked: list[int]
) -> None:
    """A library caller gets the copy too: forked once the input is read, as it is parsed."""
    from meshcanary.commands import lint as command
    from meshcanary.lint import LintOptions

    paths = [str(p) for p in INPUTS]
    alone = command.lint(paths, LintOptions(jobs=1))
    assert validated_where == [] and forked == []
    beside = command.lint(paths, LintOptions(jobs=2))
    assert validated_where == ["copy"] and len(forked) == 1
    assert beside == alone
