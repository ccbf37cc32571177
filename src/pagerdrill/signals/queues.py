"""Queues on Redis other than BullMQ's: a plain list, a stream read by a consumer
group, Celery's broker queues (kombu's Redis layout) and RQ's.

Each probe reads its counts in one round trip. The primary value is the number of
jobs waiting; `active`, `failed`, `pending` and the others are there where the
queue's own layout has them, else None. Like every probe, `sample` never raises;
`check` reads once and says in one line what it found when the queue is not there.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, ClassVar

from pagerdrill.errors import BadInputError
from pagerdrill.signals.expressions import PRIMARY
from pagerdrill.signals.probes import Cycle, Probe, Sample
from pagerdrill.signals.specs import ProbeSpec, QueueType
from pagerdrill.targets.roles import RoleResolver

FIELDS = (PRIMARY, "waiting", "active", "delayed", "failed", "completed", "pending", "length")

KOMBU_SEP = "\x06\x16"
"""kombu's separator in its Redis keys (`celery\\x06\\x163`) and binding members."""
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
"""kombu's default priority steps: a message of priority p > 0 goes to the list
`<queue><sep><p>`, priority 0 to `<queue>` itself."""
KOMBU_UNACKED = "unacked"
"""kombu's hash of messages delivered to a worker and not yet acknowledged, one for
every queue of the broker's database."""
KOMBU_BINDINGS = "_kombu.binding.*"
"""kombu's sets of an exchange's bindings; a member ends with the queue's name."""


def queue_type(spec: ProbeSpec, roles: RoleResolver) -> QueueType:
    """The probe's own `queue_type`, else its role's, else BullMQ."""
    return spec.queue_type or roles.binding(spec.role or "").queue_type or "bullmq"


def _shown(url: str) -> str:
    """A Redis URL as a message may print it: without its password."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class RedisQueueProbe(Probe):
    """A queue whose jobs sit in keys of the role's Redis."""

    TYPE: ClassVar[str]
    WHAT: ClassVar[str]
    """How a message names it: "queue list", "stream", "Celery queue", "RQ queue"."""

    def __init__(self, spec: ProbeSpec, roles: RoleResolver):
        super().__init__(spec)
        import redis

        name = spec.key or roles.binding(spec.role or "").queue
        if not name:
            raise BadInputError(
                f"probe {spec.name}: role '{spec.role}' "
                f"(service {roles.service(spec.role or '')}): "
                f"no {self.TYPE} queue name known; set the probe's `key` or "
                f"roles.{spec.role}.queue in pagerdrill.yaml"
            )
        self.queue = name
        self.url = roles.redis_url(spec.role or "")
        self.client = redis.Redis.from_url(
            self.url, socket_timeout=spec.timeout_s, socket_connect_timeout=spec.timeout_s
        )

    @property
    def where(self) -> str:
        return f"{self.WHAT} `{self.queue}` on {_shown(self.url)}"

    def counts(self) -> dict[str, Any]:
        raise NotImplementedError

    def problem(self) -> str | None:
        """What is wrong with the queue's keys, read once; None when it is there."""
        raise NotImplementedError

    def sample(self, cycle: Cycle) -> Sample:
        import redis

        out: Sample = dict.fromkeys(FIELDS)
        try:
            out.update(self.counts())
        except (redis.RedisError, OSError):
            return dict.fromkeys(FIELDS)
        out[PRIMARY] = out["waiting"]
        return out

    def check(self, cycle: Cycle) -> str | None:
        import redis

        try:
            found = self.problem()
        except (redis.RedisError, OSError) as exc:
            return f"{self.where}: Redis did not answer ({type(exc).__name__}: {exc})"
        return f"{self.where}: {found}" if found else None

    def _kind_of(self, key: str) -> str:
        return _text(self.client.type(key))

    def close(self) -> None:
        self.client.close()


class ListQueue(RedisQueueProbe):
    """A plain Redis list a producer pushes to and a consumer pops from (LLEN)."""

    TYPE = "list"
    WHAT = "queue list"

    def counts(self) -> dict[str, Any]:
        return {"waiting": self.client.llen(self.queue)}

    def problem(self) -> str | None:
        kind = self._kind_of(self.queue)
        if kind == "list":
            return None
        if kind == "none":
            # Redis deletes a list when its last item goes: an idle queue whose consumer
            # waits in a blocking pop is empty, not missing (Redis does not say on which
            # list a client waits, so any such consumer counts)
            if self._consumer_waiting():
                return None
            return (
                "key missing, and no client waits on a list here (Redis keeps no empty "
                "list: check the name, or queue a job)"
            )
        return f"the key is a {kind}, not a list"

    BLOCKING_POPS = frozenset({"brpop", "blpop", "brpoplpush", "blmove", "blmpop"})

    def _consumer_waiting(self) -> bool:
        clients = self.client.client_list()
        return any(_text(c.get("cmd", "")).lower() in self.BLOCKING_POPS for c in clients)


