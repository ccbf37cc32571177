"""Benchmark the traffic profile's runner against Locust (FastHttpUser), both against the
same local HTTP server, at 50 concurrent connections with no rate cap.

    python bench/traffic_bench.py [--seconds 10] [--users 50] [--runs 1]

The server is a small aiohttp app on 127.0.0.1 in a process of its own (GET
/api/markets/{id} answers a small JSON document). Each tool runs in its own process for
the same time: ours is `pagerdrill.traffic.runner.Runner` with a one-request profile at
`concurrency` 50 and the rate bound lifted; Locust is headless, 50 FastHttpUsers with no
wait time, all spawned at once. Requests per second are counted by the server (its
requests between the first and the last it saw), the same measure for both; "ratio" is
ours / Locust's. Beside it, each client's CPU (user + system, start-up included) per
request: on a shared machine the rate follows the load of others, the CPU much less.
Needs the `bench` extra (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchkit import save_results

SERVER = """
import sys, time
from aiohttp import web
seen = {"n": 0, "first": None, "last": None}
async def market(request):
    now = time.monotonic()
    if seen["first"] is None:
        seen["first"] = now
    seen["n"] += 1
    seen["last"] = now
    return web.json_response({"id": int(request.match_info["id"]), "odds": 2.5})
async def count(_):
    return web.json_response(seen)
async def reset(_):
    seen.update(n=0, first=None, last=None)
    return web.json_response(seen)
app = web.Application()
app.router.add_get("/api/markets/{id}", market)
app.router.add_get("/_count", count)
app.router.add_post("/_reset", reset)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

OURS = """
import asyncio, json, sys
from pagerdrill.traffic.runner import Runner
from pagerdrill.workspace.traffic import TrafficProfile
url, users, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
profile = TrafficProfile.model_validate({
    "url": url, "concurrency": users,
    "requests": [{"name": "market", "path": "/api/markets/{int:1..1000}"}],
})
runner = Runner(profile, url, unbounded_rate=True)
totals = asyncio.run(runner.run(seconds))
print(json.dumps({"sent": totals.sent, "errors": totals.errors}))
"""

LOCUSTFILE = """
import random
from locust import FastHttpUser, constant, task
class Reader(FastHttpUser):
    wait_time = constant(0)
    @task
    def market(self):
        self.client.get(f"/api/markets/{random.randint(1, 1000)}", name="/api/markets/[id]")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, method: str = "GET") -> dict:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def server_rate(base: str) -> tuple[int, float]:
    seen = call(f"{base}/_count")
    if not seen["n"] or seen["last"] == seen["first"]:
        return seen["n"], 0.0
    return seen["n"], seen["n"] / (seen["last"] - seen["first"])


def children_cpu() -> float:
    """User + system seconds of the reaped child processes (each tool is one)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_ours(base: str, users: int, seconds: float) -> dict:
    call(f"{base}/_reset", "POST")
    cpu = children_cpu()
    done = subprocess.run(
        [sys.executable, "-c", OURS, base, str(users), str(seconds)],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    cpu = children_cpu() - cpu
    client = json.loads(done.stdout)
    n, rate = server_rate(base)
    return {"tool": "pagerdrill", "server_requests": n, "rate": rate, "cpu_s": cpu, **client}


def locust_bin() -> str:
    found = shutil.which("locust") or str(Path(sys.executable).with_name("locust"))
    if not Path(found).exists():
        sys.exit("locust is not installed: pip install -e '.[bench]'")
    return found


def run_locust(base: str, users: int, seconds: float) -> dict:
    call(f"{base}/_reset", "POST")
    cpu = children_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        done = subprocess.run(
            [locust_bin(), "-f", str(locustfile), "--headless", "-u", str(users),
             "-r", str(users * 100), "-t", f"{seconds:g}s", "--host", base,
             "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"],
            capture_output=True, text=True, timeout=seconds + 60, cwd=tmp, check=False,
        )  # fmt: skip
    cpu = children_cpu() - cpu
    n, rate = server_rate(base)
    return {"tool": "locust", "server_requests": n, "rate": rate, "cpu_s": cpu,
            "exit": done.returncode}  # fmt: skip


def per_request(m: dict) -> str:
    """The client's CPU per request the server counted, start-up included."""
    n = m["server_requests"]
    return f"{m['cpu_s'] / n * 1e6:,.0f} µs CPU/req" if n else "no requests"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    results: list[dict] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                call(f"{base}/_count")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the benchmark server did not start")
                time.sleep(0.1)
        print(f"server {base}; {args.users} concurrent, {args.seconds:g} s each, "
              f"{platform.machine()}, {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        for run in range(1, args.runs + 1):
            # alternate which goes first, so neither always meets a warmer server
            if run % 2:
                ours = run_ours(base, args.users, args.seconds)
                theirs = run_locust(base, args.users, args.seconds)
            else:
                theirs = run_locust(base, args.users, args.seconds)
                ours = run_ours(base, args.users, args.seconds)
            ratio = ours["rate"] / theirs["rate"] if theirs["rate"] else float("inf")
            results.append({"run": run, "ours": ours, "locust": theirs, "ratio": ratio})
            print(
                f"run {run}: pagerdrill {ours['rate']:8,.0f} req/s ({ours['errors']} errors, "
                f"{per_request(ours)}) | locust {theirs['rate']:8,.0f} req/s "
                f"({per_request(theirs)}) | ratio {ratio:.2f}x"
            )
    finally:
        server.terminate()
        server.wait(10)
    median = statistics.median(r["ratio"] for r in results)
    print(f"ratio (median of {len(results)}): {median:.2f}x Locust; goal >= 1.0x: "
          f"{'PASS' if median >= 1.0 else 'MISS'}")  # fmt: skip
    print(f"results: {save_results('traffic_bench', results)}")


if __name__ == "__main__":
    main()
