"""The workspace's drills, for the team lead: find them, list them with their times
and verdicts, and record reviews. Everything comes from the journals under `drills/`;
the index under `.pagerdrill/` is only a cache of what they say (keyed by each file's
size and modification time), rebuilt whenever a journal changes."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec

from pagerdrill.errors import BadInputError, PagerdrillError, did_you_mean
from pagerdrill.journal import (
    DrillLock,
    JournalRead,
    continue_journal,
    journal_files,
    read_journal,
)
from pagerdrill.journal.events import Hypothesis, HypothesisGraded, Review
from pagerdrill.journal.summary import hypothesis_grade, lead_grades, summary_of
from pagerdrill.timefmt import clock

INDEX_VERSION = 1


@dataclass(frozen=True)
class DrillRow:
    drill: str
    journal: str
    engineer: str | None
    scenario: str | None
    severity: str | None
    started: str | None
    outcome: str
    time_to_ack_s: float | None
    hypothesis_s: float | None
    hypothesis_correct: bool
    hypothesis_grade: str | None
    """right, wrong, ungraded (for the lead), or None: no hypothesis stated."""
    time_to_recovery_s: float | None
    recovery_verified: bool
    verdict: str | None
    reviewed_by: str | None
    complete: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def row_of(path: Path) -> DrillRow:
    read = read_journal(path, samples=False)
    s = summary_of(read)
    reviews = [e for e in read.typed if isinstance(e, Review) and e.verdict in ("pass", "fail")]
    last = reviews[-1] if reviews else None
    return DrillRow(
        drill=read.drill_id,
        journal=str(path),
        engineer=s.engineer,
        scenario=s.scenario,
        severity=s.severity,
        started=s.started,
        outcome=s.outcome,
        time_to_ack_s=s.time_to_ack_s,
        hypothesis_s=s.hypothesis.correct_s or s.hypothesis.first_s,
        hypothesis_correct=s.hypothesis.correct,
        hypothesis_grade=s.hypothesis.grade,
        time_to_recovery_s=s.time_to_recovery_s,
        recovery_verified=s.recovery_verified,
        verdict=last.verdict if last else None,
        reviewed_by=last.by if last else None,
        complete=read.complete,
    )


def _parse_since(since: str) -> str:
    try:
        return dt.date.fromisoformat(since).isoformat()
    except ValueError:
        raise BadInputError(f"--since {since!r}: expected a date like 2026-11-01") from None


def list_drills(
    drills_dir: Path,
    index_path: Path | None = None,
    *,
    engineer: str | None = None,
    scenario: str | None = None,
    since: str | None = None,
) -> list[DrillRow]:
    """Every drill journal as a row, newest first, filtered."""
    cache: dict[str, Any] = {}
    if index_path is not None:
        try:
            loaded = json.loads(index_path.read_text())
            if loaded.get("version") == INDEX_VERSION:
                cache = loaded.get("journals", {})
        except (OSError, ValueError, AttributeError):
            cache = {}
    fresh: dict[str, Any] = {}
    rows = []
    for path in journal_files(drills_dir):
        st = path.stat()
        key = f"{st.st_size}:{st.st_mtime_ns}"
        row = _cached(cache.get(path.name), key) or row_of(path)
        fresh[path.name] = {"key": key, "row": row.to_json()}
        rows.append(row)
    if index_path is not None and fresh != cache:
        _write_index(index_path, fresh)
    since_day = _parse_since(since) if since else None
    out = [
        r
        for r in rows
        if (engineer is None or (r.engineer or "").lower() == engineer.lower())
        and (scenario is None or r.scenario == scenario)
        and (since_day is None or (r.started or "") >= since_day)
    ]
    return sorted(out, key=lambda r: r.started or "", reverse=True)


def _cached(hit: Any, key: str) -> DrillRow | None:
    if not isinstance(hit, dict) or hit.get("key") != key:
        return None
    try:
        return DrillRow(**hit["row"])
    except (TypeError, KeyError):  # an index from another version, or hand-edited
        return None


def _write_index(path: Path, journals: dict[str, Any]) -> None:
    """Atomically; a cache that cannot be written is only slower next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": INDEX_VERSION, "journals": journals}))
        os.replace(tmp, path)
    except OSError:
        pass


def find_journal(drills_dir: Path, drill: str) -> Path:
    """A drill by id, by a unique prefix or part of it, or by the journal's path."""
    direct = Path(drill)
    if direct.suffix == ".jsonl" and direct.is_file():
        return direct
    files = journal_files(drills_dir)
    exact = [p for p in files if p.stem == drill]
    if exact:
        return exact[0]
    partial = [p for p in files if drill in p.stem]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        names = "\n  ".join(p.stem for p in partial[:10])
        raise BadInputError(f"'{drill}' matches {len(partial)} drills; say which:\n  {names}")
    close = did_you_mean(drill, [p.stem for p in files], cutoff=0.5)
    hint = f" (did you mean {close}?)" if close is not None else ""
    raise BadInputError(f"no drill '{drill}' in {drills_dir}{hint}; `pagerdrill drills list`")


