"""Just enough of RFC 6455 for a websocket client: masked frames out, frames in
(control frames answered, fragments reassembled), and the closing handshake."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_CLOSE_WAIT_S = 1.0  # how long a closing client waits for the server's close frame
_MAX_FRAME = 1 << 20  # a handshake never needs more; a bigger frame is a protocol error


class _ProtocolError(Exception):
    """The server said something a socket.io v5 / Engine.IO v4 server would not."""


class _Closed(Exception):
    """The server closed the websocket (close frame or end of stream)."""


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def _frame(opcode: int, payload: bytes) -> bytes:
    """One masked, final client frame."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + key + _mask(payload, key)


_CLOSE_FRAME_PAYLOAD = struct.pack("!H", 1000)  # normal closure


async def close_websocket(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Websocket closing handshake: send a close frame, wait (briefly) for the server's."""
    writer.write(_frame(_OP_CLOSE, _CLOSE_FRAME_PAYLOAD))
    with contextlib.suppress(_Closed, TimeoutError, OSError, asyncio.IncompleteReadError):
        async with asyncio.timeout(_CLOSE_WAIT_S):
            while True:
                await read_frame(reader, writer)
    writer.close()


async def read_packet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """The next Engine.IO packet (one whole text message)."""
    while True:
        opcode, payload = await read_frame(reader, writer)
        if opcode == _OP_TEXT:
            return payload.decode("utf-8")
        if opcode == _OP_BINARY:
            continue  # binary attachments are not part of a handshake: skip


async def read_frame(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, bytes]:
    """The next data message (reassembled); control frames are handled here."""
    message = b""
    message_opcode = -1
    while True:
        first, second = await reader.readexactly(2)
        fin, opcode = first & 0x80, first & 0x0F
        masked, length = second & 0x80, second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        if length > _MAX_FRAME:
            raise _ProtocolError(f"frame of {length} bytes")
        key = await reader.readexactly(4) if masked else b""
        payload = await reader.readexactly(length) if length else b""
        if masked:
            payload = _mask(payload, key)
        if opcode == _OP_CLOSE:
            raise _Closed()
        if opcode == _OP_PING:
            writer.write(_frame(_OP_PONG, payload))
            continue
        if opcode == _OP_PONG:
            continue
        if opcode == _OP_CONT:
            if message_opcode < 0:
                raise _ProtocolError("continuation frame without a message")
            message += payload
        elif opcode in (_OP_TEXT, _OP_BINARY):
            message_opcode, message = opcode, payload
        else:
            raise _ProtocolError(f"unknown opcode {opcode}")
        if len(message) > _MAX_FRAME:
            raise _ProtocolError("message too big")
        if fin:
            return message_opcode, message


def _close_now(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
