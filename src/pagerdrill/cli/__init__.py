"""The `pagerdrill` command. Thin: parse, delegate to the core, render.

Heavy modules (the targets, pydantic, redis, rich) are imported inside the commands
that need them, so `pagerdrill --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

# Plain click help: typer's rich help formatter costs ~100 ms of imports on every
# `--help`, a third of its budget. Our own output still uses rich where it shows.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from pagerdrill import __version__
from pagerdrill.cli import escalation
from pagerdrill.cli.options import WorkspaceOption
from pagerdrill.cli.readiness import app as readiness_app
from pagerdrill.cli.runbooks import app as runbooks_app

if TYPE_CHECKING:
    from pagerdrill.targets.base import ProgressEvent, ProjectTarget, ServiceStatus, Target

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

ServiceArg = Annotated[
    str, typer.Argument(metavar="SERVICE", help="Service name, e.g. api, rt, redis-cache.")
]
ALLOW_REMOTE_HELP = (
    "Drive a Docker Engine that is not local (DOCKER_HOST over TCP/SSH, a docker context "
    "other than default). Refused without this flag."
)
AllowRemoteOption = Annotated[
    bool, typer.Option("--allow-remote-docker", help=ALLOW_REMOTE_HELP, show_default=False)
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


def _target(workspace: Path | None, allow_remote_docker: bool = False) -> Target:
    from pagerdrill.targets import open_target
    from pagerdrill.workspace import open_workspace

    return open_target(open_workspace(workspace), allow_remote_docker=allow_remote_docker)


def _stack_name(target: Target) -> str:
    if target.name == "compose":
        return f"compose project {cast('ProjectTarget', target).project}"
    return "the reference stack"


class _TrimmedLines:
    """A stream that drops the spaces rich pads each line with: piped output is read by
    scripts and diffs, where trailing blanks are noise."""

    def __init__(self, stream):
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.stream.write(line.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.write(self.pending)  # a line not yet ended is written as it is
        self.pending = ""
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()


def _console(stderr: bool = False):
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # a reader that went away (`run ... | tee` stopped by Ctrl-C) must not end a
            # drill mid-revert (rich raises SystemExit here): later output is dropped
            self.quiet = True
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.file.fileno())
                os.close(devnull)

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return _Console(stderr=stderr, highlight=False)
    # piped output (scripts, CI logs) gets whole lines rather than an 80-column cut, each
    # as long as its content
    from typing import IO, cast

    return _Console(file=cast(IO[str], _TrimmedLines(stream)), highlight=False, width=200)


def _progress_printer(stderr: bool = False):
    console = _console(stderr=stderr)
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
            from pagerdrill.journal.redact import redact_url

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
def stack_up(
    workspace: WorkspaceOption = None, allow_remote_docker: AllowRemoteOption = False
) -> None:
    """Start every service in dependency order and wait until all are healthy."""
    target = _target(workspace, allow_remote_docker)
    _console().print(f"[bold]Starting {_stack_name(target)}[/] [dim]({target.workspace.root})[/]")
    statuses = target.up(progress=_progress_printer())
    _status_table(statuses)


@stack_app.command("down", short_help="Stop every service of the stack.")
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


@stack_app.command("status")
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


@stack_app.command("logs")
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


@stack_app.command("stop")
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


@stack_app.command("start")
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
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Restart one service, optionally with environment overrides. On a compose stack,
    an override (or --reset-env) recreates the service's container."""
    overrides = _parse_env(env or [])
    target = _target(workspace, allow_remote_docker)
    _warn_if_drilled(target, f"restarting {service}")
    target.restart(service, overrides, reset_env=reset_env, progress=_progress_printer())


@stack_app.command(
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


@app.command("init", short_help="Scaffold a workspace in a new folder.")
def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Folder to make into a workspace.")
    ],
) -> None:
    """Scaffold a workspace (pagerdrill.yaml, compose/, scenarios/, runbooks/ ...)."""
    from pagerdrill.workspace import init_workspace

    written = init_workspace(directory)
    console = _console()
    console.print(f"[green]✓[/] workspace created in {directory}")
    for path in written:
        console.print(f"    {path.name}{'/' if path.is_dir() else ''}")
    console.print(f"Next: cd {directory} && pagerdrill stack up")


# ------------------------------------------------------------------ scenarios

scenarios_app = typer.Typer(
    help="The drill scenarios of the workspace (scenarios/*.yaml).",
    short_help="List, show and validate drill scenarios.",
    no_args_is_help=True,
)
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(runbooks_app, name="runbooks")
app.add_typer(readiness_app, name="readiness")


def _workspace_or_none(workspace: Path | None):
    from pagerdrill.errors import WorkspaceNotFound
    from pagerdrill.workspace import open_workspace

    try:
        return open_workspace(workspace)
    except WorkspaceNotFound:
        if workspace is not None:
            raise
        return None


