"""Recording entries, each refused with a clear message (and nothing written) when it
is not the engineer's, not on the roster, not an item of the gate, or not allowed yet.
Every check that depends on earlier entries is made under the engineer's lock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pagerdrill.errors import BadInputError, did_you_mean
from pagerdrill.readiness import signing
from pagerdrill.readiness.documents import (
    Finding,
    Release,
    parse_changelog,
    parse_register,
    pending_in,
    released,
    since,
)
from pagerdrill.readiness.gate import Item
from pagerdrill.readiness.records import (
    Entry,
    Observation,
    Pin,
    ToolCheck,
    iso,
    sha256_file,
)
from pagerdrill.readiness.roster import Person, require
from pagerdrill.readiness.status import Context, Status, rotation_of, status


def require_engineer(ctx: Context, name: str) -> Person:
    return require(ctx.people, name, "engineer")


def require_item(ctx: Context, item_id: str) -> Item:
    item = ctx.gate.item(item_id)
    if item is None:
        close = did_you_mean(item_id, ctx.gate.ids, cutoff=0.5)
        hint = f" (did you mean {close!r}?)" if close is not None else ""
        raise BadInputError(
            f"no item {item_id!r} in the gate{hint}; its items: {', '.join(ctx.gate.ids)}"
        )
    return item


def _write(ctx: Context, after_ms: int = 0, **fields) -> tuple[Entry, Path]:
    now = ctx.now + dt.timedelta(milliseconds=after_ms)
    entry = ctx.records.new_entry(now=now, **fields)
    return entry, ctx.records.write(entry)


def _pin(ctx: Context, path: Path) -> Pin:
    return Pin(path=ctx.rel(path), sha256=sha256_file(path))


def _date(text: str | None, what: str) -> str:
    if text is None:
        raise BadInputError(f"{what}: give the shift's date (--date YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise BadInputError(f"--date {text!r}: expected a date like 2026-11-20") from None


# what proves an item that no person attests
NOT_ATTESTED = {
    "drill": "it is proven by a drill journal in drills/",
    "read": "the engineer records the read (`readiness read`)",
    "escalation": "it is `escalation validate` at the moment of sign-off",
    "access": "the engineer checks it (`readiness access`)",
    "quiz": "the engineer answers it (`readiness quiz`)",
    "signoff": "it is the two sign-offs (`readiness signoff`)",
}


def attest(
    ctx: Context,
    engineer: str,
    item_id: str,
    by: str,
    *,
    note: str = "",
    date: str | None = None,
    hours: float | None = None,
    runbook: str | None = None,
    observations: list[Observation] | None = None,
) -> tuple[Entry, Path]:
    """An attestation by a named person: a shift, a runbook review, or (for a read
    with `lead_discussion`) the lead's word that pending findings were discussed."""
    require_engineer(ctx, engineer)
    item = require_item(ctx, item_id)
    signer = require(ctx.people, by, "attester")
    if signer.name == engineer:
        raise BadInputError(f"{by} cannot attest their own item; another person attests it")
    fields: dict = {
        "kind": "attestation",
        "engineer": engineer,
        "by": by,
        "item": item.id,
        "note": note,
    }
    if item.kind == "shift":
        if "on-call" not in signer.roles:
            raise BadInputError(
                f"{by} is not an on-call in the roster; a shift is attested "
                "by an experienced on-call"
            )
        if hours is not None and hours <= 0:
            raise BadInputError(f"--hours {hours:g}: expected the shift's length in hours")
        fields |= {"date": _date(date, item.id), "hours": hours, "observations": observations or []}
    elif item.kind == "runbook":
        if not runbook:
            raise BadInputError("--runbook: name the runbook reviewed (its file name)")
        path = _runbook_path(ctx, runbook)
        fields |= {"subject": path.name, "pins": [_pin(ctx, path)]}
    elif item.kind == "read" and item.lead_discussion:
        if "lead" not in signer.roles:
            raise BadInputError(
                f"{by} is not a lead in the roster; pending findings are discussed with a lead"
            )
        assert item.document
        doc = ctx.root / item.document
        if not doc.is_file():
            raise BadInputError(f"{item.document}: no such document")
        fields |= {"subject": item.document, "pins": [_pin(ctx, doc)]}
    else:
        raise BadInputError(
            f"item {item.id!r} ({item.kind}) is not attested: {NOT_ATTESTED.get(item.kind, '')}"
        )
    with ctx.records.locked(engineer):
        fields["rotation"] = rotation_of(ctx.records.entries(engineer))
        return _write(ctx, **fields)


