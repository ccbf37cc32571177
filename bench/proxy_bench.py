"""Benchmark the local target's http-proxy fault going in and coming out, the handover
way (SO_REUSEPORT) against the plain way (stop the api, move it, start it), on a real
local reference stack.

    python bench/proxy_bench.py [--runs 3]

During each insert and removal, three clients ask the api (a market, the promotions
route the fault breaks, /healthz) as fast as they can, each request on a new
connection, as many clients do. Counted: requests that got no HTTP answer at all
(refused, reset), and how long the insert and the removal took.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

from benchkit import save_results
from pagerdrill.faults.httpproxy import proxy_script
from pagerdrill.targets.local import LocalTarget
from pagerdrill.workspace import load_workspace

REPO = Path(__file__).resolve().parents[1]
RULES = {"path": "^/api/promotions", "status": 500}
PATHS = ("/api/markets/1", "/api/promotions", "/healthz")


def fresh_target(root: Path) -> LocalTarget:
    root.mkdir(parents=True)
    config = yaml.safe_load((REPO / "pagerdrill.yaml").read_text())
    (root / "pagerdrill.yaml").write_text(yaml.safe_dump(config))
    return LocalTarget(load_workspace(root))


def plain_way(target: LocalTarget, part: str) -> None:
    """Make the state say what an earlier pagerdrill's would: no SO_REUSEPORT."""
    with target._locked():
        state = target._read_state()
        entry = state["services"]["api"]
        (entry if part == "api" else entry["proxy"])["reuse_port"] = False
        target._write_state(state)


def one_run(target: LocalTarget, handover: bool) -> dict:
    base = target.service_endpoints("api")["http"]
    stop = threading.Event()
    seen = {"answered": 0, "no_answer": 0}

    def ask(path: str) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(limits=limits, timeout=5) as client:
            while not stop.is_set():
                try:
                    client.get(base + path)
                    seen["answered"] += 1
                except httpx.HTTPError:
                    seen["no_answer"] += 1

    threads = [threading.Thread(target=ask, args=(p,), daemon=True) for p in PATHS]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        if not handover:
            plain_way(target, "api")
        t0 = time.perf_counter()
        put = target.insert_http_proxy("api", RULES, proxy_script())
        insert_s = time.perf_counter() - t0
        time.sleep(1.0)
        if not handover:
            plain_way(target, "proxy")
        t0 = time.perf_counter()
        taken = target.remove_http_proxy("api")
        remove_s = time.perf_counter() - t0
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert bool(put["handover"]) == handover and bool(taken.get("handover")) == handover
    return {"insert_s": insert_s, "remove_s": remove_s, **seen}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target = fresh_target(Path(tmp) / "ws")
        target.up()
        try:
            runs = {
                way: [one_run(target, way == "handover") for _ in range(args.runs)]
                for way in ("handover", "plain")
            }
        finally:
            target.down()
    results: dict = {"machine": platform.node(), "runs": args.runs}
    for way, rows in runs.items():
        results[way] = {
            "no_answer_total": sum(r["no_answer"] for r in rows),
            "answered_total": sum(r["answered"] for r in rows),
            "insert_s_median": round(statistics.median(r["insert_s"] for r in rows), 3),
            "remove_s_median": round(statistics.median(r["remove_s"] for r in rows), 3),
            "no_answer_per_run": [r["no_answer"] for r in rows],
        }
    for way in runs:
        r = results[way]
        print(
            f"{way:9} requests with no answer: {r['no_answer_total']:4} of "
            f"{r['no_answer_total'] + r['answered_total']} "
            f"(per run {r['no_answer_per_run']}); insert {r['insert_s_median']:.2f} s, "
            f"removal {r['remove_s_median']:.2f} s (medians)"
        )
    print(f"saved {save_results('proxy_bench', results)}")
    print(json.dumps(results["handover"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
