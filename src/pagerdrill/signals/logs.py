"""The services' logs, read the way an on-call engineer reads Loki and Jaeger.

The reference services write one JSON object per line (timestamp, level, service,
trace_id, message, and fields such as route and status); Redis writes its own text
format. `parse_line` reads both. `tail_services` merges the last lines of every
service in time order (the stand-in for a Loki query), and `error_spans` groups the
warning and error lines that carry a trace_id by trace (the stand-in for Jaeger's
"error spans of the last 15 minutes").
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

LEVELS = {"debug": 10, "info": 20, "notice": 25, "warning": 30, "error": 40, "critical": 50}
PROBLEM = LEVELS["warning"]
"""The errors filter keeps this level and above: a rejected sign-in is a warning."""

# Redis: "pid:role day mon year hh:mm:ss.mmm <mark> message", mark . - * # for
# debug, verbose, notice, warning
_REDIS = re.compile(
    r"^\d+:[A-Z] (?P<ts>\d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}) "
    r"(?P<mark>[.\-*#]) (?P<msg>.*)$"
)
_REDIS_LEVEL = {".": "debug", "-": "debug", "*": "notice", "#": "warning"}
# Redis marks its start-up and shutdown notices '#' too, and warns about the host's
# settings (overcommit, THP, the TCP backlog) at every start: none is an incident, so
# none belongs under "errors only"
_REDIS_ROUTINE = re.compile(
    r"^(?:oO0OoO0OoO0Oo Redis is starting|Redis version=|Configuration loaded|"
    r"Server initialized|Warning: no config file specified|"
    r"WARNING:? (?:Memory overcommit|you have Transparent Huge Pages|The TCP backlog)|"
    r"User requested shutdown|Received SIG\w+ scheduling shutdown|"
    r"Redis is now ready to exit)"
)
_KNOWN = {"timestamp", "level", "service", "trace_id", "message"}


def _redis_time(stamp: str) -> str:
    """Redis's local-time stamp as UTC ISO 8601, like the services' own."""
    try:
        local = dt.datetime.strptime(stamp, "%d %b %Y %H:%M:%S.%f")
    except ValueError:
        return stamp
    return local.astimezone(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class LogRecord:
    service: str
    level: str
    message: str
    timestamp: str | None = None
    trace_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> int:
        return LEVELS.get(self.level, LEVELS["info"])

    @property
    def is_problem(self) -> bool:
        return self.severity >= PROBLEM

    @property
    def clock(self) -> str:
        """hh:mm:ss of the timestamp, or blanks."""
        ts = self.timestamp or ""
        m = re.search(r"\d{2}:\d{2}:\d{2}", ts)
        return m.group(0) if m else " " * 8


def parse_line(service: str, line: str) -> LogRecord:
    """One log line of `service`: a JSON record, a Redis line, or plain text (info)."""
    text = line.rstrip("\n")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            level = str(data.get("level") or "info").lower()
            trace = data.get("trace_id")
            return LogRecord(
                service=str(data.get("service") or service),
                level="warning" if level == "warn" else level,
                message=str(data.get("message", "")),
                timestamp=str(data["timestamp"]) if data.get("timestamp") else None,
                trace_id=str(trace) if trace else None,
                fields={k: v for k, v in data.items() if k not in _KNOWN},
            )
    m = _REDIS.match(text)
    if m:
        level = _REDIS_LEVEL[m["mark"]]
        if level == "warning" and _REDIS_ROUTINE.match(m["msg"]):
            level = "info"
        return LogRecord(service, level, m["msg"], timestamp=_redis_time(m["ts"]))
    lowered = text.lower()
    level = "error" if ("error" in lowered or "traceback" in lowered) else "info"
    return LogRecord(service, level, text)


_parse_seen = functools.lru_cache(maxsize=16_384)(parse_line)
"""parse_line for tail_services: a pane polling each second reads mostly the lines it
read the second before; those are parsed once."""


class LogSource(Protocol):
    def services(self) -> list[str]: ...

    def logs(self, service: str, tail: int = 50) -> list[str]: ...


def tail_services(
    target: LogSource, services: Sequence[str] | None = None, tail: int = 200
) -> list[LogRecord]:
    """The last `tail` lines of each service, merged in time order (lines without a
    timestamp keep their place after the timestamped ones of the same service)."""
    out: list[tuple[str, int, LogRecord]] = []
    for service in services if services is not None else target.services():
        try:
            lines = target.logs(service, tail=tail)
        except Exception as exc:  # a service that is gone still shows why
            lines = [f"(no logs: {exc})"]
        last = ""
        for i, line in enumerate(lines):
            record = _parse_seen(service, line)
            # ISO timestamps (UTC) sort as text; a line without one stays after its
            # service's previous line
            if record.timestamp and "T" in record.timestamp:
                last = record.timestamp
            out.append((last, i, record))
    out.sort(key=lambda item: item[0])
    return [r for _, _, r in out]


def problems(records: Iterable[LogRecord]) -> list[LogRecord]:
    return [r for r in records if r.is_problem]


def matches(record: LogRecord, query: str) -> bool:
    """Every word of `query` in the line (service, level, message or a field value)."""
    words = query.lower().split()
    if not words:
        return True
    hay = " ".join(
        [record.service, record.level, record.message, *(str(v) for v in record.fields.values())]
    ).lower()
    return all(w in hay for w in words)


@dataclass(frozen=True)
class ErrorSpan:
    """A trace with at least one warning or error line: what a Jaeger search shows."""

    trace_id: str
    services: tuple[str, ...]
    first: str | None
    last: str | None
    level: str
    count: int
    operation: str
    messages: tuple[str, ...]
    route: str | None = None
    """The route a line of the trace names, when one does (the operation is else a
    message's start)."""


def error_spans(records: Iterable[LogRecord], limit: int = 200) -> list[ErrorSpan]:
    """The warning/error lines that carry a trace_id, one span per trace, newest first."""
    grouped: dict[str, list[LogRecord]] = {}
    for record in records:
        if record.trace_id and record.is_problem:
            grouped.setdefault(record.trace_id, []).append(record)
    spans = []
    for trace_id, lines in grouped.items():
        worst = max(lines, key=lambda r: r.severity)
        route = next((str(r.fields["route"]) for r in lines if r.fields.get("route")), None)
        spans.append(
            ErrorSpan(
                trace_id=trace_id,
                services=tuple(dict.fromkeys(r.service for r in lines)),
                first=lines[0].timestamp,
                last=lines[-1].timestamp,
                level=worst.level,
                count=len(lines),
                operation=route or worst.message[:60],
                messages=tuple(r.message for r in lines),
                route=route,
            )
        )
    spans.sort(key=lambda s: s.last or "", reverse=True)
    return spans[:limit]
