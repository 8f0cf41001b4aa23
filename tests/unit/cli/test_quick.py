"""The quick path reads `lint` and `check` exactly as Typer does, or leaves them to Typer.

The parsing test records what each reader hands to the code both call (`settle`, and
`judge.lint` / `judge.check`) in place of running it: a spy standing between two real
parsers, so that thousands of argument lists run in seconds. The runs further down go all
the way, once each way, and compare what a user sees.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.core import TyperOption
from typer.testing import CliRunner

from meshcanary.__main__ import main
from meshcanary.cli import app as app_module
from meshcanary.cli import judge, quick
from meshcanary.cli.app import app
from tests.support import ROOT, Outcome


def _declared(command: Any) -> set[tuple[str, frozenset[str], bool, bool]]:
    """Each option of a click command: where it goes, its names, flag or not, repeatable."""
    return {
        (p.name, frozenset(p.opts + p.secondary_opts), bool(p.is_flag), bool(p.multiple))
        for p in command.params
        if isinstance(p, TyperOption)
        and not set(p.opts) & {"--help", "--version", "-V"}
        and "completion" not in p.name
    }


def _table(options: tuple[quick.Option, ...]) -> set[tuple[str, frozenset[str], bool, bool]]:
    return {(o.dest, frozenset(o.names), o.convert is None, o.many) for o in options}


def test_the_table_is_the_typer_apps() -> None:
    group = typer.main.get_command(app)
    assert _table(quick.PROGRAM) == _declared(group)
    for name, options in quick.COMMANDS.items():
        assert _table(options) == _declared(group.commands[name]), name  # type: ignore[attr-defined]


def test_every_environment_variable_typer_reads_sends_the_run_to_typer() -> None:
    group = typer.main.get_command(app)
    commands = [group, *(group.commands[n] for n in quick.COMMANDS)]  # type: ignore[attr-defined]
    read = {p.envvar for c in commands for p in c.params if p.envvar}
    assert read == set(quick.ENVIRONMENT)


# Arguments people and pre-commit give, good and bad.
_VALUES = ["text", "json", "JSON", "sarif", "embedded", "kubeconform", "error", "warning",
           "1", "2", "0", "04", "auto", "1/2", "3/2", "x", "", "-", "-x", "a.yaml", "repo",
           "1.31.0", "1.5", "900", "0.5", "main"]  # fmt: skip
_TOKENS = ["a.yaml", "b/c.yml", "-", "--", "repo", "--help", "-h", "--bogus", "-x", "-ojson",
           "--format=json", "--summary=1", "-q", "-C"]  # fmt: skip


@st.composite
def _arguments(draw: st.DrawFn) -> list[str]:
    args: list[str] = []
    for option in draw(st.lists(st.sampled_from(quick.PROGRAM), max_size=3)):
        args.append(draw(st.sampled_from(option.names)))
        if option.convert is not None:
            args.append(draw(st.sampled_from(_VALUES)))
    args.append(draw(st.sampled_from([*quick.COMMANDS, "lnt", "rules"])))
    options = quick.COMMANDS.get(args[-1], quick.COMMANDS["lint"])
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 3)) == 0:
            args.append(draw(st.sampled_from(_TOKENS)))
            continue
        option = draw(st.sampled_from(options))
        name = draw(st.sampled_from(option.names))
        if option.convert is None:
            args.append(name)
            continue
        value = draw(st.sampled_from(_good(option) if draw(st.booleans()) else _VALUES))
        if name.startswith("--") and draw(st.booleans()):
            args.append(f"{name}={value}")
        else:
            args += [name, value]
    return args


def _good(option: quick.Option) -> list[str]:
    """The sample values the quick path takes for `option` (whether Typer agrees is what the
    test asks)."""
    good = []
    for value in _VALUES:
        try:
            option.convert(value)  # type: ignore[misc]
        except Exception:  # noqa: S112 - any refusal: not a good value
            continue
        good.append(value)
    return good or _VALUES


class _Spy:
    """What a reader hands on: the program's settings and the command's arguments."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

        def settle(repo: Any, **options: Any) -> list[Any]:
            self.calls.append(("settle", {"repo": repo, **options}))
            return []

        def command(name: str) -> Any:
            def record(paths: Any, **options: Any) -> int:
                self.calls.append((name, {"paths": paths or None, **options}))
                return 0

            return record

        monkeypatch.setattr(app_module, "settle", settle)
        monkeypatch.setattr(quick, "settle", settle)
        for name in quick.COMMANDS:
            monkeypatch.setattr(judge, name, command(name))


