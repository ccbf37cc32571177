"""Readiness over a large team: 500 engineers with their entries and 5,000 drill
journals. Budgets: `readiness team` ≤ 1 s; `readiness status` for one engineer ≤ 200 ms
(both in one process after the first run, which builds the journals' index; the whole
command, Python start and imports included, is measured too). One command:

    .venv/bin/python bench/readiness_bench.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from benchkit import pct, save_results
from pagerdrill.readiness import actions
from pagerdrill.readiness.status import Context, engineers, status
from readying import ROSTER, make_workspace, write_journal

ENGINEERS = 500
JOURNALS = 5000


def main() -> None:
    top = Path(tempfile.mkdtemp(prefix="readiness-bench-"))
    try:
        run(top / "ws")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run(root: Path) -> None:
    people = [{"name": f"Engineer {n:03d}", "roles": ["engineer"]} for n in range(ENGINEERS)]
    roster = {"version": 1, "people": [*ROSTER["people"], *people]}
    make_workspace(root, roster=roster)
    for n in range(JOURNALS):
        write_journal(root, f"Engineer {n % ENGINEERS:03d}", drill=f"d{n:05d}")
    ctx = Context(root)
    for p in people:
        actions.attest(ctx, p["name"], "shadow", "Dana Diaz", date="2026-11-18", hours=12)
        actions.record_quiz(ctx, p["name"], "ack, dashboards, traces, runbooks", 5.0)
    status(Context(root), "Engineer 000")  # builds the journals' cache
    team_s, one_s = [], []
    for _ in range(5):
        t = time.perf_counter()
        ctx = Context(root)
        for name in engineers(ctx):
            status(ctx, name)
        team_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        status(Context(root), "Engineer 123")
        one_s.append(time.perf_counter() - t)
    cli_team, cli_one = [], []
    env = {k: v for k, v in os.environ.items() if k != "PAGERDRILL_WORKSPACE"}
    for args, into in (
        (["team"], cli_team),
        (["status", "Engineer 123"], cli_one),
    ):
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pagerdrill", "readiness", *args, "-w", str(root)],
                capture_output=True,
                env=env,
                check=False,
            )
            into.append(time.perf_counter() - t)
    results = {
        "engineers": ENGINEERS,
        "journals": JOURNALS,
        "team_p50_s": round(pct(team_s, 50), 3),
        "team_max_s": round(max(team_s), 3),
        "status_p50_ms": round(pct(one_s, 50) * 1000, 1),
        "status_max_ms": round(max(one_s) * 1000, 1),
        "cli_team_p50_s": round(pct(cli_team, 50), 3),
        "cli_status_p50_s": round(pct(cli_one, 50), 3),
    }
    print(results)
    print(f"results in {save_results('readiness', results)}")


if __name__ == "__main__":
    main()
