"""The traffic profile: its runner against a real local aiohttp server on 127.0.0.1
(bounded in rate and time, the sign-in token reused, weights obeyed, only bound hosts),
its metrics on a real /metrics, and its background process stopped by `stack down` and
by `recover` after a `kill -9` of the drill that started it."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from helpers import http_json, metric, pagerdrill_cli, pid_alive, wait_for
from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.traffic import running_traffic, start_traffic
from pagerdrill.traffic.runner import Runner, served_url
from pagerdrill.workspace import load_workspace
from pagerdrill.workspace.traffic import Template, TrafficProfile

# ---------------------------------------------------------------- a real server


@dataclass
class Seen:
    """What the test server was sent."""

    paths: collections.Counter[str] = field(default_factory=collections.Counter)
    auth: collections.Counter[str] = field(default_factory=collections.Counter)
    sign_ins: int = 0
    bodies: list[bytes] = field(default_factory=list)


@dataclass
class Server:
    url: str
    seen: Seen


@pytest.fixture
def server() -> Iterator[Server]:
    """An aiohttp server on 127.0.0.1 in a thread of its own, counting what it gets."""
    seen = Seen()
    started = threading.Event()
    box: dict = {}

    async def login(request: web.Request) -> web.Response:
        seen.sign_ins += 1
        seen.bodies.append(await request.read())
        return web.json_response({"data": {"access_token": f"tok-{seen.sign_ins}"}})

    async def anything(request: web.Request) -> web.Response:
        seen.paths[request.path] += 1
        seen.auth[request.headers.get("Authorization", "")] += 1
        if request.body_exists:
            seen.bodies.append(await request.read())
        if request.path == "/secure" and request.headers.get("Authorization") == "Bearer tok-1":
            return web.json_response({"error": "signed out"}, status=401)  # tok-1 expires
        if request.path.startswith("/fail"):
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response({"ok": True})

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/login", login)
        app.router.add_route("*", "/{tail:.*}", anything)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["url"], box["loop"] = served_url(runner), loop
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield Server(box["url"], seen)
    finally:
        box["loop"].call_soon_threadsafe(box["loop"].stop)
        thread.join(10)


def profile(**fields) -> TrafficProfile:
    doc = {"url": "http://127.0.0.1:1", "requests": [{"name": "read", "path": "/read"}]}
    return TrafficProfile.model_validate(doc | fields)


def run(p: TrafficProfile, url: str, duration_s: float, **kwargs):
    runner = Runner(p, url, seed=7, **kwargs)
    return runner, asyncio.run(runner.run(duration_s))


# ------------------------------------------------------------------- templates


def test_template_variables_render_within_their_ranges_and_other_braces_stay_literal():
    t = Template('{"id": "{int:3..5}", "side": "{choice:back|lay}", "u": "{uuid}"}')
    for _ in range(50):
        out = t.render()
        doc = yaml.safe_load(out)  # JSON is YAML: the braces of the document stayed
        assert doc["id"] in ("3", "4", "5")
        assert doc["side"] in ("back", "lay")
        assert len(doc["u"]) == 36


def test_an_unknown_template_variable_is_refused_at_load_with_its_line(tmp_path):
    (tmp_path / "pagerdrill.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        traffic:
          url: http://127.0.0.1:9000
          requests:
            - name: read
              path: /markets/{itn:1..9}
        """)
    )
    with pytest.raises(ConfigError) as err:
        load_workspace(tmp_path)
    text = str(err.value)
    assert "pagerdrill.yaml" in text and ":6" in text
    assert "unknown variable 'itn'" in text and "did you mean {int}" in text


def test_a_token_without_a_sign_in_step_is_refused():
    with pytest.raises(ValueError, match="no sign_in step"):
        profile(requests=[{"name": "r", "path": "/r", "headers": {"X-T": "{token}"}}])


# ----------------------------------------------------------------------- hosts


def test_a_host_the_workspace_does_not_bind_is_refused_at_load_with_the_reason(tmp_path):
    (tmp_path / "pagerdrill.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        traffic:
          url: https://shop.example.com
          requests: [{name: read, path: /}]
        """)
    )
    with pytest.raises(ConfigError) as err:
        load_workspace(tmp_path)
    text = str(err.value)
    assert ":3" in text
    assert "host shop.example.com is neither loopback nor a host" in text


def test_a_host_a_role_binding_names_may_take_traffic(tmp_path):
    (tmp_path / "pagerdrill.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        target: compose
        compose: {project: shop}
        roles:
          api: {service: api, url: "http://10.20.0.5:8000"}
        traffic:
          url: http://10.20.0.5:8000
          requests: [{name: read, path: /}]
        """)
    )
    assert load_workspace(tmp_path).config.traffic is not None