def _runbook_path(ctx: Context, name: str) -> Path:
    from pagerdrill.runbooks import settings

    folder = ctx.root / settings(ctx.root).dir
    candidate = folder / (name if name.endswith(".md") else f"{name}.md")
    if not candidate.is_file():
        names = [p.stem for p in folder.glob("*.md")]
        close = did_you_mean(Path(name).stem, names, cutoff=0.5)
        hint = f" (did you mean {close!r}?)" if close is not None else ""
        raise BadInputError(f"no runbook {name!r} in {folder}{hint}")
    return candidate


@dataclass(frozen=True)
class ReadPreview:
    item: Item
    path: Path
    findings: list[Finding]
    """Pending findings in the gate's on-call categories (a security register)."""

    releases: list[Release]
    """The versions since the engineer's last read (a changelog)."""

    newest: str | None


def read_item(ctx: Context, document: str) -> Item:
    """A read item by its id or its document's path."""
    reads = [i for i in ctx.gate.items if i.kind == "read"]
    for item in reads:
        if document in (item.id, item.document, Path(item.document or "").name):
            return item
    names = [i.id for i in reads] + [i.document or "" for i in reads]
    close = did_you_mean(document, names, cutoff=0.5)
    hint = f" (did you mean {close!r}?)" if close is not None else ""
    raise BadInputError(
        f"no document {document!r} in the gate{hint}; its documents: "
        + ", ".join(f"{i.id} ({i.document})" for i in reads)
    )


def preview_read(ctx: Context, engineer: str, document: str) -> ReadPreview:
    """What a read shows before it is recorded; a malformed document is refused."""
    require_engineer(ctx, engineer)
    item = read_item(ctx, document)
    assert item.document
    path = ctx.root / item.document
    if not path.is_file():
        raise BadInputError(f"{item.document}: no such document")
    findings: list[Finding] = []
    releases: list[Release] = []
    newest = None
    if item.format == "security-register":
        findings = pending_in(parse_register(path), ctx.gate.oncall_categories)
    elif item.format == "changelog":
        all_releases = parse_changelog(path)
        known = released(all_releases)
        newest = known[0].version if known else None
        last = [e for e in ctx.records.entries(engineer) if e.kind == "read" and e.item == item.id]
        releases = since(all_releases, last[-1].version if last else None)
    return ReadPreview(item, path, findings, releases, newest)


def record_read(ctx: Context, engineer: str, preview: ReadPreview) -> tuple[Entry, Path]:
    with ctx.records.locked(engineer):
        return _write(
            ctx,
            kind="read",
            engineer=engineer,
            by=engineer,
            item=preview.item.id,
            subject=preview.item.document,
            pins=[_pin(ctx, preview.path)],
            version=preview.newest,
            rotation=rotation_of(ctx.records.entries(engineer)),
        )


def quiz_item(ctx: Context) -> Item:
    item = next((i for i in ctx.gate.items if i.kind == "quiz"), None)
    if item is None:
        raise BadInputError("the gate has no quiz item")
    return item


def record_quiz(ctx: Context, engineer: str, answer: str, seconds: float) -> tuple[Entry, Path]:
    require_engineer(ctx, engineer)
    item = quiz_item(ctx)
    if not answer.strip():
        raise BadInputError("no answer given; nothing recorded")
    with ctx.records.locked(engineer):
        return _write(
            ctx,
            kind="quiz",
            engineer=engineer,
            by=engineer,
            item=item.id,
            answer=answer.strip(),
            answer_s=round(seconds, 2),
            rotation=rotation_of(ctx.records.entries(engineer)),
        )


def access_item(ctx: Context) -> Item:
    item = next((i for i in ctx.gate.items if i.kind == "access"), None)
    if item is None:
        raise BadInputError("the gate has no access item")
    return item


def record_access(ctx: Context, engineer: str, checks: list[ToolCheck]) -> tuple[Entry, Path]:
    require_engineer(ctx, engineer)
    item = access_item(ctx)
    with ctx.records.locked(engineer):
        return _write(
            ctx,
            kind="access",
            engineer=engineer,
            by=engineer,
            item=item.id,
            tools=checks,
            rotation=rotation_of(ctx.records.entries(engineer)),
        )


def assign(ctx: Context, engineer: str, scenario: str, by: str) -> tuple[Entry, Path]:
    from pagerdrill.scenarios.model import scenario_files

    require_engineer(ctx, engineer)
    lead = require(ctx.people, by, "lead")
    if "lead" not in lead.roles:
        raise BadInputError(f"{by} is not a lead in the roster; a lead assigns the scenario")
    names = [p.stem for p in scenario_files(ctx.root)]
    if scenario not in names:
        close = did_you_mean(scenario, names, cutoff=0.5)
        hint = f" (did you mean {close!r}?)" if close is not None else ""
        raise BadInputError(f"no scenario {scenario!r} in scenarios/{hint}")
    with ctx.records.locked(engineer):
        return _write(
            ctx,
            kind="assignment",
            engineer=engineer,
            by=by,
            subject=scenario,
            rotation=rotation_of(ctx.records.entries(engineer)),
        )


