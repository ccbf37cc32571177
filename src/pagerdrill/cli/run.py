"""`pagerdrill run`, `drill` and `recover`: run a drill headless or in the TUI, and
finish drills that did not close. The engine and the TUI are imported inside the
commands, so `pagerdrill --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pagerdrill.cli.console import _console, _event_printer, _progress_printer, _status_table
from pagerdrill.cli.options import AllowRemoteOption, WorkspaceOption, _target

if TYPE_CHECKING:
    from pagerdrill.journal.summary import Summary


def register(app: typer.Typer) -> None:
    app.command("run", short_help="Run a drill headless (scripted or autopilot).")(run)
    app.command("drill", short_help="Run a drill interactively (the TUI).")(drill)
    app.command("recover", short_help="Revert the faults of drills that did not close.")(
        recover_cmd
    )


def _fmt_s(value) -> str:
    from pagerdrill.timefmt import mmss_tenths

    return mmss_tenths(value, none="-")


def _print_summary(summary: Summary) -> None:
    from rich.table import Table

    from pagerdrill.reports.timeline import before_fault_line, faded_line, grade_text

    c = _console()
    verdict = summary.outcome
    if verdict == "closed" and summary.recovery_verified:
        head = "[green]closed, recovery verified[/]"
    elif verdict == "closed":
        head = "[yellow]closed without verified recovery[/]"
    else:
        head = f"[red]{verdict}[/]" + (f": {summary.abort_reason}" if summary.abort_reason else "")
    c.print(f"\n[bold]{summary.title}[/] ({summary.severity}), {summary.engineer}: {head}")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("FROM THE PAGE", "TIME", "TARGET", ""):
        table.add_column(column)
    for step in summary.steps:
        mark = "[green]✓[/]" if step.met else ("[red]✗[/]" if step.done_s else "[dim]-[/]")
        table.add_row(step.title, _fmt_s(step.done_s), _fmt_s(step.target_s), mark)
    h = summary.hypothesis
    met = h.correct_s is not None and h.target_s is not None and h.correct_s <= h.target_s
    table.add_row(
        "Symptom → right hypothesis",
        _fmt_s(h.correct_s),
        _fmt_s(h.target_s),
        "[green]✓[/]" if met else "[red]✗[/]",
    )
    table.add_row("Mitigated", _fmt_s(summary.time_to_mitigate_s), "", "")
    table.add_row("Recovery verified", _fmt_s(summary.time_to_recovery_s), "", "")
    c.print(table)
    first = grade_text(h.first_grade) if h.attempts else "none"
    if h.to_grade:
        first += f"; {h.to_grade} for the lead to grade"
    c.print(
        f"hypotheses: {h.attempts} (first {first}); hints used: {summary.hints_used}; "
        f"alert fired: {'yes' if summary.alert_fired else 'no'}"
    )
    for line in (faded_line(summary), before_fault_line(summary)):
        if line:
            c.print(line)
    c.print(f"journal: {summary.journal}")


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
    page_timeout: Annotated[
        float | None,
        typer.Option(
            "--page-timeout",
            min=0.1,
            max=3600,
            metavar="SECONDS",
            help="Abort when no alert pages this long after the fault (default: the scenario's).",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    allow_remote_docker: AllowRemoteOption = False,
) -> None:
    """Run a drill with no TUI: the stack is broken, the alert pages, and a script (or the
    scenario's answer key) plays the engineer. Ctrl-C or SIGTERM aborts and reverts.
    Exit code 0 only when the drill closed with recovery verified by the probes."""
    from pagerdrill.drill.factory import DrillFactory
    from pagerdrill.errors import BadInputError
    from pagerdrill.scenarios.model import parse_param
    from pagerdrill.workspace import default_engineer

    del headless  # run is always headless; the flag stays accepted for old scripts
    engineer = engineer or default_engineer()
    if (script is None) == (not autopilot) and not dry_run:
        raise BadInputError("give one of --script FILE or --autopilot")
    factory = DrillFactory.open(workspace, allow_remote_docker=allow_remote_docker)
    overrides = dict(parse_param(p) for p in (param or []))
    drill = factory.headless(
        scenario,
        engineer,
        overrides,
        script=script,
        observers=None if as_json else _printers,
        seed=seed,
        page_timeout_s=page_timeout,
    )
    if dry_run:
        _print_plan(drill.plan(), as_json)
        return
    drill.run(
        keep_stack=keep_stack,
        # stdout carries only the summary (or the JSON): progress goes with the events
        progress=_progress_printer(stderr=True) if not as_json else None,
        announce=lambda: _console(stderr=True).print("starting the stack:"),
        started=None if as_json else _say_started,
    )
    _finish(drill.engine, drill.redactor, as_json)


def _printers(redactor, sc) -> tuple:
    """The headless drill's observer: each event on stderr as it happens, redacted."""
    return (_event_printer(redactor, sc.model.hypotheses.feedback),)


def _say_started(engine) -> None:
    model = engine.scenario.model
    _console(stderr=True).print(
        f"drill {engine.drill_id}: {model.title} ({model.severity}), engineer {engine.engineer}"
    )


def _print_plan(plan, as_json: bool) -> None:
    """A dry run: what the drill would inject, with nothing touched."""
    import json

    if as_json:
        typer.echo(json.dumps(plan.to_json(), indent=2))
        return
    c = _console()
    c.print(f"[bold]{plan.title}[/] ({plan.scenario}, {plan.severity}) — dry run")
    c.print("roles: " + ", ".join(f"{r} → {s}" for r, s in plan.roles.items()))
    c.print(f"quiet: {plan.quiet_s[0]:g}-{plan.quiet_s[1]:g} s, then:")
    for f in plan.faults:
        timing = f"+{f.at_s:g} s" + (f", for {f.duration_s:g} s" if f.duration_s else "")
        c.print(f"  {f.id} ({timing}): {f.does}")
    c.print("alerts: " + "; ".join(plan.alerts))
    c.print(f"page: within {plan.page_timeout_s:g} s of the fault, else the drill aborts")
    *criteria, hold = plan.recovery
    c.print(f"recovery: {' and '.join(criteria)}, {hold}")
    c.print("[dim]nothing was touched[/]")


def _finish(engine, redactor, as_json: bool) -> None:
    """The summary from the journal, and the exit code it gives."""
    import json

    from pagerdrill.journal import read_journal
    from pagerdrill.journal.summary import exit_code, summary_of

    summary = redactor.model(summary_of(read_journal(engine.journal_path)))
    if as_json:
        typer.echo(json.dumps(summary.to_json(), indent=2))
    else:
        _print_summary(summary)
    code = exit_code(summary)
    if code:
        raise typer.Exit(code)


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
        said = next((r for r in results if r.not_healthy or r.health_unknown), None)
        if said is not None:
            for service, seen in said.not_healthy.items():
                c.print(f"  [red]✗[/] {service} is not healthy after the reverts ({seen})")
            for service in said.health_unknown:
                c.print(f"  [dim]?[/] {service}: running, health unknown (no healthcheck)")
        if results and target.is_up():
            _status_table(target.status())
    if any(r.failed or r.not_healthy for r in results):
        raise typer.Exit(1)
