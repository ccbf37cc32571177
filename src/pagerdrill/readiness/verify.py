"""`readiness verify`: every entry still reads as it was written, every digest a sign-off
pinned still matches its file, and every signature (of a sign-off, or of a lead's review
in a drill journal) verifies against the roster's keys in the tool's namespace. Each
problem names the file it is about."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pagerdrill.readiness import signing
from pagerdrill.readiness.records import Entry, sha256_file
from pagerdrill.readiness.status import Context


@dataclass(frozen=True)
class Finding:
    file: str
    message: str

    def render(self) -> str:
        return f"{self.file}: {self.message}"


def verify(ctx: Context, engineers: list[str]) -> tuple[list[Finding], int]:
    """(every problem, how many entries were checked)."""
    out: list[Finding] = []
    checked = 0
    keyed = [(p.name, signing.key_id(p.ssh_key)) for p in ctx.people.model.people if p.ssh_key]
    owners = {key: name for name, key in keyed}
    signers = signing.allowed_signers(keyed)
    for engineer in engineers:
        for stored in ctx.records.stored(engineer):
            rel = ctx.rel(stored.path)
            checked += 1
            if stored.entry is None:
                out.append(Finding(rel, stored.problem or "not an entry"))
                continue
            entry = stored.entry
            if entry.digest != entry.content_digest():
                out.append(
                    Finding(
                        rel, "edited after it was recorded (its digest does not match its content)"
                    )
                )
            if entry.kind != "signoff":
                continue
            for pin in entry.pins:
                path = ctx.root / pin.path
                if not path.is_file():
                    out.append(Finding(pin.path, f"pinned by the sign-off {rel}, and gone"))
                elif sha256_file(path) != pin.sha256 and not _appended_reviews_only(
                    path, pin.sha256
                ):
                    out.append(Finding(pin.path, f"changed since the sign-off {rel} pinned it"))
            if entry.signature or entry.statement:
                out.extend(_signature(entry, rel, owners, signers))
            elif ctx.gate.require_signatures:
                out.append(Finding(rel, "not signed, and the gate requires signed sign-offs"))
        for facts in ctx.drills_of(engineer):
            out.extend(_reviews(ctx.root / "drills" / facts.file, owners, signers))
    return out, checked


def _appended_reviews_only(path: Path, pinned: str) -> bool:
    """A drill journal is append-only and a lead may review it after a sign-off pinned
    it: the pin still holds when the journal's first lines are what was pinned and
    every line after them is a review."""
    if path.suffix != ".jsonl":
        return False
    h = hashlib.sha256()
    lines = path.read_bytes().splitlines(keepends=True)
    for number, line in enumerate(lines):
        if h.hexdigest() == pinned:
            return number > 0 and all(_is_review(rest) for rest in lines[number:])
        h.update(line)
    return False


def _is_review(line: bytes) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("type") == "review"


def _reviews(journal: Path, owners: dict[str, str], signers: str) -> list[Finding]:
    from pagerdrill.readiness.reviews import PREDICATE_KEYS, signed_reviews

    out: list[Finding] = []
    for line, event, before in signed_reviews(journal):
        rel = f"drills/{journal.name}:{line}"
        by = str(event.get("by"))
        problems = _signed(event.get("statement"), event.get("signature"), by, rel, owners, signers)
        if problems:
            out.extend(problems)
            continue
        try:
            stmt = json.loads(str(event["statement"]))
            predicate = stmt["predicate"]
            subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
        except (ValueError, KeyError, TypeError):
            out.append(Finding(rel, "the signed statement is not an in-toto Statement"))
            continue
        if stmt.get("predicateType") != signing.REVIEW_PREDICATE_TYPE:
            out.append(Finding(rel, f"the signed statement is a {stmt.get('predicateType')}"))
        for key in PREDICATE_KEYS:
            if predicate.get(key) != event.get(key):
                out.append(
                    Finding(
                        rel, f"the review's {key} is not what was signed ({predicate.get(key)!r})"
                    )
                )
        if subjects != {f"drills/{journal.name}": before}:
            out.append(
                Finding(
                    f"drills/{journal.name}",
                    f"changed before line {line} since {by} signed the review there",
                )
            )
    return out


def _signed(
    statement: object, signature: object, by: str, rel: str, owners: dict[str, str], signers: str
) -> list[Finding]:
    """What is wrong with `by`'s signature of `statement`, if anything."""
    if not isinstance(signature, str) or not isinstance(statement, str):
        return [Finding(rel, "a statement without a signature, or a signature without one")]
    try:
        info = signing.signature_info(signature)
    except ValueError as exc:
        return [Finding(rel, str(exc))]
    if info.namespace != signing.NAMESPACE:
        return [
            Finding(rel, f"signed for the namespace {info.namespace!r}, not {signing.NAMESPACE!r}")
        ]
    owner = owners.get(info.public_key)
    if owner is None:
        return [Finding(rel, f"signed by a key not in the roster ({info.public_key[:40]}...)")]
    if owner != by:
        return [Finding(rel, f"signed with {owner}'s key, but recorded as {by}'s")]
    why = signing.verify(statement, signature, signers, by)
    if why is not None:
        return [Finding(rel, f"the signature does not verify: {why}")]
    return []


def _signature(entry: Entry, rel: str, owners: dict[str, str], signers: str) -> list[Finding]:
    problems = _signed(entry.statement, entry.signature, entry.by, rel, owners, signers)
    if problems or not entry.signature or not entry.statement:
        return problems
    out = []
    try:
        stmt = json.loads(entry.statement)
        predicate = stmt["predicate"]
        subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
    except (ValueError, KeyError, TypeError):
        return [Finding(rel, "the signed statement is not an in-toto Statement")]
    for key in ("engineer", "decision", "role", "by", "note", "rotation"):
        if predicate.get(key) != getattr(entry, key):
            out.append(
                Finding(rel, f"the entry's {key} is not what was signed ({predicate.get(key)!r})")
            )
    if subjects != {p.path: p.sha256 for p in entry.pins}:
        out.append(Finding(rel, "the entry's pins are not the digests that were signed"))
    return out


def rel_files(paths: list[Path]) -> list[str]:
    return [str(p) for p in paths]
