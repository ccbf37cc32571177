"""Benchmark the local reference stack: `stack up` to all-healthy, an `api` stop→start
to healthy again, and how fast `pagerdrill --help` answers.

    python bench/stack_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchkit import save_results
from pagerdrill.targets.local import LocalTarget
from pagerdrill.workspace import load_workspace

REPO = Path(__file__).resolve().parents[1]
BUDGETS = {"stack_up_s": 3.0, "api_stop_start_s": 1.0, "help_s": 0.3}


def fresh_workspace(root: Path) -> LocalTarget:
    root.mkdir(parents=True)
    config = yaml.safe_load((REPO / "pagerdrill.yaml").read_text())
    (root / "pagerdrill.yaml").write_text(yaml.safe_dump(config))
    return LocalTarget(load_workspace(root))


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    up_times: list[float] = []
    restart_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pagerdrill-bench-") as tmp:
        for run in range(args.runs):
            target = fresh_workspace(Path(tmp) / f"ws{run}")
            started = time.perf_counter()
            statuses = target.up()
            up_times.append(time.perf_counter() - started)
            try:
                assert all(s.health == "healthy" for s in statuses), statuses
                time.sleep(1.0)  # let traffic settle before the stop
                started = time.perf_counter()
                target.stop("api")
                target.start("api")  # returns once /healthz answers 200
                restart_times.append(time.perf_counter() - started)
            finally:
                target.down()

    help_times = []
    for _ in range(max(args.runs, 15)):  # one run is ~0.2 s: take enough for a stable median
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).with_name("pagerdrill")), "--help"],
            check=True,
            capture_output=True,
        )
        help_times.append(time.perf_counter() - started)

    results = {
        "stack_up_s": summary(up_times),
        "api_stop_start_s": summary(restart_times),
        "help_s": summary(help_times),
    }
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, cpus={__import__('os').cpu_count()}"
    )
    print(f"{'measure':<22}{'median':>9}{'min':>9}{'max':>9}{'budget':>9}  verdict")
    failed = False
    for name, stats in results.items():
        ok = stats["median"] <= BUDGETS[name]
        failed |= not ok
        print(
            f"{name:<22}{stats['median']:>8.3f}s{stats['min']:>8.3f}s{stats['max']:>8.3f}s"
            f"{BUDGETS[name]:>8.2f}s  {'ok' if ok else 'OVER BUDGET'}"
        )
    save_results("stack_bench", results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
