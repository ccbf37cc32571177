"""A count of a service's log events: the entries that match fields (an event name, a
level and above) whose time falls in the last `window_s`, read from the target's logs
in the service's workspace format, the way the logs pane reads them.

Primary value: the count in the window; `rate`: that count per second of the window.
An entry counts by its own time, so the count is the same whether the probe samples
often or rarely; entries with no time the format can read are not counted (`check`
says so).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from pagerdrill.signals.expressions import PRIMARY
from pagerdrill.signals.logs import LEVELS, LogRecord, epoch_of, level_name, parse_lines
from pagerdrill.signals.probes import Clock, Cycle, Probe, Sample
from pagerdrill.signals.specs import ProbeSpec
from pagerdrill.targets.base import Target
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace.config import LogFormat

TAIL = 2000
"""Lines read each sample: the count cannot exceed the entries in them."""


class LogCountProbe(Probe):
    def __init__(
        self,
        spec: ProbeSpec,
        roles: RoleResolver,
        target: Target,
        formats: Mapping[str, LogFormat],
        wall: Clock = time.time,
    ):
        super().__init__(spec)
        self.service = roles.service(spec.role or "")
        self.target = target
        self.format = formats.get(self.service)
        self.wall = wall
        """Log times are wall-clock times: the window is measured on the same clock."""
        self.floor = LEVELS[spec.min_level] if spec.min_level else None
        # the format's own names for the message and the level (structlog's `event`)
        # match the entry's message and level, as the pane shows them
        self.message_fields = set(self.format.message) if self.format else set()
        self.level_fields = set(self.format.level) if self.format else set()
        self.match = {
            k: level_name(v) if k == "level" or k in self.level_fields else v
            for k, v in sorted(spec.match.items())
        }

    def _entries(self, cycle: Cycle | None) -> list[LogRecord]:
        """The service's last entries, read once a cycle however many probes count them."""
        key = f"log:{self.service}"
        if cycle is not None and key in cycle.scrapes:
            return cycle.scrapes[key]
        lines = self.target.logs(self.service, tail=TAIL)
        entries = parse_lines(self.service, lines, self.format)
        if cycle is not None:
            cycle.scrapes[key] = entries
        return entries

    def wanted(self, record: LogRecord) -> bool:
        if self.floor is not None and record.severity < self.floor:
            return False
        for key, value in self.match.items():
            if key == "message" or key in self.message_fields:
                have = record.message
            elif key == "level" or key in self.level_fields:
                have = record.level
            elif key in record.fields:
                have = str(record.fields[key])
            else:
                return False
            if have != value:
                return False
        return True

    def sample(self, cycle: Cycle) -> Sample:
        try:
            entries = self._entries(cycle)
        except Exception:  # a target that cannot give the log: unknown, not a crash
            return {PRIMARY: None, "count": None, "rate": None}
        since = self.wall() - self.spec.window_s
        count = 0
        for record in entries:
            at = epoch_of(record.timestamp)
            if at is not None and at >= since and self.wanted(record):
                count += 1
        return {PRIMARY: count, "count": count, "rate": round(count / self.spec.window_s, 6)}

    def check(self, cycle: Cycle) -> str | None:
        where = f"service {self.service}"
        try:
            entries = self._entries(None)
        except Exception as exc:
            return f"the log of {where} could not be read ({type(exc).__name__}: {exc})"
        if not entries:
            return f"no log lines from {where}"
        times = [t for t in (epoch_of(r.timestamp) for r in entries) if t is not None]
        if not times:
            fields = ", ".join(self.format.time) if self.format else "timestamp"
            how = (
                "the pattern's `time` group"
                if self.format and self.format.format == "text"
                else f"field {fields}"
            )
            return (
                f"the log of {where} has no entry with a time pagerdrill can read ({how}; "
                f"the last line: {entries[-1].message[:80]!r})"
            )
        window = self.spec.window_s
        if max(times) < self.wall() - window:
            newest = time.strftime("%H:%M:%S", time.gmtime(max(times)))
            return f"no log lines from {where} in the last {window:g} s (the newest: {newest} UTC)"
        return None
