"""`python -m pagerdrill.traffic --workspace ROOT --base URL --ready-file PATH`: run the
workspace's traffic profile until its duration bound, SIGTERM or SIGINT.

Started by `pagerdrill.traffic.process`, which resolved the base URL; once /metrics
answers, the ready file gets its URL and this process's pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from pagerdrill.errors import PagerdrillError
from pagerdrill.targets.state import write_private
from pagerdrill.traffic.runner import Runner, served_url
from pagerdrill.workspace import bound_hosts, load_workspace


def _log(line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {line}", flush=True)


async def _main(args: argparse.Namespace) -> int:
    workspace = load_workspace(Path(args.workspace))
    profile = workspace.config.traffic
    if profile is None:
        _log(f"{workspace.config_path}: no traffic: profile")
        return 2
    allowed = bound_hosts(workspace.config.model_dump()["roles"]) | set(args.allow_host)
    runner = Runner(profile, args.base, allowed_hosts=allowed, log=_log)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    server = await runner.serve_metrics()
    try:
        url = served_url(server)
        ready = Path(args.ready_file)
        doc = {"pid": os.getpid(), "metrics": f"{url}/metrics", "http": url,
               "health": f"{url}/healthz"}  # fmt: skip
        write_private(ready, json.dumps(doc), ready.with_name(f".{ready.name}.tmp"))
        _log(f"sending to {args.base} at {profile.rate:g} req/s; metrics on {url}/metrics")
        totals = await runner.run()
        _log(f"stopped: {totals.sent} requests, {totals.errors} failed")
    finally:
        await server.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pagerdrill.traffic")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--allow-host", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except PagerdrillError as exc:
        _log(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