class StreamQueue(RedisQueueProbe):
    """A Redis stream: its length, and for a consumer group the entries it has not yet
    been given (waiting: the group's lag) and those given but not acknowledged
    (pending, XPENDING). Without a group, waiting is the stream's length."""

    TYPE = "stream"
    WHAT = "stream"
    LAG_SCAN = 10_000
    """When Redis cannot tell a group's lag (before 7.0, or after deletions), the
    entries after its last delivered id are counted, up to this many."""

    def __init__(self, spec: ProbeSpec, roles: RoleResolver):
        super().__init__(spec, roles)
        self.group = spec.group or roles.binding(spec.role or "").queue_group

    def _group_info(self) -> dict[str, Any] | None:
        for info in self.client.xinfo_groups(self.queue):
            if _text(info.get("name")) == self.group:
                return dict(info)
        return None

    def counts(self) -> dict[str, Any]:
        import redis

        try:
            length = self.client.xlen(self.queue)
        except redis.ResponseError:  # a key of another type: nothing to read
            return {}
        if not self.group:
            return {"waiting": length, "length": length}
        try:
            info = self._group_info()
        except redis.ResponseError:  # no such stream (XLEN reads it as 0)
            info = None
        if info is None:
            return {"length": length}
        lag = info.get("lag")
        if lag is None:
            last = _text(info.get("last-delivered-id", "0-0"))
            lag = len(self.client.xrange(self.queue, f"({last}", "+", count=self.LAG_SCAN) or [])
        return {"waiting": lag, "length": length, "pending": info.get("pending", 0)}

    def problem(self) -> str | None:
        kind = self._kind_of(self.queue)
        if kind == "none":
            return "key missing"
        if kind != "stream":
            return f"the key is a {kind}, not a stream"
        if self.group and self._group_info() is None:
            names = [_text(g.get("name")) for g in self.client.xinfo_groups(self.queue)]
            have = ", ".join(f"`{n}`" for n in names) if names else "none"
            return f"has no group `{self.group}` (its groups: {have})"
        return None


class CeleryQueue(RedisQueueProbe):
    """Celery on a Redis broker (kombu's layout): the list named after the queue (the
    default queue is `celery`) and its priority lists `<queue>\\x06\\x16<p>`; pending
    is kombu's unacknowledged messages (one hash for the whole broker database)."""

    TYPE = "celery"
    WHAT = "Celery queue"

    def _lists(self) -> list[str]:
        return [
            self.queue if p == 0 else f"{self.queue}{KOMBU_SEP}{p}" for p in KOMBU_PRIORITY_STEPS
        ]

    def counts(self) -> dict[str, Any]:
        pipe = self.client.pipeline(transaction=False)
        for key in self._lists():
            pipe.llen(key)
        pipe.hlen(KOMBU_UNACKED)
        *lengths, unacked = pipe.execute()
        return {"waiting": sum(lengths), "pending": unacked}

    def problem(self) -> str | None:
        for key in self._lists():
            kind = self._kind_of(key)
            if kind == "list":
                return None
            if kind != "none":
                return f"the key {key!r} is a {kind}, not kombu's list"
        # an empty queue has no list: kombu's bindings say whether it was declared
        for binding in self.client.scan_iter(match=KOMBU_BINDINGS, count=100):
            for member in self.client.smembers(binding):
                if _text(member).split(KOMBU_SEP)[-1] == self.queue:
                    return None
        return (
            f"no list `{self.queue}` and no kombu binding names it "
            "(no worker or producer has declared it on this broker)"
        )


class RqQueue(RedisQueueProbe):
    """RQ: the job ids waiting in `rq:queue:<name>`, and its registries: started
    (`rq:wip:<name>`, active), failed, scheduled (delayed) and finished (completed)."""

    TYPE = "rq"
    WHAT = "RQ queue"
    PREFIX = "rq"

    def counts(self) -> dict[str, Any]:
        p, q = self.PREFIX, self.queue
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(f"{p}:queue:{q}")
        for registry in ("wip", "failed", "scheduled", "finished"):
            pipe.zcard(f"{p}:{registry}:{q}")
        waiting, active, failed, delayed, completed = pipe.execute()
        return {
            "waiting": waiting,
            "active": active,
            "failed": failed,
            "delayed": delayed,
            "completed": completed,
        }

    def problem(self) -> str | None:
        key = f"{self.PREFIX}:queue:{self.queue}"
        # RQ lists every queue it has put a job in under rq:queues, empty ones too
        if self.client.sismember(f"{self.PREFIX}:queues", key) or self._kind_of(key) == "list":
            return None
        prefix = f"{self.PREFIX}:queue:"
        names = sorted(
            _text(k).removeprefix(prefix) for k in self.client.smembers(f"{self.PREFIX}:queues")
        )
        have = ", ".join(f"`{n}`" for n in names) if names else "none"
        return f"not in {self.PREFIX}:queues (RQ's queues there: {have})"


QUEUES: dict[str, type[RedisQueueProbe]] = {
    "list": ListQueue,
    "stream": StreamQueue,
    "celery": CeleryQueue,
    "rq": RqQueue,
}


def make_queue_probe(spec: ProbeSpec, roles: RoleResolver, kind: str) -> RedisQueueProbe:
    return QUEUES[kind](spec, roles)
