"""Faults: small objects that break one thing on a target and put it back.

A fault kind is a `Fault` subclass registered in the entry-point group
`pagerdrill.faults` (the built-ins are registered the same way, in pyproject.toml).
The engine calls, in order: `prepare()` (reads the stack, returns the undo record
that goes to the journal before anything is touched), `inject()`, and later
`revert(undo)`. `revert` must be idempotent and must work from the undo record
alone, in a fresh process: that is how `pagerdrill recover` puts a stack back
after a crash.

Some harm cannot be undone but can be repaired (a FLUSHDB loses queued jobs; their
producer can add them again). A scenario declares such a repair on the fault; it goes
into the undo record with the rest, so whoever reverts the fault (the drill on its
end, `recover` after a crash) runs it too, through `revert_fault`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pagerdrill.errors import PagerdrillError
from pagerdrill.plugins import plugin_class, plugin_points
from pagerdrill.targets.base import Target

GROUP = "pagerdrill.faults"


class FaultParams(BaseModel):
    """Parameters of a fault kind, as written in a scenario (unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class FaultContext:
    """What a fault may use: the target, the role bindings, and the drill's stop flag."""

    target: Target
    roles: Any
    """A `pagerdrill.targets.roles.RoleResolver`."""
    stop: threading.Event = field(default_factory=threading.Event)
    report: Callable[[str, dict], None] = lambda _type, _data: None
    """Emit an event to the drill (e.g. a storm's progress); journalled like the rest."""


class Fault:
    """Base of every fault kind."""

    kind: ClassVar[str] = ""
    Params: ClassVar[type[FaultParams]] = FaultParams
    reversible: ClassVar[bool] = True
    """False for faults whose damage cannot be undone (FLUSHDB): revert only records it."""
    secret_params: ClassVar[frozenset[str]] = frozenset()
    """Parameters whose values are secrets (every value under them): never journalled.
    A parameter (or a key under one) whose name says password, token or secret is one
    too, declared or not."""

    @classmethod
    def secret_values(cls, params: dict) -> set[str]:
        """The secret values in `params`, as a scenario wrote them."""
        from pagerdrill.journal.redact import secret_leaves

        return secret_leaves(params, cls.secret_params)

    def __init__(self, fault_id: str, role: str, params: FaultParams, ctx: FaultContext):
        self.id = fault_id
        self.role = role
        self.params = params
        self.ctx = ctx

    @property
    def service(self) -> str:
        return self.ctx.roles.service(self.role)

    def describe(self) -> str:
        """One line for --dry-run: what inject would do, with names resolved."""
        raise NotImplementedError

    def prepare(self) -> dict:
        """Read what revert will need; touch nothing."""
        return {"service": self.service}

    def inject(self) -> dict:
        raise NotImplementedError

    def revert(self, undo: dict) -> dict:
        raise NotImplementedError

    def in_effect(self) -> bool | None:
        """Whether the fault is visible on the stack now (None: cannot tell). For benchmarks."""
        return None


def revert_fault(fault: Fault, undo: dict) -> dict:
    """Revert `fault` and run the repair its undo record declares. A repair that fails
    raises, so the fault stays pending and the next revert (or `recover`) tries both
    again: both are idempotent."""
    detail = fault.revert(undo)
    repair = undo.get("repair")
    if isinstance(repair, dict):
        detail = {**detail, "repair": run_repair(repair, fault.ctx)}
    return detail


REPAIR_ACTIONS = ("replay-lost-jobs",)


def run_repair(repair: dict, ctx: FaultContext) -> dict:
    """Run one repair record ({action, role, service}) against the target."""
    action = repair.get("action")
    if action == "replay-lost-jobs":
        return {"action": action, **replay_lost_jobs(ctx.target, ctx.roles, str(repair["role"]))}
    raise PagerdrillError(f"unknown repair '{action}' (known: {', '.join(REPAIR_ACTIONS)})")


def replay_lost_jobs(target: Target, roles: Any, role: str) -> dict:
    """Ask the role's producer, through the target's endpoint for it, to add again the
    jobs it added that are neither in the queue nor processed. The producer keeps the
    ledger, so a replay with nothing lost adds nothing."""
    import httpx

    service = roles.service(role)
    url = f"{roles.base_url(role)}/admin/replay-lost-jobs"
    token = target.environment(service).get("FAULT_TOKEN", "")
    try:
        response = httpx.post(url, headers={"X-Fault-Token": token} if token else {}, timeout=10.0)
    except httpx.HTTPError as exc:
        raise PagerdrillError(f"{service}: replay route unreachable: {exc}") from exc
    if response.status_code != 200:
        raise PagerdrillError(
            f"{service}: replay refused: {response.status_code} {response.text[:200]}"
        )
    body = response.json()
    return {
        "service": service,
        "queue": body.get("queue"),
        "replayed": body.get("replayed"),
        "job_ids": body.get("job_ids"),
    }


def reverted_text(fault: str, by: str, detail: dict | None) -> str:
    """How a fault's revert reads to a person. Harm that cannot be undone is said to be
    so (never "reverted"), with what its repair did."""
    detail = detail if isinstance(detail, dict) else {}
    if not detail.get("irreversible"):
        return f"fault {fault} reverted ({by})"
    command = detail.get("command")
    text = (
        f"fault {fault}: {command} cannot be undone"
        if command
        else (f"fault {fault} cannot be undone")
    )
    repair = detail.get("repair")
    if isinstance(repair, dict) and repair.get("action") == "replay-lost-jobs":
        replayed = repair.get("replayed")
        text += f"; {replayed} lost jobs replayed" if replayed else "; no lost jobs to replay"
    return f"{text} ({by})"


_BUILTIN = {
    "stop-service": "pagerdrill.faults.builtin:StopService",
    "redis-command": "pagerdrill.faults.builtin:RedisCommand",
    "restart-with-env": "pagerdrill.faults.builtin:RestartWithEnv",
    "http-fault": "pagerdrill.faults.builtin:HttpFault",
    "http-proxy": "pagerdrill.faults.httpproxy:HttpProxy",
    "socketio-storm": "pagerdrill.faults.builtin:SocketioStorm",
}


def _entry_points() -> dict[str, str]:
    return plugin_points(GROUP, _BUILTIN)


def fault_kinds() -> list[str]:
    """The names of every installed fault kind, without importing any of them."""
    return sorted(_entry_points())


_loaded: dict[str, type[Fault]] = {}


def fault_class(kind: str) -> type[Fault]:
    """The class of fault `kind`; a clear error for an unknown or broken plugin."""
    return plugin_class("fault kind", kind, _entry_points(), Fault, _loaded)
