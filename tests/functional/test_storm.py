"""The handshake storm against a real `rt` process (python-socketio): what it counts
matches what the server counts, and it stays inside its bounds."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiohttp import WSMsgType, web

from helpers import metric, wait_for
from pagerdrill.faults import storm as storm_module
from pagerdrill.faults.storm import StormResult, run_storm, storm

# a socket left for the garbage collector to close warns: here, that fails the test
pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

LIMIT = 20
BLOCKED = "203.0.113.66"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> Iterator[str]:
    """A real rt process: LIMIT handshakes per source per 30 s, BLOCKED always refused."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "SERVICE_NAME": "rt",
        "HANDSHAKE_LIMIT": str(LIMIT),
        "HANDSHAKE_WINDOW_S": "30",
        "BLOCKED_SOURCES": BLOCKED,
    }
    log_path: Path = tmp_path_factory.mktemp("rt") / "rt.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pagerdrill.refstack.rt"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, f"rt exited: {log_path.read_text()}"
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, 15, "rt /healthz")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that completes TCP connects (the kernel does) but never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def counters(base: str) -> dict[str, float]:
    url = f"{base}/metrics"
    return {
        "accepted": metric(url, "rt_handshakes_accepted_total"),
        "throttled": metric(url, "rt_handshakes_rejected_total", 0.0, reason="throttled"),
        "blocked": metric(url, "rt_handshakes_rejected_total", 0.0, reason="blocked"),
    }


def open_connections(base: str) -> float:
    return metric(f"{base}/metrics", "rt_connections_open")


def no_connections_open(base: str) -> None:
    wait_for(lambda: open_connections(base) == 0, 3, "rt_connections_open == 0")


def test_a_storm_from_one_source_gets_exactly_the_limit_accepted_and_the_rest_throttled(rt):
    before = counters(rt)

    result = run_storm(rt, 100, source="198.51.100.1")

    assert (result.attempted, result.accepted, result.rejected, result.errors) == (100, 20, 80, 0)
    assert result.reasons == {"throttled": 80}
    after = counters(rt)
    assert after["accepted"] - before["accepted"] == 20
    assert after["throttled"] - before["throttled"] == 80
    assert after["blocked"] == before["blocked"]
    assert result.latency_p50_s is not None and result.latency_p95_s is not None
    assert 0 < result.latency_p50_s <= result.latency_p95_s < result.duration_s
    no_connections_open(rt)


def test_a_blocked_source_has_every_handshake_refused_as_blocked(rt):
    before = counters(rt)

    result = run_storm(rt, 30, source=BLOCKED)

    assert (result.attempted, result.accepted, result.rejected, result.errors) == (30, 0, 30, 0)
    assert result.reasons == {"blocked": 30}
    after = counters(rt)
    assert after["blocked"] - before["blocked"] == 30
    assert after["accepted"] == before["accepted"]


def test_held_connections_show_as_open_on_the_server_and_close_after_the_hold(rt):
    no_connections_open(rt)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run_storm, rt, 8, source="198.51.100.2", hold_s=1.5)
        wait_for(lambda: open_connections(rt) == 8, 3, "8 held connections")
        result = future.result(timeout=5)
    assert (result.accepted, result.errors) == (8, 0)
    assert result.duration_s >= 1.5
    no_connections_open(rt)


def test_a_storm_against_localhost_is_allowed(rt):
    url = rt.replace("127.0.0.1", "localhost")
    result = run_storm(url, 3, source="198.51.100.3")
    assert (result.attempted, result.accepted) == (3, 3)


def test_the_deadline_ends_a_storm_counting_handshakes_in_flight_as_errors(silent_server):
    started = time.monotonic()
    result = run_storm(silent_server, 50, concurrency=5, deadline_s=0.5, connect_timeout_s=10)
    elapsed = time.monotonic() - started

    assert elapsed < 1.5
    # 5 handshakes were in flight (none could finish): errors; 45 never started
    assert (result.attempted, result.accepted, result.rejected, result.errors) == (5, 0, 0, 5)
    assert result.latency_p95_s is None


def test_the_deadline_cuts_a_hold_short_and_held_clients_stay_accepted(rt):
    no_connections_open(rt)
    result = run_storm(rt, 4, source="198.51.100.4", hold_s=30, deadline_s=1.0)
    assert (result.attempted, result.accepted, result.errors) == (4, 4, 0)
    assert result.duration_s < 1.5
    no_connections_open(rt)


