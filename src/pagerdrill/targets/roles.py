"""Scenario roles resolved against a workspace's bindings and its running target.

A scenario speaks of roles (api, cache, queue, rt ...). `pagerdrill.yaml` binds
each to a service and, where the target cannot find them by itself, to its
details (URLs, Redis password, queue name, the variable holding the admin
password). Explicit binding details win over what the target reports.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field

from pagerdrill.errors import BadInputError
from pagerdrill.targets.base import Target
from pagerdrill.workspace.config import RoleBinding
from pagerdrill.workspace.sources import SignalSource
from pagerdrill.workspace.traffic import STATE_FILE


@dataclass
class RoleResolver:
    roles: dict[str, RoleBinding]
    target: Target
    """Only its `service_endpoints(service)` is used here."""
    signals: dict[str, SignalSource] = field(default_factory=dict)
    """Where each catalogue signal is read on this stack (`signals:` in pagerdrill.yaml)."""

    def signal_source(self, name: str) -> SignalSource:
        if name not in self.signals:
            mapped = ", ".join(sorted(self.signals)) or "none"
            raise BadInputError(
                f"signal {name} is not mapped: set signals.{name} in pagerdrill.yaml "
                f"(mapped: {mapped})"
            )
        return self.signals[name]

    def binding(self, role: str) -> RoleBinding:
        if role not in self.roles:
            bound = ", ".join(sorted(self.roles)) or "none"
            raise BadInputError(
                f"role '{role}' is not bound in pagerdrill.yaml (bound roles: {bound})"
            )
        return self.roles[role]

    def service(self, role: str) -> str:
        return self.binding(role).service

    def _endpoint(self, role: str, key: str) -> str | None:
        if self.binding(role).generator == "profile":
            return self._generator_endpoint(role, key)
        endpoints = self.target.service_endpoints(self.service(role))
        return endpoints.get(key)

    def _generator_endpoint(self, role: str, key: str) -> str | None:
        """pagerdrill's traffic generator is no service of the target: its endpoints
        are where the running generator wrote them."""
        try:
            state = json.loads((self.target.workspace.state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            state = None
        if not isinstance(state, dict) or not state.get("metrics"):
            raise BadInputError(
                f"role '{role}' is pagerdrill's traffic generator, which is not running "
                "(a drill starts it, and so does `pagerdrill stack up --traffic`)"
            )
        value = state.get(key)
        return value if isinstance(value, str) else None

    def _need(self, role: str, value: str | None, what: str, key: str) -> str:
        if not value:
            raise BadInputError(
                f"role '{role}' (service {self.service(role)}): no {what} known; "
                f"set roles.{role}.{key} in pagerdrill.yaml"
            )
        return value

    def base_url(self, role: str) -> str:
        b = self.binding(role)
        found = b.url
        if found and urllib.parse.urlsplit(found).hostname == b.service:
            # a URL naming the service is an address on the project network, which this
            # machine cannot resolve: the target's endpoint is where it reaches it
            endpoint = self._endpoint(role, "http")
            if endpoint:
                found = endpoint.rstrip("/") + urllib.parse.urlsplit(found).path
        found = found or self._endpoint(role, "http")
        return self._need(role, found, "URL", "url").rstrip("/")

    def health_url(self, role: str) -> str:
        b = self.binding(role)
        # the target's own endpoint first: it resolves a bound URL to where this machine
        # reaches it (a container's address for a service with no published port)
        found = self._endpoint(role, "health") or b.health_url
        return self._need(role, found, "health URL", "health_url")

    def metrics_url(self, role: str) -> str:
        found = self._endpoint(role, "metrics")
        if not found:
            found = f"{self.base_url(role)}/metrics"
        return found

    def socketio_url(self, role: str) -> str:
        b = self.binding(role)
        found = b.url or self._endpoint(role, "socketio") or self._endpoint(role, "http")
        return self._need(role, found, "socket.io URL", "url").rstrip("/")

    def redis_url(self, role: str) -> str:
        b = self.binding(role)
        url = self._need(
            role, b.redis_url or self._endpoint(role, "redis"), "Redis URL", "redis_url"
        )
        if b.password:  # the binding's password wins over one in the URL
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname or "127.0.0.1"
            netloc = f":{urllib.parse.quote(b.password, safe='')}@{host}"
            if parts.port:
                netloc += f":{parts.port}"
            url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        return url

    def queue(self, role: str) -> str:
        return self._need(role, self.binding(role).queue, "BullMQ queue name", "queue")

    def admin_password_env(self, role: str) -> str:
        return self._need(
            role,
            self.binding(role).admin_password_env,
            "admin password variable",
            "admin_password_env",
        )
