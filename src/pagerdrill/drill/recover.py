"""`pagerdrill recover`: finish drills that did not close (a crash, `kill -9`).

For each journal under `drills/` without a closing event, every fault whose undo
record is in the journal and that was not reverted is reverted from that record
alone, the newest first, and so is every environment change a mitigation made.
What it did goes to the same journal, which then ends with `drill.aborted`.
A drill that still runs (its process holds the stack's drill lock) is left alone.
When a revert fails, the journal stays open so that the next `recover` tries again.
After reverting, it waits (bounded) for the stack to be healthy again before it says
done, and names each service that is not (a revert that "worked" while nginx still
answers 502 is not a recovered stack).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from msgspec import UNSET

from pagerdrill.drill.mitigations import Mitigation, mitigation_class
from pagerdrill.faults import FaultContext, fault_class, revert_fault, reverted_text
from pagerdrill.journal import (
    DrillLock,
    JournalWriter,
    continue_journal,
    journal_files,
    read_journal,
)
from pagerdrill.journal.events import (
    DrillAborted,
    DrillClosed,
    Event,
    FaultReverted,
    FaultRevertFailed,
    FaultUndo,
    MitigationReverted,
    MitigationRevertFailed,
    MitigationStarted,
    MitigationUndo,
    RecoverFinished,
    RecoverStarted,
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
    not_healthy: dict[str, str] = field(default_factory=dict)
    """Services not healthy when the wait after the reverts ran out, with what was seen."""
    health_unknown: list[str] = field(default_factory=list)
    """Running services whose health nothing can tell (no healthcheck, no health_url)."""
    services: list[str] = field(default_factory=list)
    """The services the drill's undo records are about, those the drill put back itself
    before it stopped included (each waited on to be healthy)."""

    def to_json(self) -> dict:
        return {
            "journal": str(self.journal),
            "drill": self.drill,
            "reverted": self.reverted,
            "failed": [{"what": w, "error": e} for w, e in self.failed],
            "said": self.said,
            "not_healthy": self.not_healthy,
            "health_unknown": self.health_unknown,
        }


def pending_undo(events: Sequence[Event]) -> list[FaultUndo | MitigationUndo]:
    """Undo records (faults and mitigations) not yet put back, the newest first."""
    done_faults = {e.fault for e in events if isinstance(e, FaultReverted)}
    done_mits: set[str | int | None] = set()
    for e in events:
        if isinstance(e, MitigationReverted):
            done_mits.add(e.mitigation if e.undo_seq is UNSET else e.undo_seq)
    pending: list[FaultUndo | MitigationUndo] = []
    for e in events:
        match e:
            case FaultUndo() if e.fault not in done_faults:
                pending.append(e)
            case MitigationUndo() if e.seq not in done_mits and e.mitigation not in done_mits:
                pending.append(e)
    return sorted(pending, key=lambda e: e.seq, reverse=True)


def needs_recovery(events: Sequence[Event]) -> bool:
    """A drill that did not end, or ended with something it could not put back."""
    end = next((e for e in events if isinstance(e, DrillClosed | DrillAborted)), None)
    if end is None:
        return bool(events)
    return bool(end.revert_failed) and bool(pending_undo(events))


HEALTH_WAIT_S = 90.0


def wait_for_health(
    target: Target,
    services: Iterable[str],
    wait_s: float = HEALTH_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, str], list[str]]:
    """Wait until each of `services` is healthy, at most `wait_s`. Returns those that are
    not by then (with their state and health) and those that run with no way to tell
    their health (nothing to wait for)."""
    pending = list(dict.fromkeys(services))
    seen: dict[str, str] = {}
    unknown: list[str] = []
    deadline = time.monotonic() + wait_s
    while True:
        for service in list(pending):
            try:
                status = target.service_status(service)
            except Exception as exc:  # a target that cannot answer is not healthy
                seen[service] = f"status unreadable: {exc}"
                continue
            if status.state == "running" and status.health == "healthy":
                pending.remove(service)
            elif status.state == "running" and status.health == "unknown":
                pending.remove(service)
                unknown.append(service)
            else:
                seen[service] = f"{status.state}, {status.health}"
        if not pending or time.monotonic() > deadline:
            return {s: seen.get(s, "?") for s in pending}, unknown
        sleep(0.25)


def recover(
    workspace: Workspace,
    target: Target,
    drills_dir: Path | None = None,
    *,
    lock_held: bool = False,
    health_wait_s: float = HEALTH_WAIT_S,
) -> list[Recovered]:
    """`lock_held`: the caller holds the stack's drill lock already (`stack down --force`).
    After anything was reverted, waits up to `health_wait_s` for the stack's services
    (those that run, and those the reverts touched) to be healthy."""
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
            if not needs_recovery(read.typed):
                continue
            finished = read.finished
            result = Recovered(path, read.drill_id)
            journal = continue_journal(read)
            try:
                journal.write(RecoverStarted(problems=[f"line {n}: {m}" for n, m in read.problems]))
                reason = "the drill stopped without closing; finished by pagerdrill recover"
                if not target.is_up():
                    # nothing runs, so nothing is broken: `stack up` starts clean
                    reason += " (the stack was down: nothing to revert)"
                else:
                    actions = mitigation_actions_of(read.typed)
                    for undo_event in pending_undo(read.typed):
                        _revert_one(undo_event, ctx, actions, journal, result)
                    result.services = [
                        service
                        for e in read.typed
                        if isinstance(e, FaultUndo | MitigationUndo)
                        for service in _service_of(e)
                    ]
                result.nothing_to_do = not (result.reverted or result.failed)
                if result.failed:
                    pass  # the drill stays open (or failed), so the next recover tries again
                elif finished:  # it ended, but could not put everything back then
                    journal.write(RecoverFinished(reverted=result.reverted))
                else:
                    journal.write(DrillAborted(reason=reason, recovered=True))
            finally:
                journal.close()
            results.append(result)
        from pagerdrill.traffic import stop_orphaned_traffic

        stop_orphaned_traffic(workspace, stack_up=target.is_up())
        _wait_after(target, results, health_wait_s)
    return results


def _wait_after(target: Target, results: list[Recovered], wait_s: float) -> None:
    touched = [r for r in results if r.reverted]
    if not touched or wait_s <= 0 or not target.is_up():
        return
    running = [s.name for s in target.status() if s.state == "running"]
    touched_services = [s for r in results for s in r.services]
    not_healthy, unknown = wait_for_health(target, [*running, *touched_services], wait_s)
    for r in touched:
        r.not_healthy = not_healthy
        r.health_unknown = unknown


def _service_of(undo_event: FaultUndo | MitigationUndo) -> list[str]:
    """The service an undo record is about, if it names one."""
    undo = undo_event.undo
    service = undo.get("service") if isinstance(undo, dict) else None
    return [service] if isinstance(service, str) else []


def mitigation_actions_of(events: Sequence[Event]) -> dict[str, str]:
    """Each mitigation's action, by id, as the journal's `mitigation.started` says: the
    undo record names only the mitigation, and its action's class reverts it."""
    return {
        e.mitigation: e.action
        for e in events
        if isinstance(e, MitigationStarted) and isinstance(e.action, str)
    }