def test_setting_stop_ends_a_storm_early(silent_server):
    async def main() -> tuple[StormResult, float]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        started = time.monotonic()
        result = await storm(silent_server, 50, concurrency=5, deadline_s=30, stop=stop)
        return result, time.monotonic() - started

    result, elapsed = asyncio.run(main())
    assert elapsed < 1.5
    assert (result.attempted, result.errors) == (5, 5)


def test_setting_stop_during_a_hold_closes_every_held_connection(rt):
    no_connections_open(rt)

    async def main() -> StormResult:
        stop = asyncio.Event()
        task = asyncio.create_task(
            storm(rt, 6, source="198.51.100.5", hold_s=30, deadline_s=30, stop=stop)
        )
        await asyncio.to_thread(wait_for, lambda: open_connections(rt) == 6, 3, "6 held")
        stop.set()
        result = await task
        await asyncio.to_thread(no_connections_open, rt)  # while the loop still runs
        return result

    result = asyncio.run(main())
    assert (result.accepted, result.errors) == (6, 0)


def test_cancelling_a_storm_still_closes_its_sockets(rt):
    no_connections_open(rt)

    async def main() -> None:
        task = asyncio.create_task(storm(rt, 6, source="198.51.100.6", hold_s=30))
        await asyncio.to_thread(wait_for, lambda: open_connections(rt) == 6, 3, "6 held")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # checked while the event loop still runs: nothing closes them but the storm
        await asyncio.to_thread(no_connections_open, rt)

    asyncio.run(main())
    gc.collect()  # so that a socket left unclosed warns now, in this test


def test_a_handshake_slower_than_the_connect_timeout_counts_as_an_error(silent_server):
    result = run_storm(silent_server, 3, connect_timeout_s=0.2, deadline_s=5)
    assert (result.attempted, result.accepted, result.rejected, result.errors) == (3, 0, 0, 3)
    assert result.duration_s < 1.0


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8080", "http://example.com", "http://[2001:db8::1]:80"]
)
def test_a_non_loopback_url_is_refused_without_any_connection_attempt(url, monkeypatch):
    attempts = []

    async def no_connect(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("the storm tried to connect")

    def no_resolve(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("the storm tried to resolve the host")

    monkeypatch.setattr(storm_module.asyncio, "open_connection", no_connect)
    monkeypatch.setattr(socket, "getaddrinfo", no_resolve)
    with pytest.raises(ValueError, match="not a loopback address"):
        run_storm(url, 10)
    assert attempts == []


def test_a_storm_of_no_clients_attempts_nothing():
    result = run_storm("http://127.0.0.1:9", 0)
    assert (result.attempted, result.accepted, result.rejected, result.errors) == (0, 0, 0, 0)
    assert result.to_json()["reasons"] == {}


def test_a_held_client_answers_engine_io_pings_and_closes_with_a_close_frame():
    """Against a scripted Engine.IO server that pings every 100 ms (rt pings every 25 s)."""
    seen: list[str] = []

    async def socketio_endpoint(request: web.Request) -> web.WebSocketResponse:
        assert request.query["EIO"] == "4" and request.query["transport"] == "websocket"
        assert request.headers["X-Forwarded-For"] == "198.51.100.7"
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('0{"sid":"s1","upgrades":[],"pingInterval":100,"pingTimeout":200}')
        seen.append(await ws.receive_str())
        await ws.send_str('40{"sid":"n1"}')
        for _ in range(3):
            await asyncio.sleep(0.1)
            await ws.send_str("2")
            seen.append(await ws.receive_str())
        message = await ws.receive()
        seen.append("close" if message.type == WSMsgType.CLOSE else str(message.type))
        return ws

    async def main() -> StormResult:
        app = web.Application()
        app.router.add_get("/socket.io/", socketio_endpoint)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await storm(f"http://127.0.0.1:{port}", 1, hold_s=0.5, source="198.51.100.7")
        finally:
            await runner.cleanup()

    result = asyncio.run(main())
    assert (result.accepted, result.errors) == (1, 0)
    assert seen == ["40", "3", "3", "3", "close"]
