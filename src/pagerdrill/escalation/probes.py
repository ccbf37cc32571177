"""`escalation validate --online`: is each video bridge and webhook of the matrix there?

One request per URL (HEAD, then GET where HEAD is refused), status only, a short
timeout, no redirects followed: only the hosts the matrix names are ever contacted.
A webhook that answers 405 to a GET exists (it takes POSTs only), so it counts as up.
Every result is appended, with its time, to `escalation/validation.jsonl` in the
workspace: the record that the matrix's channels were tried, and when.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pagerdrill.escalation.load import LoadedMatrix
from pagerdrill.escalation.model import SEVERITIES
from pagerdrill.escalation.validate import URL, Problem

LOG_NAME = "escalation/validation.jsonl"
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Target:
    url: str
    kind: Literal["video_bridge", "webhook"]
    where: str
    line: int | None


@dataclass(frozen=True)
class ProbeResult:
    target: Target
    time: datetime
    status: int | None
    ok: bool
    error: str | None
    elapsed_ms: float

    def to_json(self, file: str) -> dict:
        return {
            "time": self.time.isoformat(),
            "url": self.target.url,
            "host": urlsplit(self.target.url).hostname,
            "kind": self.target.kind,
            "where": self.target.where,
            "file": file,
            "line": self.target.line,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def targets(matrix: LoadedMatrix) -> list[Target]:
    """Every bridge and webhook URL of the matrix, once each, at the first place named."""
    model = matrix.model
    if model is None:
        return []
    found: list[Target] = []

    def add(url: str | None, kind, where: tuple) -> None:
        if url and URL.match(url) and all(t.url != url for t in found):
            dotted = ".".join(str(p) for p in where)
            found.append(Target(url, kind, dotted, matrix.line(*where)))

    for sev in SEVERITIES:
        tier = (model.tiers or {}).get(sev)
        if tier is None:
            continue
        own = tier.video_bridge is not None
        add(
            tier.video_bridge or model.video_bridge,
            "video_bridge",
            ("tiers", sev, "video_bridge") if own else ("video_bridge",),
        )
        add(tier.channel_webhook, "webhook", ("tiers", sev, "channel_webhook"))
    add(model.channel_webhook, "webhook", ("channel_webhook",))
    if model.vendor is not None:
        add(model.vendor.webhook, "webhook", ("vendor", "webhook"))
    return found


def probe(target: Target, timeout_s: float = TIMEOUT_S) -> ProbeResult:
    import httpx

    started, when = time.monotonic(), datetime.now(UTC)
    status: int | None = None
    error = None
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            response = client.head(target.url)
            if response.status_code in (405, 501):
                response = client.get(target.url)
            status = response.status_code
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    ok = status is not None and (status < 400 or (target.kind == "webhook" and status == 405))
    return ProbeResult(target, when, status, ok, error, (time.monotonic() - started) * 1000)


def probe_all(
    matrix: LoadedMatrix, log: Path | None = None, timeout_s: float = TIMEOUT_S
) -> tuple[list[ProbeResult], list[Problem]]:
    """Probe every target; append each result to `log` (default: the workspace's
    escalation/validation.jsonl); a target that is not up is a problem."""
    results = [probe(t, timeout_s) for t in targets(matrix)]
    log = log or matrix.root / LOG_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r.to_json(str(matrix.path))) + "\n" for r in results)
    with open(log, "a", encoding="utf-8") as out:  # one write: lines of a run stay together
        out.write(lines)
        out.flush()
        os.fsync(out.fileno())
    problems = [
        Problem(
            kind="unreachable",
            file=str(matrix.path),
            line=r.target.line,
            message=_failure(r),
        )
        for r in results
        if not r.ok
    ]
    return results, problems


def _failure(r: ProbeResult) -> str:
    got = f"answered {r.status}" if r.status is not None else f"did not answer ({r.error})"
    expected = "2xx or 3xx" if r.target.kind == "video_bridge" else "2xx, 3xx or 405"
    return (
        f"{r.target.where}: {r.target.url} {got} (expected a {expected} answer; "
        f"probed {r.time:%Y-%m-%d %H:%M:%S} UTC)"
    )
