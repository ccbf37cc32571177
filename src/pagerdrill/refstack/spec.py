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
    {"PORT", "HOST", "SERVICE_NAME", "LOG_FILE", "LOG_MAX_BYTES", "LOG_BACKUPS",
     "REUSE_PORT", "TOKEN_SECRET", "PAGERDRILL_LAUNCH"}
)  # fmt: skip


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
    # the api takes the settled-bet jobs off the queue: it is the queue's consumer too
    "consumer": {"service": "api"},
    "rt": {"service": "rt"},
    "producer": {"service": "game"},
    "traffic": {"service": "traffic"},
}
ROLE_NAMES: tuple[str, ...] = tuple(REFERENCE_ROLES)
"""The roles the shipped scenarios speak of; a workspace may bind roles of its own too."""

REFERENCE_SIGNALS: dict[str, dict] = {
    "api.error_rate": {
        "kind": "metric", "role": "api", "metric": "http_requests_total",
        "label_patterns": {"status": "5.."}, "as": "rate",
    },
    "api.latency_p95": {
        "kind": "metric", "role": "api", "metric": "http_request_duration_seconds",
        "as": "quantile", "q": 0.95,
    },
    "api.up": {"kind": "service", "role": "api"},
    # a market only this probe reads, so its latency shows the cold cache
    "api.read_latency_ms": {
        "kind": "http", "role": "api", "path": "/api/markets/77", "as": "latency_ms",
    },
    "auth.failure_rate": {
        "kind": "metric", "role": "api", "metric": "auth_failures_total", "as": "rate",
    },
    "auth.signin_rate": {"kind": "metric", "role": "api", "metric": "sign_ins_total", "as": "rate"},
    "cache.miss_rate": {
        "kind": "metric", "role": "api", "metric": "cache_misses_total", "as": "rate",
    },
    "cache.hit_rate": {"kind": "metric", "role": "api", "metric": "cache_hits_total", "as": "rate"},
    "queue.waiting": {"kind": "queue", "role": "queue", "field": "waiting"},
    "queue.delayed": {"kind": "queue", "role": "queue", "field": "delayed"},
    "queue.processed_rate": {
        "kind": "metric", "role": "api", "metric": "queue_jobs_processed_total", "as": "rate",
    },
    "queue.produced_rate": {
        "kind": "metric", "role": "producer", "metric": "game_jobs_produced_total", "as": "rate",
    },
    "queue.unaccounted": {"kind": "metric", "role": "producer", "metric": "game_jobs_unaccounted"},
    "rt.refused_rate": {
        "kind": "metric", "role": "rt", "metric": "rt_handshakes_rejected_total",
        "labels": {"reason": "throttled"}, "as": "rate",
    },
    "rt.blocked_rate": {
        "kind": "metric", "role": "rt", "metric": "rt_handshakes_rejected_total",
        "labels": {"reason": "blocked"}, "as": "rate",
    },
    "rt.handshake_rate": {
        "kind": "metric", "role": "rt", "metric": "rt_handshakes_accepted_total", "as": "rate",
    },
    "rt.connections": {"kind": "metric", "role": "rt", "metric": "rt_connections_open"},
    "rt.up": {"kind": "service", "role": "rt"},
    "traffic.error_rate": {"kind": "metric", "role": "traffic", "metric": "traffic_error_rate"},
    "traffic.latency_p95": {
        "kind": "metric", "role": "traffic", "metric": "traffic_latency_seconds",
        "labels": {"quantile": "0.95"},
    },
}  # fmt: skip
"""Where the reference stack gives each catalogue signal (the local target's default
for `signals:` in pagerdrill.yaml, and what the repo's own pagerdrill.yaml spells out)."""
