"""The bundled reference stack: which services it has, how they depend on each other.

A small betting platform modelled on the seed: a password-protected Redis shared by
cache and BullMQ queue, an HTTP api that consumes the queue, a socket.io gateway, a
producer of settled bets and a steady smoke-traffic generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

QUEUE_NAME = "bet_settled_queue"
DEFAULT_ADMIN_PASSWORD = "admin-local"
DEFAULT_REDIS_PASSWORD = "cache"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    kind: Literal["redis", "python"]
    description: str
    module: str = ""
    depends_on: tuple[str, ...] = ()


REFERENCE_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("redis-cache", "redis", "Redis with a password; cache and BullMQ queue share it"),
    ServiceSpec(
        "api",
        "python",
        "HTTP api: sign-in, cached reads, bets; consumes bet_settled_queue",
        "pagerdrill.refstack.api",
        ("redis-cache",),
    ),
    ServiceSpec(
        "rt",
        "python",
        "socket.io gateway with a per-source handshake throttler",
        "pagerdrill.refstack.rt",
    ),
    ServiceSpec(
        "game",
        "python",
        "adds settled-bet jobs to bet_settled_queue at a steady rate",
        "pagerdrill.refstack.game",
        ("redis-cache",),
    ),
    ServiceSpec(
        "traffic",
        "python",
        "steady smoke profile: sign-ins, reads, bets, socket.io clients",
        "pagerdrill.refstack.traffic",
        ("api", "rt"),
    ),
)

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in REFERENCE_SERVICES)

# What the target itself sets for a service (where it listens, its name, where it
# logs): a workspace setting or a restart override would make the target lose track
# of the service, so both are refused.
RESERVED_ENV = frozenset(
    {"PORT", "HOST", "SERVICE_NAME", "LOG_FILE", "LOG_MAX_BYTES", "LOG_BACKUPS"}
)


@dataclass(frozen=True)
class NumberSetting:
    """A service setting that must be a number (the service refuses anything else at
    boot, after `stack up` has waited for it): checked when pagerdrill.yaml is read."""

    minimum: float = 0.0
    maximum: float | None = None
    integer: bool = False


# Each refstack module's docstring lists its settings; these are the numeric ones.
NUMBER_SETTINGS: dict[str, dict[str, NumberSetting]] = {
    "api": {
        "CACHE_TTL_S": NumberSetting(minimum=1, integer=True),
        "SLOW_PATH_MS": NumberSetting(),
        "WORKER_CONCURRENCY": NumberSetting(minimum=1, integer=True),
        "JOB_WORK_MS": NumberSetting(),
    },
    "rt": {
        "HANDSHAKE_LIMIT": NumberSetting(integer=True),
        "HANDSHAKE_WINDOW_S": NumberSetting(minimum=0.001),
    },
    "game": {
        "GAME_RATE": NumberSetting(),
        "ADD_TIMEOUT_S": NumberSetting(minimum=0.1),
        "DELAYED_SHARE": NumberSetting(maximum=1),
        "DELAYED_S": NumberSetting(),
    },
    "traffic": {
        "TRAFFIC_RATE": NumberSetting(),
        "TRAFFIC_SOCKETS": NumberSetting(integer=True),
        "TRAFFIC_WINDOW_S": NumberSetting(minimum=1),
    },
}


def spec(name: str) -> ServiceSpec:
    for s in REFERENCE_SERVICES:
        if s.name == name:
            return s
    raise KeyError(name)


# What the scenarios' roles mean on the reference stack; a workspace's own
# `roles:` bindings override these.
REFERENCE_ROLES: dict[str, dict[str, str]] = {
    "api": {"service": "api", "admin_password_env": "ADMIN_DEFAULT_PASSWORD"},
    "cache": {"service": "redis-cache"},
    "queue": {"service": "redis-cache", "queue": QUEUE_NAME},
    "rt": {"service": "rt"},
    "producer": {"service": "game"},
    "traffic": {"service": "traffic"},
}
ROLE_NAMES: tuple[str, ...] = tuple(REFERENCE_ROLES)
"""The roles scenarios speak of; `roles:` in pagerdrill.yaml binds only these."""