def test_the_runner_refuses_a_base_on_a_host_that_is_not_bound():
    with pytest.raises(BadInputError, match="neither loopback"):
        Runner(profile(), "http://192.0.2.10:8080", allowed_hosts={"10.0.0.1"})


def test_a_request_path_cannot_leave_the_base_url():
    with pytest.raises(ValueError, match="starting with '/'"):
        profile(requests=[{"name": "r", "path": "http://elsewhere.example/x"}])


# ---------------------------------------------------------------------- runner


def test_the_rate_bound_holds_however_many_workers_wait(server):
    p = profile(rate=20, concurrency=20)
    _, totals = run(p, server.url, 2.0)
    sent = server.seen.paths["/read"]
    assert sent == totals.sent
    assert 10 <= sent <= 20 * 2 + 1  # never more than the rate allows, whatever the load


def test_the_sign_in_token_is_taken_once_and_reused_by_later_requests(server):
    p = profile(
        rate=50,
        sign_in={
            "path": "/login",
            "body": {"user": "drill", "password": "{choice:pw}"},
            "token": {"json": "data.access_token"},
        },
        requests=[{"name": "bet", "method": "POST", "path": "/bets",
                   "headers": {"Authorization": "Bearer {token}"},
                   "body": {"market": "{int:1..9}"}}],
    )  # fmt: skip
    _, totals = run(p, server.url, 1.0)
    assert server.seen.sign_ins == 1
    assert server.seen.bodies[0] == b'{"user": "drill", "password": "pw"}'
    assert totals.by_request["bet"] > 5
    assert server.seen.auth == {"Bearer tok-1": totals.by_request["bet"]}


def test_a_401_makes_the_runner_sign_in_again_and_use_the_new_token(server):
    p = profile(
        rate=50,
        concurrency=1,
        sign_in={"path": "/login", "token": {"json": "data.access_token"}},
        requests=[{"name": "secure", "path": "/secure",
                   "headers": {"Authorization": "Bearer {token}"}}],
    )  # fmt: skip
    _, totals = run(p, server.url, 1.0)
    assert server.seen.sign_ins == 2
    assert server.seen.auth["Bearer tok-1"] == 1
    assert server.seen.auth["Bearer tok-2"] == totals.by_request["secure"] - 1 > 5


