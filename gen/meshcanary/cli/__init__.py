"""The command line: options in, one call into the core, an exit code out.

Only this package knows about Typer and prints. `app` makes the Typer app and registers the
commands; `quick` runs `lint` and `check` without Typer when their arguments are plain to
see. This file imports nothing, so that importing either costs only what it uses.
"""
