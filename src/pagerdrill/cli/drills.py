"""`pagerdrill drills`, the lead's view: list the drills that ran, read a timeline,
export it, record a review."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pagerdrill.cli.console import _console
from pagerdrill.cli.options import WorkspaceOption

app = typer.Typer(
    help="Drills that ran: list them, read a timeline, export it, record a review.",
    short_help="List, show, export and review drills.",
    no_args_is_help=True,
)
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


@app.command("list", short_help="Every drill: outcome, times, verdict.")
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


@app.command("show", short_help="A drill's timeline and times.")
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
    c.print(f"[bold]{escape(s.title or tl.drill)}[/] ({s.severity}) — "
            f"{escape(s.engineer or '?')} — {escape(outcome_text(s))}")  # fmt: skip
    c.print(f"[dim]{tl.drill}  started {s.started}  duration {duration(tl.duration_s)}[/]")
    if not tl.complete:
        c.print(f"[yellow]incomplete journal:[/] {escape('; '.join(tl.problems) or 'no end')}")
    if tl.review:
        r = tl.review
        c.print(f"review: [bold]{r.verdict.upper()}[/] by {escape(r.by)}"
                + (f" — {escape(r.comment)}" if r.comment else ""))  # fmt: skip
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
    h = s.hypothesis
    c.print(f"\n[bold]Hypothesis[/] {escape(hypothesis_line(s))}")
    if s.decision:
        c.print(f"[bold]Decision[/] {escape(decision_line(s))}")
    c.print(
        f"ack {_mmss(s.time_to_ack_s)} · right hypothesis {_mmss(h.correct_s)} "
        f"(target {_mmss(h.target_s)}) · mitigated {_mmss(s.time_to_mitigate_s)} · "
        f"recovery {_mmss(s.time_to_recovery_s)}"
    )


HTML_POINTS = 600
JSON_POINTS = 2000


@app.command("export", short_help="Export a drill: Slack, Markdown, JSON, HTML.")
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


@app.command("review", short_help="Record a lead's verdict on a drill.")
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

    from pagerdrill.journal.events import HypothesisGraded, Review
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
        match event:
            case HypothesisGraded():
                what = f"hypothesis {event.attempt} graded {event.grade}"
            case Review():
                what = str(event.verdict).upper() + (", signed" if event.signature else "")
        _console().print(f"[green]✓[/] {event.drill}: {what} by {escape(by)} (appended to {path})")
