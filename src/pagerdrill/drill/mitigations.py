"""Mitigations: what an engineer can do to the stack during a drill, one class per action.

A mitigation action is a `Mitigation` subclass registered in the entry-point group
`pagerdrill.mitigations` (the built-ins are registered the same way, in pyproject.toml),
so a team's scenario can bring its own: a scenario's `action:` names one, and the
scenario loader refuses a name no installed mitigation has.

The engine hands a mitigation what it may use (`MitigationContext`) and calls `apply()`.
A mitigation that changes something the drill must put back journals its undo record
through `ctx.write_undo` before it acts. Whoever puts the stack back (the drill on its
end, `pagerdrill recover` after a crash, in a fresh process) calls the class's
`revert(undo, target, roles)` with that record alone, so `revert` must be idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pagerdrill.errors import BadInputError, PagerdrillError
from pagerdrill.faults import Fault, replay_lost_jobs
from pagerdrill.faults.builtin import RestartWithEnv, env_undo, restore_env
from pagerdrill.journal.redact import mask_values, secret_leaves
from pagerdrill.plugins import plugin_class
from pagerdrill.scenarios.model import Mitigation as MitigationSpec
from pagerdrill.scenarios.model import mitigation_entry_points
from pagerdrill.targets.roles import RoleResolver


class ActionRefused(PagerdrillError):
    """An engineer action that does not apply now (acknowledging twice, before the page)."""


class FaultRun(Protocol):
    """What a mitigation may read of one of the drill's faults."""

    spec_id: str
    fault: Fault
    injected: bool
    reverted: bool


@dataclass
class MitigationContext:
    """What a mitigation may use; nothing else of the engine."""

    target: Any
    roles: RoleResolver
    faults: Sequence[FaultRun]
    """The drill's faults, in the scenario's order."""
    revert_fault: Callable[[Any], bool]
    """Put one of `faults` back, as the engineer's doing; True when it is back."""
    write_undo: Callable[[dict], None]
    """Journal (durably) the undo record of a change about to be made; the drill then
    reverts it with this class's `revert` on its end, and so does `recover`."""
    source: str | None = None
    """The source address the engineer named (block-source)."""


class Mitigation:
    """Base of every mitigation action."""

    action: ClassVar[str] = ""

    def __init__(self, spec: MitigationSpec, ctx: MitigationContext):
        self.spec = spec
        self.ctx = ctx

    @property
    def role(self) -> str:
        """The role acted on: a scenario names one for every action but revert-fault."""
        if self.spec.role is None:
            raise BadInputError(f"mitigation {self.spec.id}: {self.spec.action} needs `role`")
        return self.spec.role

    @property
    def service(self) -> str:
        return self.ctx.roles.service(self.role)

    def apply(self) -> dict:
        """Act on the stack; returns the detail the journal's `mitigation` event holds."""
        raise NotImplementedError

    @classmethod
    def revert(cls, undo: dict, target: Any, roles: RoleResolver) -> dict:
        """Put back what `apply` changed, from its undo record alone. Every built-in that
        writes an undo record changes a service's environment; journals written before
        mitigations were plugins rely on this being the default."""
        return restore_env(target, undo)


class Start(Mitigation):
    action = "start"

    def apply(self) -> dict:
        service = self.service
        if self.ctx.target.service_status(service).state == "running":
            return {"service": service, "skipped": "already running"}
        self.ctx.target.start(service)
        return {"service": service}


class Restart(Mitigation):
    action = "restart"

    def apply(self) -> dict:
        service = self.service
        self.ctx.target.restart(service)
        return {"service": service}


class ReplayLostJobs(Mitigation):
    """Ask the role's producer to add again the jobs it added that are neither in the
    queue nor processed."""

    action = "replay-lost-jobs"

    def apply(self) -> dict:
        return replay_lost_jobs(self.ctx.target, self.ctx.roles, self.role)


class ResetEnv(Mitigation):
    """Drop the service's environment overrides: the faults that set them are reverted
    (so they stay reverted), and with none, the service restarts without overrides."""

    action = "reset-env"

    def apply(self) -> dict:
        service = self.service
        runs = [
            r
            for r in self.ctx.faults
            if isinstance(r.fault, RestartWithEnv)
            and r.fault.service == service
            and r.injected
            and not r.reverted
        ]
        for run in runs:
            if not self.ctx.revert_fault(run):
                raise PagerdrillError(f"fault {run.spec_id} could not be reverted")
        if not runs:
            self.ctx.target.restart(service, reset_env=True)
        return {"service": service, "reverted": [r.spec_id for r in runs]}


class RevertFault(Mitigation):
    action = "revert-fault"

    def apply(self) -> dict:
        run = next(r for r in self.ctx.faults if r.spec_id == self.spec.fault)
        if not run.injected:
            raise ActionRefused(f"fault {run.spec_id} is not in effect")
        if not self.ctx.revert_fault(run):
            raise PagerdrillError(f"fault {run.spec_id} could not be reverted")
        return {"fault": run.spec_id}


class SetEnv(Mitigation):
    """Restart the service with variables set; the drill's end restores what they were."""

    action = "set-env"

    def env(self, service: str) -> dict[str, str]:
        return dict(self.spec.env)

    def apply(self) -> dict:
        service = self.service
        env = self.env(service)
        target = self.ctx.target
        # write-ahead: the previous values are durable before the service restarts
        self.ctx.write_undo(env_undo(target, service, env))
        target.restart(service, env=env)
        return {
            "service": service,
            "set": sorted(env),
            "values": mask_values(env, secret_leaves(env)),
        }


class BlockSource(SetEnv):
    """Add a source address to the service's block list (`variable`): the one the
    engineer named, else the one a storm fault on the role comes from."""

    action = "block-source"

    def env(self, service: str) -> dict[str, str]:
        source = self.ctx.source or self._storm_source()
        if not source:
            raise BadInputError("block-source needs the source address")
        variable = self.spec.variable
        current = self.ctx.target.environment(service).get(variable, "")
        blocked = [s for s in current.split(",") if s.strip()]
        return {variable: ",".join([*blocked, source] if source not in blocked else blocked)}

    def _storm_source(self) -> str | None:
        for run in self.ctx.faults:
            if run.fault.role == self.spec.role and hasattr(run.fault.params, "source"):
                return run.fault.params.source
        return None


_loaded: dict[str, type[Mitigation]] = {}


def mitigation_class(action: str) -> type[Mitigation]:
    """The class of mitigation `action`; a clear error for an unknown or broken plugin."""
    return plugin_class("mitigation action", action, mitigation_entry_points(), Mitigation, _loaded)
