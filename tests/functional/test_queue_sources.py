"""Queue sources beside BullMQ: a Redis list, a Redis stream with a consumer group,
Celery's broker queues and RQ's, each read from a real Redis server filled by the
queue's own client where there is one (kombu for Celery, rq for RQ)."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helpers import pid_alive, wait_for
from pagerdrill.errors import BadInputError
from pagerdrill.signals.expressions import PRIMARY
from pagerdrill.signals.probes import QueueProbe, make_probe
from pagerdrill.signals.queues import CeleryQueue, ListQueue, RqQueue, StreamQueue
from pagerdrill.signals.specs import ProbeSpec
from pagerdrill.targets.local import find_redis_server
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace.config import RoleBinding

PASSWORD = "s3cret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real Redis server of its own on loopback, with a password, always stopped."""
    port = _free_port()
    folder: Path = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            str(find_redis_server(None)),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--requirepass",
            PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    try:

        def answers() -> bool:
            try:
                return bool(redis.Redis.from_url(url).ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, 20, "the test's Redis server")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert not pid_alive(proc.pid)


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def _probe(redis_url: str, *, binding: dict | None = None, **spec):
    roles = RoleResolver(
        {"queue": RoleBinding(service="redis", redis_url=redis_url, **(binding or {}))},
        target=None,  # type: ignore[arg-type]  # bindings name everything: never asked
    )
    return make_probe(ProbeSpec(name="q", kind="queue", role="queue", **spec), roles, None)  # type: ignore[arg-type]


def test_the_queue_type_comes_from_the_probe_then_the_binding_and_defaults_to_bullmq(redis_url):
    assert isinstance(_probe(redis_url, binding={"queue": "jobs"}), QueueProbe)
    by_binding = _probe(redis_url, binding={"queue": "jobs", "queue_type": "list"})
    assert isinstance(by_binding, ListQueue)
    assert by_binding.queue == "jobs"
    by_probe = _probe(redis_url, binding={"queue_type": "list"}, queue_type="rq", key="emails")
    assert isinstance(by_probe, RqQueue)
    assert by_probe.queue == "emails"


def test_a_queue_with_no_name_anywhere_is_bad_input_naming_both_places(redis_url):
    with pytest.raises(BadInputError) as err:
        _probe(redis_url, queue_type="list")
    assert "the probe's `key` or roles.queue.queue" in str(err.value)


def test_a_list_queue_counts_the_jobs_in_the_list_and_check_finds_the_key(r, redis_url):
    probe = _probe(redis_url, queue_type="list", key="jobs")
    r.lpush("jobs", "a", "b", "c")
    sample = probe.sample(None)
    assert sample[PRIMARY] == sample["waiting"] == 3
    assert sample["failed"] is None  # a plain list has no failed jobs to count
    assert probe.check(None) is None
    r.rpop("jobs", 3)
    assert probe.sample(None)["waiting"] == 0


def test_an_empty_list_its_consumer_waits_on_in_a_blocking_pop_is_found_by_check(r, redis_url):
    probe = _probe(redis_url, queue_type="list", key="jobs")
    assert probe.check(None) is not None  # missing, and nobody waits on a list
    consumer = redis.Redis.from_url(redis_url)
    waiting = threading.Thread(target=consumer.brpop, args=(["jobs"],), kwargs={"timeout": 10})
    waiting.start()
    try:
        wait_for(lambda: probe.check(None) is None, 5, "the consumer's BRPOP seen by check")
        assert probe.sample(None)["waiting"] == 0
    finally:
        r.lpush("jobs", "done")  # the consumer takes it and returns
        waiting.join(15)
        consumer.close()


def test_a_list_queue_check_says_the_key_is_missing_or_of_another_type(r, redis_url):
    probe = _probe(redis_url, queue_type="list", key="jobs")
    message = probe.check(None)
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    assert message is not None
    assert message.startswith(f"queue list `jobs` on redis://127.0.0.1:{port}/0: key missing")
    assert PASSWORD not in message
    r.hset("jobs", "x", "1")
    assert probe.check(None) == (
        f"queue list `jobs` on redis://127.0.0.1:{port}/0: the key is a hash, not a list"
    )


def test_a_queue_whose_redis_is_down_samples_none_and_check_says_redis_did_not_answer():
    probe = _probe(f"redis://127.0.0.1:{_free_port()}/0", queue_type="list", key="jobs")
    assert probe.sample(None)[PRIMARY] is None
    message = probe.check(None)
    assert message is not None and "Redis did not answer (ConnectionError" in message


def test_a_stream_counts_its_length_the_groups_lag_and_pending_entries(r, redis_url):
    r.xgroup_create("events", "workers", id="0", mkstream=True)
    for i in range(5):
        r.xadd("events", {"n": i})
    probe = _probe(redis_url, queue_type="stream", key="events", group="workers")
    first = probe.sample(None)
    assert (first[PRIMARY], first["length"], first["pending"]) == (5, 5, 0)
    delivered = r.xreadgroup("workers", "w1", {"events": ">"}, count=2)
    ids = [entry_id for entry_id, _ in delivered[0][1]]
    second = probe.sample(None)
    assert (second["waiting"], second["length"], second["pending"]) == (3, 5, 2)
    r.xack("events", "workers", ids[0])
    assert probe.sample(None)["pending"] == 1
    assert probe.check(None) is None


def test_a_stream_without_a_group_waits_its_length(r, redis_url):
    r.xadd("events", {"n": 1})
    r.xadd("events", {"n": 2})
    sample = _probe(redis_url, queue_type="stream", key="events").sample(None)
    assert (sample[PRIMARY], sample["pending"]) == (2, None)