REVEAL_HELP = "Also show the faults, signals, alerts, recovery, root cause and answer key."


def _drill_length(m) -> str:
    return (
        f"the page comes {m.quiet.min_s:g}-{m.quiet.max_s:g} s after the stack is steady; "
        f"the drill stops {m.max_duration_s / 60:g} min after the page"
    )


@scenarios_app.command("list", short_help="The scenarios, their severity and roles.")
def scenarios_list(
    workspace: WorkspaceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    reveal: Annotated[bool, typer.Option("--reveal", help="Also list each one's faults.")] = False,
) -> None:
    """Every scenario in the workspace, with its severity and the roles it needs. What
    each one breaks stays hidden unless --reveal (someone may drill it)."""
    import json

    from pagerdrill.errors import ConfigError
    from pagerdrill.scenarios.model import load_scenario, scenario_files
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace)
    rows: list[dict] = []
    for path in scenario_files(ws.root):
        try:
            sc = load_scenario(path)
        except ConfigError as exc:
            rows.append({"name": path.stem, "error": str(exc).splitlines()[0]})
            continue
        m = sc.model
        row = {"name": sc.name, "title": m.title, "severity": m.severity, "roles": list(m.roles)}
        if reveal:
            row["faults"] = [f.kind for f in m.faults]
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ["NAME", "SEVERITY", "TITLE", "ROLES", *(["FAULTS"] if reveal else [])]
    for column in columns:
        table.add_column(column)
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], "[red]invalid[/]", r["error"], *[""] * (len(columns) - 3))
        else:
            cells = [r["name"], r["severity"], r["title"], ", ".join(r["roles"])]
            table.add_row(*cells, *([", ".join(r["faults"])] if reveal else []))
    _console().print(table)