def _revert_one(
    undo_event: FaultUndo | MitigationUndo,
    ctx: FaultContext,
    actions: dict[str, str],
    journal: JournalWriter,
    result: Recovered,
) -> None:
    if isinstance(undo_event, MitigationUndo):
        what = undo_event.mitigation
        try:
            action = actions.get(what)
            # a journal that does not say the action reverts as every built-in does
            mitigation = mitigation_class(action) if action else Mitigation
            detail = mitigation.revert(undo_event.undo, ctx.target, ctx.roles)
        except Exception as exc:
            result.failed.append((what, str(exc)))
            journal.write(MitigationRevertFailed(mitigation=what, error=str(exc)))
            return
        result.reverted.append(what)
        journal.write(
            MitigationReverted(
                mitigation=what, by="recover", undo_seq=undo_event.seq, detail=detail
            )
        )
        return
    what = undo_event.fault
    try:
        cls = fault_class(str(undo_event.kind))
        params = cls.Params.model_validate(undo_event.params or {})
        if undo_event.role is None:
            raise KeyError("role")
        fault = cls(what, undo_event.role, params, ctx)
        detail = revert_fault(fault, undo_event.undo)
    except Exception as exc:
        result.failed.append((what, str(exc)))
        journal.write(FaultRevertFailed(fault=what, by="recover", error=str(exc)))
        return
    result.reverted.append(what)
    result.said[what] = reverted_text(what, "recover", detail)
    journal.write(FaultReverted(fault=what, by="recover", detail=detail))
