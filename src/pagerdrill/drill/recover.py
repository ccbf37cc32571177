"""`pagerdrill recover`: finish drills that did not close (a crash, `kill -9`).

For each journal under `drills/` without a closing event, every fault whose undo
record is in the journal and that was not reverted is reverted from that record
alone, the newest first, and so is every environment change a mitigation made.
What it did goes to the same journal, which then ends with `drill.aborted`.
A drill that still runs (its process holds the stack's drill lock) is left alone.
When a revert fails, the journal stays open so that the next `recover` tries again.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from pagerdrill.drill.mitigations import Mitigation, mitigation_class
from pagerdrill.faults import FaultContext, fault_class, revert_fault, reverted_text
from pagerdrill.journal import (
    DrillLock,
    JournalWriter,
    continue_journal,
    journal_files,
    read_journal,
)
from pagerdrill.targets.base import Target
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace import Workspace


@dataclass
class Recovered:
    journal: Path
    drill: str
    reverted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    nothing_to_do: bool = False
    said: dict[str, str] = field(default_factory=dict)
    """What each fault's revert did, as a person reads it (a repair, harm not undone)."""

    def to_json(self) -> dict:
        return {
            "journal": str(self.journal),
            "drill": self.drill,
            "reverted": self.reverted,
            "failed": [{"what": w, "error": e} for w, e in self.failed],
            "said": self.said,
        }


def pending_undo(events: list[dict]) -> list[dict]:
    """Undo records (faults and mitigations) not yet put back, the newest first."""
    done_faults = {e.get("fault") for e in events if e.get("type") == "fault.reverted"}
    done_mits = {
        e.get("undo_seq", e.get("mitigation"))
        for e in events
        if e.get("type") == "mitigation.reverted"
    }
    pending = [
        e
        for e in events
        if (e.get("type") == "fault.undo" and e.get("fault") not in done_faults)
        or (
            e.get("type") == "mitigation.undo"
            and e.get("seq") not in done_mits
            and e.get("mitigation") not in done_mits
        )
    ]
    return sorted(pending, key=lambda e: e["seq"] if isinstance(e.get("seq"), int) else -1,
                  reverse=True)  # fmt: skip


def needs_recovery(events: list[dict]) -> bool:
    """A drill that did not end, or ended with something it could not put back."""
    end = next((e for e in events if e.get("type") in ("drill.closed", "drill.aborted")), None)
    if end is None:
        return bool(events)
    return bool(end.get("revert_failed")) and bool(pending_undo(events))


def recover(
    workspace: Workspace,
    target: Target,
    drills_dir: Path | None = None,
    *,
    lock_held: bool = False,
) -> list[Recovered]:
    """`lock_held`: the caller holds the stack's drill lock already (`stack down --force`)."""
    from pagerdrill.drill.engine import role_bindings

    lock = DrillLock(workspace.state_dir)
    drills_dir = drills_dir or workspace.root / "drills"
    results: list[Recovered] = []
    info = {"drill": "recover", "pid": os.getpid(), "engineer": "-", "scenario": "recover",
            "since": "-"}  # fmt: skip
    with contextlib.nullcontext() if lock_held else lock.held(info):
        ctx = FaultContext(target=target, roles=RoleResolver(role_bindings(workspace), target))
        for path in journal_files(drills_dir):
            read = read_journal(path, samples=False)
            if not needs_recovery(read.events):
                continue
            finished = read.finished
            result = Recovered(path, read.drill_id)
            journal = continue_journal(read)
            try:
                journal.append(
                    "recover.started", problems=[f"line {n}: {m}" for n, m in read.problems]
                )
                reason = "the drill stopped without closing; finished by pagerdrill recover"
                if not target.is_up():
                    # nothing runs, so nothing is broken: `stack up` starts clean
                    reason += " (the stack was down: nothing to revert)"
                else:
                    actions = mitigation_actions_of(read.events)
                    for undo_event in pending_undo(read.events):
                        _revert_one(undo_event, ctx, actions, journal, result)
                result.nothing_to_do = not (result.reverted or result.failed)
                if result.failed:
                    pass  # the drill stays open (or failed), so the next recover tries again
                elif finished:  # it ended, but could not put everything back then
                    journal.append("recover.finished", reverted=result.reverted)
                else:
                    journal.append("drill.aborted", reason=reason, recovered=True)
            finally:
                journal.close()
            results.append(result)
    return results


def mitigation_actions_of(events: list[dict]) -> dict[str, str]:
    """Each mitigation's action, by id, as the journal's `mitigation.started` says: the
    undo record names only the mitigation, and its action's class reverts it."""
    return {
        str(e.get("mitigation")): str(e["action"])
        for e in events
        if e.get("type") == "mitigation.started" and isinstance(e.get("action"), str)
    }


def _revert_one(
    undo_event: dict,
    ctx: FaultContext,
    actions: dict[str, str],
    journal: JournalWriter,
    result: Recovered,
) -> None:
    if undo_event["type"] == "mitigation.undo":
        what = str(undo_event.get("mitigation"))
        try:
            action = actions.get(what)
            # a journal that does not say the action reverts as every built-in does
            mitigation = mitigation_class(action) if action else Mitigation
            detail = mitigation.revert(undo_event["undo"], ctx.target, ctx.roles)
        except Exception as exc:
            result.failed.append((what, str(exc)))
            journal.append("mitigation.revert_failed", mitigation=what, error=str(exc))
            return
        result.reverted.append(what)
        journal.append(
            "mitigation.reverted",
            mitigation=what,
            by="recover",
            undo_seq=undo_event.get("seq"),
            detail=detail,
        )
        return
    what = str(undo_event.get("fault"))
    try:
        cls = fault_class(str(undo_event.get("kind")))
        params = cls.Params.model_validate(undo_event.get("params") or {})
        fault = cls(what, undo_event["role"], params, ctx)
        detail = revert_fault(fault, undo_event["undo"])
    except Exception as exc:
        result.failed.append((what, str(exc)))
        journal.append("fault.revert_failed", fault=what, by="recover", error=str(exc))
        return
    result.reverted.append(what)
    result.said[what] = reverted_text(what, "recover", detail)
    journal.append("fault.reverted", fault=what, by="recover", detail=detail)
