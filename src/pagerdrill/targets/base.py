"""What every target offers: the stack as a whole, and each service on its own.

The fault engine drives a target through this interface only (stop, start,
restart with environment overrides, exec, logs), so a scenario runs the same on
the local reference stack and on a team's compose project.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pagerdrill.errors import StackBusyError

if TYPE_CHECKING:
    from pagerdrill.workspace import Workspace

State = Literal["running", "stopped", "exited", "absent"]
Health = Literal["healthy", "unhealthy", "unknown"]
Phase = Literal["starting", "healthy", "stopping", "stopped", "failed", "running"]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: State
    health: Health
    pid: int | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    env_overrides: tuple[str, ...] = ()
    """Names (never values) of environment variables overridden by a restart."""

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "state": self.state,
            "health": self.health,
            "pid": self.pid,
            "endpoints": dict(self.endpoints),
            "env_overrides": list(self.env_overrides),
        }


@dataclass(frozen=True)
class ProgressEvent:
    service: str
    phase: Phase
    elapsed_s: float
    detail: str = ""


Progress = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str


@runtime_checkable
class Target(Protocol):
    """A stack pagerdrill can drill: everything the engine, the faults, recover, the
    TUI and the CLI use of one. A target is registered in the `pagerdrill.targets`
    entry-point group under the name a workspace's `target:` gives, and is built with
    `(workspace, *, allow_remote_docker=...)`."""

    name: str
    """The workspace's `target:` value this target answers to (`local`, `compose`)."""
    workspace: Workspace

    def services(self) -> list[str]: ...

    def up(self, progress: Progress | None = None) -> list[ServiceStatus]: ...

    def down(self, progress: Progress | None = None) -> None: ...

    def is_up(self) -> bool: ...

    def status(self) -> list[ServiceStatus]: ...

    def service_status(self, service: str) -> ServiceStatus: ...

    def service_endpoints(self, service: str) -> dict[str, str]: ...

    def overrides(self, service: str) -> dict[str, str]: ...

    def environment(self, service: str) -> dict[str, str]: ...

    def stop(self, service: str) -> None: ...

    def start(self, service: str, progress: Progress | None = None) -> None: ...

    def restart(
        self,
        service: str,
        env: Mapping[str, str] | None = None,
        *,
        reset_env: bool = False,
        progress: Progress | None = None,
    ) -> None: ...

    def exec(self, service: str, argv: Sequence[str], timeout: float = 30.0) -> ExecResult: ...

    def logs(self, service: str, tail: int = 50) -> list[str]: ...

    def follow_logs(self, service: str, tail: int = 10) -> Iterator[str]: ...


@runtime_checkable
class FileLogs(Protocol):
    """A target whose services write their logs to files on this machine (the local
    one): `pagerdrill logs` tells "no log yet" from "an empty log" by the file."""

    def log_path(self, service: str) -> Path: ...


@runtime_checkable
class ProjectTarget(Protocol):
    """A target that drills one named project of a shared engine (compose): messages
    name the project, since other projects run beside it."""

    project: str


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid`, to tell a live process from a reused pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after it are fixed
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


@contextlib.contextmanager
def exclusive(path: Path, wait_s: float, busy: str) -> Iterator[None]:
    """Hold an advisory lock on `path` (the kernel drops it when a process dies, so a
    crashed command never leaves it held); after `wait_s`, StackBusyError(busy)."""
    with path.open("a") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StackBusyError(f"{busy} (lock {path})") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@runtime_checkable
class HttpProxyTarget(Protocol):
    """A target that can put a reverse proxy (`script`, faults/proxy.py: the fault owns
    it) where a service's traffic arrives, and take it away again. `remove_http_proxy` works from
    what the target itself records (a fresh process, after a crash), and is idempotent."""

    def insert_http_proxy(self, service: str, rules: Mapping[str, Any], script: Path) -> dict: ...

    def remove_http_proxy(self, service: str) -> dict: ...
