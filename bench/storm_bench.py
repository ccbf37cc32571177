"""Benchmark pagerdrill's socket.io handshake storm against Artillery's socketio engine,
both against the same local `rt` server (handshake limit so high nothing is throttled).

    python bench/storm_bench.py [--sizes 200,1000,2000] [--runs 1]

For each size N, each tool runs N clients that connect (socket.io, websocket transport)
and disconnect at once, in a child process, and we report:

- server hs/s: handshakes per second as the *server* counted them (rt_handshakes_*_total,
  scraped every 10 ms while the tool runs: first count to last), the same measure for
  both tools; "ratio" is ours / Artillery's;
- p95: handshake latency. Ours: TCP connect start -> socket.io CONNECT ack. Artillery
  records no connect latency for socketio; we show its vusers.session_length p95 (VU
  start -> connected, with an empty flow), the closest it has;
- client CPU: user + system seconds of the client process (and its reaped children) from
  os.wait4, start-up included (Python + our module; Node + Artillery).

Artillery is installed into bench/.artillery on first run (npm; the Playwright browser
download that one of its optional engines wants is skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import save_results

REPO = Path(__file__).resolve().parents[1]
ARTILLERY_DIR = REPO / "bench" / ".artillery"
ARTILLERY_BIN = ARTILLERY_DIR / "node_modules" / ".bin" / "artillery"
ARTILLERY_SPEC = "artillery@2"
SAMPLE_EVERY_S = 0.01

OUR_CHILD = """
import json, sys, time
from pagerdrill.faults.storm import run_storm
started_at = time.time()
result = run_storm(sys.argv[1], int(sys.argv[2]), concurrency=int(sys.argv[3]), deadline_s=120)
print(json.dumps({"started_at": started_at, **result.to_json()}))
"""


@dataclass
class Measure:
    tool: str
    n: int
    server_handshakes: int
    server_rate: float | None
    client_rate: float | None
    p95_s: float | None
    cpu_s: float
    wall_s: float
    errors: int
    note: str = ""
    extra: dict = field(default_factory=dict)


# -- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_rt(port: int, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "SERVICE_NAME": "rt",
        "HANDSHAKE_LIMIT": "100000000",
        "HANDSHAKE_WINDOW_S": "1",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pagerdrill.refstack.rt"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rt exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("rt did not answer /healthz within 15 s")


def handshakes_counted(base: str) -> int:
    """accepted + rejected, as the server counts them."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("rt_handshakes_accepted_total", "rt_handshakes_rejected_total")):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


class Sampler(threading.Thread):
    """Scrapes the server's handshake count every 10 ms while a tool runs, each sample
    stamped when its answer arrives (a busy server answers late, but the count it gives
    is the count at that moment)."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base = base
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            count = handshakes_counted(self.base)
            self.samples.append((time.time(), count))
            self._halt.wait(SAMPLE_EVERY_S)

    def finish(self) -> tuple[int, float]:
        """(handshakes counted while sampling, wall-clock time the final count was first
        seen)."""
        self._halt.set()
        self.join()
        count = handshakes_counted(self.base)
        self.samples.append((time.time(), count))
        base, final = self.samples[0][1], self.samples[-1][1]
        reached = next(t for t, c in self.samples if c == final)
        return final - base, reached


def rate(count: int, started_at: float | None, ended_at: float | None) -> float | None:
    if started_at is None or ended_at is None or ended_at <= started_at or count <= 0:
        return None
    return count / (ended_at - started_at)


def run_child(argv: list[str], env: dict | None = None, cwd: Path | None = None):
    """(exit code, stdout, stderr, CPU seconds, wall seconds) of one child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return proc.returncode, out.read().decode(), err.read().decode(), cpu, wall


# -- the tools ----------------------------------------------------------------------------


