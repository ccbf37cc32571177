"""The drill journal: one JSON object per line, appended, flushed and fsynced before
the engine acts on it, so a `kill -9` loses nothing the engine did.

Every line carries the schema version (`v`), a sequence number, the UTC wall time
for people (`ts`) and seconds since the drill started on the monotonic clock (`t`)
for durations. The first event (`drill.started`) holds a copy of the scenario,
the tool version and the host. Reports, review and readiness read journals; none
keeps its own copy of the truth.

Reading is forgiving: a line cut short by a crash, a hand-edited line, or a newer
schema are reported as problems with their line numbers, and every valid event is
still returned.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from pagerdrill.errors import PagerdrillError
from pagerdrill.journal import events as ev
from pagerdrill.journal.events import (
    SCHEMA_VERSION,
    TERMINAL,
    DrillStarted,
    Event,
    JournalEventError,
    decode_event,
    event_fields,
)
from pagerdrill.journal.lock import DrillBusyError, DrillLock, holder_text

E = TypeVar("E", bound=Event)

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL",
    "DrillBusyError",
    "DrillLock",
    "JournalError",
    "JournalRead",
    "JournalWriter",
    "continue_journal",
    "holder_text",
    "journal_files",
    "read_journal",
    "utc_now",
]


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JournalError(PagerdrillError):
    """The journal cannot be written: the drill must not touch the stack."""


class JournalWriter:
    """Appends events to one journal file. Thread-safe; each append is durable when
    it returns."""

    def __init__(
        self,
        path: Path,
        drill_id: str,
        *,
        start_mono: float | None = None,
        first_seq: int = 0,
        t_offset: float = 0.0,
    ):
        self.path = path
        self.drill_id = drill_id
        self.start_mono = time.monotonic() if start_mono is None else start_mono
        self._seq = first_seq
        self._t_offset = t_offset
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot open the drill journal {path}: {exc.strerror}") from exc
        self._terminate_partial_line()
        self._sync_dir()

    def _terminate_partial_line(self) -> None:
        """A journal reopened after a crash may end mid-line: start on a fresh line."""
        size = os.fstat(self._fd).st_size
        if size:
            with self.path.open("rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def _sync_dir(self) -> None:
        try:
            dfd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def write(self, event: E) -> E:
        """Append `event` (durable when this returns); the event as journalled, its
        envelope (seq, times, drill) filled in."""
        with self._lock:
            head = self._write(event.TYPE, event_fields(event))
            return msgspec.structs.replace(
                event, v=head["v"], seq=head["seq"], ts=head["ts"], t=head["t"],
                drill=self.drill_id,
            )  # fmt: skip

    def append(self, type_: str, **data: Any) -> dict:
        """Append a line of any type (journal tests write lines no drill would)."""
        with self._lock:
            return self._write(type_, data)

    def _write(self, type_: str, data: dict[str, Any]) -> dict:
        event = {
            "v": SCHEMA_VERSION,
            "seq": self._seq,
            "ts": utc_now(),
            "t": round(self._t_offset + time.monotonic() - self.start_mono, 4),
            "type": type_,
            "drill": self.drill_id,
        }
        event |= {k: v for k, v in data.items() if k not in event}
        line = json.dumps(event, separators=(",", ":"), default=str) + "\n"
        try:
            os.write(self._fd, line.encode())
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"cannot write the drill journal {self.path}: {exc}") from exc
        self._seq += 1
        return event

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


@dataclass
class JournalRead:
    path: Path
    events: list[dict] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    _typed: list[Event] | None = field(default=None, repr=False)
    _undecoded: list[tuple[int, str]] = field(default_factory=list, repr=False)

    @property
    def typed(self) -> list[Event]:
        """The valid events decoded into their classes (journal.events)."""
        if self._typed is None:
            self._typed = []
            for number, event in enumerate(self.events, 1):
                self._decode(event, number)
        return self._typed

    @property
    def undecoded(self) -> list[tuple[int, str]]:
        """Events of no type this pagerdrill knows, or not of its shape: (line number,
        or the event's place when not read from a file; what is wrong)."""
        self.typed  # noqa: B018 (decoded on first use)
        return self._undecoded

    def _decode(self, event: dict, number: int) -> None:
        assert self._typed is not None
        try:
            self._typed.append(decode_event(event, line=number))
        except JournalEventError as exc:
            self._undecoded.append((number, str(exc)))

    @property
    def typed_started(self) -> DrillStarted | None:
        return next((e for e in self.typed if isinstance(e, DrillStarted)), None)

    @property
    def complete(self) -> bool:
        """The drill reached an end (closed or aborted) and nothing was unreadable."""
        return self.finished and not self.problems

    @property
    def finished(self) -> bool:
        return any(e.get("type") in TERMINAL for e in self.events)

    @property
    def started(self) -> dict | None:
        return next((e for e in self.events if e.get("type") == DrillStarted.TYPE), None)

    @property
    def drill_id(self) -> str:
        started = self.started
        if started and isinstance(started.get("drill"), str):
            return started["drill"]
        return self.path.stem


_SAMPLE = f'"type":"{ev.ProbeSample.TYPE}"'.encode()
_decode = msgspec.json.Decoder().decode


_TEXT = (
    "ts",
    "drill",
    "step",
    "fault",
    "mitigation",
    "text",
    "choice",
    "by",
    "verdict",
    "alert",
    "reason",
    "summary",
    "title",
    "kind",
    "engineer",
    "to",
    "comment",
    "prompt",
    "what",
    "about",
    "grade",
    "grade_note",
    "reason",
    "choice_text",
)
_NUMBER = ("t", "drill_s", "paused_s", "target_s", "quiet_s", "inject_ms", "held_s", "position")
_FLAG = ("correct", "over", "recovery_verified", "page", "recovered")
_MAPPING = ("values", "undo", "params", "detail", "scenario", "checklist", "recovery")


def _envelope_ok(event: dict) -> bool:
    """Every field a reader relies on is of its kind (seq an integer, t a number, text
    fields text ...); a hand-edited event that is not is reported, not half-read."""
    seq = event.get("seq", 0)
    if not isinstance(seq, int) or isinstance(seq, bool):
        return False
    for key in _TEXT:
        if event.get(key) is not None and not isinstance(event[key], str):
            return False
    for key in _NUMBER:
        value = event.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            return False
    for key in _FLAG:
        if event.get(key) is not None and not isinstance(event[key], bool):
            return False
    return all(event.get(key) is None or isinstance(event[key], dict) for key in _MAPPING)


class _Number:
    """A number that is not a bool (JSON has no other kind of number)."""


# The nested fields readers rely on, by event type: a type, a mapping of keys to
# shapes (`"*"`: every value), or a one-item list (every item). A hand-edited value of
# another kind is left out, and the line reported, so every reader can trust what it
# gets and the journal is still read as far as it is valid.
_SHAPES: dict[str, dict[str, Any]] = {
    DrillStarted.TYPE: {
        "scenario": {
            "name": str,
            "title": str,
            "severity": str,
            "symptom": str,
            "text": str,
            "params": dict,
        },
        "checklist": {
            "steps": [{"id": str, "title": str, "target_s": _Number}],
            "hypothesis_target_s": _Number,
        },
        "alerts": [{"name": str, "expr": str, "summary": str}],
        "recovery": {"all": [str]},
    },
    ev.FaultUndo.TYPE: {"params": {"env_from_binding": dict, "env": dict}},
    ev.Mitigation.TYPE: {"detail": {"values": dict}},
    ev.ProbeSample.TYPE: {"values": {"*": dict}},
    ev.DrillClosed.TYPE: {"revert_failed": list},
    ev.DrillAborted.TYPE: {"revert_failed": list},
    ev.RecoveryVerified.TYPE: {"criteria": [str]},
}
_KIND_NAMES: dict[type, str] = {str: "text", dict: "a mapping", list: "a list", _Number: "a number"}


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return _KIND_NAMES.get(type(value), type(value).__name__)


def _fits(value: Any, shape: Any) -> bool:
    if shape is _Number:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(shape, dict):
        return isinstance(value, dict)
    if isinstance(shape, list):
        return isinstance(value, list)
    return isinstance(value, shape)


def _expected(shape: Any) -> str:
    if isinstance(shape, dict):
        return "a mapping"
    if isinstance(shape, list):
        return "a list"
    return _KIND_NAMES[shape]


def _prune(value: Any, shape: Any, where: str, problems: list[str]) -> Any:
    """`value` with every part that is not of its shape left out (a problem each)."""
    if isinstance(shape, dict):
        out = dict(value)
        for key in list(out):
            inner = shape.get(key, shape.get("*"))
            if inner is None:
                continue
            if out[key] is None:  # the same as absent to every reader
                del out[key]
                continue
            if not _fits(out[key], inner):
                problems.append(
                    f"{where}.{key} is {_kind_of(out[key])}, expected {_expected(inner)}"
                )
                del out[key]
            elif isinstance(inner, dict | list):
                out[key] = _prune(out[key], inner, f"{where}.{key}", problems)
        return out
    if isinstance(shape, list):
        items = []
        for i, item in enumerate(value):
            if not _fits(item, shape[0]):
                problems.append(f"{where}[{i}] is {_kind_of(item)}, expected {_expected(shape[0])}")
            elif isinstance(shape[0], dict | list):
                items.append(_prune(item, shape[0], f"{where}[{i}]", problems))
            else:
                items.append(item)
        return items
    return value


def _checked_contents(event: dict) -> tuple[dict, str | None]:
    """The event with nested fields of the wrong kind left out, and what was left out."""
    shape = _SHAPES.get(event["type"])
    if shape is None:
        return event, None
    problems: list[str] = []
    event = _prune(event, shape, event["type"], problems)
    if not problems:
        return event, None
    return event, "; ".join(problems) + " (left out)"


def _is_sample(line: bytes) -> bool:
    return line.endswith(b"}") and _SAMPLE in line[:200]


def _not_an_event(event: object) -> str | None:
    """Why a decoded line is not an event this pagerdrill reads, else None."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "not a journal event (no `type`)"
    if not _envelope_ok(event):
        return "not a journal event (a field of the wrong kind)"
    version = event.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
        return f"schema version {version!r}; this pagerdrill reads {SCHEMA_VERSION}"
    return None


def read_journal(path: Path, *, samples: bool | int = True) -> JournalRead:
    """Every valid event of `path`, and a problem per line that is not one.

    Probe samples are most of a journal. `samples=False` skips them unparsed (enough
    for a summary); `samples=N` keeps about N of them, evenly spread, the first and
    the last included (enough for a chart)."""
    out = JournalRead(path, _typed=[])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        out.problems.append((0, f"cannot read: {exc.strerror or exc}"))
        return out
    lines = raw.split(b"\n")
    last = len(lines)
    if lines and lines[-1] == b"":
        lines.pop()
        last = len(lines)
    stride = 1
    last_sample = -1
    if samples is not True and samples is not False and samples > 0:
        sample_lines = [i for i, line in enumerate(lines) if _is_sample(line)]
        stride = max(1, -(-len(sample_lines) // samples))
        last_sample = sample_lines[-1] if sample_lines else -1
    older = False
    nth = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if (samples is False or stride > 1) and _is_sample(line):
            nth += 1
            if samples is False or ((nth - 1) % stride and number - 1 != last_sample):
                continue
        try:
            event = _decode(line)
        except (ValueError, RecursionError, msgspec.DecodeError):
            cut = number == last and not raw.endswith(b"\n")
            out.problems.append(
                (number, "cut short (the drill stopped mid-write)" if cut else "not valid JSON")
            )
            continue
        refused = _not_an_event(event)
        if refused:
            out.problems.append((number, refused))
            continue
        version = event["v"]
        event, left_out = _checked_contents(event)
        if left_out:
            out.problems.append((number, left_out))
        if version < SCHEMA_VERSION and not older:
            older = True  # read as far as it goes, and say so once
            out.problems.append(
                (
                    number,
                    f"written with an older schema (version {version}); read as far as it goes",
                )
            )
        out.events.append(event)
        out._decode(event, number)
    return out


def continue_journal(read: JournalRead) -> JournalWriter:
    """A writer that appends to a finished or crashed journal (a review, `recover`):
    sequence numbers go on, and `t` keeps counting from the drill's start."""
    last_seq = max((e.get("seq", 0) for e in read.events if isinstance(e.get("seq"), int)),
                   default=-1)  # fmt: skip
    offset = 0.0
    started = read.started
    try:
        begun = dt.datetime.fromisoformat(str((started or {})["ts"]).replace("Z", "+00:00"))
        offset = max(0.0, (dt.datetime.now(dt.UTC) - begun).total_seconds())
    except (TypeError, KeyError, ValueError):
        offset = max((float(e.get("t", 0.0)) for e in read.events
                      if isinstance(e.get("t"), int | float)), default=0.0)  # fmt: skip
    return JournalWriter(read.path, read.drill_id, first_seq=last_seq + 1, t_offset=offset)


def journal_files(drills_dir: Path) -> list[Path]:
    if not drills_dir.is_dir():
        return []
    return sorted(p for p in drills_dir.glob("*.jsonl") if p.is_file())
