"""An engineer's readiness, computed each time from their entries and the evidence the
entries and items point at (the drill journals, the runbooks, the documents, the
escalation matrix). Nothing here copies what a journal or a runbook says."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from pagerdrill.readiness.drill_item import drill_item
from pagerdrill.readiness.drills import DrillFacts, DrillIndex
from pagerdrill.readiness.gate import Gate, Item, load_gate
from pagerdrill.readiness.matrix import MatrixCheck, OnCallTurn, check_matrix, on_call_ahead
from pagerdrill.readiness.quiz import grade
from pagerdrill.readiness.records import Entry, Records, parse_iso, sha256_file, slug
from pagerdrill.readiness.roster import LoadedRoster, load_people


@dataclass
class ItemStatus:
    id: str
    text: str
    kind: str
    done: bool = False
    evidence: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """Workspace-relative files the item rests on (pinned by a sign-off)."""

    entries: list[str] = field(default_factory=list)
    """Ids of the entries it rests on."""

    reopened: bool = False
    """Reopened by a no-go: to be done again this rotation."""


@dataclass
class Status:
    engineer: str
    rotation: int
    items: list[ItemStatus]
    assigned: str | None = None
    assigned_by: str | None = None
    ready: bool = False
    go_at: str | None = None
    expires: str | None = None
    expired: bool = False
    last_drill: str | None = None
    fresh_drill_due: str | None = None
    reopen_reason: str | None = None

    def item(self, item_id: str) -> ItemStatus:
        return next(i for i in self.items if i.id == item_id)

    @property
    def open_items(self) -> list[ItemStatus]:
        return [i for i in self.items if not i.done]

    def to_json(self) -> dict:
        return asdict(self)


class Context:
    """One workspace at one moment: the gate, the roster, the records and the evidence,
    each read once however many engineers are looked at."""

    def __init__(self, root: Path, now: dt.datetime | None = None):
        self.root = root
        self.now = now or dt.datetime.now(dt.UTC)
        self.gate: Gate = load_gate(root)
        self.people: LoadedRoster = load_people(root)
        self.records = Records(root)
        self._digests: dict[Path, str] = {}

    @cached_property
    def drill_index(self) -> DrillIndex:
        return DrillIndex(self.root)

    def drills_of(self, engineer: str) -> list[DrillFacts]:
        """The drills `engineer` drove, oldest first (from the index: only theirs are read)."""
        return self.drill_index.of(engineer)

    @cached_property
    def matrix(self) -> MatrixCheck:
        return check_matrix(self.root, self.now, self.gate.schedule_warning_days)

    @cached_property
    def git_root(self) -> bool:
        done = _git(self.root, "rev-parse", "--is-inside-work-tree")
        return done is not None and done.strip() == "true"

    @cached_property
    def runbook_authors(self) -> dict[str, list[Path]]:
        """Each runbook file by the author its front matter names (only the front matter
        is read here; a runbook is parsed when its author's status asks for it)."""
        import yaml

        from pagerdrill.runbooks import runbook_files, settings
        from pagerdrill.runbooks.model import split_front_matter

        template = settings(self.root)
        out: dict[str, list[Path]] = {}
        for path in runbook_files(self.root / template.dir, template.index):
            try:
                raw, _line, _rest = split_front_matter(path.read_text(encoding="utf-8"))
                front = yaml.safe_load(raw) if raw else None
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            if isinstance(front, dict) and front.get("author") is not None:
                out.setdefault(str(front["author"]), []).append(path)
        return out

    def runbooks_by(self, engineer: str) -> list:
        from pagerdrill.runbooks import parse_runbook

        out = []
        for path in self.runbook_authors.get(engineer, []):
            try:
                out.append(parse_runbook(path, path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
        return out

    def digest(self, path: Path) -> str:
        """A document's content hash, once per context however many engineers read it."""
        if path not in self._digests:
            self._digests[path] = sha256_file(path)
        return self._digests[path]

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def has_role(self, name: str, *roles: str) -> bool:
        person = self.people.person(name)
        return person is not None and any(r in person.roles for r in roles)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def rotation_of(entries: list[Entry]) -> int:
    return 1 + sum(1 for e in entries if e.kind == "reopen")


def status(ctx: Context, engineer: str, entries: list[Entry] | None = None) -> Status:
    if entries is None:
        entries = ctx.records.entries(engineer)
    rotation = rotation_of(entries)
    reopens = [e for e in entries if e.kind == "reopen"]
    reopened = set(reopens[-1].reopened) if reopens else set()
    out = Status(engineer, rotation, [])
    if reopens:
        out.reopen_reason = reopens[-1].note
    assignments = [e for e in entries if e.kind == "assignment"]
    if assignments:
        out.assigned, out.assigned_by = assignments[-1].subject, assignments[-1].by
    for item in ctx.gate.items:
        st = ItemStatus(item.id, item.text, item.kind, reopened=item.id in reopened)
        current = [
            e
            for e in entries
            if e.item == item.id and (not item.per_rotation or e.rotation == rotation)
        ]
        if item.kind == "drill":
            drill_item(ctx, engineer, item, st, out)
        elif item.kind == "runbook":
            _runbook(ctx, engineer, item, st, current)
        elif item.kind == "read":
            _read(ctx, engineer, item, st, current)
        elif item.kind == "escalation":
            _escalation(ctx, st)
        elif item.kind == "shift":
            _shift(ctx, engineer, item, st, current)
        elif item.kind == "access":
            _access(item, st, current)
        elif item.kind == "quiz":
            _quiz(item, st, current)
        st.done = not st.blockers and item.kind != "signoff"
        out.items.append(st)
    signoff = next(i for i in out.items if i.kind == "signoff")
    _signoff(ctx, engineer, rotation, entries, signoff, out)
    out.ready = all(i.done for i in out.items)
    return out


def _runbook(ctx: Context, engineer: str, item: Item, st: ItemStatus, entries: list[Entry]) -> None:
    from pagerdrill.runbooks import lint_folder, settings

    rule = item.runbook_rule
    mine = [
        rb for rb in ctx.runbooks_by(engineer) if str(rb.front_matter.get("author", "")) == engineer
    ]
    if not mine:
        st.blockers.append(f"no runbook in runbooks/ names {engineer} as its author")
        return
    template = settings(ctx.root)
    folder = ctx.root / template.dir
    branch = rule.branch
    if ctx.git_root and branch is None:
        branch = (_git(ctx.root, "rev-parse", "--abbrev-ref", "HEAD") or "HEAD").strip()
    best: list[str] | None = None
    for rb in mine:
        reasons: list[str] = []
        rel = ctx.rel(rb.path)
        if ctx.git_root:
            added = _git(ctx.root, "log", "--diff-filter=A", "--format=%an", "--", rel)
            adder = added.strip().splitlines()[-1] if added and added.strip() else None
            if adder is not None and adder != engineer:
                reasons.append(f"{rel}: added to git by {adder}, not {engineer}")
            if _git(ctx.root, "cat-file", "-e", f"{branch}:{rel}") is None:
                reasons.append(f"{rel}: not merged (not on branch {branch})")
        for problem in lint_folder(folder, template, [rb.path]):
            reasons.append(f"lint: {problem}")
        if rule.reviewed:
            reviews = [e for e in entries if e.subject == rb.path.name and e.by != engineer]
            fresh = [e for e in reviews if any(p.sha256 == rb.sha256 for p in e.pins)]
            if fresh:
                st.evidence.append(f"{rel} reviewed by {fresh[-1].by} on {fresh[-1].at[:10]}")
                st.entries.append(fresh[-1].id)
            elif reviews:
                reasons.append(
                    f"{rel}: reviewed by {reviews[-1].by} at an older version "
                    "(edited since); review it again"
                )
            else:
                reasons.append(
                    f"{rel}: not reviewed (an attestation naming it, by someone on the roster: "
                    f"`pagerdrill readiness attest {engineer!r} {item.id} --by REVIEWER "
                    f"--runbook {rb.path.name}`)"
                )
        if not reasons:
            st.evidence.insert(
                0,
                f"{rel} by {engineer}, lint clean, in the index"
                + (f", on {branch}" if ctx.git_root else ""),
            )
            st.files.append(rel)
            return
        if best is None or len(reasons) < len(best):
            best = reasons
    st.evidence.clear()
    st.entries.clear()
    st.blockers.extend(best or [])


def _read(ctx: Context, engineer: str, item: Item, st: ItemStatus, entries: list[Entry]) -> None:
    assert item.document
    path = ctx.root / item.document
    if not path.is_file():
        st.blockers.append(f"{item.document}: no such document")
        return
    digest = ctx.digest(path)
    reads = [e for e in entries if e.kind == "read" and e.by == engineer]
    fresh = [e for e in reads if any(p.sha256 == digest for p in e.pins)]
    if fresh:
        st.evidence.append(f"{item.document} read by {engineer} on {fresh[-1].at[:10]}")
        st.entries.append(fresh[-1].id)
        st.files.append(item.document)
    elif reads:
        st.blockers.append(
            f"{item.document} changed since {engineer} read it on "
            f"{reads[-1].at[:10]}; read it again"
        )
    else:
        st.blockers.append(
            f"{item.document}: not read (`pagerdrill readiness read {engineer!r} {item.id}`)"
        )
    if item.lead_discussion:
        talks = [
            e
            for e in entries
            if e.kind == "attestation"
            and e.by != engineer
            and ctx.has_role(e.by, "lead")
            and any(p.sha256 == digest for p in e.pins)
        ]
        if talks:
            st.evidence.append(
                f"pending findings discussed with {talks[-1].by} on {talks[-1].at[:10]}"
            )
            st.entries.append(talks[-1].id)
        else:
            st.blockers.append(
                "pending findings not yet discussed with a lead (an attestation"
                f" by a lead: `readiness attest {engineer!r} {item.id} --by LEAD`)"
            )


def _escalation(ctx: Context, st: ItemStatus) -> None:
    check = ctx.matrix
    st.blockers.extend(check.blockers)
    if check.path is not None:
        st.files.append(ctx.rel(check.path))
        if not check.blockers:
            st.evidence.append(
                f"{ctx.rel(check.path)} validates clean at {ctx.now:%Y-%m-%d %H:%M} UTC"
            )


def _shift(ctx: Context, engineer: str, item: Item, st: ItemStatus, entries: list[Entry]) -> None:
    assert item.shift
    rule = item.shift
    attested = [
        e
        for e in entries
        if e.kind == "attestation" and e.by != engineer and ctx.has_role(e.by, "on-call")
    ]
    if not attested:
        st.blockers.append(
            f"{rule.name} shift not attested by an on-call other than "
            f"{engineer}" + (" this rotation" if item.per_rotation else "")
        )
        return
    e = attested[-1]
    if (e.hours or 0) < rule.min_hours:
        st.blockers.append(
            f"{rule.name} shift of {e.hours:g} h; the gate asks {rule.min_hours:g} h"
        )
    bar = rule.observations
    if bar is not None:
        seen = len(e.observations)
        sense = sum(1 for o in e.observations if o.made_sense)
        if seen < bar.min_alerts:
            st.blockers.append(f"{seen} alert(s) observed; the gate asks at least {bar.min_alerts}")
        elif sense / seen <= bar.min_made_sense:
            st.blockers.append(
                f"{sense} of {seen} alerts made sense; the gate asks more than "
                f"{bar.min_made_sense:.0%}"
            )
    length = f", {e.hours:g} h" if e.hours is not None else ""
    st.evidence.append(f"{rule.name} shift {e.date}{length}, attested by {e.by} on {e.at[:10]}")
    st.entries.append(e.id)


def _access(item: Item, st: ItemStatus, entries: list[Entry]) -> None:
    checks = [e for e in entries if e.kind == "access"]
    if not checks:
        st.blockers.append("tool access not checked (`pagerdrill readiness access`)")
        return
    last = checks[-1]
    by_name = {t.name: t for t in last.tools}
    for tool in item.tools:
        check = by_name.get(tool.name)
        if check is None or not check.confirmed:
            st.blockers.append(f"{tool.name}: access not confirmed")
        elif tool.url and check.status is None:
            st.blockers.append(f"{tool.name}: {tool.url} did not answer ({check.error})")
    if not st.blockers:
        st.evidence.append(f"{len(item.tools)} tools confirmed on {last.at[:10]}")
        st.entries.append(last.id)


def _quiz(item: Item, st: ItemStatus, entries: list[Entry]) -> None:
    answers = [e for e in entries if e.kind == "quiz" and e.answer is not None]
    if not answers:
        st.blockers.append("the pager question not answered (`pagerdrill readiness quiz`)")
        return
    rule = item.quiz_rule
    last = answers[-1]
    seconds = last.answer_s or 0.0
    g = grade(last.answer or "", seconds, rule)
    if g.passed:
        st.evidence.append(f"answered in {seconds:.0f} s on {last.at[:10]}: " + " → ".join(g.found))
        st.entries.append(last.id)
    else:
        st.blockers.extend(g.problems(rule, seconds))


def _signoff(
    ctx: Context, engineer: str, rotation: int, entries: list[Entry], st: ItemStatus, out: Status
) -> None:
    signoffs = [e for e in entries if e.kind == "signoff" and e.rotation == rotation]
    mine = [e for e in signoffs if e.role == "engineer" and e.by == engineer]
    theirs = [
        e
        for e in signoffs
        if e.role == "oncall" and e.by != engineer and ctx.has_role(e.by, "on-call")
    ]
    others_open = [i.id for i in out.items if i is not st and not i.done]
    for who, found in (("the engineer", mine), ("an experienced on-call", theirs)):
        if not found:
            st.blockers.append(f"no go from {who} (rotation {rotation})")
            continue
        e = found[-1]
        if ctx.gate.require_signatures and not e.signature:
            st.blockers.append(
                f"the sign-off by {e.by} is not signed; the gate requires signatures"
            )
            continue
        signed = " (signed)" if e.signature else ""
        st.evidence.append(f"go by {e.by} as {e.role} on {e.at[:10]}{signed}: {e.note}")
        st.entries.append(e.id)
    if st.blockers:
        return
    go_at = max(e.at for e in (*mine[-1:], *theirs[-1:]))
    out.go_at = go_at
    days = ctx.gate.expires_after_days
    if days:
        expires = parse_iso(go_at) + dt.timedelta(days=days)
        out.expires = expires.date().isoformat()
        if expires < ctx.now:
            out.expired = True
            st.blockers.append(f"the go of {go_at[:10]} expired on {out.expires}; recertify")
    if others_open:
        st.blockers.append("items open since the go: " + ", ".join(others_open))
    st.done = not st.blockers


def engineers(ctx: Context) -> list[str]:
    """The roster's engineers, and anyone else with entries (by folder name)."""
    names = [p.name for p in ctx.people.with_role("engineer")]
    known = {slug(n) for n in names}
    for folder in ctx.records.engineers_with_entries():
        if folder not in known:
            found = ctx.records.entries_in(folder)
            if found:
                names.append(found[0].engineer)
    return names


@dataclass(frozen=True)
class ScheduleWarning:
    """Someone the schedule puts on call soon who is not ready to take the pager."""

    person: str
    schedule: str
    start: str
    """When the turn starts (UTC), or when it ends for a turn already under way."""

    reason: str
    now: bool = False
    """On call at this moment: `start` is then when the turn ends."""

    def render(self) -> str:
        when = f"now, until {self.start}," if self.now else f"from {self.start}"
        return f"{self.person} is on call ({self.schedule}) {when} {self.reason}"


def schedule_warnings(
    ctx: Context, statuses: dict[str, Status] | None = None
) -> list[ScheduleWarning]:
    """Every engineer the escalation schedules put on call within the gate's look-ahead
    who has no go, whose go expired, or who is no longer ready. The gate certifies the
    roster's engineers; on-calls and leads without the engineer role are the experienced
    people who sign, not people it certifies."""
    days = ctx.gate.schedule_warning_days
    out: list[ScheduleWarning] = []
    statuses = dict(statuses or {})
    turns: list[OnCallTurn] = on_call_ahead(ctx.matrix, ctx.now, days)
    seen: set[str] = set()
    for turn in turns:
        person = ctx.people.person(turn.person)
        if person is None or "engineer" not in person.roles or person.name in seen:
            continue
        seen.add(person.name)
        st = statuses.get(person.name)
        if st is None:
            st = statuses[person.name] = status(ctx, person.name)
        if st.ready:
            continue
        if st.go_at is None:
            reason = "with no go sign-off"
        elif st.expired:
            reason = f"and their go expired on {st.expires}"
        else:
            reason = "and is no longer ready: " + ", ".join(i.id for i in st.open_items)
        under_way = turn.start <= ctx.now
        moment = turn.end if under_way else turn.start
        start = f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        out.append(ScheduleWarning(person.name, turn.schedule, start, reason, under_way))
    return out