def run_ours(base: str, n: int, concurrency: int) -> Measure:
    sampler = Sampler(base)
    sampler.start()
    code, out, err, cpu, wall = run_child(
        [sys.executable, "-c", OUR_CHILD, base, str(n), str(concurrency)]
    )
    counted, reached_at = sampler.finish()
    if code != 0:
        raise SystemExit(f"our storm failed ({code}):\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    started_at = result.pop("started_at")
    return Measure(
        tool="pagerdrill",
        n=n,
        server_handshakes=counted,
        server_rate=rate(counted, started_at, reached_at),
        client_rate=rate(result["attempted"], 0.0, result["duration_s"]),
        p95_s=result["latency_p95_s"],
        cpu_s=cpu,
        wall_s=wall,
        errors=result["errors"] + result["rejected"],
        extra={"result": result},
    )


def ensure_artillery() -> None:
    if ARTILLERY_BIN.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: Node.js 20 and npm are needed for the Artillery side")
    print(f"installing {ARTILLERY_SPEC} into {ARTILLERY_DIR.relative_to(REPO)} ...", flush=True)
    env = {
        **os.environ,
        # artillery@2 pulls in its Playwright engine, whose install script downloads a
        # browser; the socketio engine does not need it (and the CDN may be unreachable)
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
    }
    subprocess.run(
        [npm, "install", "--prefix", str(ARTILLERY_DIR), ARTILLERY_SPEC, "--no-audit", "--no-fund"],
        check=True,
        env=env,
    )
    if not ARTILLERY_BIN.exists():
        raise SystemExit(f"npm install finished but {ARTILLERY_BIN} is missing")


def artillery_script(base: str, n: int, arrive_s: float) -> dict:
    return {
        "config": {
            "target": base,
            # N arrivals spread over `arrive_s`: as close to "all at once" as the
            # arrival timer allows (it ticks per arrival)
            "phases": [{"duration": f"{round(arrive_s * 1000)}ms", "arrivalCount": n}],
            # the same transport as ours: straight to websocket, no long-polling first
            "socketio": {"transports": ["websocket"]},
        },
        # an empty flow: each virtual user connects, then disconnects
        "scenarios": [{"engine": "socketio", "flow": []}],
    }


def run_artillery(base: str, n: int, arrive_s: float, workdir: Path) -> Measure:
    script = workdir / f"storm-{n}.json"
    report = workdir / f"report-{n}.json"
    script.write_text(json.dumps(artillery_script(base, n, arrive_s)))
    report.unlink(missing_ok=True)
    env = {**os.environ, "ARTILLERY_DISABLE_TELEMETRY": "true", "NO_COLOR": "1"}
    sampler = Sampler(base)
    sampler.start()
    code, _out, err, cpu, wall = run_child(
        [str(ARTILLERY_BIN), "run", "--output", str(report), str(script)], env=env, cwd=workdir
    )
    counted, reached_at = sampler.finish()
    if code != 0 or not report.exists():
        raise SystemExit(f"artillery failed ({code}):\n{err[-2000:]}")
    aggregate = json.loads(report.read_text())["aggregate"]
    counters = aggregate.get("counters", {})
    session = aggregate.get("summaries", {}).get("vusers.session_length", {})
    p95_ms = session.get("p95")
    # first counter = the first VU created, last = the last VU completed (epoch ms)
    first_ms, last_ms = aggregate.get("firstCounterAt"), aggregate.get("lastCounterAt")
    started_at = first_ms / 1000 if first_ms else None
    return Measure(
        tool="artillery",
        n=n,
        server_handshakes=counted,
        server_rate=rate(counted, started_at, reached_at),
        client_rate=rate(
            int(counters.get("vusers.completed", 0)),
            started_at,
            last_ms / 1000 if last_ms else None,
        ),
        p95_s=p95_ms / 1000 if p95_ms is not None else None,
        cpu_s=cpu,
        wall_s=wall,
        errors=int(counters.get("vusers.failed", 0)),
        note="p95 = vusers.session_length",
        extra={"counters": counters, "arrive_s": arrive_s},
    )


# -- the report ---------------------------------------------------------------------------


def median_measure(runs: list[Measure]) -> Measure:
    if len(runs) == 1:
        return runs[0]
    rates = [m.server_rate for m in runs if m.server_rate is not None]
    client_rates = [m.client_rate for m in runs if m.client_rate is not None]
    p95s = [m.p95_s for m in runs if m.p95_s is not None]
    first = runs[0]
    return Measure(
        tool=first.tool,
        n=first.n,
        server_handshakes=int(statistics.median(m.server_handshakes for m in runs)),
        server_rate=statistics.median(rates) if rates else None,
        client_rate=statistics.median(client_rates) if client_rates else None,
        p95_s=statistics.median(p95s) if p95s else None,
        cpu_s=statistics.median(m.cpu_s for m in runs),
        wall_s=statistics.median(m.wall_s for m in runs),
        errors=sum(m.errors for m in runs),
        note=first.note,
        extra={"runs": [m.__dict__ for m in runs]},
    )


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,2000", help="comma-separated N")
    parser.add_argument("--runs", type=int, default=1, help="runs per tool and size (median)")
    parser.add_argument("--concurrency", type=int, default=200, help="ours: in flight")
    parser.add_argument(
        "--artillery-arrive-s",
        type=float,
        default=0.1,
        help="artillery: spread the N arrivals over this many seconds",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    ensure_artillery()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results: dict[int, dict[str, Measure]] = {}
    with tempfile.TemporaryDirectory(prefix="pagerdrill-storm-bench-") as tmp:
        workdir = Path(tmp)
        server = start_rt(port, workdir / "rt.log")
        try:
            run_ours(base, 200, args.concurrency)  # warm the server up, not measured
            for n in sizes:
                ours: list[Measure] = []
                theirs: list[Measure] = []
                for _ in range(args.runs):
                    ours.append(run_ours(base, n, args.concurrency))
                    theirs.append(run_artillery(base, n, args.artillery_arrive_s, workdir))
                results[n] = {"ours": median_measure(ours), "artillery": median_measure(theirs)}
                print(f"  N={n} done", file=sys.stderr, flush=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, cpus={os.cpu_count()}; runs per cell: {args.runs}"
    )
    header = (
        f"{'N':>6}  {'tool':<12}{'server hs/s':>12}{'client hs/s':>12}{'p95 ms':>9}"
        f"{'CPU s':>8}{'wall s':>8}{'counted':>9}{'failed':>8}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for n, pair in results.items():
        for m in (pair["ours"], pair["artillery"]):
            p95_ms = m.p95_s * 1000 if m.p95_s is not None else None
            print(
                f"{n:>6}  {m.tool:<12}{fmt(m.server_rate, '.0f'):>12}"
                f"{fmt(m.client_rate, '.0f'):>12}{fmt(p95_ms, '.1f'):>9}"
                f"{m.cpu_s:>8.2f}{m.wall_s:>8.2f}{m.server_handshakes:>9}{m.errors:>8}"
            )
        o, a = pair["ours"], pair["artillery"]
        ratios = [
            ratio(o.server_rate, a.server_rate),
            ratio(o.client_rate, a.client_rate),
            ratio(o.p95_s, a.p95_s),
            ratio(o.cpu_s, a.cpu_s),
        ]
        ok &= ratios[0] is not None and ratios[0] >= 1.0
        print(
            f"{'':>6}  {'ours/art.':<12}{fmt(ratios[0], '.2f') + 'x':>12}"
            f"{fmt(ratios[1], '.2f') + 'x':>12}{fmt(ratios[2], '.2f') + 'x':>9}"
            f"{fmt(ratios[3], '.2f') + 'x':>8}"
        )
    print(
        "server hs/s: handshakes counted by rt's /metrics / (first client attempt -> final "
        "count seen).\n"
        "client hs/s: ours = attempted / storm duration; artillery = vusers.completed / "
        "(first VU created -> last VU completed).\n"
        "p95: ours = TCP connect -> CONNECT ack; artillery records no connect latency for "
        "socketio, so its\nvusers.session_length p95 (VU start -> connected, empty flow). "
        "CPU: client process incl. start-up."
    )
    save_results(
        "storm_bench",
        {str(n): {k: m.__dict__ for k, m in pair.items()} for n, pair in results.items()},
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
