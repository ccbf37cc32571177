"""`pagerdrill scenarios`: list, show, validate and check the workspace's drill
scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pagerdrill.cli.console import _console
from pagerdrill.cli.options import AllowRemoteOption, WorkspaceOption, _stack_name, _target

app = typer.Typer(
    help="The drill scenarios of the workspace (scenarios/*.yaml).",
    short_help="List, show and validate drill scenarios.",
    no_args_is_help=True,
)


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


@app.command("list", short_help="The scenarios, their severity and roles.")
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


@app.command("show", short_help="A scenario's symptom and roles; --reveal for what it breaks.")
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
        typer.echo(json.dumps(_scenario_doc(sc, reveal), indent=2))
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
    _print_revealed(c, sc)


def _scenario_doc(sc, reveal: bool) -> dict:
    """`scenarios show --json`: what a trainee may know, and the rest with --reveal."""
    m = sc.model
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
    return doc


def _print_revealed(c, sc) -> None:
    """`scenarios show --reveal`: what the scenario breaks, how it shows and recovers,
    the cause and the answer key."""
    m = sc.model
    if sc.params:
        c.print("[bold]Params[/]  " + ", ".join(f"{k}={v}" for k, v in sc.params.items()))
    c.print("[bold]Faults[/]")
    for f in m.faults:
        extra = ", ".join(f"{k}={v}" for k, v in f.params.items())
        timing = f"at +{f.at_s:g} s" + (f" for {f.duration_s:g} s" if f.duration_s else "")
        c.print(f"  {f.id}: {f.kind} on {f.role} {timing}" + (f" ({extra})" if extra else ""))
    c.print("[bold]Probes[/]")
    for p in m.probes:
        if p.signal:
            c.print(f"  {p.name}: signal {p.signal}")
            continue
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


@app.command("validate", short_help="Every problem of every scenario.")
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


@app.command("check", short_help="Which scenarios the role bindings can run.")
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
    from pagerdrill.workspace.sources import workspace_signals

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
    signals = workspace_signals(ws.config)
    results = check_workspace(ws.root, role_bindings(ws), live, target.name == "local", signals)
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
