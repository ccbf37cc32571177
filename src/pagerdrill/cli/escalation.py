"""`pagerdrill escalation`: who is on call for each tier, and what in the escalation
matrix would leave a page unanswered."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pagerdrill.cli.options import WorkspaceOption

app = typer.Typer(
    help="The escalation matrix: who is on call for each severity tier, and whether "
    "every name, contact, channel, bridge and schedule holds up.",
    short_help="Who is on call; validate the escalation matrix.",
    no_args_is_help=True,
)

FileArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="[FILE]",
        help="The matrix (default: pagerdrill.yaml's escalation.matrix, else "
        "escalation-matrix.yaml, else escalation-matrix.md).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document.")]


def _when(text: str | None) -> datetime:
    """`--at`: ISO 8601; without an offset, this machine's local time."""
    if text is None:
        return datetime.now(UTC)
    from pagerdrill.errors import BadInputError

    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise BadInputError(
            f"--at {text!r}: expected a date and time (2026-11-23T09:30, 2026-11-23T08:30Z, "
            "2026-11-23T09:30+01:00)"
        ) from None
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(UTC)


def _root(workspace: Path | None, file: Path | None) -> Path:
    from pagerdrill.errors import WorkspaceNotFound
    from pagerdrill.workspace import find_workspace

    try:
        return find_workspace(workspace)
    except WorkspaceNotFound:
        if file is None:
            raise
        return file.resolve().parent


def _local(when: datetime, tz) -> str:
    local = when.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _print_who(matrix, tiers, schedules, when) -> None:
    """Each tier's levels: who, on which schedule until when, how to reach them."""
    from pagerdrill.escalation.model import human_duration

    team = matrix.model.team
    typer.echo(f"On call at {when:%Y-%m-%d %H:%M} UTC" + (f" ({team})" if team else ""))
    for tier in tiers:
        head = [f"{tier.severity} {tier.name or ''}".rstrip()]
        if tier.response is not None:
            head.append(f"respond within {human_duration(tier.response)}")
        head += [x for x in (tier.incident_channel, tier.video_bridge) if x]
        typer.echo("\n" + " · ".join(head))
        for level in tier.levels:
            first = True
            rows = [(p.name, p) for p in level.responders] + [
                (f"nobody ({name} has no one on call)", None) for name in level.nobody_from
            ]
            for name, person in rows:
                number = f"{level.number}" if first else ""
                first = False
                detail = ""
                if person is not None and person.shift is not None:
                    tz = schedules[person.schedule].tz if person.schedule else UTC
                    detail = f"{person.schedule} until {_local(person.shift.end, tz)}"
                    if person.shift.override:
                        detail += " (override)"
                contacts = " · ".join(person.contacts.values()) if person else ""
                typer.echo(f"  {number:>2}  {name:<14} {detail:<36} {contacts}".rstrip())
            if level.escalate_after is not None:
                typer.echo(
                    f"      → level {level.number + 1} after {human_duration(level.escalate_after)}"
                )
        if tier.vendor and matrix.model.vendor is not None:
            vendor = matrix.model.vendor
            typer.echo(f"      → vendor: {vendor.name} {vendor.tier or ''}".rstrip())


@app.command("who")
def who_cmd(
    file: FileArg = None,
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="TIME", help="When (ISO 8601; default: now)."),
    ] = None,
    as_json: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Who is on call now (or at TIME) for every tier: each level's people and the
    on-call person of its schedule, until when, and how to reach them."""
    from pagerdrill.errors import BadInputError
    from pagerdrill.escalation.load import load_matrix, matrix_path
    from pagerdrill.escalation.oncall import who
    from pagerdrill.escalation.validate import _Report, load_roster_for, resolve_schedules

    when = _when(at)
    root = _root(workspace, file)
    matrix = load_matrix(matrix_path(root, file), root)
    if matrix.model is None:
        raise BadInputError(
            "\n".join(f"{matrix.path}:{line or 1}: {message}" for line, message in matrix.errors)
        )
    roster, roster_problems = load_roster_for(matrix)
    if roster_problems:
        raise BadInputError("\n".join(p.render() for p in roster_problems))
    report = _Report([])
    schedules = resolve_schedules(matrix, roster, report)
    tiers = who(matrix, roster, schedules, when)
    if as_json:
        doc = {
            "at": when.isoformat(),
            "matrix": str(matrix.path),
            "tiers": [t.to_json() for t in tiers],
            "problems": [p.model_dump() for p in report.problems],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    _print_who(matrix, tiers, schedules, when)
    for problem in report.problems:
        typer.echo(f"warning: {problem.render()}", err=True)


@app.command("validate")
def validate_cmd(
    file: FileArg = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=366, help="Look this many days ahead for gaps.")
    ] = 14,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Also probe each video bridge and webhook (HTTP status only; results "
            "appended to escalation/validation.jsonl).",
        ),
    ] = False,
    as_json: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Every problem of the matrix and its roster, with file and line: missing fields,
    placeholders, people not in the roster, malformed phone/email/URL, schedule gaps in
    the next DAYS days, nobody on call now, no contact path, an empty first level,
    escalation that loops or skips a tier, response targets against the severity table.
    Exit code 0 when clean, 1 when problems were found, 2 on bad usage."""
    from pagerdrill.escalation.validate import check_workspace

    now = datetime.now(UTC)
    root = _root(workspace, file)
    matrix, problems = check_workspace(root, now, days, file)
    results: list = []
    if online:
        from pagerdrill.escalation.probes import LOG_NAME, probe_all

        results, failed = probe_all(matrix)
        problems += failed
    if as_json:
        doc = {
            "matrix": str(matrix.path),
            "checked_at": now.isoformat(),
            "days": days,
            "clean": not problems,
            "problems": [p.model_dump() for p in problems],
            "probes": [r.to_json(str(matrix.path)) for r in results],
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        for p in problems:
            typer.echo(p.render(), err=True)
        for r in results:
            shown = str(r.status) if r.status is not None else (r.error or "no answer")
            mark = "✓" if r.ok else "✗"
            typer.echo(f"{mark} {r.target.url}  {shown}  ({r.target.where})")
        if results:
            typer.echo(f"probes recorded in {root / LOG_NAME}")
        if problems:
            count = len(problems)
            typer.echo(f"{matrix.path}: {count} problem{'s' if count != 1 else ''}", err=True)
        else:
            typer.echo(f"✓ {matrix.path}: clean (schedules covered for the next {days} days)")
    if problems:
        sys.stdout.flush()
        raise typer.Exit(1)
