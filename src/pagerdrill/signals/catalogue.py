"""The signal catalogue: what scenarios may watch, named by role and meaning.

A scenario says `signal: cache.miss_rate`; the workspace's `signals:` section says
where that is read on its stack (a metric, a PromQL query, an HTTP probe, a queue, a
log count). Each name has one unit and one meaning, so a threshold written in a
scenario means the same on every stack that maps it. A mapped signal's value is the
catalogue's value in the catalogue's unit: the mapping must deliver it so (a rate
for a `/s`, a share 0..1 for a share, seconds for a latency).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    name: str
    unit: str
    meaning: str


CATALOGUE: tuple[Signal, ...] = (
    Signal("api.error_rate", "1/s", "responses with a 5xx status, per second"),
    Signal("api.latency_p95", "s", "95th percentile of the api's request latency"),
    Signal("api.up", "0/1", "the api is running and healthy"),
    Signal("api.read_latency_ms", "ms", "latency of one read the probe makes itself"),
    Signal("auth.failure_rate", "1/s", "sign-ins refused, per second"),
    Signal("auth.signin_rate", "1/s", "sign-ins accepted, per second"),
    Signal("cache.miss_rate", "1/s", "reads that missed the cache, per second"),
    Signal("cache.hit_rate", "1/s", "reads served from the cache, per second"),
    Signal("cache.keys", "keys", "keys held by the cache"),
    Signal("queue.waiting", "jobs", "jobs waiting to be processed"),
    Signal("queue.delayed", "jobs", "jobs scheduled for later"),
    Signal("queue.processed_rate", "1/s", "jobs processed, per second"),
    Signal("queue.produced_rate", "1/s", "jobs added, per second"),
    Signal("queue.unaccounted", "jobs", "jobs added that are neither queued nor processed"),
    Signal("rt.refused_rate", "1/s", "handshakes refused by the throttle, per second"),
    Signal("rt.blocked_rate", "1/s", "handshakes refused from blocked sources, per second"),
    Signal("rt.handshake_rate", "1/s", "realtime handshakes accepted, per second"),
    Signal("rt.connections", "connections", "realtime connections open"),
    Signal("rt.up", "0/1", "the realtime gateway is running and healthy"),
    Signal("traffic.error_rate", "share", "share of client requests that failed (0 to 1)"),
    Signal("traffic.latency_p95", "s", "95th percentile of client-side request latency"),
)

BY_NAME: dict[str, Signal] = {s.name: s for s in CATALOGUE}


def unknown_signal(name: str) -> str | None:
    """Why `name` is not a catalogue signal (with the closest name), else None."""
    if name in BY_NAME:
        return None
    from pagerdrill.errors import did_you_mean

    close = did_you_mean(name, list(BY_NAME))
    hint = f" (did you mean '{close}'?)" if close else ""
    return f"'{name}' is not a catalogue signal{hint}; see the README's Signals table"