def evidence_pins(ctx: Context, st: Status) -> list[Pin]:
    """The digests a sign-off rests on: every file an item points at, and the record
    of every entry it counts."""
    pins: dict[str, Pin] = {}
    folder = ctx.records.folder(st.engineer)
    for item in st.items:
        for rel in item.files:
            path = ctx.root / rel
            if path.is_file():
                pins[rel] = _pin(ctx, path)
        for entry_id in item.entries:
            path = folder / f"{entry_id}.json"
            if path.is_file():
                pins[ctx.rel(path)] = _pin(ctx, path)
    return list(pins.values())


def _refuse_signer(
    ctx: Context, engineer: str, by: str, role: str, note: str, key: Path | None
) -> None:
    """Who may sign, as what, and with which key: refused before anything is read."""
    require_engineer(ctx, engineer)
    signer = require(ctx.people, by, "signer")
    if role not in ("engineer", "oncall"):
        raise BadInputError(f"--role {role!r}: expected engineer or oncall")
    if not note.strip():
        raise BadInputError("--note: a sign-off says why, in writing")
    if role == "engineer" and by != engineer:
        raise BadInputError(
            f"{by} cannot sign as the engineer for {engineer}; the engineer signs for themselves"
        )
    if role == "oncall":
        if by == engineer:
            raise BadInputError(
                f"{by} cannot sign off their own readiness as the on-call; another on-call signs"
            )
        if "on-call" not in signer.roles:
            raise BadInputError(
                f"{by} is not an on-call in the roster; an experienced on-call signs"
            )
    if ctx.gate.require_signatures and key is None:
        raise BadInputError("the gate requires signed sign-offs: --sign-with KEY")
    if key is not None:
        if not signer.ssh_key:
            raise BadInputError(
                f"{by} has no ssh_key in the roster {ctx.people.path}; "
                "a signature could not be verified"
            )
        if signing.public_key_of(key) != signing.key_id(signer.ssh_key):
            raise BadInputError(f"{key} is not {by}'s key in the roster {ctx.people.path}")


def _signature(ctx: Context, fields: dict, key: Path) -> dict:
    """The statement a signed sign-off signs (its pins and what it says) and the
    signature of it by `key`."""
    text = signing.statement(
        fields["pins"],
        {
            "engineer": fields["engineer"],
            "decision": fields["decision"],
            "note": fields["note"],
            "role": fields["role"],
            "by": fields["by"],
            "time": iso(ctx.now),
            "rotation": fields["rotation"],
        },
    )
    return {"statement": text, "signature": signing.sign(text, key)}


def signoff(
    ctx: Context,
    engineer: str,
    by: str,
    role: str,
    go: bool,
    note: str,
    key: Path | None = None,
) -> tuple[Entry, Path, Entry | None]:
    """A go or a no-go by the engineer or an on-call. Refused while an item is open.
    A no-go also records the reopening of the per-rotation items, the note its reason."""
    _refuse_signer(ctx, engineer, by, role, note, key)
    with ctx.records.locked(engineer):
        entries = ctx.records.entries(engineer)
        st = status(ctx, engineer, entries)
        still_open = [i for i in st.items if not i.done and i.kind != "signoff"]
        if still_open:
            raise BadInputError(
                f"{engineer} has open items; a sign-off waits for all of them:\n"
                + "\n".join(f"  {i.id}: {i.blockers[0]}" for i in still_open)
            )
        rotation = st.rotation
        fields: dict = {
            "kind": "signoff",
            "engineer": engineer,
            "by": by,
            "role": role,
            "decision": "go" if go else "no-go",
            "note": note.strip(),
            "item": _signoff_id(ctx),
            "rotation": rotation,
            "pins": evidence_pins(ctx, st),
        }
        if key is not None:
            fields |= _signature(ctx, fields, key)
        entry, path = _write(ctx, **fields)
        reopen = None
        if not go:
            reopened = [i.id for i in ctx.gate.items if i.per_rotation]
            reopen, _ = _write(
                ctx,
                after_ms=1,
                kind="reopen",
                engineer=engineer,
                by=by,
                rotation=rotation + 1,
                reopened=reopened,
                note=f"no-go by {by}: {note.strip()}",
            )
        return entry, path, reopen


def _signoff_id(ctx: Context) -> str:
    return next(i.id for i in ctx.gate.items if i.kind == "signoff")
