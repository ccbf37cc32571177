"""Logs of any service: JSON with the team's field names (lines written by structlog
itself), plain text read by a pattern (lines written by Python's logging), and
entries over several lines (a Python traceback, a Java stack trace) grouped into one."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import structlog

from pagerdrill.errors import ConfigError
from pagerdrill.signals.logs import (
    error_spans,
    iso_time,
    level_name,
    matches,
    parse_line,
    parse_lines,
    problems,
    tail_services,
)
from pagerdrill.workspace import load_workspace
from pagerdrill.workspace.config import LogFormat

STRUCTLOG = LogFormat(message="event", trace_id="request_id")
"""What a FastAPI team on structlog writes: `event`, `level`, `timestamp`, `request_id`."""


def structlog_lines(emit, *, fmt: str | None = "iso") -> list[str]:
    """Lines as structlog's JSON renderer writes them, from `emit(log)`."""
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt=fmt, utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    try:
        emit(structlog.get_logger())
    finally:
        structlog.reset_defaults()
    return out.getvalue().splitlines()


def logging_lines(emit, fmt: str) -> list[str]:
    """Lines as Python's logging writes them with the format `fmt`, from `emit(logger)`."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(fmt))
    logger = logging.getLogger("shop.api")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return out.getvalue().splitlines()


def test_a_structlog_line_shows_its_event_as_the_message_and_its_request_id_as_the_trace():
    lines = structlog_lines(
        lambda log: log.warning("cache.miss", request_id="req-7f3a", key="market:77")
    )
    record = parse_line("api", lines[0], STRUCTLOG)
    assert record.message == "cache.miss"
    assert record.level == "warning" and record.is_problem
    assert record.trace_id == "req-7f3a"
    assert record.fields == {"key": "market:77"}
    assert record.timestamp is not None and record.timestamp.endswith("+00:00")
    # the reference format reads the same line with no message: what the issue saw
    assert parse_line("api", lines[0]).message == ""


def test_a_structlog_exception_shows_its_traceback_under_the_entry():
    def emit(log):
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            log.exception("order.failed", request_id="req-1")

    (line,) = structlog_lines(emit)
    record = parse_line("api", line, STRUCTLOG)
    assert (record.message, record.level) == ("order.failed", "error")
    assert record.detail[0] == "Traceback (most recent call last):"
    assert record.detail[-1] == "ZeroDivisionError: division by zero"
    assert "exception" not in record.fields
    assert matches(record, "ZeroDivisionError")


def test_epoch_times_and_other_spellings_of_levels_are_read():
    (line,) = structlog_lines(lambda log: log.error("boom"), fmt=None)
    record = parse_line("api", line, STRUCTLOG)
    assert record.timestamp is not None and record.timestamp[:2] == "20"
    assert [level_name(x) for x in ("WARN", "err", "Fatal", "INFO", 50, 40)] == [
        "warning",
        "error",
        "critical",
        "info",
        "error",  # pino's numbers
        "warning",
    ]
    assert iso_time("2026-12-02 10:11:12,345") == "2026-12-02T10:11:12.345+00:00"
    assert iso_time("2026-12-02T10:11:12+02:00") == "2026-12-02T08:11:12.000+00:00"


def test_a_json_entry_with_none_of_the_message_fields_shows_its_fields_not_a_blank():
    record = parse_line("api", '{"level": "error", "status": 502}', STRUCTLOG)
    assert record.message == "status=502"


TEXT = LogFormat(
    format="text",
    pattern=r"(?P<time>\S+ \S+) (?P<level>[A-Z]+) \[(?P<logger>[^\]]+)\] (?P<message>.*)",
    multiline=True,
)
"""Python logging's `%(asctime)s %(levelname)s [%(name)s] %(message)s`."""


def test_a_plain_text_log_is_read_by_its_pattern_with_extra_groups_as_fields():
    lines = logging_lines(
        lambda log: log.warning("slow query took %d ms", 812),
        "%(asctime)s %(levelname)s [%(name)s] %(message)s",
    )
    record = parse_line("worker", lines[0], TEXT)
    assert (record.message, record.level) == ("slow query took 812 ms", "warning")
    assert record.fields == {"logger": "shop.api"}
    assert record.timestamp is not None and "T" in record.timestamp
    # a line the pattern misses is still shown, as plain text
    assert parse_line("worker", "something else", TEXT).message == "something else"


def test_a_python_traceback_in_a_text_log_is_one_entry_with_the_error():
    def emit(log):
        log.info("request started")
        try:
            {}["missing"]
        except KeyError:
            log.exception("request failed")
        log.info("request finished")

    lines = logging_lines(emit, "%(asctime)s %(levelname)s [%(name)s] %(message)s")
    assert len(lines) > 5
    records = parse_lines("worker", lines, TEXT)
    assert [r.message for r in records] == ["request started", "request failed", "request finished"]
    failed = records[1]
    assert failed.level == "error"
    assert failed.detail[0] == "Traceback (most recent call last):"
    assert failed.detail[-1] == "KeyError: 'missing'"
    assert problems(records) == [failed]
    # without `multiline` each line is an entry of its own
    flat = parse_lines("worker", lines, TEXT.model_copy(update={"multiline": False}))
    assert len(flat) == len(lines)


