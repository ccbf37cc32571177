"""What every target keeps beside the workspace: a private state folder, state files
written atomically, the advisory lock of one stack, and its progress events.

One copy, so a new target (a Kubernetes one) gets the same guarantees: a state file
is private from its first byte and never seen half-written, and a crashed command
never leaves a stack locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pagerdrill.errors import StackError
from pagerdrill.targets.base import Progress, ProgressEvent, exclusive


def ensure_private_dir(path: Path) -> None:
    """Private to its owner: state files name passwords and tokens, logs may too."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


@contextlib.contextmanager
def stack_lock(state_dir: Path, lock_name: str, wait_s: float, busy: str) -> Iterator[None]:
    """Hold the stack's lock (`state_dir/lock_name`) while changing it."""
    ensure_private_dir(state_dir)
    with exclusive(state_dir / lock_name, wait_s, busy):
        yield


def write_private(path: Path, text: str, tmp: Path) -> None:
    """Write `text` to `path` through `tmp`, atomically: private (0600) from its first
    byte, never widened then narrowed; a leftover `tmp` of a crash is replaced, not
    reused."""
    ensure_private_dir(path.parent)
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_state(path: Path, state: dict[str, Any], tmp: Path) -> None:
    """Write a state file (sorted, indented JSON) atomically and privately."""
    write_private(path, json.dumps(state, indent=2, sort_keys=True), tmp)


ABSENT: Any = object()
"""What `read_state` returns when there is no state file (a file may hold `null`)."""


def read_state(path: Path, bad_state: Callable[[str], StackError]) -> Any:
    """The parsed state file at `path`, ABSENT when there is none; a file that cannot
    be read or parsed raises `bad_state(why)` (the caller checks the shape)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return ABSENT
    except (OSError, ValueError) as exc:
        raise bad_state(str(exc)) from None


def bad_state_error(owner: str, path: Path, why: str, remedy: str) -> StackError:
    """A state file pagerdrill did not write (or that a crash or a person damaged)."""
    return StackError(owner, f"{path} is not a state file pagerdrill wrote ({why}); {remedy}")


def emit(
    progress: Progress | None,
    service: str,
    phase: str,
    t0: float,
    emitted: set[tuple[str, str]] | None = None,
    detail: str = "",
) -> None:
    """Report `service` reaching `phase`, `t0` being when the command began; with
    `emitted`, each (phase, service) once only."""
    if emitted is not None:
        if (phase, service) in emitted:
            return
        emitted.add((phase, service))
    if progress is not None:
        progress(ProgressEvent(service, phase, time.monotonic() - t0, detail))  # type: ignore[arg-type]
