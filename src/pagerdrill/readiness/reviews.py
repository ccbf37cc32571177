"""Signed lead reviews of drills. A review's Statement names the journal as it stood
when the lead reviewed it (the digest of every line before the review) and says who
gave which verdict and why; the signature and the Statement go into the review event
itself, so the journal stays the one record of the drill. `readiness verify` checks
each against the roster's keys, the way it checks sign-offs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from pagerdrill.errors import BadInputError
from pagerdrill.readiness import signing
from pagerdrill.readiness.records import Pin, iso, utc_now
from pagerdrill.readiness.roster import load_people, require

PREDICATE_KEYS = ("drill", "by", "verdict", "comment")


def review_signer(root: Path, by: str, key: Path) -> Callable[[Path, dict], dict]:
    """A signer for `reports.drills.review`: refuses (before anything is written) a
    reviewer not on the roster, without an ssh_key there, or signing with another key."""
    roster = load_people(root)
    person = require(roster, by, "reviewer")
    if not person.ssh_key:
        raise BadInputError(
            f"{by} has no ssh_key in the roster {roster.path}; a signature could not be verified"
        )
    if signing.public_key_of(key) != signing.key_id(person.ssh_key):
        raise BadInputError(f"{key} is not {by}'s key in the roster {roster.path}")

    def sign(journal: Path, review: dict) -> dict:
        digest = hashlib.sha256(journal.read_bytes()).hexdigest()
        predicate = {k: review.get(k) for k in PREDICATE_KEYS} | {"time": iso(utc_now())}
        text = signing.statement(
            [Pin(path=f"drills/{journal.name}", sha256=digest)],
            predicate,
            signing.REVIEW_PREDICATE_TYPE,
        )
        return {"statement": text, "signature": signing.sign(text, key)}

    return sign


def signed_reviews(journal: Path) -> list[tuple[int, dict, str]]:
    """Each signed review of a journal: (its line number, the event, the sha256 of the
    journal's bytes before its line)."""
    out = []
    h = hashlib.sha256()
    try:
        data = journal.read_bytes()
    except OSError:
        return []
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if (
            isinstance(event, dict)
            and event.get("type") == "review"
            and (event.get("signature") or event.get("statement"))
        ):
            out.append((number, event, h.hexdigest()))
        h.update(line)
    return out
