"""Benchmark the drill TUI (`pagerdrill drill`) in a real terminal: keypress-to-repaint
latency, and the CPU the app takes while a paged drill idles.

    python bench/tui_bench.py [--quick] [--keys N] [--idle-s S] [--profile DIR]

The app runs as `pagerdrill drill` would: a child process on a pseudo-terminal
(120x40, TERM=xterm-256color), with Textual's real Linux driver, over a local
reference stack this script brings up in a temp workspace and always takes down. The
child drills api-500-injection (quiet 0.5-1 s, recovery_s 2; the scenario's fault has
no duration, so it stays in until the drill ends) and is paged; the engine ticks the
probes and the signals pane at 1 Hz. The figures, in order:

1. idle CPU, empty timeline: no keys for S s (30; 10 with --quick). The child's own
   CPU time (time.process_time(): every thread of the process) over the wall time;
   the share of its main thread (Textual's event loop: the UI) from /proc.
2. keypress -> repaint, empty timeline (info).
3. the timeline: 10,000 `note` actions through engine.act() (each journalled with
   fsync), then a wait until the events pane holds the last one.
4. idle CPU, 10,000-event timeline.
5. keypress -> repaint, 10,000-event timeline: N keys (100; 30 with --quick), cycling
   checklist down, up, `?` (help), escape, `l` (logs), escape. Each key also gets the
   child's CPU time, every thread, from 20 ms before it to its repaint ("CPU/key"), and
   its main thread's (the UI's) from the key's bytes to the repaint, from
   /proc/PID/task/PID/schedstat ("UI/key"): what the key cost the app itself, however
   busy the machine was.
6. escape as a bare ESC byte (info; what a terminal without the kitty keyboard
   protocol sends): Textual holds a bare ESC for ESCDELAY (100 ms) in case a sequence
   follows.
Each idle and key phase also reports the machine's steal time (/proc/stat): the share
of its CPU the hypervisor gave to other guests meanwhile. On a shared VM, a slow run
usually had a lot of it. Then the drill is aborted through engine.abort() (every fault
reverted), the child exits and the stack goes down. Verdicts: the latency's p95 against
50 ms ("max over" flags the tail), the idle CPU against 5% of one core. Exit code 1 if
any is over.

How a repaint is seen: this script is the terminal. It answers Textual's DECRQM query
for synchronized output (mode 2026), so every frame the app writes is bracketed by
`CSI ?2026h` ... `CSI ?2026l`, as a modern terminal would show it: all at once, at the
frame's end. A small emulator (cursor moves, SGR, erase) keeps the 120x40 grid of
characters and their styles. A key's time runs from just before its bytes are written to
the pty master to the read that brought the end of the first frame after which the grid
shows the change: the highlighted checklist row moved (the one step row whose background
differs from the others), the help dialog's last line is there (or gone), the logs
pane's title is there (or gone). Escape is sent as the kitty keyboard protocol's
`CSI 27u` (Textual turns that protocol on) unless the row says bare ESC.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import cProfile
import fcntl
import json
import logging
import os
import platform
import pty
import random
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchkit import pct, save_results

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "api-500-injection.yaml"
PARAMS = {"quiet_min_s": "0.5", "quiet_max_s": "1", "recovery_s": "2"}
WIDTH, HEIGHT = 120, 40
NOTES = 10_000
BUDGET_KEY_MS = 50.0
BUDGET_CPU_PCT = 5.0
KEY_TIMEOUT_S = 30.0  # a loaded machine can take seconds; a latency is a latency
PAGE_TIMEOUT_S = 90.0
BARE_ESC_RUNS = 10

KEY_BYTES = {
    "down": b"\x1b[B",
    "up": b"\x1b[A",
    "?": b"?",
    "l": b"l",
    "escape": b"\x1b[27u",  # the kitty keyboard protocol's escape
    "bare-escape": b"\x1b",
}


# ---------------------------------------------------------------- the child: the app


def child(args: argparse.Namespace) -> int:
    """The app on this process's terminal (the pty), plus a control thread reading
    commands from the parent on a pipe and answering on another."""
    logging.basicConfig(
        filename=args.log, level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s"
    )
    from pagerdrill.drill.engine import Action
    from pagerdrill.tui.app import make_app
    from pagerdrill.tui.wrapping import EventLog

    ctl_in = os.fdopen(args.ctl_in, "r")
    ctl_out = os.fdopen(args.ctl_out, "w", buffering=1)
    app = make_app(
        Path(args.workspace), str(SCENARIO), "tui-bench", dict(PARAMS), ensure_stack=False
    )
    engine = app.engine

    def reply(*parts: object) -> None:
        ctl_out.write(" ".join(str(p) for p in parts) + "\n")
        ctl_out.flush()

    profiler: cProfile.Profile | None = None

    def on_ui_thread(call: Callable[[], object]) -> None:
        app.call_from_thread(lambda: call())  # a builtin has no signature for Textual

    def control() -> None:
        nonlocal profiler
        for line in ctl_in:
            cmd, *rest = line.split()
            try:
                if cmd == "wait-page":
                    deadline = time.monotonic() + float(rest[0])
                    while engine.page_mono is None and not engine.done:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.05)
                    if engine.page_mono is not None and not engine.done:
                        reply("paged", engine.phase.value)
                    else:
                        reply("no-page", engine.phase.value, repr(engine.abort_reason))
                elif cmd == "cpu":
                    reply("cpu", repr(time.process_time()), repr(time.monotonic()))
                elif cmd == "notes":
                    n = int(rest[0])
                    events = app.call_from_thread(app.drill_screen.query_one, "#events", EventLog)
                    started = time.monotonic()
                    for i in range(n):
                        engine.act(Action("note", text=f"bench note {i + 1} of {n}"))
                    acted = time.monotonic() - started
                    last = f"bench note {n} of {n}"
                    deadline = time.monotonic() + 600
                    while not (events.lines and events.lines[-1].endswith(last)):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the events pane never got the last note")
                        time.sleep(0.01)  # until the UI thread has written the last one
                    applied = time.monotonic() - started
                    reply("notes", n, repr(acted), repr(applied), len(events.lines))
                elif cmd == "profile-on":
                    profiler = cProfile.Profile()
                    on_ui_thread(profiler.enable)  # so it profiles the UI thread
                    reply("profiling")
                elif cmd == "profile-off":
                    assert profiler is not None
                    on_ui_thread(profiler.disable)
                    profiler.dump_stats(rest[0])
                    reply("profiled", rest[0])
                elif cmd == "abort":
                    engine.abort("tui bench finished")
                    reply("aborted", engine.phase.value, json.dumps(engine.revert_failed))
                    app.call_from_thread(app.exit)
                else:
                    reply("error", f"unknown command {cmd!r}")
            except Exception as exc:
                logging.exception("bench control: %s failed", cmd)
                reply("error", repr(exc).replace("\n", " "))
        # the bench is gone (its end of the pipe closed): revert, then exit
        if not engine.done:
            engine.abort("the tui bench went away")
            with contextlib.suppress(Exception):
                app.call_from_thread(app.exit)

    threading.Thread(target=control, name="bench-control", daemon=True).start()
    app.run()
    reply("exited", engine.phase.value, json.dumps(engine.revert_failed))
    return 0


# ---------------------------------------------------------------- the terminal


SEQ = re.compile(
    r"\x1b(?:\[([0-?]*)([ -/]*)([@-~])"  # CSI
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    r"|P[^\x1b]*\x1b\\"  # DCS
    r"|[^\[\]P])"
)
TEXT = re.compile(r"[^\x00-\x1f\x1b\x7f]+")


def background(sgr: str) -> str:
    """The background an SGR parameter string leaves set ('' for the default)."""
    codes = sgr.split(";")
    bg, i = "", 0
    while i < len(codes):
        c = codes[i]
        if c in ("", "0"):
            bg = ""
        elif c in ("38", "48"):
            if i + 1 < len(codes) and codes[i + 1] == "2":
                spec, i = ";".join(codes[i + 1 : i + 5]), i + 4
            else:
                spec, i = ";".join(codes[i + 1 : i + 3]), i + 2
            if c == "48":
                bg = spec
        elif c == "49":
            bg = ""
        elif c.isdigit() and (40 <= int(c) <= 47 or 100 <= int(c) <= 107):
            bg = c
        i += 1
    return bg


class Terminal:
    """Enough of a VT to keep the screen Textual draws: cursor positioning, SGR
    (styles kept per cell as the parameter string since the last reset), erase in line
    and display, synchronized-output brackets, and the queries it must answer."""

    def __init__(self, width: int, height: int):
        from rich.cells import get_character_cell_size

        self.cell_size = get_character_cell_size
        self.w, self.h = width, height
        self.chars = [[" "] * width for _ in range(height)]
        self.styles = [[""] * width for _ in range(height)]
        self.x = self.y = 0
        self.sgr = ""
        self.pending = ""
        self.synced = False  # the app brackets its frames (mode 2026)
        self.frames = 0
        self.answers: list[bytes] = []

    def feed(self, text: str) -> bool:
        """Take output; True when a frame ended in it (any output, before the app
        brackets its frames)."""
        data = self.pending + text
        pos, n, ended = 0, len(data), False
        while pos < n:
            ch = data[pos]
            if ch == "\x1b":
                m = SEQ.match(data, pos)
                if m is None:
                    if n - pos < 8192:
                        break  # a sequence cut across reads: wait for the rest
                    pos += 1
                    continue
                if m.group(3) is not None:
                    ended |= self._csi(m.group(1), m.group(2), m.group(3))
                pos = m.end()
            elif ch < " " or ch == "\x7f":
                if ch == "\r":
                    self.x = 0
                elif ch == "\n":
                    self.y = min(self.y + 1, self.h - 1)
                elif ch == "\b":
                    self.x = max(0, self.x - 1)
                pos += 1
            else:
                m = TEXT.match(data, pos)
                assert m is not None
                self._put(m.group())
                pos = m.end()
        self.pending = data[pos:]
        return ended or (not self.synced and bool(text))

    def _csi(self, params: str, inter: str, final: str) -> bool:
        if params.startswith("?"):
            if params == "?2026" and inter == "$" and final == "p":
                self.answers.append(b"\x1b[?2026;2$y")  # synchronized output: supported
            elif params == "?2026" and final == "h":
                self.synced = True
            elif params == "?2026" and final == "l":
                self.frames += 1
                return True
            return False
        if inter or (params and params[0] in "<>="):
            return False
        nums = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []

        def arg(i: int, default: int) -> int:
            return nums[i] if len(nums) > i and nums[i] else default

        if final in "Hf":
            self.y = min(max(arg(0, 1) - 1, 0), self.h - 1)
            self.x = min(max(arg(1, 1) - 1, 0), self.w - 1)
        elif final == "m":
            if params in ("", "0"):
                self.sgr = ""
            else:
                self.sgr = f"{self.sgr};{params}" if self.sgr else params
        elif final == "K":
            mode = arg(0, 0)
            start, end = {0: (self.x, self.w), 1: (0, self.x + 1)}.get(mode, (0, self.w))
            self.chars[self.y][start:end] = [" "] * (end - start)
            self.styles[self.y][start:end] = [self.sgr] * (end - start)
        elif final == "J":
            mode = arg(0, 0)
            rows = range(self.h) if mode in (2, 3) else range(self.y + 1, self.h)
            for y in rows:
                self.chars[y] = [" "] * self.w
                self.styles[y] = [self.sgr] * self.w
            if mode == 0:
                self._csi("", "", "K")
        elif final == "A":
            self.y = max(0, self.y - arg(0, 1))
        elif final == "B":
            self.y = min(self.h - 1, self.y + arg(0, 1))
        elif final == "C":
            self.x = min(self.w - 1, self.x + arg(0, 1))
        elif final == "D":
            self.x = max(0, self.x - arg(0, 1))
        elif final == "G":
            self.x = min(max(arg(0, 1) - 1, 0), self.w - 1)
        elif final == "d":
            self.y = min(max(arg(0, 1) - 1, 0), self.h - 1)
        return False

    def _put(self, text: str) -> None:
        row, styles, x, w = self.chars[self.y], self.styles[self.y], self.x, self.w
        if text.isascii():
            end = min(x + len(text), w)
            row[x:end] = text[: end - x]
            styles[x:end] = [self.sgr] * (end - x)
            self.x = end
            return
        for c in text:
            size = self.cell_size(c)
            if size == 0:
                continue
            if x + size > w:
                break
            row[x], styles[x] = c, self.sgr
            if size == 2:
                row[x + 1], styles[x + 1] = "", self.sgr
            x += size
        self.x = x

    def row(self, y: int) -> str:
        return "".join(self.chars[y])

    def text(self) -> str:
        return "\n".join(self.row(y) for y in range(self.h))


# what the screen shows (checked on the emulated grid)

STEP_ROW = re.compile(r"(\d) \[[ ✓]\] ")
HELP_LINE = "esc or ? closes this"
LOGS_TITLE = "all services  all levels"


def highlighted_step(term: Terminal) -> int | None:
    """The checklist row whose background differs from every other step row's."""
    rows: dict[int, str] = {}
    for y in range(term.h):
        m = STEP_ROW.search(term.row(y), 0, 8)
        if m and m.start() <= 3:
            rows[int(m.group(1)) - 1] = background(term.styles[y][m.start()])
    if len(rows) < 3:
        return None
    counts: dict[str, int] = {}
    for bg in rows.values():
        counts[bg] = counts.get(bg, 0) + 1
    odd = [i for i, bg in rows.items() if counts[bg] == 1]
    return odd[0] if len(odd) == 1 and len(counts) == 2 else None


