"""A socket.io handshake storm: many clients connecting to the `rt` gateway at once.

Each client speaks just enough of the protocol to be a real socket.io client for the
server's handshake path, over plain asyncio streams (no socket.io client library):

1. TCP connect to the host in `url`, then an RFC 6455 upgrade of
   ``GET /socket.io/?EIO=4&transport=websocket`` (with ``X-Forwarded-For: <source>``
   when a source is given);
2. read the Engine.IO v4 OPEN packet ``0{...}``;
3. send ``40`` (socket.io v5 CONNECT to the default namespace) and read the answer:
   ``40{...}`` means accepted, ``44{...}`` (CONNECT_ERROR) refused, with its message
   (for `rt`: "throttled" or "blocked");
4. accepted clients stay open for `hold_s` seconds, answering Engine.IO pings ``2``
   with ``3``; then every client sends a websocket close frame and closes.

Bounds: at most `clients` handshakes; at most `concurrency` handshakes in flight (a
held connection no longer counts against it, so up to `clients` sockets may be open
at once while holding); the storm ends when every client is done, when `deadline_s`
has passed since the start, or when `stop` is set, whichever comes first. Every socket
is closed on the way out, also when the caller cancels the storm.

Counting, so that ``attempted == accepted + rejected + errors`` always holds:

- `attempted`: clients whose handshake was started (TCP connect begun). Clients never
  started because the deadline passed or `stop` was set are *not attempted* and are
  counted nowhere; ``clients - attempted`` of them.
- `accepted` / `rejected`: the server answered the CONNECT with ``40`` / ``44``. An
  accepted client cut short in its hold by the deadline or `stop` stays accepted.
- `errors`: transport failures, protocol surprises, handshakes that took longer than
  `connect_timeout_s`, and handshakes still in flight when the deadline passed or
  `stop` was set.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import json
import math
import os
import socket
import ssl
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from pagerdrill.faults.wsframes import (
    _CLOSE_FRAME_PAYLOAD,
    _OP_CLOSE,
    _OP_TEXT,
    _WS_GUID,
    _close_now,
    _Closed,
    _frame,
    _ProtocolError,
    close_websocket,
    read_packet,
)

__all__ = ["StormResult", "run_storm", "storm"]

_CLEANUP_S = 0.5  # how long the storm waits for sockets to finish closing before aborting


@dataclass(frozen=True)
class StormResult:
    attempted: int
    accepted: int
    rejected: int  # CONNECT_ERROR from the server (throttled/blocked)
    errors: int  # transport failures, timeouts
    reasons: dict[str, int]  # rejection message -> count, e.g. {"throttled": 150}
    duration_s: float  # storm start -> every client done (or the deadline / stop)
    latency_p50_s: float | None  # handshake latency: TCP connect start -> CONNECT ack/error
    latency_p95_s: float | None  # (None when no handshake got an answer)

    def to_json(self) -> dict:
        out = asdict(self)
        out["reasons"] = dict(self.reasons)
        return out


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Target:
    host: str
    port: int
    tls: bool
    host_header: str
    path: str


def _parse_url(url: str, allow_remote: bool) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "ws", "wss"):
        raise ValueError(f"{url!r}: expected an http:// (or ws://) base URL of the rt service")
    host = parts.hostname
    if not host:
        raise ValueError(f"{url!r}: no host")
    if not allow_remote and not _is_loopback(host):
        raise ValueError(
            f"{url!r}: {host} is not a loopback address; a storm only targets this machine "
            "unless allow_remote=True"
        )
    tls = scheme in ("https", "wss")
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    shown = f"[{host}]" if ":" in host else host
    default_port = 443 if tls else 80
    host_header = shown if port == default_port else f"{shown}:{port}"
    path = parts.path.rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
    return _Target(host=host, port=port, tls=tls, host_header=host_header, path=path)


class _Storm:
    def __init__(
        self,
        target: _Target,
        clients: int,
        concurrency: int,
        hold_s: float,
        source: str | None,
        deadline_s: float,
        stop: asyncio.Event | None,
        connect_timeout_s: float,
    ):
        self.target = target
        self.clients = clients
        self.concurrency = concurrency
        self.hold_s = hold_s
        self.source = source
        self.deadline_s = deadline_s
        self.stop = stop
        self.connect_timeout_s = connect_timeout_s

        self.attempted = self.accepted = self.rejected = self.errors = 0
        self.reasons: dict[str, int] = {}
        self.latencies: list[float] = []

        self._addresses: list[tuple[int, tuple]] = []
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if target.tls else None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._launch_done = False
        self._all_done = asyncio.Event()
        self._ending = False

    # -- the storm -------------------------------------------------------------------

    async def run(self) -> StormResult:
        started = time.perf_counter()
        ended = started
        waiters: list[asyncio.Task] = []
        try:
            if self.clients > 0:
                await self._resolve()
                launcher = asyncio.create_task(self._launch())
                waiters.append(launcher)
                waiters.append(asyncio.create_task(self._all_done.wait()))
                if self.stop is not None:
                    waiters.append(asyncio.create_task(self.stop.wait()))
                remaining = self.deadline_s - (time.perf_counter() - started)
                if remaining > 0:
                    await asyncio.wait(
                        waiters[1:], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
            ended = time.perf_counter()
        finally:
            self._ending = True
            await self._cleanup(waiters)
        return self._result(ended - started)

    async def _resolve(self) -> None:
        """Resolve the host once, so that each client connects to an address directly."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.target.host, self.target.port, type=socket.SOCK_STREAM)
        seen = set()
        for family, _type, _proto, _name, sockaddr in infos:
            if sockaddr not in seen:
                seen.add(sockaddr)
                self._addresses.append((family, sockaddr))
        if not self._addresses:  # pragma: no cover - getaddrinfo raises instead
            raise OSError(f"cannot resolve {self.target.host}")

    async def _launch(self) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)
        try:
            for _ in range(self.clients):
                await semaphore.acquire()
                if self._ending or (self.stop is not None and self.stop.is_set()):
                    semaphore.release()
                    break
                self.attempted += 1
                task = asyncio.create_task(self._client(semaphore))
                self._tasks.add(task)
                task.add_done_callback(self._client_done)
        finally:
            self._launch_done = True
            if not self._tasks:
                self._all_done.set()

    def _client_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if self._launch_done and not self._tasks:
            self._all_done.set()

    async def _cleanup(self, waiters: list[asyncio.Task]) -> None:
        # Cancel the clients: each one's `finally` sends a close frame if its websocket is
        # open and closes its socket. Whatever is still open after that (say the caller
        # cancels us again meanwhile) is closed here, without waiting.
        pending = [*waiters, *self._tasks]
        for task in pending:
            task.cancel()
        try:
            if pending:
                await asyncio.wait(pending, timeout=_CLEANUP_S)
        finally:
            for writer in list(self._writers):
                _close_now(writer)
        closing = {asyncio.ensure_future(w.wait_closed()): w for w in self._writers}
        self._writers.clear()
        if closing:
            _done, late = await asyncio.wait(closing, timeout=_CLEANUP_S)
            for fut, writer in closing.items():
                if fut in late:  # the peer does not take our last bytes: drop the socket
                    fut.cancel()
                    writer.transport.abort()
                elif not fut.cancelled():
                    fut.exception()  # retrieved, so none is logged as never retrieved

    def _result(self, duration_s: float) -> StormResult:
        return StormResult(
            attempted=self.attempted,
            accepted=self.accepted,
            rejected=self.rejected,
            errors=self.errors,
            reasons=dict(self.reasons),
            duration_s=duration_s,
            latency_p50_s=_percentile(self.latencies, 0.50),
            latency_p95_s=_percentile(self.latencies, 0.95),
        )

    # -- one client ------------------------------------------------------------------

    async def _client(self, semaphore: asyncio.Semaphore) -> None:
        outcome: str | None = None
        writer: asyncio.StreamWriter | None = None
        websocket_open = False
        in_handshake = True
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await self._connect()
                self._writers.add(writer)
                await self._upgrade(reader, writer)
                websocket_open = True
                outcome, message = await self._socketio_connect(reader, writer)
            self.latencies.append(time.perf_counter() - started)
            if outcome == "accepted":
                self.accepted += 1
            else:
                self.rejected += 1
                self.reasons[message] = self.reasons.get(message, 0) + 1
            in_handshake = False
            semaphore.release()
            if outcome == "accepted" and self.hold_s > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    async with asyncio.timeout(self.hold_s):
                        await self._hold(reader, writer)
            websocket_open = False  # _close sends the close frame before it awaits anything
            await close_websocket(reader, writer)
        except Exception:  # OSError, TimeoutError, IncompleteReadError, _ProtocolError...
            if outcome is None:
                outcome = "error"
                self.errors += 1
        finally:
            if outcome is None:  # cut short by the deadline, `stop`, or cancellation
                self.errors += 1
            if in_handshake:
                semaphore.release()
            if writer is not None:
                if websocket_open and not writer.is_closing():
                    with contextlib.suppress(Exception):
                        writer.write(_frame(_OP_CLOSE, _CLOSE_FRAME_PAYLOAD))
                _close_now(writer)
                if not self._ending:
                    self._writers.discard(writer)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        error: OSError | None = None
        for index, (family, sockaddr) in enumerate(self._addresses):
            try:
                reader, writer = await asyncio.open_connection(
                    sockaddr[0],
                    sockaddr[1],
                    family=family,
                    ssl=self._ssl,
                    server_hostname=self.target.host if self._ssl else None,
                )
            except OSError as exc:
                error = exc
                continue
            if index:  # remember the address that answers, for the next clients
                self._addresses.insert(0, self._addresses.pop(index))
            return reader, writer
        assert error is not None
        raise error

    async def _upgrade(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {self.target.path} HTTP/1.1",
            f"Host: {self.target.host_header}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.source is not None:
            lines.append(f"X-Forwarded-For: {self.source}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            raise _ProtocolError(f"upgrade refused: {status_line}")
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise _ProtocolError("bad Sec-WebSocket-Accept")

    async def _socketio_connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, str]:
        """("accepted", "") or ("rejected", message)."""
        opened = await read_packet(reader, writer)
        if not opened.startswith("0"):
            raise _ProtocolError(f"expected an Engine.IO OPEN packet, got {opened[:40]!r}")
        writer.write(_frame(_OP_TEXT, b"40"))
        while True:
            packet = await read_packet(reader, writer)
            if packet == "2":  # Engine.IO ping before the answer: answer it, keep waiting
                writer.write(_frame(_OP_TEXT, b"3"))
            elif packet.startswith("40"):
                return "accepted", ""
            elif packet.startswith("44"):
                return "rejected", _refusal_message(packet[2:])
            elif packet.startswith("1"):
                raise _Closed()
            elif packet.startswith("6"):  # Engine.IO noop
                continue
            else:
                raise _ProtocolError(f"unexpected packet {packet[:40]!r}")

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Stay connected, answering pings, until the server lets go (or the hold ends)."""
        while True:
            packet = await read_packet(reader, writer)
            if packet == "2":
                writer.write(_frame(_OP_TEXT, b"3"))
            elif packet.startswith("1") or packet.startswith("41"):
                return  # Engine.IO close / socket.io disconnect from the server


def _refusal_message(data: str) -> str:
    try:
        value = json.loads(data) if data else None
    except ValueError:
        return data
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return value["message"]
    if isinstance(value, str):
        return value
    return data or "refused"


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * q))
    return ordered[rank - 1]


async def storm(
    url: str,
    clients: int,
    *,
    concurrency: int = 200,
    hold_s: float = 0.0,
    source: str | None = None,
    deadline_s: float = 30.0,
    stop: asyncio.Event | None = None,
    connect_timeout_s: float = 5.0,
    allow_remote: bool = False,
) -> StormResult:
    """Open `clients` socket.io connections to the rt service at `url` as fast as
    `concurrency` allows; see the module docstring for what is counted where.

    Raises ValueError, before any connection attempt, for a URL whose host is not a
    loopback address or "localhost" (unless `allow_remote`) and for bad arguments.
    Returns by `deadline_s` plus at most ~1 s spent closing sockets (usually a few ms)."""
    target = _parse_url(url, allow_remote)
    if clients < 0:
        raise ValueError(f"clients={clients}: expected >= 0")
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency}: expected >= 1")
    if hold_s < 0 or deadline_s < 0 or connect_timeout_s <= 0:
        raise ValueError("hold_s and deadline_s must be >= 0, connect_timeout_s > 0")
    if source is not None and any(c in source for c in "\r\n\0"):
        raise ValueError("source must be a single header value")
    runner = _Storm(
        target, clients, concurrency, hold_s, source, deadline_s, stop, connect_timeout_s
    )
    return await runner.run()


def run_storm(url: str, clients: int, **kw) -> StormResult:
    """`storm` from synchronous code (runs its own event loop)."""
    return asyncio.run(storm(url, clients, **kw))
