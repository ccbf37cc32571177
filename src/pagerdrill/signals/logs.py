"""The services' logs, read the way an on-call engineer reads Loki and Jaeger.

The reference services write one JSON object per line (timestamp, level, service,
trace_id, message, and fields such as route and status); Redis writes its own text
format. `parse_line` reads both. `tail_services` merges the last lines of every
service in time order (the stand-in for a Loki query), and `error_spans` groups the
warning and error lines that carry a trace_id by trace (the stand-in for Jaeger's
"error spans of the last 15 minutes").

Any other service is read in the format the workspace gives it (`logs:` in
pagerdrill.yaml, a `LogFormat`): JSON with the team's field names, or plain text
read by a pattern, and entries that go on over several lines (tracebacks) grouped
into one record.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pagerdrill.workspace.config import LogFormat

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
    detail: tuple[str, ...] = ()
    """The lines a multi-line entry goes on over (a traceback), after its first."""

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


def parse_line(service: str, line: str, fmt: LogFormat | None = None) -> LogRecord:
    """One log line of `service`: in its workspace format `fmt` when it has one, else a
    JSON record, a Redis line, or plain text (info)."""
    text = line.rstrip("\n")
    if fmt is not None:
        return _parse_formatted(service, text, fmt)
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
    return _plain(service, text)


def _plain(service: str, text: str) -> LogRecord:
    lowered = text.lower()
    level = "error" if ("error" in lowered or "traceback" in lowered) else "info"
    return LogRecord(service, level, text)


_LEVEL_ALIASES = {
    "warn": "warning",
    "err": "error",
    "fatal": "critical",
    "crit": "critical",
    "alert": "critical",
    "emerg": "critical",
    "emergency": "critical",
    "trace": "debug",
    "verbose": "debug",
    "information": "info",
}


_PINO_LEVELS = {10: "debug", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "critical"}
"""Numeric levels as pino and bunyan (Node) write them; Python's loggers write names."""


def level_name(raw: Any) -> str:
    """A level as the team's logger spells it (`WARN`, `err`, `Fatal`, pino's 50) in
    our names."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _PINO_LEVELS.get(raw, "info")
    name = str(raw).strip().lower()
    return _LEVEL_ALIASES.get(name, name) or "info"


def iso_time(raw: Any) -> str | None:
    """A log time as UTC ISO 8601 (what the merge sorts by): an ISO text, with or without
    an offset (none: UTC), or seconds since the epoch; else the text as it came."""
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    try:
        if isinstance(raw, int | float):
            stamp = dt.datetime.fromtimestamp(float(raw), dt.UTC)
        else:
            stamp = dt.datetime.fromisoformat(str(raw).strip().replace(",", "."))
    except (ValueError, OverflowError, OSError):
        return str(raw)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def epoch_of(timestamp: str | None) -> float | None:
    """Seconds since the epoch of a record's timestamp, None when it has none readable."""
    if not timestamp:
        return None
    try:
        stamp = dt.datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


# a traceback's or stack trace's own lines: indented frames, the chained-exception
# notes, Java's "Caused by:" and "... N more", and the closing "SomeError: text"
_CONTINUED = (
    r"^(?:\s|Caused by:|Suppressed:|\.\.\. \d+ (?:more|common frames omitted)|"
    r"During handling of the above exception|The above exception was the direct cause|"
    r"[A-Za-z_][\w.$]*(?:Error|Exception|Exit|Interrupt|Throwable|Warning)(?::|$))"
)


@functools.lru_cache(maxsize=64)
def _compiled(fmt: LogFormat) -> tuple[re.Pattern[str] | None, re.Pattern[str]]:
    """(the text pattern, the continuation pattern) of a format, compiled once."""
    pattern = re.compile(fmt.pattern) if fmt.pattern else None
    if fmt.continuation:
        return pattern, re.compile(fmt.continuation)
    if pattern is not None:
        return pattern, re.compile(r"(?!)")  # unused: a line the pattern misses continues
    return pattern, re.compile(_CONTINUED)


