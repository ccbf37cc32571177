"""Reference `traffic`: the steady smoke profile, and what its clients saw.

Every 1/TRAFFIC_RATE seconds one request goes out (mostly cached market reads, some
promotions and bets, a few sign-ins); TRAFFIC_SOCKETS socket.io clients stay connected to `rt`.
Requests are fired on schedule, not after the previous one returns, so a slow api
shows as latency rather than as less traffic. /metrics reports client-side outcome
counts, a latency histogram, and the error rate and latency percentiles over the
last TRAFFIC_WINDOW_S seconds.

Settings (environment): PORT, HOST, API_URL, RT_URL, SIGNIN_PASSWORD, TRAFFIC_RATE (5),
TRAFFIC_SOCKETS (3), TRAFFIC_WINDOW_S (30).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import urllib.parse

import aiohttp
import socketio
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from pagerdrill.refstack.common import (
    JsonLog,
    Window,
    env_number,
    env_str,
    health,
    new_trace_id,
    run,
    serve,
    service_app,
)
from pagerdrill.refstack.spec import DEFAULT_ADMIN_PASSWORD

SERVICE = env_str("SERVICE_NAME", "traffic")
MAX_IN_FLIGHT = 64

log = JsonLog(SERVICE)
registry = CollectorRegistry()
ProcessCollector(registry=registry)
REQUESTS = Counter(
    "traffic_requests", "requests sent, by outcome", ["route", "outcome"], registry=registry
)
LATENCY = Histogram(
    "traffic_request_duration_seconds",
    "client-side latency",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=registry,
)
SOCKETS = Gauge("traffic_sockets_connected", "socket.io clients connected", registry=registry)
SOCKET_FAILURES = Counter(
    "traffic_socket_connect_failures", "socket.io connects that failed", registry=registry
)


class Traffic:
    def __init__(self) -> None:
        self.api = env_str("API_URL", "http://127.0.0.1:8080").rstrip("/")
        self.rt = env_str("RT_URL", "http://127.0.0.1:8081").rstrip("/")
        self.password = env_str("SIGNIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
        self.rate = env_number("TRAFFIC_RATE", 5.0)
        self.sockets = int(env_number("TRAFFIC_SOCKETS", 3))
        self.window = Window(env_number("TRAFFIC_WINDOW_S", 30.0, minimum=1))
        registry.register(self.window)
        self.session: aiohttp.ClientSession | None = None
        self.token: str | None = None
        self.tasks: list[asyncio.Task] = []
        self.in_flight: set[asyncio.Task] = set()
        self.clients: list[socketio.AsyncClient] = []
        self.last_failure: dict[str, str] = {}

    async def _request(
        self, route: str, method: str, url: str, headers: dict | None = None, **kwargs
    ) -> tuple[int, dict]:
        assert self.session is not None
        trace_id = new_trace_id()
        headers = {"X-Trace-Id": trace_id, **(headers or {})}
        started = time.perf_counter()
        status, body, ok = 0, {}, False
        try:
            async with self.session.request(method, url, headers=headers, **kwargs) as response:
                status = response.status
                if response.content_type == "application/json":
                    body = await response.json()
                ok = status < 400
        except (aiohttp.ClientError, TimeoutError) as exc:
            body = {"error": f"{type(exc).__name__}: {exc}"}
        elapsed = time.perf_counter() - started
        REQUESTS.labels(route, "ok" if ok else "error").inc()
        LATENCY.labels(route).observe(elapsed)
        self.window.add(elapsed, ok)
        if not ok:
            reason = f"status {status}" if status else body.get("error", "")
            if self.last_failure.get(route) != reason:  # log changes, not every failure
                # the path, as an access log has it: what failed is findable by route
                path = urllib.parse.urlsplit(url).path
                log.warning(f"{method} {path} failed: {reason}", trace_id, route=route)
            self.last_failure[route] = reason
        else:
            self.last_failure.pop(route, None)
        return status, body

    async def sign_in(self) -> None:
        status, body = await self._request(
            "sign-in",
            "POST",
            f"{self.api}/auth/sign-in",
            json={"username": "admin", "password": self.password},
        )
        self.token = body.get("token") if status == 200 else None

    async def read_market(self) -> None:
        await self._request("market", "GET", f"{self.api}/api/markets/{random.randint(1, 20)}")

    async def promotions(self) -> None:
        await self._request("promotions", "GET", f"{self.api}/api/promotions")

    async def place_bet(self) -> None:
        if self.token is None:
            await self.sign_in()
            if self.token is None:
                return
        status, _ = await self._request(
            "bet",
            "POST",
            f"{self.api}/api/bets",
            json={"market_id": random.randint(1, 20), "stake": round(random.uniform(1, 50), 2)},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        if status == 401:  # the api restarted and forgot us
            self.token = None

    async def _guarded(self, action) -> None:
        """A bug in one request must show in the log, not vanish with its task."""
        try:
            await action()
        except Exception as exc:
            log.error(f"traffic action {action.__name__} crashed: {exc!r}", new_trace_id())

    async def http_loop(self) -> None:
        if self.rate <= 0:  # sockets only: idle, but alive
            await asyncio.Event().wait()
        actions = (
            (self.read_market,) * 6
            + (self.promotions,) * 2
            + (self.place_bet,) * 2
            + (self.sign_in,)
        )
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while True:
            if len(self.in_flight) < MAX_IN_FLIGHT:
                task = asyncio.create_task(self._guarded(random.choice(actions)))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < -1.0:
                next_at = time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    async def socket_loop(self, index: int) -> None:
        client = socketio.AsyncClient(reconnection=False)
        self.clients.append(client)
        while True:
            if not client.connected:
                try:
                    await client.connect(self.rt, transports=["websocket"], wait_timeout=3)
                    SOCKETS.inc()
                    client.on("disconnect", lambda *_: SOCKETS.dec())
                except Exception as exc:
                    SOCKET_FAILURES.inc()
                    if self.last_failure.get(f"socket{index}") != repr(exc):
                        log.warning(f"socket.io connect failed: {exc}", new_trace_id())
                    self.last_failure[f"socket{index}"] = repr(exc)
                    await asyncio.sleep(2.0)
                    continue
                self.last_failure.pop(f"socket{index}", None)
            with contextlib.suppress(Exception):
                await client.emit("ping_odds", {"client": index})
            await asyncio.sleep(5.0)

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5.0),
            connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT),
        )
        self.tasks.append(asyncio.create_task(self.http_loop()))
        for index in range(self.sockets):
            self.tasks.append(asyncio.create_task(self.socket_loop(index)))

    async def stop(self) -> None:
        for task in [*self.tasks, *self.in_flight]:
            task.cancel()
        for client in self.clients:
            if client.connected:
                await client.disconnect()
        if self.session is not None:
            await self.session.close()

    async def healthz(self, _request: web.Request) -> web.Response:
        running = bool(self.tasks) and not self.tasks[0].done()
        return health(running, rate=self.rate, problem=None if running else "load loop stopped")


async def main() -> None:
    traffic = Traffic()
    app = service_app(traffic.healthz, registry)
    await serve(app, log, on_start=traffic.start, on_stop=traffic.stop)


if __name__ == "__main__":
    run(main)
