"""Unit tests: pure logic, no servers. A unit test that binds, listens or connects a
socket, or starts a process, fails here: what needs a real stack, Redis, a browser or
Docker is a functional test (tests/functional/)."""

from __future__ import annotations

import socket
import subprocess

import pytest


class ServerInUnitTest(AssertionError):
    """A unit test reached for a server or a process."""


@pytest.fixture(autouse=True)
def _no_servers(monkeypatch):
    def refuse(what: str):
        def refused(*_args, **_kwargs):
            raise ServerInUnitTest(f"a unit test must not {what}: move it to tests/functional/")

        return refused

    monkeypatch.setattr(socket.socket, "bind", refuse("bind a socket"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect a socket"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect a socket"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("start a process"))
