"""The local target's health checks and its ordered start: a service is healthy when
*its* process answers (the pid it reports is the one started), and each starts once
its dependencies are healthy."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pagerdrill.errors import StackError
from pagerdrill.refstack.spec import SERVICE_NAMES, ServiceSpec
from pagerdrill.targets.base import Progress
from pagerdrill.targets.localprocs import LOG_TAIL, LOOPBACK, POLL_S, _tail
from pagerdrill.targets.state import emit

if TYPE_CHECKING:
    from pagerdrill.workspace.config import LocalTargetConfig


class LocalHealth:
    """Mixed into LocalTarget."""

    config: LocalTargetConfig
    _last_health: dict[str, str]

    if TYPE_CHECKING:  # what LocalTarget provides

        def _spec(self, service: str) -> ServiceSpec: ...

        def _listen_port(self, state: dict[str, Any], service: str) -> int: ...

        def _alive(self, pid: int | None, start_ticks: int | None) -> bool: ...

        def _exit_code(self, pid: int) -> int | None: ...

        def _spawn(self, state: dict[str, Any], service: str) -> None: ...

        def log_path(self, service: str) -> Path: ...

    def _healthy(self, state: dict[str, Any], service: str, timeout: float = 0.5) -> bool:
        """Healthy means *our* process answers: the reply must carry the pid we started,
        or another process squatting on the port would pass for the service. While a
        port is handed over (localproxy.py), the instance leaving and the one arriving
        are ours too, and either may answer."""
        entry = state["services"][service]
        ours = {entry.get("pid")}
        ours |= {(entry.get(k) or {}).get("pid") for k in ("retiring", "incoming")}
        return self._answers(service, self._listen_port(state, service), ours - {None}, timeout)

    def _answers(self, service: str, port: int, pids: set[int], timeout: float = 0.5) -> bool:
        """Whether one of `pids` answers a health check on `port`."""
        if self._spec(service).kind == "redis":
            pid, self._last_health[service] = self._redis_pid(port, timeout)
            return pid in pids
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            body = response.read(4096).decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            self._last_health[service] = f"no answer on port {port}: {exc}"
            return False
        finally:
            conn.close()
        self._last_health[service] = f"HTTP {response.status} {body.strip()}"
        try:
            pid = json.loads(body).get("pid")
        except (ValueError, AttributeError):
            pid = None
        return response.status == 200 and pid in pids

    def _redis_pid(self, port: int, timeout: float) -> tuple[int | None, str]:
        """AUTH + INFO server over a raw socket: proves the server is up, accepts our
        password and is the process we started (its process_id). Returns the pid (or
        None) and what was seen, for error messages."""
        password = self.config.redis_password.encode()
        cmd = (
            b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password)
            + b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"
        )
        reply = b""
        try:
            with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
                sock.sendall(cmd)
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                    if reply.startswith(b"-") or (
                        b"process_id:" in reply and reply.endswith(b"\r\n")
                    ):
                        break
        except OSError as exc:
            return None, f"no answer on port {port}: {exc}"
        if not reply.startswith(b"+OK\r\n"):
            first = reply.split(b"\r\n", 1)[0].decode(errors="replace")
            return None, f"AUTH refused: {first or 'connection closed'}"
        for line in reply.split(b"\r\n"):
            if line.startswith(b"process_id:"):
                pid = int(line.split(b":", 1)[1])
                return pid, f"redis process_id {pid}"
        return None, "INFO server had no process_id"

    def _check_dependencies(self, state: dict[str, Any], wanted: Sequence[str]) -> None:
        """A dependency not being started alongside must already run: fail fast, by name,
        before anything is touched."""
        for name in wanted:
            for dep in self._spec(name).depends_on:
                entry = state["services"].get(dep, {})
                if dep not in wanted and not self._alive(
                    entry.get("pid"), entry.get("start_ticks")
                ):
                    raise StackError(
                        name,
                        f"needs {dep}, which is not running; start it first "
                        f"(`pagerdrill stack start {dep}`)",
                    )

    def _wait_healthy(
        self,
        state: dict[str, Any],
        services: Sequence[str],
        progress: Progress | None,
        t0: float,
        *,
        kept_on_failure: bool = True,
    ) -> None:
        """Start `services` in dependency order, each once its dependencies are healthy,
        and wait until all are healthy. Raises StackError naming the first that fails.
        `kept_on_failure` says whether the caller leaves a service that never became
        healthy running (a single start) or stops it (`stack up` leaves nothing half-up),
        so that the error tells which."""
        wanted = list(services)
        healthy: set[str] = {name for name in SERVICE_NAMES if name not in wanted}
        self._check_dependencies(state, wanted)
        spawned_at: dict[str, float] = {}
        while True:
            for name in wanted:
                if name in spawned_at or name in healthy:
                    continue
                if all(dep in healthy for dep in self._spec(name).depends_on):
                    entry = state["services"][name]
                    if not self._alive(entry.get("pid"), entry.get("start_ticks")):
                        self._spawn(state, name)
                    spawned_at[name] = time.monotonic()
                    emit(progress, name, "starting", t0)
            for name, since in spawned_at.items():
                if name in healthy:
                    continue
                if self._started(state, name, since, kept_on_failure, progress, t0):
                    healthy.add(name)
                    emit(progress, name, "healthy", t0)
            if all(name in healthy for name in wanted):
                return
            time.sleep(POLL_S)

    def _started(
        self,
        state: dict[str, Any],
        name: str,
        since: float,
        kept_on_failure: bool,
        progress: Progress | None,
        t0: float,
    ) -> bool:
        """Whether a starting service is healthy yet; StackError when it exited, or did
        not become healthy in time."""
        entry = state["services"][name]
        timeout = self.config.startup_timeout_s
        if not self._alive(entry["pid"], entry.get("start_ticks")):
            code = self._exit_code(entry["pid"])
            how = f" with exit code {code}" if code is not None else ""
            emit(progress, name, "failed", t0)
            raise StackError(
                name, f"exited during start{how}", _tail(self.log_path(name), LOG_TAIL)
            )
        if self._healthy(state, name):
            return True
        if time.monotonic() - since <= timeout:
            return False
        emit(progress, name, "failed", t0)
        last = self._last_health.get(name, "no answer")
        if kept_on_failure:
            after = (
                f"Its process (pid {entry['pid']}) is left running for you to "
                f"inspect; `pagerdrill stack stop {name}` stops it"
            )
        else:
            after = "It was stopped, with everything this `stack up` started"
        raise StackError(
            name,
            f"did not become healthy within {timeout:g} s; last health check: {last}. {after}",
            _tail(self.log_path(name), LOG_TAIL),
        )
