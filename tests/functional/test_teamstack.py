"""A team's own stack, unlike the reference one, driven through the CLI on a real Docker
Engine (tests/fixtures/teamstack: a FastAPI api behind nginx that publishes no port, Redis
with a plain list as the job queue, Postgres, the team's own Prometheus, structlog JSON
logs, no traffic service).

The stack comes up once for the module, through `pagerdrill stack up`, from a copy of
the fixture whose pagerdrill.yaml differs only in its project name and in the host ports
its URLs name (free ones, picked here); the shipped scenarios are copied into its
scenarios/, as a team would. The drills page from the stack's own signals through the
fixture's bindings and signal mappings alone, with the workspace's traffic profile as
the load.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from composing import docker_env, project_name, require_engine
from drilling import (
    FAST,
    RECOVERED,
    WAIT_SCRIPT,
    journals,
    newest_journal,
    samples,
    wait_for_event,
    write_script,
)
from helpers import REPO, metric, pagerdrill_cli, start_pagerdrill, wait_for
from pagerdrill.journal import read_journal
from pagerdrill.targets.compose import compose_cli
from pagerdrill.targets.local import _free_port

# a module of whole drills on containers: longer than the suite's default per-test timeout
pytestmark = pytest.mark.timeout(600)

FIXTURE = REPO / "tests" / "fixtures" / "teamstack"
IMAGE = "pagerdrill-teamstack:local"
SERVICES = {"nginx", "api", "worker", "redis", "db", "prometheus"}
QUEUE = "orders:pending"
PORT_VARS = ("HTTP_PORT", "PROMETHEUS_PORT", "REDIS_PORT", "POSTGRES_PORT")
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class TeamStack:
    root: Path
    project: str
    ports: dict[str, int]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['HTTP_PORT']}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.ports['PROMETHEUS_PORT']}"

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.ports["REDIS_PORT"], socket_timeout=5)

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """`pagerdrill ARGS -w ROOT`; later commands find the ports `stack up` recorded."""
        return pagerdrill_cli(*args, "-w", str(self.root), timeout=timeout, env=UNBUFFERED)

    def status(self) -> dict[str, dict]:
        done = self.cli("stack", "status", "--json")
        assert done.returncode == 0, done.stderr + done.stdout
        return {s["name"]: s for s in json.loads(done.stdout)["services"]}


def require_image(env: dict[str, str]) -> str:
    """The stack's image; skips with .ci/docker-setup's reason when it could not make it,
    fails when it said it did and the image is not there."""
    reason = env.get("PAGERDRILL_TEAMSTACK_UNAVAILABLE", "").strip()
    if reason:
        pytest.skip(f"the teamstack image could not be built: {reason}")
    image = env.get("PAGERDRILL_TEAMSTACK_IMAGE") or IMAGE
    found = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False
    )
    if found.returncode != 0:
        why = f"image {image} is not on this engine (.ci/docker-setup builds it)"
        if env.get("PAGERDRILL_TEAMSTACK_IMAGE"):
            pytest.fail(f"CI built the teamstack image, but: {why}")
        pytest.skip(f"compose tests need the teamstack image: {why}")
    return image


def copy_workspace(root: Path, project: str, ports: dict[str, int]) -> None:
    """The fixture as a workspace of its own, with this run's project name and ports."""
    shutil.copytree(
        FIXTURE, root, ignore=shutil.ignore_patterns("wheels", "__pycache__", ".pagerdrill")
    )
    config = root / "pagerdrill.yaml"
    text = config.read_text()
    for old, new in (
        ("project: inventory\n", f"project: {project}\n"),
        ("127.0.0.1:8088", f"127.0.0.1:{ports['HTTP_PORT']}"),
        ("127.0.0.1:9091", f"127.0.0.1:{ports['PROMETHEUS_PORT']}"),
    ):
        assert old in text, f"the fixture's pagerdrill.yaml no longer has {old!r}"
        text = text.replace(old, new)
    for shipped in sorted((REPO / "scenarios").glob("*.yaml")):
        shutil.copy(shipped, root / "scenarios" / shipped.name)
    config.write_text(text)


