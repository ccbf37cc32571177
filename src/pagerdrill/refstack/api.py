"""Reference `api`: sign-in, a cached read, bet placement, and the BullMQ consumer.

Settings (environment):
  PORT, HOST               where to listen
  REDIS_URL                the shared cache/queue Redis (with its password)
  ADMIN_DEFAULT_PASSWORD   the admin password, read once at boot
  QUEUE_NAME               BullMQ queue to consume (bet_settled_queue)
  CACHE_TTL_S              lifetime of a cached market (600)
  SLOW_PATH_MS             cost of an uncached market read (120)
  WORKER_CONCURRENCY       BullMQ jobs in flight (16)
  JOB_WORK_MS              time spent settling one job (2)
  FAULT_TOKEN              enables the fault-injection route for holders of this token;
                           unset or empty: the route does not exist
  TOKEN_SECRET             hex key that signs sign-in tokens; unset: a new random one per
                           process, so a restart signs everyone out

Fault injection (the seed's pilot drill, "inject a 500 on a non-critical route"):
PUT /_pagerdrill/faults/{name} with {"route": "/api/promotions", "status": 500,
"ratio": 1.0, "latency_ms": 0} and the header X-Fault-Token makes that route fail
(or slow down); DELETE removes it; GET lists them. Faults live in memory only, so a
restart of the api clears them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import secrets
import time

import redis.asyncio as aioredis
from aiohttp import web
from bullmq import Worker
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

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
from pagerdrill.refstack.spec import DEFAULT_ADMIN_PASSWORD, QUEUE_NAME

SERVICE = env_str("SERVICE_NAME", "api")
MARKETS = 100  # traffic reads the first 20; the rest are for people and tests
TOKEN_TTL_S = 3600

log = JsonLog(SERVICE)
registry = CollectorRegistry()
ProcessCollector(registry=registry)
REQUESTS = Counter(
    "http_requests", "HTTP requests served", ["route", "method", "status"], registry=registry
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=registry,
)
AUTH_FAILURES = Counter("auth_failures", "Rejected sign-ins", registry=registry)
SIGN_INS = Counter("sign_ins", "Accepted sign-ins", registry=registry)
CACHE_HITS = Counter("cache_hits", "Market reads served from Redis", registry=registry)
CACHE_MISSES = Counter("cache_misses", "Market reads that took the slow path", registry=registry)
BETS = Counter("bets_placed", "Bets accepted", registry=registry)
JOBS_PROCESSED = Counter(
    "queue_jobs_processed", "BullMQ jobs settled", ["queue"], registry=registry
)
JOBS_FAILED = Counter("queue_jobs_failed", "BullMQ jobs that raised", ["queue"], registry=registry)


class Api:
    def __init__(self) -> None:
        self.admin_password = env_str("ADMIN_DEFAULT_PASSWORD", DEFAULT_ADMIN_PASSWORD)
        self.redis_url = env_str("REDIS_URL", "redis://:cache@127.0.0.1:6379/0")
        self.queue = env_str("QUEUE_NAME", QUEUE_NAME)
        self.cache_ttl = int(env_number("CACHE_TTL_S", 600, minimum=1))
        self.slow_path_s = env_number("SLOW_PATH_MS", 120) / 1000
        self.concurrency = int(env_number("WORKER_CONCURRENCY", 16, minimum=1))
        self.job_work_s = env_number("JOB_WORK_MS", 2) / 1000
        given = env_str("TOKEN_SECRET", "")
        self.secret = bytes.fromhex(given) if given else secrets.token_bytes(32)
        self.redis = aioredis.from_url(
            self.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        self.worker: Worker | None = None
        self.fault_token = env_str("FAULT_TOKEN", "")
        self.faults: dict[str, dict] = {}

    # ------------------------------------------------------------- tokens

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue_token(self, user: str) -> str:
        payload = f"{user}.{int(time.time()) + TOKEN_TTL_S}"
        return f"{payload}.{self._sign(payload)}"

    def check_token(self, token: str) -> str | None:
        payload, _, signature = token.rpartition(".")
        user, _, expires = payload.rpartition(".")
        if not (user and expires.isdigit()) or int(expires) < time.time():
            return None
        return user if hmac.compare_digest(signature, self._sign(payload)) else None

    # ------------------------------------------------------------ handlers

    async def healthz(self, _request: web.Request) -> web.Response:
        problems = []
        try:
            await self.redis.ping()
        except Exception as exc:
            problems.append(f"redis: {exc}")
        if self.worker is None or self.worker.closed:
            problems.append("queue worker not running")
        return health(not problems, problems=problems)

    async def sign_in(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        user = str(body.get("username", ""))
        password = str(body.get("password", ""))
        trace_id = request["trace_id"]
        if user != "admin" or not hmac.compare_digest(password, self.admin_password):
            AUTH_FAILURES.inc()
            log.warning("sign-in rejected: bad credentials", trace_id, user=user)
            return web.json_response({"error": "invalid credentials"}, status=401)
        SIGN_INS.inc()
        return web.json_response({"token": self.issue_token(user)})

    async def market(self, request: web.Request) -> web.Response:
        market_id = request.match_info["market_id"]
        if not market_id.isdigit() or not 1 <= int(market_id) <= MARKETS:
            return web.json_response({"error": "no such market"}, status=404)
        key = f"cache:market:{market_id}"
        trace_id = request["trace_id"]
        route = "/api/markets/{market_id}"
        try:
            cached = await self.redis.get(key)
        except Exception as exc:
            log.warning(f"cache read failed for market {market_id}: {exc!r}", trace_id,
                        route=route, key=key)  # fmt: skip
            raise
        if cached is not None:
            CACHE_HITS.inc()
            return web.Response(body=cached, content_type="application/json")
        CACHE_MISSES.inc()
        started = time.perf_counter()
        # the uncached path: what the cache exists to avoid
        await asyncio.sleep(self.slow_path_s)
        seed = int(market_id)
        market = {
            "id": seed,
            "name": f"Match {seed}",
            "odds": {"home": 1.5 + seed / 100, "draw": 3.2, "away": 2.8 - seed / 100},
        }
        raw = json.dumps(market)
        # a cold read is what an engineer looks for when reads turn slow: each one is
        # a warning on its trace
        log.warning(
            f"cache miss: market {market_id} read from the slow path (cold cache)",
            trace_id,
            route=route,
            key=key,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        try:
            await self.redis.set(key, raw, ex=self.cache_ttl)
        except Exception as exc:
            log.warning(f"cache write failed for market {market_id}: {exc!r}", trace_id,
                        route=route, key=key)  # fmt: skip
            raise
        return web.Response(text=raw, content_type="application/json")

    async def place_bet(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        user = self.check_token(auth.removeprefix("Bearer ")) if auth else None
        if user is None:
            return web.json_response({"error": "not signed in"}, status=401)
        body = await _json_body(request)
        try:
            market_id = int(body["market_id"])
            stake = float(body["stake"])
        except (KeyError, TypeError, ValueError):
            return web.json_response({"error": "market_id and stake are required"}, status=400)
        if stake <= 0:
            return web.json_response({"error": "stake must be positive"}, status=400)
        bet_id = await self.redis.incr("bets:seq")
        bet = {"id": bet_id, "user": user, "market_id": market_id, "stake": stake}
        await self.redis.lpush("bets:recent", json.dumps(bet))
        await self.redis.ltrim("bets:recent", 0, 999)
        BETS.inc()
        return web.json_response(bet, status=201)

    async def promotions(self, _request: web.Request) -> web.Response:
        """The promo banner: nice to have, nobody loses money when it fails."""
        return web.json_response(
            {"promotions": [{"id": 1, "title": "Boosted odds on Match 7", "boost": 0.1}]}
        )

    # ------------------------------------------------------ fault injection

    def _fault_allowed(self, request: web.Request) -> None:
        if not self.fault_token:
            raise web.HTTPNotFound()
        given = request.headers.get("X-Fault-Token", "")
        if not hmac.compare_digest(given, self.fault_token):
            raise web.HTTPForbidden(text='{"error": "bad fault token"}')

    async def put_fault(self, request: web.Request) -> web.Response:
        self._fault_allowed(request)
        body = await _json_body(request)
        try:
            route = str(body["route"])
            status = int(body.get("status", 500))
            ratio = float(body.get("ratio", 1.0))
            latency_ms = float(body.get("latency_ms", 0))
        except (KeyError, TypeError, ValueError):
            return web.json_response({"error": "route (and numbers) required"}, status=400)
        fault = {"route": route, "status": status, "ratio": ratio, "latency_ms": latency_ms}
        if not (0.0 <= ratio <= 1.0 and 100 <= status <= 599 and latency_ms >= 0):
            return web.json_response({"error": "ratio in 0..1, status in 100..599"}, status=400)
        name = request.match_info["name"]
        self.faults[name] = fault
        log.warning(f"fault injected on {fault['route']}", request["trace_id"], fault=name, **fault)
        return web.json_response({"name": name, **fault})

    async def delete_fault(self, request: web.Request) -> web.Response:
        self._fault_allowed(request)
        name = request.match_info["name"]
        if self.faults.pop(name, None) is None:
            return web.json_response({"error": "no such fault"}, status=404)
        log.info("fault removed", request["trace_id"], fault=name)
        return web.json_response({"removed": name})

    async def list_faults(self, request: web.Request) -> web.Response:
        self._fault_allowed(request)
        return web.json_response(self.faults)

    def fault_for(self, route: str) -> dict | None:
        for fault in self.faults.values():
            if fault["route"] == route:
                return fault
        return None

    # -------------------------------------------------------------- queue

    async def settle(self, job, _token) -> dict:
        await asyncio.sleep(self.job_work_s)
        JOBS_PROCESSED.labels(self.queue).inc()
        return {"settled": job.data.get("bet_id")}

    async def start_worker(self) -> None:
        self.worker = Worker(
            self.queue,
            self.settle,
            {"connection": self.redis_url, "concurrency": self.concurrency},
        )
        self.worker.on("failed", self._job_failed)

    def _job_failed(self, job, error, *_rest) -> None:
        JOBS_FAILED.labels(self.queue).inc()
        log.error(f"job {getattr(job, 'id', '?')} failed: {error}", new_trace_id())

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.close(force=True)
        await self.redis.aclose()


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='{"error": "body must be JSON"}') from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}')
    return body


def observe_with(api: Api):
    @web.middleware
    async def middleware(request: web.Request, handler):
        return await observe(request, _faulty(api, handler))

    return middleware


def _faulty(api: Api, handler):
    """Wrap `handler` with the injected fault of its route, if any."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        resource = request.match_info.route.resource
        fault = api.fault_for(resource.canonical) if resource is not None and api.faults else None
        if fault is None:
            return await handler(request)
        if fault["latency_ms"] > 0:
            await asyncio.sleep(fault["latency_ms"] / 1000)
        if random.random() < fault["ratio"]:
            return web.json_response({"error": "injected fault"}, status=fault["status"])
        return await handler(request)

    return wrapped


