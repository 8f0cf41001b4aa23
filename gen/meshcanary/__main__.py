"""Entry point: `python -m meshcanary` and the `meshcanary` console script."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

# Options of the program, not of a command; those that take a value.
_GLOBAL_VALUES = {"-C", "--repo", "--timeout", "--kustomize"}
_GLOBAL_FLAGS = {"--allow-remote", "-V", "--version", "--help", "--quiet", "-q"}


def hoisted(args: list[str]) -> list[str]:
    """`args` with `-C DIR` / `--repo DIR` given after the command moved before it.

    A pre-commit hook's `args: [-C, platform/releases]` land after the command. Nothing
    after `--` is touched.
    """
    index = 0
    while index < len(args):  # the global options before the command
        arg = args[index]
        if arg in _GLOBAL_VALUES:
            index += 2
        elif arg in _GLOBAL_FLAGS or arg.startswith(tuple(f"{o}=" for o in _GLOBAL_VALUES)):
            index += 1
        else:
            break
    head, rest = args[: index + 1], args[index + 1 :]
    moved: list[str] = []
    kept: list[str] = []
    position = 0
    while position < len(rest):
        arg = rest[position]
        if arg == "--":
            kept += rest[position:]
            break
        if arg in ("-C", "--repo") and position + 1 < len(rest):
            moved += [arg, rest[position + 1]]
            position += 2
            continue
        if arg.startswith("--repo=") or (arg.startswith("-C") and len(arg) > 2):
            moved.append(arg)
        else:
            kept.append(arg)
        position += 1
    if not moved or index >= len(args):
        return args
    return [*head[:-1], *moved, head[-1], *kept]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code: 0 clean, 1 findings or stale, 2 bad input."""
    args = hoisted(list(sys.argv[1:] if argv is None else argv))
    if args in (["--version"], ["-V"]):
        # Answer without importing the CLI stack: start-up time is felt in every hook run.
        from meshcanary import __version__

        print(f"meshcanary {__version__}")
        return 0
    # A run builds many long-lived objects (parsed files, rendered trees) and almost no
    # cycles; the collector's default of a pass every 700 allocations costs 20 % at scale.
    gc.set_threshold(50_000, 20, 100)
    from meshcanary.cli import quick
    from meshcanary.errors import MeshcanaryError

    try:
        # lint and check, the pre-commit hook among them, without Typer when their
        # arguments are plain to see; everything else, and anything unsure, through Typer.
        reading = quick.read(args)
        if reading is not None:
            return quick.run(reading)
        from meshcanary.cli.app import for_args

        for_args(args)(args=args, prog_name="meshcanary")
    except SystemExit as exc:
        # Typer (click) ends every run this way: usage errors with 2, commands with their code.
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except MeshcanaryError as exc:
        print(_shown(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


def _shown(exc: Exception) -> str:
    """The error's text, its files shown relative to the git work tree as reports show them."""
    from dataclasses import replace

    from meshcanary.cli.common import Settings
    from meshcanary.errors import MeshcanaryError

    assert isinstance(exc, MeshcanaryError)  # noqa: S101 - only those reach here
    workspace = Settings.workspace
    if not exc.problems or workspace is None:
        return exc.text
    located = [
        replace(
            p, location=replace(p.location, file=workspace.shown(p.location.file, Settings.base))
        )
        for p in exc.problems
    ]
    return "\n".join(p.format() for p in located)


def run() -> None:
    from meshcanary import lifetime

    lifetime.LEAVING = True
    code = main()
    leave(code)
    raise SystemExit(code)


def leave(code: int) -> None:
    """End the process with `code` without tearing the interpreter down, when that is safe.

    Freeing every module and every object the run made, one at a time, took 13 ms after
    `lint` of 500 resources and 23 ms after `lint --jobs 1` of one file: a tenth of its time
    (mypy leaves the same way). The exit handlers still run (temporary folders, process pools; once: running them clears
    them), and the output is flushed before and after them. Returns, for an ordinary exit,
    when a thread that is not a daemon still runs (the interpreter waits for it), when the
    output cannot be flushed (the interpreter reports it as it always has), or on an
    interpreter without the handlers' runner.
    """
    import atexit
    import os
    import threading

    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    main_thread = threading.main_thread()
    running = [
        t for t in threading.enumerate() if t is not main_thread and t.is_alive() and not t.daemon
    ]
    if run_handlers is None or running or not _flushed():
        return
    run_handlers()
    if _flushed():
        os._exit(code)


def _flushed() -> bool:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return False
    return True


if __name__ == "__main__":
    run()
