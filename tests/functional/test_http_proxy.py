"""The http-proxy fault's core (faults/proxy.py), run as the script a target runs: under
the system's python3 in isolated mode, so only the standard library is there."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import wait_for
from pagerdrill.faults.httpproxy import HttpProxyParams, proxy_script
from pagerdrill.faults.proxy import HttpRules, rewrite_head

SLOW_STARTED = threading.Event()  # the upstream has a /slow request in hand


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real services answer

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/slow":
            SLOW_STARTED.set()
            time.sleep(1.0)
        self._answer(f"upstream {self.path}".encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._answer(b"got " + self.rfile.read(length))

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _python() -> str:
    """The system's python3 (not this venv's), so the script gets no third-party code."""
    for candidate in ("/usr/bin/python3", sys.executable):
        if Path(candidate).exists():
            return candidate
    return sys.executable


class Proxies:
    """Starts the proxy script in front of the upstream: `start(rules)` gives its port;
    `procs` are the processes, newest last."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.procs: list[subprocess.Popen] = []

    def __call__(self, rules: dict | None) -> int:
        port = _free_port()
        argv = [_python(), "-I", str(proxy_script()), "--listen", f"127.0.0.1:{port}",
                "--upstream", f"127.0.0.1:{self.upstream}"]  # fmt: skip
        if rules is not None:
            argv += ["--rules", json.dumps(rules)]
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        wait_for(lambda: _accepts(port) or proc.poll() is not None, 10, "the proxy listening")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        return port


@pytest.fixture
def start_proxy(upstream) -> Iterator[Proxies]:
    start = Proxies(upstream)
    yield start
    for proc in start.procs:
        proc.terminate()
        proc.wait(10)


def test_the_proxy_answers_500_on_the_matching_path_and_passes_every_other_through(start_proxy):
    port = start_proxy({"status": 500, "path": "^/api/promotions"})
    base = f"http://127.0.0.1:{port}"
    failed = httpx.get(f"{base}/api/promotions")
    assert failed.status_code == 500
    assert "http-proxy fault" in failed.text
    passed = httpx.get(f"{base}/api/markets/3")
    assert passed.status_code == 200
    assert passed.text == "upstream /api/markets/3"
    # a request body goes upstream whole
    posted = httpx.post(f"{base}/api/bets", content=b"x" * 100_000)
    assert posted.status_code == 200
    assert posted.text == "got " + "x" * 100_000


def test_a_share_of_the_requests_fails_and_the_rest_reach_the_service(start_proxy):
    port = start_proxy({"status": 503, "ratio": 0.5})
    with httpx.Client() as client:
        codes = [client.get(f"http://127.0.0.1:{port}/any").status_code for _ in range(200)]
    assert set(codes) == {200, 503}
    # 200 draws at one half: outside 40..160 has a chance below one in 10**17
    assert 40 < codes.count(503) < 160


def test_added_latency_alone_fails_nothing(start_proxy):
    port = start_proxy({"status": 500, "ratio": 0.0, "latency_ms": 50})
    answer = httpx.get(f"http://127.0.0.1:{port}/slow")
    assert answer.status_code == 200
    assert answer.text == "upstream /slow"


def test_with_no_rules_the_proxy_is_a_plain_tcp_relay(start_proxy):
    port = start_proxy(None)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        # keep-alive kept: a TCP relay does not read HTTP
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"upstream /") < 2:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    assert b"upstream /a" in data and b"upstream /b" in data


def test_bad_rules_stop_the_script_with_exit_code_2_and_say_why(upstream):
    done = subprocess.run(
        [_python(), "-I", str(proxy_script()), "--listen", "127.0.0.1:1", "--upstream",
         f"127.0.0.1:{upstream}", "--rules", '{"status": 500, "path": "("}'],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "proxy:" in done.stderr


def test_the_forwarded_head_asks_for_one_request_per_connection():
    head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n\r\n"
    assert rewrite_head(head) == b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_rules_match_a_path_by_regex_search():
    rules = HttpRules(path="^/api/promo")
    assert rules.matches("/api/promotions?x=1")
    assert not rules.matches("/health")
    assert HttpRules().matches("/anything")


def test_a_scenario_s_path_that_is_no_regex_is_refused():
    with pytest.raises(ValueError, match="regular expression"):
        HttpProxyParams(path="(")


def test_a_stopped_proxy_lets_the_requests_on_their_way_through_finish(start_proxy):
    """SIGTERM (the fault's removal) stops the accepting at once, but a request already
    on its way through gets its answer: the port was handed back to the service, and
    no client should see its request cut."""
    port = start_proxy({"status": 500, "path": "^/nothing-matches"})
    proc = start_proxy.procs[-1]
    answer: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: answer.append(httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10))
    )
    SLOW_STARTED.clear()
    slow.start()
    assert SLOW_STARTED.wait(10)  # the request is with the upstream, which takes 1 s
    proc.terminate()
    wait_for(lambda: not _accepts(port), 5, "the proxy no longer accepting")
    slow.join(timeout=10)
    assert proc.wait(10) == 0
    assert answer and answer[0].status_code == 200 and answer[0].text == "upstream /slow"
