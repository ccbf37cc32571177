"""The local target's HTTP proxy fault: the service moves to another port and the proxy
takes its own, so every client (traffic, probes, the other services) goes through it
without being told.

Everything is recorded in `stack.json` before it is done (the service's new port, the
proxy's pid and kernel start time), so `remove_http_proxy` puts the service back from
any process, after any crash, and `stack down` stops a proxy with the rest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pagerdrill.errors import StackError
from pagerdrill.targets.base import process_start_ticks
from pagerdrill.targets.localprocs import LOG_TAIL, LOOPBACK, POLL_S, _free_port, _tail

PROXY_START_S = 10.0
LAUNCH_ENV = "PAGERDRILL_LAUNCH"  # a launch token: finds a process started but not recorded


def accepts(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


class LocalProxies:
    """Mixed into LocalTarget: uses its state, lock, processes and health waits.

    A service started with SO_REUSEPORT (every reference HTTP service the local target
    starts) is handed over with no gap. A second instance starts on a spare port, the
    proxy starts listening on the service's port beside the first instance, and only
    then does the first one stop; taking the proxy out does the same the other way
    round. A client never finds the port closed, so the fault shows as what it is and
    not as a restart. A service without the option takes the plain path: stop, move,
    start, which its clients see as a short outage.

    Each process is recorded before it starts (`incoming`, the proxy), with a launch
    token in its environment, so one that a crash left unrecorded is still found; the
    instance leaving is recorded (`retiring`) before it stops. Whatever a crash or a
    failure left, `remove_http_proxy` converges on one instance of the service on its
    own port, keeping one that is already there rather than restarting it.
    """

    def insert_http_proxy(self: Any, service: str, rules: Mapping[str, Any], script: Path) -> dict:
        t0 = time.monotonic()
        with self._locked():
            state = self._require_up(service)
            entry = state["services"][service]
            if entry.get("proxy"):
                raise StackError(service, "already has a proxy in front of it")
            if entry.get("incoming") or entry.get("retiring"):
                raise StackError(
                    service,
                    "was left half-way through a proxy handover: `pagerdrill recover` "
                    "or `pagerdrill stack down` puts it right",
                )
            if not self._alive(entry.get("pid"), entry.get("start_ticks")):
                raise StackError(service, "is not running: nothing to put a proxy in front of")
            taken = {e["port"] for e in state["services"].values()}
            taken |= {e["listen_port"] for e in state["services"].values() if e.get("listen_port")}
            spare = _free_port(taken)
            # recorded before anything moves, so that a crash part-way is put back too
            entry["proxy"] = {"rules": dict(rules), "script": str(script), "pid": None,
                              "start_ticks": None, "launch": secrets.token_hex(8)}  # fmt: skip
            handover = bool(entry.get("reuse_port"))
            if handover:
                self._start_incoming(state, service, spare, t0)
                self._spawn_proxy(state, service, spare)
                self._take_over(state, service, listen_port=spare)
                self.stop_handover(state, service)  # only now that the proxy listens
            else:
                # the restart is owed from here: a crash part-way still owes it
                entry.update(listen_port=spare, restart=True)
                self._write_state(state)
                self._stop_entry(state, service)
                self._wait_healthy(state, [service], None, t0)
                entry.pop("restart")
                self._spawn_proxy(state, service, spare)
            return {
                "service": service,
                "port": entry["port"],
                "service_port": entry["listen_port"],
                "proxy_pid": entry["proxy"]["pid"],
                "handover": handover,
            }

    def remove_http_proxy(self: Any, service: str) -> dict:
        t0 = time.monotonic()
        with self._locked():
            state = self._require_up(service)
            entry = state["services"][service]
            proxy = entry.get("proxy")
            if not (proxy or entry.get("listen_port") or entry.get("incoming")
                    or entry.get("retiring") or entry.get("restart")):  # fmt: skip
                return {"service": service, "skipped": "no proxy in front of it"}
            self._prune(state, service)
            if (
                proxy
                and entry.get("listen_port")
                and entry.get("reuse_port")
                and proxy.get("reuse_port")
                and not entry.get("incoming")
                and not entry.get("retiring")
                and self._alive(proxy.get("pid"), proxy.get("start_ticks"))
                and self._alive(entry.get("pid"), entry.get("start_ticks"))
            ):
                with contextlib.suppress(StackError):  # converged on below, with the rest
                    self._start_incoming(state, service, entry["port"], t0)
                    self._take_over(state, service, listen_port=None)
                    self.stop_proxy(state, service)  # before the instance it forwards to
                    self.stop_handover(state, service)
                    return {"service": service, "removed": True, "restarted": True,
                            "handover": True}  # fmt: skip
            return self._converge(state, service, t0)

    def _converge(self: Any, state: dict[str, Any], service: str, t0: float) -> dict:
        """One instance of `service` on its own port and nothing else: the proxy out
        first (so that an instance already there has the port alone), an instance that
        answers there as itself kept, every other one stopped; with none, the service
        restarted at home, once its dependencies run (nothing is stopped before), the
        restart recorded as owed so that a crash part-way still owes it."""
        entry = state["services"][service]
        home = entry["port"]
        self.stop_proxy(state, service)
        keep = None
        if not entry.get("listen_port") and self._answers_as(service, home, entry):
            keep = "entry"
        for key in ("incoming", "retiring"):
            other = entry.get(key) or {}
            if (
                keep is None
                and other.get("port") == home
                and self._answers_as(service, home, other)
            ):
                keep = key
            elif other:
                self._stop_recorded(service, other)
                entry.pop(key)
                self._write_state(state)
        if keep in ("incoming", "retiring"):
            self._take_over(state, service, listen_port=None, arriving=keep)
            self.stop_handover(state, service)
        if keep is not None:
            entry.pop("restart", None)
            self._write_state(state)
            return {"service": service, "removed": True, "restarted": keep == "incoming"}
        if not (entry.get("restart") or self._alive(entry.get("pid"), entry.get("start_ticks"))):
            entry.pop("listen_port", None)  # stopped, and nothing owed: it stays stopped
            self._write_state(state)
            return {"service": service, "removed": True, "restarted": False}
        self._check_dependencies(state, [service])
        entry["restart"] = True
        self._write_state(state)
        self._stop_entry(state, service)
        entry.pop("listen_port", None)
        self._write_state(state)
        self._wait_healthy(state, [service], None, t0)
        entry.pop("restart", None)
        self._write_state(state)
        return {"service": service, "removed": True, "restarted": True}

    def _answers_as(self: Any, service: str, port: int, record: Mapping[str, Any]) -> bool:
        """Whether the process `record` names answers a health check on `port` as
        itself, within a second (one told to stop has closed its port already)."""
        pid = record.get("pid")
        if not self._alive(pid, record.get("start_ticks")) or not accepts(port):
            return False  # nothing listens there: no need to wait for an answer
        deadline = time.monotonic() + 1.0
        while not self._answers(service, port, {pid}):
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S * 5)
        return True

    def _prune(self: Any, state: dict[str, Any], service: str) -> None:
        """Forget handover records whose process is gone (and was never unrecorded)."""
        entry = state["services"][service]
        for key in ("incoming", "retiring"):
            record = entry.get(key)
            if (
                record
                and not self._alive(record.get("pid"), record.get("start_ticks"))
                and not pids_launched(record.get("launch") or "")
            ):
                entry.pop(key)
                self._write_state(state)

    def _start_incoming(
        self: Any, state: dict[str, Any], service: str, port: int, t0: float
    ) -> None:
        """A second instance of `service` on `port` (SO_REUSEPORT), recorded before it
        starts; returns once it answers there as itself."""
        entry = state["services"][service]
        launch = secrets.token_hex(8)
        entry["incoming"] = {"port": port, "pid": None, "start_ticks": None, "launch": launch}
        self._write_state(state)
        proc, _ = self._launch(state, service, port, launch)
        entry["incoming"].update(pid=proc.pid, start_ticks=process_start_ticks(proc.pid))
        self._write_state(state)
        timeout = self.config.startup_timeout_s
        while not self._answers(service, port, {proc.pid}):
            if proc.poll() is not None:
                raise StackError(
                    service,
                    f"its new instance on port {port} exited during start "
                    f"with exit code {proc.returncode}",
                    _tail(self.log_path(service), LOG_TAIL),
                )
            if time.monotonic() - t0 > timeout:
                last = self._last_health.get(service, "no answer")
                raise StackError(
                    service,
                    f"its new instance on port {port} did not become healthy within "
                    f"{timeout:g} s; last health check: {last}",
                    _tail(self.log_path(service), LOG_TAIL),
                )
            time.sleep(POLL_S)

    def _take_over(
        self: Any,
        state: dict[str, Any],
        service: str,
        listen_port: int | None,
        arriving: str = "incoming",
    ) -> None:
        """The `arriving` instance becomes the service (listening on `listen_port`, or on
        the service's own port when None); the one it replaces is recorded as leaving,
        for the caller to stop once nothing sends to it."""
        entry = state["services"][service]
        if arriving != "retiring" and entry.get("retiring"):
            raise StackError(service, "a handover is half-way already: nothing taken over")
        new = entry.pop(arriving)
        entry["retiring"] = {"pid": entry["pid"], "start_ticks": entry.get("start_ticks"),
                             "port": self._listen_port(state, service),
                             "launch": entry.get("launch")}  # fmt: skip
        entry.update(pid=new["pid"], start_ticks=new["start_ticks"], started_at=_now_iso(),
                     launch=new.get("launch"))  # fmt: skip
        if listen_port is None:
            entry.pop("listen_port", None)
        else:
            entry["listen_port"] = listen_port
        self._write_state(state)

    def _spawn_proxy(self: Any, state: dict[str, Any], service: str, upstream: int) -> None:
        """Start the proxy on the service's port, to the instance on `upstream`. It
        listens with SO_REUSEPORT, beside an instance still there during a handover,
        and so that one can listen beside it when the port is handed back."""
        entry = state["services"][service]
        log_path = self.log_dir / f"{service}-proxy.log"
        argv = [
            sys.executable,
            entry["proxy"]["script"],
            "--listen", f"{LOOPBACK}:{entry['port']}",
            "--upstream", f"{LOOPBACK}:{upstream}",
            "--rules", json.dumps(entry["proxy"]["rules"]),
            "--reuse-port",  # always: the service can come back beside it
        ]  # fmt: skip
        self.log_dir.mkdir(parents=True, exist_ok=True)
        offset = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                env=os.environ | {LAUNCH_ENV: entry["proxy"].get("launch", "")},
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        entry["proxy"].update(
            pid=proc.pid, start_ticks=process_start_ticks(proc.pid), reuse_port=True
        )
        self._write_state(state)
        deadline = time.monotonic() + PROXY_START_S
        # while the old instance holds the port it accepts already: the proxy's own
        # word that it listens is what counts
        while not (_says_listening(log_path, offset) and accepts(entry["port"])):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StackError(
                    service,
                    f"its proxy did not start listening on port {entry['port']}",
                    _tail(log_path, LOG_TAIL),
                )
            time.sleep(0.02)

    def stop_proxy(self: Any, state: dict[str, Any], service: str) -> None:
        """Stop the proxy in front of `service`, if it is still the process we started."""
        entry = state["services"][service]
        if entry.get("proxy"):
            self._stop_recorded(f"{service}-proxy", entry["proxy"])
        entry.pop("proxy", None)
        self._write_state(state)

    def stop_handover(self: Any, state: dict[str, Any], service: str) -> None:
        """Stop the instances of `service` that a handover left beside the service's
        own: the one leaving and one that never took over."""
        entry = state["services"][service]
        for key in ("retiring", "incoming"):
            if entry.get(key):
                self._stop_recorded(service, entry[key])
            entry.pop(key, None)
        self._write_state(state)

    def _stop_recorded(self: Any, name: str, record: Mapping[str, Any]) -> None:
        """Stop the process a record names; one started but killed with us before its
        pid was written is found by the launch token in its environment."""
        if record.get("pid"):
            self._terminate(name, record["pid"], record.get("start_ticks"))
            return
        for pid, ticks in pids_launched(record.get("launch") or ""):
            self._terminate(name, pid, ticks)


def pids_launched(token: str) -> list[tuple[int, int | None]]:
    """The processes whose environment carries launch token `token`, with their kernel
    start times read before their environment (a pid reused in between does not
    match). Only their user, or root, can read a process's environment."""
    if not token:
        return []
    marker = f"{LAUNCH_ENV}={token}".encode()
    found: list[tuple[int, int | None]] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        ticks = process_start_ticks(int(proc.name))
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if ticks is not None and marker in environ.split(b"\0"):
            found.append((int(proc.name), ticks))
    return found


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _says_listening(log_path: Path, offset: int) -> bool:
    """Whether the proxy started after `offset` of its log has said it listens."""
    try:
        with log_path.open("rb") as log:
            log.seek(offset)
            return b"proxy: listening on" in log.read()
    except OSError:
        return False
