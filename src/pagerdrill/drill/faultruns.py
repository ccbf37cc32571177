"""Faults in and out: injected on schedule (the undo record written first), reverted
on schedule, and everything put back, newest first, when the drill closes or aborts.
"""

from __future__ import annotations

from pagerdrill.drill.core import EngineCore, Phase, _FaultRun
from pagerdrill.faults import revert_fault
from pagerdrill.journal import events as ev
from pagerdrill.journal.redact import mask_values


class FaultRuns(EngineCore):
    def _drive_faults(self, now: float) -> None:
        for run in self.faults:
            if not run.injected and run.due is not None and now >= run.due:
                noisy = [a.name for a, s in zip(self._alerts, self.model.alerts, strict=True)
                         if s.page and a.firing]  # fmt: skip
                if noisy and self._injected_at is None:
                    # a page now would not be the fault's: wait for the stack to settle
                    if not self._held:
                        self._emit(ev.FaultHeld(fault=run.spec_id, firing=noisy))
                    self._held = True
                    continue
                self._inject(run, now)
                if self.done:
                    return
            elif (
                run.injected
                and not run.reverted
                and run.revert_at
                and now >= run.revert_at
                and not self._revert(run, by="schedule")
            ):
                run.revert_at = now + 5.0  # try again, and say so each time

    def _inject(self, run: _FaultRun, now: float) -> None:
        spec = self.scenario.fault(run.spec_id)
        run.undo = run.fault.prepare()
        if spec.repair is not None:
            # in the undo record, so that whoever reverts the fault repairs its harm too
            run.undo["repair"] = {
                "action": spec.repair.action,
                "role": spec.repair.role,
                "service": self.roles.service(spec.repair.role),
            }
        # write-ahead: the undo record is durable before the fault touches anything
        self._emit(
            ev.FaultUndo(
                fault=run.spec_id,
                kind=run.fault.kind,
                role=run.fault.role,
                params=mask_values(spec.params, self._secrets),
                undo=run.undo,
            )
        )
        run.injected = True
        self._undo.append(("fault", run))
        try:
            detail = run.fault.inject()
        except Exception as exc:
            self._emit(ev.FaultFailed(fault=run.spec_id, error=str(exc)))
            self.abort(f"fault {run.spec_id} failed to inject: {exc}")
            return
        injected = self.clock()
        self._emit(
            ev.FaultInjected(
                fault=run.spec_id,
                kind=run.fault.kind,
                detail=detail,
                inject_ms=round((injected - now) * 1000, 1),
            )
        )
        if spec.duration_s:
            run.revert_at = injected + spec.duration_s
        self._injected_at = injected
        self._set_phase(Phase.INJECTED)

    def _revert(self, run: _FaultRun, by: str) -> bool:
        """Put one fault back; True when it is (or already was). A failure is journalled
        and the fault stays pending, so a later revert or `recover` tries again."""
        if run.reverted or not run.injected or run.undo is None:
            return True
        try:
            detail = revert_fault(run.fault, run.undo)
        except Exception as exc:
            self._emit_safe(ev.FaultRevertFailed(fault=run.spec_id, by=by, error=str(exc)))
            return False
        run.reverted = True
        self._emit_safe(ev.FaultReverted(fault=run.spec_id, by=by, detail=detail))
        return True

    def _revert_all(self, by: str) -> list[str]:
        """Put everything back, the newest change first (faults and mitigations alike);
        a failure does not stop the rest. Returns what could not be put back."""
        failed = []
        for what, item in reversed(self._undo):
            if what == "fault":
                if not self._revert(item, by=by):
                    failed.append(item.spec_id)
                continue
            mit_id, undo, seq, cls = item
            try:
                detail = cls.revert(undo, self.target, self.roles)
            except Exception as exc:
                self._emit_safe(ev.MitigationRevertFailed(mitigation=mit_id, undo_seq=seq,
                                error=str(exc)))  # fmt: skip
                failed.append(mit_id)
                continue
            self._emit_safe(ev.MitigationReverted(mitigation=mit_id, by=by, undo_seq=seq,
                            detail=detail))  # fmt: skip
        self._undo = [
            (what, item)
            for what, item in self._undo
            if (what == "fault" and not item.reverted)
            or (what == "mitigation" and item[0] in failed)
        ]
        return failed

    def _finish(self) -> None:
        self.stop_event.set()
        try:
            if self.probes is not None:
                self.probes.close()
            if self.journal is not None:
                self.journal.close()
        finally:
            if not self._lock_kept:
                self._drill_lock.release()

    def close(self, text: str | None = None) -> None:
        with self._lock:
            if self.done:
                return
            now = self.clock()
            failed = self._revert_all(by="close")
            self._emit_safe(
                ev.Resolve(
                    by=self.engineer,
                    text=text,
                    drill_s=self.drill_s(now),
                    recovery_verified=self.recovered,
                )
            )
            self.revert_failed = failed
            self._set_phase_safe(Phase.CLOSED, revert_failed=failed)
            self._emit_safe(
                ev.DrillClosed(
                    recovery_verified=self.recovered,
                    revert_failed=failed,
                    drill_s=self.drill_s(now),
                )
            )
            self._finish()

    def abort(self, reason: str) -> None:
        """Stop the drill and revert every fault (the newest first). Safe to call from
        any state, more than once."""
        with self._lock:
            if self.done:
                return
            # an abort cut short (by an error of its own) keeps the reason it began with
            reason = self.abort_reason or reason
            self.abort_reason = reason
            if self.journal is None:
                self.phase = Phase.ABORTED
                return
            self._emit_safe(ev.AbortRequested(reason=reason))
            failed = self._revert_all(by="abort")
            self.revert_failed = failed
            self._set_phase_safe(Phase.ABORTED, reason=reason)
            self._emit_safe(
                ev.DrillAborted(reason=reason, revert_failed=failed, drill_s=self.drill_s())
            )
            self._finish()