def down(stack: TeamStack, env: dict[str, str]) -> None:
    """`down -v` of the project, whatever state it is in."""
    subprocess.run(
        [*compose_cli(), "-p", stack.project, "-f", str(stack.root / "docker-compose.yml"),
         "down", "-v", "--remove-orphans", "-t", "2"],
        env=env, cwd=stack.root, capture_output=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[TeamStack]:
    env = require_engine()
    image = require_image(env)
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for var in PORT_VARS:
        ports[var] = _free_port(taken)
        taken.add(ports[var])
    team = TeamStack(
        tmp_path_factory.mktemp("teamstack") / "inventory", project_name("team"), ports
    )
    copy_workspace(team.root, team.project, ports)
    # Only this first `stack up` sees the ports and the image; pagerdrill records them.
    up_env = {k: v for k, v in docker_env().items() if k not in os.environ}
    up_env |= {var: str(port) for var, port in ports.items()} | {"INVENTORY_IMAGE": image}
    try:
        done = pagerdrill_cli(
            "stack", "up", "-w", str(team.root), timeout=300, env=up_env | UNBUFFERED
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield team
    finally:
        down(team, env | up_env)


def request(url: str, body: dict | None = None) -> tuple[int, dict, dict]:
    """(status, headers, parsed JSON body) of one real HTTP request; errors included."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"text": raw.decode(errors="replace")}
        return exc.code, dict(exc.headers), parsed


def prometheus_query(stack: TeamStack, query: str) -> list[dict]:
    url = f"{stack.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    status, _, body = request(url)
    assert status == 200 and body["status"] == "success", body
    return body["data"]["result"]


def api_log(stack: TeamStack, lines: int = 200) -> list[str]:
    done = stack.cli("stack", "logs", "api", "-n", str(lines))
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout.splitlines()


class OrderLoad:
    """Orders posted through nginx at a bounded rate while a drill runs, as the team's
    own load would; the list's length sampled alongside."""

    def __init__(self, stack: TeamStack, per_s: float = 20):
        self.stack, self.interval = stack, 1 / per_s
        self.stop = threading.Event()
        self.posted = 0
        self.depths: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        queue = self.stack.redis()
        while not self.stop.is_set():
            try:
                status, _, _ = request(f"{self.stack.url}/api/orders", {"product_id": 7})
            except OSError:  # no answer in time: counted as not posted
                status = 0
            self.posted += status == 202
            self.depths.append(int(queue.llen(QUEUE)))  # type: ignore[arg-type]
            self.stop.wait(self.interval)

    def __enter__(self) -> OrderLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def drained(stack: TeamStack) -> None:
    wait_for(lambda: stack.redis().llen(QUEUE) == 0, 60, f"{QUEUE} drained by the worker")


def all_running(stack: TeamStack) -> None:
    def check() -> bool:
        statuses = stack.status()
        return set(statuses) == SERVICES and all(
            s["state"] == "running" and not s["env_overrides"] for s in statuses.values()
        )

    wait_for(check, 60, "every service of the team's stack running, no override left")


# ---------------------------------------------------------------------------- tests


def test_the_team_stack_comes_up_through_the_cli_and_answers_only_through_nginx(stack):
    statuses = stack.status()
    assert set(statuses) == SERVICES
    assert all(s["state"] == "running" for s in statuses.values()), statuses
    # the api publishes no port: its bound health_url is checked at its container's address
    assert statuses["api"]["health"] == "healthy"
    assert not statuses["api"]["endpoints"]["http"].startswith("http://127.0.0.1")
    assert statuses["nginx"]["endpoints"]["http"] == stack.url
    status, headers, body = request(f"{stack.url}/api/products/1")
    assert status == 200 and body["id"] == 1 and body["name"] == "product 1"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    status, _, body = request(f"{stack.url}/api/products/100000")
    assert (status, body) == (404, {"detail": "no such product"})
    # `stack up` again on the running stack is a no-op that succeeds
    again = stack.cli("stack", "up")
    assert again.returncode == 0, again.stderr


def test_the_team_prometheus_scrapes_the_api_default_instrumentation_names(stack):
    for product in (11, 11, 12):
        assert request(f"{stack.url}/api/products/{product}")[0] == 200
    handler = "/api/products/{product_id}"
    selector = f'http_requests_total{{handler="{handler}",status="2xx"}}'

    def scraped() -> bool:
        found = prometheus_query(stack, selector)
        return bool(found) and float(found[0]["value"][1]) >= 3

    wait_for(scraped, 30, f"{selector} >= 3 in the team's Prometheus")
    series = prometheus_query(stack, selector)[0]["metric"]
    assert series["job"] == "inventory-api" and series["method"] == "GET"
    assert {"handler", "status"} <= set(series)
    buckets = prometheus_query(
        stack, f'http_request_duration_seconds_bucket{{handler="{handler}"}}'
    )
    assert {b["metric"]["le"] for b in buckets} >= {"0.1", "0.5", "1.0", "+Inf"}
    p95 = (
        "histogram_quantile(0.95, sum by (le) (rate("
        f'http_request_duration_seconds_bucket{{handler="{handler}"}}[1m])))'
    )

    def quantile() -> bool:
        # The rate of the buckets is zero (so the quantile NaN) unless they grow between
        # two scrapes: the requests above may all have come before the first one.
        request(f"{stack.url}/api/products/11")  # its answer is not what is waited for
        found = prometheus_query(stack, p95)
        return bool(found) and found[0]["value"][1] != "NaN"

    wait_for(quantile, 30, "a p95 of the api's histogram in the team's Prometheus")
    misses = prometheus_query(stack, 'cache_requests_total{result="miss"}')
    assert misses and float(misses[0]["value"][1]) >= 2  # 11 and 12, read first


def test_a_posted_order_is_taken_off_the_list_by_the_worker_and_recorded(stack):
    status, _, body = request(f"{stack.url}/api/orders", {"product_id": 3, "quantity": 2})
    assert status == 202 and body["status"] == "queued"
    order = body["order_id"]
    recorded: list[dict] = []

    def processed() -> bool:
        code, _, found = request(f"{stack.url}/api/orders/{order}")
        recorded.append(found)
        return code == 200

    wait_for(processed, 30, f"order {order} recorded by the worker")
    assert recorded[-1]["product_id"] == 3 and recorded[-1]["quantity"] == 2
    assert stack.redis().llen(QUEUE) == 0


def test_the_api_logs_structlog_json_and_a_real_traceback_on_an_unhandled_error(stack):
    _, headers, _ = request(f"{stack.url}/api/products/21")
    rid = headers["x-request-id"]
    entries = [json.loads(line) for line in api_log(stack) if line.startswith("{")]
    mine = [e for e in entries if e.get("request_id") == rid]
    assert {e["event"] for e in mine} == {"cache.miss", "request.completed"}
    for entry in mine:
        assert {"event", "level", "timestamp", "request_id"} <= set(entry)
        assert entry["level"] == "info" and entry["timestamp"].endswith("Z")
        assert "message" not in entry and "trace_id" not in entry

    # Postgres gone: an uncached read fails, uvicorn prints the traceback over many
    # lines, and the team's middleware logs the failure as JSON
    assert stack.cli("stack", "stop", "db").returncode == 0
    try:
        assert request(f"{stack.url}/api/products/22")[0] == 500
    finally:
        started = stack.cli("stack", "start", "db")
        assert started.returncode == 0, started.stderr
    lines = api_log(stack, 1000)
    assert "Traceback (most recent call last):" in lines, lines[-40:]
    start = lines.index("Traceback (most recent call last):")
    assert any(line.startswith("psycopg.OperationalError") for line in lines[start:])
    assert sum(1 for line in lines[start:] if line.startswith('  File "')) >= 3
    failed = [json.loads(line) for line in lines if '"request.failed"' in line]
    assert failed and failed[-1]["level"] == "error" and failed[-1]["path"] == "/api/products/22"
    assert re.fullmatch(r"[0-9a-f]{32}", failed[-1]["request_id"])  # nginx's $request_id
    # and reads work again once the database is back
    wait_for(lambda: request(f"{stack.url}/api/products/22")[0] == 200, 30, "reads again")


def api_env(stack: TeamStack) -> list[str]:
    """The api container's environment, as docker inspect shows it."""
    done = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.project}",
         "--filter", "label=com.docker.compose.service=api"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    (container,) = done.stdout.split()
    inspect = subprocess.run(
        ["docker", "inspect", "-f", "{{json .Config.Env}}", container],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return sorted(json.loads(inspect.stdout))


def test_a_flushdb_on_the_team_redis_turns_cached_reads_into_counted_misses(stack):
    metrics = f"{stack.url}/metrics"  # the api's own, through nginx
    for _ in range(2):
        assert request(f"{stack.url}/api/products/31")[0] == 200
    misses = metric(metrics, "cache_requests_total", result="miss")
    assert request(f"{stack.url}/api/products/31")[0] == 200
    assert metric(metrics, "cache_requests_total", result="miss") == misses  # a hit
    # what the redis-command fault does: FLUSHDB on the Redis the target finds
    assert stack.status()["redis"]["endpoints"]["redis"].endswith(f":{stack.ports['REDIS_PORT']}/0")
    assert stack.redis().flushdb()
    assert request(f"{stack.url}/api/products/31")[0] == 200
    assert metric(metrics, "cache_requests_total", result="miss") == misses + 1
    assert '"key": "product:31"' in next(
        line for line in reversed(api_log(stack, 50)) if '"cache.miss"' in line
    )


def test_a_bad_database_url_restart_fails_reads_through_nginx_until_the_env_is_reset(stack):
    before = api_env(stack)
    order_reads = f"{stack.url}/api/orders/not-an-order"
    assert request(order_reads)[0] == 404
    bad = "postgresql://inventory:inventory@db-replica:5432/inventory"
    done = stack.cli("stack", "restart", "api", "-e", f"DATABASE_URL={bad}")
    assert done.returncode == 0, done.stderr + done.stdout
    assert stack.status()["api"]["env_overrides"] == ["DATABASE_URL"]
    assert f"DATABASE_URL={bad}" in api_env(stack)
    # a 500 from the recreated api, not nginx's 502: nginx follows it to its new address
    wait_for(lambda: request(order_reads)[0] == 500, 30, "500s from the recreated api")
    selector = 'http_requests_total{handler="/api/orders/{order_id}",status="5xx"}'
    wait_for(lambda: bool(prometheus_query(stack, selector)), 30, f"{selector} in Prometheus")

    done = stack.cli("stack", "restart", "api", "--reset-env")
    assert done.returncode == 0, done.stderr + done.stdout
    assert stack.status()["api"]["env_overrides"] == []
    assert api_env(stack) == before
    wait_for(lambda: request(order_reads)[0] == 404, 30, "reads answered again")


def drill_args(stack: TeamStack, *params: str) -> list[str]:
    return [
        "run", str(stack.root / "scenarios" / "order-worker-stopped.yaml"), "--headless",
        "--engineer", "ci", *FAST, *params, "-w", str(stack.root),
    ]  # fmt: skip


def test_a_stopped_worker_backs_up_the_list_until_the_drill_reverts_it(stack):
    with OrderLoad(stack) as load:
        done = pagerdrill_cli(
            *drill_args(stack, "-p", "outage_s=60"), "--autopilot", "--json",
            timeout=300, env=UNBUFFERED,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        drained(stack)
    summary = json.loads(done.stdout)
    assert summary["outcome"] == "closed" and summary["recovery_verified"]
    assert summary["paged"]
    evs = read_journal(Path(summary["journal"])).events
    assert evs[0]["target"] == "compose"
    assert evs[0]["roles"] == {"api": "api", "consumer": "worker"}
    undo = next(e for e in evs if e["type"] == "fault.undo")
    assert undo["undo"] == {"service": "worker", "was": "running"}
    types = [e["type"] for e in evs]
    assert types.index("fault.undo") < types.index("fault.injected") < types.index("page")
    assert "mitigation" in types and types.index("page") < types.index("recovery.verified")
    # the orders posted while the worker was away waited on the list
    assert load.posted >= 20
    assert max(load.depths) >= 5, load.depths  # 0 or 1 while the worker runs
    all_running(stack)


def test_kill_9_of_a_run_mid_drill_then_recover_starts_the_worker_again(stack, tmp_path):
    root = stack.root
    before = set(journals(root))
    script = write_script(tmp_path / "wait.json", WAIT_SCRIPT)
    proc = start_pagerdrill(
        *drill_args(stack, "-p", "outage_s=600"), "--script", str(script), env=UNBUFFERED
    )
    try:
        journal = newest_journal(root, before)
        try:
            wait_for_event(journal, "fault.injected", timeout=150)
        except AssertionError as exc:
            so_far = [(e["type"], e.get("reason")) for e in read_journal(journal).events]
            raise AssertionError(f"{exc}; the journal so far: {so_far}") from None
        wait_for(lambda: stack.status()["worker"]["state"] == "stopped", 30, "worker stopped")
    finally:
        proc.kill()  # SIGKILL: no finally, no revert
        proc.communicate(timeout=30)
    # queued while nothing takes it off the list
    assert request(f"{stack.url}/api/orders", {"product_id": 5})[0] == 202
    assert stack.redis().llen(QUEUE) >= 1
    assert stack.status()["worker"]["state"] == "stopped"
    assert not read_journal(journal).finished

    done = stack.cli("recover", "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    mine = next(r for r in json.loads(done.stdout) if r["journal"] == str(journal))
    assert mine["reverted"] and not mine["failed"]
    assert stack.status()["worker"]["state"] == "running"
    drained(stack)
    finished = read_journal(journal)
    assert finished.events[-1]["type"] == "drill.aborted"
    assert finished.events[-1]["recovered"] is True
    again = stack.cli("recover", "--json")
    assert json.loads(again.stdout) == []
    all_running(stack)


# ------------------------------------------ drills through bindings and signal mappings


def team_drill(stack: TeamStack, name: str, *params: str) -> tuple[dict, list[dict]]:
    """A whole autopilot drill of scenario `name` of the workspace, headless, with short
    quiet periods: its JSON summary and its journal's events; it must page and close
    with recovery verified."""
    done = stack.cli(
        "run", name, "--headless", "--engineer", "ci", "--autopilot", "--json", *FAST, *params,
        timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    read = read_journal(Path(summary["journal"]))
    assert read.complete, read.problems
    assert summary["paged"] and summary["outcome"] == "closed", summary
    assert summary["recovery_verified"], summary
    types = [e["type"] for e in read.events]
    assert types.index("fault.undo") < types.index("fault.injected") < types.index("page")
    assert types.index("page") < types.index("recovery.verified")
    return summary, read.events


def values(evs: list[dict], probe: str, after: str | None = None, until: str | None = None) -> list:
    return samples(evs, probe, "value", after=after, until=until)


def proxies(stack: TeamStack) -> list[str]:
    """The http-proxy fault's containers for this project, running or not."""
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=org.pagerdrill.proxy-project={stack.project}"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip


def nat_rules(stack: TeamStack) -> str:
    """The nat PREROUTING rules in the api container's network namespace."""
    (container,) = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.project}",
         "--filter", "label=com.docker.compose.service=api"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    done = subprocess.run(
        ["docker", "run", "--rm", f"--network=container:{container}", "--cap-add=NET_ADMIN",
         "pagerdrill-base:bookworm", "iptables", "-t", "nat", "-S", "PREROUTING"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def warm_cache(stack: TeamStack) -> None:
    """Every product the traffic and the probes read, cached afresh: one cached by an
    earlier test would expire (CACHE_TTL_SECONDS, 300) and miss mid-drill, and a read
    that hits does not renew it."""
    products = [*range(1, 41), 77]
    stack.redis().delete(*(f"product:{p}" for p in products))
    for product in products:
        assert request(f"{stack.url}/api/products/{product}")[0] == 200


def test_the_shipped_500_drill_pages_through_the_proxy_fault_from_the_traffic_profile(stack):
    assert (stack.root / "scenarios" / "api-500-injection.yaml").read_bytes() == (
        REPO / "scenarios" / "api-500-injection.yaml"
    ).read_bytes()
    _, evs = team_drill(stack, "api-500-injection", "-p", "route=/api/products/")
    assert evs[0]["roles"] == {"api": "api", "traffic": "traffic-profile"}
    undo = next(e for e in evs if e["type"] == "fault.undo")
    assert undo["undo"] == {"service": "api", "proxy": "http"}
    # the clients (the traffic profile) saw the 500s; the api stayed up behind the proxy
    errors = values(evs, "errors", after="fault.injected")
    assert max(errors) > 0.05 and errors[-1] == 0
    assert values(evs, "api_up", after="fault.injected")[-1] == 1
    assert proxies(stack) == []
    assert "pagerdrill-proxy" not in nat_rules(stack)
    assert request(f"{stack.url}/api/products/1")[0] == 200
    all_running(stack)


def test_the_shipped_backpressure_drill_stops_the_list_s_consumer_until_it_drains(stack):
    _, evs = team_drill(stack, "bullmq-backpressure", "-p", "outage_s=60", "-p", "depth_alert=20")
    assert evs[0]["roles"]["consumer"] == "worker" and evs[0]["roles"]["queue"] == "redis"
    undo = next(e for e in evs if e["type"] == "fault.undo")
    assert undo["undo"] == {"service": "worker", "was": "running"}
    before = values(evs, "waiting")[:3]
    during = values(evs, "waiting", after="fault.injected", until=RECOVERED)
    # orders:pending's LLEN; drained as recovery saw it
    assert max(before) < 10 and max(during) > 20 and during[-1] < 10
    # the worker's own log says what it processed: nothing while it was stopped
    settled = values(evs, "settled", after="fault.injected")
    assert 0 in settled and max(settled) > 0
    assert max(values(evs, "produced", after="fault.injected")) > 0  # the api kept queueing
    assert next(e for e in evs if e["type"] == "mitigation")["mitigation"] == "start-consumer"
    drained(stack)
    all_running(stack)


def test_a_team_cache_flush_drill_pages_on_the_p95_of_the_api_s_own_histogram(stack):
    warm_cache(stack)
    _, evs = team_drill(stack, "product-cache-flush", "-p", "quiet_min_s=6", "-p", "quiet_max_s=8")
    injected = next(e["seq"] for e in evs if e["type"] == "fault.injected")

    def before(probe: str) -> list[float]:
        return [
            e["values"][probe]["value"]
            for e in evs
            if e["type"] == "probe.sample"
            and e["seq"] < injected
            and e["values"][probe]["value"] is not None
        ]

    # warm before the flush: hits only, so reads are in the lowest bucket (0.1 s) and the
    # quantile interpolates to 0.095 (a read stalled past 0.1 s on a busy machine can
    # lift one 5 s window; the drill holds the fault while its alert fires)
    assert before("misses") and max(before("misses")[-2:]) < 0.5, before("misses")
    assert before("p95") and statistics.median(before("p95")) < 0.1, before("p95")
    page = next(e for e in evs if e["type"] == "page")
    assert page["alert"] == "product-reads-slow" and page["seq"] > injected
    # the quantile of the increase of `http_request_duration_seconds_bucket` over 5 s: the
    # misses' 150 ms query moves it past the 0.1 s bucket, the refilled cache back under
    verified = next(e["seq"] for e in evs if e["type"] == "recovery.verified")
    during = [
        e["values"]["p95"]["value"]
        for e in evs
        if e["type"] == "probe.sample" and injected < e["seq"] < verified
    ]
    over = [v is not None and v > 0.2 for v in during]
    assert any(a and b for a, b in itertools.pairwise(over)), during  # held past for_s
    assert during[-1] is not None and during[-1] < 0.2, during  # as recovery saw it
    assert max(values(evs, "misses", after="fault.injected")) > 0.5
    # the Signals pane's standard rows read the same team metric; no realtime rows here
    assert max(values(evs, "stack.cache_misses", after="fault.injected")) > 0.5
    sampled = next(e["values"] for e in evs if e["type"] == "probe.sample")
    assert "stack.rt_accepted" not in sampled and "stack.cache_hits" in sampled
    assert next(e for e in evs if e["type"] == "fault.reverted")
    all_running(stack)


def test_a_team_bad_database_password_drill_pages_through_promql_and_resets_the_env(stack):
    before = api_env(stack)
    _, evs = team_drill(stack, "orders-db-password")
    undo = next(e for e in evs if e["type"] == "fault.undo")
    assert undo["undo"]["service"] == "api"
    page = next(e for e in evs if e["type"] == "page")
    errors = values(evs, "errors", after="fault.injected")
    assert max(errors) > 0.5  # the 5xx rate the team's Prometheus computed
    assert page["seq"] > next(e["seq"] for e in evs if e["type"] == "fault.injected")
    assert next(e for e in evs if e["type"] == "mitigation")["mitigation"] == "revert-env"
    assert api_env(stack) == before
    assert stack.status()["api"]["env_overrides"] == []
    all_running(stack)


def test_kill_9_mid_proxy_fault_then_recover_removes_the_proxy_and_its_redirect(stack, tmp_path):
    root = stack.root
    before = set(journals(root))
    script = write_script(tmp_path / "wait.json", WAIT_SCRIPT)
    proc = start_pagerdrill(
        "run", "api-500-injection", "--headless", "--engineer", "ci", *FAST,
        "-p", "route=/api/products/", "--script", str(script), "-w", str(root),
        env=UNBUFFERED,
    )  # fmt: skip
    try:
        journal = newest_journal(root, before)
        wait_for_event(journal, "fault.injected", timeout=150)
        wait_for(lambda: request(f"{stack.url}/api/products/1")[0] == 500, 30, "500s")
    finally:
        proc.kill()  # SIGKILL: no finally, no revert
        proc.communicate(timeout=30)
    assert proxies(stack) and "pagerdrill-proxy" in nat_rules(stack)
    assert request(f"{stack.url}/api/products/1")[0] == 500  # still failing, nobody reverted

    done = stack.cli("recover", "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    mine = next(r for r in json.loads(done.stdout) if r["journal"] == str(journal))
    assert mine["reverted"] and not mine["failed"]
    assert proxies(stack) == []
    assert "pagerdrill-proxy" not in nat_rules(stack)
    assert request(f"{stack.url}/api/products/1")[0] == 200
    assert json.loads(stack.cli("recover", "--json").stdout) == []
    all_running(stack)


def test_scenarios_check_says_which_scenarios_run_here_and_why_not_the_rest(stack):
    from pagerdrill.traffic import stop_traffic
    from pagerdrill.traffic.process import STACK_OWNER
    from pagerdrill.workspace import load_workspace

    # the traffic signals are read off the running profile, as during a drill
    up = stack.cli("stack", "up", "--traffic")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        wait_for(lambda: stack.redis().llen(QUEUE) == 0, 30, "the worker waiting on the list")
        done = stack.cli("scenarios", "check", "--json")
    finally:
        stop_traffic(load_workspace(stack.root), owner=STACK_OWNER)
    assert done.returncode == 0, done.stderr + done.stdout
    report = {s["scenario"]: s for s in json.loads(done.stdout)["scenarios"]}
    runnable = {name for name, s in report.items() if s["runnable"]}
    assert runnable == {
        "api-500-injection", "bullmq-backpressure", "order-worker-stopped",
        "product-cache-flush", "orders-db-password",
    }, {n: s["missing"] for n, s in report.items()}  # fmt: skip

    def unmapped(signal: str, probe: str) -> str:
        return (
            f"signal {signal} (probe {probe}) is not mapped: set signals.{signal} in "
            "pagerdrill.yaml"
        )

    storm = report["ws-handshake-storm"]["missing"]
    assert unmapped("rt.refused_rate", "throttled") in storm
    assert unmapped("rt.up", "rt_up") in storm
    assert "role rt is not bound (set roles.rt.service)" in storm
    # no ledger of the orders queued, so nothing that could replay the lost ones
    flush = report["redis-cache-flush"]["missing"]
    assert unmapped("queue.unaccounted", "lost") in flush
    signin = report["signin-failure-spike"]["missing"]
    assert unmapped("auth.failure_rate", "auth") in signin
    assert any(m.startswith("roles.api.admin_password_env") for m in signin), signin


def test_stack_down_through_the_cli_removes_the_team_containers(stack):
    done = stack.cli("stack", "down")
    assert done.returncode == 0, done.stderr + done.stdout
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.project}"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    assert left == []
