"""The log-event count source (`kind: log`): entries of a service matching fields in a
window, read through the local target's own log files in the service's format."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from helpers import write_workspace
from pagerdrill.signals.expressions import PRIMARY
from pagerdrill.signals.logcount import LogCountProbe
from pagerdrill.signals.probes import make_probe
from pagerdrill.signals.specs import ProbeSpec
from pagerdrill.targets.local import LocalTarget
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace import load_workspace
from pagerdrill.workspace.config import LogFormat, RoleBinding

STRUCTLOG = LogFormat(message="event", trace_id="request_id")


def line(event: str, level: str = "error", *, ago_s: float = 0.0, **fields) -> str:
    """A structlog JSON line from `ago_s` seconds ago."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago_s)
    stamp = at.isoformat().replace("+00:00", "Z")
    return json.dumps({"event": event, "level": level, "timestamp": stamp, **fields})


@pytest.fixture
def target(tmp_path) -> LocalTarget:
    """The local target, its api's log a file written here (no service started)."""
    return LocalTarget(load_workspace(write_workspace(tmp_path / "ws")))


def write_log(target: LocalTarget, lines: list[str]) -> None:
    path = target.log_path("api")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{x}\n" for x in lines))


def probe(target: LocalTarget, fmt: LogFormat | None = STRUCTLOG, **spec) -> LogCountProbe:
    roles = RoleResolver({"api": RoleBinding(service="api")}, target)
    made = make_probe(
        ProbeSpec(name="errors", kind="log", role="api", **spec),
        roles,
        target,
        {"api": fmt} if fmt else {},
    )
    assert isinstance(made, LogCountProbe)
    return made


def test_a_log_probe_counts_the_matching_events_of_its_window_and_their_rate(target):
    write_log(
        target,
        [
            line("cache.error", ago_s=3600),
            line("cache.error", ago_s=3500),
            line("cache.error", ago_s=5),
            line("request.done", "info", ago_s=4),
            line("cache.error", ago_s=2, request_id="r1"),
            line("cache.error", "warning", ago_s=1),
        ],
    )
    sample = probe(target, match={"event": "cache.error"}, window_s=30).sample(None)
    assert (sample[PRIMARY], sample["count"], sample["rate"]) == (3, 3, 0.1)
    errors = probe(target, match={"event": "cache.error", "level": "ERROR"}).sample(None)
    assert errors[PRIMARY] == 2


def test_a_log_probe_counts_by_level_and_above(target):
    write_log(
        target,
        [line("a", "info"), line("b", "warning"), line("c", "error"), line("d", "critical")],
    )
    assert probe(target, min_level="error").sample(None)[PRIMARY] == 2
    assert probe(target, min_level="warning").sample(None)[PRIMARY] == 3


def test_a_log_probe_matches_other_fields_as_text(target):
    write_log(target, [line("http", "info", status=500), line("http", "info", status=200)])
    assert probe(target, match={"status": "500"}).sample(None)[PRIMARY] == 1


def test_a_log_probe_check_resolves_on_a_log_with_recent_entries(target):
    write_log(target, [line("request.done", "info", ago_s=1)])
    assert probe(target).check(None) is None


def test_a_log_probe_check_says_when_the_log_is_empty_stale_or_has_no_times(target):
    p = probe(target, window_s=30)
    assert p.check(None) == "no log lines from service api"
    write_log(target, [line("request.done", "info", ago_s=600)])
    message = p.check(None)
    assert message is not None
    assert message.startswith("no log lines from service api in the last 30 s (the newest: ")
    write_log(target, ['{"event": "x", "level": "info"}'])
    assert p.check(None) == (
        "the log of service api has no entry with a time pagerdrill can read "
        "(field timestamp; the last line: 'x')"
    )
    assert p.sample(None)[PRIMARY] == 0


def test_a_log_probe_reads_the_reference_format_when_the_workspace_gives_none(target):
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    reference = {"timestamp": stamp, "level": "warning", "message": "sign-in failed"}
    write_log(target, [json.dumps(reference)])
    p = probe(target, fmt=None, match={"message": "sign-in failed"})
    assert p.sample(None)[PRIMARY] == 1


def test_a_scenario_may_alert_on_a_log_count_and_a_streams_pending_entries(tmp_path):
    from helpers import REPO
    from pagerdrill.errors import PagerdrillError
    from pagerdrill.scenarios.model import load_scenario

    text = (REPO / "scenarios" / "redis-cache-flush.yaml").read_text()
    probes = (
        "probes:\n"
        "  - {name: errors, kind: log, role: api, match: {event: cache.error}, window_s: 10}\n"
        "  - {name: jobs, kind: queue, role: queue, queue_type: stream, key: events,"
        " group: workers}\n"
    )
    mine = text.replace("probes:\n", probes, 1).replace(
        "expr: misses > ${miss_alert}", "expr: errors.rate > 0.5 or jobs.pending > 3"
    )
    path = tmp_path / "log-alert.yaml"
    path.write_text(mine)
    loaded = load_scenario(path).model
    kinds = {p.name: (p.kind, p.queue_type) for p in loaded.probes}
    assert kinds["errors"] == ("log", None) and kinds["jobs"] == ("queue", "stream")
    path.write_text(mine.replace("errors.rate > 0.5", "errors.latency_ms > 0.5"))
    with pytest.raises(PagerdrillError) as err:
        load_scenario(path)
    assert "latency_ms" in str(err.value)


def test_a_probe_setting_of_another_kind_of_probe_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="match: only a log probe reads it"):
        ProbeSpec(name="x", kind="metric", role="api", metric="m", match={"event": "e"})
    with pytest.raises(ValidationError, match="queue_type, key: only a queue probe reads it"):
        ProbeSpec(name="x", kind="log", role="api", queue_type="list", key="jobs")


def test_the_log_probes_of_one_service_read_its_log_once_a_cycle(target, monkeypatch):
    from pagerdrill.signals.probes import Cycle

    write_log(target, [line("cache.error"), line("request.done", "info")])
    reads: list[str] = []
    real = target.logs

    def counted(service: str, tail: int = 50) -> list[str]:
        reads.append(service)
        return real(service, tail)

    monkeypatch.setattr(target, "logs", counted)
    errors = probe(target, match={"event": "cache.error"})
    everything = probe(target)
    cycle = Cycle(http=None, now=0.0)  # type: ignore[arg-type]
    assert (errors.sample(cycle)[PRIMARY], everything.sample(cycle)[PRIMARY]) == (1, 2)
    assert reads == ["api"]
    errors.sample(Cycle(http=None, now=1.0))  # type: ignore[arg-type]
    assert reads == ["api", "api"]
