"""The compose target on services the way teams have them, on a real Docker Engine: a
bound health URL for a service with no published port, a service with no healthcheck
(running, health unknown), a TCP service that is no web server, and the http-proxy
fault in front of a service with no published port."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from composing import HEALTH, Spec, compose_projects
from drilling import cli
from pagerdrill.faults.httpproxy import proxy_script
from pagerdrill.targets.compose import ComposeTarget
from pagerdrill.targets.composeproxy import PROXY_PROJECT_LABEL
from pagerdrill.workspace import load_workspace

# roles as the scenarios name them; only the binding of web says how to tell its health
ROLES = {
    "api": {"service": "web", "health_url": "http://web:8000/healthz"},
    "producer": {"service": "plain"},
    "rt": {"service": "db"},
}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Iterator[ComposeTarget]:
    root = tmp_path_factory.mktemp("health") / "ws"
    with compose_projects(Spec(root, "health", [HEALTH], ROLES)) as (target,):
        yield target


def _base(target: ComposeTarget, service: str = "web") -> str:
    return target.service_endpoints(service)["http"]


def _proxies(target: ComposeTarget) -> list[str]:
    done = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={PROXY_PROJECT_LABEL}={target.project}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.split()


def test_compose_a_bound_health_url_reaches_a_service_with_no_published_port(small):
    # `stack up` (the fixture) waited for it: the bound URL, at the container's address
    status = small.service_status("web")
    assert (status.state, status.health) == ("running", "healthy")
    health = status.endpoints["health"]
    assert health.endswith(":8000/healthz") and "//web:" not in health
    assert httpx.get(health, timeout=5).text == "ok\n"
    # the URL really decides: when it stops answering 2xx, the service is unhealthy
    small.exec("web", ["rm", "/srv/healthz"])
    try:
        assert small.service_status("web").health == "unhealthy"
    finally:
        small.exec("web", ["sh", "-c", "echo ok > /srv/healthz"])
    assert small.service_status("web").health == "healthy"


def test_compose_a_service_with_no_healthcheck_and_no_health_url_is_running_health_unknown(
    small,
):
    status = small.service_status("plain")
    assert (status.state, status.health) == ("running", "unknown")
    done = cli("stack", "status", "--json", "-w", str(small.workspace.root))
    assert done.returncode == 0, done.stderr + done.stdout
    shown = {s["name"]: s for s in json.loads(done.stdout)["services"]}
    assert (shown["plain"]["state"], shown["plain"]["health"]) == ("running", "unknown")


def test_compose_a_tcp_service_that_is_no_web_server_shows_its_address_not_http_endpoints(
    small,
):
    endpoints = small.service_endpoints("db")
    assert list(endpoints) == ["tcp"]
    assert endpoints["tcp"].startswith("127.0.0.1:")
    done = cli("stack", "status", "-w", str(small.workspace.root))
    assert done.returncode == 0, done.stderr + done.stdout
    db_line = next(line for line in done.stdout.splitlines() if line.startswith("db "))
    assert endpoints["tcp"] in db_line
    assert "http://" not in db_line and "/healthz" not in done.stdout.split("db ", 1)[1]


def test_compose_the_http_proxy_answers_for_a_service_with_no_published_port_until_removed(
    small,
):
    base = _base(small)
    before = httpx.get(f"{base}/promo", timeout=5).status_code  # http.server: no such file
    assert before == 404
    detail = small.insert_http_proxy("web", {"status": 500, "path": "^/promo"}, proxy_script())
    try:
        assert detail["port"] == 8000
        assert httpx.get(f"{base}/promo", timeout=5).status_code == 500
        assert httpx.get(f"{base}/healthz", timeout=5).text == "ok\n"  # passed through
        # inside the service's namespace, 127.0.0.1 is not redirected: the real service
        local = small.exec("web", ["python3", "-c", (
            "import urllib.request, urllib.error\n"
            "try: urllib.request.urlopen('http://127.0.0.1:8000/promo')\n"
            "except urllib.error.HTTPError as e: print(e.code)"
        )])  # fmt: skip
        assert local.stdout.strip() == "404"
        assert len(_proxies(small)) == 1
    finally:
        removed = small.remove_http_proxy("web")
    assert removed["removed"] == 1
    assert httpx.get(f"{base}/promo", timeout=5).status_code == 404
    assert _proxies(small) == []
    assert small.remove_http_proxy("web") == {"service": "web", "removed": 0}  # idempotent


def test_compose_removal_from_a_fresh_process_works_when_the_proxy_container_died(small):
    base = _base(small)
    small.insert_http_proxy("web", {"status": 503}, proxy_script())
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 503
    subprocess.run(["docker", "kill", *_proxies(small)], capture_output=True, check=True)
    # the redirect lives in the service's namespace: with its proxy dead, it refuses
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/healthz", timeout=5)
    fresh = ComposeTarget(load_workspace(Path(small.workspace.root)), environ=small.environ)
    fresh.remove_http_proxy("web")
    assert httpx.get(f"{base}/healthz", timeout=5).text == "ok\n"
    assert _proxies(small) == []
