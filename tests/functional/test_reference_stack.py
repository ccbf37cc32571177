"""The reference stack behaves like the seed's platform, proven with real requests
against real processes and a real Redis server."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import socketio
from bullmq import Queue

from helpers import TEST_ENV, endpoint, http_json, metric, pid_alive, wait_for
from pagerdrill.refstack.spec import QUEUE_NAME, SERVICE_NAMES

pytestmark = pytest.mark.stack

RIGHT_PASSWORD = TEST_ENV["api"]["ADMIN_DEFAULT_PASSWORD"]


def queue_counts(stack) -> dict[str, int]:
    async def counts():
        queue = Queue(QUEUE_NAME, {"connection": endpoint(stack, "redis-cache", "redis")})
        try:
            return await queue.getJobCounts("waiting", "active", "failed")
        finally:
            await queue.close()

    return asyncio.run(counts())


def test_stack_up_reaches_all_healthy_with_every_service_running(stack):
    statuses = {s.name: s for s in stack.status()}
    assert list(statuses) == list(SERVICE_NAMES)
    for s in statuses.values():
        assert (s.state, s.health) == ("running", "healthy"), s
        assert s.pid and pid_alive(s.pid)
    assert statuses["redis-cache"].endpoints["redis"].startswith("redis://:cache@127.0.0.1:")
    assert statuses["api"].endpoints["metrics"].endswith("/metrics")


def test_sign_in_with_the_right_password_succeeds_and_a_wrong_one_counts_as_auth_failure(stack):
    api = endpoint(stack, "api")
    metrics = f"{api}/metrics"
    failures_before = metric(metrics, "auth_failures_total")

    status, body = http_json(
        f"{api}/auth/sign-in", {"username": "admin", "password": RIGHT_PASSWORD}
    )
    assert status == 200 and body["token"]
    status, bet = http_json(
        f"{api}/api/bets",
        {"market_id": 3, "stake": 10},
        {"Authorization": f"Bearer {body['token']}"},
    )
    assert status == 201 and bet["market_id"] == 3

    status, body = http_json(f"{api}/auth/sign-in", {"username": "admin", "password": "nope"})
    assert status == 401
    # traffic signs in with the right password, so only our attempt can have failed
    assert metric(metrics, "auth_failures_total") == failures_before + 1


def test_flushdb_on_the_cache_makes_the_next_reads_slower_and_counts_cache_misses(stack):
    api = endpoint(stack, "api")
    metrics = f"{api}/metrics"
    slow_path_s = TEST_ENV["api"]["SLOW_PATH_MS"] / 1000

    def timed_read(market: int) -> float:
        started = time.perf_counter()
        status, _ = http_json(f"{api}/api/markets/{market}")
        assert status == 200
        return time.perf_counter() - started

    markets = (51, 52, 53)  # traffic reads 1-20 only, so it cannot re-warm these
    for market in markets:
        timed_read(market)  # warm
    warm = [timed_read(market) for market in markets]
    assert min(warm) < slow_path_s / 2, warm  # cached: no slow path (one may be descheduled)

    misses_before = metric(metrics, "cache_misses_total")
    result = stack.exec("redis-cache", ["redis-cli", "-a", "cache", "--no-auth-warning", "FLUSHDB"])
    assert result.returncode == 0 and result.stdout.strip() == "OK"

    cold = [timed_read(market) for market in markets]
    assert min(cold) >= slow_path_s, cold
    assert metric(metrics, "cache_misses_total") >= misses_before + 3


def test_stopping_api_lets_the_queue_grow_while_game_runs_and_restarting_drains_it(stack):
    wait_for(lambda: queue_counts(stack)["waiting"] < 5, 10, "a steady, nearly empty queue")
    stack.stop("api")
    try:
        assert next(s for s in stack.status() if s.name == "api").state == "stopped"
        time.sleep(2.0)
        first = queue_counts(stack)["waiting"]
        time.sleep(1.0)
        second = queue_counts(stack)["waiting"]
        # game adds 20 jobs/s; nobody consumes them
        assert first >= 20 and second >= first + 10, (first, second)
    finally:
        stack.start("api")
    wait_for(lambda: queue_counts(stack)["waiting"] < 5, 15, "the backlog to drain")
    # the new api process settled at least the whole backlog it found
    processed = metric(
        f"{endpoint(stack, 'api')}/metrics", "queue_jobs_processed_total", queue=QUEUE_NAME
    )
    assert processed >= second


def test_rt_rejects_handshakes_over_its_per_source_limit_and_counts_them(stack):
    rt = endpoint(stack, "rt")
    metrics = f"{rt}/metrics"
    limit = TEST_ENV["rt"]["HANDSHAKE_LIMIT"]
    rejected_before = metric(metrics, "rt_handshakes_rejected_total", 0.0, reason="throttled")
    accepted_before = metric(metrics, "rt_handshakes_accepted_total")

    async def storm(n: int) -> tuple[int, int]:
        clients = [socketio.AsyncClient(reconnection=False) for _ in range(n)]

        async def one(client):
            try:
                await client.connect(
                    rt,
                    transports=["websocket"],
                    headers={"X-Forwarded-For": "198.51.100.77"},
                    wait_timeout=5,
                )
                return True
            except socketio.exceptions.ConnectionError:
                return False

        results = await asyncio.gather(*(one(c) for c in clients))
        for client in clients:
            if client.connected:
                await client.disconnect()
        return sum(results), len(results) - sum(results)

    accepted, refused = asyncio.run(storm(3 * limit))
    assert accepted == limit
    assert refused == 2 * limit
    assert metric(metrics, "rt_handshakes_rejected_total", reason="throttled") == (
        rejected_before + 2 * limit
    )
    assert metric(metrics, "rt_handshakes_accepted_total") == accepted_before + limit
    # the throttler is per source: traffic's own sockets are still connected
    assert (
        metric(f"{endpoint(stack, 'traffic')}/metrics", "traffic_sockets_connected")
        == (TEST_ENV["traffic"]["TRAFFIC_SOCKETS"])
    )


def test_a_restart_with_a_wrong_admin_password_shows_as_auth_failures_until_reverted(stack):
    api_metrics = lambda: f"{endpoint(stack, 'api')}/metrics"  # noqa: E731 - port is stable
    stack.restart("api", {"ADMIN_DEFAULT_PASSWORD": "wrong-on-purpose"})
    try:
        api = next(s for s in stack.status() if s.name == "api")
        assert api.env_overrides == ("ADMIN_DEFAULT_PASSWORD",)
        assert stack.environment("api")["ADMIN_DEFAULT_PASSWORD"] == "wrong-on-purpose"
        # traffic keeps signing in with the right password and is now refused
        wait_for(
            lambda: metric(api_metrics(), "auth_failures_total") >= 2,
            10,
            "traffic's sign-ins to be refused",
        )
    finally:
        stack.restart("api", reset_env=True)
    assert next(s for s in stack.status() if s.name == "api").env_overrides == ()
    status, _ = http_json(
        f"{endpoint(stack, 'api')}/auth/sign-in", {"username": "admin", "password": RIGHT_PASSWORD}
    )
    assert status == 200
    sign_ins = metric(api_metrics(), "sign_ins_total")
    wait_for(
        lambda: metric(api_metrics(), "sign_ins_total") > sign_ins, 10, "traffic to sign in again"
    )
    assert metric(api_metrics(), "auth_failures_total") == 0  # back to zero after the revert


def test_services_write_json_log_lines_with_trace_ids(stack):
    lines = [json.loads(line) for line in stack.logs("api", tail=20) if line.startswith("{")]
    assert lines, "api wrote no JSON log lines"
    for record in lines:
        assert {"timestamp", "level", "service", "trace_id", "message"} <= set(record)
        assert record["service"] == "api"
    assert any(record["trace_id"] for record in lines)


def test_traffic_reports_client_side_error_rate_and_latency_percentiles(stack):
    metrics = f"{endpoint(stack, 'traffic')}/metrics"
    wait_for(lambda: metric(metrics, "traffic_window_requests") > 5, 10, "traffic to flow")
    p50 = metric(metrics, "traffic_latency_seconds", quantile="0.5")
    p95 = metric(metrics, "traffic_latency_seconds", quantile="0.95")
    p99 = metric(metrics, "traffic_latency_seconds", quantile="0.99")
    assert 0 < p50 <= p95 <= p99
    errors_before = metric(metrics, "traffic_requests_total", 0.0, route="market", outcome="error")
    stack.stop("api")
    try:
        # earlier tests of the module may have left errors in the rate's window: wait for
        # the reads that fail now, not for a rate that may be above zero already
        wait_for(
            lambda: (
                metric(metrics, "traffic_requests_total", route="market", outcome="error")
                > errors_before
            ),
            10,
            "market reads to fail",
        )
        assert metric(metrics, "traffic_error_rate") > 0.0
    finally:
        stack.start("api")
