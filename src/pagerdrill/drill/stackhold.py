"""Who holds the stack: a drill (from before its stack starts until after it is down
again) or a command that would pull it from under a drill (`stack down`).

`pagerdrill run` and the TUI take the drill lock before they start anything, the stack
included: a drill the lock refuses has touched nothing, so it never takes down a stack
another drill uses. The stack a drill started goes down before the lock is let go.

A command that must not run under a drill takes the same lock. With `force` it asks
the holder to abort first: the reason goes to a file beside the lock and the holder's
process gets SIGTERM, so its runner reverts every fault and journals that reason.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pagerdrill.errors import PagerdrillError
from pagerdrill.journal import DrillBusyError, DrillLock, holder_text
from pagerdrill.targets.base import Target, process_start_ticks

ABORT_FILE = "drill.abort"
ABORT_WAIT_S = 120.0
"""How long a forced command waits for the drill it signalled to revert and let go."""


class StackHeldError(PagerdrillError):
    """A drill holds the stack, and the command would break it under the drill."""

    exit_code = 2


class StackHold:
    """A drill's hold on its stack, for the runner that drives the engine."""

    def __init__(self, engine: Any, target: Target):
        self.engine = engine
        self.target = target
        self.started_stack = False
        self.started_traffic = False

    def bring_up(
        self,
        progress: Any = None,
        *,
        ensure: bool = True,
        announce: Callable[[], None] | None = None,
    ) -> None:
        """Claim the drill lock (DrillBusyError naming the holder, nothing touched), then
        start the stack when it is down and `ensure` (`announce` says so first), and the
        workspace's traffic profile when it has one."""
        self.engine.claim()
        if ensure and not self.target.is_up():
            if announce is not None:
                announce()
            self.started_stack = True
            self.target.up(progress=progress)
        self._start_traffic()

    def _start_traffic(self) -> None:
        """The workspace's traffic profile runs for the drill (unless `stack up --traffic`
        already runs it): steady traffic is what the drill's signals read."""
        workspace = self.target.workspace
        if workspace.config.traffic is None or not self.target.is_up():
            return
        from pagerdrill.drill.engine import role_bindings
        from pagerdrill.targets.roles import RoleResolver
        from pagerdrill.traffic import start_traffic, stop_orphaned_traffic

        # this drill holds the lock, so a generator another drill started is an orphan
        stop_orphaned_traffic(workspace, stack_up=True)
        resolver = RoleResolver(role_bindings(workspace), self.target)
        # before it starts, so an interrupt mid-start still stops it; let_go stops only
        # a generator this drill owns, never one `stack up --traffic` runs
        self.started_traffic = True
        start_traffic(workspace, resolver, owner=self._traffic_owner)

    @property
    def _traffic_owner(self) -> str:
        return f"drill:{getattr(self.engine, 'drill_id', os.getpid())}"

    def takes_down(self, keep_stack: bool) -> bool:
        """Whether `let_go(keep_stack)` takes the stack down: a drill takes down the
        stack it started, and only that one, unless it is asked to keep it."""
        return self.started_stack and not keep_stack

    def let_go(self, keep_stack: bool) -> bool:
        """After the drill: take down the stack it started (unless `keep_stack`), then
        release the lock. True when the stack went down. Safe to call more than once."""
        try:
            if self.started_traffic:
                from pagerdrill.traffic import stop_traffic

                stop_traffic(self.target.workspace, owner=self._traffic_owner)
            if self.takes_down(keep_stack) and self.target.is_up():
                self.target.down()
                return True
            return False
        finally:
            self.started_stack = False
            self.started_traffic = False
            self.engine.release()


def _command_info(command: str) -> dict:
    pid = os.getpid()
    return {
        "command": command,
        "pid": pid,
        "start_ticks": process_start_ticks(pid),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def request_abort(state_dir: Path, holder: dict, reason: str) -> bool:
    """Ask the drill holding the lock to abort with `reason`. Only a process whose kernel
    start time matches the holder's is signalled (a pid alone may have been reused).
    True when it was."""
    pid, ticks = holder.get("pid"), holder.get("start_ticks")
    if not isinstance(pid, int) or pid <= 1 or pid == os.getpid() or ticks is None:
        return False
    if process_start_ticks(pid) != ticks:
        return False
    path = state_dir / ABORT_FILE
    tmp = path.with_name(f".{ABORT_FILE}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"drill": holder.get("drill"), "reason": reason}, fh)
    os.replace(tmp, path)
    os.kill(pid, signal.SIGTERM)
    return True


def requested_abort(state_dir: Path, drill_id: str) -> str | None:
    """The reason another command gave for aborting this drill, if it asked (once)."""
    path = state_dir / ABORT_FILE
    try:
        request = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(request, dict) or request.get("drill") != drill_id:
        return None
    path.unlink(missing_ok=True)
    reason = request.get("reason")
    return reason if isinstance(reason, str) else None


def drill_holder(state_dir: Path) -> dict | None:
    """The drill holding the stack now, if any (None when the lock is free)."""
    lock = DrillLock(state_dir)
    try:
        lock.acquire(_command_info("check"))
    except DrillBusyError:
        return lock.holder() or {}
    lock.release()
    return None


@contextmanager
def held_for(target: Target, command: str, *, force: bool, by: str) -> Iterator[None]:
    """Hold the stack for `command` (`stack down` ...), refusing while a drill holds it.
    With `force`, the drill is aborted first (it reverts its faults), and drills that
    stopped without closing are recovered, before `command` runs."""
    state_dir = target.workspace.state_dir
    lock = DrillLock(state_dir)
    info = _command_info(command)
    try:
        lock.acquire(info)
    except DrillBusyError:
        holder = lock.holder() or {}
        who = holder_text(holder) if holder else "another drill"
        since = f" since {holder['since']}" if holder.get("since") else ""
        if not force:
            raise StackHeldError(
                f"{who} holds this stack{since}: `{command}` would break the drill under "
                f"it. Wait for it to end, or pass --force to abort it first (it reverts "
                f"its faults)"
            ) from None
        if holder.get("command") or not request_abort(
            state_dir, holder, f"{command} --force by {by}"
        ):
            raise StackHeldError(
                f"{who} holds this stack{since} and is not a drill pagerdrill can signal: "
                f"end it first"
            ) from None
        lock.acquire(info, wait_s=ABORT_WAIT_S)  # it reverts, then lets go
    try:
        if force:
            from pagerdrill.drill.recover import recover

            # the stack goes down next: no wait for its health
            recover(target.workspace, target, lock_held=True, health_wait_s=0)
        yield
    finally:
        lock.release()
