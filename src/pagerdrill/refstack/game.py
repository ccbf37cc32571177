"""Reference `game`: adds settled-bet jobs to the BullMQ queue at a steady rate.

With `api` (the consumer) stopped, the queue grows by GAME_RATE jobs a second;
when it comes back, the backlog drains. When Redis is away, each add gives up after
ADD_TIMEOUT_S and counts as an error, and /healthz turns unhealthy until adds succeed
again: a producer that cannot produce must be visible in a drill.

A share of the jobs (DELAYED_SHARE) settle bets on markets that close later: they
are added with a delay of DELAYED_S seconds and wait in the queue's delayed set
until then. A FLUSHDB of the shared Redis loses them, as the seed warns.

The producer is the system of record for the settlements it owes: it keeps a ledger
(in memory) of every job it added until the job is processed, and keeps checking
that every job in it is still in the queue. `game_jobs_unaccounted` counts the
jobs that are neither in the queue nor processed (lost with a FLUSHDB). Each job's id
is its bet id, so `POST /admin/replay-lost-jobs` re-adds the lost ones under their
own ids, with what is left of their delay: a replay run twice adds nothing the
second time. The route answers requests from this host's loopback, and others that
carry the stack's fault token (header X-Fault-Token, FAULT_TOKEN).

Settings (environment): PORT, HOST, REDIS_URL, QUEUE_NAME, GAME_RATE (jobs/s, 5),
ADD_TIMEOUT_S (2), DELAYED_SHARE (0.2), DELAYED_S (60), FAULT_TOKEN.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import itertools
import random
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web
from bullmq import Queue
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
from pagerdrill.refstack.spec import QUEUE_NAME

SERVICE = env_str("SERVICE_NAME", "game")
STALE_AFTER_S = 5.0
RECONCILE_S = 1.0
# the ledger holds what the consumer has not processed yet; past this many jobs (a
# consumer away for hours) the oldest are forgotten rather than the process growing
LEDGER_MAX = 100_000

log = JsonLog(SERVICE)
registry = CollectorRegistry()
ProcessCollector(registry=registry)
PRODUCED = Counter("game_jobs_produced", "settled-bet jobs added", ["queue"], registry=registry)
ERRORS = Counter(
    "game_produce_errors", "jobs that could not be added", ["queue"], registry=registry
)
RATE = Gauge("game_rate_per_second", "configured production rate", registry=registry)
UNACCOUNTED = Gauge(
    "game_jobs_unaccounted",
    "jobs this producer added that are neither in the queue nor processed",
    ["queue"],
    registry=registry,
)
OWED = Gauge(
    "game_jobs_owed", "jobs added and not processed yet (the ledger)", ["queue"], registry=registry
)
REPLAYED = Counter(
    "game_jobs_replayed", "lost jobs added again by a replay", ["queue"], registry=registry
)


def admin_allowed(remote: str | None, given_token: str, fault_token: str) -> bool:
    """The admin routes answer this host's loopback, and anyone holding the stack's
    fault token; no token configured means loopback only."""
    if fault_token and hmac.compare_digest(given_token.encode(), fault_token.encode()):
        return True
    try:
        return ipaddress.ip_address(remote or "").is_loopback
    except ValueError:
        return False


@dataclass
class Owed:
    """A job added and not yet processed: enough to add it again."""

    data: dict
    due_ms: int
    """When it is meant to run (epoch ms): its add time plus its delay."""
    seen: bool = False
    """Found in the queue by a check."""
    lost: bool = False


class Producer:
    def __init__(self) -> None:
        self.queue_name = env_str("QUEUE_NAME", QUEUE_NAME)
        self.rate = env_number("GAME_RATE", 5.0)
        self.add_timeout = env_number("ADD_TIMEOUT_S", 2.0, minimum=0.1)
        self.delayed_share = min(1.0, env_number("DELAYED_SHARE", 0.2))
        self.delay_ms = int(env_number("DELAYED_S", 60.0) * 1000)
        redis_url = env_str("REDIS_URL", "redis://:cache@127.0.0.1:6379")
        self.queue = Queue(self.queue_name, {"connection": redis_url})
        self.redis = aioredis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.fault_token = env_str("FAULT_TOKEN", "")
        self.ledger: dict[str, Owed] = {}
        self.marker = f"game:{self.queue_name}:ledger"
        """A key whose absence says Redis was emptied since the last check."""
        self.checking = asyncio.Lock()
        self.task: asyncio.Task | None = None
        self.reconciler: asyncio.Task | None = None
        self.last_error: str | None = None
        self.last_success = time.monotonic()
        RATE.set(self.rate)
        UNACCOUNTED.labels(self.queue_name).set(0)
        OWED.labels(self.queue_name).set(0)

    async def _add(self, data: dict, delay_ms: int) -> None:
        # the bet id is the job id: BullMQ adds nothing for an id it already holds
        opts: dict = {"jobId": data["bet_id"], "removeOnComplete": 1000, "removeOnFail": 5000}
        if delay_ms > 0:
            opts["delay"] = delay_ms
        await asyncio.wait_for(self.queue.add("bet_settled", data, opts), self.add_timeout)

    async def add_one(self, seq: int) -> None:
        now_ms = int(time.time() * 1000)
        bet_id = f"{now_ms}-{seq}"
        data: dict = {
            "bet_id": bet_id,
            "market_id": random.randint(1, 20),
            "outcome": random.choice(("won", "lost")),
            "payout": round(random.uniform(1, 250), 2),
        }
        delay = self.delay_ms if self.delay_ms > 0 and random.random() < self.delayed_share else 0
        try:
            await self._add(data, delay)
        except Exception as exc:  # CancelledError is not an Exception: shutdown goes through
            ERRORS.labels(self.queue_name).inc()
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if self.last_error != reason:  # once per distinct error, not per job
                log.error(f"cannot add job to {self.queue_name}: {reason}", new_trace_id())
            self.last_error = reason
            return
        self.ledger[bet_id] = Owed(data, now_ms + delay)
        while len(self.ledger) > LEDGER_MAX:
            del self.ledger[next(iter(self.ledger))]
        PRODUCED.labels(self.queue_name).inc()
        self.last_success = time.monotonic()
        if self.last_error is not None:
            log.info(f"adding jobs to {self.queue_name} again")
            self.last_error = None

    async def produce(self) -> None:
        if self.rate <= 0:
            return
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        for seq in itertools.count(1):
            await self.add_one(seq)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < -1.0:  # fell far behind (Redis away): do not burst to catch up
                next_at = time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    async def reconcile(self) -> None:
        """Check every owed job against the queue: processed ones leave the ledger, and
        the ones whose job is gone from Redis without being processed are lost."""
        async with self.checking:
            await self._reconcile()

    async def _reconcile(self) -> None:
        ids = list(self.ledger)
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(f"bull:{self.queue_name}:{job_id}", "timestamp", "finishedOn")
        pipe.exists(self.marker)
        *rows, marker = await pipe.execute()
        # BullMQ deletes a completed job once enough newer ones completed, so a job seen
        # before and gone from a Redis that still holds the marker was processed; a
        # Redis without the marker was emptied (FLUSHDB, a restart), and what it held is
        # lost, as is a job gone before any check saw it
        emptied = not marker
        lost_before = sum(1 for o in self.ledger.values() if o.lost)
        for job_id, (added, finished) in zip(ids, rows, strict=True):
            owed = self.ledger.get(job_id)
            if owed is None:
                continue
            if added is not None:
                if finished is not None:  # processed (completed or failed): nothing owed
                    del self.ledger[job_id]
                else:
                    owed.seen, owed.lost = True, False
            elif owed.seen and not owed.lost and not emptied:
                del self.ledger[job_id]
            else:
                owed.lost = True
        if emptied:
            await self.redis.set(self.marker, "1")
        lost = sum(1 for o in self.ledger.values() if o.lost)
        if lost > lost_before:
            log.error(
                f"{lost - lost_before} settlement jobs are gone from {self.queue_name} "
                "without being processed",
                new_trace_id(),
                unaccounted=lost,
            )
        UNACCOUNTED.labels(self.queue_name).set(lost)
        OWED.labels(self.queue_name).set(len(self.ledger))

    async def reconcile_forever(self) -> None:
        while True:
            # Redis away: the last figures stand until it is back
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.reconcile(), self.add_timeout)
            await asyncio.sleep(RECONCILE_S)

    async def replay(self) -> dict:
        """Add every lost job again under its own id, with what is left of its delay."""
        async with self.checking:
            await asyncio.wait_for(self._reconcile(), self.add_timeout)
            return await self._replay()

    async def _replay(self) -> dict:
        replayed, failed = [], []
        now_ms = int(time.time() * 1000)
        for job_id, owed in list(self.ledger.items()):
            if not owed.lost:
                continue
            try:
                await self._add(owed.data, max(0, owed.due_ms - now_ms))
            except Exception as exc:
                failed.append(f"{job_id}: {type(exc).__name__}: {exc}")
                continue
            owed.lost = False
            replayed.append(job_id)
        REPLAYED.labels(self.queue_name).inc(len(replayed))
        UNACCOUNTED.labels(self.queue_name).set(sum(1 for o in self.ledger.values() if o.lost))
        log.info(
            f"replayed {len(replayed)} lost jobs into {self.queue_name}",
            new_trace_id(),
            replayed=len(replayed),
            failed=len(failed),
        )
        return {"queue": self.queue_name, "replayed": len(replayed), "job_ids": replayed,
                "failed": failed}  # fmt: skip

    def _admin_allowed(self, request: web.Request) -> None:
        given = request.headers.get("X-Fault-Token", "")
        if not admin_allowed(request.remote, given, self.fault_token):
            raise web.HTTPForbidden(
                text='{"error": "from this host only, or with the stack\'s X-Fault-Token"}',
                content_type="application/json",
            )

    async def replay_lost_jobs(self, request: web.Request) -> web.Response:
        self._admin_allowed(request)
        try:
            result = await self.replay()
        except Exception as exc:
            log.error(f"replay of lost jobs failed: {exc!r}", new_trace_id())
            return web.json_response({"error": f"replay failed: {exc}"}, status=503)
        return web.json_response(result, status=200 if not result["failed"] else 503)

    async def lost_jobs(self, request: web.Request) -> web.Response:
        self._admin_allowed(request)
        lost = [job_id for job_id, o in self.ledger.items() if o.lost]
        return web.json_response(
            {"queue": self.queue_name, "owed": len(self.ledger), "unaccounted": len(lost),
             "job_ids": lost}
        )  # fmt: skip

    async def start(self) -> None:
        with contextlib.suppress(Exception):  # Redis away at start: the first check sets it
            await self.redis.set(self.marker, "1")
        self.task = asyncio.create_task(self.produce())
        self.reconciler = asyncio.create_task(self.reconcile_forever())

    async def stop(self) -> None:
        # stop producing before closing the queue under it
        for task in (self.task, self.reconciler):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.queue.close()
        await self.redis.aclose()

    async def healthz(self, _request: web.Request) -> web.Response:
        if self.rate <= 0:
            return health(True, rate=self.rate)
        problems = []
        if self.task is None or self.task.done():
            problems.append("producer stopped")
        if time.monotonic() - self.last_success > STALE_AFTER_S:
            problems.append(f"no job added for {STALE_AFTER_S:g} s: {self.last_error}")
        return health(not problems, rate=self.rate, problems=problems)


async def main() -> None:
    producer = Producer()
    app = service_app(producer.healthz, registry)
    app.router.add_post("/admin/replay-lost-jobs", producer.replay_lost_jobs)
    app.router.add_get("/admin/lost-jobs", producer.lost_jobs)
    await serve(app, log, on_start=producer.start, on_stop=producer.stop)


if __name__ == "__main__":
    run(main)
