"""The `pagerdrill` command. Thin: parse, delegate to the core, render. One module per
command group; this one only assembles them.

Heavy modules (the targets, pydantic, redis, rich) are imported inside the commands
that need them, so `pagerdrill --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated

# Plain click help: typer's rich help formatter costs ~100 ms of imports on every
# `--help`, a third of its budget. Our own output still uses rich where it shows.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from pagerdrill import __version__
from pagerdrill.cli import drills, escalation, init, readiness, run, runbooks, scenarios, stack
from pagerdrill.cli.console import _console

app = typer.Typer(
    name="pagerdrill",
    help="Incident drills on a real stack: break it on purpose, page an engineer, "
    "time the response, keep the timeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pagerdrill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    pass


# the order here is the order `pagerdrill --help` lists them in
app.add_typer(stack.app, name="stack")
init.register(app)
app.add_typer(scenarios.app, name="scenarios")
app.add_typer(runbooks.app, name="runbooks")
app.add_typer(readiness.app, name="readiness")
run.register(app)
app.add_typer(drills.app, name="drills")
app.add_typer(escalation.app, name="escalation")


def main() -> None:
    from pagerdrill.errors import PagerdrillError

    try:
        app()
    except BrokenPipeError:
        # the reader of our output went away (`| head`): nothing more to say to it
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except PagerdrillError as exc:
        from rich.markup import escape

        _console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