def _normal(calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    # A repeatable option not given: Typer passes an empty list or None, the same to the
    # commands (`or ()`).
    return [(name, {k: (v or None) if isinstance(v, list) else v for k, v in values.items()})
            for name, values in calls]  # fmt: skip


@settings(max_examples=800, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=_arguments())
def test_what_it_reads_is_what_typer_passes(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "repo").mkdir(exist_ok=True)
    for name in quick.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    spy = _Spy(monkeypatch)
    reading = quick.read(args)
    if reading is None:
        return
    quick.run(reading)
    ours = _normal(spy.calls)
    spy.calls.clear()
    result = CliRunner().invoke(app, args, prog_name="meshcanary")
    assert (result.exit_code, result.output) == (0, ""), args
    assert ours == _normal(spy.calls), args


@pytest.mark.parametrize(
    "args",
    [
        ["lint", "a.yaml"],
        ["-q", "-C", "repo", "check", "--staged", "environments/prod/a.yaml"],
        ["--timeout", "30", "lint", "--format=json", "-k", "1.31.0", "--", "-x.yaml"],
        ["check", "-j", "2", "--shard", "1/2", "--skip", "Secret", "--skip", "ConfigMap"],
    ],
)
def test_the_hook_and_plain_runs_are_read(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "repo").mkdir()
    for name in quick.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert quick.read(args) is not None


@pytest.mark.parametrize(
    "args",
    [
        ["lint", "--help"],
        ["lint", "--summary=yes", "a.yaml"],
        ["lint", "-ojson", "a.yaml"],
        ["lint", "--format", "JSON"],
        ["lint", "--format", "json", "--format", "text"],
        ["check", "--jobs", "0"],
        ["check", "--jobs", "04"],
        ["check", "--shard", "3/2"],
        ["--timeout", "0.5", "check"],
        ["-C", "no-such-folder", "check"],
        ["-C", "file", "check"],
        ["check", "--base"],
        ["check", "--base", "--staged"],
        ["lint", "-x"],
        ["rules"],
        ["--", "lint"],
    ],
)
def test_anything_unsure_is_left_to_typer(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    assert quick.read(args) is None


@pytest.mark.parametrize("variable", quick.ENVIRONMENT)
def test_a_run_with_the_programs_environment_is_left_to_typer(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "")
    assert quick.read(["lint", "a.yaml"]) is None


def _both_ways(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[Outcome, Outcome]:
    outcomes = []
    for way in ("quick", "typer"):
        if way == "typer":
            monkeypatch.setattr(quick, "read", lambda args: None)
        capsys.readouterr()
        code = main(args)
        captured = capsys.readouterr()
        outcomes.append(Outcome(code, captured.out, captured.err))
    return outcomes[0], outcomes[1]


_ARTICLE = ROOT / "examples" / "article"


@pytest.mark.parametrize(
    "args",
    [
        ["lint", str(_ARTICLE), "--summary"],
        ["lint", "--format", "json", str(_ARTICLE / "micro-api.yaml")],
        ["-q", "lint", "--fail-on", "warning", str(_ARTICLE / "micro-api.yaml")],
        ["lint", "--no-rules", "--strict", "--summary", str(_ARTICLE / "micro-api.yaml")],
        ["lint", "no/such/file.yaml"],
        ["check", "--format", "sarif"],
        ["check", "environments/staging/micro-api.yaml", "--no-base", "--summary"],
        ["check", "../outside.yaml"],
    ],
)
def test_a_run_shows_the_same_either_way(
    args: list[str],
    example_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(example_repo)
    assert quick.read(args) is not None
    through_quick, through_typer = _both_ways(args, monkeypatch, capsys)
    assert through_quick == through_typer
    assert through_quick.out or through_quick.err


def test_lint_of_a_file_does_not_import_typer() -> None:
    script = (
        "import sys\n"
        "from meshcanary.__main__ import main\n"
        f"code = main(['lint', {str(_ARTICLE / 'micro-api.yaml')!r}])\n"
        "print(code, 'typer' in sys.modules)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert ran.stdout.splitlines()[-1] == "1 False", ran.stderr


@pytest.mark.parametrize("way", ["quick", "typer"])
def test_a_reader_that_goes_away_ends_the_run_with_1_and_nothing_more(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `| head`: the report is written to a pipe nobody reads. MESHCANARY_TIMEOUT sends the
    # run to Typer, whose handling the quick path copies.
    if way == "typer":
        monkeypatch.setenv("MESHCANARY_TIMEOUT", "900")
    else:
        monkeypatch.delenv("MESHCANARY_TIMEOUT", raising=False)
    command = [sys.executable, "-m", "meshcanary", "lint", str(_ARTICLE / "micro-api.yaml")]
    ran = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert ran.stdout is not None and ran.stderr is not None
    ran.stdout.close()
    errors = ran.stderr.read()
    assert (ran.wait(), errors) == (1, b"")
