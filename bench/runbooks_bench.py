"""Runbook search over 2,000 generated runbooks: the first query (parse + build the FTS5
index) and every query after it (budget: 100 ms). One command, prints the figures:

    .venv/bin/python bench/runbooks_bench.py
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from benchkit import pct, save_results
from pagerdrill.runbooks import RunbookIndex, load_runbooks

N = 2000
WORDS = tuple(
    [
        "queue",
        "cache",
        "redis",
        "pod",
        "node",
        "disk",
        "latency",
        "error",
        "restart",
        "leader",
        "replica",
        "memory",
        "cpu",
        "socket",
        "handshake",
        "deploy",
        "rollback",
        "volume",
        "certificate",
        "dns",
        "timeout",
        "throttle",
    ]
)
QUERIES = [
    "pods keep restarting",
    "disk filling up on the node",
    "queue backing up",
    "etcd cluster has no leader",
    "market pages are slow",
    "certificate expires",
]


def write_corpus(folder: Path) -> None:
    rnd = random.Random(15)
    (folder / "pagerdrill.yaml").write_text("version: 1\n")
    runbooks = folder / "runbooks"
    runbooks.mkdir()
    for i in range(N):
        w = [rnd.choice(WORDS) for _ in range(400)]
        name = f"{w[0]}-{w[1]}-{i}"
        body = " ".join(w[10:])
        runbooks.joinpath(f"{name}.md").write_text(
            f"---\nseverity: P{rnd.randint(1, 3)}\n---\n# {w[0].title()} {w[1]} {i}\n\n"
            f"## Symptom\n{' '.join(w[2:10])}.\n\n## Likely causes\n- {w[3]}\n\n"
            f"## Diagnosis\nLocal stack:\n```sh\ncurl -s $API/metrics | grep {w[4]}\n```\n"
            f"Deployed:\n```sh\nkubectl get pods\n```\n\n## Fix\n1. {body}\n\n"
            f"## Prevention\n- alert on {w[5]}\n"
        )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_corpus(root)
        t0 = time.perf_counter()
        books = load_runbooks(root)
        index = RunbookIndex(books)
        index.search(QUERIES[0])
        first = time.perf_counter() - t0
        times = []
        for _ in range(20):
            for q in QUERIES:
                t = time.perf_counter()
                index.search(q, 10)
                times.append((time.perf_counter() - t) * 1000)
    results = {
        "runbooks": N,
        "first_query_s": round(first, 3),
        "after_first_ms": {
            "p50": round(statistics.median(times), 2),
            "p95": round(pct(times, 95), 2),
            "max": round(max(times), 2),
        },
        "budget_ms": 100,
    }
    print(f"{N} runbooks: first query (parse + index) {first:.2f} s")
    after = results["after_first_ms"]
    print(f"after the first: p50 {after['p50']} ms, p95 {after['p95']} ms, max {after['max']} ms")
    print(f"saved {save_results('runbooks_bench', results)}")


if __name__ == "__main__":
    main()
