"""The traffic runner: a profile's requests on one shared aiohttp session, bounded in
rate, concurrency and time, with what the client saw served as Prometheus metrics.

`concurrency` workers share the session (its connector holds as many connections);
each takes the next slot of one pacer, so the rate bound holds however many workers
wait. A slot missed while every worker was busy is dropped, never made up in a burst.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from pagerdrill.errors import BadInputError
from pagerdrill.refstack.common import Window
from pagerdrill.workspace.traffic import (
    HttpStep,
    Template,
    TrafficProfile,
    host_refusal,
    render_body,
)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIGN_IN = "sign-in"
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?")


class Metrics:
    """Client-side results: requests by status, errors by reason, a latency histogram."""

    def __init__(self, window_s: float):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "traffic_requests",
            "requests sent, by the status that came back (`error`: no answer)",
            ["request", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "traffic_errors",
            "failed requests, by reason (status, connection, timeout, no_token)",
            ["request", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "traffic_request_duration_seconds",
            "client-side latency of answered requests",
            ["request"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.window = Window(window_s)
        self.registry.register(self.window)
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def record(self, request: str, status: int | None, latency: float, error: str | None):
        self._child(self.requests, request, str(status) if status else "error").inc()
        if status:
            self._child(self.latency, request).observe(latency)
        if error is not None:
            self._child(self.errors, request, error).inc()
        self.window.add(latency, error is None)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Totals:
    """What a run sent, for the caller (the benchmark, the tests)."""

    sent: int = 0
    errors: int = 0
    by_request: collections.Counter[str] = field(default_factory=collections.Counter)
    sign_ins: int = 0


class _Compiled:
    """One step's templates, parsed once: the profile's headers, then the step's own."""

    def __init__(self, step: HttpStep, profile_headers: dict[str, str]):
        self.path = Template(step.path)
        merged = {**profile_headers, **step.headers}
        self.headers = [(k, Template(v)) for k, v in merged.items()]
        self.body_template = Template(step.body) if isinstance(step.body, str) else None
        self.json_body = None if isinstance(step.body, str) else step.body


