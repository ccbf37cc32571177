"""What every reference service shares: settings from the environment, JSON log lines,
an aiohttp server with /healthz and /metrics, and a quick, clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import errno
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# `_created` series double every counter and no dashboard of ours reads them
disable_created_metrics()


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_number(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        fatal(f"{name}={raw!r}: expected a number")
    if value < minimum:
        fatal(f"{name}={raw!r}: expected a number >= {minimum:g}")
    return value


def new_trace_id() -> str:
    return secrets.token_hex(16)


def rotated_name(path: str, n: int) -> str:
    """The n-th older file of a rotated log (`api.log.1` is the newest of them)."""
    return f"{path}.{n}"


class _Rotation:
    """Size-based rotation of the log file the supervisor opened as this process's
    stdout and stderr (LOG_FILE): past LOG_MAX_BYTES it becomes LOG_FILE.1 (older ones
    move up, LOG_BACKUPS are kept) and a new LOG_FILE takes over both descriptors, so
    tracebacks land in the current file too. A log that is not rotated fills the disk
    of a stack left running."""

    def __init__(self) -> None:
        self.path = os.environ.get("LOG_FILE") or None
        try:
            self.max_bytes = int(os.environ.get("LOG_MAX_BYTES") or 1024 * 1024)
            self.backups = int(os.environ.get("LOG_BACKUPS") or 3)
        except ValueError:
            self.path = None
        if self.max_bytes <= 0:
            self.path = None

    def after_write(self) -> None:
        if self.path is None:
            return
        try:
            current = os.fstat(sys.stdout.fileno())
            if current.st_size < self.max_bytes:
                return
            named = os.stat(self.path)
            if (named.st_ino, named.st_dev) != (current.st_ino, current.st_dev):
                return  # stdout is not (or no longer) that file: not ours to rotate
            for n in range(self.backups - 1, 0, -1):
                if os.path.exists(rotated_name(self.path, n)):
                    os.replace(rotated_name(self.path, n), rotated_name(self.path, n + 1))
            if self.backups > 0:
                os.replace(self.path, rotated_name(self.path, 1))
            else:
                os.unlink(self.path)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except (OSError, ValueError):
            return  # logging must never take the service down
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


_ROTATION = _Rotation()


class JsonLog:
    """One JSON object per line on stdout: timestamp, level, service, trace_id, message."""

    def __init__(self, service: str):
        self.service = service

    def _write(self, level: str, message: str, trace_id: str | None, fields: dict[str, Any]):
        record = {
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "service": self.service,
            "trace_id": trace_id,
            "message": message,
        }
        record.update(fields)
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        sys.stdout.flush()
        _ROTATION.after_write()

    def info(self, message: str, trace_id: str | None = None, **fields: Any) -> None:
        self._write("info", message, trace_id, fields)

    def warning(self, message: str, trace_id: str | None = None, **fields: Any) -> None:
        self._write("warning", message, trace_id, fields)

    def error(self, message: str, trace_id: str | None = None, **fields: Any) -> None:
        self._write("error", message, trace_id, fields)


def fatal(message: str) -> None:
    JsonLog(os.environ.get("SERVICE_NAME", "service")).error(message)
    raise SystemExit(1)


def health(ok: bool, **fields: Any) -> web.Response:
    """The /healthz answer. It names the process (pid) so a supervisor can tell its own
    service from another process answering on the same port."""
    body = {"status": "ok" if ok else "unhealthy", "pid": os.getpid(), **fields}
    return web.json_response(body, status=200 if ok else 503)


def metrics_handler(registry: CollectorRegistry):
    async def handler(_request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


def service_app(
    healthz: Callable[[web.Request], Awaitable[web.Response]],
    registry: CollectorRegistry,
    middlewares: tuple = (),
) -> web.Application:
    """An aiohttp app with the two routes every reference service has."""
    app = web.Application(middlewares=list(middlewares))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler(registry))
    return app


SHUTDOWN_S = 1.0  # how long a stopping service gives the requests it is answering


async def serve(
    app: web.Application,
    log: JsonLog,
    *,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Listen on HOST:PORT until SIGTERM/SIGINT, then stop quickly and cleanly: the port
    closes first, the requests being answered get SHUTDOWN_S, and only then does
    `on_stop` close what they used.

    REUSE_PORT makes the port joinable (SO_REUSEPORT), so that another process can
    listen on it beside this one: the local target hands a service's port to a fault
    proxy and back that way, with no moment at which a client's connection is refused.
    REUSE_PORT=1 takes the port only when it is free, as without the option (a second
    stack given the same port still gets "address already in use"); REUSE_PORT=join
    joins the process of the handover already listening there."""
    host = env_str("HOST", "127.0.0.1")
    port = int(env_number("PORT", 8080, minimum=1))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_S)
    await runner.setup()
    try:
        sock = listening_socket(host, port, env_str("REUSE_PORT", ""))
        await web.SockSite(runner, sock).start()
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else str(exc)
        log.error(f"cannot listen on {host}:{port}: {reason}", port=port)
        await runner.cleanup()
        raise SystemExit(1) from None
    if on_start is not None:
        await on_start()
    log.info(f"listening on http://{host}:{port}", port=port, pid=os.getpid())
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    if on_stop is not None:
        try:
            await asyncio.wait_for(on_stop(), timeout=2.0)
        except Exception as exc:  # a slow dependency (TimeoutError too) must not block exit
            log.warning(f"shutdown hook did not finish cleanly: {exc!r}")


def listening_socket(host: str, port: int, reuse: str = "") -> socket.socket:
    """A TCP socket bound to host:port. With `reuse` "1" the bind is exclusive and the
    port joinable afterwards (SO_REUSEPORT set after the bind, so no process can be
    there first with the option); with "join" it joins a joinable port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse == "join":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if reuse == "1":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        sock.close()
        raise
    return sock


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# ------------------------------------------------- client-side traffic figures

QUANTILES = (0.5, 0.95, 0.99)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


class Window(Collector):
    """Outcomes of the last `seconds` seconds as an error rate and latency percentiles,
    under the names the reference stack's traffic service uses, so a scenario's
    `traffic` probes read either the same way."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.samples: collections.deque[tuple[float, float, bool]] = collections.deque()

    def add(self, latency: float, ok: bool) -> None:
        now = time.monotonic()
        self.samples.append((now, latency, ok))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self.samples and self.samples[0][0] < now - self.seconds:
            self.samples.popleft()

    def collect(self):
        self._trim(time.monotonic())
        samples = list(self.samples)
        errors = sum(1 for _, _, ok in samples if not ok)
        rate = GaugeMetricFamily(
            "traffic_error_rate", f"share of requests that failed over the last {self.seconds:g} s"
        )
        rate.add_metric([], errors / len(samples) if samples else 0.0)
        yield rate
        total = GaugeMetricFamily(
            "traffic_window_requests", f"requests in the last {self.seconds:g} s"
        )
        total.add_metric([], len(samples))
        yield total
        # a refused connection fails at once: counting it would make an outage look
        # fast, so the percentiles are of requests that got an answer
        latencies = sorted(latency for _, latency, ok in samples if ok)
        quantiles = GaugeMetricFamily(
            "traffic_latency_seconds",
            f"client-side latency percentiles of successful requests, last {self.seconds:g} s",
            labels=["quantile"],
        )
        for q in QUANTILES:
            quantiles.add_metric([f"{q:g}"], percentile(latencies, q))
        yield quantiles
