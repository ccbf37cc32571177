"""Readiness entries: what was attested, read, answered, checked, signed or reopened
for an engineer, by whom and when, with the digests of the evidence it rests on.

Layout: one JSON file per entry under `readiness/records/ENGINEER/`, named by its UTC
time and a random suffix. Two people recording for the same engineer on two git
branches add two different files, so the branches merge without a conflict; a pull
request shows each entry as one new, readable file.

The audit trail is these files in time order. An append-only `audit.jsonl` would have
both branches add a line at the same end of the same file, which git reports as a
conflict; deriving the trail from the entry files keeps it append-only (an entry is
created exclusively and never rewritten: a correction is a new entry) and conflict-free.
Each entry carries the digest of its own content, so an edited entry is named by
`readiness verify`.

Writes are atomic (a temporary file, fsync, then a hard link that fails if the name
exists) and made under an flock per engineer, so that the checks before a write (a
sign-off refused while items are open, the rotation count) see every earlier entry.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from pagerdrill.errors import PagerdrillError
from pagerdrill.workspace.config import Model

RECORDS_DIR = "readiness/records"
ENTRY_VERSION: Literal[1] = 1
EntryKind = Literal["attestation", "read", "quiz", "access", "signoff", "reopen", "assignment"]


class Pin(Model):
    """A file the entry rests on and its sha256 when the entry was recorded."""

    path: str
    """Relative to the workspace."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Observation(Model):
    """One alert seen on the shadow shift."""

    alert: str = Field(min_length=1)
    made_sense: bool
    note: str = ""


class ToolCheck(Model):
    name: str
    url: str | None = None
    status: int | None = None
    """The HTTP status of the probe, None when it was not reached (or had no URL)."""

    error: str | None = None
    confirmed: bool = False
    """The engineer confirmed they have access."""


class Entry(Model):
    """One readiness entry. Every kind has who, when, what and the pins; the other
    fields belong to one kind each."""

    v: Literal[1] = ENTRY_VERSION
    id: str
    kind: EntryKind
    engineer: str
    by: str
    """Who recorded it (the attester, the reader, the signer ...)."""

    at: str
    """UTC, ISO 8601 with a Z."""

    rotation: int = Field(ge=1)
    """The engineer's rotation when it was recorded."""

    item: str | None = None
    note: str = ""
    pins: list[Pin] = Field(default_factory=list)

    subject: str | None = None
    """What it is about: the runbook of a review, the document of a read, the scenario
    of an assignment."""

    date: str | None = None
    """A shift's date (YYYY-MM-DD)."""

    hours: float | None = None
    """A shift's length."""

    observations: list[Observation] = Field(default_factory=list)
    version: str | None = None
    """A changelog read: the newest version the engineer saw."""

    answer: str | None = None
    answer_s: float | None = None
    tools: list[ToolCheck] = Field(default_factory=list)
    decision: Literal["go", "no-go"] | None = None
    role: Literal["engineer", "oncall"] | None = None
    reopened: list[str] = Field(default_factory=list)
    statement: str | None = None
    """A signed sign-off: the in-toto Statement exactly as signed."""

    signature: str | None = None
    """The SSH signature (armored) of `statement`."""

    digest: str = ""
    """sha256 of the entry's other fields (canonical JSON): an edit shows."""

    def content_digest(self) -> str:
        return content_digest(self.model_dump(exclude={"digest"}))


def content_digest(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def slug(name: str) -> str:
    """The folder of an engineer's entries: `Ana Lima` -> `ana-lima`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unnamed"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class RecordError(PagerdrillError):
    """An entry cannot be written."""


@dataclass(frozen=True)
class Stored:
    """An entry and the file it is in, or the problem that made the file unreadable."""

    path: Path
    entry: Entry | None
    problem: str | None = None


class Records:
    """The entries of a workspace."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / RECORDS_DIR

    def folder(self, engineer: str) -> Path:
        return self.dir / slug(engineer)

    @contextmanager
    def locked(self, engineer: str) -> Iterator[None]:
        """Holds the engineer's write lock (an flock the kernel drops if the holder dies).
        The lock file lives in the workspace state folder, which git ignores."""
        lock_dir = self.root / ".pagerdrill" / "readiness-locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_dir / f"{slug(engineer)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def new_entry(self, **fields: Any) -> Entry:
        """An entry with its id, time and digest filled in."""
        now = fields.pop("now", None) or utc_now()
        fields.setdefault("at", iso(now))
        stamp = parse_iso(fields["at"]).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
        fields.setdefault("id", f"{stamp}-{fields['kind']}-{os.urandom(4).hex()}")
        entry = Entry.model_validate(fields)
        return entry.model_copy(update={"digest": entry.content_digest()})

    def write(self, entry: Entry) -> Path:
        """Write `entry` as a new file; never replaces an existing one. The caller holds
        the engineer's lock when the write depends on earlier entries."""
        folder = self.folder(entry.engineer)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{entry.id}.json"
        body = (
            json.dumps(
                entry.model_dump(exclude_defaults=True) | {"digest": entry.digest},
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
        tmp = folder / f".{entry.id}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, body.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(tmp, path)  # fails if the name exists: nothing is overwritten
        except FileExistsError:
            raise RecordError(f"{path}: an entry of that name exists; not overwriting") from None
        except OSError as exc:
            raise RecordError(f"cannot write {path}: {exc.strerror or exc}") from exc
        finally:
            with suppress(OSError):
                os.unlink(tmp)
        _fsync_dir(folder)
        return path

    def stored(self, engineer: str) -> list[Stored]:
        """Every entry file of `engineer`, in time order (the audit trail)."""
        return self._stored(self.folder(engineer))

    def entries_in(self, folder_name: str) -> list[Entry]:
        return [s.entry for s in self._stored(self.dir / folder_name) if s.entry is not None]

    def _stored(self, folder: Path) -> list[Stored]:
        return sorted(
            (read_entry(p) for p in folder.glob("*.json")),
            key=lambda s: (s.entry.at if s.entry else "", s.path.name),
        )

    def entries(self, engineer: str) -> list[Entry]:
        return [s.entry for s in self.stored(engineer) if s.entry is not None]

    def engineers_with_entries(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if p.is_dir())


def read_entry(path: Path) -> Stored:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Stored(path, None, f"not a readable entry: {exc}")
    try:
        return Stored(path, Entry.model_validate(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return Stored(path, None, f"not a valid entry: {where}: {first['msg']}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