def _first(data: Mapping[str, Any], names: Iterable[str]) -> tuple[str | None, Any]:
    for name in names:
        if data.get(name) not in (None, ""):
            return name, data[name]
    return None, None


def _parse_formatted(service: str, text: str, fmt: LogFormat) -> LogRecord:
    if fmt.format == "json":
        data: Any = None
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                data = None
        if not isinstance(data, dict):
            return _plain(service, text)
        return _from_fields(service, data, fmt)
    pattern, _ = _compiled(fmt)
    m = pattern.match(text) if pattern is not None else None
    if m is None:
        return _plain(service, text)
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    groups.setdefault("message", text)
    return _from_fields(service, groups, _GROUPS)


_GROUPS = LogFormat(time=("time",), exception=("exception",))
"""The names a text pattern's groups go by (message, level, time, trace_id)."""


def _from_fields(service: str, data: Mapping[str, Any], fmt: LogFormat) -> LogRecord:
    message_key, message = _first(data, fmt.message)
    level_key, level = _first(data, fmt.level)
    time_key, stamp = _first(data, fmt.time)
    trace_key, trace = _first(data, fmt.trace_id)
    exc_key, exc = _first(data, fmt.exception)
    used = {message_key, level_key, time_key, trace_key, exc_key}
    rest = {k: v for k, v in data.items() if k not in used}
    if message is None:
        # an entry with no message still says something: its fields, not a blank
        message = " ".join(f"{k}={v}" for k, v in rest.items())
    detail: tuple[str, ...] = ()
    if isinstance(exc, str):
        detail = tuple(exc.rstrip("\n").splitlines())
    elif exc is not None:
        rest[str(exc_key)] = exc
    return LogRecord(
        service=service,
        level=level_name(level) if level is not None else "info",
        message=str(message),
        timestamp=iso_time(stamp),
        trace_id=str(trace) if trace not in (None, "") else None,
        fields=rest,
        detail=detail,
    )


def _continues(line: str, fmt: LogFormat) -> bool:
    pattern, continuation = _compiled(fmt)
    if fmt.continuation is None and pattern is not None:
        return pattern.match(line) is None
    if fmt.format == "json" and line.lstrip().startswith("{"):
        return False  # a JSON entry of its own, however it is indented
    return continuation.match(line) is not None


def parse_lines(
    service: str, lines: Iterable[str], fmt: LogFormat | None = None
) -> list[LogRecord]:
    """The entries of a run of `service`'s log lines: one record per line, except that
    a multi-line format groups each entry's continuation lines into the entry."""
    out: list[LogRecord] = []
    multiline = fmt is not None and fmt.multiline
    for line in lines:
        text = line.rstrip("\n")
        if multiline and out and text.strip() and _continues(text, fmt):  # type: ignore[arg-type]
            out[-1] = replace(out[-1], detail=(*out[-1].detail, text))
            continue
        out.append(_parse_seen(service, line) if fmt is None else _parse_seen(service, line, fmt))
    return out


_parse_seen = functools.lru_cache(maxsize=16_384)(parse_line)
"""parse_line for tail_services: a pane polling each second reads mostly the lines it
read the second before; those are parsed once."""


class LogSource(Protocol):
    def services(self) -> list[str]: ...

    def logs(self, service: str, tail: int = 50) -> list[str]: ...


def tail_services(
    target: LogSource,
    services: Sequence[str] | None = None,
    tail: int = 200,
    formats: Mapping[str, LogFormat] | None = None,
) -> list[LogRecord]:
    """The last `tail` lines of each service, merged in time order (lines without a
    timestamp keep their place after the timestamped ones of the same service), each
    service read in its format from `formats` (else the reference stack's)."""
    out: list[tuple[str, int, LogRecord]] = []
    for service in services if services is not None else target.services():
        try:
            lines = target.logs(service, tail=tail)
        except Exception as exc:  # a service that is gone still shows why
            lines = [f"(no logs: {exc})"]
        last = ""
        fmt = (formats or {}).get(service)
        for i, record in enumerate(parse_lines(service, lines, fmt)):
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
        [
            *(record.service, record.level, record.message),
            *(str(v) for v in record.fields.values()),
            *record.detail,
        ]
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