def test_a_stream_check_names_a_missing_group_and_the_groups_it_has(r, redis_url):
    probe = _probe(redis_url, queue_type="stream", key="events", group="workers")
    assert probe.check(None).endswith(": key missing")
    r.xgroup_create("events", "billing", id="0", mkstream=True)
    message = probe.check(None)
    assert message.startswith("stream `events` on redis://127.0.0.1:")
    assert message.endswith("has no group `workers` (its groups: `billing`)")
    assert probe.sample(None)["waiting"] is None  # no such group: nothing to say it waits


def test_a_stream_group_named_in_the_binding_is_used(r, redis_url):
    r.xgroup_create("events", "workers", id="0", mkstream=True)
    r.xadd("events", {"n": 1})
    probe = _probe(
        redis_url, binding={"queue": "events", "queue_type": "stream", "queue_group": "workers"}
    )
    assert isinstance(probe, StreamQueue)
    assert probe.sample(None)["pending"] == 0


def test_a_celery_queue_counts_kombus_lists_priorities_included_and_its_unacked(r, redis_url):
    """Filled by kombu, the messaging library Celery publishes and consumes with on a
    Redis broker, so the keys are the ones a Celery app writes."""
    from kombu import Connection, Exchange, Queue

    queue = Queue("celery", Exchange("celery", type="direct"), routing_key="celery")
    with Connection(redis_url) as conn:
        producer = conn.Producer()
        for i in range(3):
            producer.publish(
                {"task": "t", "n": i},
                exchange=queue.exchange,
                routing_key="celery",
                declare=[queue],
            )
        producer.publish(
            {"task": "urgent"},
            exchange=queue.exchange,
            routing_key="celery",
            priority=9,
            declare=[queue],
        )
        probe = _probe(redis_url, queue_type="celery", key="celery")
        assert isinstance(probe, CeleryQueue)
        assert r.llen("celery\x06\x169") == 1  # kombu's priority list, as the probe reads it
        before = probe.sample(None)
        assert (before[PRIMARY], before["pending"]) == (4, 0)
        message = queue(conn.default_channel).get(no_ack=False)
        assert message is not None
        after = probe.sample(None)
        assert (after["waiting"], after["pending"]) == (3, 1)
        message.ack()
        assert probe.sample(None)["pending"] == 0
        assert probe.check(None) is None
        while (m := queue(conn.default_channel).get(no_ack=True)) is not None:
            assert m.payload
    # drained: kombu deletes nothing but the lists, and its binding still names the queue
    assert not r.exists("celery")
    assert probe.check(None) is None


def test_a_celery_queue_nobody_declared_is_named_in_check(r, redis_url):
    message = _probe(redis_url, queue_type="celery", key="emails").check(None)
    assert message is not None
    assert message.startswith("Celery queue `emails` on redis://127.0.0.1:")
    assert message.endswith(
        "no list `emails` and no kombu binding names it "
        "(no worker or producer has declared it on this broker)"
    )


def _ok() -> str:
    return "done"


def test_an_rq_queue_counts_waiting_failed_and_finished_jobs_from_rqs_own_keys(r, redis_url):
    from rq import Queue, SimpleWorker

    q = Queue("default", connection=r)
    q.enqueue(_ok)
    q.enqueue("math.sqrt", -1)  # raises ValueError in the worker: a failed job
    probe = _probe(redis_url, queue_type="rq", key="default")
    assert probe.sample(None)[PRIMARY] == 2
    SimpleWorker([q], connection=r).work(burst=True)
    done = probe.sample(None)
    assert (done["waiting"], done["active"], done["failed"], done["completed"]) == (0, 0, 1, 1)
    assert probe.check(None) is None  # an emptied RQ queue is still one of rq:queues
    q.enqueue(_ok)
    assert probe.sample(None)["waiting"] == 1


def test_an_rq_queue_check_lists_the_queues_rq_has(r, redis_url):
    from rq import Queue

    Queue("default", connection=r).enqueue(_ok)
    message = _probe(redis_url, queue_type="rq", key="emails").check(None)
    assert message is not None
    assert message.endswith(
        "RQ queue `emails` on redis://127.0.0.1:"
        f"{redis_url.rsplit(':', 1)[1]}: not in rq:queues "
        "(RQ's queues there: `default`)"
    )


def test_scenarios_check_asks_no_queue_binding_of_a_probe_that_names_its_key(tmp_path):
    from helpers import REPO
    from pagerdrill.refstack.spec import REFERENCE_ROLES
    from pagerdrill.scenarios.check import check_bindings
    from pagerdrill.scenarios.model import load_scenario

    text = (REPO / "scenarios" / "bullmq-backpressure.yaml").read_text()
    path = tmp_path / "list-backpressure.yaml"
    signal = "{name: waiting, signal: queue.waiting}"
    assert signal in text
    path.write_text(
        text.replace(
            signal, "{name: waiting, kind: queue, role: queue, queue_type: list, key: jobs}"
        )
    )
    bindings = {role: RoleBinding.model_validate(raw) for role, raw in REFERENCE_ROLES.items()}
    bindings["queue"] = RoleBinding(service="redis-cache", redis_url="redis://127.0.0.1:6390/0")
    missing, unknown = check_bindings(load_scenario(path).model, bindings, None, True)
    assert not [line for line in missing + unknown if "roles.queue.queue" in line]
    # the BullMQ probe still needs its queue's name
    path.write_text(text.replace(signal, "{name: waiting, kind: queue, role: queue}"))
    missing, _ = check_bindings(load_scenario(path).model, bindings, None, True)
    assert any(line.startswith("roles.queue.queue: no BullMQ queue name known") for line in missing)
