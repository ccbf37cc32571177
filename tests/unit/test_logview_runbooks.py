"""The logs pane's and the runbook search's logic, on fixed inputs: parsing the
services' JSON lines and Redis's own format, merging by time, the errors filter, error
spans by trace_id, and runbook search ranking. (The panes on a real stack are tested in
test_tui.py.)"""

from __future__ import annotations

import datetime as dt
import json

from helpers import REPO
from pagerdrill.runbooks import load_runbooks, search
from pagerdrill.signals.logs import error_spans, matches, parse_line, problems, tail_services


def js(ts: str, level: str, message: str, trace: str | None = None, **fields) -> str:
    stamp = f"2026-11-22T10:{ts}+00:00"
    record = {"timestamp": stamp, "level": level, "service": "api", "trace_id": trace}
    return json.dumps({**record, "message": message, **fields})


def test_a_service_line_keeps_its_level_trace_and_fields():
    r = parse_line("api", js("00:01.000", "error", "GET /x 500", "ab" * 16, route="/x", status=500))
    assert (r.service, r.level, r.message, r.trace_id) == ("api", "error", "GET /x 500", "ab" * 16)
    assert r.fields == {"route": "/x", "status": 500}
    assert r.is_problem and r.clock == "10:00:01"


def test_a_redis_line_is_read_in_its_own_format_and_put_in_utc():
    r = parse_line("redis-cache", "854:M 22 Nov 2026 14:39:51.123 # Error accepting a client")
    assert r.level == "warning" and r.message == "Error accepting a client"
    local = dt.datetime(2026, 11, 22, 14, 39, 51, 123000).astimezone(dt.UTC)
    assert r.timestamp == local.isoformat(timespec="milliseconds")
    assert parse_line("redis-cache", "854:M 22 Nov 2026 14:39:51.123 * Ready").level == "notice"


def test_redis_start_up_notices_are_not_warnings_though_marked_so():
    lines = [
        "# oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
        "# Redis version=6.2.14, bits=64, commit=40305114, modified=0, pid=1, just started",
        "# Configuration loaded",
        "# Server initialized",
        "# WARNING Memory overcommit must be enabled! Without it, a background save ...",
        "# WARNING: The TCP backlog setting of 511 cannot be enforced",
        "# User requested shutdown...",
        "# Redis is now ready to exit, bye bye...",
    ]
    for line in lines:
        record = parse_line("redis-cache", f"854:M 22 Nov 2026 14:39:51.123 {line}")
        assert not record.is_problem, line
    oom = parse_line("redis-cache", "854:M 22 Nov 2026 14:39:51.123 # WARNING: OOM command")
    assert oom.is_problem


def test_plain_text_is_info_unless_it_says_error_and_broken_json_is_text():
    assert parse_line("x", "started").level == "info"
    assert parse_line("x", "Traceback (most recent call last):").level == "error"
    broken = parse_line("x", '{"level": "error", "message": ')
    assert broken.message.startswith("{") and broken.trace_id is None


class Logs:
    def __init__(self, lines: dict[str, list[str]]) -> None:
        self.lines = lines

    def services(self) -> list[str]:
        return list(self.lines)

    def logs(self, service: str, tail: int = 50) -> list[str]:
        if service == "gone":
            raise RuntimeError("container not found")
        return self.lines[service][-tail:]


def test_services_are_merged_in_time_order_and_a_failing_one_says_why():
    src = Logs({
        "api": [js("00:03.000", "info", "a3"), js("00:01.000", "info", "a1")],
        "game": [js("00:02.000", "warning", "g2"), "continuation without a stamp"],
        "gone": [],
    })  # fmt: skip
    merged = tail_services(src)
    msgs = [r.message for r in merged]
    assert msgs.index("g2") < msgs.index("continuation without a stamp") < msgs.index("a3")
    assert any("container not found" in m for m in msgs)
    assert [r.message for r in problems(merged) if r.service != "gone"] == ["g2"]


def test_a_pane_reading_each_second_parses_only_the_new_lines(monkeypatch):
    import pagerdrill.signals.logs as logview

    parsed: list[str] = []

    def counting(service: str, line: str):
        parsed.append(line)
        return parse_line(service, line)

    monkeypatch.setattr(logview, "_parse_seen", logview.functools.lru_cache(1024)(counting))
    lines = [js(f"00:{i:02d}.000", "info", f"m{i}") for i in range(40)]
    src = Logs({"api": lines[:30]})
    first = tail_services(src, tail=20)
    assert len(parsed) == 20
    src.lines["api"] = lines  # ten more lines: the tail moved by ten
    second = tail_services(src, tail=20)
    assert len(parsed) == 30 and parsed[20:] == lines[30:]
    assert [r.message for r in second] == [f"m{i}" for i in range(20, 40)]
    assert second[:10] == first[10:]


def test_filter_words_must_all_be_there_in_any_field():
    r = parse_line("api", js("00:01.000", "error", "GET /api/promotions 500", route="/api/promo"))
    assert matches(r, "promotions 500") and matches(r, "API error")
    assert not matches(r, "promotions 404")
    assert matches(r, "")


def test_error_spans_group_problem_lines_by_trace_newest_first():
    lines = [
        js("00:01.000", "error", "GET /a 500", "t1", route="/a"),
        js("00:02.000", "info", "GET /a 200", "t2"),  # not a problem: no span
        js("00:03.000", "warning", "sign-in rejected", "t3"),
        js("00:04.000", "error", "retry failed", "t1"),
        js("00:05.000", "error", "no trace"),  # no trace_id: no span
    ]
    spans = error_spans(parse_line("api", x) for x in lines)
    assert [s.trace_id for s in spans] == ["t1", "t3"]
    t1 = spans[0]
    assert t1.count == 2 and t1.operation == "/a" and t1.level == "error"
    assert t1.messages == ("GET /a 500", "retry failed")
    assert spans[1].operation == "sign-in rejected"


def test_the_repos_runbooks_load_with_the_template_sections():
    books = load_runbooks(REPO)
    assert len(books) >= 5
    assert all(b.path.name != "README.md" for b in books)
    for b in books:
        assert b.title and {"symptom", "diagnosis", "fix"} <= set(b.sections), b.path


def test_search_finds_the_runbook_for_each_seed_failure():
    books = load_runbooks(REPO)
    for query, expected in (
        ("flushdb", "redis-cache-flush.md"),
        ("handshake", "ws-handshake-storm.md"),
        ("bet_settled_queue waiting", "bullmq-queue-backpressure.md"),
        ("sign-in", "signin-failure-spike.md"),
    ):
        hits = search(books, query)
        assert hits and hits[0].runbook.path.name == expected, (query, hits[:2])


def test_no_runbooks_folder_is_no_runbooks(tmp_path):
    assert load_runbooks(tmp_path) == [] and load_runbooks(None) == []