JAVA = """\
2026-12-02 10:00:01.001 ERROR [http-nio-8080-exec-3] c.e.OrderController - order failed
java.lang.IllegalStateException: stock went negative
\tat com.example.Stock.take(Stock.java:42)
\tat com.example.OrderController.place(OrderController.java:17)
Caused by: java.sql.SQLException: deadlock detected
\tat org.postgresql.core.QueryExecutor.execute(QueryExecutor.java:120)
\t... 5 more
2026-12-02 10:00:01.200 INFO  [http-nio-8080-exec-4] c.e.OrderController - order placed
"""


def test_a_java_stack_trace_continues_the_entry_it_follows():
    fmt = LogFormat(
        format="text",
        pattern=r"(?P<time>\S+ \S+) (?P<level>[A-Z]+)\s+\[(?P<thread>[^\]]+)\] "
        r"(?P<logger>\S+) - (?P<message>.*)",
        multiline=True,
    )
    records = parse_lines("orders", JAVA.splitlines(), fmt)
    assert [(r.level, r.message) for r in records] == [
        ("error", "order failed"),
        ("info", "order placed"),
    ]
    assert records[0].detail[0] == "java.lang.IllegalStateException: stock went negative"
    assert records[0].detail[-1] == "\t... 5 more"
    assert len(records[0].detail) == 6


def test_a_raw_traceback_between_json_lines_is_one_error_entry_of_its_own():
    fmt = STRUCTLOG.model_copy(update={"multiline": True})
    before = structlog_lines(lambda log: log.info("request.started"))
    after = structlog_lines(lambda log: log.info("request.finished"))
    traceback = [
        "Traceback (most recent call last):",
        '  File "/app/main.py", line 12, in handler',
        "    raise ValueError(order_id)",
        "ValueError: 77",
    ]
    records = parse_lines("api", [*before, *traceback, "  " + after[0]], fmt)
    assert [r.message for r in records] == [
        "request.started",
        "Traceback (most recent call last):",
        "request.finished",
    ]
    assert records[1].level == "error"
    assert records[1].detail == tuple(traceback[1:])


def test_the_error_spans_group_a_teams_lines_by_its_request_id():
    def emit(log):
        log.warning("payment.retry", request_id="req-a", route="/api/pay")
        log.info("payment.ok", request_id="req-b")
        log.error("payment.failed", request_id="req-a", route="/api/pay")

    records = [parse_line("api", line, STRUCTLOG) for line in structlog_lines(emit)]
    (span,) = error_spans(records)
    assert (span.trace_id, span.count, span.level, span.route) == ("req-a", 2, "error", "/api/pay")


class Logs:
    def __init__(self, lines: dict[str, list[str]]) -> None:
        self.lines = lines

    def services(self) -> list[str]:
        return list(self.lines)

    def logs(self, service: str, tail: int = 50) -> list[str]:
        return self.lines[service][-tail:]


def test_the_merged_logs_read_each_service_in_its_own_format():
    api = structlog_lines(lambda log: log.error("db.timeout", request_id="r1"))
    ref = '{"timestamp": "2026-12-02T00:00:00.000+00:00", "level": "info", "message": "up"}'
    merged = tail_services(Logs({"api": api, "game": [ref]}), formats={"api": STRUCTLOG})
    assert {(r.service, r.message) for r in merged} == {("api", "db.timeout"), ("game", "up")}


def _load(tmp_path: Path, logs_yaml: str):
    (tmp_path / "pagerdrill.yaml").write_text("version: 1\nlogs:\n" + logs_yaml)
    return load_workspace(tmp_path)


def test_log_formats_load_from_pagerdrill_yaml_with_one_name_or_a_list(tmp_path):
    ws = _load(
        tmp_path,
        "  api:\n    message: [event, msg]\n    trace_id: request_id\n    multiline: true\n",
    )
    fmt = ws.config.logs["api"]
    assert (fmt.message, fmt.trace_id, fmt.multiline) == (("event", "msg"), ("request_id",), True)


@pytest.mark.parametrize(
    ("logs_yaml", "line", "expected"),
    [
        ("  game:\n    format: text\n", 3, "a text log format needs `pattern`"),
        ("  game:\n    format: text\n    pattern: '(?P<message'\n", 5, "bad regular expression"),
        ("  game:\n    mesage: event\n", 4, "mesage"),
    ],
)
def test_a_bad_log_format_is_refused_naming_the_file_and_line(tmp_path, logs_yaml, line, expected):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, logs_yaml)
    text = str(err.value)
    assert "pagerdrill.yaml" in text and expected in text
    assert err.value.problems[0][0] == line


def test_a_log_format_for_a_service_the_local_stack_does_not_have_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "  apii:\n    message: event\n")
    assert err.value.problems[0][0] == 3
    assert "logs.apii: unknown service 'apii'" in str(err.value)
    assert "(did you mean 'api'?)" in str(err.value)
