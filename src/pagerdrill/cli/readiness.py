"""`pagerdrill readiness ...`: status, team, attest, read, quiz, access, signoff, assign,
verify, log.

Thin: the work is in `pagerdrill.readiness`; this parses, asks, delegates and renders.
Every refusal is a BadInputError (exit 2) raised before anything is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pagerdrill.cli.options import WorkspaceOption

if TYPE_CHECKING:
    from pagerdrill.readiness.status import Context, Status

app = typer.Typer(
    help="The on-call go/no-go gate: each engineer's items, proven by evidence (drill "
    "journals, runbooks, the escalation matrix) and attested by named people, and the two "
    "sign-offs.",
    short_help="The on-call readiness gate: status, attest, read, quiz, sign off, verify.",
    invoke_without_command=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document.")]
Engineer = Annotated[
    str, typer.Argument(metavar="ENGINEER", help="The engineer, as the roster names them.")
]


def _out(text: str = "") -> None:
    typer.echo(text)


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _context(workspace: Path | None) -> Context:
    from pagerdrill.readiness.status import Context
    from pagerdrill.workspace import find_workspace

    return Context(find_workspace(workspace))


@app.callback()
def gate_screen(
    ctx: typer.Context,
    engineer: Annotated[
        str | None,
        typer.Option(
            "--engineer",
            "-e",
            help="Whose gate the terminal screen shows (default: git user.name).",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """With no command, in a terminal: the engineer's gate as a screen (items, evidence,
    the next thing to do), where the register and changelog are read and the pager
    question answered. Elsewhere, this help."""
    if ctx.invoked_subcommand is not None:
        return
    import sys

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _out(ctx.get_help())
        return
    from pagerdrill.readiness.actions import require_engineer
    from pagerdrill.tui.readiness import ReadinessApp
    from pagerdrill.workspace import default_engineer

    context = _context(workspace)
    name = require_engineer(context, engineer or default_engineer()).name
    ReadinessApp(context.root, name).run()


def _render(st: Status) -> None:
    head = "READY (signed go)" if st.ready else f"not ready: {len(st.open_items)} item(s) open"
    _out(f"{st.engineer} — rotation {st.rotation} — {head}")
    if st.assigned:
        _out(f"assigned scenario: {st.assigned} (by {st.assigned_by})")
    if st.reopen_reason:
        _out(f"reopened: {st.reopen_reason}")
    if st.expires:
        _out(f"go expires: {st.expires}")
    if st.fresh_drill_due:
        _out(f"fresh drill due: {st.fresh_drill_due}")
    for item in st.items:
        mark = "✓" if item.done else "✗"
        again = " (again this rotation)" if item.reopened and not item.done else ""
        _out(f"{mark} {item.id}{again}: {item.text}")
        for line in item.evidence:
            _out(f"    evidence: {line}")
        for line in item.blockers:
            _out(f"    blocks: {line}")


@app.command("status")
def status_cmd(
    engineer: Annotated[
        str | None,
        typer.Argument(metavar="ENGINEER", help="The engineer (default: every engineer)."),
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every item, satisfied or not, its evidence and what blocks it; the rotation and
    the scenario the lead assigned. Exit 0 ready, 1 not ready."""
    from pagerdrill.readiness.actions import require_engineer
    from pagerdrill.readiness.status import engineers, status

    ctx = _context(workspace)
    names = [require_engineer(ctx, engineer).name] if engineer else engineers(ctx)
    result = [status(ctx, name) for name in names]
    if as_json:
        _out(
            json.dumps(
                [s.to_json() for s in result] if not engineer else result[0].to_json(),
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for i, st in enumerate(result):
            if i:
                _out()
            _render(st)
    if not all(s.ready for s in result):
        raise typer.Exit(1)


@app.command("team")
def team(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """One row per engineer: ready (a signed go) or what blocks, the rotation, the last
    drill, when a go expires or a fresh drill is due; then everyone the escalation
    schedules put on call in the gate's look-ahead (14 days) without a go that holds."""
    from pagerdrill.readiness.status import engineers, schedule_warnings, status

    ctx = _context(workspace)
    rows: list[dict[str, Any]] = []
    statuses: dict[str, Status] = {}
    for name in engineers(ctx):
        st = statuses[name] = status(ctx, name)
        rows.append(
            {
                "engineer": name,
                "ready": st.ready,
                "blocked_on": [i.id for i in st.open_items],
                "rotation": st.rotation,
                "last_drill": st.last_drill,
                "expires": st.expires,
                "fresh_drill_due": st.fresh_drill_due,
                "assigned": st.assigned,
            }
        )
    warnings = schedule_warnings(ctx, statuses)
    if as_json:
        _out(
            json.dumps(
                {"engineers": rows, "warnings": [w.__dict__ for w in warnings]},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    width = max([len(r["engineer"]) for r in rows] + [8])
    _out(f"{'engineer':<{width}}  rot  {'last drill':<10}  state")
    for r in rows:
        state = "ready" if r["ready"] else "blocked on " + ", ".join(r["blocked_on"])
        due = [f"go expires {r['expires']}"] if r["expires"] else []
        due += [f"fresh drill due {r['fresh_drill_due']}"] if r["fresh_drill_due"] else []
        if due:
            state += f" ({', '.join(due)})"
        last = (r["last_drill"] or "-")[:10]
        _out(f"{r['engineer']:<{width}}  {r['rotation']:>3}  {last:<10}  {state}")
    for w in warnings:
        _out(f"warning: {w.render()}")


@app.command("attest")
def attest(
    engineer: Engineer,
    item: Annotated[
        str, typer.Argument(metavar="ITEM", help="The gate item (shadow, reverse-shadow ...).")
    ],
    by: Annotated[str, typer.Option("--by", help="Who attests (on the roster).")],
    note: Annotated[str, typer.Option("--note", help="What they saw.")] = "",
    date: Annotated[str | None, typer.Option("--date", help="A shift's date.")] = None,
    hours: Annotated[float | None, typer.Option("--hours", help="A shift's length.")] = None,
    runbook: Annotated[
        str | None, typer.Option("--runbook", help="The runbook reviewed (runbook item).")
    ] = None,
    observations: Annotated[
        Path | None,
        typer.Option(
            "--observations",
            help="A YAML list of {alert, made_sense, note}, one per alert of the shadow shift.",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """An attestation by a named person: a shadow or reverse-shadow shift (an on-call,
    with its date and length), a runbook review (naming the runbook; its content hash is
    pinned), or a lead's word that the register's pending findings were discussed."""
    from pagerdrill.readiness.actions import attest as do_attest

    ctx = _context(workspace)
    obs = _observations(observations) if observations else None
    entry, path = do_attest(
        ctx,
        engineer,
        item,
        by,
        note=note,
        date=date,
        hours=hours,
        runbook=runbook,
        observations=obs,
    )
    _out(f"✓ {entry.item} for {engineer} attested by {by} ({ctx.rel(path)})")


def _observations(path: Path):
    from pydantic import BaseModel, RootModel

    from pagerdrill.readiness.records import Observation
    from pagerdrill.workspace.yamlfile import load_yaml, validate

    class Observations(RootModel[list[Observation]]):
        pass

    data, lines = load_yaml(path)
    model: BaseModel = validate(Observations, data, path, lines)
    return list(model.root)  # type: ignore[attr-defined]


@app.command("read")
def read(
    engineer: Engineer,
    document: Annotated[
        str, typer.Argument(metavar="DOCUMENT", help="The read item or its document's path.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Record it without asking.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Record that the engineer read a document; its content hash is kept, so an edited
    document asks for a new read. A security register shows its pending findings in the
    gate's on-call categories first; a changelog, the versions since the last read."""
    from pagerdrill.readiness.actions import preview_read, record_read

    ctx = _context(workspace)
    preview = preview_read(ctx, engineer, document)
    _out(f"{preview.item.document}: {preview.item.text}")
    if preview.item.format == "security-register":
        cats = ", ".join(ctx.gate.oncall_categories)
        _out(f"pending findings in the on-call categories ({cats}):")
        for f in preview.findings:
            score = f"{f.score:g}" if f.score is not None else "-"
            _out(f"  {f.id}  [{f.category}] {score}  {f.title}  ({f.source})")
        if not preview.findings:
            _out("  none")
    elif preview.item.format == "changelog":
        _out(
            "versions since your last read:"
            if preview.releases
            else "nothing new since your last read"
        )
        for r in preview.releases:
            _out(f"  [{r.version}] {r.date or ''}")
            for kind, lines in r.changes.items():
                for line in lines:
                    _out(f"    {kind}: {line}")
    if not yes and not typer.confirm(f"{engineer}: read it cover to cover?", default=False):
        _err("nothing recorded")
        raise typer.Exit(1)
    _entry, path = record_read(ctx, engineer, preview)
    _out(f"✓ read recorded for {engineer} ({ctx.rel(path)})")


@app.command("quiz")
def quiz(engineer: Engineer, workspace: WorkspaceOption = None) -> None:
    """Ask the pager question and time the answer; it is graded for the gate's order
    (acknowledge → open dashboards → search errors in traces → identify recurrence) and
    its time limit."""
    from pagerdrill.readiness.actions import quiz_item, record_quiz, require_engineer
    from pagerdrill.readiness.quiz import grade

    ctx = _context(workspace)
    require_engineer(ctx, engineer)
    rule = quiz_item(ctx).quiz_rule
    typer.echo(f"{rule.question} (answer within {rule.limit_s:g} s)", err=True)
    started = time.monotonic()
    answer = input()
    seconds = time.monotonic() - started
    _entry, path = record_quiz(ctx, engineer, answer, seconds)
    g = grade(answer, seconds, rule)
    if g.passed:
        _out(f"✓ right, in {seconds:.0f} s: " + " → ".join(g.found) + f" ({ctx.rel(path)})")
    else:
        _out("✗ " + "; ".join(g.problems(rule, seconds)) + f" ({ctx.rel(path)})")
        raise typer.Exit(1)


@app.command("access")
def access(
    engineer: Engineer,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Confirm every tool without asking.")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Probe each tool URL the gate names (HTTP status only, a short timeout, no
    redirects followed) and ask the engineer to confirm their access to each tool."""
    from pagerdrill.readiness.access import probe
    from pagerdrill.readiness.actions import access_item, record_access, require_engineer

    ctx = _context(workspace)
    require_engineer(ctx, engineer)
    checks = []
    for tool in access_item(ctx).tools:
        check = probe(tool)
        seen = (
            f"HTTP {check.status}"
            if check.status is not None
            else (f"unreachable: {check.error}" if check.url else "no URL to probe")
        )
        confirmed = yes or typer.confirm(f"{tool.name} ({seen}): you have access?", default=False)
        checks.append(check.model_copy(update={"confirmed": confirmed}))
        _out(f"{'✓' if confirmed else '✗'} {tool.name}: {seen}")
    _entry, path = record_access(ctx, engineer, checks)
    _out(f"recorded ({ctx.rel(path)})")


@app.command("signoff")
def signoff(
    engineer: Engineer,
    by: Annotated[str, typer.Option("--by", help="Who signs (on the roster).")],
    role: Annotated[str, typer.Option("--role", help="engineer or oncall.")],
    note: Annotated[str, typer.Option("--note", help="The go/no-go in writing.")],
    go: Annotated[bool, typer.Option("--go/--no-go", help="The decision.")],
    sign_with: Annotated[
        Path | None,
        typer.Option(
            "--sign-with",
            metavar="KEY",
            help="SSH key to sign with (a .pub with an ssh-agent holding its private key works).",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """A go or no-go by the engineer or an experienced on-call, refused while any item is
    open. A no-go sends the engineer back: the rotation goes up and the per-rotation items
    (shadow, reverse-shadow) are reopened, the note kept as the reason."""
    from pagerdrill.readiness.actions import signoff as do_signoff

    ctx = _context(workspace)
    entry, path, reopen = do_signoff(ctx, engineer, by, role, go, note, sign_with)
    signed = ", signed" if entry.signature else ""
    _out(f"✓ {entry.decision} by {by} as {role} for {engineer}{signed} ({ctx.rel(path)})")
    if reopen is not None:
        _out(f"rotation {reopen.rotation}: reopened {', '.join(reopen.reopened)}")


@app.command("assign")
def assign(
    engineer: Engineer,
    scenario: Annotated[
        str, typer.Argument(metavar="SCENARIO", help="The scenario to walk through.")
    ],
    by: Annotated[str, typer.Option("--by", help="The lead who assigns it.")],
    workspace: WorkspaceOption = None,
) -> None:
    """A scenario the lead wants the engineer to drive for the drill item."""
    from pagerdrill.readiness.actions import assign as do_assign

    ctx = _context(workspace)
    _entry, path = do_assign(ctx, engineer, scenario, by)
    _out(f"✓ {scenario} assigned to {engineer} by {by} ({ctx.rel(path)})")


@app.command("verify")
def verify(
    engineer: Annotated[
        str | None, typer.Argument(metavar="ENGINEER", help="The engineer (default: everyone).")
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every entry as written, every digest a sign-off pinned, every signature against
    the roster's keys in the tool's namespace. Exit 0 clean, 1 problems."""
    from pagerdrill.readiness.actions import require_engineer
    from pagerdrill.readiness.status import engineers
    from pagerdrill.readiness.verify import verify as do_verify

    ctx = _context(workspace)
    names = [require_engineer(ctx, engineer).name] if engineer else engineers(ctx)
    problems, checked = do_verify(ctx, names)
    if as_json:
        _out(json.dumps({"checked": checked, "problems": [p.__dict__ for p in problems]}, indent=2))
    else:
        for p in problems:
            _out(p.render())
        _err(f"{len(problems)} problem(s) in {checked} entr{'y' if checked == 1 else 'ies'}")
    if problems:
        raise typer.Exit(1)


@app.command("log")
def log(engineer: Engineer, workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """The audit trail: every entry recorded for the engineer, in time order."""
    from pagerdrill.readiness.actions import require_engineer

    ctx = _context(workspace)
    require_engineer(ctx, engineer)
    stored = ctx.records.stored(engineer)
    if as_json:
        _out(
            json.dumps(
                [
                    s.entry.model_dump(exclude_defaults=True)
                    if s.entry
                    else {"file": ctx.rel(s.path), "problem": s.problem}
                    for s in stored
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for s in stored:
        if s.entry is None:
            _out(f"?  {ctx.rel(s.path)}: {s.problem}")
            continue
        e = s.entry
        what = e.decision or e.subject or e.date or (e.answer[:40] if e.answer else "")
        if e.kind == "reopen":
            what = f"rotation {e.rotation}: reopened {', '.join(e.reopened)}"
        _out(
            f"{e.at}  {e.kind:<11}  {e.item or '-':<17}  by {e.by}  {what}"
            + (f"  — {e.note}" if e.note else "")
        )
