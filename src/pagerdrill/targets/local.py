"""The local target: the reference stack as processes on 127.0.0.1.

State (pids, ports, environment overrides) lives in `<workspace>/.pagerdrill/stack.json`,
written atomically, so `status`, `stop` and `down` work from any shell. Mutating
commands hold an advisory lock on `stack.lock`; the kernel drops it when a process
dies, so a crashed command never leaves the stack locked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
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
from pagerdrill.targets.localhealth import LocalHealth
from pagerdrill.targets.localprocs import (
    LOCK_WAIT_S,
    LOG_TAIL,
    LOOPBACK,
    PASSED_ENV,
    STATE_VERSION,
    _free_port,
    _tail,
    entry_problem,
    find_redis_server,
    follow_file,
    run_beside,
    stop_process_group,
)
from pagerdrill.targets.localproxy import LAUNCH_ENV, LocalProxies
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

# the module's names from before it was split, still importable from here
__all__ = ["LOG_TAIL", "LocalTarget", "_free_port", "_tail", "find_redis_server", "open_target"]


class LocalTarget(LocalHealth, LocalProxies):
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
            why = entry_problem(name, entry, SERVICE_NAMES)
            if why:
                raise self._bad_state(why)
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
        """The port the service's clients use (its proxy's, while one is in front)."""
        return state["services"][service]["port"]

    def _listen_port(self, state: dict[str, Any], service: str) -> int:
        """The port the service's own process listens on."""
        entry = state["services"][service]
        return entry.get("listen_port") or entry["port"]

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
            "PORT": str(self._listen_port(state, service)),
            # a fault proxy takes the port over alongside the service (localproxy.py)
            "REUSE_PORT": "1",
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
        if (child := self._children.get(pid)) is not None and child.poll() is None:
            return True  # not reaped yet, so the pid cannot have been reused
        # an exited child's pid may belong to someone else now: only the start time tells
        return start_ticks is not None and _process_start_ticks(pid) == start_ticks

    def _exit_code(self, pid: int) -> int | None:
        child = self._children.get(pid)
        return child.poll() if child is not None else None

    def _spawn(self, state: dict[str, Any], service: str) -> None:
        entry = state["services"][service]
        # a restart signs everyone out, as the api's own random key would
        entry.pop("token_secret", None)
        if not entry.get("pid"):
            self._stop_recorded(service, entry)  # a crash's stray, by its launch token
        entry.update(pid=None, start_ticks=None, launch=secrets.token_hex(8))
        self._write_state(state)  # before it starts: a crash now still finds it
        proc, reuse_port = self._launch(state, service, launch=entry["launch"])
        started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        entry.update(pid=proc.pid, start_ticks=_process_start_ticks(proc.pid), status="running",
                     started_at=started, reuse_port=reuse_port)  # fmt: skip
        self._write_state(state)

    def _launch(
        self, state: dict[str, Any], service: str, port: int | None = None, launch: str = ""
    ) -> tuple[subprocess.Popen, bool]:
        """Start one process of `service` (on `port` for a handover), marked with the
        `launch` token; say whether it listens with SO_REUSEPORT."""
        entry = state["services"][service]
        argv = self._argv(state, service)
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("LC_")}
        env.update(self._base_env(state, service))
        env.update(entry.get("overrides", {}))
        env["PYTHONUNBUFFERED"] = "1"
        if port is not None:  # a handover's second instance, beside the first
            env |= {"PORT": str(port), "REUSE_PORT": "join"}
        env[LAUNCH_ENV] = launch
        if service == "api":
            # the api's sign-in key, kept across a handover: its clients stay signed in
            entry.setdefault("token_secret", secrets.token_hex(32))
            env["TOKEN_SECRET"] = entry["token_secret"]
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
        return proc, env.get("REUSE_PORT") in ("1", "join")

    def _terminate(self, service: str, pid: int, start_ticks: int | None) -> None:
        """SIGTERM, then SIGKILL after a grace period, to the process we started (and its
        process group, which it leads) and to nothing else."""
        if not self._alive(pid, start_ticks):
            return
        if not stop_process_group(pid, lambda: self._alive(pid, start_ticks)):
            raise StackError(service, f"process {pid} did not exit after SIGKILL")
        self.exit_codes[service] = self._exit_code(pid)

    def _stop_entry(self, state: dict[str, Any], service: str) -> None:
        """Stop the service's process, or one whose pid a crash kept unwritten."""
        entry = state["services"].get(service)
        if not entry or not (entry.get("pid") or entry.get("launch")):
            return
        self._stop_recorded(service, entry)
        entry.update(pid=None, start_ticks=None, status="stopped")
        entry.pop("launch", None)  # its process is gone: nothing left to look for
        self._write_state(state)

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
                    self.stop_handover(state, s.name)
                    self.stop_proxy(state, s.name)
                    if entry.get("pid") or entry.get("launch"):
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
        return run_beside(service, argv, env, self.state_dir, timeout)

    def logs(self, service: str, tail: int = 50) -> list[str]:
        self._spec(service)
        return _tail(self.log_path(service), tail)

    def follow_logs(self, service: str, tail: int = 10) -> Iterator[str]:
        """Yield the last `tail` lines, then every line appended, until closed."""
        self._spec(service)
        yield from follow_file(self.log_path(service), tail)


def open_target(workspace: Workspace, *, allow_remote_docker: bool = False) -> Target:
    """The target a workspace drills, local or compose (see `pagerdrill.targets`)."""
    from pagerdrill.targets import open_target as open_any

    return open_any(workspace, allow_remote_docker=allow_remote_docker)
