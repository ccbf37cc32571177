"""How fast the lead's views are: `drills list` over 1,000 journals, and exporting a
10,000-event journal in each format.

    python bench/reports_bench.py [--journals 1000] [--events 10000] [--runs 5]

The journals are real ones (tests/fixtures/journals, recorded from headless runs),
copied under new drill ids; the 10,000-event journal is a real one whose probe
samples are repeated along its timeline. Budgets: list ≤ 1 s, export ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pagerdrill.reports.drills import list_drills  # noqa: E402
from pagerdrill.reports.html import render_html  # noqa: E402
from pagerdrill.reports.text import markdown, slack_messages, to_json  # noqa: E402
from pagerdrill.reports.timeline import load  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "journals"


def make_journals(folder: Path, count: int) -> None:
    sources = sorted(FIXTURES.glob("*.jsonl"))
    for i in range(count):
        src = sources[i % len(sources)]
        lines = src.read_text().splitlines()
        old = json.loads(lines[0])["drill"]
        new = f"{old[:-4]}{i:04x}"
        (folder / f"{new}.jsonl").write_text("\n".join(lines).replace(old, new) + "\n")


def make_big_journal(path: Path, events: int) -> None:
    lines = [json.loads(x) for x in (FIXTURES / "redis-cache-flush.jsonl").read_text().splitlines()]
    samples = [e for e in lines if e["type"] == "probe.sample"]
    others = [e for e in lines if e["type"] != "probe.sample"]
    repeat = max(1, (events - len(others)) // max(1, len(samples)))
    out = []
    for e in lines:
        if e["type"] != "probe.sample":
            out.append(e)
            continue
        for k in range(repeat):  # the same signal, sampled `repeat` times as often
            out.append({**e, "t": e["t"] + k / repeat})
    for seq, e in enumerate(out):
        e["seq"] = seq
    path.write_text("\n".join(json.dumps(e, separators=(",", ":")) for e in out) + "\n")


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def row(name: str, times: list[float], budget: float) -> str:
    med = statistics.median(times)
    verdict = "PASS" if med <= budget else "OVER"
    return (
        f"{name:<44} {med * 1000:9.1f} ms {max(times) * 1000:9.1f} ms "
        f"{budget * 1000:8.0f} ms  {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journals", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pagerdrill-reports-bench-"))
    try:
        drills = tmp / "drills"
        drills.mkdir()
        make_journals(drills, args.journals)
        index = tmp / ".pagerdrill" / "drills-index.json"
        print(f"{'measure':<44} {'median':>12} {'max':>12} {'budget':>11}")
        cold = []
        for _ in range(args.runs):
            index.unlink(missing_ok=True)
            cold += timed(lambda: list_drills(drills, index), 1)
        print(row(f"drills list, {args.journals} journals, no index", cold, 1.0))
        warm = timed(lambda: list_drills(drills, index), args.runs)
        print(row(f"drills list, {args.journals} journals, indexed", warm, 1.0))
        big = tmp / "big.jsonl"
        make_big_journal(big, args.events)
        n = sum(1 for _ in big.open())
        # as `drills export` reads the journal for each format
        formats = {
            "slack": lambda: slack_messages(load(big, samples=False)),
            "markdown": lambda: markdown(load(big, samples=False)),
            "json": lambda: json.dumps(to_json(load(big, samples=2000)), indent=2),
            "html": lambda: render_html(load(big, samples=600)),
        }
        for name, fn in formats.items():
            fn()  # warm up imports
            print(row(f"export {name}, {n:,}-event journal", timed(fn, args.runs), 0.2))
        size = len(render_html(load(big, samples=600)).encode())
        print(f"html report of the {n:,}-event journal: {size / 1024:.0f} KiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
