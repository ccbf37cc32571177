"""How pagerdrill writes a time, the same in the TUI, the CLI and every export.

The rule is a stopwatch's: a time is truncated toward zero, never rounded, so an
acknowledgement at 7.81 s reads 0:07 (and 0:07.8 where tenths are shown) everywhere,
and a step done at 59.9 s against a 1:00 target never reads 1:00.
"""

from __future__ import annotations

import math

# a float a hair under a whole tenth (2.3 is 2.29999...) is that tenth
_EPSILON = 1e-6


def _tenths(seconds: float) -> int:
    """Whole tenths of `abs(seconds)`, truncated."""
    return math.floor(abs(seconds) * 10 + _EPSILON)


def mmss(seconds: float | None, none: str = "—") -> str:
    """M:SS (`none` when there is no time)."""
    if seconds is None:
        return none
    whole = _tenths(seconds) // 10
    sign = "-" if seconds < 0 and whole else ""
    return f"{sign}{whole // 60}:{whole % 60:02d}"


def mmss_tenths(seconds: float | None, none: str = "—") -> str:
    """M:SS.t (`none` when there is no time)."""
    if seconds is None:
        return none
    tenths = _tenths(seconds)
    sign = "-" if seconds < 0 and tenths else ""
    whole, tenth = divmod(tenths, 10)
    return f"{sign}{whole // 60}:{whole % 60:02d}.{tenth}"


def clock(seconds: float | None, tenths: bool = False) -> str:
    """T+MM:SS from the page (T-MM:SS before it); T+MM:SS.t with `tenths`; "" for none."""
    if seconds is None:
        return ""
    count = _tenths(seconds)
    sign = "-" if seconds < 0 and (count if tenths else count // 10) else "+"
    whole, tenth = divmod(count, 10)
    text = f"T{sign}{whole // 60:02d}:{whole % 60:02d}"
    return f"{text}.{tenth}" if tenths else text


def duration(seconds: float | None, none: str = "—") -> str:
    """A length of time: 24.4s under a minute, 1m 05s from a minute on."""
    if seconds is None:
        return none
    tenths = _tenths(seconds)
    if tenths >= 600:
        whole = tenths // 10
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{tenths / 10:.1f}s"


def hours_minutes(seconds: float) -> str:
    """A span of whole minutes for people: `45 min`, `2 h`, `2 h 30 min` (truncated,
    like every time here)."""
    minutes = int(seconds // 60)
    if minutes >= 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{minutes} min"
