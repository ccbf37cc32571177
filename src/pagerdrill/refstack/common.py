"""What every reference service shares: settings from the environment, JSON log lines,
an aiohttp server with /healthz and /metrics, and a quick, clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import json
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)

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


async def serve(
    app: web.Application,
    log: JsonLog,
    *,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Listen on HOST:PORT until SIGTERM/SIGINT, then stop quickly and cleanly."""
    host = env_str("HOST", "127.0.0.1")
    port = int(env_number("PORT", 8080, minimum=1))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
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
    if on_stop is not None:
        try:
            await asyncio.wait_for(on_stop(), timeout=2.0)
        except Exception as exc:  # a slow dependency (TimeoutError too) must not block exit
            log.warning(f"shutdown hook did not finish cleanly: {exc!r}")
    await runner.cleanup()


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