async def observe(request: web.Request, handler):
    """Trace id, request metrics and one JSON log line per request."""
    trace_id = request.headers.get("X-Trace-Id") or new_trace_id()
    request["trace_id"] = trace_id
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception as exc:
        log.error(f"{request.method} {route} failed: {exc!r}", trace_id, route=route)
        raise web.HTTPInternalServerError(text='{"error": "internal error"}') from exc
    finally:
        elapsed = time.perf_counter() - started
        if route not in ("/metrics", "/healthz"):
            REQUESTS.labels(route, request.method, str(status)).inc()
            LATENCY.labels(route).observe(elapsed)
            level = log.error if status >= 500 else log.info
            level(
                f"{request.method} {request.path} {status}",
                trace_id,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 1),
            )
    response.headers["X-Trace-Id"] = trace_id
    return response


def make_app(api: Api) -> web.Application:
    app = service_app(api.healthz, registry, middlewares=(observe_with(api),))
    app.router.add_post("/auth/sign-in", api.sign_in)
    app.router.add_get("/api/promotions", api.promotions)
    app.router.add_put("/_pagerdrill/faults/{name}", api.put_fault)
    app.router.add_delete("/_pagerdrill/faults/{name}", api.delete_fault)
    app.router.add_get("/_pagerdrill/faults", api.list_faults)
    app.router.add_get("/api/markets/{market_id}", api.market)
    app.router.add_post("/api/bets", api.place_bet)
    return app


async def main() -> None:
    api = Api()
    await serve(make_app(api), log, on_start=api.start_worker, on_stop=api.stop)


if __name__ == "__main__":
    run(main)
