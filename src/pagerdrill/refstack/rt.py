"""Reference `rt`: a socket.io gateway with a per-source handshake throttler.

A source is the first address in X-Forwarded-For when present (the gateway sits
behind a proxy in production), else the peer address. Each source may complete
HANDSHAKE_LIMIT handshakes per HANDSHAKE_WINDOW_S seconds; the rest are refused
and counted. Sources in BLOCKED_SOURCES (comma-separated) are always refused.

Settings (environment): PORT, HOST, HANDSHAKE_LIMIT (50), HANDSHAKE_WINDOW_S (1),
BLOCKED_SOURCES ("").
"""

from __future__ import annotations

import time

import socketio
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from pagerdrill.refstack.common import (
    JsonLog,
    env_number,
    env_str,
    health,
    new_trace_id,
    run,
    serve,
    service_app,
)

SERVICE = env_str("SERVICE_NAME", "rt")

log = JsonLog(SERVICE)
registry = CollectorRegistry()
ProcessCollector(registry=registry)
ACCEPTED = Counter("rt_handshakes_accepted", "socket.io handshakes accepted", registry=registry)
REJECTED = Counter(
    "rt_handshakes_rejected", "socket.io handshakes refused", ["reason"], registry=registry
)
OPEN = Gauge("rt_connections_open", "socket.io connections open now", registry=registry)
MESSAGES = Counter("rt_messages", "socket.io events received", registry=registry)


class Throttler:
    """Fixed-window handshake counter per source."""

    def __init__(self, limit: int, window_s: float, blocked: set[str]):
        self.limit = limit
        self.window_s = window_s
        self.blocked = blocked
        self._windows: dict[str, tuple[float, int]] = {}
        self._last_warning: dict[str, float] = {}
        self._refused: dict[tuple[str, str], int] = {}

    def admit(self, source: str, now: float) -> str | None:
        """None if the handshake may proceed, else the reason it is refused."""
        if source in self.blocked:
            return "blocked"
        start, count = self._windows.get(source, (now, 0))
        if now - start >= self.window_s:
            start, count = now, 0
        if count >= self.limit:
            self._windows[source] = (start, count)
            return "throttled"
        self._windows[source] = (start, count + 1)
        if len(self._windows) > 10_000:  # forget idle sources
            cutoff = now - self.window_s
            self._windows = {k: v for k, v in self._windows.items() if v[0] >= cutoff}
            self._last_warning = {k: v for k, v in self._last_warning.items() if v >= now - 1.0}
        return None

    def refused(self, source: str, reason: str, now: float) -> int | None:
        """Count a refused handshake; at most once a second per source, the number
        refused (for this reason) since its last summary, else None: a storm of
        hundreds a second is a line a second, not a line a handshake."""
        key = (source, reason)
        self._refused[key] = self._refused.get(key, 0) + 1
        if now - self._last_warning.get(source, -1e9) < 1.0:
            return None
        self._last_warning[source] = now
        count = self._refused.pop(key)
        if len(self._refused) > 10_000:
            self._refused.clear()
        return count


def source_of(environ: dict) -> str:
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded:
        return forwarded.split(",")[0].strip()
    return environ.get("REMOTE_ADDR") or "unknown"


def make_app() -> web.Application:
    throttler = Throttler(
        limit=int(env_number("HANDSHAKE_LIMIT", 50)),
        window_s=env_number("HANDSHAKE_WINDOW_S", 1.0, minimum=0.001),
        blocked={s.strip() for s in env_str("BLOCKED_SOURCES", "").split(",") if s.strip()},
    )
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")

    @sio.event
    async def connect(sid, environ, auth=None):
        source = source_of(environ)
        now = time.monotonic()
        reason = throttler.admit(source, now)
        if reason is not None:
            REJECTED.labels(reason).inc()
            count = throttler.refused(source, reason, now)
            if count is not None:
                # its own trace: the error spans list each source's refusals
                log.warning(
                    f"handshake refused ({reason}) from {source}: {count} since its last line",
                    new_trace_id(),
                    source=source,
                    reason=reason,
                    refused=count,
                    limit=throttler.limit,
                    window_s=throttler.window_s,
                )
            raise socketio.exceptions.ConnectionRefusedError(reason)
        ACCEPTED.inc()
        OPEN.inc()
        await sio.save_session(sid, {"source": source})

    @sio.event
    async def disconnect(sid, *_args):
        OPEN.dec()

    @sio.on("ping_odds")
    async def ping_odds(sid, data=None):
        MESSAGES.inc()
        return {"ok": True, "echo": data}

    async def healthz(_request: web.Request) -> web.Response:
        return health(True, limit=throttler.limit, window_s=throttler.window_s)

    app = service_app(healthz, registry)
    sio.attach(app)
    return app


async def main() -> None:
    await serve(make_app(), log)


if __name__ == "__main__":
    run(main)