class Runner:
    """Run `profile` against `base_url`; `allowed_hosts` are the hosts the workspace
    binds. `unbounded_rate` lifts the rate bound, for the benchmark only (concurrency
    and time still bound it)."""

    def __init__(
        self,
        profile: TrafficProfile,
        base_url: str,
        *,
        allowed_hosts: set[str] | frozenset[str] = frozenset(),
        unbounded_rate: bool = False,
        seed: int | None = None,
        log: Callable[[str], None] | None = None,
    ):
        refusal = host_refusal(base_url, set(allowed_hosts))
        if refusal:
            raise BadInputError(f"traffic: {refusal}")
        self.profile = profile
        self.base = base_url.rstrip("/")
        self.rate: float | None = None if unbounded_rate else profile.rate
        self.rng = random.Random(seed)
        self.metrics = Metrics(profile.window_s)
        self.totals = Totals()
        self.token: str | None = None
        self.log = log or (lambda line: None)
        self._next_at = 0.0
        self._stop = asyncio.Event()
        self._sign_in_lock = asyncio.Lock()
        self._last_failure: dict[str, str] = {}
        self._compiled: dict[str, _Compiled] = {
            r.name: _Compiled(r, profile.headers) for r in profile.requests
        }
        if profile.sign_in is not None:
            self._compiled[SIGN_IN] = _Compiled(profile.sign_in, profile.headers)
        self._cum_weights = list(itertools.accumulate(r.weight for r in profile.requests))

    def stop(self) -> None:
        self._stop.set()

    # ----------------------------------------------------------------- requests

    def _render(self, name: str) -> tuple[str | URL, dict[str, str], dict[str, Any]]:
        c = self._compiled[name]
        token, rng = self.token, self.rng
        headers = {k: t.render(token, rng) for k, t in c.headers}
        kwargs: dict[str, Any] = {}
        if c.body_template is not None:
            kwargs["data"] = c.body_template.render(token, rng).encode()
        elif c.json_body is not None:
            kwargs["json"] = render_body(c.json_body, token, rng)
        url = self.base + c.path.render(token, rng)
        # a URL of plain characters needs no quoting: skip yarl's parse of every request
        return (URL(url, encoded=True) if _PLAIN_URL.fullmatch(url) else url), headers, kwargs

    async def _send(
        self, session: aiohttp.ClientSession, step: HttpStep, name: str
    ) -> tuple[int | None, aiohttp.ClientResponse | None, bytes]:
        url, headers, kwargs = self._render(name)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        body = b""
        response = None
        try:
            async with session.request(step.method, url, headers=headers, **kwargs) as response:
                body = await response.read()
                status = response.status
            ok = status in step.expect if step.expect else status < 400
            error = None if ok else "status"
        except TimeoutError:
            error = "timeout"
        except aiohttp.ClientError:
            error = "connection"
        latency = time.perf_counter() - started
        self.metrics.record(name, status, latency, error)
        self.totals.sent += 1
        self.totals.by_request[name] += 1
        if error is not None:
            self.totals.errors += 1
            reason = f"status {status}" if status else error
            if self._last_failure.get(name) != reason:  # a change, not every failure
                self.log(f"{step.method} {name} failed: {reason}")
            self._last_failure[name] = reason
        else:
            self._last_failure.pop(name, None)
        return status, response, body

    async def sign_in(self, session: aiohttp.ClientSession) -> bool:
        """Sign in once (one at a time: workers that need a token wait for the first)."""
        step = self.profile.sign_in
        if step is None:
            return True
        async with self._sign_in_lock:
            if self.token is not None:
                return True
            status, response, body = await self._send(session, step, SIGN_IN)
            self.totals.sign_ins += 1
            token = None
            if status is not None and response is not None and status < 400:
                token = self._token_of(step.token.json_path, step.token.header, response, body)
            if token is None and status is not None and status < 400:
                self.log("sign-in answered but its answer holds no token")
            self.token = token
            return token is not None

    @staticmethod
    def _token_of(
        json_path: str | None, header: str | None, response: aiohttp.ClientResponse, body: bytes
    ) -> str | None:
        if header is not None:
            return response.headers.get(header)
        assert json_path is not None
        try:
            value: Any = json.loads(body)
        except ValueError:
            return None
        for key in json_path.split("."):
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        return str(value)

    # ------------------------------------------------------------------ pacing

    async def _slot(self, deadline: float) -> bool:
        """Wait for this worker's next slot; False once the run is over."""
        if self._stop.is_set():
            return False
        now = time.monotonic()
        if self.rate is not None:
            at = max(self._next_at, now)
            self._next_at = at + 1.0 / self.rate
            if at >= deadline:
                return False
            if at > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), at - now)
                return not self._stop.is_set()
            return True
        return now < deadline

    async def _worker(self, session: aiohttp.ClientSession, deadline: float) -> None:
        needs_token = {r.name: r.uses_token() for r in self.profile.requests}
        requests = self.profile.requests
        while await self._slot(deadline):
            request = self.rng.choices(requests, cum_weights=self._cum_weights)[0]
            if needs_token[request.name] and self.token is None and not await self.sign_in(session):
                self.metrics.record(request.name, None, 0.0, "no_token")
                self.totals.sent += 1
                self.totals.errors += 1
                self.totals.by_request[request.name] += 1
                continue
            status, _, _ = await self._send(session, request, request.name)
            if status == 401 and needs_token[request.name]:
                self.token = None  # the service forgot the sign-in: take a new one

    async def run(self, duration_s: float | None = None) -> Totals:
        """Send until `duration_s` (never past the profile's bound) or `stop()`."""
        bound = self.profile.duration_s
        deadline = time.monotonic() + (min(duration_s, bound) if duration_s else bound)
        self._next_at = time.monotonic()
        connector = aiohttp.TCPConnector(
            limit=self.profile.concurrency, limit_per_host=self.profile.concurrency
        )
        timeout = aiohttp.ClientTimeout(total=self.profile.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            if self.profile.sign_in is not None:
                await self.sign_in(session)
            workers = [
                asyncio.create_task(self._worker(session, deadline))
                for _ in range(self.profile.concurrency)
            ]
            await asyncio.gather(*workers)
        return self.totals

    # ----------------------------------------------------------------- metrics

    async def serve_metrics(self, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
        """Serve /metrics (and /healthz) on `host`, an ephemeral port by default; the
        URL is `metrics_url(runner)`."""

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        async def healthz(_: web.Request) -> web.Response:
            return web.json_response({"status": "ok", "sent": self.totals.sent})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        return runner


def served_url(runner: web.AppRunner) -> str:
    """The root URL an AppRunner from `serve_metrics` listens on."""
    for address in runner.addresses:
        host, port = address[0], address[1]
        return f"http://{host}:{port}"
    raise RuntimeError("the metrics server listens nowhere")