def _refuse_review(by: str, verdict: str | None, hypothesis: str | None, signed: bool) -> None:
    """What a review records, and who: refused before the journal is read."""
    if signed and verdict is None:
        raise BadInputError("--sign-with signs a verdict: give --verdict pass|fail")
    if verdict is None and hypothesis is None:
        raise BadInputError(
            "say what the review records: --verdict pass|fail, --hypothesis right|wrong"
        )
    if verdict is not None and verdict not in ("pass", "fail"):
        raise BadInputError(f"--verdict {verdict!r}: expected pass or fail")
    if hypothesis is not None and hypothesis not in ("right", "wrong"):
        raise BadInputError(f"--hypothesis {hypothesis!r}: expected right or wrong")
    if not by.strip():
        raise BadInputError("--by: say who reviews")


def _finished_journal(journal: Path, state_dir: Path) -> JournalRead:
    """The journal of a drill that ended: a running or crashed one is not reviewed."""
    read = read_journal(journal, samples=False)
    if not read.events:
        raise BadInputError(f"{journal}: no drill events to review")
    holder = DrillLock(state_dir).holder() or {}
    if holder.get("journal") == str(journal) and not read.finished:
        raise PagerdrillError(f"drill {read.drill_id} is still running; review it once it ends")
    if not read.finished:
        raise PagerdrillError(
            f"drill {read.drill_id} did not end (a crash?); run `pagerdrill recover` first"
        )
    return read


def review(
    journal: Path,
    state_dir: Path,
    *,
    by: str,
    verdict: str | None = None,
    comment: str | None = None,
    hypothesis: str | None = None,
    attempt: int | None = None,
    sign: Callable[[Path, dict], dict] | None = None,
) -> list[HypothesisGraded | Review]:
    """Append a review to a finished drill's journal (a verdict, the lead's grade of a
    hypothesis, or both); history is never rewritten, and the latest of each counts.
    `sign(journal, review)` returns fields (a signed statement) the verdict carries.
    Returns the events appended."""
    _refuse_review(by, verdict, hypothesis, signed=sign is not None)
    read = _finished_journal(journal, state_dir)
    graded = _hypothesis_to_grade(read, attempt) if hypothesis is not None else None
    writer = continue_journal(read)
    out: list[HypothesisGraded | Review] = []
    try:
        if graded is not None:
            number, event = graded
            out.append(
                writer.write(
                    HypothesisGraded(
                        by=by.strip(),
                        of=event.seq,
                        attempt=number,
                        grade=hypothesis,
                        comment=comment if verdict is None else None,
                    )
                )
            )
        if verdict is not None:
            fields = {"by": by.strip(), "verdict": verdict, "comment": comment}
            if sign is not None:
                # the statement pins the journal as the reviewer saw it, just before this line
                fields |= sign(journal, {"drill": read.drill_id, **fields})
            out.append(writer.write(msgspec.convert(fields, Review)))
        return out
    finally:
        writer.close()


def _hypothesis_to_grade(read: JournalRead, attempt: int | None) -> tuple[int, Hypothesis]:
    """(its number, the event) of the hypothesis a lead grades: `attempt` (1 is the
    first stated), else the one the drill left for the lead, else the only one."""
    hyps = [e for e in read.typed if isinstance(e, Hypothesis)]
    if not hyps:
        raise BadInputError(f"drill {read.drill_id}: no hypothesis was stated; nothing to grade")
    listing = "; ".join(f"{i} at {clock(e.drill_s)}: {e.text}" for i, e in enumerate(hyps, 1))
    if attempt is not None:
        if not 1 <= attempt <= len(hyps):
            raise BadInputError(f"--attempt {attempt}: the drill has {len(hyps)} ({listing})")
        return attempt, hyps[attempt - 1]
    graded = lead_grades(read.typed)
    waiting = [
        (i, e) for i, e in enumerate(hyps, 1) if hypothesis_grade(e, graded)[0] == "ungraded"
    ]
    if len(waiting) == 1:
        return waiting[0]
    if len(hyps) == 1:
        return 1, hyps[0]
    which = "are for the lead to grade" if waiting else "were stated"
    raise BadInputError(
        f"drill {read.drill_id}: {len(waiting) or len(hyps)} hypotheses {which}; "
        f"say which with --attempt N ({listing})"
    )
