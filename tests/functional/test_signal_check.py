"""`scenarios check` proves a scenario's signals live, and a drill whose alert signals
cannot be read never starts: on the real reference stack, with a real Prometheus
(Debian's `prometheus`) scraping it for the PromQL sources."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from helpers import TEST_ENV, pid_alive, wait_for, write_workspace
from helpers import pagerdrill_cli as cli
from pagerdrill.drill.engine import role_bindings
from pagerdrill.scenarios.check import check_workspace
from pagerdrill.targets.local import LocalTarget
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace import load_workspace
from pagerdrill.workspace.config import RoleBinding
from pagerdrill.workspace.sources import SignalSource, workspace_signals

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
FLUSH = REPO / "scenarios" / "redis-cache-flush.yaml"


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prometheus(stack: LocalTarget, tmp_path_factory) -> Iterator[str]:
    """A real Prometheus scraping the reference api every second; its URL."""
    roles = RoleResolver(role_bindings(load_workspace(stack.workspace.root)), stack)
    api = roles.metrics_url("api").removeprefix("http://").split("/", 1)[0]
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), [api]) as url:

        def has_series() -> bool:
            query = f"{url}/api/v1/query?query=cache_hits_total"
            try:
                with urllib.request.urlopen(query, timeout=2) as response:
                    return b'"result":[{' in response.read()
            except OSError:
                return False

        wait_for(has_series, 60, "Prometheus to scrape the api")
        yield url


@contextlib.contextmanager
def running_prometheus(root: Path, targets: list[str]) -> Iterator[str]:
    """A real Prometheus scraping `targets` (host:port) every second, answering once
    ready; its URL. Stopped on exit."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no prometheus binary (Debian: apt-get install prometheus)")
    jobs = [{"job_name": "api", "static_configs": [{"targets": targets}]}] if targets else []
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": jobs,
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _closed_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(root / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(ready, 60, "Prometheus to be ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        assert not pid_alive(proc.pid)


def _check(stack: LocalTarget, tmp_path: Path, signals: dict, roles: dict | None = None):
    """`scenarios check` of redis-cache-flush on the running stack, with `signals`
    changing the workspace's mapping (None: the signal left unmapped)."""
    (tmp_path / "scenarios").mkdir()
    shutil.copy2(FLUSH, tmp_path / "scenarios" / FLUSH.name)
    ws = load_workspace(stack.workspace.root)
    bindings = role_bindings(ws) | {k: RoleBinding(**v) for k, v in (roles or {}).items()}
    mapping: dict[str, SignalSource] = dict(workspace_signals(ws.config))
    from pydantic import TypeAdapter

    adapter: TypeAdapter[SignalSource] = TypeAdapter(SignalSource)
    for name, raw in signals.items():
        if raw is None:
            del mapping[name]
        else:
            mapping[name] = adapter.validate_python(raw)
    [result] = check_workspace(tmp_path, bindings, stack, True, mapping)
    return result


def test_every_shipped_scenario_can_run_once_its_signals_are_read_on_the_reference_stack(stack):
    ws = load_workspace(stack.workspace.root)
    results = check_workspace(REPO, role_bindings(ws), stack, True, workspace_signals(ws.config))
    assert len(results) == 5
    assert all(r.runnable for r in results), [(r.name, r.missing) for r in results]


CLOSED = _closed_port()


@pytest.mark.parametrize(
    ("signals", "roles", "expected"),
    [
        pytest.param(
            {"cache.miss_rate": None},
            None,
            [
                "signal cache.miss_rate (probe misses) is not mapped: set "
                "signals.cache.miss_rate in pagerdrill.yaml"
            ],
            id="unmapped",
        ),
        pytest.param(
            {"cache.miss_rate": {"kind": "metric", "role": "api", "metric": "cache_miss_count"}},
            None,
            ["signal cache.miss_rate (probe misses): metric cache_miss_count{} not on http://"],
            id="metric-absent",
        ),
        pytest.param(
            {
                "cache.miss_rate": {
                    "kind": "metric",
                    "role": "api",
                    "metric": "http_requests_total",
                    "labels": {"handler": "/api/markets"},
                    "as": "rate",
                }
            },
            None,
            [
                'signal cache.miss_rate (probe misses): metric http_requests_total{handler="/api/'
                'markets"}: http_requests_total on http://',
                "has no series with the labels handler (",
            ],
            id="no-series-with-those-labels",
        ),
        pytest.param(
            {"api.read_latency_ms": {"kind": "http", "role": "api", "path": "/api/markets/999"}},
            None,
            [
                "signal api.read_latency_ms (probe read): GET http://",
                "/api/markets/999 answered 404",
            ],
            id="http-404",
        ),
        pytest.param(
            {"api.read_latency_ms": {"kind": "http", "role": "gone", "path": "/healthz"}},
            {"gone": {"service": "api", "url": f"http://127.0.0.1:{CLOSED}"}},
            [
                f"signal api.read_latency_ms (probe read): GET http://127.0.0.1:{CLOSED}/healthz: "
                "no answer ("
            ],
            id="http-refused",
        ),
        pytest.param(
            {
                "api.read_latency_ms": {
                    "kind": "http",
                    "role": "api",
                    "path": "/healthz",
                    "body_match": "markets? (are|is) open",
                }
            },
            None,
            ["/healthz answered 200 but its body does not match /markets? (are|is) open/"],
            id="body-does-not-match",
        ),
        pytest.param(
            {
                "traffic.latency_p95": {
                    "kind": "metric",
                    "role": "api",
                    "metric": "cache_misses",
                    "as": "quantile",
                }
            },
            None,
            [
                "signal traffic.latency_p95 (probe p95): histogram cache_misses: metric "
                "cache_misses_bucket{} not on http://"
            ],
            id="histogram-without-buckets",
        ),
        pytest.param(
            {"queue.waiting": {"kind": "queue", "role": "other_queue"}},
            {"other_queue": {"service": "redis-cache", "queue": "no_such_queue"}},
            [
                "signal queue.waiting (probe waiting): BullMQ queue no_such_queue on redis://",
                "no such queue (none of its keys bull:no_such_queue:* exists)",
            ],
            id="queue-absent",
        ),
        pytest.param(
            {"cache.miss_rate": {"kind": "promql", "role": "prom", "query": "sum(x)"}},
            {"prom": {"service": "api", "url": f"http://127.0.0.1:{CLOSED}"}},
            [
                f"signal cache.miss_rate (probe misses): PromQL `sum(x)` on http://127.0.0.1:"
                f"{CLOSED}/api/v1/query: no answer ("
            ],
            id="prometheus-unreachable",
        ),
    ],
)
def test_scenarios_check_names_the_signal_the_source_tried_and_what_came_back(
    stack, tmp_path, signals, roles, expected
):
    result = _check(stack, tmp_path, signals, roles)
    assert not result.runnable
    assert len(result.missing) == 1, result.missing
    for part in expected:
        assert part in result.missing[0], result.missing
    assert "\n" not in result.missing[0]  # one line


def test_a_promql_query_with_no_series_is_no_value_and_says_so(stack, prometheus, tmp_path):
    query = 'sum(rate(cache_misses_total{job="nope"}[10s]))'
    signals = {"cache.miss_rate": {"kind": "promql", "role": "prom", "query": query}}
    result = _check(stack, tmp_path, signals, {"prom": {"service": "api", "url": prometheus}})
    (missing,) = result.missing
    # (and, this Prometheus having started within two minutes, that it has just started)
    assert missing.startswith(
        f"signal cache.miss_rate (probe misses): PromQL `{signals['cache.miss_rate']['query']}` "
        f"on {prometheus}/api/v1/query: the query returned no series"
    ), missing


def test_no_series_from_a_prometheus_that_has_just_started_says_so(stack, tmp_path):
    with running_prometheus(tmp_path, []) as url:
        signals = {"cache.miss_rate": {"kind": "promql", "role": "prom", "query": "sum(x)"}}
        result = _check(stack, tmp_path, signals, {"prom": {"service": "api", "url": url}})
    (missing,) = result.missing
    assert re.search(
        r"the query returned no series \(Prometheus started \d+ s ago: the series, or a "
        r"rate's second sample, may need another scrape; check again shortly\)$",
        missing,
    ), missing


def test_a_promql_signal_reads_its_value_from_a_real_prometheus(stack, prometheus, tmp_path):
    import httpx

    from pagerdrill.scenarios.model import load_scenario
    from pagerdrill.signals.probes import Cycle, make_probe

    query = "sum(cache_hits_total)"
    signals = {"cache.miss_rate": {"kind": "promql", "role": "prom", "query": query}}
    roles = {"prom": {"service": "api", "url": prometheus}}
    assert _check(stack, tmp_path, signals, roles).runnable
    ws = load_workspace(stack.workspace.root)
    resolver = RoleResolver(
        role_bindings(ws) | {"prom": RoleBinding(**roles["prom"])},
        stack,
        {**workspace_signals(ws.config), **_sources(signals)},
    )
    spec = load_scenario(FLUSH).model.probes[0]
    assert spec.signal == "cache.miss_rate"
    with httpx.Client() as http:
        value = make_probe(spec, resolver, stack).sample(Cycle(http=http, now=0.0))["value"]
    assert value is not None and value > 0  # traffic reads markets, and most hit the cache


def test_a_histogram_quantile_signal_reads_the_api_s_latency_from_its_buckets(stack):
    import httpx

    from pagerdrill.signals.probes import Cycle, make_probe
    from pagerdrill.signals.specs import ProbeSpec

    ws = load_workspace(stack.workspace.root)
    resolver = RoleResolver(role_bindings(ws), stack, workspace_signals(ws.config))
    probe = make_probe(ProbeSpec(name="p95", signal="api.latency_p95"), resolver, stack)
    values = []
    with httpx.Client() as http:
        for step in range(40):  # traffic's reads land between two scrapes
            values.append(probe.sample(Cycle(http=http, now=float(step)))["value"])
            if values[-1] is not None:
                break
            time.sleep(0.25)
    assert values[0] is None  # one scrape has no increase yet
    assert values[-1] is not None and 0 < values[-1] <= 10  # seconds, under the top bucket


def _sources(signals: dict) -> dict[str, SignalSource]:
    from pydantic import TypeAdapter

    adapter: TypeAdapter[SignalSource] = TypeAdapter(SignalSource)
    return {k: adapter.validate_python(v) for k, v in signals.items()}


def test_run_refuses_a_scenario_whose_alert_signal_cannot_be_read_and_touches_nothing(tmp_path):
    config = {
        "version": 1,
        "target": "local",
        "local": {"services": {name: {"env": env} for name, env in TEST_ENV.items()}},
        "signals": {
            "cache.miss_rate": {
                "kind": "metric",
                "role": "api",
                "metric": "nope_total",
                "as": "rate",
            }
        },
    }
    root = write_workspace(tmp_path / "ws", config)
    shutil.copytree(REPO / "scenarios", root / "scenarios")
    done = cli("run", "redis-cache-flush", "-e", "ci", "--autopilot", "-w", str(root), cwd=root)
    assert done.returncode == 2, done.stderr
    assert "redis-cache-flush: its alert signals cannot be read on this stack" in done.stderr
    assert "signal cache.miss_rate (probe misses): metric nope_total{} not on http://" in (
        done.stderr
    )
    assert "nothing was touched" in done.stderr
    assert "fault" not in done.stderr.replace("nothing was touched", "")
    assert not list((root / "drills").glob("*.jsonl")) if (root / "drills").exists() else True
    assert not LocalTarget(load_workspace(root)).is_up()  # the stack it started went down
