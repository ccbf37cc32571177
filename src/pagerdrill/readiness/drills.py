"""What the gate needs to know of each drill journal in `drills/`: who drove it, how
(the TUI, or headless: a script or the autopilot), its severity, how it ended, and its
reviews. Read from the journals; `.pagerdrill/readiness-drills/` only indexes what they
say, by engineer, keyed by each file's size and modification time, so one engineer's
status reads that engineer's facts and re-reads only the journals that changed."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from pagerdrill.journal import events, read_journal
from pagerdrill.journal.summary import summary_of
from pagerdrill.readiness.records import slug

INDEX_VERSION = 2
INDEX_DIR = ".pagerdrill/readiness-drills"
SEVERITY_RANK = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


@dataclass(frozen=True)
class Review:
    by: str
    verdict: str
    at: str


@dataclass(frozen=True)
class DrillFacts:
    drill: str
    file: str
    """The journal's file name in drills/."""

    engineer: str | None
    mode: str | None
    """`tui` for `pagerdrill drill`; `headless` for a script or the autopilot."""

    scenario: str | None
    severity: str | None
    started: str | None
    outcome: str
    recovery_verified: bool
    hypothesis_right: bool
    within_target: bool
    hints: int
    complete: bool
    reviews: tuple[Review, ...] = ()

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["reviews"] = [{"by": r.by, "verdict": r.verdict, "at": r.at} for r in self.reviews]
        return out

    @classmethod
    def from_json(cls, data: dict) -> DrillFacts:
        data = dict(data)
        data["reviews"] = tuple(Review(**r) for r in data.get("reviews", ()))
        return cls(**data)


def facts_of(path: Path) -> DrillFacts:
    read = read_journal(path, samples=False)
    s = summary_of(read)
    started = read.typed_started
    hyp = s.hypothesis
    reviews = tuple(
        Review(str(e.by), str(e.verdict), e.ts)
        for e in read.typed
        if isinstance(e, events.Review) and e.verdict in ("pass", "fail")
    )
    return DrillFacts(
        drill=read.drill_id,
        file=path.name,
        engineer=s.engineer,
        mode=started.mode if started else None,
        scenario=s.scenario,
        severity=s.severity,
        started=s.started,
        outcome=s.outcome,
        recovery_verified=s.recovery_verified,
        hypothesis_right=hyp.correct,
        within_target=bool(
            hyp.correct_s is not None and hyp.target_s is not None and hyp.correct_s <= hyp.target_s
        ),
        hints=s.hints_used,
        complete=read.complete,
        reviews=reviews,
    )


def _key(entry: os.DirEntry) -> str:
    st = entry.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _read_json(path: Path) -> dict:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) and loaded.get("version") == INDEX_VERSION else {}


def _write_json(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False))
        os.replace(tmp, path)
    except OSError:
        pass  # an index that cannot be written is only slower next time


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Writers of the index take turns, so that one's shard does not undo another's."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class DrillIndex:
    """The journals of `drills/` by engineer. Building it stats every journal and reads
    only the new or changed ones (a review appends to its journal, so the key is the
    file's size and mtime, not its name); the facts are kept in one shard per engineer,
    each fact with the key it was read at, so a shard that lags its journal is read
    again rather than trusted."""

    def __init__(self, root: Path):
        self.root = root
        self.folder = root / INDEX_DIR
        self._by: dict[str, list[str]] | None = None
        drills = root / "drills"
        try:
            found = {
                e.name: _key(e)
                for e in os.scandir(drills)
                if e.name.endswith(".jsonl") and e.is_file()
            }
        except OSError:
            found = {}
        index = _read_json(self.folder / "index.json").get("journals", {})
        changed = {n for n, k in found.items() if not _same(index.get(n), k)}
        gone = set(index) - set(found)
        self.journals: dict[str, dict] = {n: index[n] for n in found if n not in changed}
        if not changed and not gone:
            return
        with _locked(self.folder):
            touched: dict[str, dict[str, dict]] = {}
            for name in gone:
                old = index[name].get("engineer", "") if isinstance(index[name], dict) else ""
                touched.setdefault(old, self._shard(old)).pop(name, None)
            for name in sorted(changed):
                facts = facts_of(drills / name)
                who = slug(facts.engineer) if facts.engineer else ""
                old = index.get(name)
                if isinstance(old, dict) and old.get("engineer", "") != who:
                    touched.setdefault(old["engineer"], self._shard(old["engineer"])).pop(
                        name, None
                    )
                shard = touched.setdefault(who, self._shard(who))
                shard[name] = {"key": found[name], "facts": facts.to_json()}
                self.journals[name] = {"key": found[name], "engineer": who}
            for who, shard in touched.items():
                _write_json(self._shard_path(who), {"version": INDEX_VERSION, "journals": shard})
            _write_json(
                self.folder / "index.json", {"version": INDEX_VERSION, "journals": self.journals}
            )

    def _shard_path(self, who: str) -> Path:
        return self.folder / "by-engineer" / f"{who or '-'}.json"

    def _shard(self, who: str) -> dict[str, dict]:
        return dict(_read_json(self._shard_path(who)).get("journals", {}))

    @property
    def names_by_engineer(self) -> dict[str, list[str]]:
        if self._by is None:
            self._by = {}
            for name, j in self.journals.items():
                self._by.setdefault(j.get("engineer", ""), []).append(name)
        return self._by

    def engineers(self) -> set[str]:
        return set(self.names_by_engineer)

    def of(self, engineer: str) -> list[DrillFacts]:
        """The drills `engineer` drove, oldest first."""
        return [
            d for d in self._facts(slug(engineer)) if (d.engineer or "").lower() == engineer.lower()
        ]

    def all(self) -> list[DrillFacts]:
        """Every journal's facts, oldest first."""
        out = [d for who in self.engineers() for d in self._facts(who)]
        return sorted(out, key=lambda f: f.started or "")

    def _facts(self, who: str) -> list[DrillFacts]:
        names = self.names_by_engineer.get(who, [])
        if not names:
            return []
        shard = self._shard(who)
        out = []
        for name in names:
            hit = shard.get(name)
            facts = None
            if isinstance(hit, dict) and hit.get("key") == self.journals[name]["key"]:
                try:
                    facts = DrillFacts.from_json(hit["facts"])
                except (TypeError, KeyError):
                    facts = None
            out.append(facts or facts_of(self.root / "drills" / name))
        return sorted(out, key=lambda f: f.started or "")


def _same(entry: object, key: str) -> bool:
    return isinstance(entry, dict) and entry.get("key") == key


def all_drills(root: Path) -> list[DrillFacts]:
    """Every journal's facts, oldest first."""
    return DrillIndex(root).all()
