"""The `pagerdrill` command. Thin: parse, delegate to the core, render.

Heavy modules (the targets, pydantic, redis, rich) are imported inside the commands
that need them, so `pagerdrill --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

# Plain click help: typer's rich help formatter costs ~100 ms of imports on every
# `--help`, a third of its budget. Our own output still uses rich where it shows.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from pagerdrill import __version__

if TYPE_CHECKING:
    from pagerdrill.targets.base import ProgressEvent, ServiceStatus
    from pagerdrill.targets.local import LocalTarget

app = typer.Typer(
    name="pagerdrill",
    help="Incident drills on a real stack: break it on purpose, page an engineer, "
    "time the response, keep the timeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="The stack under drill: bring it up and down, look at it, and stop, start or "
    "restart its services by hand (as `docker compose` would).",
    short_help="Run the stack under drill; drive its services.",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        metavar="DIR",
        help="Workspace folder (default: the nearest one holding pagerdrill.yaml).",
        envvar="PAGERDRILL_WORKSPACE",
        show_default=False,
    ),
]
ServiceArg = Annotated[
    str, typer.Argument(metavar="SERVICE", help="Service name, e.g. api, rt, redis-cache.")
]


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


def _target(workspace: Path | None) -> LocalTarget:
    from pagerdrill.errors import BadInputError
    from pagerdrill.targets.local import LocalTarget
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace)
    if ws.config.target != "local":
        raise BadInputError(
            f"{ws.config_path}: target '{ws.config.target}' is not available yet; use target: local"
        )
    return LocalTarget(ws)


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output (scripts, CI logs) gets whole lines rather than an 80-column cut
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 200)


def _progress_printer():
    console = _console()
    marks = {
        "starting": "[dim]…[/]",
        "healthy": "[green]✓[/]",
        "running": "[green]✓[/]",
        "stopping": "[dim]…[/]",
        "stopped": "[dim]■[/]",
        "failed": "[red]✗[/]",
    }

    def show(event: ProgressEvent) -> None:
        phase = "already running" if event.phase == "running" else event.phase
        console.print(
            f"  {marks[event.phase]} {event.service:<12} {phase:<16} "
            f"[dim]{event.elapsed_s:6.2f} s[/]"
        )

    return show


def _status_table(statuses: list[ServiceStatus]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("SERVICE", "STATE", "HEALTH", "PID", "ENDPOINT", "OVERRIDES"):
        table.add_column(column)
    colours = {"healthy": "green", "unhealthy": "red", "unknown": "dim"}
    for s in statuses:
        endpoint = s.endpoints.get("http") or s.endpoints.get("redis", "")
        if "redis" in s.endpoints:  # never print the password
            from pagerdrill.redact import redact_url

            endpoint = redact_url(endpoint)
        table.add_row(
            s.name,
            s.state,
            f"[{colours[s.health]}]{s.health}[/]",
            str(s.pid or "-"),
            endpoint,
            ", ".join(s.env_overrides) or "-",
        )
    _console().print(table)


@stack_app.command("up", short_help="Start all services; wait until healthy.")
def stack_up(workspace: WorkspaceOption = None) -> None:
    """Start every service in dependency order and wait until all are healthy."""
    target = _target(workspace)
    _console().print(f"[bold]Starting the reference stack[/] [dim]({target.workspace.root})[/]")
    statuses = target.up(progress=_progress_printer())
    _status_table(statuses)


@stack_app.command("down")
def stack_down(workspace: WorkspaceOption = None) -> None:
    """Stop every service of the stack; nothing of it is left running."""
    target = _target(workspace)
    if not target.is_up():
        _console().print("The stack is not up.")
        return
    target.down(progress=_progress_printer())


@stack_app.command("status")
def stack_status(
    workspace: WorkspaceOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Each service's state, health, pid and endpoints."""
    target = _target(workspace)
    statuses = target.status()
    if json_out:
        import json

        doc = {
            "target": target.name,
            "workspace": str(target.workspace.root),
            "services": [s.to_json() for s in statuses],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    if not target.is_up():
        _console().print("The stack is not up (`pagerdrill stack up` starts it).")
        return
    _status_table(statuses)


@stack_app.command("logs")
def stack_logs(
    service: ServiceArg,
    workspace: WorkspaceOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many last lines.")] = 50,
) -> None:
    """Print a service's log (JSON lines); -f follows it."""
    target = _target(workspace)
    if follow:
        try:
            for line in target.follow_logs(service, tail=lines):
                typer.echo(line)
        except KeyboardInterrupt:
            pass
        return
    output = target.logs(service, tail=lines)
    if not output and not target.log_path(service).exists():
        _console(stderr=True).print(f"[dim]{service} has no log yet: it has not run here[/]")
    for line in output:
        typer.echo(line)


@stack_app.command("stop")
def stack_stop(service: ServiceArg, workspace: WorkspaceOption = None) -> None:
    """Stop one service (as `docker compose stop SERVICE`)."""
    _target(workspace).stop(service)
    _console().print(f"  [dim]■[/] {service} stopped")


@stack_app.command("start")
def stack_start(service: ServiceArg, workspace: WorkspaceOption = None) -> None:
    """Start one stopped service and wait until it is healthy."""
    _target(workspace).start(service, progress=_progress_printer())


def _parse_env(pairs: list[str]) -> dict[str, str]:
    from pagerdrill.errors import BadInputError

    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise BadInputError(f"--env {pair!r}: expected KEY=VALUE (KEY letters, digits, _)")
        env[key] = value
    return env


@stack_app.command("restart")
def stack_restart(
    service: ServiceArg,
    workspace: WorkspaceOption = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", metavar="KEY=VALUE", help="Override; stays until --reset-env."),
    ] = None,
    reset_env: Annotated[
        bool, typer.Option("--reset-env", help="Drop earlier overrides first.")
    ] = False,
) -> None:
    """Restart one service, optionally with environment overrides."""
    overrides = _parse_env(env or [])
    _target(workspace).restart(
        service, overrides, reset_env=reset_env, progress=_progress_printer()
    )


@stack_app.command(
    "exec",
    short_help="Run a command beside a service.",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def stack_exec(
    ctx: typer.Context,
    service: ServiceArg,
    workspace: WorkspaceOption = None,
) -> None:
    """Run a command beside a service, in its environment
    (e.g. `pagerdrill stack exec redis-cache redis-cli -a cache DBSIZE`)."""
    result = _target(workspace).exec(service, ctx.args)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    raise typer.Exit(result.returncode)


@app.command("init", short_help="Scaffold a workspace in a new folder.")
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to make into a workspace.")],
) -> None:
    """Scaffold a workspace (pagerdrill.yaml, compose/, scenarios/, runbooks/ ...)."""
    from pagerdrill.workspace import init_workspace

    written = init_workspace(directory)
    console = _console()
    console.print(f"[green]✓[/] workspace created in {directory}")
    for path in written:
        console.print(f"    {path.name}{'/' if path.is_dir() else ''}")
    console.print(f"Next: cd {directory} && pagerdrill stack up")


def main() -> None:
    from pagerdrill.errors import PagerdrillError

    try:
        app()
    except PagerdrillError as exc:
        from rich.markup import escape

        _console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