def test_a_profile_on_a_role_the_workspace_does_not_bind_is_refused(tmp_path):
    (tmp_path / "pagerdrill.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        target: compose
        compose: {project: shop}
        roles:
          api: {service: api}
        traffic:
          role: backend
          requests: [{name: read, path: /}]
        """)
    )
    with pytest.raises(ConfigError, match=r":7: traffic.role: role 'backend' is not bound"):
        load_workspace(tmp_path)


def test_weights_split_the_requests(server):
    p = profile(
        rate=400,
        requests=[
            {"name": "market", "path": "/markets/{int:1..20}", "weight": 3},
            {"name": "bet", "path": "/bets", "weight": 1},
        ],
    )
    _, totals = run(p, server.url, 1.5)
    markets = sum(n for path, n in server.seen.paths.items() if path.startswith("/markets/"))
    bets = server.seen.paths["/bets"]
    assert markets + bets == totals.sent > 100
    assert 0.65 <= markets / (markets + bets) <= 0.85  # 3 : 1 is 0.75


def test_the_metrics_endpoint_serves_requests_by_status_errors_and_latency(server):
    p = profile(
        rate=100,
        requests=[{"name": "ok", "path": "/ok"}, {"name": "broken", "path": "/fail"}],
    )
    runner = Runner(p, server.url, seed=3)

    def scrape(url: str) -> dict[str, float]:
        return {
            "ok": metric(url, "traffic_requests_total", request="ok", status="200"),
            "500": metric(url, "traffic_requests_total", request="broken", status="500"),
            "errors": metric(url, "traffic_errors_total", request="broken", reason="status"),
            "latency": metric(url, "traffic_request_duration_seconds_count", request="ok"),
            "rate": metric(url, "traffic_error_rate"),
        }

    async def drive() -> dict[str, float]:
        site = await runner.serve_metrics()
        try:
            await runner.run(1.0)
            return await asyncio.to_thread(scrape, served_url(site) + "/metrics")
        finally:
            await site.cleanup()

    got = asyncio.run(drive())
    assert got["ok"] == server.seen.paths["/ok"] > 0
    assert got["500"] == got["errors"] == server.seen.paths["/fail"] > 0
    assert got["latency"] == got["ok"]
    assert got["rate"] == pytest.approx(got["500"] / (got["ok"] + got["500"]))


def test_a_refused_connection_counts_as_an_error_not_as_a_status():
    p = profile(rate=20)
    runner, totals = run(p, "http://127.0.0.1:9", 0.5)  # the discard port: nothing listens
    assert totals.sent == totals.errors > 0
    text = runner.metrics.exposition().decode()
    assert 'traffic_errors_total{reason="connection",request="read"}' in text
    assert 'traffic_requests_total{request="read",status="error"}' in text


# ---------------------------------------------------------- background process


def traffic_workspace(root: Path, url: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1,
        "roles": {"traffic": {"generator": "profile"}},
        "traffic": {"url": url, "rate": 20, "requests": [{"name": "read", "path": "/read"}]},
    }
    (root / "pagerdrill.yaml").write_text(yaml.safe_dump(doc))
    return root


def test_stack_down_stops_the_background_traffic(server, tmp_path):
    from pagerdrill.drill.engine import role_bindings
    from pagerdrill.targets.local import LocalTarget
    from pagerdrill.targets.roles import RoleResolver

    ws = load_workspace(traffic_workspace(tmp_path / "ws", server.url))
    target = LocalTarget(ws)
    roles = RoleResolver(role_bindings(ws), target)
    state = start_traffic(ws, roles, owner="stack")
    pid = state["pid"]
    try:
        assert pid_alive(pid)
        wait_for(lambda: server.seen.paths["/read"] >= 3, 20, "traffic at the server")
        # the `traffic` role is the generator: its metrics are where the process serves
        assert roles.metrics_url("traffic") == state["metrics"]
        assert http_json(roles.health_url("traffic"))[0] == 200
        assert metric(state["metrics"], "traffic_requests_total", request="read", status="200")
        done = pagerdrill_cli("stack", "down", "-w", str(ws.root))
        assert done.returncode == 0, done.stderr + done.stdout
        assert "traffic stopped" in done.stdout
        assert not pid_alive(pid)
        assert running_traffic(ws) is None
        with pytest.raises(BadInputError, match="traffic generator, which is not running"):
            roles.metrics_url("traffic")
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


DRILL_STAND_IN = """
import sys, time
from pagerdrill.drill.engine import role_bindings
from pagerdrill.targets.local import LocalTarget
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.traffic import start_traffic
from pagerdrill.workspace import load_workspace
ws = load_workspace(__import__("pathlib").Path(sys.argv[1]))
target = LocalTarget(ws)
state = start_traffic(ws, RoleResolver(role_bindings(ws), target), owner="drill:crashed")
print(state["pid"], flush=True)
time.sleep(600)
"""


def test_recover_after_kill_9_stops_the_traffic_the_killed_drill_started(server, tmp_path):
    root = traffic_workspace(tmp_path / "ws", server.url)
    owner = subprocess.Popen(
        [sys.executable, "-c", DRILL_STAND_IN, str(root)], stdout=subprocess.PIPE, text=True
    )
    pid = None
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        wait_for(lambda: server.seen.paths["/read"] >= 3, 20, "traffic at the server")
        assert pid_alive(pid)  # its drill is gone; the traffic is not
        done = pagerdrill_cli("recover", "-w", str(root))
        assert done.returncode == 0, done.stderr + done.stdout
        assert not pid_alive(pid)
        assert running_traffic(load_workspace(root)) is None
    finally:
        if owner.poll() is None:
            owner.kill()
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_stack_up_with_traffic_and_no_profile_is_refused_before_anything_starts(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pagerdrill.yaml").write_text("version: 1\n")
    done = pagerdrill_cli("stack", "up", "--traffic", "-w", str(root))
    assert done.returncode == 2
    assert "has no traffic: profile to run" in done.stderr
    assert not (root / ".pagerdrill" / "stack.json").exists()
