"""`pagerdrill stack`: bring the stack under drill up and down, look at it, and drive
its services by hand."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from pagerdrill.cli.console import _console, _progress_printer, _status_table
from pagerdrill.cli.options import AllowRemoteOption, WorkspaceOption, _stack_name, _target

if TYPE_CHECKING:
    from pagerdrill.targets.base import Target

app = typer.Typer(
    help="The stack under drill: bring it up and down, look at it, and stop, start or "
    "restart its services by hand (as `docker compose` would).",
    short_help="Run the stack under drill; drive its services.",
    no_args_is_help=True,
)
ServiceArg = Annotated[
    str, typer.Argument(metavar="SERVICE", help="Service name, e.g. api, rt, redis-cache.")
]


@app.command("up", short_help="Start all services; wait until healthy.")
def stack_up(
    workspace: WorkspaceOption = None,
    traffic: Annotated[
        bool,
        typer.Option(
            "--traffic",
            help="Also run the workspace's traffic: profile in the background, until `stack down`.",
        ),
    ] = False,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Start every service in dependency order and wait until all are healthy."""
    target = _target(workspace, allow_remote_docker)
    if traffic and target.workspace.config.traffic is None:
        from pagerdrill.errors import BadInputError

        raise BadInputError(
            f"--traffic: {target.workspace.config_path} has no traffic: profile to run"
        )
    _console().print(f"[bold]Starting {_stack_name(target)}[/] [dim]({target.workspace.root})[/]")
    statuses = target.up(progress=_progress_printer())
    _status_table(statuses)
    if traffic:
        from pagerdrill.drill.engine import role_bindings
        from pagerdrill.targets.roles import RoleResolver
        from pagerdrill.traffic import start_traffic
        from pagerdrill.traffic.process import STACK_OWNER

        resolver = RoleResolver(role_bindings(target.workspace), target)
        state = start_traffic(target.workspace, resolver, owner=STACK_OWNER)
        _console().print(
            f"  [green]●[/] traffic to {state['base']} (pid {state['pid']}); "
            f"its metrics on {state['metrics']}"
        )


@app.command("down", short_help="Stop every service of the stack.")
def stack_down(
    workspace: WorkspaceOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Abort the drill holding the stack first (it reverts its faults and "
            "journals why), recover drills that stopped without closing, then go down.",
        ),
    ] = False,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Stop every service of the stack; nothing of it is left running. Refused (exit 2)
    while a drill holds the stack, unless --force."""
    import getpass

    from pagerdrill.drill.stackhold import held_for

    target = _target(workspace, allow_remote_docker)
    with held_for(target, "stack down", force=force, by=getpass.getuser()):
        from pagerdrill.traffic import stop_traffic

        if stop_traffic(target.workspace):
            _console().print("  [dim]■[/] traffic stopped")
        if not target.is_up():
            _console().print("The stack is not up.")
            return
        target.down(progress=_progress_printer())


def _warn_if_drilled(target: Target, what: str) -> None:
    """A change by hand during a drill is allowed (it may be the engineer's mitigation),
    but never silent: it names the drill it lands in."""
    from pagerdrill.drill.stackhold import drill_holder
    from pagerdrill.journal import holder_text

    holder = drill_holder(target.workspace.state_dir)
    if holder is not None and not holder.get("command"):
        who = holder_text(holder) if holder else "a drill"
        _console(stderr=True).print(f"[yellow]note:[/] {what} lands in {who}, holding the stack")


@app.command("status")
def stack_status(
    workspace: WorkspaceOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Each service's state, health, pid and endpoints."""
    target = _target(workspace, allow_remote_docker)
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


@app.command("logs")
def stack_logs(
    service: ServiceArg,
    workspace: WorkspaceOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many last lines.")] = 50,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Print a service's log (JSON lines); -f follows it."""
    target = _target(workspace, allow_remote_docker)
    if follow:
        try:
            for line in target.follow_logs(service, tail=lines):
                typer.echo(line)
        except KeyboardInterrupt:
            pass
        return
    output = target.logs(service, tail=lines)
    log_path = getattr(target, "log_path", None)
    if not output and (log_path is None or not log_path(service).exists()):
        _console(stderr=True).print(f"[dim]{service} has no log yet: it has not run here[/]")
    for line in output:
        typer.echo(line)


@app.command("stop")
def stack_stop(
    service: ServiceArg,
    workspace: WorkspaceOption = None,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Stop one service (as `docker compose stop SERVICE`)."""
    target = _target(workspace, allow_remote_docker)
    _warn_if_drilled(target, f"stopping {service}")
    target.stop(service)
    _console().print(f"  [dim]■[/] {service} stopped")


@app.command("start")
def stack_start(
    service: ServiceArg,
    workspace: WorkspaceOption = None,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Start one stopped service and wait until it is healthy."""
    target = _target(workspace, allow_remote_docker)
    _warn_if_drilled(target, f"starting {service}")
    target.start(service, progress=_progress_printer())


def _parse_env(pairs: list[str]) -> dict[str, str]:
    from pagerdrill.errors import BadInputError

    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise BadInputError(f"--env {pair!r}: expected KEY=VALUE (KEY letters, digits, _)")
        env[key] = value
    return env


@app.command("restart")
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
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Restart one service, optionally with environment overrides. On a compose stack,
    an override (or --reset-env) recreates the service's container."""
    overrides = _parse_env(env or [])
    target = _target(workspace, allow_remote_docker)
    _warn_if_drilled(target, f"restarting {service}")
    target.restart(service, overrides, reset_env=reset_env, progress=_progress_printer())


@app.command(
    "exec",
    short_help="Run a command beside a service.",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def stack_exec(
    ctx: typer.Context,
    service: ServiceArg,
    command: Annotated[
        list[str],
        typer.Argument(metavar="COMMAND", help="The command to run and its arguments."),
    ],
    workspace: WorkspaceOption = None,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Run a command beside a service, in its environment (in its container on a compose
    stack), e.g. `pagerdrill stack exec redis-cache redis-cli -a cache DBSIZE`."""
    result = _target(workspace, allow_remote_docker).exec(service, [*command, *ctx.args])
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    raise typer.Exit(result.returncode)
