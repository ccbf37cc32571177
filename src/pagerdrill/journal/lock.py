"""One drill per stack: the stack's drill lock, and who holds it."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pagerdrill.errors import PagerdrillError


class DrillBusyError(PagerdrillError):
    """Another drill runs on the same stack."""


class DrillLock:
    """One drill per stack. An flock, so the kernel releases it when the holder dies
    (a crashed drill never leaves it stuck); the file says who holds it."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / "drill.lock"
        self._fd: int | None = None

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None

    @property
    def is_held(self) -> bool:
        """This object holds the lock."""
        return self._fd is not None

    def acquire(self, info: dict, wait_s: float = 0.0) -> None:
        """Take the lock, waiting up to `wait_s` for its holder to let go; DrillBusyError
        naming the holder when it does not."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise DrillBusyError(_busy_message(self.holder())) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @contextmanager
    def held(self, info: dict) -> Iterator[None]:
        self.acquire(info)
        try:
            yield
        finally:
            self.release()


def holder_text(holder: dict) -> str:
    """Who holds the stack, for a person: the drill, its scenario and engineer."""
    if holder.get("command"):
        return f"`pagerdrill {holder['command']}` (pid {holder.get('pid')})"
    return (
        f"drill {holder.get('drill')} ({holder.get('scenario')}, engineer "
        f"{holder.get('engineer')}, pid {holder.get('pid')})"
    )


def _busy_message(holder: dict | None) -> str:
    if not holder:
        return "another drill is running on this stack; one drill per stack at a time"
    if holder.get("command"):
        return f"{holder_text(holder)} is changing this stack; one drill per stack at a time"
    return (
        f"drill {holder.get('drill')} ({holder.get('scenario')}, engineer "
        f"{holder.get('engineer')}) is running on this stack since {holder.get('since')} "
        f"(pid {holder.get('pid')}); one drill per stack at a time"
    )