@scenarios_app.command(
    "show", short_help="A scenario's symptom and roles; --reveal for what it breaks."
)
def scenarios_show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Scenario name (file stem) or path.")],
    workspace: WorkspaceOption = None,
    reveal: Annotated[bool, typer.Option("--reveal", help=REVEAL_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """What a trainee may know before a drill: title, severity, symptom, the roles it
    needs and how long it runs. What it breaks, how it shows and recovers, the cause and
    the answer key stay hidden unless --reveal (someone may drill it)."""
    import json

    from pagerdrill.scenarios.model import find_scenario, load_scenario
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace)
    sc = load_scenario(find_scenario(ws.root, name))
    m = sc.model
    if as_json:
        doc: dict = {
            "name": sc.name,
            "file": str(sc.path),
            "title": m.title,
            "severity": m.severity,
            "symptom": m.symptom.strip(),
            "roles": list(m.roles),
            "quiet_s": [m.quiet.min_s, m.quiet.max_s],
            "max_duration_s": m.max_duration_s,
        }
        if reveal:
            doc.update(
                params=sc.params,
                faults=[{"id": f.id, "kind": f.kind, "role": f.role, **f.params} for f in m.faults],
                probes=[p.model_dump(exclude_defaults=True) for p in m.probes],
                alerts=[a.model_dump() for a in m.alerts],
                recovery=m.recovery.model_dump(),
                decision=m.decision.model_dump() if m.decision else None,
                mitigations=[x.model_dump(exclude_defaults=True) for x in m.mitigations],
                hints=[h.model_dump(exclude_defaults=True) for h in m.hints],
                root_cause=m.root_cause.strip(),
                hypotheses=m.hypotheses.model_dump(),
                answer=m.answer.model_dump(),
            )
        typer.echo(json.dumps(doc, indent=2))
        return
    c = _console()
    c.print(f"[bold]{m.title}[/]  ({sc.name}, {m.severity})")
    c.print(f"[dim]{sc.path}[/]\n")
    c.print("[bold]Symptom[/] (what the engineer is told)")
    c.print(f"  {m.symptom.strip()}\n")
    c.print(f"[bold]Roles[/]   {', '.join(m.roles)}")
    c.print(f"[bold]Length[/]  {_drill_length(m)}")
    if not reveal:
        c.print("\n[dim](faults, signals, alerts, recovery, root cause and answer key hidden; "
                "--reveal shows them)[/]")  # fmt: skip
        return
    if sc.params:
        c.print("[bold]Params[/]  " + ", ".join(f"{k}={v}" for k, v in sc.params.items()))
    c.print("[bold]Faults[/]")
    for f in m.faults:
        extra = ", ".join(f"{k}={v}" for k, v in f.params.items())
        timing = f"at +{f.at_s:g} s" + (f" for {f.duration_s:g} s" if f.duration_s else "")
        c.print(f"  {f.id}: {f.kind} on {f.role} {timing}" + (f" ({extra})" if extra else ""))
    c.print("[bold]Probes[/]")
    for p in m.probes:
        what = p.metric or p.path or ""
        c.print(f"  {p.name}: {p.kind} on {p.role} {what}".rstrip())
    c.print("[bold]Alerts[/]")
    for a in m.alerts:
        c.print(f"  {a.name}: {a.expr} for {a.for_s:g} s" + (" (pages)" if a.page else ""))
    c.print(f"[bold]Recovery[/] {' and '.join(m.recovery.all)} for {m.recovery.for_s:g} s")
    if m.decision:
        c.print(f"[bold]Decision[/] {m.decision.prompt}")
    if m.mitigations:
        c.print("[bold]Mitigations[/] " + ", ".join(x.id for x in m.mitigations))
    c.print(f"\n[bold]Root cause[/]\n  {m.root_cause.strip()}")
    right = [h.text for h in m.hypotheses.choices if h.correct]
    c.print(f"[bold]Right hypothesis[/] {'; '.join(right)}")
    c.print(
        f"[bold]Answer key[/] hypothesis={m.answer.hypothesis} decision={m.answer.decision} "
        f"mitigations={', '.join(m.answer.mitigations) or 'none'}"
    )


@scenarios_app.command("validate", short_help="Every problem of every scenario.")
def scenarios_validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(metavar="FILE", help="Scenario files (default: all in the workspace)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Check scenarios: schema, fault kinds and their parameters, expressions, and (in a
    workspace) that every role is bound. Every problem, with file and line."""
    from pagerdrill.drill.engine import role_bindings
    from pagerdrill.errors import ConfigError
    from pagerdrill.scenarios.model import load_scenario, scenario_files

    ws = _workspace_or_none(workspace)
    roles = role_bindings(ws) if ws is not None else None
    from pagerdrill.runbooks import load_runbooks

    runbooks = {rb.name for rb in load_runbooks(ws.root)} if ws is not None else None
    paths = list(files or [])
    if not paths:
        if ws is None:
            from pagerdrill.errors import BadInputError

            raise BadInputError("no files given and no workspace found")
        paths = scenario_files(ws.root)
    failed = 0
    console, errors = _console(), _console(stderr=True)
    for path in paths:
        try:
            sc = load_scenario(path, roles=roles, runbooks=runbooks)
        except ConfigError as exc:
            failed += 1
            from rich.markup import escape

            errors.print(f"[red]✗[/] {escape(str(exc))}", soft_wrap=True)
            continue
        console.print(f"[green]✓[/] {path}  ({sc.name}, {sc.model.severity})")
    if failed:
        raise typer.Exit(2)


@scenarios_app.command("check", short_help="Which scenarios the role bindings can run.")
def scenarios_check(
    workspace: WorkspaceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Which scenarios this workspace's role bindings can run, and what is missing for the
    rest (a role not bound, a queue name, a Redis password, a URL ...). With the stack up,
    the details are tried on it: Redis must take the password, a service must have the
    variables a fault changes."""
    import json

    from pagerdrill.drill.engine import role_bindings
    from pagerdrill.errors import PagerdrillError
    from pagerdrill.scenarios.check import check_workspace

    target = _target(workspace, allow_remote_docker)
    ws = target.workspace
    note = ""
    live = None
    try:
        if target.is_up():
            live = target
        else:
            note = "the stack is not up: details it would give are not checked"
    except PagerdrillError as exc:  # no engine to ask: the bindings alone are checked
        note = f"the stack could not be asked ({str(exc).splitlines()[0]})"
    results = check_workspace(ws.root, role_bindings(ws), live, target.name == "local")
    if as_json:
        doc = {
            "target": target.name,
            "stack_checked": live is not None,
            "note": note or None,
            "scenarios": [r.to_json() for r in results],
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        from rich.markup import escape

        c = _console()
        c.print(f"[bold]{_stack_name(target)}[/] [dim]({ws.config_path})[/]")
        if note:
            c.print(f"[dim]{escape(note)}[/]")
        for r in results:
            if r.error:
                c.print(f"[red]✗ {r.name}[/]: invalid scenario (`pagerdrill scenarios validate`)")
                _console(stderr=True).print(escape(r.error), soft_wrap=True)
            elif r.runnable:
                c.print(f"[green]✓ {r.name}[/]: can run")
            else:
                mark = "[red]✗" if r.missing else "[yellow]?"
                c.print(f"{mark} {r.name}[/]: " + ("missing:" if r.missing else "not known yet:"))
                for line in r.missing + r.unknown:
                    c.print(f"    {escape(line)}", soft_wrap=True)
        runnable = sum(r.runnable for r in results)
        c.print(f"{runnable} of {len(results)} scenarios can run on these bindings")
    if any(r.error for r in results):
        raise typer.Exit(2)


# ------------------------------------------------------------------ drills


def _event_printer(redactor, feedback: str = "hidden"):
    """Progress of a headless drill, one line per event that matters, on stderr. A
    hypothesis shows as recorded; its grade only with the scenario's `feedback: live`."""
    from pagerdrill.faults import reverted_text
    from pagerdrill.reports.timeline import grade_text

    console = _console(stderr=True)

    from pagerdrill.timefmt import clock as t_clock
    from pagerdrill.timefmt import duration as t_duration

    def clock(event: dict) -> str:
        at = event.get("drill_s")
        return t_clock(at, tenths=True) if isinstance(at, int | float) else " " * 9

    injected = False

    def show(event: dict) -> None:
        nonlocal injected
        event = redactor.data(event)
        t = event["type"]
        text = None
        injected = injected or t == "fault.injected"
        if t == "state":
            text = f"[bold]{event['to']}[/]" + (
                f" for {t_duration(event['quiet_s'])}" if "quiet_s" in event else ""
            )
            if event.get("reason"):
                text += f": {event['reason']}"
        elif t == "fault.injected":
            text = f"[red]fault[/] {event['fault']} injected ({event['inject_ms']:g} ms)"
        elif t == "fault.reverted":
            text = reverted_text(event["fault"], event["by"], event.get("detail"))
        elif t in ("fault.failed", "fault.revert_failed", "mitigation.failed"):
            text = f"[red]{t}[/] {event.get('fault') or event.get('mitigation')}: {event['error']}"
        elif t == "alert.firing" and not injected:
            text = f"alert {event['alert']} firing before the fault (not a page)"
        elif t == "alert.firing":
            text = f"[red]ALERT[/] {event['alert']}: {event['summary']}"
        elif t == "alert.resolved":
            text = f"alert {event['alert']} resolved" + ("" if injected else " (before the fault)")
        elif t == "page":
            text = f"[bold red]PAGE[/] {event['severity']} {event['summary']}"
        elif t == "step.done":
            late = " [yellow](over target)[/]" if event["over"] else ""
            text = f"step {event['step']} done{late}"
            if event.get("reason"):
                call = event.get("choice_text") or event.get("choice")
                text += f": {call + ' ' if call else ''}(why: {event['reason']})"
        elif t in ("note", "hint"):
            text = f"{t}: {event['text']}"
        elif t == "hypothesis":
            text = f"hypothesis recorded: {event['text']}"
            if feedback == "live":
                grade = grade_text(event.get("grade"))
                text = f"hypothesis recorded ({grade}): {event['text']}"
        elif t == "decision":
            text = f"decision: {event['choice']}"
        elif t == "mitigation":
            text = f"mitigation: {event['title']}"
        elif t == "recovery.verified":
            text = "[green]recovery verified[/] by the probes"
        elif t == "script.refused":
            text = f"[yellow]script action {event['index']} refused[/]: {event['reason']}"
        if text:
            from rich.markup import escape

            console.print(f"  [dim]{clock(event)}[/] {text if '[' in text else escape(text)}")

    return show


def _fmt_s(value) -> str:
    from pagerdrill.timefmt import mmss_tenths

    return mmss_tenths(value, none="-")


def _print_summary(summary: dict) -> None:
    from rich.table import Table

    from pagerdrill.reports.timeline import before_fault_line, faded_line

    c = _console()
    verdict = summary["outcome"]
    if verdict == "closed" and summary["recovery_verified"]:
        head = "[green]closed, recovery verified[/]"
    elif verdict == "closed":
        head = "[yellow]closed without verified recovery[/]"
    else:
        head = f"[red]{verdict}[/]" + (
            f": {summary['abort_reason']}" if summary.get("abort_reason") else ""
        )
    c.print(f"\n[bold]{summary['title']}[/] ({summary['severity']}), {summary['engineer']}: {head}")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("FROM THE PAGE", "TIME", "TARGET", ""):
        table.add_column(column)
    for step in summary["steps"]:
        mark = "[green]✓[/]" if step["met"] else ("[red]✗[/]" if step["done_s"] else "[dim]-[/]")
        table.add_row(step["title"], _fmt_s(step["done_s"]), _fmt_s(step["target_s"]), mark)
    h = summary["hypothesis"]
    met = (
        h["correct_s"] is not None and h["target_s"] is not None and h["correct_s"] <= h["target_s"]
    )
    table.add_row(
        "Symptom → right hypothesis",
        _fmt_s(h["correct_s"]),
        _fmt_s(h["target_s"]),
        "[green]✓[/]" if met else "[red]✗[/]",
    )
    table.add_row("Mitigated", _fmt_s(summary["time_to_mitigate_s"]), "", "")
    table.add_row("Recovery verified", _fmt_s(summary["time_to_recovery_s"]), "", "")
    c.print(table)
    from pagerdrill.reports.timeline import grade_text

    first = grade_text(h["first_grade"]) if h["attempts"] else "none"
    if h["to_grade"]:
        first += f"; {h['to_grade']} for the lead to grade"
    c.print(
        f"hypotheses: {h['attempts']} (first {first}); hints used: {summary['hints_used']}; "
        f"alert fired: {'yes' if summary['alert_fired'] else 'no'}"
    )
    for line in (faded_line(summary), before_fault_line(summary)):
        if line:
            c.print(line)
    c.print(f"journal: {summary['journal']}")


@app.command("run", short_help="Run a drill headless (scripted or autopilot).")
def run(
    scenario: Annotated[str, typer.Argument(metavar="SCENARIO", help="Scenario name or file.")],
    engineer: Annotated[
        str | None,
        typer.Option(
            "--engineer", "-e", help="Who is drilling (default: git config user.name, else $USER)."
        ),
    ] = None,
    headless: Annotated[
        bool,
        typer.Option(
            "--headless", help="Accepted and implied: run never opens the TUI (that is `drill`)."
        ),
    ] = True,
    script: Annotated[
        Path | None, typer.Option("--script", metavar="FILE", help="Timed engineer actions.")
    ] = None,
    autopilot: Annotated[
        bool, typer.Option("--autopilot", help="Play the scenario's own answer key.")
    ] = False,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="KEY=VALUE", help="Override a scenario parameter."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be injected; touch nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document at the end.")] = False,
    keep_stack: Annotated[
        bool, typer.Option("--keep-stack", help="Leave a stack this run started running.")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the quiet delay.")] = None,
    workspace: WorkspaceOption = None,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Run a drill with no TUI: the stack is broken, the alert pages, and a script (or the
    scenario's answer key) plays the engineer. Ctrl-C or SIGTERM aborts and reverts.
    Exit code 0 only when the drill closed with recovery verified by the probes."""
    import json
    import random
    import signal
    import threading

    from pagerdrill.drill.checklist import load_checklist
    from pagerdrill.drill.engine import DrillEngine, role_bindings
    from pagerdrill.drill.runner import Player, check_script, load_script_lines, run_drill
    from pagerdrill.drill.runner import autopilot as autopilot_script
    from pagerdrill.errors import BadInputError
    from pagerdrill.journal import read_journal
    from pagerdrill.journal.summary import exit_code, summarize
    from pagerdrill.scenarios.model import find_scenario, load_scenario, parse_param
    from pagerdrill.workspace import default_engineer

    del headless  # run is always headless; the flag stays accepted for old scripts
    engineer = engineer or default_engineer()
    if (script is None) == (not autopilot) and not dry_run:
        raise BadInputError("give one of --script FILE or --autopilot")
    target = _target(workspace, allow_remote_docker)
    ws = target.workspace
    overrides = dict(parse_param(p) for p in (param or []))
    sc = load_scenario(find_scenario(ws.root, scenario), overrides, roles=role_bindings(ws))
    checklist, _ = load_checklist(ws.root)
    if script:
        actions, lines = load_script_lines(script)
        check_script(actions, sc, checklist, script, lines)
    else:
        actions = autopilot_script(sc, checklist)
    from pagerdrill.journal.redact import Redactor

    # what the drill will set (a wrong password ...) never shows on the console either
    redactor = Redactor.for_scenario(sc, ws.config)
    engine = DrillEngine(
        sc,
        ws,
        target,
        engineer,
        checklist,
        observers=() if as_json else (_event_printer(redactor, sc.model.hypotheses.feedback),),
        rng=random.Random(seed),
    )
    if dry_run:
        plan = engine.plan()
        if as_json:
            typer.echo(json.dumps(plan, indent=2))
            return
        c = _console()
        c.print(f"[bold]{plan['title']}[/] ({plan['scenario']}, {plan['severity']}) — dry run")
        c.print("roles: " + ", ".join(f"{r} → {s}" for r, s in plan["roles"].items()))
        c.print(f"quiet: {plan['quiet_s'][0]:g}-{plan['quiet_s'][1]:g} s, then:")
        for f in plan["faults"]:
            timing = f"+{f['at_s']:g} s" + (
                f", for {f['duration_s']:g} s" if f["duration_s"] else ""
            )
            c.print(f"  {f['id']} ({timing}): {f['does']}")
        c.print("alerts: " + "; ".join(plan["alerts"]))
        *criteria, hold = plan["recovery"]
        c.print(f"recovery: {' and '.join(criteria)}, {hold}")
        c.print("[dim]nothing was touched[/]")
        return
    from pagerdrill.drill.stackhold import StackHold, requested_abort

    interrupt = threading.Event()
    got: list[int] = []

    def on_signal(signum, _frame):
        got.append(signum)
        interrupt.set()

    def why() -> str:
        asked = requested_abort(ws.state_dir, engine.drill_id)  # `stack down --force`
        if asked:
            return asked
        names = {int(signal.SIGINT): "Ctrl-C", int(signal.SIGHUP): "SIGHUP: the terminal went away"}
        return f"interrupted ({names.get(got[0] if got else 0, 'SIGTERM')})"

    # from here on Ctrl-C, SIGTERM and SIGHUP (a dropped ssh connection) only ask: the
    # drill (or the stack start) finishes what it is doing, aborts, and puts everything
    # back. The drill lock comes first: a drill it refuses has touched nothing.
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in stops}
    hold = StackHold(engine, target)
    try:
        hold.bring_up(
            # stdout carries only the summary (or the JSON): progress goes with the events
            progress=_progress_printer(stderr=True) if not as_json else None,
            announce=lambda: _console(stderr=True).print("starting the stack:"),
        )
        if not as_json:
            _console(stderr=True).print(
                f"drill {engine.drill_id}: {sc.model.title} ({sc.model.severity}), "
                f"engineer {engineer}"
            )
        run_drill(engine, Player(actions), interrupt, why=why)
    finally:
        try:
            hold.let_go(keep_stack)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    summary = redactor.data(summarize(read_journal(engine.journal_path)))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    code = exit_code(summary)
    if code:
        raise typer.Exit(code)


@app.command("drill", short_help="Run a drill interactively (the TUI).")
def drill(
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            "-s",
            metavar="NAME",
            help="Scenario name or file (default: pick one on the start screen).",
        ),
    ] = None,
    engineer: Annotated[
        str | None,
        typer.Option(
            "--engineer",
            "-e",
            help="Who is drilling (default: asked at the start; with --scenario, your login).",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="KEY=VALUE", help="Override a scenario parameter."),
    ] = None,
    blind: Annotated[
        bool,
        typer.Option("--blind", help="A random scenario; its name stays hidden until the summary."),
    ] = False,
    keep_stack: Annotated[
        bool,
        typer.Option(
            "--keep-stack", help="Leave the stack running at exit when the drill started it."
        ),
    ] = False,
    workspace: WorkspaceOption = None,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Run a drill interactively: the stack is broken after a quiet period, the alert pages
    you, and you work the checklist. q aborts and reverts every fault. Without --scenario
    a start screen lists the workspace's scenarios (or a blind, random one)."""
    from pagerdrill.errors import BadInputError
    from pagerdrill.journal.summary import exit_code
    from pagerdrill.scenarios.model import parse_param
    from pagerdrill.tui.app import make_app

    if blind and scenario:
        raise BadInputError("--blind picks the scenario at random: drop --scenario")
    overrides = dict(parse_param(p) for p in (param or []))
    tui = make_app(
        workspace,
        scenario,
        engineer,
        overrides,
        blind=blind,
        allow_remote_docker=allow_remote_docker,
    )
    tui.keep_stack = keep_stack
    tui.run()
    if tui.summary is None or exit_code(tui.summary):
        raise typer.Exit(1)


@app.command("recover", short_help="Revert the faults of drills that did not close.")
def recover_cmd(
    workspace: WorkspaceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Finish drills that stopped without closing (a crash, kill -9): revert their faults
    from the journal's undo records and close their journals. A drill still running is
    left alone."""
    import json

    from pagerdrill.drill.recover import recover

    target = _target(workspace, allow_remote_docker)
    results = recover(target.workspace, target)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        c = _console()
        if not results:
            c.print("nothing to recover: every drill journal is closed")
        for r in results:
            c.print(f"[bold]{r.drill}[/]")
            for what in r.reverted:
                c.print(f"  [green]✓[/] {r.said.get(what, f'reverted {what}')}")
            for what, error in r.failed:
                c.print(f"  [red]✗[/] {what}: {error}")
            if r.nothing_to_do:
                c.print("  nothing was left to revert; journal closed")
        if results and target.is_up():
            _status_table(target.status())
    if any(r.failed for r in results):
        raise typer.Exit(1)


# ------------------------------------------------------------------ the lead's view

drills_app = typer.Typer(
    help="Drills that ran: list them, read a timeline, export it, record a review.",
    short_help="List, show, export and review drills.",
    no_args_is_help=True,
)
app.add_typer(drills_app, name="drills")
app.add_typer(escalation.app, name="escalation")
DrillArg = Annotated[
    str, typer.Argument(metavar="ID", help="Drill id, a unique part of it, or a journal path.")
]


def _timeline(workspace: Path | None, drill: str, samples: bool | int = True):
    from pagerdrill.reports.drills import find_journal
    from pagerdrill.reports.timeline import load_redacted
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace)
    return load_redacted(find_journal(ws.root / "drills", drill), ws.config, samples)


def _mmss(seconds) -> str:
    from pagerdrill.timefmt import mmss

    return mmss(seconds, none="-")


@drills_app.command("list", short_help="Every drill: outcome, times, verdict.")
def drills_list(
    engineer: Annotated[str | None, typer.Option("--engineer", help="Only this engineer.")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Only this scenario.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DATE", help="Started on or after (YYYY-MM-DD)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Every drill of the workspace, newest first: outcome, times, review verdict."""
    import json

    from pagerdrill.reports.drills import list_drills
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace)
    rows = list_drills(
        ws.root / "drills",
        ws.state_dir / "drills-index.json",
        engineer=engineer,
        scenario=scenario,
        since=since,
    )
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    if not rows:
        given = (("engineer", engineer), ("scenario", scenario), ("since", since))
        filters = [f"--{name} {value}" for name, value in given if value]
        if filters and list_drills(ws.root / "drills", ws.state_dir / "drills-index.json"):
            _console().print(f"no drill matches {' '.join(filters)}")
        else:
            _console().print("no drills yet (run one: pagerdrill run SCENARIO ...)")
        return
    header = ("DRILL", "DATE", "ENGINEER", "SCENARIO", "SEV", "OUTCOME", "ACK",
              "→HYPOTHESIS", "RIGHT", "RECOVERY", "REVIEW")  # fmt: skip
    table = [
        (
            r.drill[-4:] if len(r.drill) > 4 else r.drill,
            (r.started or "")[:16].replace("T", " "),
            r.engineer or "-",
            r.scenario or "-",
            r.severity or "-",
            r.outcome + ("" if r.complete else " (incomplete)"),
            _mmss(r.time_to_ack_s),
            _mmss(r.hypothesis_s),
            RIGHT_COLUMN.get(r.hypothesis_grade or "", "-"),
            _mmss(r.time_to_recovery_s) if r.recovery_verified else "-",
            r.verdict or "-",
        )
        for r in rows
    ]
    # plain columns: a team's drill history runs to thousands of rows, and rich's
    # table layout costs seconds there
    widths = [max(len(str(x)) for x in column) for column in zip(header, *table, strict=True)]
    lines = ["  ".join(f"{x:<{w}}" for x, w in zip(line, widths, strict=True)).rstrip()
             for line in (header, *table)]  # fmt: skip
    sys.stdout.write("\n".join(lines) + "\n")
    _console().print("[dim]DRILL is the end of the drill id; any unique part of it names it[/]")


RIGHT_COLUMN = {"right": "yes", "wrong": "no", "ungraded": "to grade"}
"""The list's RIGHT column: the hypothesis's grade ("to grade": for the lead)."""


@drills_app.command("show", short_help="A drill's timeline and times.")
def drills_show(drill: DrillArg, workspace: WorkspaceOption = None) -> None:
    """A drill's timeline: the engineer's steps and the system's events interleaved, the
    times against targets, and the signals summarised."""
    from rich.markup import escape
    from rich.table import Table

    from pagerdrill.reports.text import decision_line, hypothesis_line, outcome_text
    from pagerdrill.reports.timeline import signal_summary, wall
    from pagerdrill.timefmt import clock, duration

    tl = _timeline(workspace, drill, samples=HTML_POINTS)
    s = tl.summary
    c = _console()
    c.print(f"[bold]{escape(s.get('title') or tl.drill)}[/] ({s.get('severity')}) — "
            f"{escape(s.get('engineer') or '?')} — {escape(outcome_text(s))}")  # fmt: skip
    c.print(f"[dim]{tl.drill}  started {s.get('started')}  duration {duration(tl.duration_s)}[/]")
    if not tl.complete:
        c.print(f"[yellow]incomplete journal:[/] {escape('; '.join(tl.problems) or 'no end')}")
    if tl.review:
        r = tl.review
        c.print(f"review: [bold]{r['verdict'].upper()}[/] by {escape(r['by'])}"
                + (f" — {escape(r['comment'])}" if r.get("comment") else ""))  # fmt: skip
    table = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
    for column in ("UTC", "FROM PAGE", "", "WHAT"):
        table.add_column(column)
    style = {"engineer": "cyan", "system": "", "review": "magenta"}
    for e in tl.entries:
        mark = {"engineer": "👤", "review": "✎"}.get(e.who, "·")
        text = escape(e.text)
        if e.kind in ("page", "alert.firing"):
            text = f"[bold red]{text}[/]"
        elif style[e.who]:
            text = f"[{style[e.who]}]{text}[/]"
        table.add_row(wall(e.ts), clock(e.page_s), mark, text)
    c.print(table)
    c.print("\n[bold]Signals[/]")
    for series in tl.series:
        info = signal_summary(series, tl.page_t, tl.fault_t)
        threshold = (
            f", alert at {series.op} {series.threshold:g}" if series.threshold is not None else ""
        )
        crossed = f", crossed at {info['crossed']}" if info["crossed"] else ""
        c.print(
            f"  {series.label}: {info['first']} → peak {info['peak']} → {info['last']}"
            f"{threshold}{crossed}"
        )
    h = s["hypothesis"]
    c.print(f"\n[bold]Hypothesis[/] {escape(hypothesis_line(s))}")
    if s.get("decision"):
        c.print(f"[bold]Decision[/] {escape(decision_line(s))}")
    c.print(
        f"ack {_mmss(s['time_to_ack_s'])} · right hypothesis {_mmss(h['correct_s'])} "
        f"(target {_mmss(h['target_s'])}) · mitigated {_mmss(s['time_to_mitigate_s'])} · "
        f"recovery {_mmss(s['time_to_recovery_s'])}"
    )


HTML_POINTS = 600
JSON_POINTS = 2000


@drills_app.command("export", short_help="Export a drill: Slack, Markdown, JSON, HTML.")
def drills_export(
    drill: DrillArg,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="slack, markdown, json or html.")
    ] = "markdown",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here (default: stdout)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Export a drill: Slack mrkdwn to paste, Markdown, JSON (schema:
    pagerdrill/reports/drill-export.schema.json) or a self-contained HTML report.
    Secrets never leave: passwords, tokens and Redis URL passwords are masked."""
    import json

    from pagerdrill.errors import BadInputError

    formats = ("slack", "markdown", "json", "html")
    if fmt not in formats:
        raise BadInputError(f"--format {fmt!r}: expected one of {', '.join(formats)}")
    # text needs no probe samples; a chart a few hundred; JSON up to JSON_POINTS (the
    # journal keeps every one)
    samples = {"slack": False, "markdown": False, "html": HTML_POINTS, "json": JSON_POINTS}[fmt]
    tl = _timeline(workspace, drill, samples)
    if fmt == "slack":
        from pagerdrill.reports.text import slack_text

        text = slack_text(tl)
    elif fmt == "markdown":
        from pagerdrill.reports.text import markdown

        text = markdown(tl)
    elif fmt == "json":
        from pagerdrill.reports.text import to_json

        text = json.dumps(to_json(tl), indent=2) + "\n"
    else:
        from pagerdrill.reports.html import render_html

        text = render_html(tl)
    if output is None:
        sys.stdout.write(text)
        return
    from pagerdrill.reports.text import write_export

    write_export(output, text)
    _console(stderr=True).print(f"wrote {output} ({len(text.encode()):,} bytes)")


@drills_app.command("review", short_help="Record a lead's verdict on a drill.")
def drills_review(
    drill: DrillArg,
    by: Annotated[str, typer.Option("--by", help="Who reviews.")],
    verdict: Annotated[str | None, typer.Option("--verdict", help="pass or fail.")] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="Why.")] = None,
    hypothesis: Annotated[
        str | None,
        typer.Option("--hypothesis", help="Grade the hypothesis: right or wrong."),
    ] = None,
    attempt: Annotated[
        int | None,
        typer.Option(
            "--attempt",
            metavar="N",
            help="Which hypothesis --hypothesis grades (1: the first stated; default: the "
            "one left for the lead to grade).",
        ),
    ] = None,
    sign_with: Annotated[
        Path | None,
        typer.Option(
            "--sign-with",
            metavar="KEY",
            help="Sign the verdict with this SSH key (the reviewer's key in the roster; "
            "a .pub with an ssh-agent holding its private key works).",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Record a review of a drill: a verdict, the lead's grade of a hypothesis, or both.
    It is appended to the journal (history is never rewritten); a drill may be reviewed
    again, and the latest verdict and the latest grade count. --sign-with signs the
    verdict as an in-toto Statement pinning the journal, which `readiness verify` checks."""
    from rich.markup import escape

    from pagerdrill.reports.drills import find_journal, review
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace)
    path = find_journal(ws.root / "drills", drill)
    sign = None
    if sign_with is not None:
        from pagerdrill.readiness.reviews import review_signer

        sign = review_signer(ws.root, by.strip(), sign_with)
    events = review(
        path,
        ws.state_dir,
        by=by,
        verdict=verdict,
        comment=comment,
        hypothesis=hypothesis,
        attempt=attempt,
        sign=sign,
    )
    for event in events:
        what = (
            f"hypothesis {event['attempt']} graded {event['grade']}"
            if event["type"] == "hypothesis.graded"
            else str(event["verdict"]).upper() + (", signed" if event.get("signature") else "")
        )
        _console().print(
            f"[green]✓[/] {event['drill']}: {what} by {escape(by)} (appended to {path})"
        )


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
