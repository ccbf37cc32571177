"""Scenario roles resolved against a workspace's bindings and its running target.

A scenario speaks of roles (api, cache, queue, rt ...). `pagerdrill.yaml` binds
each to a service and, where the target cannot find them by itself, to its
details (URLs, Redis password, queue name, the variable holding the admin
password). Explicit binding details win over what the target reports.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from pagerdrill.errors import BadInputError
from pagerdrill.targets.base import Target
from pagerdrill.workspace.config import RoleBinding


@dataclass
class RoleResolver:
    roles: dict[str, RoleBinding]
    target: Target
    """Only its `service_endpoints(service)` is used here."""

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
        endpoints = self.target.service_endpoints(self.service(role))
        return endpoints.get(key)

    def _need(self, role: str, value: str | None, what: str, key: str) -> str:
        if not value:
            raise BadInputError(
                f"role '{role}' (service {self.service(role)}): no {what} known; "
                f"set roles.{role}.{key} in pagerdrill.yaml"
            )
        return value

    def base_url(self, role: str) -> str:
        b = self.binding(role)
        return self._need(role, b.url or self._endpoint(role, "http"), "URL", "url").rstrip("/")

    def health_url(self, role: str) -> str:
        b = self.binding(role)
        found = b.health_url or self._endpoint(role, "health")
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
