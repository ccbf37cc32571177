"""A reverse proxy that a target puts in front of a service to break it from outside.

Standard library only, and runnable as a script (`python3 proxy.py --listen ...
--upstream ... --rules JSON`), so that it runs inside any container that has python3,
not only beside pagerdrill. Two layers:

- `Relay`: a TCP relay (accept, connect upstream, copy bytes both ways) that hands
  each accepted connection to a handler. A TCP-level fault (latency, loss, cut
  connections between a service and its dependency) is a handler on this core.
- `HttpRules` and `http_handler`: the HTTP fault. Each request's head is read; a
  request whose path matches the rule (and falls in its share) is answered with the
  rule's status by the proxy itself, or delayed; every other request goes upstream
  unchanged. One request per connection (`Connection: close` both ways), so that the
  proxy never has to parse a response's framing to find where it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

HEAD_LIMIT = 64 * 1024
CHUNK = 64 * 1024
DRAIN_S = 2.0  # on stop, how long the connections being served may take to finish
FAULT_BODY = b"injected by pagerdrill (http-proxy fault)\n"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout", 429: "Too Many Requests"}  # fmt: skip


def split_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until EOF, then half-close the other side."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()
        await writer.wait_closed()


@dataclass
class Relay:
    """Listen on `listen`, and give each connection to `handler` (default: a plain
    relay to `upstream`)."""

    listen: tuple[str, int]
    upstream: tuple[str, int]
    handler: Handler | None = None
    reuse_port: bool = False
    """SO_REUSEPORT: listen alongside the service on its own port while it hands over."""
    active: set[asyncio.Task] = field(default_factory=set, repr=False)
    """The connections being served, for a stop that lets them finish."""

    async def open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(*self.upstream)

    async def relay(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        first: bytes = b"",
        reply_head: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """Connect upstream, send `first` (bytes already read from the client), then
        copy both ways until both sides are done; `reply_head` rewrites the head of
        the upstream's answer (HTTP)."""
        try:
            up_r, up_w = await self.open_upstream()
        except OSError:
            await close(client_w)
            return
        try:
            if first:
                up_w.write(first)
                await up_w.drain()
            to_up = asyncio.ensure_future(pipe(client_r, up_w))
            if reply_head is not None:
                try:
                    client_w.write(reply_head(await up_r.readuntil(b"\r\n\r\n")))
                except asyncio.IncompleteReadError as exc:  # closed mid-head: pass it on
                    client_w.write(exc.partial)
                except asyncio.LimitOverrunError:
                    pass  # a head too long to rewrite is passed on as it is
            await pipe(up_r, client_w)
            # the answer is complete: what the client still sends has no reader
            to_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await to_up
        finally:
            await close(up_w)
            await close(client_w)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        if task is not None:
            self.active.add(task)
        try:
            await (self.handler or self.relay)(reader, writer)
        except Exception as exc:  # one broken connection never stops the proxy
            print(f"proxy: connection failed: {exc!r}", file=sys.stderr, flush=True)
            await close(writer)
        finally:
            self.active.discard(task)

    async def drain(self, server: asyncio.Server, grace_s: float = DRAIN_S) -> None:
        """Stop accepting, then give the connections being served `grace_s` to finish
        (a request on its way through when the fault is removed gets its answer)."""
        server.close()
        if self.active:
            await asyncio.wait(set(self.active), timeout=grace_s)

    async def start(self) -> asyncio.Server:
        return await asyncio.start_server(
            self._serve_one, *self.listen, reuse_address=True, reuse_port=self.reuse_port or None
        )


@dataclass(frozen=True)
class HttpRules:
    """What the HTTP fault does to a request: a path regex (None: every path), the
    share of matching requests that fail, their status, and a delay for every
    matching request."""

    status: int = 500
    path: str | None = None
    ratio: float = 1.0
    latency_ms: float = 0.0

    @classmethod
    def from_json(cls, text: str) -> HttpRules:
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) - {"status", "path", "ratio", "latency_ms"}:
            raise ValueError(f"rules: expected status, path, ratio, latency_ms, got {text!r}")
        rules = cls(**data)
        if rules.path is not None:
            re.compile(rules.path)
        return rules

    def matches(self, path: str) -> bool:
        return self.path is None or re.search(self.path, path) is not None

    def fails(self, rng: random.Random) -> bool:
        return self.status > 0 and (self.ratio >= 1.0 or rng.random() < self.ratio)


def rewrite_head(head: bytes) -> bytes:
    """A request's or an answer's head with `Connection: close` in place of any
    Connection header: the proxy carries one request per connection."""
    lines = head.split(b"\r\n")
    kept = [
        line
        for line in lines[1:]
        if line and not line.lower().startswith((b"connection:", b"keep-alive:"))
    ]
    return b"\r\n".join([lines[0], *kept, b"Connection: close", b"", b""])


def fault_response(status: int) -> bytes:
    reason = REASONS.get(status, "Injected Fault").encode()
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (status, reason, len(FAULT_BODY), FAULT_BODY)
    )


def http_handler(relay: Relay, rules: HttpRules, rng: random.Random | None = None) -> Handler:
    rng = rng or random.Random()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            await close(writer)
            return
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        path = parts[1].decode("latin-1") if len(parts) >= 2 else "/"
        if rules.matches(path):
            if rules.latency_ms:
                await asyncio.sleep(rules.latency_ms / 1000)
            if rules.fails(rng):
                writer.write(fault_response(rules.status))
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
                await close(writer)
                return
        await relay.relay(reader, writer, rewrite_head(head), rewrite_head)

    return handle


async def serve(
    listen: str, upstream: str, rules: HttpRules | None, reuse_port: bool = False
) -> None:
    relay = Relay(split_hostport(listen), split_hostport(upstream), reuse_port=reuse_port)
    if rules is not None:
        relay.handler = http_handler(relay, rules)
    server = await relay.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"proxy: listening on {listen}, upstream {upstream}", file=sys.stderr, flush=True)
    async with server:
        await stop.wait()
        await relay.drain(server)


def main(argv: list[str] | None = None) -> int:
    # run as `python3 -c "$SCRIPT"` in a container, the module may have no docstring
    parser = argparse.ArgumentParser(description="pagerdrill's fault proxy")
    parser.add_argument("--listen", required=True, help="HOST:PORT to accept on")
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the real service")
    parser.add_argument("--rules", help="HTTP rules as JSON; none: a plain TCP relay")
    parser.add_argument(
        "--reuse-port", action="store_true", help="listen with SO_REUSEPORT (a handover)"
    )
    args = parser.parse_args(argv)
    try:
        rules = HttpRules.from_json(args.rules) if args.rules else None
        asyncio.run(serve(args.listen, args.upstream, rules, args.reuse_port))
    except (ValueError, re.error, TypeError) as exc:
        print(f"proxy: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"proxy: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
