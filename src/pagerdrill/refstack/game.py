"""Reference `game`: adds settled-bet jobs to the BullMQ queue at a steady rate.

With `api` (the consumer) stopped, the queue grows by GAME_RATE jobs a second;
when it comes back, the backlog drains. When Redis is away, each add gives up after
ADD_TIMEOUT_S and counts as an error, and /healthz turns unhealthy until adds succeed
again: a producer that cannot produce must be visible in a drill.

A share of the jobs (DELAYED_SHARE) settle bets on markets that close later: they
are added with a delay of DELAYED_S seconds and wait in the queue's delayed set
until then. A FLUSHDB of the shared Redis loses them, as the seed warns.

Settings (environment): PORT, HOST, REDIS_URL, QUEUE_NAME, GAME_RATE (jobs/s, 5),
ADD_TIMEOUT_S (2), DELAYED_SHARE (0.2), DELAYED_S (60).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time

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
from pagerdrill.targets.reference import QUEUE_NAME

SERVICE = env_str("SERVICE_NAME", "game")
STALE_AFTER_S = 5.0

log = JsonLog(SERVICE)
registry = CollectorRegistry()
ProcessCollector(registry=registry)
PRODUCED = Counter("game_jobs_produced", "settled-bet jobs added", ["queue"], registry=registry)
ERRORS = Counter(
    "game_produce_errors", "jobs that could not be added", ["queue"], registry=registry
)
RATE = Gauge("game_rate_per_second", "configured production rate", registry=registry)


class Producer:
    def __init__(self) -> None:
        self.queue_name = env_str("QUEUE_NAME", QUEUE_NAME)
        self.rate = env_number("GAME_RATE", 5.0)
        self.add_timeout = env_number("ADD_TIMEOUT_S", 2.0, minimum=0.1)
        self.delayed_share = min(1.0, env_number("DELAYED_SHARE", 0.2))
        self.delay_ms = int(env_number("DELAYED_S", 60.0) * 1000)
        self.queue = Queue(
            self.queue_name, {"connection": env_str("REDIS_URL", "redis://:cache@127.0.0.1:6379")}
        )
        self.task: asyncio.Task | None = None
        self.last_error: str | None = None
        self.last_success = time.monotonic()
        RATE.set(self.rate)

    async def add_one(self, seq: int) -> None:
        data = {
            "bet_id": f"{int(time.time() * 1000)}-{seq}",
            "market_id": random.randint(1, 20),
            "outcome": random.choice(("won", "lost")),
            "payout": round(random.uniform(1, 250), 2),
        }
        opts: dict = {"removeOnComplete": 1000, "removeOnFail": 5000}
        if self.delay_ms > 0 and random.random() < self.delayed_share:
            opts["delay"] = self.delay_ms
        try:
            await asyncio.wait_for(
                self.queue.add("bet_settled", data, opts),
                self.add_timeout,
            )
        except Exception as exc:  # CancelledError is not an Exception: shutdown goes through
            ERRORS.labels(self.queue_name).inc()
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if self.last_error != reason:  # once per distinct error, not per job
                log.error(f"cannot add job to {self.queue_name}: {reason}", new_trace_id())
            self.last_error = reason
            return
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

    async def start(self) -> None:
        self.task = asyncio.create_task(self.produce())

    async def stop(self) -> None:
        # stop producing before closing the queue under it
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.queue.close()

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
    await serve(app, log, on_start=producer.start, on_stop=producer.stop)


if __name__ == "__main__":
    run(main)