def drill_visible(term: Terminal) -> bool:
    text = term.text()
    return "Checklist" in text and "Signals" in text


def help_open(term: Terminal) -> bool:
    return HELP_LINE in term.text()


def logs_open(term: Terminal) -> bool:
    return LOGS_TITLE in term.text()


Check = Callable[[Terminal], bool]
# (label, key, precondition, the change that must be on screen)
CYCLE: list[tuple[str, str, Check, Check]] = [
    ("checklist ↓", "down", lambda t: highlighted_step(t) == 0, lambda t: highlighted_step(t) == 1),
    ("checklist ↑", "up", lambda t: highlighted_step(t) == 1, lambda t: highlighted_step(t) == 0),
    ("? help open", "?", lambda t: not help_open(t), help_open),
    ("esc help close", "escape", help_open, lambda t: not help_open(t) and drill_visible(t)),
    ("l logs open", "l", lambda t: not logs_open(t), logs_open),
    ("esc logs close", "escape", logs_open, lambda t: not logs_open(t) and drill_visible(t)),
]


class PtyApp:
    """The child on a pty; a reader thread drains its output into the emulator, answers
    its queries, and notes when an awaited change is first on screen."""

    def __init__(self, workspace: Path, log: Path):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", HEIGHT, WIDTH, 0, 0))
        ctl_r, self._ctl_w = os.pipe()
        self._reply_r, reply_w = os.pipe()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")}
        env |= {"TERM": "xterm-256color", "COLORTERM": "truecolor", "PYTHONUNBUFFERED": "1"}
        env.pop("NO_COLOR", None)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child",
               "--workspace", str(workspace), "--log", str(log),
               "--ctl-in", str(ctl_r), "--ctl-out", str(reply_w)]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            pass_fds=(ctl_r, reply_w),
            start_new_session=True,
            env=env,
            cwd=str(workspace),
        )
        for fd in (slave, ctl_r, reply_w):
            os.close(fd)
        self.term = Terminal(WIDTH, HEIGHT)
        self.lock = threading.Lock()
        self.raw_tail = b""
        self.bytes_read = 0
        self.parse_s: list[float] = []
        self._expect: Check | None = None
        self._seen_at: float | None = None
        self._seen = threading.Event()
        self._closed = threading.Event()
        self._replies = b""
        self.last_ui_ms = 0.0
        self.reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self.reader.start()

    # output

    def _read(self) -> None:
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.5)
                if not ready:
                    if self.proc.poll() is not None:
                        break
                    continue
                data = os.read(self.master, 1 << 16)
            except OSError:  # EIO: the child closed its side
                break
            arrived = time.monotonic()
            if not data:
                break
            started = time.perf_counter()
            with self.lock:
                self.bytes_read += len(data)
                self.raw_tail = (self.raw_tail + data)[-8192:]
                ended = self.term.feed(decode(data))
                answers, self.term.answers = self.term.answers, []
                expect = self._expect if self._seen_at is None else None
                if ended and expect is not None and expect(self.term):
                    self._seen_at = arrived
                    self._seen.set()
            self.parse_s.append(time.perf_counter() - started)
            for answer in answers:
                os.write(self.master, answer)
        self._closed.set()

    def wait_screen(self, check: Check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if check(self.term):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited (code {self.proc.returncode}): {what}")
            time.sleep(0.05)

    def press(self, key: str, pre: Check, change: Check) -> float:
        """Send a key; ms until the end of the first frame that shows the change."""
        with self.lock:
            if not pre(self.term):
                raise RuntimeError(f"before {key!r}: the screen is not in the expected state")
            if change(self.term):
                raise RuntimeError(f"before {key!r}: the change is already on screen")
            self._expect, self._seen_at = change, None
            self._seen.clear()
        ui0 = self.ui_ns()
        sent = time.monotonic()
        os.write(self.master, KEY_BYTES[key])
        if not self._seen.wait(KEY_TIMEOUT_S):
            raise RuntimeError(f"{key!r}: no frame showed the change within {KEY_TIMEOUT_S} s")
        self.last_ui_ms = (self.ui_ns() - ui0) / 1e6
        with self.lock:
            self._expect = None
            assert self._seen_at is not None
            return (self._seen_at - sent) * 1000

    def ui_ns(self) -> int:
        """CPU time of the child's main thread (the UI's event loop) in ns, from
        /proc/PID/task/PID/schedstat: what a key cost the UI, whatever else ran."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/schedstat")
        return int(path.read_text().split()[0])

    def frames_and_bytes(self) -> tuple[int, int]:
        with self.lock:
            return self.term.frames, self.bytes_read

    # control

    def ask(self, command: str, timeout: float) -> list[str]:
        os.write(self._ctl_w, (command + "\n").encode())
        deadline = time.monotonic() + timeout
        while b"\n" not in self._replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no answer to {command!r} within {timeout:g} s")
            ready, _, _ = select.select([self._reply_r], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self._reply_r, 4096)
                if not chunk:
                    raise RuntimeError(f"the app exited before answering {command!r}")
                self._replies += chunk
        line, _, self._replies = self._replies.partition(b"\n")
        answer = line.decode().split()
        if answer and answer[0] == "error":
            raise RuntimeError(f"{command}: {' '.join(answer[1:])}")
        return answer

    def cpu(self) -> dict[str, float]:
        """The child's CPU seconds: `cpu` from its time.process_time() (every thread),
        `main` of its main thread (the UI's event loop) from /proc; `mono` its clock."""
        _, cpu, mono = self.ask("cpu", 10)
        ticks = os.sysconf("SC_CLK_TCK")
        stat = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        main = (int(fields[11]) + int(fields[12])) / ticks
        return {"cpu": float(cpu), "mono": float(mono), "main": main}

    def close(self) -> None:
        """The child ends by itself after `abort`; else SIGTERM (the app reverts every
        fault on it), then SIGKILL: to this child's pid only."""
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._closed.wait(5)
        for fd in (self.master, self._ctl_w, self._reply_r):
            with contextlib.suppress(OSError):
                os.close(fd)


# ---------------------------------------------------------------- measures


def summary(values: list[float]) -> dict:
    return {
        "p50": statistics.median(values),
        "p95": pct(values, 95),
        "max": max(values),
        "n": len(values),
    }


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, all) CPU ticks of the machine since boot, from /proc/stat (Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    ticks = [int(f) for f in fields]
    return ticks[7] if len(ticks) > 7 else 0, sum(ticks)


def steal_pct(t0: tuple[int, int] | None, t1: tuple[int, int] | None) -> float | None:
    """The share of the machine's CPU time the hypervisor gave to others (steal) between
    two readings: on a shared VM, a slow phase often had its CPU taken away."""
    if t0 is None or t1 is None or t1[1] <= t0[1]:
        return None
    return 100 * (t1[0] - t0[0]) / (t1[1] - t0[1])


def idle(app: PtyApp, seconds: float) -> dict:
    frames0, bytes0 = app.frames_and_bytes()
    c0 = app.cpu()
    ticks0 = cpu_ticks()
    time.sleep(seconds)
    ticks1 = cpu_ticks()
    c1 = app.cpu()
    frames1, bytes1 = app.frames_and_bytes()
    wall = c1["mono"] - c0["mono"]
    return {
        "steal_pct": steal_pct(ticks0, ticks1),
        "seconds": wall,
        "cpu_s": c1["cpu"] - c0["cpu"],
        "cpu_pct": 100 * (c1["cpu"] - c0["cpu"]) / wall,
        "main_thread_pct": 100 * (c1["main"] - c0["main"]) / wall,
        "frames_per_s": (frames1 - frames0) / wall,
        "bytes_per_s": (bytes1 - bytes0) / wall,
    }


def keys(app: PtyApp, n: int, rng: random.Random) -> dict:
    by_label: dict[str, list[float]] = {label: [] for label, *_ in CYCLE}
    cpu_by_label: dict[str, list[float]] = {label: [] for label, *_ in CYCLE}
    ui_by_label: dict[str, list[float]] = {label: [] for label, *_ in CYCLE}
    every: list[float] = []
    ticks0 = cpu_ticks()
    for i in range(n):
        label, key, pre, change = CYCLE[i % len(CYCLE)]
        # a pause off the 1 Hz beat, so keys land anywhere between signal updates
        time.sleep(rng.uniform(0.08, 0.25))
        before = app.cpu()
        time.sleep(0.02)
        ms = app.press(key, pre, change)
        after = app.cpu()
        every.append(ms)
        by_label[label].append(ms)
        cpu_by_label[label].append((after["cpu"] - before["cpu"]) * 1000)
        ui_by_label[label].append(app.last_ui_ms)
    last = (n - 1) % len(CYCLE)
    if last % 2 == 0:  # a move or an open: undo it, back to the drill screen at step 1
        _label, key, pre, change = CYCLE[last + 1]
        app.press(key, pre, change)
        time.sleep(0.1)
    cpu = [ms for v in cpu_by_label.values() for ms in v]
    return {
        "steal_pct": steal_pct(ticks0, cpu_ticks()),
        "all": summary(every),
        "by_key": {k: summary(v) for k, v in by_label.items() if v},
        "cpu_ms": summary(cpu),
        "cpu_ms_by_key": {k: summary(v) for k, v in cpu_by_label.items() if v},
        "ui_ms": summary([ms for v in ui_by_label.values() for ms in v]),
        "ui_ms_by_key": {k: summary(v) for k, v in ui_by_label.items() if v},
        "ms": every,
    }


def bare_escape(app: PtyApp, runs: int) -> dict:
    times = []
    for _ in range(runs):
        app.press("?", lambda t: not help_open(t), help_open)
        time.sleep(0.1)
        times.append(
            app.press("bare-escape", help_open, lambda t: not help_open(t) and drill_visible(t))
        )
        time.sleep(0.1)
    return summary(times)


# ---------------------------------------------------------------- main


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import write_workspace
    from pagerdrill.targets.local import LocalTarget
    from pagerdrill.workspace import load_workspace

    n_keys = args.keys or (30 if args.quick else 100)
    idle_s = args.idle_s or (10.0 if args.quick else 30.0)
    rng = random.Random(1)
    results: dict = {"config": {"keys": n_keys, "idle_s": idle_s, "notes": NOTES,
                                "size": [WIDTH, HEIGHT], "quick": args.quick}}  # fmt: skip
    results["loadavg_start"] = loadavg()
    with tempfile.TemporaryDirectory(prefix="pagerdrill-tui-bench-") as tmp:
        root = write_workspace(Path(tmp) / "ws")
        target = LocalTarget(load_workspace(root))
        app: PtyApp | None = None
        try:
            print("bringing the reference stack up…", flush=True)
            statuses = target.up()
            if not all(s.health == "healthy" for s in statuses):
                raise RuntimeError(f"stack not healthy after up: {statuses}")
            time.sleep(1.0)
            app = PtyApp(root, Path(tmp) / "app.log")
            app.wait_screen(drill_visible, 30, "the drill screen")
            if app.ask(f"wait-page {PAGE_TIMEOUT_S}", PAGE_TIMEOUT_S + 10)[0] != "paged":
                raise RuntimeError("the drill did not page")
            app.wait_screen(lambda t: "PAGE" in t.text(), 10, "the page banner")
            app.wait_screen(lambda t: highlighted_step(t) == 0, 10, "the checklist")
            results["synchronized_output"] = app.term.synced

            def phase(name: str, fn: Callable[..., dict], *fn_args: object) -> dict:
                """A measure; with --profile, with the UI thread under cProfile."""
                if args.profile is None:
                    return fn(*fn_args)
                app.ask("profile-on", 10)
                try:
                    return fn(*fn_args)
                finally:
                    app.ask(f"profile-off {args.profile / (name + '.prof')}", 60)

            time.sleep(2.0)
            print(f"paged; idle {idle_s:g} s (empty timeline)…", flush=True)
            results["idle_empty"] = phase("idle_empty", idle, app, idle_s)
            print(f"{n_keys} keys (empty timeline)…", flush=True)
            results["keys_empty"] = phase("keys_empty", keys, app, n_keys, rng)

            print(f"{NOTES:,} notes through engine.act…", flush=True)
            _, count, act_s, applied_s, pane_lines = app.ask(f"notes {NOTES}", 600)
            time.sleep(2.0)
            with app.lock:
                shown = re.findall(r"bench note (\d+) of", app.term.text())
            results["timeline"] = {
                "notes": int(count),
                "act_s": float(act_s),
                "applied_s": float(applied_s),
                "events_pane_lines": int(pane_lines),
                "events_pane_shows": int(shown[-1]) if shown else None,
            }
            print(f"idle {idle_s:g} s (10,000-event timeline)…", flush=True)
            results["idle_10k"] = phase("idle_10k", idle, app, idle_s)
            print(f"{n_keys} keys (10,000-event timeline)…", flush=True)
            results["keys_10k"] = phase("keys_10k", keys, app, n_keys, rng)
            runs = BARE_ESC_RUNS // 2 if args.quick else BARE_ESC_RUNS
            results["bare_escape_close"] = bare_escape(app, runs)
            parse = sorted(app.parse_s)
            results["emulator_parse_ms"] = {"p50": pct(parse, 50) * 1000,
                                            "p95": pct(parse, 95) * 1000,
                                            "max": parse[-1] * 1000}  # fmt: skip

            answer = app.ask("abort", 120)
            results["abort"] = {"phase": answer[1], "revert_failed": json.loads(answer[2])}
            if answer[1] != "aborted" or results["abort"]["revert_failed"]:
                raise RuntimeError(f"the abort did not revert everything: {answer}")
        except BaseException:
            if app is not None:
                with app.lock:
                    screen = app.term.text()
                print("the screen when it failed:\n" + screen, file=sys.stderr)
                log = Path(tmp) / "app.log"
                if log.exists():
                    print("app log tail:\n" + log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            if app is not None:
                app.close()
            print("taking the stack down…", flush=True)
            target.down()
    results["loadavg_end"] = loadavg()
    return results


def verdict_keys(stats: dict) -> str:
    if stats["p95"] > BUDGET_KEY_MS:
        return "OVER"
    return "PASS" if stats["max"] <= BUDGET_KEY_MS else "PASS (max over)"


def report(results: dict) -> bool:
    load0 = ", ".join(f"{x:.2f}" for x in results["loadavg_start"])
    load1 = ", ".join(f"{x:.2f}" for x in results["loadavg_end"])
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, cpus={os.cpu_count()}, "
        f"load average {load0} (start), {load1} (end)"
    )
    sync = "on" if results.get("synchronized_output") else "OFF"
    print(f"terminal: pty {WIDTH}x{HEIGHT}, synchronized output {sync}; "
          "escape sent as CSI 27u (kitty protocol)")  # fmt: skip
    print(f"{'measure':<44}{'p50':>9}{'p95':>9}{'max':>9}{'budget':>9}  {'verdict':<16}"
          "CPU/key p50  UI/key p50")  # fmt: skip
    ok = True

    def key_row(name: str, stats: dict, cpu: dict | None, ui: dict | None, budget: bool) -> None:
        nonlocal ok
        text = verdict_keys(stats) if budget else "info"
        ok &= text != "OVER"
        shown = f"{BUDGET_KEY_MS:>7g}ms" if budget else f"{'—':>9}"
        cpu_ms = f"{cpu['p50']:>8.1f} ms" if cpu else ""
        ui_ms = f"{ui['p50']:>9.1f} ms" if ui else ""
        print(f"{name:<44}{stats['p50']:>7.1f}ms{stats['p95']:>7.1f}ms{stats['max']:>7.1f}ms"
              f"{shown}  {text:<16}{cpu_ms}{ui_ms}")  # fmt: skip

    def cpu_row(name: str, stats: dict) -> None:
        nonlocal ok
        good = stats["cpu_pct"] <= BUDGET_CPU_PCT
        ok &= good
        print(f"{name:<44}{stats['cpu_pct']:>7.2f}% of a core{'':>9}{BUDGET_CPU_PCT:>8g}%  "
              f"{'PASS' if good else 'OVER'}")  # fmt: skip
        print(f"    UI thread {stats['main_thread_pct']:.2f}%, other threads "
              f"{stats['cpu_pct'] - stats['main_thread_pct']:.2f}%; "
              f"{stats['frames_per_s']:.1f} frames/s, "
              f"{stats['bytes_per_s'] / 1024:.1f} KiB/s to the terminal{steal(stats)}")  # fmt: skip

    def steal(stats: dict) -> str:
        pct = stats.get("steal_pct")
        return "" if pct is None else f"; CPU stolen by the hypervisor meanwhile: {pct:.1f}%"

    k10, k0 = results["keys_10k"], results["keys_empty"]
    key_row(f"keypress → repaint, 10k timeline (n={k10['all']['n']})", k10["all"],
            k10["cpu_ms"], k10.get("ui_ms"), True)  # fmt: skip
    if steal(k10):
        print(f"    {steal(k10)[2:]}")
    for label, stats in k10["by_key"].items():
        ui = k10.get("ui_ms_by_key", {}).get(label)
        key_row(f"  {label} (n={stats['n']})", stats, k10["cpu_ms_by_key"][label], ui, False)
    key_row(f"keypress → repaint, empty timeline (n={k0['all']['n']})", k0["all"],
            k0["cpu_ms"], k0.get("ui_ms"), False)  # fmt: skip
    be = results["bare_escape_close"]
    key_row(f"help close by a bare ESC byte (n={be['n']})", be, None, None, False)
    cpu_row(f"idle CPU, 10k timeline ({results['idle_10k']['seconds']:.0f} s)", results["idle_10k"])
    cpu_row(
        f"idle CPU, empty timeline ({results['idle_empty']['seconds']:.0f} s)",
        results["idle_empty"],
    )
    tl = results["timeline"]
    print(f"timeline: {tl['notes']:,} notes through engine.act in {tl['act_s']:.1f} s, all "
          f"in the events pane ({tl['events_pane_lines']} lines kept) after "
          f"{tl['applied_s']:.1f} s; abort: {results['abort']['phase']}, nothing left to "
          "revert")  # fmt: skip
    em = results["emulator_parse_ms"]
    print(f"this script's terminal emulator, per read: p50 {em['p50']:.2f} ms, "
          f"p95 {em['p95']:.2f} ms, max {em['max']:.1f} ms")  # fmt: skip
    if tl["events_pane_shows"] != tl["notes"]:
        print(f"warning: 2 s later the events pane still showed note {tl['events_pane_shows']}, "
              f"not {tl['notes']}: the pane is not repainted once it is full")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 keys, 10 s idle windows")
    parser.add_argument("--keys", type=int, default=None, help="keypresses per run (100)")
    parser.add_argument("--idle-s", type=float, default=None, help="idle window (30 s)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="cProfile the app's UI thread in each measure, into DIR/*.prof "
                        "(the figures then include the profiler's cost)")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    parser.add_argument("--ctl-in", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ctl-out", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    results = run(args)
    ok = report(results)
    save_results("tui_bench", results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
