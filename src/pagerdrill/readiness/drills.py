"""What the gate needs to know of each drill journal in `drills/`: who drove it, how
(the TUI, or headless: a script or the autopilot), its severity, how it ended, and its
reviews. Read from the journals; `.pagerdrill/readiness-drills.json` only caches what
they say, keyed by each file's size and modification time."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pagerdrill.journal import journal_files, read_journal
from pagerdrill.journal.summary import summarize

CACHE_VERSION = 1
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
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DrillFacts:
        data = dict(data)
        data["reviews"] = tuple(Review(**r) for r in data.get("reviews", ()))
        return cls(**data)


def facts_of(path: Path) -> DrillFacts:
    read = read_journal(path, samples=False)
    s = summarize(read)
    started = read.started or {}
    hyp = s["hypothesis"]
    target = hyp["target_s"]
    reviews = tuple(
        Review(str(e.get("by")), str(e.get("verdict")), str(e.get("ts")))
        for e in read.events
        if e.get("type") == "review" and e.get("verdict") in ("pass", "fail")
    )
    mode = started.get("mode")
    return DrillFacts(
        drill=read.drill_id,
        file=path.name,
        engineer=s["engineer"] if isinstance(s["engineer"], str) else None,
        mode=mode if isinstance(mode, str) else None,
        scenario=s["scenario"] if isinstance(s["scenario"], str) else None,
        severity=s["severity"] if isinstance(s["severity"], str) else None,
        started=s["started"] if isinstance(s["started"], str) else None,
        outcome=s["outcome"],
        recovery_verified=s["recovery_verified"],
        hypothesis_right=hyp["correct"],
        within_target=bool(
            hyp["correct_s"] is not None and target is not None and hyp["correct_s"] <= target
        ),
        hints=s["hints_used"],
        complete=read.complete,
        reviews=reviews,
    )


def all_drills(root: Path) -> list[DrillFacts]:
    """Every journal's facts, oldest first."""
    cache_path = root / ".pagerdrill" / "readiness-drills.json"
    cache: dict = {}
    try:
        loaded = json.loads(cache_path.read_text())
        if loaded.get("version") == CACHE_VERSION:
            cache = loaded.get("journals", {})
    except (OSError, ValueError, AttributeError):
        cache = {}
    fresh: dict = {}
    out = []
    for path in journal_files(root / "drills"):
        st = path.stat()
        key = f"{st.st_size}:{st.st_mtime_ns}"
        hit = cache.get(path.name)
        facts = None
        if isinstance(hit, dict) and hit.get("key") == key:
            try:
                facts = DrillFacts.from_json(hit["facts"])
            except (TypeError, KeyError):
                facts = None
        if facts is None:
            facts = facts_of(path)
        fresh[path.name] = {"key": key, "facts": facts.to_json()}
        out.append(facts)
    if fresh != cache:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"version": CACHE_VERSION, "journals": fresh}))
            os.replace(tmp, cache_path)
        except OSError:
            pass  # a cache that cannot be written is only slower next time
    return sorted(out, key=lambda f: f.started or "")
