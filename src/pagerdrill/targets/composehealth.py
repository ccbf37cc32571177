"""The compose target's view of each service: where it answers, whether it is healthy.

A service answers on this machine at its published loopback port, else at its
container's address on the project network (the host routes to bridge networks), on
the port a role binding gives or the one the image exposes. Health is Docker's
healthcheck verdict when it has one, else the bound health URL, else a Redis PING for
a Redis; a service with none of these is "running, health unknown", never healthy.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pagerdrill.errors import StackError
from pagerdrill.targets.base import Health, Progress, ServiceStatus, State
from pagerdrill.targets.composeattrs import (
    LOG_TAIL,
    POLL_S,
    _container_ip,
    _exposed,
    _is_redis,
    _is_reference,
    _names,
    _override_names,
    _published,
    _redis_password,
    _redis_port,
    _state_of,
)
from pagerdrill.targets.state import emit

if TYPE_CHECKING:
    from pagerdrill.workspace.config import ComposeTargetConfig


class ComposeHealth:
    """Mixed into ComposeTarget."""

    config: ComposeTargetConfig
    project: str
    _last_health: dict[str, str]
    _bound_health: dict[str, str]
    _bound_password: dict[str, str]
    _bound_url: dict[str, str]

    if TYPE_CHECKING:  # what ComposeTarget provides

        def _known(self, service: str) -> None: ...

        def _primary(self, service: str) -> dict | None: ...

        def service_status(self, service: str) -> ServiceStatus: ...

        def logs(self, service: str, tail: int = 50) -> list[str]: ...

    def _inside_port(self, attrs: dict, service: str) -> int | None:
        """The port the service listens on in its container: that of a bound URL naming
        the container, else the lowest one it exposes."""
        names = _names(attrs, service)
        for url in (self._bound_url.get(service), self._bound_health.get(service)):
            parts = urllib.parse.urlsplit(url or "")
            if parts.hostname in names and parts.port:
                return parts.port
        exposed = _exposed(attrs)
        return exposed[0] if exposed else None

    def _reach(self, attrs: dict, service: str) -> tuple[str, int] | None:
        """(host, port) where this machine reaches the service: its published loopback
        port, else its container's address on the project network."""
        ports = _published(attrs)
        inside = (
            _redis_port(attrs) if _is_redis(attrs, ports) else self._inside_port(attrs, service)
        )
        if ports:
            _, host, port = next((p for p in ports if p[0] == inside), ports[0])
            return host, port
        address = _container_ip(attrs, self.project)
        if address is None or inside is None:
            return None
        return address, inside

    def _speaks_http(self, attrs: dict, service: str) -> bool:
        """A binding gives it a URL, or it is one of the reference services."""
        return service in self._bound_url or service in self._bound_health or _is_reference(attrs)

    def _health_url(self, attrs: dict, service: str, base: str) -> str | None:
        """The bound health URL as this machine reaches it (a path is on the service's
        address; a host naming the container becomes its address), else the reference
        services' /healthz."""
        bound = self._bound_health.get(service)
        if bound is None:
            return f"{base}/healthz" if _is_reference(attrs) else None
        if bound.startswith("/"):
            return base + bound
        parts = urllib.parse.urlsplit(bound)
        address = _container_ip(attrs, self.project)
        if parts.hostname in _names(attrs, service) and address:
            netloc = f"{address}:{parts.port}" if parts.port else address
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        return bound

    def endpoints_of(self, attrs: dict, service: str) -> dict[str, str]:
        """Where a container answers from this machine. Only a service known to speak
        HTTP gets HTTP endpoints; any other has its TCP address (a Postgres is no web
        server)."""
        reach = self._reach(attrs, service)
        if reach is None:
            return {}
        host, port = reach
        if _is_redis(attrs, _published(attrs)):
            password = self._bound_password.get(service) or _redis_password(attrs)
            auth = f":{urllib.parse.quote(password, safe='')}@" if password else ""
            return {"redis": f"redis://{auth}{host}:{port}/0"}
        if not self._speaks_http(attrs, service):
            return {"tcp": f"{host}:{port}"}
        base = f"http://{host}:{port}"
        out = {"http": base, "metrics": f"{base}/metrics"}
        health = self._health_url(attrs, service, base)
        if health:
            out["health"] = health
        return out

    def service_endpoints(self, service: str) -> dict[str, str]:
        self._known(service)
        attrs = self._primary(service)
        return self.endpoints_of(attrs, service) if attrs else {}

    def _health(self, attrs: dict, service: str, state: State) -> Health:
        """A bound health URL decides (with Docker's healthcheck, when it says
        unhealthy); else Docker's verdict; else a Redis PING. While a healthcheck has no
        verdict yet (a fresh container), the service's own health endpoint, so a start is
        seen when it happens. With no healthcheck and no health URL, running is all there
        is to know: "unknown", never "healthy"."""
        if state != "running":
            return "unknown" if state == "stopped" else "unhealthy"
        docker_health = ((attrs.get("State") or {}).get("Health") or {}).get("Status")
        if docker_health == "unhealthy":
            self._last_health[service] = "docker healthcheck: unhealthy"
            return "unhealthy"
        endpoints = self.endpoints_of(attrs, service)
        url = endpoints.get("health")
        if service in self._bound_health or (docker_health == "starting" and url):
            if not url:
                self._last_health[service] = (
                    f"health_url {self._bound_health[service]}: no address to reach it"
                )
                return "unhealthy"
            return "healthy" if self._answers_http(url, service) else "unhealthy"
        if docker_health == "healthy":
            self._last_health[service] = "docker healthcheck: healthy"
            return "healthy"
        if "redis" in endpoints:
            return "healthy" if self._pings(endpoints["redis"], service) else "unhealthy"
        if docker_health == "starting":
            self._last_health[service] = "docker healthcheck: starting"
            return "unhealthy"
        self._last_health[service] = "running, health unknown (no healthcheck, no health_url)"
        return "unknown"

    def _pings(self, url: str, service: str, timeout: float = 0.5) -> bool:
        import redis

        try:
            with redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            ) as client:
                client.ping()
        except (redis.RedisError, OSError) as exc:
            self._last_health[service] = f"Redis PING: {exc}"
            return False
        self._last_health[service] = "Redis PING answered"
        return True

    def _answers_http(self, url: str, service: str, timeout: float = 0.5) -> bool:
        parts = urllib.parse.urlsplit(url)
        conn_cls = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        try:
            conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
            response = conn.getresponse()
            response.read(4096)
        except (OSError, http.client.HTTPException) as exc:
            self._last_health[service] = f"{url}: no answer ({exc})"
            return False
        finally:
            conn.close()
        self._last_health[service] = f"{url}: HTTP {response.status}"
        return 200 <= response.status < 300

    def _status_from(self, attrs: dict | None, service: str) -> ServiceStatus:
        if attrs is None:
            return ServiceStatus(name=service, state="absent", health="unknown")
        state = _state_of(attrs)
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        return ServiceStatus(
            name=service,
            state=state,
            health=self._health(attrs, service, state),
            pid=((attrs.get("State") or {}).get("Pid") or None) if state == "running" else None,
            endpoints=self.endpoints_of(attrs, service),
            env_overrides=tuple(sorted(_override_names(labels))),
        )

    # ---------------------------------------------------------------- waiting

    def _wait_healthy(
        self,
        services: Sequence[str],
        progress: Progress | None,
        t0: float,
        *,
        emitted: set[tuple[str, str]] | None = None,
        until: Any = None,
    ) -> None:
        """Wait until every service runs and is healthy (or runs with no way to tell its
        health), each within the timeout.
        `until` (a Popen) keeps the wait going while the compose CLI still works."""
        timeout = self.config.startup_timeout_s
        emitted = set() if emitted is None else emitted
        pending = list(services)
        # the timeout runs from when the compose CLI is done (it waits for dependencies)
        clock_from = time.monotonic() if until is None else None
        while True:
            cli_done = until is None or until.poll() is not None
            if until is not None and cli_done:
                if until.returncode != 0:
                    return  # the caller reports the compose CLI's own error
                clock_from = clock_from or time.monotonic()
            for service in list(pending):
                status = self.service_status(service)
                if status.state == "running":
                    emit(progress, service, "starting", t0, emitted)
                if status.state == "running" and status.health == "healthy":
                    emit(progress, service, "healthy", t0, emitted)
                    pending.remove(service)
                elif status.state == "running" and status.health == "unknown" and cli_done:
                    # nothing can tell its health: it is up as far as anyone can know
                    emit(progress, service, "running", t0, emitted, "running, health unknown")
                    pending.remove(service)
                elif status.state == "exited" and cli_done:
                    emit(progress, service, "failed", t0, emitted)
                    raise StackError(service, "exited during start", self.logs(service, LOG_TAIL))
            if not pending and cli_done:
                return
            if clock_from is not None and time.monotonic() - clock_from > timeout:
                service = pending[0]
                emit(progress, service, "failed", t0, emitted)
                last = self._last_health.get(service, "no answer")
                raise StackError(
                    service,
                    f"did not become healthy within {timeout:g} s (last check: {last}); its "
                    "container is left as it is for you to inspect",
                    self.logs(service, LOG_TAIL),
                )
            time.sleep(POLL_S)
